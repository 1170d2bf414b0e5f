/**
 * Random schemas over a generated program: its types and globals as the
 * schema declares them, and a view of the root whose columns are random
 * expressions of the schema language (docs/schema.md), each with a twin
 * that gdb evaluates on the stopped process (test/fuzz/truth.py) and the
 * value this generator expects from the data it wrote.
 *
 * Semantics compared, as docs/schema.md states them: integers are exact
 * (no C promotion, no wrap-around), so every twin casts each integer it
 * reads to `long` and the generator only combines values whose exact
 * result a `long` holds (anything else is drawn again); `& | ^ ~ << >>`
 * work on the 64-bit two's-complement pattern (twin: `unsigned long`) and
 * give that pattern read as a signed 64-bit integer, as every printer
 * computes it (sampler/exact.ts); `>>` is logical; `/` and `%` truncate
 * toward zero, as C; pointer + integer moves by bytes; an index outside an
 * array member's bounds is an error (gdb would read past it: the twin is
 * then the error itself); `nth` past the end is an error; `min`/`max` of
 * nothing are null.
 */
import YAML from 'yaml';
import { FLEX, INT_TYPES, ITEM, LINK, LNODE, ROOT, STR, TNODE, UNION, intName, objOf, structOf, type Field, type IntType, type Obj, type Program, type Ref, type Struct, type Vals } from './gen-c.ts';
import { Random } from './random.ts';

export interface LayoutJson {
  types: Record<string, { size: number; fields: Record<string, { offset: number; size: number; bit?: number; bits?: number }> }>;
}

/** What gdb computes for a column (test/fuzz/truth.py evaluates it). */
export type Twin =
  | { c: string }
  | { ptr: string }
  | { cstr: string }
  | { bytes: string; len: string }
  | { cbuf: string; n: number }
  | { agg: 'count' | 'sum' | 'min' | 'max' | 'all' | 'any' | 'each'; items: string[]; end: string }
  | { error: string };

/** The generator's own expectation: an exact integer, text, a list, no value, an error, or unknown (addresses). */
export type Expect = { int: string } | { text: string } | { list: string[] } | { null: true } | { error: string } | { unknown: true };

export interface Column {
  name: string;
  expr: string;
  twin: Twin;
  expect: Expect;
}

export interface Walk {
  name: string;
  of: string;
  params?: string[];
  yields: string;
}

export interface Case {
  columns: Column[];
  walks: Walk[];
}

// ---- locations and values ----

/** A struct in the target: its type, its values, and a C expression of a pointer to it. */
interface Loc {
  st: Struct;
  vals: Vals;
  c: string;
  obj: Obj;
}

type V = { v: bigint; c: string } | { err: string; c: string };
const isErr = (x: V): x is { err: string; c: string } => 'err' in x;
class Unsafe extends Error {}

type It = { kind: 'loc'; loc: Loc } | { kind: 'int'; v: bigint; c: string };
interface Env {
  self: Loc;
  it?: It;
}
/** The static shape of `it`: a struct element, or an integer. */
type ItShape = { kind: 'loc'; st: Struct } | { kind: 'int' } | undefined;

interface Tmpl {
  s: string;
  ev: (env: Env) => V;
}

const I64 = 1n << 63n;
const fits = (v: bigint) => v >= -I64 && v < I64;
const small = (v: bigint) => v > -(1n << 31n) && v < 1n << 31n;
const mid = (v: bigint) => v > -(1n << 61n) && v < 1n << 61n;
const asI64 = (v: bigint) => BigInt.asIntN(64, v);
const U = (c: string) => `((unsigned long)(${c}))`;
/** A read in the twin: long, but unsigned long for a u64 past 2^63 (which long cannot hold). */
const L = (v: bigint, c: string) => (v >= I64 ? `((unsigned long)(${c}))` : `((long)(${c}))`);

/** A pointer's C text as an integer the twin may compare. */
function readInt(vals: Vals, f: Field & { kind: 'int' }): bigint {
  return vals[f.name] as bigint;
}

const ctype = (t: IntType) => `${t.signed ? 'signed' : 'unsigned'} ${{ 1: 'char', 2: 'short', 4: 'int', 8: 'long' }[t.bytes]}`;
const tagRef = (s: Struct) => `${s.union ? 'union' : 'struct'} ${s.tag}`;

export class SchemaGen {
  private r: Random;
  private walks: Walk[] = [];
  private walkN = 0;
  constructor(
    private p: Program,
    private layout: LayoutJson,
    seed: number,
  ) {
    this.r = new Random(seed);
  }

  private root(): Loc {
    const o = objOf(this.p, 'fz_root');
    return { st: structOf(this.p, ROOT), vals: o.vals, c: '(&fz_root)', obj: o };
  }

