/**
 * Compiles the IR's typed expressions into JavaScript closures over one
 * snapshot, with every offset and size from the bound layout resolved
 * once. The walks mirror the C idioms they read (chain, ngx_list,
 * ngx_queue, rbtree) and are bounded: node limits, cycle detection
 * (Brent), queue back-link checks, tree depth.
 */
import type { Pointee, TExpr, VType, Walk } from '../generators/ir.ts';
import type { BoundLayout } from './bound-layout.ts';
import { clockValue, type ClockReading } from './clock.ts';
import { hex } from './memory.ts';
import type { Chunk, Snapshot } from './snapshot.ts';
import type { SymbolTable } from './symbols.ts';
import { type Limits, WalkError } from './walk-error.ts';

export type Value = number | string;
export type Env = Value[];
export type NumFn = (env: Env) => number;
export type StrFn = (env: Env) => string;
export type AnyFn = (env: Env) => Value;
/** Calls visit for each element; stops early when visit returns false, and then returns false. */
export type SeqFn = (env: Env, visit: (v: Value) => boolean) => boolean;

export interface Runtime {
  snap: Snapshot;
  layout: BoundLayout;
  symbols: SymbolTable;
  limits: Limits;
  /** Elements yielded so far by every walk of this sample (bounded by limits.maxTotal). */
  visited: number;
  /** What now_ms() and monotonic_ms() read in this sample (null when the view reads no clock). */
  clock: ClockReading | null;
}

const MAX_STRING = 4096;
const TWO32 = 4294967296;
const EMPTY_CHUNK: Chunk = { start: 0, end: 0, view: new DataView(new ArrayBuffer(8)), used: new Uint8Array(1) };
export const FILE_STATIC_UNAVAILABLE = "file_static(): the binary has no .symtab (it is stripped), so the statics of its C files have no names";
const MAX_CSTRING = 1024;
const MAX_TREE_DEPTH = 128;

export class Compiler {
  constructor(private readonly rt: Runtime) {}

  any(e: TExpr): AnyFn {
    return e.type.k === 'str' ? this.str(e) : this.num(e);
  }

  num(e: TExpr): NumFn {
    const { snap, layout } = this.rt;
    switch (e.op) {
      case 'num': {
        const v = e.value;
        return () => v;
      }
      case 'var': {
        const slot = e.slot;
        return (env) => env[slot] as number;
      }
      case 'global':
        return this.global(e);
      case 'field': {
        const base = this.num(e.base);
        const f = layout.field(e.struct, e.field);
        const off = f.offset;
        if (e.ftype.k === 'struct') return (env) => base(env) + off;
        if (e.ftype.k === 'int') return this.loadInt(base, off, f.size, e.ftype.signed, f.bit, f.bits);
        return (env) => snap.u64(base(env) + off);
      }
      case 'addrof': {
        const base = this.num(e.base);
        const off = layout.field(e.struct, e.field).offset;
        return (env) => base(env) + off;
      }
      case 'deref': {
        const arg = this.num(e.arg);
        return this.load(e.pointee, arg);
      }
      case 'index': {
        const base = this.num(e.base);
        const index = this.num(e.index);
        const size = layout.sizeOf(e.pointee);
        return this.load(e.pointee, (env) => base(env) + index(env) * size);
      }
      case 'unary':
        return this.unary(e.o, this.num(e.arg));
      case 'binary':
        return this.binary(e.o, this.num(e.left), this.num(e.right));
      case 'cond': {
        const test = this.num(e.test);
        const then = this.num(e.then);
        const els = this.num(e.else);
        return (env) => (test(env) ? then(env) : els(env));
      }
      case 'sizeof': {
        const v = layout.sizeOf(e.of);
        return () => v;
      }
      case 'offsetof': {
        const v = layout.field(e.struct, e.field).offset;
        return () => v;
      }
      case 'cast':
        return this.num(e.arg);
      case 'chunk_size': {
        // glibc keeps the chunk size, flags in the low 3 bits, just below the user pointer.
        const arg = this.num(e.arg);
        return (env) => {
          const p = arg(env);
          if (p === 0) return 0;
          return Math.floor(snap.u64(p - 8) / 8) * 8;
        };
      }
      case 'aggregate':
        return this.aggregate(e);
      case 'clock': {
        const rt = this.rt;
        const which = e.which;
        return () => clockValue(rt.clock, which);
      }
      case 'file_static': {
        const fn = this.num(e.fn);
        const name = e.name;
        const symbols = this.rt.symbols;
        return (env) => {
          const a = symbols.fileStatic(fn(env), name);
          if (a === undefined) throw new WalkError('unavailable', FILE_STATIC_UNAVAILABLE);
          return a ?? 0;
        };
      }
      case 'str':
      case 'symbol':
      case 'walk':
        throw new Error(`internal: ${e.op} is not a number`);
    }
  }

