/** Text output: a title line, then one aligned line per item. The Python runtime prints the same (result_text). */
import { type ClockReading, formatTime } from '../sampling/clock.ts';
import { type Int, isInt, sub } from '../memory/exact.ts';
import type { Row, ViewError } from '../sampling/view-run.ts';
import { printable } from '../../generators/schema.ts';

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
  partial: boolean;
  errors: ViewError[];
}

/** On a core, what "now" was: the program's own time, which the output must not pass off as the time of reading. */
export function clockLine(clock: ClockReading | null): string | null {
  if (clock === null || clock.source !== 'core') return null;
  if (clock.doc === undefined) return 'now: none (a core keeps no clock of its own, and the pack names none)';
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
export function formatText(r: Titled, clock: ClockReading | null = null): string {
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
    for (const e of r.errors) lines.push(`  ${[e.root && `root ${e.root}`, e.item, e.column].filter(Boolean).join(' ')}: ${e.message}`);
  }
  // What a schema or the target's memory put in a cell or a message reaches a terminal: no control or bidi character does.
  return lines.map(printable).join('\n');
}

/** How the numeric columns of items present in both samples moved, keyed by origin and addr. */
export function formatMoves(first: Row[], last: Row[], seconds: number): string {
  const key = (r: Row, i: number) => String(r.addr ?? `${r.origin}#${i}`);
  const before = new Map(first.map((r, i) => [key(r, i), r]));
  const after = new Map(last.map((r, i) => [key(r, i), r]));
  const lines = [`over ${seconds.toFixed(1)} s:`];
  for (const [k, r] of after) {
    const b = before.get(k);
    if (!b) {
      lines.push(`  ${k} appeared`);
      continue;
    }
    const moved = Object.keys(r)
      .filter((c) => isInt(r[c]) && isInt(b[c]) && r[c] !== b[c])
      .map((c) => {
        const d = sub(r[c] as Int, b[c] as Int);
        return `${c} ${d > 0 ? '+' : ''}${d} (${b[c]} → ${r[c]})`;
      });
    if (moved.length > 0) lines.push(`  ${k} ${moved.join(', ')}`);
  }
  for (const k of before.keys()) if (!after.has(k)) lines.push(`  ${k} gone`);
  if (lines.length === 1) lines.push('  nothing moved');
  return lines.join('\n');
}