  private deref(ref: Ref | null, c: string): Loc | null {
    if (!ref) return null;
    const o = objOf(this.p, ref.obj);
    if (!ref.member) return { st: structOf(this.p, o.struct), vals: o.vals, c, obj: o };
    const f = structOf(this.p, o.struct).fields.find((x) => x.name === ref.member) as Field & { kind: 'sub' };
    return { st: structOf(this.p, f.struct), vals: o.vals[f.name] as Vals, c, obj: o };
  }

  /** A member's offset from the layout; through an embedded member declared with its own type, that type's offset added. */
  private off(st: Struct, field: string): number {
    const f = this.layout.types[st.schemaName]?.fields[field];
    if (f) return f.offset;
    const dot = field.indexOf('.');
    const sub = st.fields.find((x) => x.name === field.slice(0, dot));
    if (dot < 0 || !sub || sub.kind !== 'sub') throw new Error(`layout lacks ${st.schemaName}.${field}`);
    return this.off(st, sub.name) + this.off(structOf(this.p, sub.struct), field.slice(dot + 1));
  }
  private size(st: Struct): number {
    return this.layout.types[st.schemaName].size;
  }

  // ---- integer expressions ----

  /** An integer expression of self (and of it, when shape is given). */
  int(depth: number, shape: ItShape, st: Struct = structOf(this.p, ROOT)): Tmpl {
    const r = this.r;
    if (depth <= 0 || r.chance(0.35)) return this.leaf(shape, st);
    const k = r.int(0, 11);
    if (k <= 3) {
      const op = r.pick(['+', '-', '*', '/', '%', '+', '-']);
      return this.bin(op, this.int(depth - 1, shape, st), this.int(depth - 1, shape, st));
    }
    if (k <= 5) return this.bin(r.pick(['==', '!=', '<', '<=', '>', '>=']), this.int(depth - 1, shape, st), this.int(depth - 1, shape, st));
    if (k === 6) return this.bin(r.pick(['&&', '||']), this.int(depth - 1, shape, st), this.int(depth - 1, shape, st));
    if (k === 7) return this.bin(r.pick(['&', '|', '^']), this.int(depth - 1, shape, st), this.int(depth - 1, shape, st));
    if (k === 8) {
      const n = r.int(0, 63);
      return this.bin(r.pick(['<<', '>>']), this.int(depth - 1, shape, st), { s: String(n), ev: () => ({ v: BigInt(n), c: `${n}` }) });
    }
    if (k === 9) return this.unary(r.pick(['-', '!', '~']), this.int(depth - 1, shape, st));
    if (k === 10) {
      const c = this.int(depth - 1, shape, st);
      const a = this.int(depth - 1, shape, st);
      const b = this.int(depth - 1, shape, st);
      return {
        s: `(${c.s} ? ${a.s} : ${b.s})`,
        ev: (env) => {
          const x = c.ev(env);
          if (isErr(x)) return x;
          const [y, z] = [a.ev(env), b.ev(env)];
          const chosen = x.v !== 0n ? y : z;
          // C gives ?: one type: with an unsigned long branch, a negative other branch would convert.
          const vs = [y, z].filter((w): w is { v: bigint; c: string } => !isErr(w)).map((w) => w.v);
          if (vs.some((v) => v >= I64) && vs.some((v) => v < 0n)) throw new Unsafe();
          const text = `((${x.c}) ? (${y.c}) : (${z.c}))`;
          return isErr(chosen) ? { err: chosen.err, c: text } : { v: chosen.v, c: text };
        },
      };
    }
    return this.leaf(shape, st);
  }