  str(e: TExpr): StrFn {
    if (e.op === 'str') {
      const data = this.num(e.data);
      if (e.len === null) return (env) => this.cstring(data(env));
      const len = this.num(e.len);
      return (env) => this.string(data(env), len(env));
    }
    if (e.op === 'symbol') {
      const arg = this.num(e.arg);
      return (env) => {
        const a = arg(env);
        const s = this.rt.symbols.symbolize(a);
        return s ? (s.offset ? `${s.name}+${hex(s.offset)}` : s.name) : a === 0 ? 'NULL' : hex(a);
      };
    }
    if (e.op === 'cond') {
      const test = this.num(e.test);
      const then = this.str(e.then);
      const els = this.str(e.else);
      return (env) => (test(env) ? then(env) : els(env));
    }
    if (e.op === 'var') {
      const slot = e.slot;
      return (env) => env[slot] as string;
    }
    throw new Error(`internal: ${e.op} is not a string`);
  }

  seq(e: TExpr): SeqFn {
    if (e.op !== 'walk') {
      // A single value used where a walk is expected (a root).
      const v = this.any(e);
      return (env, visit) => visit(v(env));
    }
    return this.walk(e.walk);
  }

  // ---- memory ----

  /** A global's address is looked up when the walk needs it: a missing symbol fails that walk, not the sample. */
  private global(e: Extract<TExpr, { op: 'global' }>): NumFn {
    const found = this.rt.symbols.address(e.name);
    const name = e.name;
    const addr: NumFn = () => {
      if (found === null) throw new WalkError('corrupt', `the symbol ${name} is not in the binary's symbol tables`);
      return found;
    };
    if (e.decl.k === 'struct') return addr;
    const g = this.rt.layout.global(e.name);
    if (e.decl.k === 'int') return this.loadInt(addr, 0, g.size, e.decl.signed);
    const snap = this.rt.snap;
    return (env) => snap.u64(addr(env));
  }

  private loadInt(base: NumFn, off: number, size: number, signed: boolean, bit?: number, bits?: number): NumFn {
    const snap = this.rt.snap;
    if (bits !== undefined) {
      // A bitfield: read the bytes that hold it and shift (little-endian, at most 32 bits wide here).
      const bytes = Math.ceil(((bit ?? 0) + bits) / 8);
      const shift = bit ?? 0;
      return (env) => {
        const b = snap.bytes(base(env) + off, bytes);
        let v = 0;
        for (let i = bytes - 1; i >= 0; i--) v = v * 256 + b[i];
        v = Math.floor(v / 2 ** shift) % 2 ** bits;
        return signed && v >= 2 ** (bits - 1) ? v - 2 ** bits : v;
      };
    }
    if (size === 8 && !signed) return (env) => snap.u64(base(env) + off);
    return (env) => snap.int(base(env) + off, size, signed);
  }

  private load(p: Pointee, addr: NumFn): NumFn {
    const snap = this.rt.snap;
    switch (p.k) {
      case 'struct':
        return addr;
      case 'ptr':
        return (env) => snap.u64(addr(env));
      case 'int': {
        const { size, signed } = p;
        return (env) => snap.int(addr(env), size, signed);
      }
      case 'void':
        throw new Error('internal: load of void');
    }
  }

  private string(data: number, len: number): string {
    if (len < 0) throw new WalkError('corrupt', `string at ${hex(data)}: negative length ${len}`);
    if (!(len > 0)) return ''; // 0, or NaN (no value)
    const n = Math.min(len, MAX_STRING);
    const s = escapeBytes(this.rt.snap.bytes(data, n));
    return n < len ? s + '...' : s;
  }

