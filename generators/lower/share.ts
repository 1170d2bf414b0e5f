/**
 * Functions per pack, not per program: every view, printer and clock of a
 * pack is lowered on its own (lower.ts shares helpers inside one program),
 * so the same walk is made again in each view that uses it. A pool keeps
 * each distinct function once: two are one when they are the same function
 * (kind, parameters, body) once the functions they call are named as the
 * pool names them, so a key never trusts a name a program chose. A printer
 * that writes one file per pack (printers/python-extension.ts) prints the
 * pool once and lets each program refer to it.
 */
import type { LFunc } from './lir.ts';
import { jsonOf } from './lir.ts';
import { callees } from './reads.ts';

export class FunctionPool {
  /** The pool, each function after those it calls. */
  readonly funcs: LFunc[] = [];
  private readonly byKey = new Map<string, string>();
  private n = 0;

  /** Adds a program's functions: what each of its names is in the pool. */
  add(funcs: LFunc[]): Map<string, string> {
    const byName = new Map(funcs.map((f) => [f.name, f]));
    const names = new Map<string, string>();
    const place = (f: LFunc, path: string[]): string => {
      const done = names.get(f.name);
      if (done) return done;
      if (path.includes(f.name)) throw new Error(`internal: function ${f.name} calls itself (${[...path, f.name].join(' -> ')})`);
      for (const c of callees(f)) place(byName.get(c)!, [...path, f.name]);
      const { name, ...rest } = renamed(f, names);
      const key = jsonOf(alphaCanonical(rest));
      let pooled = this.byKey.get(key);
      if (!pooled) {
        // The name a program gave it, its number the pool's: a prefix never ends in a digit, so names stay apart.
        pooled = `${name.replace(/[0-9]+$/, '')}${++this.n}`;
        this.byKey.set(key, pooled);
        this.funcs.push({ name: pooled, ...rest });
      }
      names.set(f.name, pooled);
      return pooled;
    };
    for (const f of funcs) place(f, []);
    return names;
  }
}

/** f with the functions it calls named as `names` has them (a shared value's key is its function's name: renamed too). */
function renamed(f: LFunc, names: Map<string, string>): LFunc {
  const copy = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(copy);
    if (x === null || typeof x !== 'object') return x;
    const o = Object.fromEntries(Object.entries(x).map(([k, v]) => [k, copy(v)])) as Record<string, unknown>;
    if ((o.k === 'call' || o.k === 'memo' || o.k === 'shared') && typeof o.fn === 'string') {
      const to = names.get(o.fn)!;
      if (o.k === 'shared' && o.key === o.fn) o.key = to;
      o.fn = to;
    }
    return o;
  };
  return { ...f, body: copy(f.body) as LFunc['body'] };
}

/** Where a node of the loop IR names a variable of its function (`state` and `gint` name other things). */
const VARIABLE_FIELD: Record<string, string> = { let: 'name', set: 'name', stack: 'name', map: 'name', var: 'name', push: 'stack', depth: 'stack', pop: 'stack', at: 'stack', mapSet: 'map', mapGet: 'map', catch: 'err', visitor: 'param' };

/**
 * f's parameters and body with its variables named v1, v2... in the order they first appear: two functions
 * that differ only in the names lowering gave their variables (fresh per program) are one.
 */
function alphaCanonical(f: Omit<LFunc, 'name'>): unknown {
  const vars = new Map<string, string>();
  const canon = (n: string): string => {
    if (!vars.has(n)) vars.set(n, `v${vars.size + 1}`);
    return vars.get(n)!;
  };
  const copy = (x: unknown): unknown => {
    if (Array.isArray(x)) return x.map(copy);
    if (x === null || typeof x !== 'object') return x;
    const o = x as Record<string, unknown>;
    const field = typeof o.k === 'string' ? VARIABLE_FIELD[o.k] : undefined;
    return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, k === field && typeof v === 'string' ? canon(v) : copy(v)]));
  };
  return { kind: f.kind, params: f.params.map(canon), body: copy(f.body) };
}

