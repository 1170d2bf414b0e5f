/**
 * Runs one compiled view over one snapshot: finds the items (from the
 * roots, or one --addr), computes each column, runs the checks, and
 * collects what could not be read as errors. A walk that faults, cycles
 * or runs over a limit leaves its column null and the result partial; the
 * process disappearing ends the sample (TargetGone propagates).
 *
 * A live sample whose memory changed while it was read is kept partial
 * after its retries: then each column that read a word that changed is
 * null too (withoutChanged), so that a partial sample never shows a number
 * it could not have computed - a count of a list that a sweep cut short
 * while it was walked. What each column read is known by the tag its reads
 * marked the snapshot's words with (tagOf).
 */
import type { Int } from '../../core/exact.ts';
import { hex } from '../memory/memory.ts';
import type { CompiledView } from '../../printers/js.ts';
import { Fault } from '../memory/snapshot.ts';
import { ITEMS_TAG, SHARED_TAG, tagOf } from '../../core/read-tags.ts';
import { WalkError } from '../memory/walk-error.ts';

export interface ViewError {
  item?: string;
  column?: string;
  root?: string;
  message: string;
}

export type Value = Int | string;
/** A column's value in a row: a value, a list column's values, or null (could not be read). */
export type Row = Record<string, Value | (Value | null)[] | null>;

export interface ViewResult {
  items: Row[];
  partial: boolean;
  errors: ViewError[];
}

function isWalkFailure(err: unknown): err is Error {
  return err instanceof Fault || err instanceof WalkError;
}

interface Item {
  addr: Int;
  origin: string;
}

/** A column's value as it is shown: addresses in hex, no value (max of nothing) as null. */
export function formatValue(v: unknown, kind: 'addr' | 'value'): Value | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string') return v;
  return kind === 'addr' ? hex(v as Int) : (v as Int);
}

/** Where runView marks what each part of it reads: the sample's snapshot. */
export interface Marks {
  mark: number;
  loads: number;
  /** The tags of the columns that used a value shared by columns (a let:, a fold, a reach): what it read is theirs too. */
  sharedBy: number;
}

/**
 * addr: the --addr expression, compiled; it is read once, before the columns. marks: the snapshot, tagged as
 * it is read; loads: filled with the most reads each column made for one row (one read: the value of one
 * instant, never torn), for withoutChanged.
 */
export function runView(view: CompiledView, addr?: () => Int, marks: Marks = { mark: 1, loads: 0, sharedBy: 0 }, loads: Record<string, number> = {}): ViewResult {
  const errors: ViewError[] = [];
  marks.mark = ITEMS_TAG;
  const items = addr ? addrItem(addr, errors) : findItems(view, errors);
  const rows: Row[] = [];
  for (const item of items) {
    view.newRow();
    const row: Row = { origin: item.origin };
    for (const [i, col] of view.columns.entries()) {
      if (col.absent) continue;
      marks.mark = tagOf(i);
      const before = marks.loads;
      try {
        const v = col.fn(item.addr);
        row[col.name] = col.list ? (v as unknown[]).map((x) => formatValue(x, col.kind)) : formatValue(v, col.kind);
      } catch (err) {
        if (!isWalkFailure(err)) throw err;
        row[col.name] = null;
        errors.push({ item: hex(item.addr), column: col.name, message: err.message });
      }
      loads[col.name] = Math.max(loads[col.name] ?? 0, marks.loads - before);
    }
    marks.mark = ITEMS_TAG;
    for (const chk of view.checks) {
      try {
        if (!chk.fn(item.addr)) errors.push({ item: hex(item.addr), message: `check failed: ${chk.message}` });
      } catch (err) {
        if (!isWalkFailure(err)) throw err;
        errors.push({ item: hex(item.addr), message: `check could not run: ${err.message}` });
      }
    }
    rows.push(row);
  }
  return { items: rows, partial: errors.length > 0, errors };
}

/**
 * r without what it read from words that changed (tags: theirs, Change.tags): each column that read one is
 * null in every row, with one error saying so (but a column of one read in each row: that value was true
 * at the instant it was read); an error of such a column (a walk that met a pointer made of
 * string bytes) says first that the memory changed, which is why. A value shared by columns (SHARED_TAG)
 * that changed takes out the columns that used it (sharedBy: their tags, Marks.sharedBy). remapped: the
 * mappings changed too, so a column that failed may have met memory mapped since: it changed as well.
 */
export function withoutChanged(view: CompiledView, r: ViewResult, tags: number, loads: Record<string, number>, sharedBy: number, remapped = false): ViewResult {
  const read = (i: number) => (tags & tagOf(i)) !== 0 || ((tags & SHARED_TAG) !== 0 && (sharedBy & tagOf(i)) !== 0);
  const failed = new Set(remapped ? r.errors.map((e) => e.column) : []);
  const hit = new Set(view.columns.filter((c, i) => ((read(i) && (loads[c.name] ?? 2) > 1) || failed.has(c.name))).map((c) => c.name));
  if (hit.size === 0) return r;
  const errors = r.errors.map((e) => (e.column && hit.has(e.column) ? { ...e, message: `changed while it was read (its walk then met ${e.message})` } : e));
  const items = r.items.map((row) => {
    const out: Row = { ...row };
    for (const name of hit) out[name] = null;
    return out;
  });
  for (const name of hit) {
    if (r.items.some((row) => row[name] !== null)) errors.push({ column: name, message: 'changed while it was read: not shown' });
  }
  return { items, partial: true, errors };
}

/** The one item --addr names; an expression that cannot be read is an error of the result, not a crash. */
function addrItem(addr: () => Int, errors: ViewError[]): Item[] {
  try {
    return [{ addr: addr(), origin: 'addr' }];
  } catch (err) {
    if (!isWalkFailure(err)) throw err;
    errors.push({ root: 'addr', message: err.message });
    return [];
  }
}

/** Every distinct non-NULL item the roots reach, in root order. */
function findItems(view: CompiledView, errors: ViewError[]): Item[] {
  const seen = new Set<Int>();
  const items: Item[] = [];
  for (const root of view.roots) {
    try {
      root.fn((a) => {
        if (a !== 0 && !seen.has(a)) {
          seen.add(a);
          items.push({ addr: a, origin: root.label });
        }
        return true;
      });
    } catch (err) {
      if (!isWalkFailure(err)) throw err;
      errors.push({ root: root.label, message: err.message });
    }
  }
  return items;
}