  private cstring(data: number): string {
    if (data === 0) return '';
    const snap = this.rt.snap;
    const out: number[] = [];
    for (let i = 0; i < MAX_CSTRING; i++) {
      const c = snap.u8(data + i);
      if (c === 0) return escapeBytes(Uint8Array.from(out));
      out.push(c);
    }
    return escapeBytes(Uint8Array.from(out)) + '...';
  }

  // ---- arithmetic ----

  private unary(o: string, a: NumFn): NumFn {
    switch (o) {
      case '-':
        return (env) => -a(env);
      case '!':
        return (env) => (a(env) ? 0 : 1);
      case '~':
        return (env) => {
          const v = a(env);
          return Number.isFinite(v) ? int64(~BigInt(Math.trunc(v))) : NaN;
        };
      default:
        throw new Error(`internal: unary ${o}`);
    }
  }

  private binary(o: string, a: NumFn, b: NumFn): NumFn {
    switch (o) {
      case '+':
        return (env) => a(env) + b(env);
      case '-':
        return (env) => a(env) - b(env);
      case '*':
        return (env) => a(env) * b(env);
      case '/':
        return (env) => Math.trunc(a(env) / nonZero(b(env)));
      case '%':
        return (env) => a(env) % nonZero(b(env));
      case '==':
        return (env) => (a(env) === b(env) ? 1 : 0);
      case '!=':
        return (env) => (a(env) !== b(env) ? 1 : 0);
      case '<':
        return (env) => (a(env) < b(env) ? 1 : 0);
      case '<=':
        return (env) => (a(env) <= b(env) ? 1 : 0);
      case '>':
        return (env) => (a(env) > b(env) ? 1 : 0);
      case '>=':
        return (env) => (a(env) >= b(env) ? 1 : 0);
      case '&&':
        return (env) => (a(env) && b(env) ? 1 : 0);
      case '||':
        return (env) => (a(env) || b(env) ? 1 : 0);
      case '&':
      case '|':
      case '^':
      case '<<':
      case '>>':
        return (env) => bitwise(o, a(env), b(env));
      default:
        throw new Error(`internal: binary ${o}`);
    }
  }

  // ---- walks ----

  private walk(w: Walk): SeqFn {
    switch (w.w) {
      case 'chain':
        return this.chain(w);
      case 'array':
        return this.array(w);
      case 'ngx_list':
        return this.ngxList(w);
      case 'ngx_queue':
        return this.ngxQueue(w);
      case 'rbtree':
        return this.rbtree(w);
      case 'each': {
        const seq = this.seq(w.seq);
        const slot = w.slot;
        if (w.body.type.k === 'seq') {
          const inner = this.seq(w.body);
          return (env, visit) =>
            seq(env, (v) => {
              env[slot] = v;
              return inner(env, visit);
            });
        }
        const body = this.any(w.body);
        return (env, visit) =>
          seq(env, (v) => {
            env[slot] = v;
            return visit(body(env));
          });
      }
      case 'filter': {
        const seq = this.seq(w.seq);
        const slot = w.slot;
        const pred = this.num(w.body);
        return (env, visit) =>
          seq(env, (v) => {
            env[slot] = v;
            return pred(env) ? visit(v) : true;
          });
      }
      case 'take_while': {
        const seq = this.seq(w.seq);
        const slot = w.slot;
        const pred = this.num(w.body);
        return (env, visit) => {
          let ended = false;
          const whole = seq(env, (v) => {
            env[slot] = v;
            if (!pred(env)) {
              ended = true;
              return false;
            }
            return visit(v);
          });
          return whole || ended;
        };
      }
      case 'iterate': {
        const first = this.num(w.first);
        const next = this.num(w.next);
        const slot = w.slot;
        const limits = this.rt.limits;
        return (env, visit) => {
          let p = first(env);
          let n = 0;
          let tortoise = p;
          let power = 1;
          try {
            while (p !== 0) {
              if (++n > limits.maxNodes) throw this.tooMany('iterate()');
              if (!visit(p)) return false;
              env[slot] = p;
              p = next(env);
              if (p === tortoise && p !== 0) throw new WalkError('cycle', `iterate(): cycle at ${hex(p)} after ${n} elements`);
              if (n === power) {
                tortoise = p;
                power *= 2;
              }
            }
            return true;
          } finally {
            this.spend(n);
          }
        };
      }
      case 'range': {
        const count = this.num(w.count);
        const limits = this.rt.limits;
        return (env, visit) => {
          const n = count(env);
          if (n < 0) throw new WalkError('corrupt', `range(${n}): negative count`);
          if (n > limits.maxNodes) throw this.tooMany(`range(${n})`);
          this.spend(n);
          for (let i = 0; i < n; i++) if (!visit(i)) return false;
          return true;
        };
      }
      case 'one': {
        const v = this.any(w.value);
        return (env, visit) => visit(v(env));
      }
    }
  }

