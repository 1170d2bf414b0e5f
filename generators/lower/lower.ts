/**
 * Lowering: typed expressions (ir.ts) into the loop IR (lir.ts). Every
 * idiom's semantics lives here once: how each walk steps, where it is
 * bounded (--max-nodes, the sample's budget, tree depth), how cycles are
 * found (Brent), which back links are checked, and the words of every
 * error. The printers only spell the result.
 *
 * Shapes:
 * - A column or a check is a value function of self.
 * - A root is a seq function: it calls its visitor with each element.
 * - An aggregate (count, sum, min, max, all, any) is a value function of
 *   the variables it uses; the walk it folds is written into it as loops
 *   (no visitor per element), and stopping early (all, any) is a return.
 * - A walk that must stop on its own while its consumer goes on
 *   (take_while) is a seq function, called with a visitor.
 * - Aggregates of self over one walk in a view (count, sum, min, max,
 *   all, any; filter(W, p) and each(W, f) around the walk are their own)
 *   are a grouped fold: one value function walks W once a row and updates
 *   every aggregate's accumulator, keeping each one's failure apart; each
 *   use reads its slot of the record (memo, as a view's let:).
 */
import type { Container, Pointee, TExpr, ViewIR, Walk } from '../ir.ts';
import {
  type ColumnKind,
  decArg,
  fail,
  hexArg,
  if_,
  int,
  type LExpr,
  type LFunc,
  type LProgram,
  type LStmt,
  type LView,
  let_,
  load64,
  set,
  v,
  add,
  bin,
  jsonOf,
} from './lir.ts';
import { canonical } from './canon.ts';
import { lowerReach, lowerReachParent, lowerReachPath, type ReachLowerer } from './reach.ts';
import { reachedFrom } from './reads.ts';

/** Passes an element on; `stop` are the statements that end the whole walk (they differ inside a visitor). */
type Emit = (elem: LExpr, stop: LStmt[]) => LStmt[];

export const FILE_STATIC_UNAVAILABLE = 'file_static(): the binary has no .symtab (it is stripped), so the statics of its C files have no names';

const slotVar = (slot: number): string => (slot === 0 ? 's' : `i${slot}`);
const TRUE = int(1);
const FALSE = int(0);
const not = (e: LExpr): LExpr => ({ k: 'un', op: '!', a: e });
const eq = (a: LExpr, b: LExpr) => bin('==', a, b);
const ne = (a: LExpr, b: LExpr) => bin('!=', a, b);
const gt = (a: LExpr, b: LExpr) => bin('>', a, b);
/** A counter's step: bounded by --max-nodes, so a plain add in every back end. */
const inc = (name: string): LStmt => set(name, { ...bin('+', v(name), int(1)), small: true } as LExpr);
const maxNodes: LExpr = { k: 'state', name: 'maxNodes' };

/** The function of a program being built: fresh names, and the functions made on the way. */
class Builder {
  readonly funcs: LFunc[] = [];
  private n = 0;
  private readonly helpers = new Map<string, string>();

  fresh(prefix: string): string {
    return `${prefix}${++this.n}`;
  }

  add(kind: LFunc['kind'], prefix: string, params: string[], body: LStmt[]): string {
    const name = this.fresh(prefix);
    this.funcs.push({ name, kind, params, body });
    return name;
  }

  /**
   * A helper made once per program: two uses share it only when they would
   * make the same function, so the key is what it is (its kind, parameters
   * and body), never a name chosen by the caller that may leave a part out.
   */
  helper(make: () => Omit<LFunc, 'name'>, prefix = 'h'): string {
    const f = make();
    const key = jsonOf(f);
    let name = this.helpers.get(key);
    if (!name) {
      name = this.fresh(prefix);
      this.helpers.set(key, name);
      this.funcs.push({ name, ...f });
    }
    return name;
  }

  /**
   * A named walk's function, made once per program. Its body is lowered
   * from the walk's body, checked once on its own, so the walk's name and
   * the function's kind say all it is. Named before it is made: a walk's
   * body may call other walks (never itself).
   */
  walk(walk: string, kind: LFunc['kind'], make: () => Omit<LFunc, 'name'>): string {
    const key = `walk ${kind} ${walk}`;
    let name = this.helpers.get(key);
    if (!name) {
      name = this.fresh(`walk_${walk}_`);
      this.helpers.set(key, name);
      const f = { name, kind, params: [], body: [] } as LFunc;
      this.funcs.push(f);
      Object.assign(f, make(), { name });
    }
    return name;
  }
}

/**
 * A view lowered; withInstant: its instant: expressions too (for the eBPF capture; no other back end runs them).
 * fold: aggregates of self over one walk become one grouped fold (not for the kernel, which keeps no failure
 * per aggregate: the eBPF printer refuses one).
 */
export function lowerView(view: ViewIR, withInstant = false, fold = !withInstant): LView {
  const b = new Builder();
  const lw = new Lowerer(b);
  if (fold) lw.planFolds([...view.columns.map((c) => c.expr), ...view.checks.map((c) => c.expr)], view.columns.length);
  const roots = view.roots.map((r) => {
    const body = [...lw.seq(r.expr, (e, stop) => [if_(not({ k: 'visit', e }), stop)], [{ k: 'return', e: FALSE }]), { k: 'return', e: TRUE } as LStmt];
    return { label: r.label, fn: b.add('seq', 'root', [], body) };
  });
  const columns = view.columns.map((c) => ({ name: c.name, fn: b.add('value', 'col', ['s'], lw.column(c.expr)), kind: columnKind(c.expr), list: c.expr.type.k === 'seq', reads: [] as string[] }));
  const checks = view.checks.map((c) => ({ message: c.message, fn: b.add('value', 'check', ['s'], [{ k: 'return', e: lw.expr(c.expr) }]) }));
  const instant = (withInstant ? view.instant : []).map((x) => b.add('value', 'instant', ['s'], lw.column(x.expr)));
  for (const c of columns) c.reads = reachedFrom(b.funcs, [c.fn]).names;
  return { name: view.name, of: view.of, funcs: b.funcs, roots, columns, checks, instant };
}

/** An expression of self (a printer's string, the clock): a value function of s. */
export function lowerValue(e: TExpr): LProgram {
  const { funcs, entries } = lowerValues([e]);
  return { funcs, entry: entries[0] };
}

/** Several expressions of self in one program (the clock's): a value function of s each. */
export function lowerValues(es: TExpr[]): { funcs: LFunc[]; entries: string[] } {
  const b = new Builder();
  const lw = new Lowerer(b);
  const entries = es.map((e) => b.add('value', 'expr', ['s'], [{ k: 'return', e: lw.expr(e) }]));
  return { funcs: b.funcs, entries };
}

/** A column of self as a view shows it: a value, or the list a walk yields. */
export function lowerColumn(e: TExpr): LProgram {
  const b = new Builder();
  return { funcs: b.funcs, entry: b.add('value', 'col', ['s'], new Lowerer(b).column(e)) };
}

/** A walk of self (a printer's children): a seq function of s. */
export function lowerSeqOf(e: TExpr): LProgram {
  const b = new Builder();
  const body = [...new Lowerer(b).seq(e, (x, stop) => [if_(not({ k: 'visit', e: x }), stop)], [{ k: 'return', e: FALSE }]), { k: 'return', e: TRUE } as LStmt];
  return { funcs: b.funcs, entry: b.add('seq', 'walk', ['s'], body) };
}

function columnKind(e: TExpr): ColumnKind {
  const t = e.type.k === 'seq' ? e.type.elem : e.type;
  return t.k === 'ptr' || t.k === 'ref' || t.k === 'fnptr' ? 'addr' : 'value';
}

type AggFn = Extract<TExpr, { op: 'aggregate' }>['fn'];

/** An aggregate of a grouped fold: what it does to each element of the shared walk (filters, maps), and its fn of what passes. */
interface FoldMember {
  fn: AggFn;
  steps: { kind: 'filter' | 'map'; slot: number; e: TExpr }[];
  body: { slot: number; e: TExpr } | null;
}