  private bin(op: string, a: Tmpl, b: Tmpl): Tmpl {
    return {
      s: `(${a.s} ${op} ${b.s})`,
      ev: (env) => {
        const x = a.ev(env);
        if (isErr(x)) return x;
        if (op === '&&' && x.v === 0n) return { v: 0n, c: `((${x.c}) && 1)` };
        if (op === '||' && x.v !== 0n) return { v: 1n, c: `((${x.c}) || 1)` };
        const y = b.ev(env);
        const c = (text: string, v: bigint): V => {
          if (!fits(v)) throw new Unsafe();
          return { v, c: text };
        };
        if (isErr(y)) return { err: y.err, c: `(${x.c}) ${op} (${y.c})` };
        const [p, q] = [x.v, y.v];
        switch (op) {
          case '+':
          case '-':
            if (!mid(p) || !mid(q)) throw new Unsafe();
            return c(`((${x.c}) ${op} (${y.c}))`, op === '+' ? p + q : p - q);
          case '*':
            if (!small(p) || !small(q)) throw new Unsafe();
            return c(`((${x.c}) * (${y.c}))`, p * q);
          case '/':
          case '%':
            if (q === 0n) return { err: 'division by zero', c: `((${x.c}) ${op} (${y.c}))` };
            if ((p === -I64 && q === -1n) || p >= I64 || q >= I64) throw new Unsafe();
            return c(`((${x.c}) ${op} (${y.c}))`, op === '/' ? p / q : p % q);
          case '==':
          case '!=':
          case '<':
          case '<=':
          case '>':
          case '>=': {
            const v = { '==': p === q, '!=': p !== q, '<': p < q, '<=': p <= q, '>': p > q, '>=': p >= q }[op]!;
            // Both sides are long in the twin; a u64 past 2^63 is unsigned long there: compare those only with what is not negative.
            if ((p >= I64 && q < 0n) || (q >= I64 && p < 0n)) throw new Unsafe();
            return c(`((${x.c}) ${op} (${y.c}))`, v ? 1n : 0n);
          }
          case '&&':
          case '||':
            return c(`((${x.c}) ${op} (${y.c}))`, q !== 0n ? 1n : 0n);
          case '&':
          case '|':
          case '^': {
            const m = (1n << 64n) - 1n;
            const v = { '&': (p & m) & (q & m), '|': (p & m) | (q & m), '^': (p & m) ^ (q & m) }[op]!;
            return c(`((long)(${U(x.c)} ${op} ${U(y.c)}))`, asI64(v));
          }
          case '<<':
          case '>>': {
            const m = (1n << 64n) - 1n;
            const v = op === '<<' ? ((p & m) << q) & m : (p & m) >> q;
            return c(`((long)(${U(x.c)} ${op} ${q}))`, asI64(v));
          }
        }
        throw new Error(op);
      },
    };
  }

  private unary(op: string, a: Tmpl): Tmpl {
    return {
      s: `${op}(${a.s})`,
      ev: (env) => {
        const x = a.ev(env);
        if (isErr(x)) return x;
        if (op === '-') {
          if (!mid(x.v)) throw new Unsafe();
          return { v: -x.v, c: `(-(${x.c}))` };
        }
        if (op === '!') return { v: x.v === 0n ? 1n : 0n, c: `(!(${x.c}))` };
        return { v: asI64(~x.v & ((1n << 64n) - 1n)), c: `((long)(~${U(x.c)}))` };
      },
    };
  }