  /** Counts a finished walk's elements against the sample's total budget. */
  private spend(n: number): void {
    this.rt.visited += n;
    if (this.rt.visited > this.rt.limits.maxTotal) throw new WalkError('limit', `the sample visited more than ${this.rt.limits.maxTotal} elements in all (--max-nodes x 10)`);
  }

  private tooMany(what: string): WalkError {
    return new WalkError('limit', `${what} has more than ${this.rt.limits.maxNodes} elements (--max-nodes)`);
  }

  /**
   * chain(first, next): p, p->next, ... until NULL. Cycles are found in O(1)
   * memory (Brent): the tortoise jumps to the hare at steps 1, 2, 4, 8, ...,
   * so a cycle is seen within two of its lengths past where it starts.
   */
  private chain(w: Extract<Walk, { w: 'chain' }>): SeqFn {
    const { snap, layout, limits } = this.rt;
    const first = this.num(w.first);
    const off = layout.field(w.struct, w.next).offset;
    // Alignments are powers of two; `p & mask` looks at the low bits of any p below 2^53.
    const mask = Math.min(layout.align(w.struct), 8) - 1;
    const what = `${w.struct}.${w.next} chain`;
    return (env, visit) => {
      let p = first(env);
      let n = 0;
      let tortoise = p;
      let power = 1;
      try {
        while (p !== 0) {
          if ((p & mask) !== 0) throw new WalkError('corrupt', `${what}: ${hex(p)} is not aligned for ${w.struct}`);
          if (++n > limits.maxNodes) throw this.tooMany(what);
          if (!visit(p)) return false;
          p = snap.u64(p + off);
          if (p === tortoise && p !== 0) throw new WalkError('cycle', `${what}: cycle at ${hex(p)} after ${n} elements`);
          if (n === power) {
            tortoise = p;
            power *= 2;
          }
        }
        return true;
      } finally {
        this.spend(n);
      }
    };
  }

  private array(w: Extract<Walk, { w: 'array' }>): SeqFn {
    const { limits, layout } = this.rt;
    const base = this.num(w.base);
    const count = this.num(w.count);
    const size = layout.sizeOf(w.elem);
    const load = this.load(w.elem, (env) => env[0] as number);
    const isStruct = w.elem.k === 'struct';
    const scratch: Env = [0];
    return (env, visit) => {
      const b = base(env);
      const n = count(env);
      if (n < 0) throw new WalkError('corrupt', `array at ${hex(b)}: negative count ${n}`);
      if (n > limits.maxNodes) throw new WalkError('limit', `array at ${hex(b)}: count ${n} is more than --max-nodes (${limits.maxNodes})`);
      if (n > 0 && b === 0) throw new WalkError('corrupt', `array of ${n} elements at NULL`);
      this.spend(n);
      for (let i = 0; i < n; i++) {
        const a = b + i * size;
        let v: number;
        if (isStruct) v = a;
        else {
          scratch[0] = a;
          v = load(scratch);
        }
        if (!visit(v)) return false;
      }
      return true;
    };
  }

