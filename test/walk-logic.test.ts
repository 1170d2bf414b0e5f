/**
 * The walk logic of xsample (generators/lower/, printers/js.ts,
 * walk-runtime.ts, snapshot.ts, view-run.ts)
 * on a fake memory source: structures laid out by hand at chosen addresses,
 * a hand-made layout standing in for DWARF, and fake symbols. Real
 * processes and cores are tested elsewhere; here every value is exact and
 * every corruption is built on purpose.
 */
import t, { type Test } from 'tap';
import { parseExpr } from '../generators/expr-parse.ts';
import type { TExpr } from '../generators/ir.ts';
import type { LayoutFile } from '../generators/layout.ts';
import { ExprChecker } from '../generators/check-expr.ts';
import { checkContext, checkPointerExpr, columnValue } from '../generators/schema.ts';
import { parseSchema } from '../printers/checked-schema.ts';
import { BoundLayout } from '../sampler/sampling/bound-layout.ts';
import type { LProgram } from '../generators/lower/lir.ts';
import { lowerColumn, lowerSeqOf, lowerValue, lowerView } from '../generators/lower/lower.ts';
import { compileProgram, compileView } from '../printers/js.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import type { Int } from '../core/exact.ts';
import { STT_FUNC, STT_OBJECT } from '../core/elf.ts';
import { hex } from '../sampler/memory/memory.ts';
import { Fault, PAGE, Snapshot } from '../sampler/memory/snapshot.ts';
import { Slabs } from '../sampler/memory/slabs.ts';
import { type Symbols, SymbolTable } from '../sampler/memory/symbols.ts';
import { formatValue, runView, type Value } from '../sampler/sampling/view-run.ts';
import { type Limits, WalkError } from '../sampler/memory/walk-error.ts';
import { FakeMemory } from './lib/fake-memory.ts';
import { encode, pyRun, type PyWorld } from './lib/py-walk.ts';
import { recordCase, recording } from './lib/walk-cases.ts';
import { captureRefusal, SHAPE_ONLY } from '../printers/bpf/print.ts';

const SCHEMA = `xwalk: 1
pack: fake
imports: [nginx/idioms.yaml]
types:
  ngx_str_t:
    fields:
      len: uint
      data: ptr u_char
  node_t:
    fields:
      value: uint
      next: ptr node_t
      small: int
      name: ngx_str_t
  elt_t:
    fields:
      id: uint
      weight: uint
  ngx_list_part_t:
    fields:
      elts: ptr void
      nelts: uint
      next: ptr ngx_list_part_t
  ngx_list_t:
    fields:
      last: ptr ngx_list_part_t
      part: ngx_list_part_t
      nalloc: uint
  ngx_queue_t:
    fields:
      prev: ptr ngx_queue_t
      next: ptr ngx_queue_t
  job_t:
    fields:
      id: uint
      link: ngx_queue_t
      cost: uint
  ngx_rbtree_node_t:
    fields:
      key: uint
      left: ptr ngx_rbtree_node_t
      right: ptr ngx_rbtree_node_t
      parent: ptr ngx_rbtree_node_t
  ngx_rbtree_t:
    fields:
      root: ptr ngx_rbtree_node_t
      sentinel: ptr ngx_rbtree_node_t
  timer_t:
    fields:
      payload: uint
      node: ngx_rbtree_node_t
  tnode_t:
    fields:
      key: uint
      left: ptr tnode_t
      right: ptr tnode_t
  hook_t:
    fields:
      fwd: ptr hook_t
      back: ptr hook_t
  item_t:
    fields:
      id: uint
      hook: hook_t
  root_t:
    fields:
      list: ptr node_t
      elts: ptr elt_t
      nelts: uint
      nodes: ptr ptr node_t
      nnodes: uint
      kvs: ptr ngx_list_t
      jobs: ngx_queue_t
      timers: ngx_rbtree_t
      name: ngx_str_t
      title: ptr char
      alloc: ptr void
      a: uint
      b: uint
      neg: int
      flags: uint
      sneg: int
      tree: ptr tnode_t
      items: hook_t
      key: char[8]
      vals: u32[4]
      kids: ptr node_t[2]
      strs: ngx_str_t[2]
walks:
  evens:
    of: root_t
    yields: filter(chain(self.list, next), it.value % 2 == 0)
  # Larger than a walk that is inlined: called, as a function of the generated code.
  sixes:
    of: root_t
    yields: >-
      filter(chain(self.list, next), it.value % 2 == 0 && it.value % 3 == 0 && it.value > 0 && it.value < 1000000
             && it.value != 7 && it.value != 11 && it.value != 13 && it.value != 17 && it.value != 19)
  sixes_doubled:
    of: root_t
    yields: each(sixes(self), it.value * 2)
  second_six:
    of: root_t
    yields: nth(sixes(self), 1).value + 0 * (1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19 + 20)
  # A value that reads self twice: inlined for a variable, called for an argument that costs a read.
  a_plus_b:
    of: root_t
    yields: self.a + self.b
  # Walks of scalars: a length-prefixed text at a char pointer.
  prefixed_len:
    of: u8
    yields: '*self'
  prefixed:
    of: u8
    yields: str(self + 1, prefixed_len(self))
enums:
  state_e: {}
  # Named, but not in the layout (a layout made before enums: named it).
  later_e:
    doc: An enum the hand-made layout lacks.
globals:
  G: root_t
  ticks: int
  Gp: ptr root_t
  missing: int
  big: u64[8]
  small: u32[8]
views:
  lists:
    of: root_t
    roots:
      g: '&G'
    columns:
      count: count(chain(self.list, next))
      sum: sum(chain(self.list, next), it.value)
      top: max(chain(self.list, next), it.value)
      name: str(self.name)
  nodes:
    of: node_t
    roots:
      list: chain(G.list, next)
      again: chain(G.list, next)
      array: array(G.nodes, G.nnodes)
      first: G.list
      none: cast(0, node_t)
    columns:
      addr: self
      value: self.value
      small: self.small
    checks:
      - expr: self.value < 3
        message: value too big
  broken_root:
    of: root_t
    roots:
      g: '&G'
      lost: cast(missing, root_t)
    columns:
      a: self.a
  # A walk named once, used by every column and the check: read once per row.
  shared:
    of: root_t
    roots:
      g: '&G'
    let:
      n: count(chain(self.list, next))
      total: sum(chain(self.list, next), it.value)
      mean: 'n ? total / n : 0'
    columns:
      n: n
      total: total
      mean: mean
      text: cat(n, " nodes, ", total, " in all, ", mean, " each")
      above: count(chain(self.list, next), it.value > mean)
    checks:
      - expr: n < 1000
        message: too many
  # The same view without let: each use walks the list again.
  unshared:
    of: root_t
    roots:
      g: '&G'
    columns:
      n: count(chain(self.list, next))
      total: sum(chain(self.list, next), it.value)
      mean: 'count(chain(self.list, next)) ? sum(chain(self.list, next), it.value) / count(chain(self.list, next)) : 0'
      text: >-
        cat(count(chain(self.list, next)), " nodes, ", sum(chain(self.list, next), it.value), " in all, ",
            count(chain(self.list, next)) ? sum(chain(self.list, next), it.value) / count(chain(self.list, next)) : 0, " each")
      above: >-
        count(chain(self.list, next), it.value >
              (count(chain(self.list, next)) ? sum(chain(self.list, next), it.value) / count(chain(self.list, next)) : 0))
    checks:
      - expr: count(chain(self.list, next)) < 1000
        message: too many
  # Aggregates of one walk: one grouped fold a row (filter(W, p), count(W, p) and each(W, f) taken apart).
  folded:
    of: root_t
    roots:
      g: '&G'
    columns:
      n: count(chain(self.list, next))
      evens: count(chain(self.list, next), it.value % 2 == 0)
      even_sum: sum(filter(chain(self.list, next), it.value % 2 == 0), it.value)
      top: max(chain(self.list, next), it.value)
      low_odd: min(filter(chain(self.list, next), it.value % 2 == 1), it.value)
      huge: max(filter(chain(self.list, next), it.value > 1000000), it.value)
      small_sum: sum(each(chain(self.list, next), it.small), it)
      all_pos: all(chain(self.list, next), it.value > 0)
      any_over5: any(chain(self.list, next), it.value > 5)
      inverse: sum(chain(self.list, next), 1000 / it.value)
      first_bytes: sum(chain(self.list, next), *it.name.data)
      mean: 'count(chain(self.list, next)) ? sum(chain(self.list, next), it.value) / count(chain(self.list, next)) : 0'
      other: count(array(self.nodes, self.nnodes))
      other_big: count(array(self.nodes, self.nnodes), it.value > 1)
      other_sum: sum(array(self.nodes, self.nnodes), it.value)
      div_sum: sum(filter(chain(self.list, next), it.small != 0), 1000 / (it.small - 1))
      div_min: min(filter(chain(self.list, next), it.small != 0), 1000 / (it.small - 1))
    checks:
      - expr: count(chain(self.list, next)) < 1000
        message: too many
`;

/** Test data standing in for DWARF: sizes and offsets chosen by hand (x86_64-like). */
const LAYOUT: LayoutFile = {
  xwalk_layout: 1,
  pack: 'fake',
  release: 'test',
  build_id: '00',
  binary: 'fake',
  producer: 'written by hand for walk-logic.test.ts',
  types: {
    ngx_str_t: { size: 16, align: 8, fields: { len: { offset: 0, size: 8, signed: false }, data: { offset: 8, size: 8 } } },
    node_t: {
      size: 48,
      align: 8,
      fields: { value: { offset: 0, size: 8, signed: false }, next: { offset: 8, size: 8 }, small: { offset: 16, size: 4, signed: true }, name: { offset: 24, size: 16 } },
    },
    elt_t: { size: 8, align: 4, fields: { id: { offset: 0, size: 4, signed: false }, weight: { offset: 4, size: 4, signed: false } } },
    ngx_list_part_t: { size: 24, align: 8, fields: { elts: { offset: 0, size: 8 }, nelts: { offset: 8, size: 8, signed: false }, next: { offset: 16, size: 8 } } },
    ngx_list_t: { size: 48, align: 8, fields: { last: { offset: 0, size: 8 }, part: { offset: 8, size: 24 }, nalloc: { offset: 40, size: 8, signed: false } } },
    ngx_queue_t: { size: 16, align: 8, fields: { prev: { offset: 0, size: 8 }, next: { offset: 8, size: 8 } } },
    job_t: { size: 32, align: 8, fields: { id: { offset: 0, size: 8, signed: false }, link: { offset: 8, size: 16 }, cost: { offset: 24, size: 8, signed: false } } },
    ngx_rbtree_node_t: {
      size: 40,
      align: 8,
      fields: { key: { offset: 0, size: 8, signed: false }, left: { offset: 8, size: 8 }, right: { offset: 16, size: 8 }, parent: { offset: 24, size: 8 } },
    },
    ngx_rbtree_t: { size: 24, align: 8, fields: { root: { offset: 0, size: 8 }, sentinel: { offset: 8, size: 8 } } },
    timer_t: { size: 48, align: 8, fields: { payload: { offset: 0, size: 8, signed: false }, node: { offset: 8, size: 40 } } },
    tnode_t: { size: 24, align: 8, fields: { key: { offset: 0, size: 8, signed: false }, left: { offset: 8, size: 8 }, right: { offset: 16, size: 8 } } },
    hook_t: { size: 16, align: 8, fields: { fwd: { offset: 0, size: 8 }, back: { offset: 8, size: 8 } } },
    item_t: { size: 24, align: 8, fields: { id: { offset: 0, size: 8, signed: false }, hook: { offset: 8, size: 16 } } },
    root_t: {
      size: 248,
      align: 8,
      fields: {
        list: { offset: 0, size: 8 },
        elts: { offset: 8, size: 8 },
        nelts: { offset: 16, size: 8, signed: false },
        nodes: { offset: 24, size: 8 },
        nnodes: { offset: 32, size: 8, signed: false },
        kvs: { offset: 40, size: 8 },
        jobs: { offset: 48, size: 16 },
        timers: { offset: 64, size: 24 },
        name: { offset: 88, size: 16 },
        title: { offset: 104, size: 8 },
        alloc: { offset: 112, size: 8 },
        a: { offset: 120, size: 8, signed: false },
        b: { offset: 128, size: 8, signed: false },
        neg: { offset: 136, size: 4, signed: true },
        flags: { offset: 140, size: 4, signed: false, bit: 3, bits: 5 },
        sneg: { offset: 144, size: 8, signed: true },
        tree: { offset: 152, size: 8 },
        items: { offset: 160, size: 16 },
        key: { offset: 176, size: 8 },
        vals: { offset: 184, size: 16 },
        kids: { offset: 200, size: 16 },
        strs: { offset: 216, size: 32 },
      },
    },
  },
  globals: { G: { size: 248 }, ticks: { size: 4, signed: true }, Gp: { size: 8 }, missing: { size: 4, signed: true }, big: { size: 64 }, small: { size: 32 } },
  // As DWARF gives them, in declaration order: ST_BUSY is another name of 1, ST_GONE is negative.
  enums: { state_e: { ST_IDLE: 0, ST_READ: 1, ST_BUSY: 1, ST_WRITE: 2, ST_GONE: -1, ST_BIG: 4294967295 } },
};

const PACK = parseSchema(SCHEMA, 'fake.yaml');
const BOUND = BoundLayout.bind(PACK, LAYOUT, 'walk-logic layout');
const LIMITS: Limits = { maxNodes: 10_000, maxTotal: 100_000 };

const off = (struct: string, field: string): number => LAYOUT.types[struct].fields[field].offset;
const size = (struct: string): number => LAYOUT.types[struct].size;