  /** A read, a constant, a size or an offset. */
  private leaf(shape: ItShape, st: Struct): Tmpl {
    const r = this.r;
    let k = r.int(0, 15);
    if (k >= 14) k = 8; // global arrays indexed by the root's fields: where helpers are shared
    if (shape?.kind === 'int' && k <= 3) return { s: 'it', ev: (env) => this.itInt(env) };
    if (shape?.kind === 'loc' && k <= 5) {
      const t = this.path(shape.st, 2);
      if (t) return { s: t.s.replace('@', 'it'), ev: (env) => t.ev(this.itLoc(env)) };
    }
    if (k <= 7) {
      const t = this.path(st, 3);
      if (t) return { s: t.s.replace('@', 'self'), ev: (env) => t.ev(env.self) };
    }
    if (k === 8 && this.p.globals.length) {
      const arrays = this.p.globals.filter((x) => x.n !== undefined);
      const g = r.chance(0.6) && arrays.length ? r.pick(arrays) : r.pick(this.p.globals);
      if (g.n === undefined) return { s: g.name, ev: () => ({ v: g.value as bigint, c: L(g.value as bigint, g.name) }) };
      const idx = this.index(g.n);
      return {
        s: `${g.name}[${idx.s}]`,
        ev: (env) => {
          const i = idx.ev(env);
          if (isErr(i)) return i;
          if (i.v < 0n || i.v >= BigInt(g.n!)) return { err: 'out of bounds', c: '0' };
          const v = (g.value as bigint[])[Number(i.v)];
          return { v, c: L(v, `${g.name}[${i.c}]`) };
        },
      };
    }
    if (k === 9) {
      const s = r.pick([...this.p.structs.values()]);
      if (r.chance(0.5)) return { s: `sizeof(${s.schemaName})`, ev: () => ({ v: BigInt(this.size(s)), c: `((long)sizeof(${tagRef(s)}))` }) };
      const ls = this.leaves(s, '', true).filter((l) => !l.bits);
      const f = ls.length ? r.pick(ls) : null;
      if (f) return { s: `offsetof(${s.schemaName}, ${f.path})`, ev: () => ({ v: BigInt(this.off(s, f.path)), c: `((long)&((${tagRef(s)} *)0)->${f.path})` }) };
    }
    if (k === 10) {
      const t = r.pick(INT_TYPES);
      return { s: `sizeof(${intName(t)})`, ev: () => ({ v: BigInt(t.bytes), c: `((long)sizeof(${ctype(t)}))` }) };
    }
    if (k === 11) {
      // A field read through a cast to a narrower (or equal) integer: its low bytes.
      const rs = structOf(this.p, ROOT);
      const fs = rs.fields.filter((x): x is Field & { kind: 'int' } => x.kind === 'int' && !x.bits && !x.enumName);
      const f = fs.length ? r.pick(fs) : null;
      if (f) {
        const t = r.pick(INT_TYPES.filter((x) => x.bytes <= f.ty.bytes));
        return {
          s: `*cast(&self.${f.name}, ${intName(t)})`,
          ev: (env) => {
            const raw = readInt(env.self.vals, f) & ((1n << BigInt(t.bytes * 8)) - 1n);
            const v = t.signed ? BigInt.asIntN(t.bytes * 8, raw) : raw;
            return { v, c: L(v, `*(${ctype(t)} *)&(${env.self.c})->${f.name}`) };
          },
        };
      }
    }
    if (k === 12) {
      // &self.a - &self.b: a difference of addresses, in bytes.
      const ls = this.leaves(st).filter((l) => !l.bits);
      if (ls.length >= 2) {
        const [a, b] = [r.pick(ls), r.pick(ls)];
        return { s: `(&self.${a.path} - &self.${b.path})`, ev: (env) => ({ v: BigInt(this.off(st, a.path) - this.off(st, b.path)), c: `((long)((char *)&(${env.self.c})->${a.path} - (char *)&(${env.self.c})->${b.path}))` }) };
      }
    }
    if (k === 13 && r.chance(0.5)) {
      // container_of: the first item of the intrusive list, from its link (ngx_queue_data's shape).
      const item = structOf(this.p, ITEM);
      const f = r.pick(['v', 'u']);
      return {
        s: `container_of(self.dhead.next, ${item.schemaName}, link).${f}`,
        ev: (env) => {
          const next = (env.self.vals.dhead as Vals).next as Ref;
          if (next.obj === 'fz_root') throw new Unsafe(); // an empty list: the root's own bytes, which the generator does not model
          const v = objOf(this.p, next.obj).vals[f] as bigint;
          return { v, c: L(v, `((${tagRef(item)} *)((char *)(${env.self.c})->dhead.next - (long)&((${tagRef(item)} *)0)->link))->${f}`) };
        },
      };
    }
    const n = r.chance(0.5) ? BigInt(r.int(0, 9)) : r.chance(0.5) ? BigInt(r.int(0, 100000)) : r.u64() >> BigInt(r.int(12, 40));
    return { s: `${n}`, ev: () => ({ v: n, c: `${n}L` }) };
  }

  private itInt(env: Env): V {
    const it = env.it!;
    if (it.kind !== 'int') throw new Error('it is not an integer');
    return { v: it.v, c: it.c };
  }
  private itLoc(env: Env): Loc {
    const it = env.it!;
    if (it.kind !== 'loc') throw new Error('it is not a struct');
    return it.loc;
  }

  /** An index: a small constant, an idx field of the root, or one of those plus or minus one. */
  private index(n: number): Tmpl {
    const r = this.r;
    if (r.chance(0.3)) {
      const k = r.int(0, n - 1);
      return { s: `${k}`, ev: () => ({ v: BigInt(k), c: `${k}` }) };
    }
    const i = r.int(0, 2);
    return { s: `self.idx${i}`, ev: (env) => ({ v: this.root().vals[`idx${i}`] as bigint, c: `(${this.root().c})->idx${i}` }) };
  }

  /**
   * Every integer leaf of a struct, with dotted paths through embedded members; with declaredOnly,
   * only through those the schema declares dotted (offsetof() takes a declared member, not a path
   * through a member declared with its own type).
   */
  private leaves(st: Struct, prefix = '', declaredOnly = false): { path: string; bits?: number }[] {
    if (st.union) return st.fields.map((f) => ({ path: prefix + f.name }));
    return st.fields.flatMap((f) => {
      if (f.kind === 'int') return [{ path: prefix + f.name, bits: f.bits }];
      if (f.kind === 'sub' && (f.dotted || !declaredOnly)) return this.leaves(structOf(this.p, f.struct), `${prefix}${f.name}.`, declaredOnly);
      return [];
    });
  }

