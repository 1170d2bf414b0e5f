/**
 * The JavaScript printer of the loop IR: a view (or any program) becomes
 * the source of one function body, compiled once per view and layout with
 * `new Function` and reused for every sample. Layout facts are resolved
 * here into numbers; integers go through the exact helpers (exact.ts);
 * memory and the rest through the runtime R (walk-runtime.ts). Every name
 * in the source is one lower.ts made; every string is JSON-quoted.
 */
import type { LExpr, LFunc, LProgram, LStmt, LView } from '../generators/lower/lir.ts';
import { reachedFrom } from '../generators/lower/reads.ts';
import { ITEMS_TAG, tagOf } from '../core/read-tags.ts';
import * as X from '../core/exact.ts';
import type { Int } from '../core/exact.ts';
import { type ConstAlgebra, foldConst, type LayoutFacts, layoutValues, unfolded } from '../generators/lower/fold.ts';

const MAX = 9007199254740991n;
const CMP: Record<string, string> = { '==': '===', '!=': '!==', '<': '<', '<=': '<=', '>': '>', '>=': '>=' };

/** Compiled functions: a value function returns a value, a seq function takes a visitor last. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Fn = (...args: any[]) => any;

export interface CompiledView {
  roots: { label: string; fn: (visit: (v: Int) => boolean) => boolean }[];
  /** absent: the column reads an object the process does not map; it is left out of the rows (reads.ts). */
  columns: { name: string; fn: (self: Int) => unknown; kind: 'addr' | 'value'; list: boolean; absent: boolean }[];
  checks: { message: string; fn: (self: Int) => unknown }[];
  /** Starts a row: what the view's let: names is computed again, once. */
  newRow: () => void;
}

/** What the JS printer asks of a process's layout (sampler/sampling/bound-layout.ts BoundLayout answers it). */
export interface JsLayout extends LayoutFacts {
  /** Whether the build lacks a type or global (an optional one): the columns that read it are left out. */
  lacks(name: string): boolean;
  enumNames(name: string): Map<string, string>;
}

/** What the printed functions run on, given as R (sampler/sampling/walk-runtime.ts WalkRuntime is it). */
export interface JsRuntime {
  newRow(): void;
}

export function compileView(view: LView, layout: JsLayout, R: JsRuntime): CompiledView {
  const absent = absentColumns(view, layout);
  const kept = view.columns.filter((c) => !absent.has(c.name)).map((c) => c.fn);
  const reached = absent.size > 0 ? reachedFrom(view.funcs, [...itemFns(view), ...kept]).funcs : null;
  const fns = link(reached ? view.funcs.filter((f) => reached.has(f.name)) : view.funcs, layout, R);
  return {
    roots: view.roots.map((r) => ({ label: r.label, fn: fns[r.fn] })),
    columns: view.columns.map((c) => ({ name: c.name, fn: fns[c.fn], kind: c.kind, list: c.list, absent: absent.has(c.name) })),
    checks: view.checks.map((c) => ({ message: c.message, fn: fns[c.fn] })),
    newRow: () => R.newRow(),
  };
}

/** The functions that find a view's items and check them: what must be read for the view to apply at all. */
const itemFns = (view: LView): string[] => [...view.roots.map((r) => r.fn), ...view.checks.map((c) => c.fn), ...view.instant];

/**
 * The columns that read an object the process does not map, when the view's items can be read without it (else
 * none: the view fails as a whole, saying why, as it compiles): items of a struct of the program's own, found
 * and checked without the object.
 */
function absentColumns(view: LView, layout: JsLayout): Set<string> {
  if (layout.lacks(view.of) || reachedFrom(view.funcs, itemFns(view)).names.some((n) => layout.lacks(n))) return new Set();
  return new Set(view.columns.filter((c) => c.reads.some((n) => layout.lacks(n))).map((c) => c.name));
}

export function compileProgram(p: LProgram, layout: JsLayout, R: JsRuntime): Fn {
  return link(p.funcs, layout, R)[p.entry];
}

function link(funcs: LFunc[], layout: JsLayout, R: JsRuntime): Record<string, Fn> {
  const src = printJs(funcs, layout);
  return new Function('R', 'X', src)(R, X) as Record<string, Fn>;
}

/** The source: every function, then an object of them by name. */
export function printJs(funcs: LFunc[], layout: JsLayout): string {
  const p = new JsPrinter(layout);
  const out = ['"use strict";'];
  const bodies = funcs.map((f) => p.func(f));
  out.push(...p.constants(), ...bodies);
  out.push(`return { ${funcs.map((f) => id(f.name)).join(', ')} };`);
  return out.join('\n');
}