  /** ngx_list(l, T): for part = &l->part; part; part = part->next: elts[0 .. nelts). */
  private ngxList(w: Extract<Walk, { w: 'ngx_list' }>): SeqFn {
    const { snap, layout, limits } = this.rt;
    const list = this.num(w.list);
    const partOff = layout.field(w.listStruct, 'part').offset;
    const elts = layout.field(w.partStruct, 'elts');
    const nelts = layout.field(w.partStruct, 'nelts');
    const next = layout.field(w.partStruct, 'next').offset;
    const size = layout.sizeOf(w.elem);
    const load = this.load(w.elem, (env) => env[0] as number);
    const isStruct = w.elem.k === 'struct';
    const scratch: Env = [0];
    return (env, visit) => {
      let part = list(env) + partOff;
      let n = 0;
      let parts = 0;
      let tortoise = part;
      let power = 1;
      try {
        while (part !== 0) {
          if (++parts > limits.maxNodes) throw this.tooMany('ngx_list parts');
          const base = snap.u64(part + elts.offset);
          const count = snap.int(part + nelts.offset, nelts.size, false);
          if (count > limits.maxNodes - n) throw this.tooMany(`ngx_list at ${hex(part)}`);
          if (count > 0 && base === 0) throw new WalkError('corrupt', `ngx_list part ${hex(part)}: ${count} elements at NULL`);
          for (let i = 0; i < count; i++) {
            n++;
            let v = base + i * size;
            if (!isStruct) {
              scratch[0] = v;
              v = load(scratch);
            }
            if (!visit(v)) return false;
          }
          part = snap.u64(part + next);
          if (part === tortoise && part !== 0) throw new WalkError('cycle', `ngx_list: the parts form a cycle at ${hex(part)}`);
          if (parts === power) {
            tortoise = part;
            power *= 2;
          }
        }
        return true;
      } finally {
        this.spend(n);
      }
    };
  }

  /** ngx_queue(h, T, link): q = h->next until h, each checked by q->next->prev == q; yields container-of. */
  private ngxQueue(w: Extract<Walk, { w: 'ngx_queue' }>): SeqFn {
    const { snap, layout, limits } = this.rt;
    const head = this.num(w.head);
    const nextOff = layout.field(w.queueStruct, 'next').offset;
    const prevOff = layout.field(w.queueStruct, 'prev').offset;
    const link = layout.field(w.struct, w.link).offset;
    return (env, visit) => {
      const h = head(env);
      let prev = h;
      let cur = snap.u64(h + nextOff);
      let n = 0;
      try {
        while (cur !== h) {
          if (cur === 0) throw new WalkError('corrupt', `ngx_queue ${hex(h)}: NULL next after ${hex(prev)}`);
          const back = snap.u64(cur + prevOff);
          if (back !== prev) throw new WalkError('corrupt', `ngx_queue ${hex(h)}: ${hex(prev)}'s next ${hex(cur)} has prev ${hex(back)}`);
          if (++n > limits.maxNodes) throw this.tooMany(`ngx_queue ${hex(h)}`);
          if (!visit(cur - link)) return false;
          prev = cur;
          cur = snap.u64(cur + nextOff);
        }
        return true;
      } finally {
        this.spend(n);
      }
    };
  }

  /** rbtree(t, T, node): in-order from t->root, stopping at t->sentinel; depth-bounded. */
  private rbtree(w: Extract<Walk, { w: 'rbtree' }>): SeqFn {
    const { snap, layout, limits } = this.rt;
    const tree = this.num(w.tree);
    const rootOff = layout.field(w.treeStruct, 'root').offset;
    const sentinelOff = layout.field(w.treeStruct, 'sentinel').offset;
    const left = layout.field(w.nodeStruct, 'left').offset;
    const right = layout.field(w.nodeStruct, 'right').offset;
    const nodeOff = layout.field(w.struct, w.node).offset;
    return (env, visit) => {
      const tr = tree(env);
      const sentinel = snap.u64(tr + sentinelOff);
      const stack: number[] = [];
      let cur = snap.u64(tr + rootOff);
      let n = 0;
      const child = (p: number, off: number, side: string) => {
        const c = snap.u64(p + off);
        if (c === 0) throw new WalkError('corrupt', `rbtree ${hex(tr)}: node ${hex(p)} has a NULL ${side} child (the sentinel is ${hex(sentinel)})`);
        return c;
      };
      try {
        if (cur === 0) throw new WalkError('corrupt', `rbtree ${hex(tr)}: NULL root (an empty tree points at its sentinel)`);
        while (cur !== sentinel || stack.length > 0) {
          while (cur !== sentinel) {
            if (stack.length >= MAX_TREE_DEPTH) throw new WalkError('corrupt', `rbtree ${hex(tr)}: deeper than ${MAX_TREE_DEPTH} (a cycle, or not a red-black tree)`);
            stack.push(cur);
            cur = child(cur, left, 'left');
          }
          cur = stack.pop()!;
          if (++n > limits.maxNodes) throw this.tooMany(`rbtree ${hex(tr)}`);
          if (!visit(cur - nodeOff)) return false;
          cur = child(cur, right, 'right');
        }
        return true;
      } finally {
        this.spend(n);
      }
    };
  }