  /** A chain of member accesses from a struct ('@' stands for it) to an integer. */
  private path(st: Struct, depth: number): { s: string; ev: (loc: Loc) => V } | null {
    const r = this.r;
    const fields = st.fields.filter((f) => f.kind !== 'cbuf' || depth > 0);
    if (!fields.length) return null;
    const f = r.pick(fields);
    // s: the schema text of the step, e.g. '.parr[2]'; C: the pointer it follows, in C, dereferenced by the twin when it is NULL.
    const step = (sub: { s: string; ev: (loc: Loc) => V } | null, s: string, to: (loc: Loc) => Loc | null | { err: string; c: string }) =>
      sub && {
        s: sub.s.replace('@', `@${s}`),
        ev: (loc: Loc) => {
          const next = to(loc);
          if (next === null) return { err: 'NULL', c: `((long)*(char *)(${loc.c})->${s.slice(1)})` };
          if ('err' in next) return next;
          return sub.ev(next);
        },
      };
    switch (f.kind) {
      case 'int':
        if (st.union) {
          return {
            s: `@.${f.name}`,
            ev: (loc) => {
              const raw = (loc.vals.a as bigint) & ((1n << BigInt(f.ty.bytes * 8)) - 1n);
              const v = f.ty.signed ? BigInt.asIntN(f.ty.bytes * 8, raw) : raw;
              return { v, c: L(v, `(${loc.c})->${f.name}`) };
            },
          };
        }
        return { s: `@.${f.name}`, ev: (loc) => ({ v: loc.vals[f.name] as bigint, c: L(loc.vals[f.name] as bigint, `(${loc.c})->${f.name}`) }) };
      case 'arr': {
        const idx = this.index(f.n);
        return {
          s: `@.${f.name}[${idx.s}]`,
          ev: (loc) => {
            const i = idx.ev({ self: this.root() });
            if (isErr(i)) return i;
            if (i.v < 0n || i.v >= BigInt(f.n)) return { err: 'out of bounds', c: '0' };
            const v = (loc.vals[f.name] as bigint[])[Number(i.v)];
            return { v, c: L(v, `(${loc.c})->${f.name}[${i.c}]`) };
          },
        };
      }
      case 'cbuf': {
        const k = r.int(0, f.n - 1);
        return { s: `@.${f.name}[${k}]`, ev: (loc) => ({ v: BigInt(((loc.vals[f.name] as Buffer)[k] ?? 0) << 24) >> 24n, c: `((long)(signed char)(${loc.c})->${f.name}[${k}])` }) };
      }
      case 'cptr':
        return { s: `*@.${f.name}`, ev: (loc) => (loc.vals[f.name] === null ? { err: 'NULL', c: `((long)*(${loc.c})->${f.name})` } : { v: BigInt((((loc.vals[f.name] as Buffer)[0] ?? 0) << 24) >> 24), c: `((long)*(${loc.c})->${f.name})` }) };
      case 'sub': {
        const sub = structOf(this.p, f.struct);
        const s = this.path(sub, depth);
        return step(s, `.${f.name}`, (loc) => ({ st: sub, vals: loc.vals[f.name] as Vals, c: `(&(${loc.c})->${f.name})`, obj: loc.obj }));
      }
      case 'ptr': {
        if (depth <= 0) return null;
        const s = this.path(structOf(this.p, f.to), depth - 1);
        return step(s, `.${f.name}`, (loc) => this.deref(loc.vals[f.name] as Ref | null, `(${loc.c})->${f.name}`));
      }
      case 'ptrarr': {
        if (depth <= 0) return null;
        const k = r.int(0, f.n - 1);
        const s = this.path(structOf(this.p, f.to), depth - 1);
        return step(s, `.${f.name}[${k}]`, (loc) => this.deref((loc.vals[f.name] as (Ref | null)[])[k], `(${loc.c})->${f.name}[${k}]`));
      }
    }
  }

  // ---- sequences and aggregates ----

