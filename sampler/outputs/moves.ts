/** How a view's items moved between two samples (xsample --count N): the result's table itself is text-table.ts. */
import { type Int, isInt, sub } from '../../core/exact.ts';
import type { Row } from '../sampling/view-run.ts';


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