  // ---- aggregates ----

  /**
   * count() or sum() over a chain, as one loop: no visit or body closure per
   * element where the body is a whole-word field of the element (the hot case:
   * a list's values, a pool's blocks). The same order, bounds, errors and
   * budget as chain() followed by the aggregate.
   */
  private chainAggregate(e: Extract<TExpr, { op: 'aggregate' }>): NumFn | null {
    if (e.seq.op !== 'walk' || e.seq.walk.w !== 'chain' || (e.fn !== 'count' && e.fn !== 'sum')) return null;
    const w = e.seq.walk;
    const { snap, layout, limits } = this.rt;
    const first = this.num(w.first);
    const off = layout.field(w.struct, w.next).offset;
    const mask = Math.min(layout.align(w.struct), 8) - 1;
    const what = `${w.struct}.${w.next} chain`;
    const slot = e.slot;
    const misaligned = (p: number) => new WalkError('corrupt', `${what}: ${hex(p)} is not aligned for ${w.struct}`);
    const cycle = (p: number, n: number) => new WalkError('cycle', `${what}: cycle at ${hex(p)} after ${n} elements`);
    const field = e.fn === 'sum' && e.body ? this.wordField(e.body, slot) : -1;
    const body = e.body && field < 0 ? this.num(e.body) : null;
    const counting = e.fn === 'count';
    // The chunks being read live in locals: two bounds checks and two DataView reads per word,
    // no call (a call would box every double it returns). Each read site keeps its own chunk,
    // so both miss on the first element and the optimizer has seen every path before it runs.
    return (env) => {
      let p = first(env);
      let n = 0;
      let tortoise = p;
      let power = 1;
      let acc = 0;
      let fc = EMPTY_CHUNK;
      let fStart = 0;
      let fEnd = 0;
      let fView = fc.view;
      let fUsed = fc.used;
      let nc = EMPTY_CHUNK;
      let nStart = 0;
      let nEnd = 0;
      let nView = nc.view;
      let nUsed = nc.used;
      try {
        while (p !== 0) {
          if ((p & mask) !== 0) throw misaligned(p);
          if (++n > limits.maxNodes) throw this.tooMany(what);
          if (field >= 0) {
            const a = p + field;
            if (a < fStart || a + 8 > fEnd) {
              fc = snap.chunk(a, 8);
              fStart = fc.start;
              fEnd = fc.end;
              fView = fc.view;
              fUsed = fc.used;
            }
            fUsed[(a - fStart) >> 6] = 1; // the lines the answer came from (Snapshot.changed())
            fUsed[(a - fStart + 7) >> 6] = 1;
            acc += fView.getUint32(a - fStart, true) + fView.getUint32(a - fStart + 4, true) * TWO32;
          } else if (body === null) acc++;
          else {
            env[slot] = p;
            const v = body(env);
            acc += counting ? (v ? 1 : 0) : v;
          }
          const a = p + off;
          if (a < nStart || a + 8 > nEnd) {
            nc = snap.chunk(a, 8);
            nStart = nc.start;
            nEnd = nc.end;
            nView = nc.view;
            nUsed = nc.used;
          }
          nUsed[(a - nStart) >> 6] = 1;
          nUsed[(a - nStart + 7) >> 6] = 1;
          p = nView.getUint32(a - nStart, true) + nView.getUint32(a - nStart + 4, true) * TWO32;
          if (p === tortoise && p !== 0) throw cycle(p, n);
          if (n === power) {
            tortoise = p;
            power *= 2;
          }
        }
        return acc;
      } finally {
        this.spend(n);
      }
    };
  }

