/**
 * The IR: what the validator produces from a schema and the only thing the
 * back ends (xsample's compiler, the gdb and lldb templates) read. Every
 * name in it was checked; sizes and offsets are not here: they come from a
 * layout (per build), so one IR serves every build of a release.
 */

import type { Expr } from './expr-parse.ts';
import type { Program } from '../core/pattern.ts';

/** Where a schema node came from, for messages. */
export interface Pos {
  file: string;
  line: number;
  col: number;
}

/** A scalar that a pointer can point at, or a declared struct. */
export type Pointee =
  | { k: 'void' }
  | { k: 'int'; size: number; signed: boolean } // u8, i32, ... (size known without a layout)
  | { k: 'struct'; name: string }
  | { k: 'ptr'; to: Pointee };

/** The declared type of a field or global; sizes of int/uint come from the layout. */
export type FieldType =
  | { k: 'int'; signed: boolean } // int, uint: size from DWARF
  | { k: 'ptr'; to: Pointee }
  | { k: 'fnptr' }
  | { k: 'struct'; name: string } // embedded member
  | { k: 'array'; elem: Pointee; count: number }; // T[N]: a fixed-size array member

/** The static type of an expression's value. */
export type VType =
  | { k: 'int'; signed: boolean }
  | { k: 'ptr'; to: Pointee }
  | { k: 'fnptr' }
  | { k: 'ref'; name: string } // a struct lvalue: its address
  | { k: 'array'; elem: Pointee; count: number } // an array member: its address, N elements
  | { k: 'str' }
  | { k: 'seq'; elem: VType }
  | { k: 'path'; struct: string; path: string; base: TExpr }; // a partial dotted member, e.g. `self.d` of `d.last`

export interface FieldIR {
  name: string; // C member path, dotted for nested members: "d.last"
  type: FieldType;
  pos: Pos;
}

export interface StructIR {
  name: string;
  doc: string;
  fields: Map<string, FieldIR>;
  /** The object (objects:) whose layout has it; absent: the program's own binary. */
  object?: string;
  pos: Pos;
}

/** An enum the schema names (enums:): its enumerators come from each build's layout. */
export interface EnumIR {
  name: string;
  doc: string;
  /** The object (objects:) whose layout has it; absent: the program's own binary. */
  object?: string;
  pos: Pos;
}

export interface GlobalIR {
  name: string;
  type: FieldType;
  /** The object (objects:) whose layout has it; absent: the program's own binary. */
  object?: string;
  /** optional: a build may lack it (a module not compiled in), and why: a view that reads it then says so, the others run. */
  optional?: string;
  pos: Pos;
}

/**
 * A shared object the program maps besides its own binary (a module, a
 * library), whose types have layouts of their own, keyed by its build-id.
 */
export interface ObjectIR {
  name: string;
  doc: string;
  /** The file's name as mapped: exactly this, or this followed by a dot and more (libluajit-5.1.so.2 matches libluajit-5.1.so.2.1.0). */
  file: string;
  pos: Pos;
}