/** A name lower.ts made: a plain identifier, never text that could be code (checked, since the IR may come from a cache). */
function id(n: string): string {
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(n)) throw new Error(`internal: ${JSON.stringify(n)} is not a name the loop IR makes`);
  return n;
}

class JsPrinter {
  private readonly values: ConstAlgebra<bigint>;

  constructor(private readonly layout: JsLayout) {
    this.values = layoutValues(layout);
  }

  /** Layout facts too large to print at each use (an enum's names), declared once before the functions. */
  private readonly enums = new Map<string, string>();

  private enumConst(name: string): string {
    let c = this.enums.get(name);
    if (!c) {
      c = `E${this.enums.size + 1}`;
      this.enums.set(name, c);
    }
    return c;
  }

  constants(): string[] {
    return [...this.enums].map(([name, c]) => `const ${c} = new Map(${JSON.stringify([...this.layout.enumNames(name)])});`);
  }

  func(f: LFunc): string {
    const params = [...f.params.map(id), ...(f.kind === 'seq' ? ['visit'] : [])];
    return `function ${id(f.name)}(${params.join(', ')}) {\nconst m = R.m;\n${this.block(f.body)}\n}`;
  }

  private block(ss: LStmt[]): string {
    return ss.map((s) => this.stmt(s)).join('\n');
  }

  private stmt(s: LStmt): string {
    switch (s.k) {
      case 'let':
        return `let ${id(s.name)} = ${this.expr(s.e)};`;
      case 'set':
        return `${id(s.name)} = ${this.expr(s.e)};`;
      case 'addVisited':
        return `R.visited = X.add(R.visited, ${this.expr(s.n)});`;
      case 'readsOf':
        return `R.m.mark = ${s.columns.reduce((bits, i) => bits | (i < 0 ? ITEMS_TAG : tagOf(i)), 0)};`;
      case 'stack':
        return `const ${id(s.name)} = [];`;
      case 'push':
        return `${id(s.stack)}.push(${this.expr(s.e)});`;
      case 'map':
        return `const ${id(s.name)} = R.newMap();`;
      case 'mapSet':
        return `${id(s.map)}.set(${this.expr(s.key)}, ${this.expr(s.e)});`;
      case 'if':
        return `if (${this.cond(s.c)}) {\n${this.block(s.then)}\n}${s.else.length ? ` else {\n${this.block(s.else)}\n}` : ''}`;
      case 'loop':
        return `for (;;) {\n${this.block(s.body)}\n}`;
      case 'break':
        return 'break;';
      case 'return':
        return s.e ? `return ${this.expr(s.e)};` : 'return;';
      case 'fail':
        return `throw R.fail(${JSON.stringify(s.kind)}, ${JSON.stringify(s.msg)}, [${s.args.map((a) => `[${this.expr(a.e)}, ${JSON.stringify(a.as)}]`).join(', ')}]);`;
      case 'try':
        return `try {\n${this.block(s.body)}\n} finally {\n${this.block(s.finally)}\n}`;
      case 'catch':
        return `try {\n${this.block(s.body)}\n} catch (${id(s.err)}) {\nif (!R.isFailure(${id(s.err)})) throw ${id(s.err)};\n${this.block(s.handler)}\n}`;
      case 'throw':
        return `throw ${this.expr(s.e)};`;
      case 'expr':
        return `${this.expr(s.e)};`;
    }
  }

  /** The value of an expression made of constants and layout facts, known now (fold.ts); null when it is not one. */
  private constant(e: LExpr): bigint | null {
    return foldConst(e, this.values);
  }

  /** An expression where only its truth matters: a comparison as it is, not as 1 or 0. */
  private cond(e: LExpr): string {
    if (e.k === 'bin' && CMP[e.op]) return `${this.expr(e.a)} ${CMP[e.op]} ${this.expr(e.b)}`;
    if (e.k === 'bin' && (e.op === '&&' || e.op === '||')) return `(${this.cond(e.a)}) ${e.op} (${this.cond(e.b)})`;
    if (e.k === 'un' && e.op === '!') return `!(${this.cond(e.a)})`;
    return `${this.expr(e)}`;
  }

  private int(v: bigint): string {
    return v <= MAX && v >= -MAX ? (v < 0n ? `(${v})` : `${v}`) : `(${v}n)`;
  }