  /** A sequence over the root: its schema text, the shape of its elements, and its elements (C text and value) for an env. */
  private seq(): { s: string; shape: ItShape; els: (env: Env) => { els: It[]; end: string; err?: string } } {
    const r = this.r;
    const root = structOf(this.p, ROOT);
    const k = r.int(0, 8);
    const lnode = structOf(this.p, LNODE);
    const chainEls = (first: (env: Env) => { ref: Ref | null; c: string }, field: 'next') => (env: Env) => {
      const els: It[] = [];
      let { ref, c } = first(env);
      while (ref) {
        const loc = this.deref(ref, c)!;
        els.push({ kind: 'loc', loc });
        ref = loc.vals[field] as Ref | null;
        c = `(${c})->${field}`;
      }
      return { els, end: `(${c}) == 0` };
    };
    const head = (env: Env) => ({ ref: env.self.vals.head as Ref | null, c: `(${env.self.c})->head` });
    if (k === 0) return { s: 'chain(self.head, next)', shape: { kind: 'loc', st: lnode }, els: chainEls(head, 'next') };
    if (k === 1) return { s: `${this.walk('fz_chain', LNODE, 'chain(self, next)')}(self.head)`, shape: { kind: 'loc', st: lnode }, els: chainEls(head, 'next') };
    if (k === 2) return { s: `${this.walk('fz_chainp', LNODE, 'chain(self, F)', ['F'])}(self.head, next)`, shape: { kind: 'loc', st: lnode }, els: chainEls(head, 'next') };
    if (k === 3) {
      const pre = r.chance(0.5);
      const tnode = structOf(this.p, TNODE);
      return {
        s: `${pre ? 'bintree_preorder' : 'bintree'}(self.tree, left, right)`,
        shape: { kind: 'loc', st: tnode },
        els: (env) => {
          const els: It[] = [];
          const ends: string[] = [];
          const visit = (ref: Ref | null, c: string) => {
            if (!ref) return void ends.push(`(${c}) == 0`);
            const loc = this.deref(ref, c)!;
            if (pre) els.push({ kind: 'loc', loc });
            visit(loc.vals.left as Ref | null, `(${c})->left`);
            if (!pre) els.push({ kind: 'loc', loc });
            visit(loc.vals.right as Ref | null, `(${c})->right`);
          };
          visit(env.self.vals.tree as Ref | null, `(${env.self.c})->tree`);
          return { els, end: ends.join(' && ') };
        },
      };
    }
    if (k === 4) {
      const item = structOf(this.p, ITEM);
      const viaWalk = r.chance(0.4);
      const text = `dlist(&self.dhead, ${item.schemaName}, link)`;
      return {
        s: viaWalk ? `${this.walk('fz_items', ROOT, text)}(self)` : text,
        shape: { kind: 'loc', st: item },
        els: (env) => {
          const els: It[] = [];
          let ref = (env.self.vals.dhead as Vals).next as Ref;
          let c = `(${env.self.c})->dhead.next`;
          while (ref.obj !== 'fz_root') {
            const o = objOf(this.p, ref.obj);
            els.push({ kind: 'loc', loc: { st: item, vals: o.vals, c: `((${tagRef(item)} *)((char *)(${c}) - (long)&((${tagRef(item)} *)0)->link))`, obj: o } });
            ref = (o.vals.link as Vals).next as Ref;
            c = `(${c})->next`;
          }
          return { els, end: `(${c}) == &(${env.self.c})->dhead` };
        },
      };
    }
    if (k === 5) {
      const arrs = root.fields.filter((f): f is Field & { kind: 'arr' } => f.kind === 'arr');
      const f = r.pick(arrs);
      return { s: `array(self.${f.name})`, shape: { kind: 'int' }, els: (env) => ({ els: (env.self.vals[f.name] as bigint[]).map((v, i) => ({ kind: 'int', v, c: L(v, `(${env.self.c})->${f.name}[${i}]`) })), end: '1' }) };
    }
    if (k === 6) {
      const fx = structOf(this.p, FLEX);
      const t = fx.flex!;
      return {
        s: `array(cast(self.fx + sizeof(${fx.schemaName}), ${intName(t)}), self.fx.n)`,
        shape: { kind: 'int' },
        els: (env) => {
          const ref = env.self.vals.fx as Ref | null;
          // self.fx.n reads through NULL: the column is an error, and gdb's twin faults the same way.
          if (!ref) return { els: [], end: `(${env.self.c})->fx->n == 0`, err: 'NULL' };
          const o = objOf(this.p, ref.obj);
          return { els: o.flexItems!.map((v, i) => ({ kind: 'int', v, c: L(v, `(${env.self.c})->fx->items[${i}]`) })), end: `(${env.self.c})->fx->n == ${o.flexItems!.length}` };
        },
      };
    }
    if (k === 7) {
      const f = root.fields.find((x) => x.name === 'parr') as Field & { kind: 'ptrarr' };
      const st = structOf(this.p, f.to);
      return {
        s: 'filter(array(self.parr), it != NULL)',
        shape: { kind: 'loc', st },
        els: (env) => ({
          els: (env.self.vals.parr as (Ref | null)[]).flatMap((ref, i) => (ref ? [{ kind: 'loc' as const, loc: this.deref(ref, `(${env.self.c})->parr[${i}]`)! }] : [])),
          end: (env.self.vals.parr as (Ref | null)[]).map((ref, i) => `((${env.self.c})->parr[${i}] ${ref ? '!=' : '=='} 0)`).join(' && '),
        }),
      };
    }
    // A global array of the root's index length.
    const ga = this.p.globals.filter((g) => g.n !== undefined);
    const g = r.pick(ga);
    return { s: r.chance(0.5) ? `array(${g.name})` : `array(&${g.name}[0], ${g.n})`, shape: { kind: 'int' }, els: () => ({ els: (g.value as bigint[]).map((v, i) => ({ kind: 'int', v, c: L(v, `${g.name}[${i}]`) })), end: '1' }) };
  }