  /** The offset of `it.f` when f is a whole unsigned 8-byte word (or a pointer) of the element; else -1. */
  private wordField(body: TExpr, slot: number): number {
    if (body.op !== 'field' || body.base.op !== 'var' || body.base.slot !== slot) return -1;
    const f = this.rt.layout.field(body.struct, body.field);
    const word = body.ftype.k === 'ptr' || body.ftype.k === 'fnptr' || (body.ftype.k === 'int' && !body.ftype.signed && f.size === 8 && f.bits === undefined);
    return word ? f.offset : -1;
  }

  private aggregate(e: Extract<TExpr, { op: 'aggregate' }>): NumFn {
    const loop = this.chainAggregate(e);
    if (loop) return loop;
    const seq = this.seq(e.seq);
    const slot = e.slot;
    const body = e.body ? this.num(e.body) : null;
    switch (e.fn) {
      case 'count':
        if (!body)
          return (env) => {
            let n = 0;
            seq(env, () => {
              n++;
              return true;
            });
            return n;
          };
        return (env) => {
          let n = 0;
          seq(env, (v) => {
            env[slot] = v;
            if (body(env)) n++;
            return true;
          });
          return n;
        };
      case 'sum':
        return (env) => {
          let s = 0;
          seq(env, (v) => {
            env[slot] = v;
            s += body!(env);
            return true;
          });
          return s;
        };
      case 'min':
      case 'max': {
        const better = e.fn === 'min' ? (a: number, b: number) => a < b : (a: number, b: number) => a > b;
        return (env) => {
          let best = NaN;
          seq(env, (v) => {
            env[slot] = v;
            const x = body!(env);
            if (Number.isNaN(best) || better(x, best)) best = x;
            return true;
          });
          return best;
        };
      }
      case 'all':
        return (env) => {
          let ok = 1;
          seq(env, (v) => {
            env[slot] = v;
            if (!body!(env)) ok = 0;
            return ok === 1;
          });
          return ok;
        };
      case 'any':
        return (env) => {
          let found = 0;
          seq(env, (v) => {
            env[slot] = v;
            if (body!(env)) found = 1;
            return found === 0;
          });
          return found;
        };
    }
  }
}

function nonZero(v: number): number {
  if (v === 0) throw new WalkError('corrupt', 'division by zero');
  return v;
}

/**
 * A 64-bit result as a double: with bit 63 set it is taken as signed, so
 * masks such as ~7 (-8) stay exact; as unsigned (2^64 - 8) a double would
 * round it to 2^64, and x & ~7 would be 0. bitwise() reads either form back.
 */
function int64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

/** 64-bit two's complement bit operations; NaN (no value, e.g. max() of nothing) stays NaN. */
function bitwise(o: string, a: number, b: number): number {
  if (!Number.isFinite(a) || !Number.isFinite(b)) return NaN;
  const x = BigInt.asUintN(64, BigInt(Math.trunc(a)));
  const y = BigInt.asUintN(64, BigInt(Math.trunc(b)));
  if ((o === '<<' || o === '>>') && y >= 64n) return 0; // C leaves it undefined; BigInt would run out of memory
  switch (o) {
    case '&':
      return int64(x & y);
    case '|':
      return int64(x | y);
    case '^':
      return int64(x ^ y);
    case '<<':
      return int64(x << y);
    default:
      return int64(x >> y);
  }
}

/** Bytes as text: printable ASCII kept, backslash and everything else escaped as \xNN. Python does the same. */
export function escapeBytes(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : '\\x' + c.toString(16).padStart(2, '0');
  return s;
}

export function formatValue(v: Value, t: VType): Value | null {
  if (typeof v === 'string') return v;
  if (Number.isNaN(v)) return null;
  if (t.k === 'ptr' || t.k === 'ref' || t.k === 'fnptr') return hex(v);
  return v;
}