  private expr(e0: LExpr): string {
    const L = this.layout;
    const c = this.constant(e0);
    if (c !== null) return this.int(c);
    const e = unfolded(e0);
    switch (e.k) {
      case 'str':
        return JSON.stringify(e.v);
      case 'var':
        return id(e.name);
      case 'none':
        return 'null';
      case 'load':
        return e.size === 8 && !e.signed ? `m.u64(${this.expr(e.addr)})` : `m.int(${this.expr(e.addr)}, ${e.size}, ${e.signed})`;
      case 'field': {
        const f = L.field(e.struct, e.field);
        const addr = `X.add(${this.expr(e.base)}, ${f.offset})`;
        if (f.bits !== undefined) return `R.bitfield(${addr}, ${f.bit ?? 0}, ${f.bits}, ${e.signed})`;
        return f.size === 8 && !e.signed ? `m.u64(${addr})` : `m.int(${addr}, ${f.size}, ${e.signed})`;
      }
      case 'gint': {
        const g = L.global(e.name);
        return g.size === 8 && !e.signed ? `m.u64(${this.expr(e.addr)})` : `m.int(${this.expr(e.addr)}, ${g.size}, ${e.signed})`;
      }
      case 'bin': {
        if (e.op === '+' && this.constant(e.b) === 0n) return this.expr(e.a);
        if (e.small && (e.op === '+' || e.op === '*')) return `(${this.expr(e.a)} ${e.op} ${this.expr(e.b)})`;
        const mask = e.op === '&' ? this.constant(e.b) : null;
        if (mask !== null && mask >= 0n && mask < 2n ** 31n) {
          // A variable is read twice at no cost: a number's low bits with no call, a bigint's by X.
          if (e.a.k === 'var') return `(typeof ${id(e.a.name)} === 'number' ? ${id(e.a.name)} & ${mask} : X.andSmall(${id(e.a.name)}, ${mask}))`;
          return `X.andSmall(${this.expr(e.a)}, ${mask})`;
        }
        if (CMP[e.op] || e.op === '&&' || e.op === '||') return `(${this.cond(e)} ? 1 : 0)`;
        return this.bin(e.op, this.expr(e.a), this.expr(e.b));
      }
      case 'un':
        if (e.op === '-') return `X.neg(${this.expr(e.a)})`;
        if (e.op === '!') return `(${this.cond(e.a)} ? 0 : 1)`;
        return `X.bnot(${this.expr(e.a)})`;
      case 'cond':
        return `(${this.cond(e.c)} ? ${this.expr(e.a)} : ${this.expr(e.b)})`;
      case 'state':
        return `R.${e.name}`;
      case 'rt': {
        const args = e.args.map((a) => this.expr(a)).join(', ');
        const fn = { string: 'string', cstring: 'cstring', cstringn: 'cstringn', symbol: 'symbol', file_static: 'fileStatic', global: 'global', clock: 'clockOf', cat: 'cat', register: 'register', hex: 'hex' }[e.fn];
        return `R.${fn}(${args})`;
      }
      case 'call':
        return `${id(e.fn)}(${e.args.map((a) => this.expr(a)).join(', ')})`;
      case 'enumName': {
        const x = this.expr(e.e);
        return `(${this.enumConst(e.enum)}.get(String(${x})) ?? String(${x}))`;
      }
      case 'memo':
        return `R.memo(${JSON.stringify(e.key)}, ${[id(e.fn), ...e.args.map((a) => this.expr(a))].join(', ')})`;
      case 'shared':
        return `R.shared(${[JSON.stringify(e.key), id(e.fn), ...e.args.map((a) => this.expr(a))].join(', ')})`;
      case 'visitor':
        return `((${id(e.param)}) => {\n${this.block(e.body)}\n})`;
      case 'visit':
        return `visit(${this.expr(e.e)})`;
      case 'depth':
        return `${id(e.stack)}.length`;
      case 'pop':
        return `${id(e.stack)}.pop()`;
      case 'item':
        return `${this.expr(e.of)}[${e.i}]`;
      case 'at':
        return `${id(e.stack)}[${this.expr(e.i)}]`;
      case 'mapGet':
        return `${id(e.map)}.get(${this.expr(e.key)})`;
    }
  }

  private bin(op: string, a: string, b: string): string {
    switch (op) {
      case '+':
        return `X.add(${a}, ${b})`;
      case '-':
        return `X.sub(${a}, ${b})`;
      case '*':
        return `X.mul(${a}, ${b})`;
      case '/':
        return `X.div(${a}, ${b})`;
      case '%':
        return `X.mod(${a}, ${b})`;
      default:
        return `X.bit(${JSON.stringify(op)}, ${a}, ${b})`;
    }
  }
}