/** The aggregates of a view over one walk of self: one loop a row, each aggregate reading its slot of the record. */
interface FoldGroup {
  /** The row's memo key: never a name of let: (those are identifiers). */
  key: string;
  base: TExpr;
  members: FoldMember[];
  byKey: Map<string, number>;
  uses: number;
  fn: string | null;
  readers: string[];
  /** Each member's users: the view's columns (by index; -1: a check) whose expressions hold it. */
  users: Set<number>[];
}

class Lowerer {
  constructor(private readonly b: Builder) {}

  /** Each use of an aggregate a grouped fold computes: its group and slot (planFolds). */
  private readonly folded = new Map<TExpr, { g: FoldGroup; i: number }>();
  /** Inside a fold's own function: its aggregates (and any other) are lowered as they are. */
  private folding = false;

  /** The function of each name of a view's let:, by name. */
  private readonly rowlets = new Map<string, string>();

  /** What the breadth-first reach (reach.ts) asks of this lowering; its functions made once, by key. */
  private readonly reachFns = new Map<string, string>();
  private readonly reach: ReachLowerer = {
    expr: (x) => this.expr(x),
    seq: (x, emit, stop) => this.seq(x, emit, stop),
    names: (...p) => this.names(...p),
    slotVar,
    spend,
    freeVars,
    once: (key, make, prefix) => {
      let fn = this.reachFns.get(key);
      if (!fn) {
        fn = this.b.fresh(prefix);
        this.reachFns.set(key, fn);
        const f = { name: fn, kind: 'value', params: [], body: [] } as LFunc;
        this.b.funcs.push(f);
        Object.assign(f, make(), { name: fn });
      }
      return fn;
    },
  };

  // ---- values ----

  expr(e: TExpr): LExpr {
    switch (e.op) {
      case 'num':
        return int(e.value);
      case 'text':
        return { k: 'str', v: e.value };
      case 'cat':
        return { k: 'rt', fn: 'cat', args: e.args.map((a) => this.expr(a)) };
      case 'register':
        return { k: 'rt', fn: 'register', args: [{ k: 'str', v: e.name }] };
      case 'var':
        return v(slotVar(e.slot));
      case 'global':
        return this.global(e);
      case 'field': {
        const base = this.expr(e.base);
        if (e.ftype.k === 'struct' || e.ftype.k === 'array') return add(base, { k: 'off', struct: e.struct, field: e.field });
        if (e.ftype.k === 'int') return { k: 'field', base, struct: e.struct, field: e.field, signed: e.ftype.signed };
        return load64(add(base, { k: 'off', struct: e.struct, field: e.field }));
      }
      case 'addrof':
        return add(this.expr(e.base), { k: 'off', struct: e.struct, field: e.field });
      case 'deref':
        return this.load(e.pointee, this.expr(e.arg));
      case 'index': {
        const at = e.bound ? this.boundedIndex(e, e.bound) : add(this.expr(e.base), bin('*', this.expr(e.index), { k: 'size', of: e.pointee }));
        return e.address ? at : this.load(e.pointee, at);
      }
      case 'unary':
        return { k: 'un', op: e.o as '-' | '!' | '~', a: this.expr(e.arg) };
      case 'binary':
        return this.binary(e.o, this.expr(e.left), this.expr(e.right));
      case 'cond':
        return { k: 'cond', c: this.expr(e.test), a: this.expr(e.then), b: this.expr(e.else) };
      case 'sizeof':
        return { k: 'size', of: e.of };
      case 'offsetof':
        return { k: 'off', struct: e.struct, field: e.field };
      case 'cast':
        return this.expr(e.arg);
      case 'chunk_size': {
        // glibc keeps the chunk's size, its flags in the low 3 bits, in the word below the pointer it returned.
        const p = this.expr(e.arg);
        return { k: 'cond', c: eq(p, int(0)), a: int(0), b: bin('*', bin('/', load64(bin('-', p, int(8))), int(8)), int(8)) };
      }
      case 'str':
        if (e.within !== undefined) return { k: 'rt', fn: 'cstringn', args: [this.expr(e.data), int(e.within)] };
        return e.len === null ? { k: 'rt', fn: 'cstring', args: [this.expr(e.data)] } : this.string(this.expr(e.data), this.expr(e.len));
      case 'symbol':
        return { k: 'rt', fn: 'symbol', args: [this.expr(e.arg)] };
      case 'file_static':
        return this.fileStatic(this.expr(e.fn), e.name);
      case 'clock':
        return { k: 'rt', fn: 'clock', args: [{ k: 'str', v: e.which }] };
      case 'aggregate': {
        const f = this.folding ? undefined : this.folded.get(e);
        return f ? this.foldRead(f.g, f.i) : this.aggregate(e);
      }
      case 'nth':
        return this.nth(e);
      case 'call':
        if (e.type.k === 'seq') throw new Error(`internal: walk ${e.walk} where a value is wanted`);
        return { k: 'call', fn: this.walkFn(e, 'value'), args: [this.expr(e.arg)] };
      case 'walk':
        throw new Error(`internal: a walk (${e.walk.w}) where a value is wanted`);
      case 'let': {
        // A function of the variables the body uses and the name: the value is computed once, where it is called.
        const params = freeVars(e);
        const fn = this.b.add('value', 'let', [...params, slotVar(e.slot)], [{ k: 'return', e: this.expr(e.body) }]);
        return { k: 'call', fn, args: [...params.map(v), this.expr(e.value)] };
      }
      case 'rowlet': {
        // One function per name of the view's let: (its name says all it is; its value is lowered once).
        let fn = this.rowlets.get(e.name);
        if (!fn) {
          fn = this.b.add('value', 'let_', ['s'], [{ k: 'return', e: this.expr(e.value) }]);
          this.rowlets.set(e.name, fn);
        }
        return { k: 'memo', key: e.name, fn, args: [this.expr(e.self)] };
      }
      case 'bswap':
        return { k: 'call', fn: this.bswap(e.size), args: [this.expr(e.arg)] };
      case 'sockaddr':
        return { k: 'call', fn: this.sockaddr(), args: [this.expr(e.arg)] };
      case 'reach_parent':
        return lowerReachParent(this.reach, e);
      case 'enum_name': {
        const name = e.enumName;
        const fn = this.b.helper(() => ({
          kind: 'value',
          params: ['x'],
          body: [
            if_(not({ k: 'hasEnum', enum: name }), [fail('unavailable', `enum_name(): the layout of this build has no enumerators of ${name} (it was made before enums: named it): make it again with xgen layout`)]),
            { k: 'return', e: { k: 'enumName', enum: name, e: v('x') } },
          ],
        }));
        return { k: 'call', fn, args: [this.expr(e.arg)] };
      }
    }
  }

  /** ntohs, ntohl: the low 2 or 4 bytes of x in the other order (x is read once: a helper's parameter). */
  private bswap(size: 2 | 4): string {
    return this.b.helper(() => {
      const byte = (i: number): LExpr => bin('&', i ? bin('>>', v('x'), int(8 * i)) : v('x'), int(0xff));
      let out: LExpr = byte(0);
      for (let i = 1; i < size; i++) out = bin('|', bin('<<', out, int(8)), byte(i));
      return { kind: 'value', params: ['x'], body: [{ k: 'return', e: out }] };
    });
  }