/** Where things live: a .data-like page for the globals, a heap, a function for symbol(). Above 2^32, like x86_64. */
const DATA = 0x555555558000;
const TEXT = 0x555555555000;
const HEAP = 0x7f3a12000000; // 64 KiB-aligned
/** Where a stripped module is loaded (its first PT_LOAD at link-time address 0). */
const LIB = 0x7f3a20000000;

class World {
  readonly mem = new FakeMemory();
  readonly G: number;
  readonly ticks: number;
  readonly Gp: number;
  readonly big: number;
  readonly small: number;

  constructor() {
    this.mem.map(DATA, PAGE);
    this.G = this.mem.alloc(size('root_t'));
    this.ticks = this.mem.alloc(4, 4);
    this.Gp = this.mem.alloc(8);
    this.big = this.mem.alloc(64);
    this.small = this.mem.alloc(32);
    this.mem.map(HEAP, 16 * 64 * 1024);
  }

  /** The symbol table, as (name, address, size, type). */
  symbolList(): [string, number, number, number][] {
    return [
      ['G', this.G, size('root_t'), STT_OBJECT],
      ['ticks', this.ticks, 4, STT_OBJECT],
      ['Gp', this.Gp, 8, STT_OBJECT],
      ['big', this.big, 64, STT_OBJECT],
      ['small', this.small, 32, STT_OBJECT],
      ['ngx_http_handler', TEXT + 0x40, 0x100, STT_FUNC],
    ];
  }

  /** The objects mapped, as (file name, start, end, load bias): a stripped module whose pages hold no symbol. */
  objectList(): [string, number, number, number][] {
    return [['ngx_http_lua_module.so', LIB, LIB + 0x60000, LIB]];
  }

  /** The symbol table, and the objects as a process's symbols (ProcessSymbols) tell them. */
  symbols(): Symbols {
    const table = new SymbolTable(
      this.symbolList().map(([name, value, sz, type]) => ({ name, value, size: sz, type, bind: 1, shndx: 14 })),
      0,
    );
    const objects = this.objectList();
    return {
      address: (name) => table.address(name),
      symbolize: (addr) => table.symbolize(addr),
      fileStatic: (fn, name) => table.fileStatic(fn, name),
      objectAt: (addr) => {
        const o = objects.find(([, start, end]) => start <= addr && addr < end);
        return o ? { name: o[0], bias: o[3] } : null;
      },
    };
  }

  /** The same world for the Python printer. */
  py(): PyWorld {
    return { mem: this.mem, symbols: this.symbolList().map(([n, v, sz]) => [n, v, sz]), objects: this.objectList(), layout: LAYOUT };
  }

  runtime(limits: Limits = LIMITS): WalkRuntime {
    return new WalkRuntime(new Snapshot(this.mem, this.mem.ranges()), this.symbols(), limits);
  }

  /** A view of the pack run over this world, from its roots or from --addr text. */
  run(view: string, addr?: string): ReturnType<typeof runView> {
    const R = this.runtime();
    const v = PACK.views.get(view)!;
    const addrOf = addr ? compileProgram(lowerValue(checkPointerExpr(PACK, v.of, addr)), BOUND, R) : null;
    return runView(compileView(lowerView(v), BOUND, R), addrOf ? () => addrOf(0) as Int : undefined);
  }

  /** Writes a field of the struct at base, by its layout size. */
  put(base: number, struct: string, field: string, v: number | bigint): void {
    const f = LAYOUT.types[struct].fields[field];
    if (f.size === 8) this.mem.u64(base + f.offset, v);
    else if (f.signed) this.mem.i32(base + f.offset, Number(v));
    else this.mem.u32(base + f.offset, Number(v));
  }

  /** A heap struct with the given fields set. */
  make(struct: string, fields: Record<string, number | bigint> = {}): number {
    const a = this.mem.alloc(size(struct), LAYOUT.types[struct].align);
    for (const [f, v] of Object.entries(fields)) this.put(a, struct, f, v);
    return a;
  }

  /** node_t values chained by next, in order; G.list points at the first. */
  list(values: number[]): number[] {
    const nodes = values.map((value) => this.make('node_t', { value }));
    nodes.forEach((n, i) => this.put(n, 'node_t', 'next', nodes[i + 1] ?? 0));
    this.put(this.G, 'root_t', 'list', nodes[0] ?? 0);
    return nodes;
  }
}

interface EvalOptions {
  self?: number;
  selfType?: string;
  rt?: WalkRuntime;
  limits?: Limits;
}

/** Type-checks text against the pack, as a column of a view of selfType would be. */
function typed(text: string, selfType = 'root_t'): TExpr {
  const checker = new ExprChecker(checkContext(PACK), 1);
  return checker.check(parseExpr(text), { op: 'var', slot: 0, type: { k: 'ptr', to: { k: 'struct', name: selfType } } });
}

/**
 * Runs a program in JS and, printed as Python, under plain python3 over
 * the same memory: both must give the same value (or elements), the same
 * error, and spend the same budget. The JS answer is returned (or thrown).
 */
function both(w: World, text: string, prog: LProgram, kind: 'value' | 'seq', o: EvalOptions): { value?: Value | null; elems?: Value[] } {
  const R = o.rt ?? w.runtime(o.limits);
  const self = o.self ?? w.G;
  const before = R.visited;
  let js: { value?: Value | null; elems?: Value[]; error?: Error };
  try {
    const fn = compileProgram(prog, BOUND, R);
    if (kind === 'value') js = { value: fn(self) };
    else {
      const elems: Value[] = [];
      fn(self, (v: Value) => {
        elems.push(v);
        return true;
      });
      js = { elems };
    }
  } catch (err) {
    if (!(err instanceof WalkError || err instanceof Fault)) throw err;
    js = { error: err };
  }
  const record = recording();
  if (record) {
    // Written down for the eBPF printer's test (test/bpf-printer.test.ts), which runs python3 no more.
    recordCase(record, SCHEMA, LAYOUT, { text, kind, prog, self, limits: { maxNodes: R.maxNodes, maxTotal: R.maxTotal }, symbols: w.symbolList(), memory: w.mem.dump() });
    if (js.error) throw js.error;
    return js;
  }
  const py = pyRun(prog, kind, w.py(), { maxNodes: R.maxNodes, maxTotal: R.maxTotal, visited: before, self });
  const said = js.error
    ? { error: { type: js.error instanceof WalkError ? 'WalkError' : 'Fault', kind: js.error instanceof WalkError ? js.error.kind : null, message: js.error.message } }
    : kind === 'value'
      ? { value: encode(js.value) }
      : { elems: js.elems!.map(encode) };
  const pySaid = py.error ? { error: py.error } : kind === 'value' ? { value: py.value } : { elems: py.elems };
  if (JSON.stringify(said) !== JSON.stringify(pySaid)) throw new Error(`python3 disagrees on ${text}: JS ${JSON.stringify(said)}, Python ${JSON.stringify(pySaid)}`);
  if (String(R.visited) !== py.visited) throw new Error(`python3 disagrees on ${text}: JS spent ${R.visited}, Python ${py.visited}`);
  if (js.error) throw js.error;
  return js;
}

/** A column as a view shows it (a walk as the list of what it yields), the same in JS and in Python. */
function col(w: World, text: string, o: EvalOptions = {}): Value | Value[] {
  return both(w, text, lowerColumn(columnValue(typed(text, o.selfType))), 'value', o).value as Value | Value[];
}

/** The value of an expression of self (by default &G), the same in JS and in Python. */
function ev(w: World, text: string, o: EvalOptions = {}): Value {
  return both(w, text, lowerValue(typed(text, o.selfType)), 'value', o).value as Value;
}

/** The elements a walk yields, in order, the same in JS and in Python. */
function elems(w: World, text: string, o: EvalOptions = {}): Value[] {
  return both(w, text, lowerSeqOf(typed(text, o.selfType)), 'seq', o).elems!;
}

function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    return err as Error;
  }
  throw new Error('nothing was thrown');
}

function walkError(t: Test, err: Error, kind: string, message: string | RegExp): void {
  t.type(err, WalkError, err.message);
  t.equal((err as WalkError).kind, kind);
  if (typeof message === 'string') t.equal(err.message, message);
  else t.match(err.message, message);
}

t.test('chain', async (t) => {
  t.test('count and sum of a 1000-node list', async (t) => {
    const w = new World();
    const values = Array.from({ length: 1000 }, (_, i) => i + 1);
    const nodes = w.list(values);
    const rt = w.runtime();
    t.equal(ev(w, 'count(chain(self.list, next))', { rt }), 1000);
    t.equal(ev(w, 'sum(chain(self.list, next), it.value)', { rt }), 500500);
    t.equal(rt.visited, 2000, 'both walks counted against the budget');
    t.same(elems(w, 'chain(self.list, next)').slice(0, 3), nodes.slice(0, 3));
    t.equal(ev(w, 'min(chain(self.list, next), it.value)'), 1);
    t.equal(ev(w, 'max(chain(self.list, next), it.value)'), 1000);
    t.equal(ev(w, 'count(chain(self.list, next), it.value % 3 == 0)'), 333);
    t.equal(ev(w, 'all(chain(self.list, next), it.value > 0)'), 1);
    t.equal(ev(w, 'any(chain(self.list, next), it.value == 1001)'), 0);
    t.equal(ev(w, 'sum(filter(chain(self.list, next), it.value > 990), it.value)'), 9955);
    t.same(elems(w, 'each(filter(chain(self.list, next), it.value <= 3), it.value * 2)'), [2, 4, 6]);
    t.equal(ev(w, 'count(chain(cast(0, node_t), next))'), 0, 'a NULL first is an empty chain');
  });

  t.test('exactly --max-nodes is fine, one more is a limit', async (t) => {
    const w = new World();
    w.list(Array.from({ length: 1000 }, () => 1));
    t.equal(ev(w, 'count(chain(self.list, next))', { limits: { maxNodes: 1000, maxTotal: 10_000 } }), 1000);
    const err = thrown(() => ev(w, 'count(chain(self.list, next))', { limits: { maxNodes: 999, maxTotal: 10_000 } }));
    walkError(t, err, 'limit', 'node_t.next chain has more than 999 elements (--max-nodes)');
  });

  t.test('the budget of the whole sample (maxTotal)', async (t) => {
    const w = new World();
    w.list(Array.from({ length: 1000 }, () => 1));
    const rt = w.runtime({ maxNodes: 1000, maxTotal: 2500 });
    t.equal(ev(w, 'count(chain(self.list, next)) + count(chain(self.list, next))', { rt }), 2000);
    t.equal(rt.visited, 2000);
    const err = thrown(() => ev(w, 'count(chain(self.list, next))', { rt }));
    walkError(t, err, 'limit', 'the sample visited more than 2500 elements in all (--max-nodes x 10)');
  });

  t.test('a cycle back to the head', async (t) => {
    const w = new World();
    const nodes = w.list(Array.from({ length: 10 }, (_, i) => i));
    w.put(nodes[9], 'node_t', 'next', nodes[0]);
    const err = thrown(() => ev(w, 'count(chain(self.list, next))'));
    walkError(t, err, 'cycle', /^node_t\.next chain: cycle at 0x[0-9a-f]+ after \d+ elements$/);
    const [, at, n] = /cycle at (0x[0-9a-f]+) after (\d+)/.exec(err.message)!;
    t.ok(nodes.map(hex).includes(at), 'the cycle is at one of the nodes');
    t.ok(Number(n) >= 10 && Number(n) <= 30, `found within a few rounds (${n})`);
  });

  t.test('a cycle into the middle', async (t) => {
    const w = new World();
    const nodes = w.list(Array.from({ length: 10 }, (_, i) => i));
    w.put(nodes[9], 'node_t', 'next', nodes[4]);
    const err = thrown(() => ev(w, 'sum(chain(self.list, next), it.value)'));
    walkError(t, err, 'cycle', /^node_t\.next chain: cycle at 0x[0-9a-f]+ after \d+ elements$/);
    const at = /cycle at (0x[0-9a-f]+)/.exec(err.message)![1];
    t.ok(nodes.slice(4).map(hex).includes(at), 'the cycle is at a node of the loop');
    // A node pointing at itself.
    w.put(nodes[0], 'node_t', 'next', nodes[0]);
    walkError(t, thrown(() => ev(w, 'count(chain(self.list, next))')), 'cycle', `node_t.next chain: cycle at ${hex(nodes[0])} after 1 elements`);
  });

  t.test('a cycle leaves the column null and the view partial', async (t) => {
    const w = new World();
    const nodes = w.list([1, 2, 3]);
    w.put(nodes[2], 'node_t', 'next', nodes[1]);
    const r = w.run('lists');
    t.equal(r.partial, true);
    t.same(r.items, [{ origin: 'g', count: null, sum: null, top: null, name: '' }]);
    t.equal(r.errors.length, 3);
    t.match(r.errors[0], { item: hex(w.G), column: 'count', message: /^node_t\.next chain: cycle at / });
    t.same(
      r.errors.map((e) => e.column),
      ['count', 'sum', 'top'],
    );
  });

  t.test('a misaligned next is corrupt', async (t) => {
    const w = new World();
    const nodes = w.list([1, 2, 3, 4]);
    w.put(nodes[1], 'node_t', 'next', nodes[2] + 4);
    walkError(t, thrown(() => ev(w, 'count(chain(self.list, next))')), 'corrupt', `node_t.next chain: ${hex(nodes[2] + 4)} is not aligned for node_t`);
  });

  t.test('a next into unmapped memory faults', async (t) => {
    const w = new World();
    const nodes = w.list([1, 2, 3]);
    w.put(nodes[2], 'node_t', 'next', 0x10000000);
    const rt = w.runtime();
    const err = thrown(() => ev(w, 'count(chain(self.list, next))', { rt }));
    t.type(err, Fault);
    t.equal(err.message, '0x10000008: not in any mapping');
    t.equal((err as Fault).addr, 0x10000008);
    t.same(new Set(w.mem.reads.map((r) => r.addr)), new Set([DATA, HEAP]), 'no read was tried there');
  });
});