  /** Declares a walk once (by its body) and gives its name. */
  private walk(base: string, of: string, yields: string, params?: string[]): string {
    const found = this.walks.find((w) => w.yields === yields && w.of === structOf(this.p, of).schemaName && JSON.stringify(w.params) === JSON.stringify(params));
    if (found) return found.name;
    const name = `${base}${this.walkN++}`;
    this.walks.push({ name, of: structOf(this.p, of).schemaName, yields, ...(params ? { params } : {}) });
    return name;
  }

  // ---- columns ----

  column(name: string): Column | null {
    const r = this.r;
    const env: Env = { self: this.root() };
    try {
      const k = r.int(0, 19);
      if (k <= 9) {
        const t = this.int(r.int(0, 4), undefined);
        // Sometimes through a named walk of the root: inlined or called, the answer is the same.
        const s = r.chance(0.2) ? `${this.walk('fz_w', ROOT, t.s)}(self)` : t.s;
        return this.intColumn(name, s, t.ev(env));
      }
      if (k <= 14) return this.aggregate(name, env);
      if (k === 15) {
        const sq = this.seq();
        const n = r.int(0, 4);
        const pick = sq.shape?.kind === 'loc' ? this.path(sq.shape.st, 1) : null;
        if (!pick) return null;
        const { els, err } = sq.els(env);
        if (err) return null;
        const s = pick.s.replace('@', `nth(${sq.s}, ${n})`);
        if (n >= els.length) return { name, expr: s, twin: { error: `nth(${n}): the walk has ${els.length} elements` }, expect: { error: `nth` } };
        return this.intColumn(name, s, pick.ev((els[n] as { loc: Loc }).loc));
      }
      if (k === 16) {
        const which = r.pick(['head', 'fx', 'tree', 'parr']);
        if (which === 'parr') {
          const i = r.int(0, (env.self.vals.parr as unknown[]).length - 1);
          return { name, expr: `self.parr[${i}]`, twin: { ptr: `(${env.self.c})->parr[${i}]` }, expect: { unknown: true } };
        }
        return { name, expr: r.chance(0.5) ? `self.${which}` : `fz_root.${which}`, twin: { ptr: `(${env.self.c})->${which}` }, expect: { unknown: true } };
      }
      // Text.
      const s = env.self.vals.s as Vals;
      const k2 = r.int(0, 4);
      if (k2 === 0) return { name, expr: 'str(self.s)', twin: { bytes: `(${env.self.c})->s.data`, len: `(${env.self.c})->s.len` }, expect: { text: escape(s.data as Buffer) } };
      if (k2 === 1) {
        const n = r.int(0, (s.data as Buffer).length);
        return { name, expr: `str(self.s.data, ${n})`, twin: { bytes: `(${env.self.c})->s.data`, len: `${n}` }, expect: { text: escape((s.data as Buffer).subarray(0, n)) } };
      }
      if (k2 === 2) {
        const cp = env.self.vals.cp as Buffer | null;
        return { name, expr: 'cstr(self.cp)', twin: { cstr: `(${env.self.c})->cp` }, expect: { text: cp ? escape(cp) : '' } };
      }
      const f = structOf(this.p, ROOT).fields.find((x) => x.name === 'name') as Field & { kind: 'cbuf' };
      const b = env.self.vals.name as Buffer;
      const nul = b.indexOf(0);
      return { name, expr: k2 === 3 ? 'str(self.name)' : 'self.name', twin: { cbuf: `(${env.self.c})->name`, n: f.n }, expect: { text: escape(nul < 0 ? b : b.subarray(0, nul)) } };
    } catch (e) {
      if (e instanceof Unsafe) return null;
      throw e;
    }
  }

  private intColumn(name: string, expr: string, v: V): Column {
    if (isErr(v)) return { name, expr, twin: v.err === 'out of bounds' ? { error: 'out of bounds' } : { c: v.c }, expect: { error: v.err } };
    return { name, expr, twin: { c: v.c }, expect: { int: String(v.v) } };
  }