  /**
   * A struct sockaddr as text, as inet_ntop writes it: AF_INET (2) a.b.c.d:port, AF_INET6 (10)
   * [ip6]:port in RFC 5952 form (lowercase hex without leading zeros, the longest run of two or more
   * zero groups as ::, the first of equal runs; ::ffff:a.b.c.d for an IPv4-mapped address), another
   * family as "family N", a NULL pointer as NULL. Ports and groups are in network byte order.
   */
  private sockaddr(): string {
    return this.b.helper(() => {
      const u8 = (at: number): LExpr => ({ k: 'load', addr: add(v('p'), int(at)), size: 1, signed: false });
      const be16 = (addr: LExpr): LExpr => ({ k: 'call', fn: this.bswap(2), args: [{ k: 'load', addr, size: 2, signed: false }] });
      const cat = (...args: LExpr[]): LExpr => ({ k: 'rt', fn: 'cat', args });
      const s = (t: string): LExpr => ({ k: 'str', v: t });
      const quad = (at: number): LExpr[] => [u8(at), s('.'), u8(at + 1), s('.'), u8(at + 2), s('.'), u8(at + 3)];
      const group = (): LExpr => be16(add(v('p'), bin('+', int(8), bin('*', v('i'), int(2)))));
      const port = be16(add(v('p'), int(2)));
      const ret = (e: LExpr): LStmt => ({ k: 'return', e });
      const ip6: LStmt[] = [
        // The longest run of zero groups: at `best`, `blen` long (a run of one is not compressed).
        let_('best', int(-1)),
        let_('blen', int(0)),
        let_('run', int(-1)),
        let_('i', int(0)),
        {
          k: 'loop',
          body: [
            if_(bin('>=', v('i'), int(8)), [{ k: 'break' }]),
            if_(
              eq(group(), int(0)),
              [if_(bin('<', v('run'), int(0)), [set('run', v('i'))]), if_(gt(bin('-', bin('+', v('i'), int(1)), v('run')), v('blen')), [set('best', v('run')), set('blen', bin('-', bin('+', v('i'), int(1)), v('run')))])],
              [set('run', int(-1))],
            ),
            set('i', bin('+', v('i'), int(1))),
          ],
        },
        if_(bin('<', v('blen'), int(2)), [set('best', int(-1)), set('blen', int(0))]),
        // ::ffff:a.b.c.d, an IPv4-mapped address (RFC 5952 section 5).
        if_(bin('&&', bin('&&', eq(v('best'), int(0)), eq(v('blen'), int(5))), eq(be16(add(v('p'), int(18))), int(0xffff))), [ret(cat(s('[::ffff:'), ...quad(20), s(']:'), port))]),
        let_('t', s('[')),
        set('i', int(0)),
        {
          k: 'loop',
          body: [
            if_(bin('>=', v('i'), int(8)), [{ k: 'break' }]),
            if_(
              eq(v('i'), v('best')),
              [set('t', cat(v('t'), s('::'))), set('i', bin('+', v('i'), v('blen')))],
              [
                if_(bin('&&', gt(v('i'), int(0)), ne(v('i'), bin('+', v('best'), v('blen')))), [set('t', cat(v('t'), s(':')))]),
                set('t', cat(v('t'), { k: 'rt', fn: 'hex', args: [group()] })),
                set('i', bin('+', v('i'), int(1))),
              ],
            ),
          ],
        },
        ret(cat(v('t'), s(']:'), port)),
      ];
      return {
        kind: 'value',
        params: ['p'],
        body: [
          if_(eq(v('p'), int(0)), [ret(s('NULL'))]),
          let_('f', { k: 'load', addr: v('p'), size: 2, signed: false }),
          if_(eq(v('f'), int(2)), [ret(cat(...quad(4), s(':'), port))]),
          if_(eq(v('f'), int(10)), ip6),
          ret(cat(s('family '), v('f'))),
        ],
      };
    });
  }

  private load(p: Pointee, addr: LExpr): LExpr {
    switch (p.k) {
      case 'struct':
        return addr;
      case 'ptr':
        return load64(addr);
      case 'int':
        return { k: 'load', addr, size: p.size, signed: p.signed };
      case 'void':
        throw new Error('internal: load of void');
    }
  }

  private binary(o: string, a: LExpr, bb: LExpr): LExpr {
    if (o === '/' || o === '%') {
      // A division by zero in a target's data is a corrupt walk, not a crash.
      const div = this.b.helper(() => ({
        kind: 'value',
        params: ['a', 'b'],
        body: [if_(eq(v('b'), int(0)), [fail('corrupt', 'division by zero')]), { k: 'return', e: bin(o, v('a'), v('b')) }],
      }));
      return { k: 'call', fn: div, args: [a, bb] };
    }
    return bin(o as Parameters<typeof bin>[0], a, bb);
  }

  /** A global's address, looked up when needed: a missing symbol fails that walk, not the sample. */
  private globalAddr(name: string): LExpr {
    const fn = this.b.helper(() => ({
      kind: 'value',
      params: [],
      body: [
        let_('a', { k: 'rt', fn: 'global', args: [{ k: 'str', v: name }] }),
        if_(bin('<', v('a'), int(0)), [fail('corrupt', `the symbol ${name} is not in the binary's symbol tables`)]),
        { k: 'return', e: v('a') },
      ],
    }));
    return { k: 'call', fn, args: [] };
  }

  private global(e: Extract<TExpr, { op: 'global' }>): LExpr {
    const addr = this.globalAddr(e.name);
    if (e.decl.k === 'struct' || e.decl.k === 'array') return addr;
    if (e.decl.k === 'int') return { k: 'gint', addr, name: e.name, signed: e.decl.signed };
    return load64(addr);
  }

  /** str(data, len): a negative length is corrupt; the reading and escaping are the runtime's. */
  private string(data: LExpr, len: LExpr): LExpr {
    const fn = this.b.helper(() => ({
      kind: 'value',
      params: ['d', 'l'],
      body: [if_(bin('<', v('l'), int(0)), [fail('corrupt', 'string at {0}: negative length {1}', hexArg(v('d')), decArg(v('l')))]), { k: 'return', e: { k: 'rt', fn: 'string', args: [v('d'), v('l')] } }],
    }));
    return { k: 'call', fn, args: [data, len] };
  }

  private fileStatic(fn: LExpr, name: string): LExpr {
    const h = this.b.helper(() => ({
      kind: 'value',
      params: ['f'],
      body: [
        let_('a', { k: 'rt', fn: 'file_static', args: [v('f'), { k: 'str', v: name }] }),
        if_(bin('<', v('a'), int(0)), [fail('unavailable', FILE_STATIC_UNAVAILABLE)]),
        { k: 'return', e: v('a') },
      ],
    }));
    return { k: 'call', fn: h, args: [fn] };
  }

  // ---- aggregates: a function each, the walk folded into it ----

  private aggregate(e: Extract<TExpr, { op: 'aggregate' }>): LExpr {
    const params = freeVars(e);
    const it = slotVar(e.slot);
    const body = e.body ? this.expr(e.body) : null;
    const ret = (x: LExpr): LStmt => ({ k: 'return', e: x });
    let init: LStmt[];
    let step: (stop: LStmt[]) => LStmt[];
    let result: LExpr;
    switch (e.fn) {
      case 'count':
        init = [let_('acc', int(0))];
        step = () => (body ? [if_(body, [inc('acc')])] : [inc('acc')]);
        result = v('acc');
        break;
      case 'sum':
        init = [let_('acc', int(0))];
        step = () => [set('acc', bin('+', v('acc'), body!))];
        result = v('acc');
        break;
      case 'min':
      case 'max':
        // Nothing has no minimum: the column is null (min and max may only be whole columns).
        init = [let_('acc', int(0)), let_('has', FALSE)];
        step = () => [let_('x', body!), if_(bin('||', not(v('has')), bin(e.fn === 'min' ? '<' : '>', v('x'), v('acc'))), [set('acc', v('x')), set('has', TRUE)])];
        result = { k: 'cond', c: v('has'), a: v('acc'), b: { k: 'none' } };
        break;
      case 'all':
        init = [let_('acc', TRUE)];
        step = (stop) => [if_(not(body!), [set('acc', FALSE), ...stop])];
        result = v('acc');
        break;
      case 'any':
        init = [let_('acc', FALSE)];
        step = (stop) => [if_(body!, [set('acc', TRUE), ...stop])];
        result = v('acc');
        break;
    }
    // Without a body there is no `it` (its slot is 0, unused).
    const loop = this.seq(e.seq, (elem, stop) => [...(e.body ? [let_(it, elem)] : reads(elem) ? [{ k: 'expr', e: elem } as LStmt] : []), ...step(stop)], [ret(result)]);
    const fn = this.b.add('value', e.fn, params, [...init, ...loop, ret(result)]);
    return { k: 'call', fn, args: params.map(v) };
  }

