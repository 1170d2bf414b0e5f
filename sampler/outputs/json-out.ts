/**
 * JSON as xsample prints it: one line, keys in the order given, and
 * integers exact however large (JSON.stringify refuses bigints; Python's
 * json prints its ints whole, and so do we).
 */
const MARK = '\u0000int:';

export function toJson(value: unknown): string {
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${MARK}${v}` : v));
  return text.replace(/"\\u0000int:(-?\d+)"/g, '$1');
}
