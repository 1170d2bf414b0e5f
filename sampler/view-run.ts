/**
 * Runs one compiled view over one snapshot: finds the items (from the
 * roots, or one --addr), computes each column, runs the checks, and
 * collects what could not be read as errors. A walk that faults, cycles
 * or runs over a limit leaves its column null and the result partial; the
 * process disappearing ends the sample (TargetGone propagates).
 */
import type { Int } from './exact.ts';
import { hex } from './memory.ts';
import type { CompiledView } from './print-js.ts';
import { Fault } from './snapshot.ts';
import { WalkError } from './walk-error.ts';

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

/** addr: the --addr expression, compiled; it is read once, before the columns. */
export function runView(view: CompiledView, addr?: () => Int): ViewResult {
  const errors: ViewError[] = [];
  const items = addr ? addrItem(addr, errors) : findItems(view, errors);
  const rows: Row[] = [];
  for (const item of items) {
    view.newRow();
    const row: Row = { origin: item.origin };
    for (const col of view.columns) {
      try {
        const v = col.fn(item.addr);
        row[col.name] = col.list ? (v as unknown[]).map((x) => formatValue(x, col.kind)) : formatValue(v, col.kind);
      } catch (err) {
        if (!isWalkFailure(err)) throw err;
        row[col.name] = null;
        errors.push({ item: hex(item.addr), column: col.name, message: err.message });
      }
    }
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
