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
 * marked the snapshot's words with (tagOf). Which rows read it is known by
 * walking the same bytes again with the changed words watched (Touches):
 * only those rows lose a value, and a row found through memory that changed
 * is not shown at all (it may not be an item any more, or ever was one).
 */
import type { Int } from '../../core/exact.ts';
import { hex } from '../memory/memory.ts';
import type { CompiledView } from '../../printers/js.ts';
import { type ChunkRead, Fault, type Snapshot } from '../memory/snapshot.ts';
import { ITEMS_TAG, SHARED_TAG, tagOf } from '../../core/read-tags.ts';
import { WalkError } from '../memory/walk-error.ts';
import type { ClockReading } from './clock-reading.ts';

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
  changed?: ChangedItems;
  /** Of the walk's errors, how many a column's reading memory that changed explains (withoutChanged; not printed). */
  explained?: number;
}

/** Of the items found, how many changed while they were read (not shown, or shown without what changed). */
export interface ChangedItems {
  items: number;
  of: number;
}

/**
 * What a walk of a sample's bytes made of the words that changed (Snapshot.watch): item by item, whether the walk
 * that found it had used one by then (a root is a walk: a list's later items are reached through its earlier
 * links, so an item found after a changed word may never have been one); row by row, the tags of the reads that
 * used one; and whether a walk that found items used one at all (the set may be incomplete).
 */
export interface Touches {
  found: boolean[];
  rows: number[];
  setChanged: boolean;
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
  /** While changed words are watched: the tags of the reads that used one, since it was last cleared. */
  touched: number;
}

/**
 * addr: the --addr expression, compiled; it is read once, before the columns. marks: the snapshot, tagged as
 * it is read; loads: filled with the most reads each column made for one row (one read: the value of one
 * instant, never torn), for withoutChanged.
 */
export function runView(view: CompiledView, addr?: () => Int, marks: Marks = { mark: 1, loads: 0, sharedBy: 0, touched: 0 }, loads: Record<string, number> = {}, touches?: Touches): ViewResult {
  const errors: ViewError[] = [];
  marks.mark = ITEMS_TAG;
  const items = addr ? addrItem(addr, errors, marks, touches) : findItems(view, errors, marks, touches);
  const rows: Row[] = [];
  for (const item of items) {
    view.newRow();
    marks.touched = 0;
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
    touches?.rows.push(marks.touched);
    rows.push(row);
  }
  return { items: rows, partial: errors.length > 0, errors };
}

/**
 * Whether every value the answer r shows is one the target held: r has no problem, or its only problem is memory that
 * changed while it was read: each error of the walk (walked: a fault, a cycle met) is of a column that read memory
 * that changed (r.explained), so none is a failed check, a root that failed or a limit; the read was read again
 * (verified); and it used no register (read at another moment, compared only when a newer sample of them is there).
 * What changed was then taken out (withoutChanged: a row not sure to be an item is not shown, a value that read a
 * change is null; a value of one read is its instant's): what is left is true.
 */
export function valuesTrue(r: ViewResult, walked: ViewResult, verified: boolean, registersUsed: boolean): boolean {
  return r.errors.length === 0 || (verified && !registersUsed && walked.errors.length === (r.explained ?? 0));
}

/** What changed under a sample: the tags of the reads that used it (Change.tags), and, when known, which rows did. */
export interface Changed {
  tags: number;
  touches?: Touches;
}

/**
 * r without what it read from words that changed. A row found through one (Touches.found), or whose checks read
 * one, is not shown: it may not be an item. In the others, each column that read one is null (rows known: in the
 * rows that did; else in every row), with one error saying so (but a column of one read in each row: that value
 * was true at the instant it was read); an error of such a column (a walk that met a pointer made of string bytes)
 * says first that the memory changed, which is why. A value shared by columns (SHARED_TAG) that changed takes out
 * the columns that used it (sharedBy: their tags, Marks.sharedBy), in every row. remapped: the mappings changed
 * too, so a column that failed may have met memory mapped since: it changed as well.
 */
export function withoutChanged(view: CompiledView, r: ViewResult, changed: Changed, loads: Record<string, number>, sharedBy: number, remapped = false): ViewResult {
  const { tags, touches } = changed;
  const shared = tags & SHARED_TAG;
  const failed = new Set(remapped ? r.errors.map((e) => e.column) : []);
  const hitBy = (rowTags: number): Set<string> => {
    const read = (i: number) => (rowTags & tagOf(i)) !== 0 || ((rowTags & SHARED_TAG) !== 0 && (sharedBy & tagOf(i)) !== 0);
    return new Set(view.columns.filter((c, i) => (read(i) && (loads[c.name] ?? 2) > 1) || failed.has(c.name)).map((c) => c.name));
  };
  const everyRow = touches ? null : hitBy(tags);
  // A shared value the items were found through, that changed: no item is sure. Nor is one when the rows that
  // read what changed are not known (too many words changed) and the items' own reads (roots, checks) met it.
  const noneSure = (shared !== 0 && (sharedBy & ITEMS_TAG) !== 0) || (!touches && (tags & ITEMS_TAG) !== 0);
  const items: Row[] = [];
  const hitAnywhere = new Set<string>();
  /** Per column: in how many rows shown a value was left out. */
  const lost = new Map<string, number>();
  let dropped = 0;
  let changedRows = 0;
  r.items.forEach((row, j) => {
    if (noneSure || (touches && (touches.found[j] || (touches.rows[j] & ITEMS_TAG) !== 0))) {
      dropped++;
      return;
    }
    const hit = everyRow ?? hitBy(touches!.rows[j] | shared);
    if (hit.size > 0 || (touches && touches.rows[j] !== 0)) changedRows++;
    const out: Row = { ...row };
    for (const name of hit) {
      hitAnywhere.add(name);
      if (row[name] !== null) lost.set(name, (lost.get(name) ?? 0) + 1);
      out[name] = null;
    }
    items.push(out);
  });
  if (!touches && hitAnywhere.size === 0 && dropped === 0) return r;
  let explained = 0;
  const errors = r.errors.map((e) => (e.column && hitAnywhere.has(e.column) ? (explained++, { ...e, message: `changed while it was read (its walk then met ${e.message})` }) : e));
  const of = r.items.length;
  for (const [name, n] of lost) errors.push({ column: name, message: `changed while it was read: not shown${touches && n < of ? ` in ${n} of ${of} items` : ''}` });
  if (dropped > 0) errors.push({ message: `${dropped} of ${of} items not shown: found through memory that changed while it was read, or checked against it` });
  if (touches?.setChanged) errors.push({ message: 'the walk that found the items read memory that changed: items may be missing' });
  return { items, partial: true, errors, explained, ...(touches ? { changed: { items: dropped + changedRows, of } } : {}) };
}

