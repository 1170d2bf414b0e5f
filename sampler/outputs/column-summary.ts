/**
 * A table view recorded over time, column by column: for a number column
 * its count, min, max and percentiles (p50, p90, p99, by nearest rank); for
 * a text column its most frequent values. Bounded: percentiles come from a
 * uniform sample of at most RESERVOIR values per column (exact while fewer
 * were seen; "exact" says which), and at most MAX_DISTINCT distinct texts
 * are counted per column.
 */
import { type Int, isInt } from '../../core/exact.ts';
import type { Row } from '../sampling/view-run.ts';

export const RESERVOIR = 65_536;
const MAX_DISTINCT = 10_000;
const TOP = 10;

type Cell = Row[string];

class NumberColumn {
  n = 0;
  min: Int | null = null;
  max: Int | null = null;
  private readonly kept: Int[] = [];
  /** A fixed seed: the same recording gives the same summary. */
  private seed = 0x2545f491;

  add(v: Int): void {
    this.n++;
    if (this.min === null || v < this.min) this.min = v;
    if (this.max === null || v > this.max) this.max = v;
    if (this.kept.length < RESERVOIR) this.kept.push(v);
    else {
      const j = this.random() % this.n; // Algorithm R: every value seen is kept with the same chance
      if (j < RESERVOIR) this.kept[j] = v;
    }
  }

  private random(): number {
    // xorshift32
    let x = this.seed;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.seed = x >>> 0;
    return this.seed;
  }

  summary(): Record<string, unknown> {
    const sorted = [...this.kept].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const rank = (p: number) => (sorted.length ? sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] : null);
    return { kind: 'number', n: this.n, min: this.min, p50: rank(0.5), p90: rank(0.9), p99: rank(0.99), max: this.max, exact: this.n <= RESERVOIR };
  }
}

class TextColumn {
  n = 0;
  private readonly counts = new Map<string, number>();
  /** Values not counted: past MAX_DISTINCT distinct ones. */
  other = 0;

  add(v: string): void {
    this.n++;
    const c = this.counts.get(v);
    if (c !== undefined) this.counts.set(v, c + 1);
    else if (this.counts.size < MAX_DISTINCT) this.counts.set(v, 1);
    else this.other++;
  }

  summary(): Record<string, unknown> {
    const top = [...this.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, TOP);
    return { kind: 'text', n: this.n, distinct: this.counts.size, top: top.map(([value, count]) => ({ value, count })), ...(this.other ? { not_counted: this.other } : {}) };
  }
}


export class ColumnSummary {
  private readonly columns = new Map<string, NumberColumn | TextColumn>();
  items = 0;

  add(row: Row): void {
    this.items++;
    for (const [name, cell] of Object.entries(row)) {
      if (name === 'pid') continue;
      for (const v of Array.isArray(cell) ? cell : [cell]) this.addValue(name, v);
    }
  }

  private addValue(name: string, v: unknown): void {
    if (v === null || v === undefined) return;
    let col = this.columns.get(name);
    if (!col) this.columns.set(name, (col = isInt(v) ? new NumberColumn() : new TextColumn()));
    if (col instanceof NumberColumn && isInt(v)) col.add(v);
    else if (col instanceof TextColumn) col.add(String(v));
  }

  summary(): Record<string, Record<string, unknown>> {
    return Object.fromEntries([...this.columns].map(([name, col]) => [name, col.summary()]));
  }
}