/** Typed expressions. `slot` indexes the evaluation environment: 0 is self, then one per nested `it`. */
export type TExpr =
  | { op: 'num'; value: number; type: VType }
  | { op: 'text'; value: string; type: VType } // a text written in the schema ("..."), printable ASCII
  | { op: 'cat'; args: TExpr[]; type: VType } // texts and integers (in decimal) joined
  | { op: 'register'; name: string; type: VType } // a register of the target's first thread where the reader has them, else 0
  | { op: 'var'; slot: number; type: VType }
  | { op: 'global'; name: string; type: VType; decl: FieldType }
  | { op: 'field'; base: TExpr; struct: string; field: string; ftype: FieldType; type: VType }
  | { op: 'addrof'; base: TExpr; struct: string; field: string; type: VType }
  | { op: 'deref'; arg: TExpr; pointee: Pointee; type: VType }
  | { op: 'index'; base: TExpr; pointee: Pointee; index: TExpr; bound?: { count: number; what: string }; address?: boolean; type: VType } // bound: an array member's; address: &a[i]
  | { op: 'unary'; o: string; arg: TExpr; type: VType }
  | { op: 'binary'; o: string; left: TExpr; right: TExpr; type: VType }
  | { op: 'cond'; test: TExpr; then: TExpr; else: TExpr; type: VType }
  | { op: 'sizeof'; of: Pointee; type: VType }
  | { op: 'offsetof'; struct: string; field: string; type: VType }
  | { op: 'cast'; arg: TExpr; type: VType }
  | { op: 'str'; data: TExpr; len: TExpr | null; within?: number; type: VType } // len null: NUL-terminated (within N bytes: a char[N])
  | { op: 'chunk_size'; arg: TExpr; type: VType }
  | { op: 'symbol'; arg: TExpr; type: VType }
  | { op: 'file_static'; fn: TExpr; name: string; type: VType } // the address of a static of fn's compilation unit
  | { op: 'clock'; which: ClockName; type: VType } // the sample's clock: now_ms() or monotonic_ms()
  | { op: 'walk'; walk: Walk; type: VType }
  | { op: 'aggregate'; fn: 'count' | 'sum' | 'min' | 'max' | 'all' | 'any'; seq: TExpr; slot: number; body: TExpr | null; type: VType }
  | { op: 'nth'; seq: TExpr; index: TExpr; type: VType } // element index (from 0) of a walk
  /** let(name, value, body): value computed once, bound to slot in body. */
  | { op: 'let'; slot: number; value: TExpr; body: TExpr; type: VType }
  /** A name of the view's let: (value, an expression of self), computed at most once per row however many columns and checks use it. */
  | { op: 'rowlet'; name: string; value: TExpr; self: TExpr; type: VType }
  /** ntohs (size 2), ntohl (size 4): the low bytes of arg, swapped. */
  | { op: 'bswap'; size: 2 | 4; arg: TExpr; type: VType }
  /** The name of arg's enumerator of enum `enumName` in this build (the first declared of that value), else arg in decimal. */
  | { op: 'enum_name'; enumName: string; arg: TExpr; type: VType }
  /** A struct sockaddr as text: ip:port, [ip6]:port, family N. */
  | { op: 'sockaddr'; arg: TExpr; type: VType }
  /** A named walk too large to inline: its body (checked once, self as slot 0) becomes one function of the generated code. */
  | { op: 'call'; walk: string; arg: TExpr; body: TExpr; type: VType }
  /** reach_parent(roots, children, node): the node through which reach() first reached node; NULL for a root or a node not reached. */
  | { op: 'reach_parent'; roots: TExpr; slot: number; children: TExpr; node: TExpr; type: VType };

/** Elements found by a link inside them, given back as the struct around it (C's container_of). */
export interface Container {
  struct: string;
  field: string;
}

/** The walks: one per C idiom. Each yields elements of `type.elem` bound to `slot` in `each`/`filter`. */
export type Walk =
  | { w: 'chain'; first: TExpr; struct: string; next: string }
  | { w: 'array'; base: TExpr; count: TExpr; elem: Pointee }
  /**
   * A circular doubly linked list through a link struct (ngx_queue_t, Linux's list_head): from the
   * head (the sentinel) by `next` back to it, every `prev` checked. `name` names it in messages.
   */
  | { w: 'dlist'; name: string; head: TExpr; linkStruct: string; next: string; prev: string; container: Container | null }
  /**
   * A binary tree, in order or root first, by an explicit stack no deeper than maxDepth. Leaves are
   * NULL, or the sentinel node when there is one (then a NULL child is corrupt). `name` and `at`
   * (the tree's address) name it in messages.
   */
  | { w: 'bintree'; name: string; at: TExpr; root: TExpr; nodeStruct: string; left: string; right: string; order: 'in' | 'pre'; sentinel: TExpr | null; maxDepth: number; container: Container | null }
  | { w: 'take'; seq: TExpr; count: TExpr } // the first count elements
  | { w: 'reversed'; seq: TExpr } // the elements, last first (all of them read first, bounded as the walk is)
  | { w: 'each'; seq: TExpr; slot: number; body: TExpr }
  | { w: 'filter'; seq: TExpr; slot: number; body: TExpr }
  | { w: 'take_while'; seq: TExpr; slot: number; body: TExpr }
  | { w: 'range'; count: TExpr } // 0, 1, ... count-1
  | { w: 'iterate'; first: TExpr; slot: number; next: TExpr } // first, next(first), ... until 0
  | { w: 'one'; value: TExpr } // a single value as a sequence (roots)
  /**
   * reach_path(roots, children, target, name): the first path (breadth first) from a root to target, by the
   * edges children gives each node (`it` of children: the node; 0 children are skipped but keep their
   * index), as the names `name` gives its steps root first (`it` of name: the node of the step, `from`: its
   * parent or 0 for a root, `edge`: its index among the parent's children or the roots). Empty when target
   * is not reached. slots: every slot the walk binds (slot: children's it).
   */
  /** reach(roots, children): every node reached from the roots by the edges children gives `it`, once each, breadth first. */
  | { w: 'reach'; roots: TExpr; slot: number; children: TExpr }
  | { w: 'reach_path'; roots: TExpr; slot: number; children: TExpr; target: TExpr; nameSlot: number; fromSlot: number; edgeSlot: number; name: TExpr; maxSteps: number };