  // ---- grouped folds: several aggregates of one walk, one loop a row ----

  /**
   * Finds the aggregates of self in a view's columns and checks (and the let: names they use) that share a
   * walk once filter(W, p), each(W, f) and count(W, p) are taken apart: the same walk, the same arguments
   * (names bound inside renamed). A walk used twice or more becomes a group. Not folded: an aggregate that
   * uses a let: name (its value may need the fold itself), or that uses no self (the row's self is its key).
   */
  planFolds(es: TExpr[], columns = es.length): void {
    const groups = new Map<string, FoldGroup>();
    const uses: [TExpr, FoldGroup, number][] = [];
    const seen = new Set<object>();
    const visit = (x: unknown): void => {
      if (x === null || typeof x !== 'object' || seen.has(x)) return;
      seen.add(x);
      if (Array.isArray(x)) return x.forEach(visit);
      const o = x as TExpr;
      if (o.op === 'aggregate' && foldable(o)) {
        const { base, member } = foldMember(o);
        const bk = canonical(base).text;
        let g = groups.get(bk);
        if (!g) groups.set(bk, (g = { key: `fold ${groups.size + 1}`, base, members: [], byKey: new Map(), uses: 0, fn: null, readers: [], users: [] }));
        const mk = canonical(member).text;
        let i = g.byKey.get(mk);
        if (i === undefined) {
          i = g.members.push(member) - 1;
          g.byKey.set(mk, i);
        }
        g.uses++;
        uses.push([o, g, i]);
        return;
      }
      if (o.op === 'call') return visit(o.arg); // the body is its own function, of its own self
      for (const val of Object.values(o)) visit(val);
    };
    es.forEach(visit);
    for (const [e, g, i] of uses) if (g.uses > 1) this.folded.set(e, { g, i });
    // Who reads each member, each column's expression walked whole (a let: shared by columns is in each).
    es.forEach((e, j) => {
      const mine = new Set<object>();
      const find = (x: unknown): void => {
        if (x === null || typeof x !== 'object' || mine.has(x)) return;
        mine.add(x);
        if (Array.isArray(x)) return x.forEach(find);
        const f = this.folded.get(x as TExpr);
        if (f) (f.g.users[f.i] ??= new Set()).add(j < columns ? j : -1);
        if ((x as TExpr).op === 'call') return find((x as Extract<TExpr, { op: 'call' }>).arg);
        for (const val of Object.values(x)) find(val);
      };
      find(e);
    });
  }

  /** A use of a folded aggregate: its slot of the row's record; a failure the fold kept for it is raised here. */
  private foldRead(g: FoldGroup, i: number): LExpr {
    const n = g.members.length;
    if (!g.readers[i]) {
      const fold = this.foldFn(g);
      g.readers[i] = this.b.add('value', 'folded', ['s'], [
        let_('r', { k: 'memo', key: g.key, fn: fold, args: [v('s')] }),
        let_('e', { k: 'item', of: v('r'), i: n + i }),
        if_(ne(v('e'), int(0)), [{ k: 'throw', e: v('e') }]),
        { k: 'return', e: { k: 'item', of: v('r'), i } },
      ]);
    }
    return { k: 'call', fn: g.readers[i], args: [v('s')] };
  }

  /**
   * A group's function: one walk of the base; at each element, each aggregate still going takes its steps
   * (filters, maps) and updates its accumulator, inside a catch: a failure of its own (a filter, a map, its
   * value) ends that aggregate alone, kept for it, as its own walk would have ended there. A failure of the
   * walk itself (a fault, a cycle, --max-nodes, the sample's budget) ends every aggregate still going, as it
   * ends each walk today; all() and any() stop at their answer. When none is going the walk stops. The
   * budget counts each element once. Returns the record: each result (min, max of nothing: none), then each
   * failure (0: none).
   */
  private foldFn(g: FoldGroup): string {
    if (g.fn) return g.fn;
    const outer = this.folding;
    this.folding = true;
    try {
      const n = g.members.length;
      const ms = g.members.map((m) => {
        const { acc, has, err, live, e } = this.names('acc', 'has', 'err', 'live', 'e');
        return { m, acc, has, err, live, e };
      });
      const { alive, e } = this.names('alive', 'e');
      const all = ms.map((_, i) => i);
      // Only when every member's columns are known: else all it reads stays the row's (a memo's) shared reads.
      const attributed = all.every((i) => (g.users[i]?.size ?? 0) > 0);
      const readsOf = (members: number[]): LStmt[] =>
        attributed ? [{ k: 'readsOf', columns: [...new Set(members.flatMap((i) => [...g.users[i]]))].sort((a, b) => a - b) }] : [];
      const minmax = (f: AggFn) => f === 'min' || f === 'max';
      const init: LStmt[] = [
        ...ms.flatMap(({ m, acc, has, err, live }) => [let_(acc, m.fn === 'all' ? TRUE : FALSE), ...(minmax(m.fn) ? [let_(has, FALSE)] : []), let_(err, FALSE), let_(live, TRUE)]),
        let_(alive, int(n)),
      ];
      const results = ms.map(({ m, acc, has }): LExpr => (minmax(m.fn) ? { k: 'cond', c: v(has), a: v(acc), b: { k: 'none' } } : v(acc)));
      const record: LExpr = { k: 'call', fn: this.record(2 * n), args: [...results, ...ms.map(({ err }) => v(err))] };
      const ret: LStmt = { k: 'return', e: record };
      type M = (typeof ms)[number];
      const done = ({ live }: M): LStmt[] => [set(live, FALSE), set(alive, bin('-', v(alive), int(1)))];
      const final = (mm: M, x: LExpr): LStmt[] => {
        const { m, acc, has } = mm;
        const bind = m.body ? [let_(slotVar(m.body.slot), x)] : [];
        const body = m.body ? this.expr(m.body.e) : FALSE;
        switch (m.fn) {
          case 'count':
            // An element counted must still be read (its map's value).
            return [...(reads(x) ? [{ k: 'expr', e: x } as LStmt] : []), inc(acc)];
          case 'sum':
            return [...bind, set(acc, bin('+', v(acc), body))];
          case 'min':
          case 'max': {
            const { y } = this.names('y');
            return [...bind, let_(y, body), if_(bin('||', not(v(has)), bin(m.fn === 'min' ? '<' : '>', v(y), v(acc))), [set(acc, v(y)), set(has, TRUE)])];
          }
          case 'all':
            return [...bind, if_(not(body), [set(acc, FALSE), ...done(mm)])];
          case 'any':
            return [...bind, if_(body, [set(acc, TRUE), ...done(mm)])];
        }
      };
      const steps = (mm: M, k: number, x: LExpr): LStmt[] => {
        if (k === mm.m.steps.length) return final(mm, x);
        const st = mm.m.steps[k];
        const it = slotVar(st.slot);
        if (st.kind === 'filter') return [let_(it, x), if_(this.expr(st.e), steps(mm, k + 1, v(it)))];
        return [let_(it, x), ...steps(mm, k + 1, this.expr(st.e))];
      };
      const emit: Emit = (elem, stop) => {
        const { x } = this.names('x');
        const { pre, owns } = this.shareFirstReads(
          ms.map((mm) => aliasAll(steps(mm, 0, v(x)), x)),
          x,
          ms.map((mm) => mm.live),
        );
        // What an aggregate reads of its own is its columns'; the walk and what they share, all of theirs.
        return [
          let_(x, elem),
          ...pre,
          ...ms.flatMap((mm, i) => [...readsOf([i]), if_(v(mm.live), mayFail(owns[i]) ? [{ k: 'catch', err: mm.e, body: owns[i], handler: [set(mm.err, v(mm.e)), ...done(mm)] }] : owns[i])]),
          ...readsOf(all),
          if_(eq(v(alive), int(0)), stop),
        ];
      };
      const body: LStmt[] = [
        ...init,
        ...readsOf(all),
        { k: 'catch', err: e, body: this.seq(g.base, emit, [ret]), handler: ms.map(({ live, err }) => if_(v(live), [set(err, v(e))])) },
        ret,
      ];
      g.fn = this.b.add('value', 'fold', ['s'], body);
      return g.fn;
    } finally {
      this.folding = outer;
    }
  }