t.test("register(): the first thread's registers where the reader has them, else 0", async (t) => {
  const w = new World();
  t.equal(ev(w, 'register(rdx)'), 0, 'a reader without registers (a live process never stopped) gives 0, in JS and Python alike');
  t.throws(() => typed('register(rdy)'), /register\(\) takes the name of an x86-64 register \(rax, rbx/);
  t.throws(() => typed('register(self)'), /register\(\) takes the name of an x86-64 register/);
});

t.test('reversed: a walk, last first', async (t) => {
  const w = new World();
  const nodes = w.list([1, 2, 3, 4, 5]);
  t.same(elems(w, 'reversed(chain(self.list, next))'), [...nodes].reverse(), 'the nodes, last first');
  t.same(col(w, 'each(reversed(chain(self.list, next)), it.value * 10)'), [50, 40, 30, 20, 10], 'as a list column');
  t.same(elems(w, 'take(reversed(chain(self.list, next)), 2)'), [nodes[4], nodes[3]], 'the last two');
  t.same(elems(w, 'reversed(reversed(chain(self.list, next)))'), nodes, 'twice is the walk itself');
  t.equal(ev(w, 'count(reversed(chain(cast(0, node_t), next)))'), 0, 'an empty walk');
  t.same(col(w, 'each(reversed(range(3)), cat("#", it))'), ['#2', '#1', '#0'], 'of any values');
  w.put(nodes[4], 'node_t', 'next', nodes[2]);
  walkError(t, thrown(() => elems(w, 'reversed(chain(self.list, next))')), 'cycle', /cycle/);
});

t.test('arrays', async (t) => {
  t.test('of structs', async (t) => {
    const w = new World();
    const elts = w.mem.alloc(5 * size('elt_t'), 4);
    for (let i = 0; i < 5; i++) {
      w.put(elts + i * 8, 'elt_t', 'id', i + 1);
      w.put(elts + i * 8, 'elt_t', 'weight', (i + 1) * 10);
    }
    w.put(w.G, 'root_t', 'elts', elts);
    w.put(w.G, 'root_t', 'nelts', 5);
    t.equal(ev(w, 'count(array(self.elts, self.nelts))'), 5);
    t.equal(ev(w, 'sum(array(self.elts, self.nelts), it.weight)'), 150);
    t.same(elems(w, 'each(array(self.elts, self.nelts), it.id)'), [1, 2, 3, 4, 5]);
    t.same(elems(w, 'array(self.elts, 2)'), [elts, elts + 8]);
    // What nginx's ngx_array walk does (packs/nginx/idioms.yaml), on root_t's elts and nelts.
    t.equal(ev(w, 'sum(array(cast(self.elts, elt_t), self.nelts), it.id * it.weight)'), 10 + 40 + 90 + 160 + 250);
    t.same(elems(w, 'array(cast(self.elts, u32), self.nelts)'), [1, 10, 2, 20, 3]);
    t.equal(ev(w, 'self.elts[3].weight'), 40);
    t.equal(ev(w, 'count(array(self.elts, 0))'), 0);
  });

  t.test('of pointers (ptr ptr T)', async (t) => {
    const w = new World();
    const [n1, n2] = w.list([7, 11]);
    const arr = w.mem.alloc(4 * 8);
    [n2, 0, n1, n2].forEach((p, i) => w.mem.u64(arr + i * 8, p));
    w.put(w.G, 'root_t', 'nodes', arr);
    w.put(w.G, 'root_t', 'nnodes', 4);
    t.same(elems(w, 'array(self.nodes, self.nnodes)'), [n2, 0, n1, n2]);
    t.equal(ev(w, 'sum(filter(array(self.nodes, self.nnodes), it != NULL), it.value)'), 11 + 7 + 11);
    t.equal(ev(w, '(*self.nodes)->value'), 11);
    t.equal(ev(w, 'self.nodes[2]->value'), 7);
    t.equal(ev(w, 'count(chain(self.nodes[2], next))'), 2);
  });

  t.test('a count over --max-nodes is a limit, before any read', async (t) => {
    const w = new World();
    const arr = w.mem.alloc(8);
    w.put(w.G, 'root_t', 'nodes', arr);
    w.put(w.G, 'root_t', 'nnodes', 20_000);
    walkError(t, thrown(() => ev(w, 'count(array(self.nodes, self.nnodes))')), 'limit', `array at ${hex(arr)}: count 20000 is more than --max-nodes (10000)`);
  });

  t.test('elements at NULL, a negative count', async (t) => {
    const w = new World();
    w.put(w.G, 'root_t', 'nnodes', 3);
    walkError(t, thrown(() => ev(w, 'count(array(self.nodes, self.nnodes))')), 'corrupt', 'array of 3 elements at NULL');
    t.equal(ev(w, 'count(array(self.nodes, 0))'), 0, 'NULL and empty is fine');
    w.put(w.G, 'root_t', 'neg', -1);
    w.put(w.G, 'root_t', 'nodes', HEAP);
    walkError(t, thrown(() => ev(w, 'count(array(self.nodes, self.neg))')), 'corrupt', `array at ${hex(HEAP)}: negative count -1`);
  });
});

t.test('ngx_list', async (t) => {
  /** An ngx_list_t of elt_t in three parts of 4: 4 + 4 + 2 used; the unused slots hold 999. */
  function build(w: World): { list: number; parts: number[]; elts: number[] } {
    const list = w.make('ngx_list_t', { nalloc: 4 });
    const part0 = list + off('ngx_list_t', 'part');
    const part1 = w.make('ngx_list_part_t');
    const part2 = w.make('ngx_list_part_t');
    const parts = [part0, part1, part2];
    const eltsOf: number[] = [];
    let id = 1;
    parts.forEach((p, i) => {
      const elts = w.mem.alloc(4 * 8, 4);
      eltsOf.push(elts);
      const used = i < 2 ? 4 : 2;
      for (let k = 0; k < 4; k++) {
        w.put(elts + k * 8, 'elt_t', 'id', k < used ? id : 999);
        w.put(elts + k * 8, 'elt_t', 'weight', k < used ? id++ * 10 : 999);
      }
      w.put(p, 'ngx_list_part_t', 'elts', elts);
      w.put(p, 'ngx_list_part_t', 'nelts', used);
      w.put(p, 'ngx_list_part_t', 'next', parts[i + 1] ?? 0);
    });
    w.put(list, 'ngx_list_t', 'last', part2);
    w.put(w.G, 'root_t', 'kvs', list);
    return { list, parts, elts: eltsOf };
  }

  t.test('several parts, the last partly filled', async (t) => {
    const w = new World();
    build(w);
    t.same(elems(w, 'each(ngx_list(self.kvs, elt_t), it.id)'), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    t.equal(ev(w, 'count(ngx_list(self.kvs, elt_t))'), 10);
    t.equal(ev(w, 'sum(ngx_list(self.kvs, elt_t), it.weight)'), 550);
    t.equal(ev(w, "count(chain(&self.kvs->part, next))"), 3);
    // Scalars: the stride is the scalar's size (u32: the id and weight fields in turn).
    t.same(elems(w, 'ngx_list(self.kvs, u32)').slice(0, 4), [1, 10, 2, 20]);
  });

  t.test('a cycle of parts', async (t) => {
    const w = new World();
    const { parts } = build(w);
    w.put(parts[2], 'ngx_list_part_t', 'next', parts[1]);
    // Where Brent's detector meets the cycle depends on its length: any part on it.
    walkError(t, thrown(() => ev(w, 'count(ngx_list(self.kvs, elt_t))')), 'cycle', new RegExp(`^ngx_list_part_t.next chain: cycle at (${hex(parts[1])}|${hex(parts[2])}) after \\d+ elements$`));
  });

  t.test('a part of elements at NULL', async (t) => {
    const w = new World();
    const { parts } = build(w);
    w.put(parts[1], 'ngx_list_part_t', 'elts', 0);
    walkError(t, thrown(() => ev(w, 'count(ngx_list(self.kvs, elt_t))')), 'corrupt', 'array of 4 elements at NULL');
  });

  t.test('a part too large', async (t) => {
    const w = new World();
    const { parts, elts } = build(w);
    w.put(parts[1], 'ngx_list_part_t', 'nelts', 2 ** 40);
    walkError(t, thrown(() => ev(w, 'count(ngx_list(self.kvs, elt_t))')), 'limit', `array at ${hex(elts[1])}: count ${2 ** 40} is more than --max-nodes (10000)`);
  });
});

t.test('ngx_queue', async (t) => {
  /** Jobs linked into G.jobs in the order given; link is at offset 8, so container-of matters. */
  function build(w: World, ids: number[]): { head: number; jobs: number[] } {
    const head = w.G + off('root_t', 'jobs');
    const jobs = ids.map((id) => w.make('job_t', { id, cost: id * 100 }));
    const q = (j: number) => j + off('job_t', 'link');
    const ring = [head, ...jobs.map(q)];
    ring.forEach((node, i) => {
      w.put(node, 'ngx_queue_t', 'next', ring[(i + 1) % ring.length]);
      w.put(node, 'ngx_queue_t', 'prev', ring[(i + ring.length - 1) % ring.length]);
    });
    return { head, jobs };
  }

  t.test('elements in queue order, by container-of', async (t) => {
    const w = new World();
    const { jobs } = build(w, [2, 3, 1]);
    t.same(elems(w, 'ngx_queue(&self.jobs, job_t, link)'), jobs);
    t.same(elems(w, 'each(ngx_queue(&self.jobs, job_t, link), it.id)'), [2, 3, 1]);
    t.equal(ev(w, 'sum(ngx_queue(&self.jobs, job_t, link), it.cost)'), 600);
  });

  t.test('an empty queue points at itself', async (t) => {
    const w = new World();
    build(w, []);
    t.equal(ev(w, 'count(ngx_queue(&self.jobs, job_t, link))'), 0);
  });

  t.test('a broken back-link', async (t) => {
    const w = new World();
    const { head, jobs } = build(w, [1, 2, 3]);
    const q = (j: number) => j + off('job_t', 'link');
    w.put(q(jobs[2]), 'ngx_queue_t', 'prev', q(jobs[0]));
    walkError(t, thrown(() => ev(w, 'count(ngx_queue(&self.jobs, job_t, link))')), 'corrupt', `dlist ${hex(head)}: ${hex(q(jobs[1]))}'s next ${hex(q(jobs[2]))} has prev ${hex(q(jobs[0]))}`);
  });

  t.test('a NULL next', async (t) => {
    const w = new World();
    const { head, jobs } = build(w, [1, 2, 3]);
    const q = (j: number) => j + off('job_t', 'link');
    w.put(q(jobs[1]), 'ngx_queue_t', 'next', 0);
    walkError(t, thrown(() => ev(w, 'count(ngx_queue(&self.jobs, job_t, link))')), 'corrupt', `dlist ${hex(head)}: NULL next after ${hex(q(jobs[1]))}`);
  });
});

t.test('rbtree', async (t) => {
  /**
   * A tree of timer_t by key, built by hand (node at offset 8, so container-of
   * matters), allocated in a shuffled order so addresses do not follow keys:
   *            50
   *        30      70
   *      20  40  60  80
   *    10
   */
  function build(w: World): { tree: number; sentinel: number; byKey: Map<number, number> } {
    const tree = w.G + off('root_t', 'timers');
    const sentinel = w.make('ngx_rbtree_node_t');
    const byKey = new Map<number, number>();
    for (const key of [60, 10, 80, 50, 20, 70, 40, 30]) byKey.set(key, w.make('timer_t', { payload: key * 100 }));
    const node = (key: number) => byKey.get(key)! + off('timer_t', 'node');
    const shape: [number, number | null, number | null][] = [
      [50, 30, 70],
      [30, 20, 40],
      [70, 60, 80],
      [20, 10, null],
      [10, null, null],
      [40, null, null],
      [60, null, null],
      [80, null, null],
    ];
    for (const [key, l, r] of shape) {
      w.put(node(key), 'ngx_rbtree_node_t', 'key', key);
      w.put(node(key), 'ngx_rbtree_node_t', 'left', l === null ? sentinel : node(l));
      w.put(node(key), 'ngx_rbtree_node_t', 'right', r === null ? sentinel : node(r));
    }
    w.put(tree, 'ngx_rbtree_t', 'root', node(50));
    w.put(tree, 'ngx_rbtree_t', 'sentinel', sentinel);
    return { tree, sentinel, byKey };
  }
  const nodeOf = (timer: number) => timer + off('timer_t', 'node');

  t.test('in key order, by container-of', async (t) => {
    const w = new World();
    const { byKey } = build(w);
    t.same(elems(w, 'each(rbtree(&self.timers, timer_t, node), it.node.key)'), [10, 20, 30, 40, 50, 60, 70, 80]);
    t.same(elems(w, 'each(rbtree(&self.timers, timer_t, node), it.payload)'), [1000, 2000, 3000, 4000, 5000, 6000, 7000, 8000]);
    t.same(elems(w, 'rbtree(&self.timers, timer_t, node)'), [10, 20, 30, 40, 50, 60, 70, 80].map((k) => byKey.get(k)));
    t.equal(ev(w, 'count(rbtree(&self.timers, timer_t, node))'), 8);
    t.equal(ev(w, 'min(rbtree(&self.timers, timer_t, node), it.node.key)'), 10);
  });

  t.test('an empty tree: the root is the sentinel', async (t) => {
    const w = new World();
    const { tree, sentinel } = build(w);
    w.put(tree, 'ngx_rbtree_t', 'root', sentinel);
    t.equal(ev(w, 'count(rbtree(&self.timers, timer_t, node))'), 0);
    w.put(tree, 'ngx_rbtree_t', 'root', 0);
    walkError(t, thrown(() => ev(w, 'count(rbtree(&self.timers, timer_t, node))')), 'corrupt', 'bintree 0x0: NULL root (an empty tree points at its sentinel)');
  });

  t.test('a NULL child is corrupt', async (t) => {
    const w = new World();
    const { sentinel, byKey } = build(w);
    w.put(nodeOf(byKey.get(40)!), 'ngx_rbtree_node_t', 'right', 0);
    walkError(t, thrown(() => ev(w, 'count(rbtree(&self.timers, timer_t, node))')), 'corrupt', `bintree ${hex(nodeOf(byKey.get(50)!))}: node ${hex(nodeOf(byKey.get(40)!))} has a NULL right child (the sentinel is ${hex(sentinel)})`);
  });

  t.test('a cycle down the left is too deep', async (t) => {
    const w = new World();
    const { byKey } = build(w);
    w.put(nodeOf(byKey.get(10)!), 'ngx_rbtree_node_t', 'left', nodeOf(byKey.get(50)!));
    walkError(t, thrown(() => ev(w, 'count(rbtree(&self.timers, timer_t, node))')), 'corrupt', `bintree ${hex(nodeOf(byKey.get(50)!))}: deeper than 100000 (a cycle, or not a tree)`);
  });

  t.test('a cycle down the right runs into the node limit', async (t) => {
    const w = new World();
    const { byKey } = build(w);
    w.put(nodeOf(byKey.get(80)!), 'ngx_rbtree_node_t', 'right', nodeOf(byKey.get(80)!));
    const err = thrown(() => ev(w, 'count(rbtree(&self.timers, timer_t, node))', { limits: { maxNodes: 100, maxTotal: 1000 } }));
    walkError(t, err, 'limit', `bintree ${hex(nodeOf(byKey.get(50)!))} has more than 100 elements (--max-nodes)`);
  });
});

t.test('bintree: a plain binary tree, NULL children', async (t) => {
  /**
   *            50
   *        30      70
   *      20  40  60  80
   *    10
   */
  function build(w: World): Map<number, number> {
    const byKey = new Map<number, number>();
    for (const key of [60, 10, 80, 50, 20, 70, 40, 30]) byKey.set(key, w.make('tnode_t', { key }));
    const shape: [number, number | null, number | null][] = [
      [50, 30, 70],
      [30, 20, 40],
      [70, 60, 80],
      [20, 10, null],
    ];
    for (const [key, l, r] of shape) {
      w.put(byKey.get(key)!, 'tnode_t', 'left', l === null ? 0 : byKey.get(l)!);
      w.put(byKey.get(key)!, 'tnode_t', 'right', r === null ? 0 : byKey.get(r)!);
    }
    w.put(w.G, 'root_t', 'tree', byKey.get(50)!);
    return byKey;
  }

  t.test('in order and root first', async (t) => {
    const w = new World();
    const byKey = build(w);
    t.same(elems(w, 'each(bintree(self.tree, left, right), it.key)'), [10, 20, 30, 40, 50, 60, 70, 80]);
    t.same(elems(w, 'each(bintree_preorder(self.tree, left, right), it.key)'), [50, 30, 20, 10, 40, 70, 60, 80]);
    t.same(elems(w, 'bintree(self.tree, left, right)'), [10, 20, 30, 40, 50, 60, 70, 80].map((k) => byKey.get(k)));
    t.equal(ev(w, 'sum(bintree(self.tree, left, right), it.key)'), 360);
    t.equal(ev(w, 'count(bintree_preorder(self.tree, left, right), it.key > 35)'), 5);
  });

  t.test('an empty tree is a NULL root', async (t) => {
    const w = new World();
    t.equal(ev(w, 'count(bintree(self.tree, left, right))'), 0);
    t.equal(ev(w, 'count(bintree_preorder(self.tree, left, right))'), 0);
  });

  t.test('a cycle down the left is too deep; down the right, too many', async (t) => {
    const w = new World();
    const byKey = build(w);
    w.put(byKey.get(10)!, 'tnode_t', 'left', byKey.get(50)!);
    const root = hex(byKey.get(50)!);
    walkError(t, thrown(() => ev(w, 'count(bintree(self.tree, left, right))')), 'corrupt', `bintree ${root}: deeper than 100000 (a cycle, or not a tree)`);
    w.put(byKey.get(10)!, 'tnode_t', 'left', 0);
    w.put(byKey.get(80)!, 'tnode_t', 'right', byKey.get(70)!);
    walkError(t, thrown(() => ev(w, 'count(bintree_preorder(self.tree, left, right))')), 'limit', `bintree_preorder ${root} has more than 10000 elements (--max-nodes)`);
  });

  t.test('a sentinel for leaves: an rbtree walked as a plain tree, container_of by hand', async (t) => {
    const w = new World();
    const tree = w.G + off('root_t', 'timers');
    const sentinel = w.make('ngx_rbtree_node_t');
    const timers = [1, 2, 3].map((k) => w.make('timer_t', { payload: k * 100 }));
    const node = (i: number) => timers[i] + off('timer_t', 'node');
    w.put(node(1), 'ngx_rbtree_node_t', 'left', node(0));
    w.put(node(1), 'ngx_rbtree_node_t', 'right', node(2));
    for (const i of [0, 2]) {
      w.put(node(i), 'ngx_rbtree_node_t', 'left', sentinel);
      w.put(node(i), 'ngx_rbtree_node_t', 'right', sentinel);
    }
    w.put(tree, 'ngx_rbtree_t', 'root', node(1));
    w.put(tree, 'ngx_rbtree_t', 'sentinel', sentinel);
    t.same(elems(w, 'each(bintree(self.timers.root, left, right, self.timers.sentinel), container_of(it, timer_t, node).payload)'), [100, 200, 300]);
    t.same(elems(w, 'each(rbtree(&self.timers, timer_t, node), it.payload)'), [100, 200, 300], 'the same walk as rbtree()');
    w.put(node(2), 'ngx_rbtree_node_t', 'left', 0);
    walkError(t, thrown(() => ev(w, 'count(bintree(self.timers.root, left, right, self.timers.sentinel))')), 'corrupt', `bintree ${hex(node(1))}: node ${hex(node(2))} has a NULL left child (the sentinel is ${hex(sentinel)})`);
  });
});

t.test('dlist: a circular list with link fields of any name, by container-of', async (t) => {
  const w = new World();
  const head = w.G + off('root_t', 'items');
  const items = [7, 8, 9].map((id) => w.make('item_t', { id }));
  const hook = (i: number) => (i < 0 || i >= items.length ? head : items[i] + off('item_t', 'hook'));
  for (let i = -1; i < items.length; i++) {
    w.put(hook(i), 'hook_t', 'fwd', hook(i + 1));
    w.put(hook(i), 'hook_t', 'back', hook(i === -1 ? items.length - 1 : i - 1));
  }
  t.same(elems(w, 'each(dlist(&self.items, item_t, hook, fwd, back), it.id)'), [7, 8, 9]);
  t.same(elems(w, 'dlist(&self.items, item_t, hook, fwd, back)'), items);
  t.throws(() => typed('dlist(&self.items, item_t, hook)'), /dlist\(\) needs hook_t to declare field 'next'/, 'next and prev by default');
  w.put(hook(1), 'hook_t', 'back', hook(2));
  walkError(t, thrown(() => ev(w, 'count(dlist(&self.items, item_t, hook, fwd, back))')), 'corrupt', `dlist ${hex(head)}: ${hex(hook(0))}'s fwd ${hex(hook(1))} has back ${hex(hook(2))}`);
});

t.test('named walks: small ones inlined, large ones called', async (t) => {
  t.equal(typed('evens(self)').op, 'walk', 'evens is inlined');
  t.equal(typed('sixes(self)').op, 'call', 'sixes is a call');
  t.equal(typed('second_six(self)').op, 'call', 'so is a large walk that yields a value');
  const w = new World();
  w.list(Array.from({ length: 30 }, (_, i) => i + 1));
  t.same(elems(w, 'each(evens(self), it.value)').length, 15);
  t.same(elems(w, 'each(sixes(self), it.value)'), [6, 12, 18, 24, 30]);
  t.same(elems(w, 'sixes_doubled(self)'), [12, 24, 36, 48, 60]);
  t.equal(ev(w, 'count(sixes(self))'), 5);
  t.equal(ev(w, 'sum(sixes(self), it.value) + count(sixes(self))'), 95, 'two calls, one function');
  t.equal(ev(w, 'second_six(self)'), 12);
  t.same(elems(w, 'take(sixes(self), 2)').length, 2);
  t.equal(ev(w, 'any(sixes(self), it.value == 18)'), 1, 'the caller stops the called walk');
  t.same(elems(w, 'each(range(2), each(sixes(G), it.value + 0))'), [6, 12, 18, 24, 30, 6, 12, 18, 24, 30]);
  w.put(w.G, 'root_t', 'list', 0x20000000);
  const err = thrown(() => ev(w, 'count(sixes(self))'));
  t.type(err, Fault);
  t.equal(err.message, '0x20000000: not in any mapping', 'a fault inside the called walk is the caller\'s');
});

t.test('walks of scalars: of: u8 takes a pointer to bytes (char alike), and only that', async (t) => {
  const w = new World();
  const title = w.mem.alloc(16, 1);
  w.put(w.G, 'root_t', 'title', title);
  w.mem.text(title + 1, 'abc');
  w.mem.u8(title, 3);
  t.equal(ev(w, 'prefixed(self.title)'), 'abc', 'a ptr char is a pointer to bytes');
  t.equal(ev(w, 'prefixed_len(cast(self.title, u8))'), 3, 'and so is a ptr u8');
  t.throws(() => typed('prefixed(self)'), /the argument of prefixed\(\) must point to u8, but it is ptr root_t/);
  t.throws(() => typed('prefixed(cast(self.title, u32))'), /the argument of prefixed\(\) must point to u8, but it is ptr u32/);
});

t.test('a small walk of a value is inlined unless that would evaluate a costly argument again', async (t) => {
  t.not(typed('a_plus_b(self)').op, 'call', 'given self, it is inlined: self.a + self.b');
  t.equal(typed('a_plus_b(cast(self.alloc, root_t))').op, 'call', 'given a read, it is called: the read is made once');
  t.not(typed('evens(cast(self.alloc, root_t))').op, 'call', 'a walk of a sequence stays inlined, its loop fused with the caller\'s');
  const w = new World();
  w.put(w.G, 'root_t', 'a', 5);
  w.put(w.G, 'root_t', 'b', 7);
  w.put(w.G, 'root_t', 'alloc', w.G);
  t.equal(ev(w, 'a_plus_b(cast(self.alloc, root_t))'), 12, 'called, the same answer, in JS and Python alike');
  t.equal(ev(w, 'a_plus_b(self)'), 12);
});

t.test('array members: char[N] as text, T[N] indexed, walked and listed', async (t) => {
  const w = new World();
  const at = (f: string) => w.G + off('root_t', f);
  w.mem.text(at('key'), 'abc', true);
  [7, 8, 9, 10].forEach((v, i) => w.mem.u32(at('vals') + 4 * i, v));
  const nodes = w.list([5, 6]);
  w.mem.u64(at('kids'), nodes[1]);
  const data = w.mem.alloc(8, 1);
  w.mem.text(data, 'second');
  w.put(at('strs') + 16, 'ngx_str_t', 'len', 6);
  w.put(at('strs') + 16, 'ngx_str_t', 'data', data);

  t.equal(ev(w, 'str(self.key)'), 'abc', 'up to its NUL');
  t.equal(col(w, 'self.key'), 'abc', 'a char[N] column is its text');
  w.mem.text(at('key'), 'abcdefgh');
  t.equal(col(w, 'self.key'), 'abcdefgh', 'no NUL: all N bytes, and not one more');
  t.equal(ev(w, 'self.vals[2]'), 9);
  t.equal(ev(w, 'sum(array(self.vals), it)'), 34);
  t.same(elems(w, 'array(self.vals)'), [7, 8, 9, 10]);
  t.same(col(w, 'self.vals'), [7, 8, 9, 10], 'a u32[4] column is a list');
  t.same(col(w, 'self.kids'), [nodes[1], 0], 'a list of pointers');
  t.equal(ev(w, 'self.kids[0]->value'), 6);
  t.equal(ev(w, 'count(filter(array(self.kids), it != NULL))'), 1);
  t.equal(ev(w, 'str(self.strs[1])'), 'second', 'an array of structs: element 1 at its size');
  t.equal(ev(w, '&self.vals[1]'), at('vals') + 4);
  w.put(w.G, 'root_t', 'a', 4);
  walkError(t, thrown(() => ev(w, 'self.vals[self.a]')), 'corrupt', 'root_t.vals[4]: out of bounds (4 elements)');
  t.throws(() => typed('self.vals[4]'), /index 4 is past the end of root_t\.vals \(4 elements\)/, 'a constant index is checked where it is written');
  t.throws(() => typed('array(self.vals, 2)'), /has its own count: array\(member\)/);
  t.throws(() => typed('str(self.vals)'), /str\(\) of an array needs bytes/);
  t.throws(() => typed('self.vals + 1'), /must be a number or pointer, but this is u32\[4\]/);
});

t.test('a walk as a column is the list of what it yields', async (t) => {
  const w = new World();
  const nodes = w.list([3, 1, 2]);
  t.same(col(w, 'each(chain(self.list, next), it.value)'), [3, 1, 2]);
  t.same(col(w, 'chain(self.list, next)'), nodes);
  t.same(col(w, 'filter(chain(self.list, next), it.value > 5)'), []);
  t.same(col(w, 'each(take(chain(self.list, next), 2), it.value * 10)'), [30, 10]);
  w.put(nodes[2], 'node_t', 'next', nodes[0]);
  walkError(t, thrown(() => col(w, 'chain(self.list, next)')), 'cycle', /cycle at/);
});

t.test('take and nth: the first k elements, element k', async (t) => {
  const w = new World();
  const nodes = w.list([1, 2, 3]);
  t.same(elems(w, 'take(chain(self.list, next), 2)'), nodes.slice(0, 2));
  t.same(elems(w, 'take(chain(self.list, next), 5)'), nodes, 'fewer than k: all of them');
  t.same(elems(w, 'take(chain(self.list, next), 0)'), []);
  t.equal(ev(w, 'sum(take(chain(self.list, next), 2), it.value)'), 3);
  t.same(elems(w, 'each(range(3), sum(take(chain(G.list, next), it), it.value))'), [0, 1, 3], 'take() inside each(): stops its own walk only');
  t.equal(ev(w, 'nth(chain(self.list, next), 1)'), nodes[1]);
  t.equal(ev(w, 'nth(chain(self.list, next), 2).value'), 3);
  t.equal(ev(w, 'nth(each(chain(self.list, next), it.value * 10), 0)'), 10);
  walkError(t, thrown(() => ev(w, 'nth(chain(self.list, next), 3)')), 'corrupt', 'nth(3): the walk has 3 elements');
  walkError(t, thrown(() => ev(w, 'nth(chain(self.list, next), 0 - 1)')), 'corrupt', 'nth(-1): a negative index');
  walkError(t, thrown(() => elems(w, 'take(chain(self.list, next), 0 - 1)')), 'corrupt', 'take(-1): a negative count');
  // Past element k nothing is read: a broken link further on is never followed.
  w.put(nodes[1], 'node_t', 'next', 0x20000000);
  t.equal(ev(w, 'nth(chain(self.list, next), 1).value'), 2);
  t.same(elems(w, 'each(take(chain(self.list, next), 2), it.value)'), [1, 2]);
  t.equal(ev(w, 'container_of(&self.items, root_t, items)'), w.G);
});

t.test('strings', async (t) => {
  const setName = (w: World, bytes: ArrayLike<number>, at?: number): number => {
    const data = at ?? w.mem.alloc(Math.max(bytes.length, 1), 1);
    w.mem.bytes(data, bytes);
    w.put(w.G, 'root_t', 'name', bytes.length);
    w.put(w.G + off('root_t', 'name'), 'ngx_str_t', 'data', data);
    return data;
  };

  t.test('printable text', async (t) => {
    const w = new World();
    setName(w, Buffer.from('hello, world'));
    t.equal(ev(w, 'str(self.name)'), 'hello, world');
    t.equal(ev(w, 'str(self.name.data, 5)'), 'hello');
    t.equal(ev(w, 'self.name.len'), 12);
  });

  t.test('texts of the schema, and cat()', async (t) => {
    const w = new World();
    setName(w, Buffer.from('main.lua'));
    t.equal(ev(w, '"a label"'), 'a label', 'a text in double quotes');
    t.equal(ev(w, 'cat(str(self.name), ":", self.name.len + 34)'), 'main.lua:42', 'texts and integers joined, in decimal');
    t.equal(ev(w, 'cat(0 - 7, "/", ~0 >> 1)'), '-7/9223372036854775807', 'negative and 64-bit integers, exactly');
    t.equal(ev(w, 'self.name.len > 3 ? "long" : "short"'), 'long', 'a text for a number: a choice of texts');
    t.throws(() => typed('cat(max(chain(self.list, next), it.value))'), /max\(\) can only be a whole column/, 'what may have no value is not joined');
    t.throws(() => typed('cat(self.list)'), /cat\(\) joins texts and integers, but this is ptr node_t/);
    t.throws(() => typed('"say \\"hi\\""'), /a text is written in double quotes, of printable characters other than " and \\/);
    t.throws(() => typed(`"${'x'.repeat(300)}"`), /a text of more than 256 characters/);
  });

  t.test('bytes that need escaping', async (t) => {
    const w = new World();
    setName(w, [0x61, 0x00, 0xff, 0x5c, 0x22, 0x27, 0x0a, 0x7f, 0x62]);
    t.equal(ev(w, 'str(self.name)'), 'a\\x00\\xff\\x5c"\'\\x0a\\x7fb');
    setName(w, Buffer.from('a\\b'));
    t.equal(ev(w, 'str(self.name)'), 'a\\x5cb');
  });

  t.test('longer than 4096 bytes is cut, with ...', async (t) => {
    const w = new World();
    setName(w, Buffer.alloc(5000, 'x'));
    t.equal(ev(w, 'str(self.name)'), 'x'.repeat(4096) + '...');
    setName(w, Buffer.alloc(4096, 'y'));
    t.equal(ev(w, 'str(self.name)'), 'y'.repeat(4096), 'exactly 4096 is whole');
  });

  t.test('text across a page boundary', async (t) => {
    const w = new World();
    setName(w, Buffer.from('abcdef'), HEAP + 5 * PAGE - 3);
    t.equal(ev(w, 'str(self.name)'), 'abcdef');
  });

  t.test('empty, NULL, negative', async (t) => {
    const w = new World();
    t.equal(ev(w, 'str(self.name)'), '', 'len 0, data NULL');
    w.put(w.G, 'root_t', 'name', 5);
    const err = thrown(() => ev(w, 'str(self.name)'));
    t.type(err, Fault);
    t.equal(err.message, '0x0: not in any mapping');
    w.put(w.G, 'root_t', 'neg', -3);
    w.put(w.G + off('root_t', 'name'), 'ngx_str_t', 'data', HEAP);
    walkError(t, thrown(() => ev(w, 'str(self.name.data, self.neg)')), 'corrupt', `string at ${hex(HEAP)}: negative length -3`);
  });

  t.test('cstr()', async (t) => {
    const w = new World();
    const title = w.mem.alloc(2048, 1);
    w.put(w.G, 'root_t', 'title', title);
    w.mem.text(title, 'nginx/1.22.1\tok', true);
    t.equal(ev(w, 'cstr(self.title)'), 'nginx/1.22.1\\x09ok');
    w.mem.text(title, 'y'.repeat(2000), true);
    t.equal(ev(w, 'cstr(self.title)'), 'y'.repeat(1024) + '...');
    w.put(w.G, 'root_t', 'title', 0);
    t.equal(ev(w, 'cstr(self.title)'), '', 'NULL is empty');
  });

  t.test('symbol()', async (t) => {
    const w = new World();
    t.equal(ev(w, `symbol(${TEXT + 0x50})`), 'ngx_http_handler+0x10');
    t.equal(ev(w, `symbol(${TEXT + 0x40})`), 'ngx_http_handler');
    t.equal(ev(w, 'symbol(0)'), 'NULL');
    t.equal(ev(w, 'symbol(4660)'), '0x1234', 'an address in no mapping: bare');
    t.equal(ev(w, `symbol(${LIB + 0x3dc10})`), 'ngx_http_lua_module.so+0x3dc10', 'in a stripped object: its file name and the address in the file');
    t.equal(ev(w, `symbol(${LIB})`), 'ngx_http_lua_module.so+0x0', 'its first byte');
    t.equal(ev(w, `symbol(${LIB + 0x60000})`), '0x7f3a20060000', 'the byte past its last page: bare');
    t.equal(ev(w, `symbol(${HEAP + 0x10})`), '0x7f3a12000010', 'anonymous memory (a heap, JIT code): the bare address');
  });
});

t.test('arithmetic', async (t) => {
  const w = new World();
  const set = (field: string, v: number | bigint) => w.put(w.G, 'root_t', field, v);

  t.test('64-bit values', async (t) => {
    set('a', 2 ** 53 - 1);
    t.equal(ev(w, 'self.a'), 9007199254740991);
    set('a', 2 ** 53);
    t.equal(ev(w, 'self.a'), 9007199254740992n, 'exact past 2^53: a bigint');
    set('a', 2n ** 64n - 1n);
    t.equal(ev(w, 'self.a'), 2n ** 64n - 1n);
    t.equal(ev(w, 'self.a - 1'), 2n ** 64n - 2n, 'not rounded to 2^64');
    set('a', 0x123456789abcd);
    set('b', 0x12345);
    t.equal(ev(w, 'self.a'), 0x123456789abcd);
    t.equal(ev(w, 'self.a & 0xffff00000000'), 0x234500000000);
    t.equal(ev(w, 'self.a | 15'), 0x123456789abcf);
    t.equal(ev(w, 'self.a ^ self.a'), 0);
    t.equal(ev(w, 'self.a >> 32'), 0x12345);
    t.equal(ev(w, 'self.b << 20'), 0x1234500000);
    t.equal(ev(w, '~self.a & 0xff'), 0x32);
    // Results with bit 63 set come out signed: exact, where 2^64 - 8 as a double would be 2^64.
    t.equal(ev(w, '~0'), -1);
    t.equal(ev(w, '~7'), -8);
    t.equal(ev(w, 'self.a & ~7'), 0x123456789abc8);
    t.equal(ev(w, 'self.a & ~0xfff'), 0x123456789a000);
    t.equal(ev(w, '(0 - 1) | 1'), -1);
    t.equal(ev(w, '((0 - 1) | 1) & 0xff'), 0xff);
    t.equal(ev(w, '1 << 63'), -(2n ** 63n));
    t.equal(ev(w, '(1 << 63) >> 63'), 1, '>> is a logical shift');
    t.equal(ev(w, '1 << 64'), 0, 'a shift by 64 or more is 0');
    t.equal(ev(w, '1 << (0 - 1)'), 0, 'a negative shift is a huge one, not a crash');
    t.equal(ev(w, 'self.a + self.b'), 0x123456789abcd + 0x12345);
    t.equal(ev(w, 'self.a - self.b'), 0x123456789abcd - 0x12345);
  });

  t.test('signed fields', async (t) => {
    set('neg', -1);
    set('sneg', -5n);
    t.equal(ev(w, 'self.neg'), -1);
    t.equal(ev(w, 'self.sneg'), -5);
    t.equal(ev(w, '-self.neg'), 1);
    t.equal(ev(w, 'self.neg * 7 / 2'), -3, 'division truncates toward zero, as in C');
    t.equal(ev(w, 'self.neg * 7 % 2'), -1);
    t.equal(ev(w, 'self.neg & 0xff'), 0xff, 'bits of -1 are 64 ones');
    t.equal(ev(w, 'self.neg < 0'), 1);
    set('neg', -2147483648);
    t.equal(ev(w, 'self.neg'), -2147483648);
  });

  t.test('a bitfield', async (t) => {
    w.mem.u32(w.G + off('root_t', 'flags'), (23 << 3) | 0b101 | (1 << 8));
    t.equal(ev(w, 'self.flags'), 23);
  });

  t.test('division by zero is a corrupt walk, not a crash', async (t) => {
    set('a', 10);
    set('b', 0);
    walkError(t, thrown(() => ev(w, 'self.a / self.b')), 'corrupt', 'division by zero');
    walkError(t, thrown(() => ev(w, 'self.a % self.b')), 'corrupt', 'division by zero');
  });

  t.test('comparisons and ?:', async (t) => {
    set('a', 2 ** 40 + 1);
    set('b', 2 ** 40);
    t.same(
      ['self.a > self.b', 'self.a < self.b', 'self.a >= self.a', 'self.a <= self.b', 'self.a == self.a', 'self.a != self.a', 'self.a && 0', 'self.a || 0', '!self.a', '!0'].map((e) => ev(w, e)),
      [1, 0, 1, 0, 1, 0, 0, 1, 0, 1],
    );
    t.equal(ev(w, 'self.a > self.b ? self.a - self.b : 99'), 1);
    t.equal(ev(w, 'self.a < self.b ? 1 : self.b == 0 ? 2 : 3'), 3);
    t.equal(ev(w, "self.a ? str(self.name) : cstr(self.title)"), '');
  });

  t.test('sizeof, offsetof, globals', async (t) => {
    t.equal(ev(w, 'sizeof(node_t) + sizeof(u16)'), 50);
    t.equal(ev(w, 'offsetof(root_t, timers)'), 64);
    t.equal(ev(w, '&self.timers'), w.G + 64);
    w.mem.i32(w.ticks, -42);
    t.equal(ev(w, 'ticks'), -42);
    w.mem.u64(w.Gp, w.G);
    set('a', 77);
    t.equal(ev(w, 'Gp->a'), 77);
    t.equal(ev(w, '&G'), w.G);
    walkError(t, thrown(() => ev(w, 'missing + 1')), 'corrupt', "the symbol missing is not in the binary's symbol tables");
  });

  t.test('two global arrays of one length and other element sizes, indexed in one expression, each read by its own size', async (t) => {
    for (let i = 0; i < 8; i++) {
      w.mem.u64(w.big + 8 * i, 1000 + 100 * i);
      w.mem.u32(w.small + 4 * i, 10 * i);
    }
    set('a', 3);
    t.equal(ev(w, 'big[self.a] * 1000 + small[self.a]'), 1300 * 1000 + 30, 'big first');
    t.equal(ev(w, 'small[self.a] * 10000000 + big[self.a]'), 30 * 10000000 + 1300, 'small first');
    t.equal(ev(w, 'big[self.a + 4] - small[self.a + 4]'), 1700 - 70);
    walkError(t, thrown(() => ev(w, 'big[self.a] + small[self.a + 5]')), 'corrupt', 'small[8]: out of bounds (8 elements)');
  });

  t.test('min and max of nothing have no value', async (t) => {
    set('list', 0);
    const top = ev(w, 'max(chain(self.list, next), it.value)');
    t.equal(top, null);
    t.equal(formatValue(top, 'value'), null);
    // Inside a larger expression "no value" would have to mean something: the schema refuses it.
    t.throws(() => ev(w, 'max(chain(self.list, next), it.value) & 7'), /max\(\) can only be a whole column/);
    t.throws(() => ev(w, '~min(chain(self.list, next), it.value)'), /min\(\) can only be a whole column/);
  });
});

t.test('glibc_chunk_size reads *(p-8) & ~7', async (t) => {
  const w = new World();
  const chunk = w.mem.alloc(64, 16);
  const p = chunk + 16;
  w.mem.u64(p - 8, 0x91);
  w.put(w.G, 'root_t', 'alloc', p);
  t.equal(ev(w, 'glibc_chunk_size(self.alloc)'), 0x90);
  w.mem.u64(p - 8, 2 ** 40 + 0x27);
  t.equal(ev(w, 'glibc_chunk_size(self.alloc)'), 2 ** 40 + 0x20);
  t.equal(ev(w, '*cast(self.alloc - 8, u64) & ~7'), 2 ** 40 + 0x20, 'the same, written as an expression');
  w.put(w.G, 'root_t', 'alloc', 0);
  t.equal(ev(w, 'glibc_chunk_size(self.alloc)'), 0, 'NULL has no chunk');
});

t.test('the fake memory refuses what is not mapped', async (t) => {
  const mem = new FakeMemory();
  mem.map(HEAP, 2 * PAGE);
  mem.u64(HEAP + PAGE, 42n);
  const out = new Uint8Array(8);
  t.equal(mem.readInto(HEAP + PAGE, out), 8);
  t.equal(new DataView(out.buffer).getBigUint64(0, true), 42n);
  t.throws(() => mem.readInto(HEAP + 2 * PAGE - 4, out), /outside every mapped region/);
  t.throws(() => mem.readInto(HEAP - 8, out), /outside every mapped region/);
  t.same(mem.reads, [
    { addr: HEAP + PAGE, len: 8 },
    { addr: HEAP + 2 * PAGE - 4, len: 8 },
    { addr: HEAP - 8, len: 8 },
  ]);
});

t.test('the page cache', async (t) => {
  t.test('buffers kept from sample to sample: the next sample sees the bytes as they are now, nothing of the last', async (t) => {
    const mem = new FakeMemory();
    mem.map(HEAP, 16 * PAGE);
    mem.u64(HEAP + 8, 1n);
    mem.u64(HEAP + 3 * PAGE, 2n);
    mem.u64(HEAP + 9 * PAGE, 99n);
    const slabs = new Slabs();
    const first = new Snapshot(mem, mem.ranges(), Infinity, slabs);
    t.same([first.u64(HEAP + 8), first.u64(HEAP + 3 * PAGE), first.u64(HEAP + 9 * PAGE)], [1, 2, 99], 'the whole window, read');
    mem.u64(HEAP + 8, 10n);
    mem.u64(HEAP + 3 * PAGE, 20n);
    mem.hole(HEAP + 8 * PAGE, HEAP + 16 * PAGE); // the window now reads short: its last 8 pages are gone
    slabs.reset();
    const second = new Snapshot(mem, mem.ranges(), Infinity, slabs);
    t.same([second.u64(HEAP + 8), second.u64(HEAP + 3 * PAGE)], [10, 20]);
    t.equal(second.chunk(HEAP + 8, 8).view.buffer, first.chunk(HEAP + 8, 8).view.buffer, "the second sample's bytes are in the first one's buffer");
    t.throws(() => second.u64(HEAP + 9 * PAGE), Fault, 'a page the window no longer brings is not read from what the last sample left there');
  });

  t.test('1000 nodes on 1000 pages: a window read whole once a second page of it is wanted', async (t) => {
    const w = new World();
    const SPREAD = 0x7f5500000000; // 64 KiB-aligned
    const pages = 1000;
    w.mem.map(SPREAD, pages * PAGE);
    // One node per page, at a varying offset, linked in a shuffled order.
    const order = Array.from({ length: pages }, (_, i) => (i * 7919) % pages);
    const nodes = order.map((pg, i) => SPREAD + pg * PAGE + ((i * 56) % (PAGE - 48) & ~7));
    nodes.forEach((n, i) => {
      w.put(n, 'node_t', 'value', i + 1);
      w.put(n, 'node_t', 'next', nodes[i + 1] ?? 0);
    });
    w.put(w.G, 'root_t', 'list', nodes[0]);
    const rt = w.runtime();
    const before = w.mem.readCount;
    t.equal(ev(w, 'sum(chain(self.list, next), it.value)', { rt }), 500500);
    const reads = w.mem.readCount - before;
    // ceil(1000 / 16) = 63 windows of the spread region, each read whole once: after a page of it first, or at once
    // when a window next to it was read whole before; and the page that holds G.
    const probes = reads - 63 - 1;
    t.ok(probes > 0 && probes < 63, `${reads} reads: ${probes} windows were read a page first`);
    t.equal(rt.m.stats.reads, reads);
    t.equal(rt.m.stats.pages, 1000 + probes + 1, 'each page once, and the pages read first once more');
    t.ok(
      w.mem.reads.every((r) => r.len <= 64 * 1024),
      'no read is longer than a chunk',
    );
    t.equal(ev(w, 'count(chain(self.list, next))', { rt }), 1000);
    t.equal(w.mem.readCount - before, reads, 'walking the same nodes again reads nothing');
    t.equal(ev(w, `(*cast(${nodes[500]}, node_t)).value`, { rt }), 501);
    t.equal(w.mem.readCount - before, reads);
  });

  t.test('1000 nodes 64 KiB apart: a page read per node, not a window', async (t) => {
    const w = new World();
    const FAR = 0x7f5400000000; // 64 KiB-aligned
    const n = 1000;
    w.mem.map(FAR, n * 64 * 1024);
    const nodes = Array.from({ length: n }, (_, i) => FAR + ((i * 7919) % n) * 64 * 1024 + 8 * (i % 500));
    nodes.forEach((a, i) => {
      w.put(a, 'node_t', 'value', i + 1);
      w.put(a, 'node_t', 'next', nodes[i + 1] ?? 0);
    });
    w.put(w.G, 'root_t', 'list', nodes[0]);
    const rt = w.runtime();
    const before = w.mem.readCount;
    t.equal(ev(w, 'sum(chain(self.list, next), it.value)', { rt }), (n * (n + 1)) / 2);
    t.equal(w.mem.readCount - before, n + 1, 'one read per node, and one for G');
    t.equal(rt.m.stats.bytes, (n + 1) * PAGE, 'a page each');
  });

  t.test('reads straddling two pages', async (t) => {
    const w = new World();
    const edge = (n: number) => HEAP + n * PAGE;
    w.mem.u64(edge(1) - 4, 0x11223344556677n);
    w.mem.u32(edge(2) - 2, 0xdeadbeef);
    w.mem.u64(edge(3) - 3, -2n);
    t.equal(ev(w, `*cast(${edge(1) - 4}, u64)`), 0x11223344556677);
    t.equal(ev(w, `*cast(${edge(2) - 2}, u32)`), 0xdeadbeef);
    t.equal(ev(w, `*cast(${edge(2) - 2}, i32)`), 0xdeadbeef - 2 ** 32);
    t.equal(ev(w, `*cast(${edge(2) - 1}, u16)`), 0xadbe);
    t.equal(ev(w, `*cast(${edge(2) - 1}, i16)`), 0xadbe - 0x10000);
    const s = new Snapshot(w.mem, w.mem.ranges());
    t.equal(s.i64(edge(3) - 3), -2);
    t.equal(s.u64(edge(3) - 3), 2n ** 64n - 2n);
    t.same([...s.bytes(edge(3) - 2, 4)], [0xff, 0xff, 0xff, 0xff]);
    // A node across two pages (value on one, next on the other) is followed all the same.
    const a = edge(5) - 8;
    const b = w.make('node_t', { value: 2 });
    w.put(a, 'node_t', 'value', 1);
    w.put(a, 'node_t', 'next', b);
    w.put(w.G, 'root_t', 'list', a);
    t.same(elems(w, 'each(chain(self.list, next), it.value)'), [1, 2]);
  });

  t.test('a read is clipped to its mapping', async (t) => {
    const w = new World();
    const C = 0x7f6600000000; // 64 KiB-aligned
    w.mem.map(C, 3 * PAGE); // ends mid-chunk
    w.mem.map(C + 3 * PAGE, 5 * PAGE); // the next mapping, in the same chunk
    w.mem.map(C + 0x10000 + 7 * PAGE, 2 * PAGE); // starts mid-chunk
    w.mem.u64(C + 8, 1);
    w.mem.u64(C + 4 * PAGE, 2);
    w.mem.u64(C + 0x10000 + 8 * PAGE, 3);
    const s = new Snapshot(w.mem, w.mem.ranges());
    const n = w.mem.readCount;
    t.same([s.u64(C + 8), s.u64(C + 4 * PAGE), s.u64(C + 0x10000 + 8 * PAGE)], [1, 2, 3]);
    t.same(w.mem.reads.slice(n), [
      { addr: C, len: PAGE },
      { addr: C + 4 * PAGE, len: PAGE },
      { addr: C + 0x10000 + 8 * PAGE, len: PAGE },
    ]);
    // A second page of a window reads the window, clipped to its mapping.
    t.same([s.u64(C + 2 * PAGE), s.u64(C + 0x10000 + 7 * PAGE)], [0, 0]);
    t.same(w.mem.reads.slice(n + 3), [
      { addr: C, len: 3 * PAGE },
      { addr: C + 0x10000 + 7 * PAGE, len: 2 * PAGE },
    ]);
    // A u64 across the end of a mapping with nothing after it faults, without reading outside.
    const err = thrown(() => s.u64(C + 0x10000 + 9 * PAGE - 4));
    t.type(err, Fault);
    t.equal(err.message, `${hex(C + 0x10000 + 9 * PAGE)}: not in any mapping`);
    t.equal(w.mem.readCount - n, 5);
  });

  t.test('unmapped addresses fault without a read', async (t) => {
    const w = new World();
    const s = new Snapshot(w.mem, w.mem.ranges());
    const n = w.mem.readCount;
    const err = thrown(() => s.u8(0x1000));
    t.type(err, Fault);
    t.equal(err.message, '0x1000: not in any mapping');
    t.equal(w.mem.readCount, n);
  });

  t.test('a short read: the pages before it are kept, the page is tried alone', async (t) => {
    const w = new World();
    w.mem.hole(HEAP + 10 * PAGE, HEAP + 11 * PAGE); // listed in maps, but unmapped since
    w.mem.u64(HEAP + 12 * PAGE, 12);
    w.mem.u64(HEAP + 9 * PAGE, 9);
    const s = new Snapshot(w.mem, w.mem.ranges());
    const n = w.mem.readCount;
    t.equal(s.u64(HEAP + 12 * PAGE), 12);
    t.equal(s.u64(HEAP + 9 * PAGE), 9, 'read by the window, short of the hole');
    t.same(w.mem.reads.slice(n), [
      { addr: HEAP + 12 * PAGE, len: PAGE },
      { addr: HEAP, len: 64 * 1024 },
    ]);
    w.mem.u64(HEAP + 12 * PAGE, 13);
    t.equal(s.u64(HEAP + 12 * PAGE), 12, 'the page read first keeps the bytes it read');
    const err = thrown(() => s.u8(HEAP + 10 * PAGE + 5));
    t.type(err, Fault);
    t.equal(err.message, `${hex(HEAP + 10 * PAGE + 5)}: unreadable`);
    thrown(() => s.u8(HEAP + 10 * PAGE + 6));
    // The hole costs the page alone, once; then it is known.
    t.equal(w.mem.readCount - n, 3);
  });
});

t.test('runView', async (t) => {
  t.test('roots: the same item twice is one item; NULL is skipped; checks', async (t) => {
    const w = new World();
    const [n1, n2, n3] = w.list([1, 2, 3]);
    w.put(n2, 'node_t', 'small', -7);
    const extra = w.make('node_t', { value: 0 });
    const arr = w.mem.alloc(4 * 8);
    [0, n3, extra, 0].forEach((p, i) => w.mem.u64(arr + i * 8, p));
    w.put(w.G, 'root_t', 'nodes', arr);
    w.put(w.G, 'root_t', 'nnodes', 4);
    const r = w.run('nodes');
    t.same(r.items, [
      { origin: 'list', addr: hex(n1), value: 1, small: 0 },
      { origin: 'list', addr: hex(n2), value: 2, small: -7 },
      { origin: 'list', addr: hex(n3), value: 3, small: 0 },
      { origin: 'array', addr: hex(extra), value: 0, small: 0 },
    ]);
    t.equal(r.partial, true, 'a check failed');
    t.same(r.errors, [{ item: hex(n3), message: 'check failed: value too big' }]);
  });

  t.test('all good: not partial', async (t) => {
    const w = new World();
    w.list([1, 2]);
    const r = w.run('nodes');
    t.equal(r.items.length, 2);
    t.same(r.errors, []);
    t.equal(r.partial, false);
    const lists = w.run('lists');
    t.same(lists, { items: [{ origin: 'g', count: 2, sum: 3, top: 2, name: '' }], partial: false, errors: [] });
  });

  t.test('a fault in a root walk: what was found is kept, and the result names the root', async (t) => {
    const w = new World();
    const [n1, n2] = w.list([0, 1, 2]);
    w.put(n2, 'node_t', 'next', 0x20000000);
    const r = w.run('nodes');
    t.same(
      r.items.map((i) => i.addr),
      [hex(n1), hex(n2), '0x20000000'],
    );
    t.equal(r.partial, true);
    t.same(r.errors.slice(0, 2), [
      { root: 'list', message: '0x20000008: not in any mapping' },
      { root: 'again', message: '0x20000008: not in any mapping' },
    ]);
    // The item that could not be read has null columns, each with its error.
    t.same(r.items[2], { origin: 'list', addr: '0x20000000', value: null, small: null });
    t.match(r.errors.slice(2), [
      { item: '0x20000000', column: 'value', message: '0x20000000: not in any mapping' },
      { item: '0x20000000', column: 'small', message: '0x20000010: not in any mapping' },
      { item: '0x20000000', message: 'check could not run: 0x20000000: not in any mapping' },
    ]);
  });

  t.test('a root that needs a missing symbol', async (t) => {
    const w = new World();
    w.put(w.G, 'root_t', 'a', 5);
    const r = w.run('broken_root');
    t.same(r.items, [{ origin: 'g', a: 5 }]);
    t.same(r.errors, [{ root: 'lost', message: "the symbol missing is not in the binary's symbol tables" }]);
    t.equal(r.partial, true);
  });

  t.test('--addr: one item, from an expression', async (t) => {
    const w = new World();
    const [, n2] = w.list([4, 5, 6]);
    const r = w.run('nodes', hex(n2));
    t.same(r.items, [{ origin: 'addr', addr: hex(n2), value: 5, small: 0 }]);
    t.same(r.errors, [{ item: hex(n2), message: 'check failed: value too big' }]);
    const viaG = w.run('nodes', 'G.list->next');
    t.same(viaG.items.map((i) => i.value), [5]);
  });
});

t.test('let: a value named once, computed once', async (t) => {
  const w = new World();
  w.list([3, 4, 5]);
  w.put(w.G, 'root_t', 'a', 6);
  t.equal(ev(w, 'let(n, count(chain(self.list, next)), n * n + n)'), 12, 'a walk counted once, used twice');
  t.equal(ev(w, 'let(a, self.a, let(b, a + 1, a * b))'), 42, 'nested, the inner of the outer');
  t.equal(ev(w, 'sum(chain(self.list, next), let(v, it.value, v * v))'), 50, 'inside a walk, once per element');
  t.equal(ev(w, 'let(k, 4, count(chain(self.list, next), it.value >= k))'), 2, 'used inside an aggregate');
  t.same(col(w, 'let(k, 4, each(chain(self.list, next), it.value + k))'), [7, 8, 9], 'a walk of a name: the name computed before the loop');
  t.equal(ev(w, 'let(s, str(self.name), cat(s, "|", s))'), '|', 'of a text');
  // Counted by the budget: the walk is spent once however often the name is used.
  const R = w.runtime();
  ev(w, 'let(n, count(chain(self.list, next)), n + n + n + n)', { rt: R });
  t.equal(R.visited, 3, 'the list walked once, not four times');
  const again = w.runtime();
  ev(w, 'count(chain(self.list, next)) + count(chain(self.list, next)) + count(chain(self.list, next)) + count(chain(self.list, next))', { rt: again });
  t.equal(again.visited, 12, 'without let, four times');
  t.throws(() => typed('let(self, 1, self)'), /the first argument of let\(\): self is what the language binds/);
  t.throws(() => typed('let(G, 1, G)'), /G is a global/);
  t.throws(() => typed('let(count, 1, 2)'), /count is a builtin/);
  t.throws(() => typed('let(evens, 1, 2)'), /evens is a walk/);
  t.throws(() => typed('let(x, 1, let(x, 2, x))'), /x is a name already bound here/);
  t.throws(() => typed('let(x, chain(self.list, next), 1)'), /let\(\) names a value, but this is sequence of ptr node_t/);
  t.throws(() => typed('let(1, 2, 3)'), /the first argument of let\(\) is a name/);
  t.throws(() => typed('x + let(x, 1, x)'), /unknown name 'x'/, 'a name is bound in its body only');
});

t.test("a view's let: names a walk once for every column and check, computed once per row", async (t) => {
  const w = new World();
  w.list([2, 4, 6, 8]);
  const shared = PACK.views.get('shared')!;
  const unshared = PACK.views.get('unshared')!;
  const truth = { origin: 'g', n: 4, total: 20, mean: 5, text: '4 nodes, 20 in all, 5 each', above: 2 };
  const R1 = w.runtime();
  const r1 = runView(compileView(lowerView(shared), BOUND, R1));
  t.same(r1, { items: [truth], partial: false, errors: [] });
  const R2 = w.runtime();
  const r2 = runView(compileView(lowerView(unshared), BOUND, R2));
  t.same(r2.items, r1.items, 'the same row as the view that writes the walk each time');
  // With let: n and total in one grouped fold for the row, and above's own walk (its mean is the row's): 2 walks of 4.
  // Without: every count and sum of self, above's too, in one fold (1 walk); above's condition walks 3 times at each
  // of its 4 elements (inside a fold nothing is folded again): 1 + 12 = 13 walks.
  t.equal(R1.visited, 8, 'with let: the list walked twice for the row');
  t.equal(R2.visited, 52, 'without: 13 times');
  // Unfolded (as the kernel's printer lowers): n 3 walks with let:; without, n 1, total 1, mean 3, text 5, above 1 + 3
  // for each of its 4 elements, the check 1: 24 walks.
  const R3 = w.runtime();
  t.same(runView(compileView(lowerView(shared, false, false), BOUND, R3)).items, r1.items, 'unfolded: the same row');
  t.equal(R3.visited, 12, 'unfolded, with let: 3 times');
  const R4 = w.runtime();
  t.same(runView(compileView(lowerView(unshared, false, false), BOUND, R4)).items, r1.items, 'unfolded: the same row');
  t.equal(R4.visited, 96, 'unfolded, without let: 24 times');
  // Each column alone, in JS and in Python (a column's program computes a name once).
  for (const c of shared.columns) t.same(both(w, c.name, lowerColumn(c.expr), 'value', {}).value, truth[c.name as keyof typeof truth], `${c.name}, in both languages`);
  // A row's names are forgotten at the next row: another item, its own answers.
  const other = w.mem.alloc(size('root_t'));
  const r3 = runView({ ...compileView(lowerView(shared), BOUND, w.runtime()) }, () => other as Int);
  t.same(r3.items, [{ origin: 'addr', n: 0, total: 0, mean: 0, text: '0 nodes, 0 in all, 0 each', above: 0 }], 'another item, its own names');
  const bad = (let_: string, where: RegExp, msg: RegExp) => {
    const text = SCHEMA.replace("    let:\n      n: count(chain(self.list, next))\n", `    let:\n${let_}\n      n: count(chain(self.list, next))\n`);
    const err = thrown(() => parseSchema(text, 'fake.yaml'));
    t.match(err.message, where);
    t.match(err.message, msg);
  };
  bad('      self: 1', /^fake\.yaml:\d+:7: /, /view shared: let:: self is what the language binds/);
  bad('      G: 1', /^fake\.yaml:\d+:7: /, /G is a global/);
  bad('      w: chain(self.list, next)', /^fake\.yaml:\d+:10: /, /let: w names a value, but this is sequence of ptr node_t/);
  bad('      w: n + 1', /^fake\.yaml:\d+:10: /, /unknown name 'n'/);
});

t.test('a grouped fold: the aggregates of one walk in one loop a row, the same answers and failures as a walk each', async (t) => {
  const view = PACK.views.get('folded')!;
  const folded = lowerView(view);
  const unfolded = lowerView(view, false, false);
  /** The view run folded and unfolded over the same world: the rows and errors of each, and the elements each visited. */
  const runBoth = (w: World, limits?: Limits) => {
    const R1 = w.runtime(limits);
    const a = runView(compileView(folded, BOUND, R1));
    const R2 = w.runtime(limits);
    const b = runView(compileView(unfolded, BOUND, R2));
    return { folded: a, unfolded: b, visited: [R1.visited, R2.visited] };
  };
  /** Each column's program alone (its fold computed for it), in JS and in python3: the same value or error, the same budget. */
  const inPython = (t: Test, w: World) => {
    for (const c of folded.columns) {
      let said: unknown;
      try {
        said = both(w, c.name, { funcs: folded.funcs, entry: c.fn }, 'value', {}).value;
      } catch (err) {
        if (!(err instanceof WalkError || err instanceof Fault)) throw err;
        said = err.message;
      }
      t.ok(said !== undefined, `${c.name}: ${JSON.stringify(said)} in JS and in Python`);
    }
  };
  const named = (w: World, values: number[]) => {
    const nodes = w.list(values);
    const text = w.mem.alloc(8);
    w.mem.u64(text, 7);
    for (const n of nodes) {
      w.put(n, 'node_t', 'small', -1);
      w.put(n + off('node_t', 'name'), 'ngx_str_t', 'data', text);
    }
    return nodes;
  };
  t.test('one walk of the list for all its aggregates: each element visited once', async (t) => {
    const w = new World();
    named(w, [1, 2, 3, 4, 5, 6, 7, 8]);
    const r = runBoth(w);
    t.same(r.folded.items, [
      { origin: 'g', n: 8, evens: 4, even_sum: 20, top: 8, low_odd: 1, huge: null, small_sum: -8, all_pos: 1, any_over5: 1, inverse: 2716, first_bytes: 56, mean: 4, other: 0, other_big: 0, other_sum: 0, div_sum: -4000, div_min: -500 },
    ]);
    t.same(r.folded, r.unfolded, 'the same row and errors as a walk each');
    t.same(r.folded.errors, []);
    // Folded: the list once (8) for its 14 distinct aggregates and 17 uses; array(self.nodes, 0) none.
    // Unfolded: 12 whole walks of the list, any()'s stops at 6, mean's 3 and the check's 1: 8 * 16 + 6.
    t.same(r.visited, [8, 8 * 16 + 6], 'the list visited once for the row, folded');
    const fold = folded.funcs.filter((f) => /^fold\d/.test(f.name));
    t.equal(fold.length, 2, 'two folds: the list, the array');
    inPython(t, w);
  });
  t.test("an aggregate's own failure fails it alone, where its walk would have failed", async (t) => {
    const w = new World();
    const nodes = named(w, [1, 2, 0, 4]);
    // The third node's value 0: 1000 / 0; the fourth node's text is not mapped.
    w.put(nodes[3] + off('node_t', 'name'), 'ngx_str_t', 'data', 0x20000000);
    // The second node's small 1: 1000 / 0, which div_sum and div_min compute once, fails both.
    w.put(nodes[1], 'node_t', 'small', 1);
    // The array's second node is not mapped: it.value, the first read of other_big and other_sum, read once for both, fails both.
    const arr = w.mem.alloc(16);
    w.mem.u64(arr, nodes[1]);
    w.mem.u64(arr + 8, 0x20000000);
    w.put(w.G, 'root_t', 'nodes', arr);
    w.put(w.G, 'root_t', 'nnodes', 2);
    const r = runBoth(w);
    t.same(r.folded, r.unfolded, 'the same row and errors as a walk each');
    t.same(r.folded.items[0], { origin: 'g', n: 4, evens: 3, even_sum: 6, top: 4, low_odd: 1, huge: null, small_sum: -2, all_pos: 0, any_over5: 0, inverse: null, first_bytes: null, mean: 1, other: 2, other_big: null, other_sum: null, div_sum: null, div_min: null });
    t.same(
      r.folded.errors.map((e) => [e.column, e.message]),
      [
        ['inverse', 'division by zero'],
        ['first_bytes', '0x20000000: not in any mapping'],
        ['other_big', '0x20000000: not in any mapping'],
        ['other_sum', '0x20000000: not in any mapping'],
        ['div_sum', 'division by zero'],
        ['div_min', 'division by zero'],
      ],
    );
    t.equal(r.visited[0], 4 + 2, 'the walk went on for the others (and the array: 2)');
    inPython(t, w);
  });
  t.test("a failure of the walk fails every aggregate still going, with the walk's own words", async (t) => {
    const w = new World();
    const nodes = named(w, [1, 7, 3, 4, 5]);
    w.put(nodes[4], 'node_t', 'next', nodes[1]); // a cycle
    const r = runBoth(w);
    t.same(r.folded, r.unfolded, 'the same row and errors as a walk each');
    const row = r.folded.items[0];
    t.equal(row.any_over5, 1, 'any() had its answer before the cycle');
    for (const c of ['n', 'evens', 'even_sum', 'top', 'low_odd', 'huge', 'small_sum', 'all_pos', 'inverse', 'first_bytes', 'mean', 'div_sum', 'div_min']) t.equal(row[c], null, `${c}: the cycle`);
    t.match(r.folded.errors.find((e) => e.column === 'n')!.message, /^node_t\.next chain: cycle at 0x[0-9a-f]+ after \d+ elements$/);
    t.same(
      r.folded.errors.map((e) => e.message),
      [...Array(13).fill(r.folded.errors[0].message), `check could not run: ${r.folded.errors[0].message}`],
      'every column but any_over5 and the array\'s, and the check',
    );
    inPython(t, w);
  });
  t.test('--max-nodes and the budget: once per element, the same words', async (t) => {
    const w = new World();
    named(w, [1, 2, 3, 4, 5, 6]);
    const r = runBoth(w, { maxNodes: 5, maxTotal: 1000 });
    t.same(r.folded, r.unfolded, 'the same row and errors as a walk each');
    t.same(r.folded.errors[0], { item: hex(w.G), column: 'n', message: 'node_t.next chain has more than 5 elements (--max-nodes)' });
    t.equal(r.folded.items[0].any_over5, null, 'any() had no answer within 5');
    t.same(r.visited, [6, 15 * 6], 'the fold spent 6 (the one over the limit counted, as each walk counts it); 15 walks did each');
    // The sample's budget: folded, one walk of 6 fits in 10; a walk each does not.
    const b = runBoth(w, { maxNodes: 100, maxTotal: 10 });
    t.same(b.folded.errors, [], 'folded: 6 elements of 10');
    t.same(b.folded.items[0].n, 6);
    t.match(b.unfolded.errors.at(-1)!, { message: /the sample visited more than 10 elements in all \(--max-nodes x 10\)$/ }, 'a walk each: over the budget');
  });
  t.test('an empty walk: counts 0, max of nothing none, all() true', async (t) => {
    const w = new World();
    const r = runBoth(w);
    t.same(r.folded, r.unfolded);
    t.same(r.folded.items[0], { origin: 'g', n: 0, evens: 0, even_sum: 0, top: null, low_odd: null, huge: null, small_sum: 0, all_pos: 1, any_over5: 0, inverse: 0, first_bytes: 0, mean: 0, other: 0, other_big: 0, other_sum: 0, div_sum: 0, div_min: null });
    inPython(t, w);
  });
  t.test('the eBPF printer refuses a fold cleanly; a probe is lowered without one', async (t) => {
    // A fold is refused, with a message (a walk this large may be refused sooner, for the kernel's stack).
    t.type(captureRefusal(folded, [folded.columns[0].fn], SHAPE_ONLY), 'string');
    const small = lowerView(PACK.views.get('shared')!);
    t.match(captureRefusal(small, [small.columns[0].fn], SHAPE_ONLY), /grouped fold/);
    t.notOk(
      unfolded.funcs.some((f) => f.name.startsWith('fold')),
      'unfolded (withInstant, a probe): no fold',
    );
    t.equal(captureRefusal(unfolded, [unfolded.columns[0].fn], SHAPE_ONLY), null, 'which the kernel runs');
  });
});

t.test('after(p): the bytes right after a struct', async (t) => {
  const w = new World();
  const n = w.make('node_t', { value: 1 });
  const tail = w.mem.alloc(16);
  t.equal(tail, n + size('node_t'), 'the fake heap put the tail right after the node');
  w.mem.u64(tail, 0x1122334455667788n);
  w.mem.u64(tail + 8, 99);
  t.equal(ev(w, 'after(self)', { self: n, selfType: 'node_t' }), n + size('node_t'), 'self + sizeof(node_t)');
  t.equal(ev(w, '*after(self)', { self: n, selfType: 'node_t' }), 0x88, 'a pointer to bytes');
  t.equal(ev(w, 'after(self)[1]', { self: n, selfType: 'node_t' }), 0x77);
  t.equal(ev(w, '*cast(after(self) + (self.value ? 8 : 0), u64)', { self: n, selfType: 'node_t' }), 99, 'C: *(uint64_t *) ((u_char *) (p + 1) + (flag ? 8 : 0))');
  t.throws(() => typed('after(self.a)'), /after\(\) needs a pointer to a struct, but this is uint/);
});

t.test("enum_name: an enumerator's name from the build's layout, else the number", async (t) => {
  const w = new World();
  const name = (field: 'a' | 'neg' | 'sneg', v: number) => {
    w.put(w.G, 'root_t', field, v);
    return ev(w, `enum_name(self.${field}, state_e)`);
  };
  t.equal(name('a', 2), 'ST_WRITE');
  t.equal(name('a', 0), 'ST_IDLE');
  t.equal(name('a', 1), 'ST_READ', 'two names of one value: the first declared, as gdb prints it');
  t.equal(name('a', 7), '7', 'no enumerator: the number');
  t.equal(name('neg', -1), 'ST_GONE', 'a negative value of a signed field');
  t.equal(name('a', 4294967295), 'ST_BIG');
  t.equal(ev(w, 'cat("state ", enum_name(2, state_e))'), 'state ST_WRITE', 'text like any other');
  walkError(t, thrown(() => ev(w, 'enum_name(2, later_e)')), 'unavailable', 'enum_name(): the layout of this build has no enumerators of later_e (it was made before enums: named it): make it again with xgen layout');
  t.throws(() => typed('enum_name(self, state_e)'), /enum_name\(\) needs an integer, but this is ptr root_t/);
  t.throws(() => typed('enum_name(1, node_t)'), /the second argument of enum_name\(\) is an enum the schema declares in enums: \(state_e, later_e\)/);
});

t.test('ntohs, ntohl: network byte order', async (t) => {
  const w = new World();
  t.equal(ev(w, 'ntohs(0x1f90)'), 0x901f);
  t.equal(ev(w, 'ntohs(0xabcd1f90)'), 0x901f, 'the low 16 bits');
  t.equal(ev(w, 'ntohl(0x0100007f)'), 0x7f000001);
  t.equal(ev(w, 'ntohl(0 - 1)'), 0xffffffff, 'the low 32 bits of a negative number');
  t.equal(ev(w, 'ntohs(ntohs(12345))'), 12345);
  t.throws(() => typed('ntohs(self)'), /ntohs\(\) needs an integer, but this is ptr root_t/);
});

t.test('sockaddr_str: a struct sockaddr as ip:port, [ip6]:port (RFC 5952), family N', async (t) => {
  const w = new World();
  const sa = (bytes: number[]) => {
    const a = w.mem.alloc(32);
    w.mem.bytes(a, bytes);
    return a;
  };
  const v6 = (port: number, groups: number[]) => sa([10, 0, port >> 8, port & 0xff, 0, 0, 0, 0, ...groups.flatMap((g) => [g >> 8, g & 0xff])]);
  const text = (a: number) => {
    w.put(w.G, 'root_t', 'alloc', a);
    return ev(w, 'sockaddr_str(self.alloc)');
  };
  t.equal(text(sa([2, 0, 0x1f, 0x90, 127, 0, 0, 1])), '127.0.0.1:8080', 'AF_INET');
  t.equal(text(sa([2, 0, 0xff, 0xff, 255, 255, 255, 255])), '255.255.255.255:65535');
  const cases: [number[], string][] = [
    [[0, 0, 0, 0, 0, 0, 0, 1], '::1'],
    [[0, 0, 0, 0, 0, 0, 0, 0], '::'],
    [[0x2001, 0xdb8, 0, 0, 0, 0, 0, 1], '2001:db8::1'],
    [[0x2001, 0xdb8, 0, 1, 1, 1, 1, 1], '2001:db8:0:1:1:1:1:1'],
    [[0x2001, 0, 0, 1, 0, 0, 0, 1], '2001:0:0:1::1'],
    [[0x2001, 0xdb8, 0, 0, 1, 0, 0, 1], '2001:db8::1:0:0:1'],
    [[0xfe80, 0, 0, 0, 0x0202, 0xb3ff, 0xfe1e, 0x8329], 'fe80::202:b3ff:fe1e:8329'],
    [[0x2001, 0xdb8, 0xabcd, 0x12, 0, 0, 0, 0], '2001:db8:abcd:12::'],
    [[0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0280], '::ffff:192.0.2.128'],
    [[0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff], 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'],
  ];
  for (const [groups, ip] of cases) t.equal(text(v6(443, groups)), `[${ip}]:443`, ip);
  t.equal(text(sa([1, 0, 47, 116, 109, 112])), 'family 1', 'AF_UNIX and the rest: the family');
  t.equal(text(0), 'NULL');
  t.match(thrown(() => text(0x20000000)).message, /^0x20000000: not in any mapping$/, 'unreadable: a fault, the same in both');
});

t.test('iterate: a chain through any expression, bounded', async (t) => {
  const w = new World();
  const nodes = w.list([5, 6, 7]);
  t.same(elems(w, 'iterate(self.list, cast(it, node_t).next)'), nodes, 'first, next of it, ... until NULL');
  t.same(elems(w, 'iterate(NULL, cast(it, node_t).next)'), [], 'NULL first: nothing');
  w.put(nodes[2], 'node_t', 'next', nodes[0]);
  walkError(t, thrown(() => elems(w, 'iterate(self.list, cast(it, node_t).next)')), 'cycle', /^iterate\(\): cycle at 0x[0-9a-f]+ after \d+ elements$/);
  w.put(nodes[2], 'node_t', 'next', 0);
  walkError(t, thrown(() => elems(w, 'iterate(self.list, cast(it, node_t).next)', { limits: { maxNodes: 2, maxTotal: 100 } })), 'limit', /iterate\(\) has more than 2 elements/);
});

t.test('file_static: the statics of a function\'s own C file, from .symtab', async (t) => {
  const sym = (name: string, value: number, type: number, bind = 0) => ({ name, value, size: 8, type, bind, shndx: 14 });
  const STT_FILE = 4;
  const table = new SymbolTable(
    [
      sym('a.c', 0, STT_FILE),
      sym('f', 0x1000, STT_FUNC),
      sym('next_filter', 0x9000, STT_OBJECT),
      sym('b.c', 0, STT_FILE),
      sym('g', 0x2000, STT_FUNC),
      sym('next_filter', 0x9100, STT_OBJECT),
      sym('main', 0x3000, STT_FUNC, 1),
    ],
    0x10000,
  );
  t.equal(table.fileStatic(0x11000, 'next_filter'), 0x19000, "f's file");
  t.equal(table.fileStatic(0x12000, 'next_filter'), 0x19100, "g's file: the same name, another static");
  t.equal(table.fileStatic(0x12000, 'other'), null, 'no such static in that file');
  t.equal(table.fileStatic(0x13000, 'next_filter'), null, 'a global function belongs to no file group');
  const stripped = new SymbolTable([sym('main', 0x3000, STT_FUNC, 1)], 0x10000);
  t.equal(stripped.fileStatic(0x11000, 'next_filter'), undefined, 'no .symtab: cannot tell');
});

t.test('reach_path: the first path breadth first, named step by step, in JS and Python alike', async (t) => {
  //        50
  //    30      70         10.left -> 50 (a cycle), 80.right -> 20 (a second way to 20, longer)
  //  20  40  60  80
  // 10
  const w = new World();
  const byKey = new Map<number, number>();
  for (const key of [10, 20, 30, 40, 50, 60, 70, 80]) byKey.set(key, w.make('tnode_t', { key }));
  const shape: [number, number, number][] = [
    [50, 30, 70],
    [30, 20, 40],
    [70, 60, 80],
    [20, 10, 0],
    [10, 50, 0],
    [80, 0, 20],
  ];
  for (const [key, l, r] of shape) {
    w.put(byKey.get(key)!, 'tnode_t', 'left', l ? byKey.get(l)! : 0);
    w.put(byKey.get(key)!, 'tnode_t', 'right', r ? byKey.get(r)! : 0);
  }
  w.put(w.G, 'root_t', 'tree', byKey.get(50)!);
  const path = (target: string) =>
    col(w, `reach_path(self.tree, let(n, it, each(range(2), it == 0 ? n.left : n.right)), ${target}, from == 0 ? cat("root ", it.key) : cat(edge == 0 ? "L" : "R", it.key))`);
  t.same(path('self.tree.left.left.left'), ['root 50', 'L30', 'L20', 'L10'], 'the shortest way, each step named by its edge');
  t.same(path('self.tree.right.right'), ['root 50', 'R70', 'R80']);
  t.same(path('self.tree'), ['root 50']);
  t.same(path('12345'), [], 'an address not reached has no path');
  const kids = 'let(n, it, each(range(2), it == 0 ? n.left : n.right))';
  t.same(elems(w, `each(reach(self.tree, ${kids}), it.key)`), [50, 30, 70, 20, 40, 60, 80, 10], 'reach(): every node once, breadth first, the cycle and the second way to 20 seen');
  t.equal(ev(w, `reach_parent(self.tree, ${kids}, self.tree.right.right).key`), 70);
  t.equal(ev(w, `reach_parent(self.tree, ${kids}, self.tree)`), 0, 'a root has no parent');
  t.equal(ev(w, `reach_parent(self.tree, ${kids}, 12345)`), 0, 'nor has a node not reached');
  t.equal(ev(w, `count(each(reach(self.tree, ${kids}), reach_path(self.tree, ${kids}, it, cat(it.key))))`), 1 + 2 * 2 + 4 * 3 + 4, 'a path for every node reached, from one reach of the sample');
  const err = thrown(() => col(w, `reach_path(self.tree, let(n, it, each(range(2), it == 0 ? n.left : n.right)), 12345, "x")`, { limits: { maxNodes: 5, maxTotal: 50 } }));
  walkError(t, err, 'limit', 'reach(): more than 5 objects reached (--max-nodes)');
});

t.test('a value computed once a sample (shared): its walk failure is kept, each row that asks fails alike without walking again', async (t) => {
  const R = new World().runtime();
  let calls = 0;
  const reach = () => {
    calls++;
    throw new WalkError('limit', 'reach(): more than 5 objects reached (--max-nodes)');
  };
  for (let row = 0; row < 3; row++) walkError(t, thrown(() => R.shared('reach1', reach, 0x1000)), 'limit', 'reach(): more than 5 objects reached (--max-nodes)');
  t.equal(calls, 1, 'walked once for the three rows');
  t.equal(R.shared('reach2', (x: unknown) => (x as number) + 1, 1), 2);
  t.equal(R.shared('reach2', (x: unknown) => (x as number) + 2, 1), 2, 'a value kept for the sample');
  const bug = () => {
    calls++;
    throw new TypeError('a bug');
  };
  t.throws(() => R.shared('k', bug), TypeError);
  t.throws(() => R.shared('k', bug), TypeError);
  t.equal(calls, 3, 'what is not a walk failure is not kept');
});

t.test('reach_path: a path longer than 16 steps keeps its first four and last eleven, … between', async (t) => {
  const w = new World();
  const nodes: number[] = [];
  for (let i = 0; i < 30; i++) nodes.push(w.make('tnode_t', { key: i }));
  for (let i = 0; i < 29; i++) w.put(nodes[i], 'tnode_t', 'left', nodes[i + 1]);
  w.put(w.G, 'root_t', 'tree', nodes[0]);
  const got = col(w, `reach_path(self.tree, let(n, it, each(range(1), n.left)), ${nodes[29]}, cat(it.key))`) as Value[];
  t.same(got, ['0', '1', '2', '3', '…', ...Array.from({ length: 11 }, (_, i) => String(19 + i))]);
});