/** The sample's clocks, in ms: CLOCK_REALTIME and CLOCK_MONOTONIC, read once per sample. */
export type ClockName = 'now_ms' | 'monotonic_ms';
export const CLOCK_NAMES: readonly ClockName[] = ['now_ms', 'monotonic_ms'];

/**
 * What the clocks read on a core, which has no clock of its own: the
 * program's own idea of the time when it was dumped (nginx's cached time),
 * as expressions of globals. A clock the schema leaves out is unavailable
 * on a core.
 */
export interface ClockIR {
  doc: string;
  exprs: Partial<Record<ClockName, TExpr>>;
  slots: number;
  pos: Pos;
}

/** A pattern of binary.version or binary.signature: its text, and the program every back end runs (see pattern.ts). */
export interface BinaryPattern {
  text: string;
  program: Program;
}

export interface WalkDefIR {
  name: string;
  doc: string;
  of: string; // struct name of `self`
  /**
   * Names the body uses for a type or a field given at each call after the
   * argument (ngx_list(l, T)): the body is checked where it is called, with
   * each name replaced by what the call gives, and always inlined.
   */
  params: string[];
  /** The parsed body; a small one is type-checked where it is called (inlined), with self bound to the argument. */
  ast: Expr;
  /** The body checked on its own (self is slot 0), and its size in parts: a large one is called, not inlined. */
  checked?: { body: TExpr; size: number; selfUses: number };
  text: string;
  pos: Pos;
}

export interface ColumnIR {
  name: string;
  expr: TExpr;
  pos: Pos;
}

export interface RootIR {
  label: string;
  expr: TExpr; // a seq (or single value) of ptr/ref to the view's struct
  pos: Pos;
}

export interface CheckIR {
  expr: TExpr;
  message: string;
  pos: Pos;
}

/**
 * What a stack-shaped view's weight is, and so how a recording adds it up over time: bytes held and items
 * held are gauges (averaged over the samples: a pool of 24576 bytes weighs 24576 however long it is
 * recorded; the JSON gives min, mean, max, last), samples (of time: an item seen in a sample weighs 1, or
 * its weight) are a counter (they add up).
 */
export const WEIGHS = ['bytes', 'items', 'samples'] as const;
export type Weighs = (typeof WEIGHS)[number];

/** Whether a weight is a gauge (held at each instant: averaged over samples) rather than a counter (added). */
export const isGauge = (w: Weighs): boolean => w !== 'samples';

/** Several stack-shaped views drawn as one flame graph (nginx's memory: the cycle's, the connections', the requests' pools...). */
export interface FlamegraphIR {
  name: string;
  doc: string;
  views: string[];
  pos: Pos;
}

/**
 * The columns of a view that splices: native_stack, each a value or a list over the interpreter's frames
 * at the sample, youngest first: frames (names), kinds (0 interpreted, 1 a native function the native stack
 * shows itself, more a builtin), entry_ends (the outermost frame of one entry from native code), caller_lines
 * (the line the frame's caller is at), top_line (the youngest frame's), entry_sps (the stack pointer of each
 * entry's native frame, innermost first), vm_pc (an address in the interpreter, whose frame description holds
 * at those stack pointers), vm (what the interpreter does: "JIT" marks the youngest frame as compiled code).
 */
export const NATIVE_STACK_COLUMNS = ['vm', 'frames', 'kinds', 'entry_ends', 'caller_lines', 'top_line', 'entry_sps', 'vm_pc'] as const;

export interface ViewIR {
  name: string;
  /** Other names for the view's debugger command (e.g. ngx_pools for ngx_pool). */
  aliases: string[];
  doc: string;
  of: string;
  roots: RootIR[];
  columns: ColumnIR[];
  checks: CheckIR[];
  /**
   * What the kernel reads at the instant of a perf sample (an eBPF capture, printers/bpf/):
   * expressions of self whose every load is written down, so that the view's columns, run after in
   * user space over that record, see the instant's words and read only memory that does not change.
   */
  instant: { expr: TExpr; pos: Pos }[];
  /** native_stack: the rows say which native frames are an interpreter's entries and what replaces them (NATIVE_STACK_COLUMNS). */
  splices?: 'native_stack';
  /** Number columns that count up since the program started (counters:): top shows them per second, serve exports them as counters. */
  counters?: string[];
  slots: number; // environment size needed
  /** Whether a column or check reads the sample's clock (then results say which clock it was). */
  clock: boolean;
  /**
   * A stack-shaped view (stack:, weight:): each item is a path of frames, outermost first, each
   * the value of a column (origin: the root's label; a list column gives one frame per element),
   * weighing a numeric column's value (1 when there is no weight:). With weight: a list of number
   * columns (leaves), an item is one path per column, ending in the column's name and weighing its value.
   * What xsample record draws; weighs says what the weight is (WEIGHS).
   */
  stack: { frames: string[]; weight: string | null; leaves: string[] | null; weighs: Weighs } | null;
  pos: Pos;
}