/**
 * One walk of a sample (R.m, fresh): the chunks of `plan` read first (an earlier sample's, in one batched read), then
 * the clock (readClock, when the view reads it), then the walk. A checked read proves each word held still from its
 * first read on, not before: when the walk read memory after the clock, it is walked again with the clock read after
 * that (walkAfterClock). When the plan held all the walk read, the clock was read after every read, and the walk stands.
 */
export function walkSample(
  view: CompiledView,
  addr: (() => Int) | undefined,
  R: { m: Snapshot; clock: ClockReading | null; again(clock: ClockReading): void },
  o: { plan?: ChunkRead[]; readClock?: () => ClockReading; checked: boolean },
): { r: ViewResult; loads: Record<string, number> } {
  if (o.plan) R.m.prefetch(o.plan);
  if (o.readClock) R.clock = o.readClock();
  const before = R.m.stats.reads;
  const loads: Record<string, number> = {};
  const r = runView(view, addr, R.m, loads);
  if (o.readClock && o.checked && R.m.stats.reads !== before) return walkAfterClock(view, addr, R, o.readClock);
  return { r, loads };
}

/** Walks over a sample's memory with the clock read again, at most, before it is called partial (walkAfterClock). */
const MAX_CLOCK_WALKS = 3;

/**
 * The view walked again over memory already read (R.m), with the clock read now (readClock): a clock read before the
 * walk is of a moment before its memory was read, and the read again proves each word held still from its first read
 * on, not before. With the clock read after every first read (and before the read again), the values are all of that
 * moment. A walk the clock sent to memory not read before reads it after that moment: then once more, with the clock
 * read again; after MAX_CLOCK_WALKS the answer is partial.
 */
export function walkAfterClock(view: CompiledView, addr: (() => Int) | undefined, R: { m: Snapshot; again(clock: ClockReading): void }, readClock: () => ClockReading): { r: ViewResult; loads: Record<string, number> } {
  for (let walks = 1; ; walks++) {
    const before = R.m.stats.reads;
    R.again(readClock());
    const loads: Record<string, number> = {};
    const r = runView(view, addr, R.m, loads);
    if (R.m.stats.reads === before) return { r, loads };
    if (walks === MAX_CLOCK_WALKS) return { r: { ...r, partial: true, errors: [{ message: `the clock chose what the walk read, ${walks} times over: its values are not of one moment` }, ...r.errors] }, loads };
  }
}

/**
 * Which items and rows of a sample used the words that changed (at: Change.at): the view walked once more over
 * the same bytes (no system call: every chunk it reads is there), with those words watched. The walk is the same,
 * so it makes the same reads; values shared by every row come from the sample's cache, as the first time.
 * undefined when the second walk did not find as many rows as the first (rows: how many), and then every row
 * counts as having read what changed. R: the runtime the view was compiled on; the second walk spends its
 * budget (visited) from zero again, as the first did.
 */
export function touchesOf(view: CompiledView, addr: (() => Int) | undefined, R: { m: Snapshot; visited: number }, at: Set<number>, rows: number): Touches | undefined {
  const touches: Touches = { found: [], rows: [], setChanged: false };
  const snap = R.m;
  R.visited = 0;
  snap.watch(at);
  try {
    runView(view, addr, snap, {}, touches);
  } finally {
    snap.watch(null);
  }
  return touches.rows.length === rows ? touches : undefined;
}

/** The one item --addr names; an expression that cannot be read is an error of the result, not a crash. */
function addrItem(addr: () => Int, errors: ViewError[], marks: Marks, touches?: Touches): Item[] {
  marks.touched = 0;
  try {
    const item = { addr: addr(), origin: 'addr' };
    touches?.found.push(marks.touched !== 0);
    return [item];
  } catch (err) {
    if (!isWalkFailure(err)) throw err;
    errors.push({ root: 'addr', message: err.message });
    return [];
  }
}

/** Every distinct non-NULL item the roots reach, in root order. */
function findItems(view: CompiledView, errors: ViewError[], marks: Marks, touches?: Touches): Item[] {
  const seen = new Set<Int>();
  const items: Item[] = [];
  for (const root of view.roots) {
    marks.touched = 0;
    try {
      root.fn((a) => {
        if (a !== 0 && !seen.has(a)) {
          seen.add(a);
          items.push({ addr: a, origin: root.label });
          touches?.found.push(marks.touched !== 0);
        }
        return true;
      });
    } catch (err) {
      if (!isWalkFailure(err)) throw err;
      errors.push({ root: root.label, message: err.message });
    }
    if (touches && marks.touched !== 0) touches.setChanged = true;
  }
  return items;
}
