/**
 * The result of one sample of a view, and its JSON: the keys in one order
 * (view, pid, pack, release, build_id, [consistency], [clock], items,
 * [changed], partial, errors), one line, integers exact however large. The Python
 * runtime writes the same but changed, which only a live sample read again has
 * (py-common/xwalk_output.py result_json); the
 * golden cases of test/fixtures/output-golden/ hold both to it.
 */
import type { ClockReading } from './clock-reading.ts';
import type { Int } from '../../core/exact.ts';
import type { ChangedItems, Row, ViewError } from './view-run.ts';

export interface Titled {
  view: string;
  pid: number | null;
  pack: string;
  release: string;
  build_id: string | null;
  /** Only when a live answer was not checked for consistency (--consistency off). */
  consistency?: 'off';
  /** Only when the view reads the clock: which clock "now" was. */
  clock?: { source: ClockReading['source']; now_ms: Int | null; monotonic_ms: Int | null };
  items: Row[];
  /** Only when memory changed while a live sample was read. */
  changed?: ChangedItems;
  partial: boolean;
  errors: ViewError[];
}

/** What a result is made of; resultShape() puts it in the one order, partial when there is an error. */
export interface ResultParts {
  view: string;
  pid: number | null;
  pack: string;
  release: string;
  build_id: string | null;
  consistency?: 'off' | null;
  clock?: Pick<ClockReading, 'source' | 'now_ms' | 'monotonic_ms'> | null;
  items: Row[];
  changed?: ChangedItems;
  errors: ViewError[];
}

export function resultShape(p: ResultParts): Titled {
  return {
    view: p.view,
    pid: p.pid,
    pack: p.pack,
    release: p.release,
    build_id: p.build_id,
    ...(p.consistency ? { consistency: p.consistency } : {}),
    ...(p.clock ? { clock: { source: p.clock.source, now_ms: p.clock.now_ms, monotonic_ms: p.clock.monotonic_ms } } : {}),
    items: p.items,
    ...(p.changed ? { changed: p.changed } : {}),
    partial: p.errors.length > 0,
    errors: p.errors,
  };
}

const MARK = '\u0000int:';

/**
 * JSON as xsample prints it: one line, keys in the order given, and
 * integers exact however large (JSON.stringify refuses bigints; Python's
 * json prints its ints whole, and so do we).
 */
export function toJson(value: unknown): string {
  // Without a replacer first: a call for every value costs more than the stringify, and bigints are rare.
  try {
    return JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
  const text = JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? `${MARK}${v}` : v));
  return text.replace(/"\\u0000int:(-?\d+)"/g, '$1');
}
