/**
 * A result as text: a title line, the clock line of a core, then one
 * aligned line per item (number columns to the right), then the problems
 * of a partial one. The Python runtime writes the same
 * (py-common/xwalk_output.py result_text); the golden cases of
 * test/fixtures/output-golden/ hold both to it.
 */
import { type ClockReading, formatTime } from '../sampling/clock-reading.ts';
import { isInt } from '../../core/exact.ts';
import { printable } from '../../generators/schema.ts';
import type { Titled } from '../sampling/result-shape.ts';
import { describeError } from '../sampling/sampling.ts';

/** On a core, what "now" was: the program's own time, which the output must not pass off as the time of reading. */
export function clockLine(clock: Pick<ClockReading, 'source' | 'now_ms' | 'doc'> | null): string | null {
  if (clock === null || clock.source !== 'core') return null;
  if (clock.doc === undefined || clock.doc === null) return 'now: none (a core keeps no clock of its own, and the pack names none)';
  return `now: ${formatTime(clock.now_ms)} = ${clock.doc} (a core keeps no clock of its own)`;
}

/** A value as a table shows it: no value as ?, a list as [a, b]. */
export const cellText = (v: unknown): string => (v === null || v === undefined ? '?' : Array.isArray(v) ? `[${v.map(cellText).join(', ')}]` : String(v));

/** A header and rows of cells as aligned lines: number columns to the right, the others to the left. */
export function aligned(head: string[], rows: string[][], numeric: boolean[]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (vals: string[]) =>
    vals
      .map((v, i) => (numeric[i] ? v.padStart(widths[i]) : v.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(head), ...rows.map(line)];
}

/** The title names the pid, so the rows' pid column is not repeated in the table. */
export function formatText(r: Titled, clock: Pick<ClockReading, 'source' | 'now_ms' | 'doc'> | null = null): string {
  const title = `${r.view}: ${r.items.length} item${r.items.length === 1 ? '' : 's'}  (${r.pack} ${r.release}${r.pid !== null ? `, pid ${r.pid}` : ''})`;
  const lines = [title];
  const now = clockLine(clock);
  if (now) lines.push(now);
  if (r.items.length > 0) {
    const cols = Object.keys(r.items[0]).filter((c) => c !== 'pid');
    const numeric = cols.map((c) => r.items.every((it) => isInt(it[c]) || it[c] === null));
    lines.push(...aligned(cols.map((c) => c.toUpperCase()), r.items.map((it) => cols.map((c) => cellText(it[c]))), numeric));
  }
  if (r.partial) {
    lines.push(`partial: ${r.errors.length} problem${r.errors.length === 1 ? '' : 's'}`);
    for (const e of r.errors) lines.push(`  ${describeError(e)}`);
  }
  // What a schema or the target's memory put in a cell or a message reaches a terminal: no control or bidi character does.
  return lines.map(printable).join('\n');
}
