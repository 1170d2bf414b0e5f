/**
 * Runs one view over one snapshot: finds the items (from the roots, or
 * one --addr), computes each column, runs the checks, and collects what
 * could not be read as errors. A walk that faults, cycles or runs over a
 * limit leaves its column null and the result partial; the process
 * disappearing ends the sample (TargetGone propagates).
 */
import type { TExpr, ViewIR } from '../generators/ir.ts';
import { type Env, Compiler, formatValue, type Runtime, type Value } from './compile.ts';
import { hex } from './memory.ts';
import { Fault } from './snapshot.ts';
import { WalkError } from './walk-error.ts';

export interface ViewError {
  item?: string;
  column?: string;
  root?: string;
  message: string;
}

export type Row = Record<string, Value | null>;

export interface ViewResult {
  items: Row[];
  partial: boolean;
  errors: ViewError[];
}

function isWalkFailure(err: unknown): err is Error {
  return err instanceof Fault || err instanceof WalkError;
}

interface Item {
  addr: number;
  origin: string;
}

export function runView(view: ViewIR, rt: Runtime, addr?: TExpr): ViewResult {
  const c = new Compiler(rt);
  const errors: ViewError[] = [];
  const items = addr ? addrItem(view, c, addr, errors) : findItems(view, c, errors);
  const columns = view.columns.map((col) => ({ name: col.name, type: col.expr.type, fn: c.any(col.expr) }));
  const checks = view.checks.map((chk) => ({ message: chk.message, fn: c.num(chk.expr) }));
  const rows: Row[] = [];
  for (const item of items) {
    const env = newEnv(view);
    env[0] = item.addr;
    const row: Row = { origin: item.origin };
    for (const col of columns) {
      try {
        row[col.name] = formatValue(col.fn(env), col.type);
      } catch (err) {
        if (!isWalkFailure(err)) throw err;
        row[col.name] = null;
        errors.push({ item: hex(item.addr), column: col.name, message: err.message });
      }
    }
    for (const chk of checks) {
      try {
        if (!chk.fn(env)) errors.push({ item: hex(item.addr), message: `check failed: ${chk.message}` });
      } catch (err) {
        if (!isWalkFailure(err)) throw err;
        errors.push({ item: hex(item.addr), message: `check could not run: ${err.message}` });
      }
    }
    rows.push(row);
  }
  return { items: rows, partial: errors.length > 0, errors };
}

function newEnv(view: ViewIR): Env {
  return new Array<Value>(view.slots).fill(0);
}

/** The one item --addr names; an expression that cannot be read is an error of the result, not a crash. */
function addrItem(view: ViewIR, c: Compiler, addr: TExpr, errors: ViewError[]): Item[] {
  try {
    return [{ addr: c.num(addr)(newEnv(view)), origin: 'addr' }];
  } catch (err) {
    if (!isWalkFailure(err)) throw err;
    errors.push({ root: 'addr', message: err.message });
    return [];
  }
}

/** Every distinct non-NULL item the roots reach, in root order. */
function findItems(view: ViewIR, c: Compiler, errors: ViewError[]): Item[] {
  const seen = new Set<number>();
  const items: Item[] = [];
  for (const root of view.roots) {
    const env = newEnv(view);
    try {
      c.seq(root.expr)(env, (v) => {
        const a = v as number;
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