/**
 * A probe: a view evaluated when a function is called (a uprobe at its first instruction), in the kernel:
 * its keys and values are expressions of self, the function's first argument (a pointer to arg, rdi on
 * x86_64), aggregated per key (count, and per value sum, min, max and a log2 histogram). A key is an
 * integer or a text read from memory (str(), cstr()): the kernel copies up to PROBE_TEXT bytes of it.
 */
export interface ProbeIR {
  name: string;
  doc: string;
  /** The function's symbol, in the executable or in object (objects:). */
  function: string;
  object?: string;
  /** The struct the first argument points at. */
  arg: string;
  keys: ColumnIR[];
  values: ColumnIR[];
  pos: Pos;
}

/** How many bytes of a text key the kernel keeps (a longer one is shown cut, with "..."). */
export const PROBE_TEXT = 64;

/** How a debugger shows a value of a type: as a string, as a view's one-line summary, or with children. */
export type PrinterIR =
  | { type: string; kind: 'string'; expr: TExpr; slots: number; pos: Pos }
  | { type: string; kind: 'view'; view: string; pos: Pos }
  | { type: string; kind: 'children'; expr: TExpr; slots: number; pos: Pos };

export interface PackIR {
  name: string;
  doc: string;
  file: string;
  /** Of the schema's text (its imports have their own). */
  schemaHash: string;
  /** The files of walks the schema imports (imports:): as named (nginx/idioms.yaml), where found, the sha256 of the text read. */
  imports: { name: string; file: string; sha256: string }[];
  /** Finds the release in the binary's .rodata. */
  versionPattern: BinaryPattern | null;
  /** Finds a string that encodes the build's struct-affecting options (nginx's module signature). */
  signaturePattern: BinaryPattern | null;
  /** Process titles (regexes over /proc/PID/cmdline): a master's workers, not the master, hold what the views read. */
  processes: { master: string; worker: string | null } | null;
  clock: ClockIR | null;
  /** Shared objects with layouts of their own (objects:), by name. */
  objects: Map<string, ObjectIR>;
  structs: Map<string, StructIR>;
  globals: Map<string, GlobalIR>;
  /** Enums whose enumerators the layouts carry (enums:), by name. */
  enums: Map<string, EnumIR>;
  walks: Map<string, WalkDefIR>;
  views: Map<string, ViewIR>;
  /** Flame graphs made of several stack-shaped views (flamegraphs:), recorded as one: xsample record --struct NAME. */
  flamegraphs: Map<string, FlamegraphIR>;
  /** Views evaluated in the kernel when a function is called (probes:): xsample trace --probe NAME. */
  probes: Map<string, ProbeIR>;
  printers: PrinterIR[];
}

/**
 * Whether pred holds for a part of e: an IR node or anything under it, the named walks it calls included.
 * A called walk's body is shared by every call to it: each node is looked at once, not once per path to it.
 */
function anyPart(e: unknown, pred: (node: object) => boolean, seen = new WeakSet<object>()): boolean {
  if (e === null || typeof e !== 'object' || seen.has(e)) return false;
  seen.add(e);
  return pred(e) || Object.values(e).some((x) => anyPart(x, pred, seen));
}

/** Whether an expression (or any part of it, the named walks it calls included) reads the sample's clock. */
export const readsClock = (e: unknown): boolean => anyPart(e, (n) => (n as { op?: unknown }).op === 'clock');

/**
 * The objects (objects:) whose types or globals an expression, a view or any part of them reads, the
 * named walks they call included: a view of these runs only where the process maps them.
 */
export function objectsRead(e: unknown, pack: PackIR): Set<string> {
  const out = new Set<string>();
  anyPart(e, (n) => {
    const o = n as { op?: unknown; struct?: unknown; name?: unknown; k?: unknown };
    const struct = typeof o.struct === 'string' ? o.struct : o.k === 'struct' && typeof o.name === 'string' ? o.name : null;
    const object = struct !== null ? pack.structs.get(struct)?.object : o.op === 'global' && typeof o.name === 'string' ? pack.globals.get(o.name)?.object : undefined;
    if (object) out.add(object);
    return false;
  });
  return out;
}

export class SchemaError extends Error {
  constructor(
    readonly pos: Pos,
    readonly detail: string,
  ) {
    super(`${pos.file}:${pos.line}:${pos.col}: ${detail}`);
    this.name = 'SchemaError';
  }
}