  private aggregate(name: string, env: Env): Column | null {
    const r = this.r;
    let sq = this.seq();
    let take: number | null = null;
    if (r.chance(0.2)) {
      take = r.int(0, 4);
      sq = { ...sq, s: `take(${sq.s}, ${take})` };
    }
    const fn = r.pick(['count', 'count', 'sum', 'min', 'max', 'all', 'any', 'each'] as const);
    const body = fn === 'count' && r.chance(0.5) ? null : this.int(r.int(0, 2), sq.shape);
    const { els: all, end, err: seqErr } = sq.els(env);
    const els = take === null ? all : all.slice(0, take);
    const items: string[] = [];
    const vals: bigint[] = [];
    let err: string | null = seqErr ?? null;
    for (const it of err ? [] : els) {
      if (!body) {
        vals.push(1n);
        items.push('1');
        continue;
      }
      const v = body.ev({ ...env, it });
      items.push(v.c);
      if (isErr(v)) {
        err = v.err;
        if (v.err === 'out of bounds') throw new Unsafe(); // gdb would read past the array: no twin
        break;
      }
      vals.push(v.v);
      if ((fn === 'all' && v.v === 0n) || (fn === 'any' && v.v !== 0n)) break;
    }
    const expr = `${fn}(${sq.s}${body ? `, ${body.s}` : ''})`;
    const twin: Twin = { agg: fn, items, end: take === null ? end : '1' };
    if (err) return { name, expr, twin, expect: { error: err } };
    const truthy = vals.map((v) => v !== 0n);
    const sum = vals.reduce((a, b) => a + b, 0n);
    if (!fits(sum)) throw new Unsafe();
    const ex: Expect =
      fn === 'count'
        ? { int: String(truthy.filter(Boolean).length) }
        : fn === 'sum'
          ? { int: String(sum) }
          : fn === 'min' || fn === 'max'
            ? vals.length
              ? { int: String(vals.reduce((a, b) => ((fn === 'min' ? b < a : b > a) ? b : a))) }
              : { null: true }
            : fn === 'all'
              ? { int: truthy.every(Boolean) ? '1' : '0' }
              : fn === 'any'
                ? { int: truthy.some(Boolean) ? '1' : '0' }
                : { list: vals.map(String) };
    return { name, expr, twin, expect: ex };
  }

  generate(columns: number): Case {
    const cols: Column[] = [];
    for (let tries = 0; cols.length < columns && tries < columns * 5; tries++) {
      const c = this.column(`c${cols.length}`);
      if (c) cols.push(c);
    }
    // Only the walks the columns call.
    const used = this.walks.filter((w) => cols.some((c) => c.expr.includes(`${w.name}(`)));
    return { columns: cols, walks: used };
  }
}

/** Text as the schema language shows it: printable ASCII but the backslash, else \xNN. */
export function escape(b: Buffer): string {
  return [...b].map((c) => (c >= 0x20 && c <= 0x7e && c !== 0x5c ? String.fromCharCode(c) : `\\x${c.toString(16).padStart(2, '0')}`)).join('');
}

// ---- the schema file ----

function declare(p: Program, f: Field): string {
  switch (f.kind) {
    case 'int':
      return f.ty.signed ? 'int' : 'uint';
    case 'arr':
      return `${intName(f.ty)}[${f.n}]`;
    case 'ptr':
      return `ptr ${structOf(p, f.to).schemaName}`;
    case 'ptrarr':
      return `ptr ${structOf(p, f.to).schemaName}[${f.n}]`;
    case 'sub':
      return structOf(p, f.struct).schemaName;
    case 'cbuf':
      return `char[${f.n}]`;
    case 'cptr':
      return 'ptr char';
  }
}

function fieldsOf(p: Program, st: Struct, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of st.fields) {
    if (f.kind === 'sub' && f.dotted) Object.assign(out, fieldsOf(p, structOf(p, f.struct), `${prefix}${f.name}.`));
    else out[prefix + f.name] = declare(p, f);
  }
  return out;
}

/** The schema: every type and global, the walks, and one view of the root (or, for the layout, just its address). */
export function schemaYaml(p: Program, c?: Case): string {
  const types: Record<string, { fields: Record<string, string> }> = {};
  for (const st of p.structs.values()) types[st.schemaName] = { fields: fieldsOf(p, st) };
  const globals: Record<string, string> = { fz_root: structOf(p, ROOT).schemaName };
  for (const g of p.globals) globals[g.name] = g.n === undefined ? (g.ty.signed ? 'int' : 'uint') : `${intName(g.ty)}[${g.n}]`;
  const walks: Record<string, object> = {};
  for (const w of c?.walks ?? []) walks[w.name] = { of: w.of, ...(w.params ? { params: w.params } : {}), yields: w.yields };
  const columns: Record<string, string> = { addr: 'self' };
  for (const col of c?.columns ?? []) columns[col.name] = col.expr;
  const doc = { xwalk: 1, pack: 'fuzz', doc: `fuzz program ${p.seed}`, types, globals, ...(c?.walks.length ? { walks } : {}), views: { fz: { of: structOf(p, ROOT).schemaName, roots: { r: '&fz_root' }, columns } } };
  return YAML.stringify(doc, { lineWidth: 0 });
}

export { STR, UNION, LINK };