  /**
   * What the aggregates of a fold read first of an element, each before anything else that may fail (it.gct
   * of each filter it.gct == K; then, under the same condition, lua_object_bytes(it)): read once for all that
   * read it first, in a catch of its own, under the conditions that lead each of them to it. An aggregate
   * whose first read failed fails with that failure where it would have read it; the others never see it.
   */
  private shareFirstReads(owns: LStmt[][], x: string, lives: string[]): { pre: LStmt[]; owns: LStmt[][] } {
    const pre: LStmt[] = [];
    const out = [...owns];
    const known = new Set([x]);
    for (let round = 0; round < 4; round++) {
      const firsts = out.map((own) => {
        const f = firstRead(own);
        return f && (f.read.k === 'field' || f.read.k === 'load' || f.read.k === 'call') && varsOf([f.read, f.guards]).every((n) => known.has(n)) ? f : null;
      });
      const keys = firsts.map((f) => (f ? jsonOf({ g: f.guards, r: f.read }) : null));
      let shared = false;
      for (const key of new Set(keys)) {
        const users = keys.flatMap((k, i) => (k !== null && k === key ? [i] : []));
        if (key === null || users.length < 2) continue;
        shared = true;
        const { h, herr, e } = this.names('h', 'herr', 'e');
        const { guards, read } = firsts[users[0]]!;
        const compute: LStmt = { k: 'catch', err: e, body: [set(h, read)], handler: [set(herr, v(e))] };
        // Only for an aggregate still going (one that ended reads nothing more), and where its conditions lead.
        // (When all of them read it, one is going: the walk stops when none is.)
        const going = users.length === owns.length ? [] : [users.map((i) => v(lives[i])).reduce((a, b) => bin('||', a, b))];
        const when = [...going, ...guards];
        pre.push(let_(h, FALSE), let_(herr, FALSE), when.length ? if_(when.reduce((a, b) => bin('&&', a, b)), [compute]) : compute);
        known.add(h).add(herr);
        const rkey = jsonOf(read);
        for (const i of users) out[i] = rewriteAt(out[i], firsts[i]!.path, (ss) => [if_(ne(v(herr), FALSE), [{ k: 'throw', e: v(herr) }]), ...(replaceExpr(ss, rkey, v(h)) as LStmt[])]);
      }
      if (!shared) break;
    }
    return { pre, owns: out };
  }

  /** A record of n values: a list of them, in order (what a grouped fold returns). */
  private record(n: number): string {
    return this.b.helper(() => {
      const ps = Array.from({ length: n }, (_, i) => `p${i}`);
      return { kind: 'value', params: ps, body: [{ k: 'stack', name: 'r' }, ...ps.map((p): LStmt => ({ k: 'push', stack: 'r', e: v(p) })), { k: 'return', e: v('r') }] };
    });
  }

  /** A column's body: its value, or for a walk the list of what it yields (in a stack, bounded as the walk is). */
  column(e: TExpr): LStmt[] {
    if (e.type.k !== 'seq') return [{ k: 'return', e: this.expr(e) }];
    const { list } = this.names('list');
    const back: LStmt = { k: 'return', e: v(list) };
    return [{ k: 'stack', name: list }, ...this.seq(e, (x) => [{ k: 'push', stack: list, e: x }], [back]), back];
  }

  /** The address of element i of an array member: an index outside it is corrupt (C would read past the struct). */
  private boundedIndex(e: Extract<TExpr, { op: 'index' }>, bound: { count: number; what: string }): LExpr {
    const fn = this.b.helper(() => ({
      kind: 'value',
      params: ['b', 'i'],
      body: [
        if_(bin('||', bin('<', v('i'), int(0)), bin('>=', v('i'), int(bound.count))), [fail('corrupt', `${bound.what}[{0}]: out of bounds (${bound.count} elements)`, decArg(v('i')))]),
        { k: 'return', e: add(v('b'), bin('*', v('i'), { k: 'size', of: e.pointee })) },
      ],
    }));
    return { k: 'call', fn, args: [this.expr(e.base), this.expr(e.index)] };
  }

  /** The function of a named walk, made once per program: a value function of s, or a seq function of s and a visitor. */
  private walkFn(e: Extract<TExpr, { op: 'call' }>, kind: 'value' | 'seq'): string {
    return this.b.walk(e.walk, kind, () => {
      const body: LStmt[] =
        kind === 'value' ? [{ k: 'return', e: this.expr(e.body) }] : [...this.seq(e.body, (x, s) => [if_(not({ k: 'visit', e: x }), s)], [{ k: 'return', e: FALSE }]), { k: 'return', e: TRUE }];
      return { kind, params: ['s'], body };
    });
  }

  /** A named walk called with a visitor: what the caller does with each element. */
  private callSeq(e: Extract<TExpr, { op: 'call' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const fn = this.walkFn(e, 'seq');
    const x = this.b.fresh('x');
    const visitor: LExpr = { k: 'visitor', param: x, body: [...emit(v(x), [{ k: 'return', e: FALSE }]), { k: 'return', e: TRUE }] };
    return [if_(not({ k: 'call', fn, args: [this.expr(e.arg), visitor] }), stop)];
  }

  /** nth(w, k): a value function that walks up to element k and returns it; a shorter walk is an error. */
  private nth(e: Extract<TExpr, { op: 'nth' }>): LExpr {
    const params = freeVars(e);
    const body: LStmt[] = [
      let_('k', this.expr(e.index)),
      if_(bin('<', v('k'), int(0)), [fail('corrupt', 'nth({0}): a negative index', decArg(v('k')))]),
      let_('i', int(0)),
      let_('r', int(0)),
      // Found, it stops the walk (by its stop, which may be a visitor's return) and returns r.
      ...this.seq(e.seq, (x, s) => [if_(eq(v('i'), v('k')), [set('r', x), ...s]), set('i', bin('+', v('i'), int(1)))], [{ k: 'return', e: v('r') }]),
      fail('corrupt', 'nth({0}): the walk has {1} elements', decArg(v('k')), decArg(v('i'))),
    ];
    const fn = this.b.add('value', 'nth', params, body);
    return { k: 'call', fn, args: params.map(v) };
  }

  // ---- walks: loops that pass each element to emit ----

  seq(e: TExpr, emit: Emit, stop: LStmt[]): LStmt[] {
    if (e.op === 'call' && e.type.k === 'seq') return this.callSeq(e, emit, stop);
    // A walk of a name: the value computed once, before the walk's loops.
    if (e.op === 'let' && e.type.k === 'seq') return [let_(slotVar(e.slot), this.expr(e.value)), ...this.seq(e.body, emit, stop)];
    if (e.op !== 'walk') return emit(this.expr(e), stop); // a single value where a walk is wanted (a root)
    return this.walk(e.walk, emit, stop);
  }

  private walk(w: Walk, emit: Emit, stop: LStmt[]): LStmt[] {
    switch (w.w) {
      case 'chain':
        return this.chain(w, emit, stop);
      case 'array':
        return this.array(w, emit, stop);
      case 'dlist':
        return this.dlist(w, emit, stop);
      case 'bintree':
        return w.order === 'in' ? this.bintreeInOrder(w, emit, stop) : this.bintreePreOrder(w, emit, stop);
      case 'take':
        return this.take(w, emit, stop);
      case 'reversed':
        return this.reversed(w, emit, stop);
      case 'iterate':
        return this.iterate(w, emit, stop);
      case 'range':
        return this.range(w, emit, stop);
      case 'one':
        return emit(this.expr(w.value), stop);
      case 'each': {
        const it = slotVar(w.slot);
        if (w.body.type.k === 'seq') return this.seq(w.seq, (x, s) => [let_(it, x), ...this.seq(w.body, emit, s)], stop);
        return this.seq(w.seq, (x, s) => [let_(it, x), ...emit(this.expr(w.body), s)], stop);
      }
      case 'filter': {
        const it = slotVar(w.slot);
        return this.seq(w.seq, (x, s) => [let_(it, x), if_(this.expr(w.body), emit(v(it), s))], stop);
      }
      case 'take_while':
        return this.takeWhile(w, emit, stop);
      case 'reach':
        return lowerReach(this.reach, w, emit, stop);
      case 'reach_path':
        return lowerReachPath(this.reach, w, emit, stop);
    }
  }

  /** Names local to one walk's loops. */
  private names(...parts: string[]): Record<string, string> {
    const id = this.b.fresh('w');
    return Object.fromEntries(parts.map((p) => [p, `${p}_${id}`]));
  }


  /**
   * Brent's cycle detection on the step count: the tortoise jumps to the
   * hare at steps 1, 2, 4, 8, ..., so a cycle is seen within two of its
   * lengths past where it starts, in O(1) memory.
   */
  private brent(p: string, n: string, tortoise: string, power: string, onCycle: LStmt[]): LStmt[] {
    return [if_(bin('&&', eq(v(p), v(tortoise)), ne(v(p), int(0))), onCycle), if_(eq(v(n), v(power)), [set(tortoise, v(p)), set(power, { ...bin('*', v(power), int(2)), small: true } as LExpr)])];
  }

  /** chain(first, next): p, p->next, ... until NULL; each p aligned; Brent's cycle check. */
  private chain(w: Extract<Walk, { w: 'chain' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const what = `${w.struct}.${w.next} chain`;
    const mask = bin('-', { k: 'align', struct: w.struct }, int(1));
    return this.follow(
      what,
      () => this.expr(w.first),
      (p) => [if_(ne(bin('&', v(p), mask), int(0)), [fail('corrupt', `${what}: {0} is not aligned for ${w.struct}`, hexArg(v(p)))])],
      (p) => [set(p, load64(add(v(p), { k: 'off', struct: w.struct, field: w.next })))],
      emit,
      stop,
    );
  }

  /**
   * The loop of a walk that follows a pointer until NULL (chain, iterate):
   * from first, each p checked (check), counted against --max-nodes and
   * passed on, then the step to the next; Brent's cycle check after each
   * step; what was counted spent when it ends. what names the walk in its
   * errors. The parts are made in the order they run (first, check, emit,
   * step), so that the names they take are given out in that order.
   */
  private follow(what: string, first: () => LExpr, check: (p: string) => LStmt[], step: (p: string) => LStmt[], emit: Emit, stop: LStmt[]): LStmt[] {
    const { p, n, t, pw } = this.names('p', 'n', 't', 'pw');
    return [
      let_(p, first()),
      let_(n, int(0)),
      let_(t, v(p)),
      let_(pw, int(1)),
      {
        k: 'try',
        body: [
          {
            k: 'loop',
            body: [
              if_(eq(v(p), int(0)), [{ k: 'break' }]),
              ...check(p),
              inc(n),
              if_(gt(v(n), maxNodes), [fail('limit', `${what} has more than {0} elements (--max-nodes)`, decArg(maxNodes))]),
              ...emit(v(p), stop),
              ...step(p),
              ...this.brent(p, n, t, pw, [fail('cycle', `${what}: cycle at {0} after {1} elements`, hexArg(v(p)), decArg(v(n)))]),
            ],
          },
        ],
        finally: [...spend(v(n))],
      },
    ];
  }

  private elem(p: Pointee, addr: LExpr): LExpr {
    return this.load(p, addr);
  }

  /** array(base, count): count checked before anything is read, and spent at once. */
  private array(w: Extract<Walk, { w: 'array' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const { b, c, i } = this.names('b', 'c', 'i');
    return [
      let_(b, this.expr(w.base)),
      let_(c, this.expr(w.count)),
      if_(bin('<', v(c), int(0)), [fail('corrupt', 'array at {0}: negative count {1}', hexArg(v(b)), decArg(v(c)))]),
      if_(gt(v(c), maxNodes), [fail('limit', 'array at {0}: count {1} is more than --max-nodes ({2})', hexArg(v(b)), decArg(v(c)), decArg(maxNodes))]),
      if_(bin('&&', gt(v(c), int(0)), eq(v(b), int(0))), [fail('corrupt', 'array of {0} elements at NULL', decArg(v(c)))]),
      ...spend(v(c)),
      let_(i, int(0)),
      {
        k: 'loop',
        body: [if_(bin('>=', v(i), v(c)), [{ k: 'break' }]), ...emit(this.elem(w.elem, add(v(b), bin('*', v(i), { k: 'size', of: w.elem }))), stop), inc(i)],
      },
    ];
  }

  /** The element a link points into: the struct around it, or the link itself. */
  private contained(p: LExpr, c: Container | null): LExpr {
    return c ? bin('-', p, { k: 'off', struct: c.struct, field: c.field }) : p;
  }

  /** dlist (ngx_queue_t, list_head): q = h->next until h, each checked by q->prev == the one before; yields container-of. */
  private dlist(w: Extract<Walk, { w: 'dlist' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const { h, prev, cur, back, n } = this.names('h', 'prev', 'cur', 'back', 'n');
    const q = (field: string): LExpr => ({ k: 'off', struct: w.linkStruct, field });
    return [
      let_(h, this.expr(w.head)),
      let_(prev, v(h)),
      let_(cur, load64(add(v(h), q(w.next)))),
      let_(n, int(0)),
      {
        k: 'try',
        body: [
          {
            k: 'loop',
            body: [
              if_(eq(v(cur), v(h)), [{ k: 'break' }]),
              if_(eq(v(cur), int(0)), [fail('corrupt', `${w.name} {0}: NULL ${w.next} after {1}`, hexArg(v(h)), hexArg(v(prev)))]),
              let_(back, load64(add(v(cur), q(w.prev)))),
              if_(ne(v(back), v(prev)), [fail('corrupt', `${w.name} {0}: {1}'s ${w.next} {2} has ${w.prev} {3}`, hexArg(v(h)), hexArg(v(prev)), hexArg(v(cur)), hexArg(v(back)))]),
              inc(n),
              if_(gt(v(n), maxNodes), [fail('limit', `${w.name} {0} has more than {1} elements (--max-nodes)`, hexArg(v(h)), decArg(maxNodes))]),
              ...emit(this.contained(v(cur), w.container), stop),
              set(prev, v(cur)),
              set(cur, load64(add(v(cur), q(w.next)))),
            ],
          },
        ],
        finally: [...spend(v(n))],
      },
    ];
  }

  /**
   * The parts both orders of a binary tree share: the tree's address for
   * messages, the leaf (NULL or the sentinel), the root, a child read
   * (with a sentinel, a NULL child is corrupt), a push bounded by depth.
   */
  private bintreeParts(w: Extract<Walk, { w: 'bintree' }>) {
    const { tr, leaf, cur, n, stack, c } = this.names('tr', 'leaf', 'cur', 'n', 'stack', 'c');
    const child = (from: string, side: 'left' | 'right', into: string): LStmt[] => [
      set(c, load64(add(v(from), { k: 'off', struct: w.nodeStruct, field: side === 'left' ? w.left : w.right }))),
      ...(w.sentinel
        ? [if_(eq(v(c), int(0)), [fail('corrupt', `${w.name} {0}: node {1} has a NULL ${side} child (the sentinel is {2})`, hexArg(v(tr)), hexArg(v(from)), hexArg(v(leaf)))])]
        : []),
      set(into, v(c)),
    ];
    const push = (e: LExpr): LStmt[] => [
      if_(bin('>=', { k: 'depth', stack }, int(w.maxDepth)), [fail('corrupt', `${w.name} {0}: deeper than ${w.maxDepth} (a cycle, or not a tree)`, hexArg(v(tr)))]),
      { k: 'push', stack, e },
    ];
    const start: LStmt[] = [
      let_(tr, this.expr(w.at)),
      let_(leaf, w.sentinel ? this.expr(w.sentinel) : int(0)),
      let_(cur, this.expr(w.root)),
      let_(n, int(0)),
      let_(c, int(0)),
      { k: 'stack', name: stack },
    ];
    const nullRoot: LStmt[] = w.sentinel ? [if_(eq(v(cur), int(0)), [fail('corrupt', `${w.name} {0}: NULL root (an empty tree points at its sentinel)`, hexArg(v(tr)))])] : [];
    const count: LStmt[] = [inc(n), if_(gt(v(n), maxNodes), [fail('limit', `${w.name} {0} has more than {1} elements (--max-nodes)`, hexArg(v(tr)), decArg(maxNodes))])];
    return { cur, n, stack, leaf, child, push, start, nullRoot, count };
  }

  /** A binary tree in order: down the left spine onto the stack, then the node, then its right subtree. */
  private bintreeInOrder(w: Extract<Walk, { w: 'bintree' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const { cur, n, stack, leaf, child, push, start, nullRoot, count } = this.bintreeParts(w);
    return [
      ...start,
      {
        k: 'try',
        body: [
          ...nullRoot,
          {
            k: 'loop',
            body: [
              if_(bin('&&', eq(v(cur), v(leaf)), eq({ k: 'depth', stack }, int(0))), [{ k: 'break' }]),
              { k: 'loop', body: [if_(eq(v(cur), v(leaf)), [{ k: 'break' }]), ...push(v(cur)), ...child(cur, 'left', cur)] },
              set(cur, { k: 'pop', stack }),
              ...count,
              ...emit(this.contained(v(cur), w.container), stop),
              ...child(cur, 'right', cur),
            ],
          },
        ],
        finally: [...spend(v(n))],
      },
    ];
  }

  /** A binary tree root first: the node, then its left subtree, then its right (the stack holds what is still to come). */
  private bintreePreOrder(w: Extract<Walk, { w: 'bintree' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const { cur, n, stack, leaf, child, push, start, nullRoot, count } = this.bintreeParts(w);
    const { r, l } = this.names('r', 'l');
    return [
      ...start,
      {
        k: 'try',
        body: [
          ...nullRoot,
          if_(ne(v(cur), v(leaf)), push(v(cur))),
          {
            k: 'loop',
            body: [
              if_(eq({ k: 'depth', stack }, int(0)), [{ k: 'break' }]),
              set(cur, { k: 'pop', stack }),
              ...count,
              ...emit(this.contained(v(cur), w.container), stop),
              let_(r, int(0)),
              ...child(cur, 'right', r),
              if_(ne(v(r), v(leaf)), push(v(r))),
              let_(l, int(0)),
              ...child(cur, 'left', l),
              if_(ne(v(l), v(leaf)), push(v(l))),
            ],
          },
        ],
        finally: [...spend(v(n))],
      },
    ];
  }

  /** iterate(first, next): first, next(first), ... until 0; Brent's cycle check; next is computed after the element is passed on. */
  private iterate(w: Extract<Walk, { w: 'iterate' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const it = slotVar(w.slot);
    return this.follow('iterate()', () => this.expr(w.first), () => [], (p) => [let_(it, v(p)), set(p, this.expr(w.next))], emit, stop);
  }

  /** range(count): 0 .. count-1; the count checked and spent before the first. */
  private range(w: Extract<Walk, { w: 'range' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const { c, i } = this.names('c', 'i');
    return [
      let_(c, this.expr(w.count)),
      if_(bin('<', v(c), int(0)), [fail('corrupt', 'range({0}): negative count', decArg(v(c)))]),
      if_(gt(v(c), maxNodes), [fail('limit', 'range({0}) has more than {1} elements (--max-nodes)', decArg(v(c)), decArg(maxNodes))]),
      ...spend(v(c)),
      let_(i, int(0)),
      { k: 'loop', body: [if_(bin('>=', v(i), v(c)), [{ k: 'break' }]), ...emit(v(i), stop), inc(i)] },
    ];
  }

  /**
   * take(w, k): the first k elements. Like take_while, it stops its own
   * walk while its consumer may go on: a seq function, called with a visitor.
   */
  private take(w: Extract<Walk, { w: 'take' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const { k, i } = this.names('k', 'i');
    const before: LStmt[] = [
      let_(k, this.expr(w.count)),
      if_(bin('<', v(k), int(0)), [fail('corrupt', 'take({0}): a negative count', decArg(v(k)))]),
      let_(i, int(0)),
      if_(eq(v(k), int(0)), [{ k: 'return', e: TRUE }]),
    ];
    // Stops right after element k-1: nothing past it is read.
    return this.stoppable(w, (x, wanted, s) => [set(i, bin('+', v(i), int(1))), ...pass(x, wanted, s), if_(bin('>=', v(i), v(k)), s)], before, emit, stop);
  }

  /** reversed(w): every element of w kept (w's own bounds bound them), then given back last first. */
  private reversed(w: Extract<Walk, { w: 'reversed' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const { kept } = this.names('kept');
    return [
      { k: 'stack', name: kept },
      ...this.seq(w.seq, (x) => [{ k: 'push', stack: kept, e: x }], []),
      { k: 'loop', body: [if_(eq({ k: 'depth', stack: kept }, int(0)), [{ k: 'break' }]), ...emit({ k: 'pop', stack: kept }, stop)] },
    ];
  }

  /**
   * take_while(w, cond): the elements up to the first where cond fails.
   * It stops its own walk while its consumer may go on (an each() around
   * it), so it is a seq function, called with a visitor.
   */
  private takeWhile(w: Extract<Walk, { w: 'take_while' }>, emit: Emit, stop: LStmt[]): LStmt[] {
    const it = slotVar(w.slot);
    return this.stoppable(w, (x, wanted, s) => [let_(it, x), if_(not(this.expr(w.body)), s), ...pass(v(it), wanted, s)], [], emit, stop);
  }

  /**
   * A walk that stops its own inner walk while its consumer may go on
   * (take_while, take): a seq function, called with a visitor. Inside, an
   * element leaves only by `s` (the inner walk's stop, which may be a
   * visitor's return), never by a return of the function itself; `wanted`
   * says whether the consumer wanted more, and is what the function returns.
   */
  private stoppable(w: Walk, step: (x: LExpr, wanted: string, s: LStmt[]) => LStmt[], before: LStmt[], emit: Emit, stop: LStmt[]): LStmt[] {
    const params = freeVars({ op: 'walk', walk: w, type: { k: 'int', signed: false } });
    const { wanted, x } = this.names('wanted', 'x');
    const seq = (w as { seq: TExpr }).seq;
    const body: LStmt[] = [let_(wanted, TRUE), ...before, ...this.seq(seq, (e, s) => step(e, wanted, s), [{ k: 'return', e: v(wanted) }]), { k: 'return', e: v(wanted) }];
    const fn = this.b.add('seq', w.w, params, body);
    const visitor: LExpr = { k: 'visitor', param: x, body: [...emit(v(x), [{ k: 'return', e: FALSE }]), { k: 'return', e: TRUE }] };
    return [if_(not({ k: 'call', fn, args: [...params.map(v), visitor] }), stop)];
  }
}

/** Passes an element to the visitor of a stoppable walk: when the consumer wants no more, say so and stop. */
function pass(x: LExpr, wanted: string, s: LStmt[]): LStmt[] {
  return [if_(not({ k: 'visit', e: x }), [set(wanted, FALSE), ...s])];
}

/** Counts n elements against the sample's budget (10 × --max-nodes): past it, every walk of the sample fails. */
function spend(n: LExpr): LStmt[] {
  const visited: LExpr = { k: 'state', name: 'visited' };
  const maxTotal: LExpr = { k: 'state', name: 'maxTotal' };
  return [{ k: 'addVisited', n }, if_(gt(visited, maxTotal), [fail('limit', 'the sample visited more than {0} elements in all (--max-nodes x 10)', decArg(maxTotal))])];
}

/** Statements with every name of x (let it = x, let it2 = it) replaced by x, those lets gone (names are never reused). */
function aliasAll(ss: LStmt[], x: string): LStmt[] {
  const alias = new Set<string>();
  const sub = (o: unknown): unknown => {
    if (o === null || typeof o !== 'object') return o;
    if (Array.isArray(o)) {
      return o.flatMap((s: unknown) => {
        const st = s as LStmt;
        if (st && st.k === 'let' && st.e.k === 'var' && (st.e.name === x || alias.has(st.e.name))) {
          alias.add(st.name);
          return [];
        }
        return [sub(s)];
      });
    }
    const r = o as { k?: string; name?: string };
    if (r.k === 'var' && r.name !== undefined && alias.has(r.name)) return v(x);
    return Object.fromEntries(Object.entries(o).map(([k, val]) => [k, sub(val)]));
  };
  return sub(ss) as LStmt[];
}


/** The statements with the list at path (indexes of ifs, each into its then) rewritten by f. */
function rewriteAt(ss: LStmt[], path: number[], f: (ss: LStmt[]) => LStmt[]): LStmt[] {
  if (path.length === 0) return f(ss);
  const [i, ...rest] = path;
  const s = ss[i] as Extract<LStmt, { k: 'if' }>;
  return [...ss.slice(0, i), { ...s, then: rewriteAt(s.then, rest, f) }, ...ss.slice(i + 1)];
}

/** Every occurrence of the expression (as JSON text) replaced by `by`. */
function replaceExpr(o: unknown, key: string, by: LExpr): unknown {
  if (o === null || typeof o !== 'object') return o;
  if (Array.isArray(o)) return o.map((x) => replaceExpr(x, key, by));
  if ('k' in o && jsonOf(o) === key) return by;
  return Object.fromEntries(Object.entries(o).map(([k, val]) => [k, replaceExpr(val, key, by)]));
}

function varsOf(e: unknown): string[] {
  if (e === null || typeof e !== 'object') return [];
  if (Array.isArray(e)) return e.flatMap(varsOf);
  const o = e as { k?: string; name?: string };
  if (o.k === 'var') return [o.name!];
  return Object.values(o).flatMap(varsOf);
}

/**
 * The first read statements make, when it is surely made before anything else that may fail (JS and Python
 * evaluate left to right), with the conditions that lead to it (ifs that read nothing, and do nothing else
 * when false: guards) and where (path: the ifs' indexes); null when that is not sure.
 */
function firstRead(ss: LStmt[], guards: LExpr[] = [], path: number[] = []): { guards: LExpr[]; read: LExpr; path: number[] } | null {
  for (let i = 0; i < ss.length; i++) {
    const s = ss[i];
    if (s.k === 'if') {
      const r = firstIn(s.c);
      if (r !== undefined) return r ? { guards, read: r, path } : null;
      if (s.else.length) return null;
      // A check that throws (a failure kept for it): past it only when it is false.
      if (s.then.length === 1 && (s.then[0].k === 'throw' || s.then[0].k === 'fail')) {
        guards = [...guards, not(s.c)];
        continue;
      }
      // Nothing after the if: its body is all that may read.
      if (i !== ss.length - 1) return null;
      return firstRead(s.then, [...guards, s.c], [...path, i]);
    }
    const e = s.k === 'let' || s.k === 'set' || s.k === 'expr' ? s.e : null;
    if (e === null) return null;
    const r = firstIn(e);
    if (r !== undefined) return r ? { guards, read: r, path } : null;
  }
  return null;
}

/** undefined: e reads nothing; the read e makes first; null: not sure. */
function firstIn(e: LExpr): LExpr | null | undefined {
  if (!mayFail(e)) return undefined;
  switch (e.k) {
    case 'field': {
      const r = firstIn(e.base);
      return r === undefined ? e : r;
    }
    case 'load': {
      const r = firstIn(e.addr);
      return r === undefined ? e : r;
    }
    case 'bin': {
      const r = firstIn(e.a);
      if (r !== undefined) return r;
      return e.op === '&&' || e.op === '||' ? null : firstIn(e.b);
    }
    case 'un':
      return firstIn(e.a);
    case 'call': {
      // A function of this program, of arguments read first, left to right.
      for (const a of e.args) {
        const r = firstIn(a);
        if (r !== undefined) return r;
      }
      return e;
    }
    case 'cond': {
      const r = firstIn(e.c);
      return r === undefined ? null : r;
    }
    default:
      return null;
  }
}

/** Whether statements may fail: a fail of their own, a read of memory, a call out (a count's step may not). */
function mayFail(x: unknown): boolean {
  if (x === null || typeof x !== 'object') return false;
  if (Array.isArray(x)) return x.some(mayFail);
  const k = (x as { k?: unknown }).k;
  // (shared: a value computed once a sample, such as a reach, which may fail like a call.)
  if (k === 'fail' || k === 'throw' || k === 'visit' || k === 'load' || k === 'field' || k === 'gint' || k === 'call' || k === 'memo' || k === 'shared' || k === 'rt') return true;
  return Object.values(x).some(mayFail);
}

/** Whether computing e reads memory or calls out (so may fail): an element counted must still be read. */
function reads(e: LExpr): boolean {
  if (e.k === 'load' || e.k === 'field' || e.k === 'gint' || e.k === 'call' || e.k === 'memo' || e.k === 'shared' || e.k === 'rt') return true;
  return Object.values(e).some((x) => typeof x === 'object' && x !== null && 'k' in x && reads(x as LExpr));
}

/**
 * The variables an expression uses that it does not bind itself: what a
 * function made of it takes as parameters (slots are never reused, so a
 * slot bound inside is never one from outside).
 */
function freeVars(e: TExpr): string[] {
  const used = new Set<number>();
  const bound = new Set<number>();
  const visit = (x: unknown): void => {
    if (x === null || typeof x !== 'object') return;
    const o = x as Record<string, unknown>;
    if (o.op === 'var') used.add(o.slot as number);
    if (o.op === 'call') return visit(o.arg); // the body is its own function, of its own self
    if (((o.op === 'aggregate' && o.body) || o.op === 'let' || o.op === 'reach_parent' || 'w' in o) && typeof o.slot === 'number') bound.add(o.slot);
    if (o.w === 'reach_path') for (const k of ['nameSlot', 'fromSlot', 'edgeSlot']) bound.add(o[k] as number);
    for (const val of Object.values(o)) if (typeof val === 'object') visit(val);
  };
  visit(e);
  return [...used].filter((s) => !bound.has(s)).sort((a, b) => a - b).map(slotVar);
}

/** An aggregate a grouped fold may compute: of self (and only self), and of no let: name (whose value may need the fold). */
function foldable(e: Extract<TExpr, { op: 'aggregate' }>): boolean {
  const free = freeVars(e);
  return free.length === 1 && free[0] === 's' && !usesRowlet(e);
}

function usesRowlet(x: unknown): boolean {
  if (x === null || typeof x !== 'object') return false;
  const o = x as Record<string, unknown>;
  if (o.op === 'rowlet') return true;
  if (o.op === 'call') return usesRowlet(o.arg);
  return Object.values(o).some(usesRowlet);
}

/**
 * An aggregate taken apart: the walk it shares (base), and its own steps around it: filter(W, p) and
 * each(W, f) (a value per element) from the outside in, count(W, p) as count(filter(W, p)).
 */
function foldMember(e: Extract<TExpr, { op: 'aggregate' }>): { base: TExpr; member: FoldMember } {
  const steps: FoldMember['steps'] = [];
  let seq = e.seq;
  while (seq.op === 'walk' && (seq.walk.w === 'filter' || (seq.walk.w === 'each' && seq.walk.body.type.k !== 'seq'))) {
    steps.unshift({ kind: seq.walk.w === 'filter' ? 'filter' : 'map', slot: seq.walk.slot, e: seq.walk.body });
    seq = seq.walk.seq;
  }
  if (e.fn === 'count' && e.body) return { base: seq, member: { fn: 'count', steps: [...steps, { kind: 'filter', slot: e.slot, e: e.body }], body: null } };
  return { base: seq, member: { fn: e.fn, steps, body: e.body ? { slot: e.slot, e: e.body } : null } };
}
