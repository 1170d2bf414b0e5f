/**
 * The eBPF printer of the loop IR: the third printer, beside the
 * JavaScript (printers/js.ts) and Python (printers/py.ts) ones.
 *
 * What it prints is a capture: a program the kernel runs at an instant (a
 * perf sample of the target's thread, a uprobe) that walks the view's
 * instant: expressions for each root element and writes down every word it
 * loaded and the thread's registers, into a ring buffer. User space then
 * runs the whole view, as it always does, over that record laid on live
 * memory (sampler/bpf/instant-memory.ts): what the kernel read is the
 * instant; the rest (prototypes, strings, symbols) is memory that does not
 * change, read and checked as any sample is. So the kernel computes no text
 * and keeps no messages: a walk error stops the capture where the user-space
 * run will stop and say why.
 *
 * Functions are inlined (a visitor where its seq function calls it), so the
 * verifier sees one body; variables live in stack slots, where it follows
 * their values, so a walk's own counter against --max-nodes is the bound of
 * its loop. Integers are 64-bit: comparisons are signed but where a side is
 * an unsigned 64-bit load, and >> is logical, as exact.ts computes them; an
 * unsigned 64-bit value past 2^63 compared with a negative number is the
 * greater, as it is exactly, and / and % of the two divide the magnitudes
 * with C's signs. A view's let: is computed once a row, as the JS
 * and Python runtimes keep it. test/bpf-printer.test.ts runs the walk-logic
 * cases through this printer against a process holding the fake memory.
 */
import type { LExpr, LFunc, LStmt, LView } from '../../generators/lower/lir.ts';
import { type ConstAlgebra, foldConst, type LayoutFacts, layoutValues } from '../../generators/lower/fold.ts';
import { Asm, type AluOp, FP, HELPER, type JmpOp, type Label, NEGATE, type Reg } from './asm.ts';

/** struct pt_regs of x86_64, in order: where a register of the interrupted thread is in a capture. */
export const PT_REGS = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp', 'ss'];


/** Facts of no build: what xgen check prints a capture with, to learn whether the kernel can run it. */
export const SHAPE_ONLY: LayoutFacts = { field: () => ({ offset: 8, size: 8 }), sizeOf: () => 8, align: () => 8, hasEnum: () => false, global: () => ({ size: 8 }) };

/** A capture record: a header, the registers (when the program reads any), then the words loaded. */
export const CAPTURE = {
  /**
   * u32 status, u32 count of words, u64 pid_tgid, u64 time (CLOCK_MONOTONIC ns), u32 size of the registers
   * area, u32 captures this CPU could not write (the ring full: user space fell behind), so far.
   */
  header: 32,
  /** Where the header keeps the count of captures dropped. */
  dropped: 28,
  /** A word: u64 address (its top byte: the bytes read, 0 for a read that faulted), u64 value (little endian). */
  entry: 16,
} as const;

export const STATUS = { ok: 0, walkError: 1, fault: 2, full: 3, regs: 4 } as const;

export interface BpfMap {
  name: string;
  type: 'array' | 'percpu_array' | 'hash' | 'percpu_hash' | 'ringbuf';
  keySize: number;
  valueSize: number;
  maxEntries: number;
}

/** What the loader takes: the instructions, the maps they name, and where each map's fd goes. */
export interface BpfProgram {
  insns: Buffer;
  maps: BpfMap[];
  relocs: { insn: number; map: string }[];
  /** Where the registers and the words are in a record. */
  regsSize: number;
  entries: number;
}

/** What every program of a walk takes: whose threads run it, its bounds, the globals' addresses. */
export interface WalkOptions {
  /** Only this process's threads run the program (a uprobe traps in every process mapping the file). */
  tgid: number;
  /** The kernel's bound of one walk (the verifier follows every step: keep it small). */
  maxNodes: number;
  maxTotal: number;
  /** A global's address in the target. */
  global(name: string): bigint;
}

export interface CaptureOptions extends WalkOptions {
  /** How many words a record holds: a power of two. */
  entries: number;
  /** Bytes of the ring buffer (a power of two, a multiple of the page size). */
  ringBytes: number;
  /** The program returns 1: the perf event it is attached to still writes its own sample (record --cpu's stack). */
  keepSample?: boolean;
}

export const R0: Reg = 0;
export const R1: Reg = 1;
export const R2: Reg = 2;
export const R3: Reg = 3;
export const R4: Reg = 4;
/** The program's context (a probe's struct pt_regs). */
export const CTX: Reg = 6;
/** The value of an expression. */
export const V: Reg = 7;
/** The other operand. */
export const W: Reg = 8;
/** The per-CPU area of the program: the capture record, a probe's scratch (a map's value). */
export const REC: Reg = 9;

const MAX_STACK = 512;
const MAX_INLINE = 48;
/**
 * The most elements a stack of the walk holds (a power of two), past which the capture is full: the
 * walk's bound rounded up, at most 256. The verifier follows every depth a loop can reach (a tree walk's descent,
 * each time a node is visited), so a cap past what the bound needs makes it refuse any tree walk.
 */
const stackCap = (maxNodes: number): number => Math.min(256, 2 ** Math.ceil(Math.log2(Math.max(4, maxNodes))));

/**
 * Fixed stack slots (offsets from r10). The count of words and the status are kept in the record
 * itself: the verifier follows the value of a stack slot, and a count that differs by path (a word read
 * on one side of a branch only) would keep it from ever taking two paths for one.
 */
export const SLOT = { scratch: -8, key: -16, visited: -24, addr: -32, first: -40 } as const;
/** In the record's header: u32 status at 0, u32 count of words at 4. */
const REC_STATUS = 0;
const REC_NLOG = 4;

export class Refused extends Error {}

export interface Var {
  off: number;
  wide: boolean;
}

export class Env {
  protected readonly vars = new Map<string, Var>();
  constructor(readonly parent: Env | null) {}
  get(name: string): Var {
    const v = this.vars.get(name) ?? this.parent?.get(name);
    if (!v) throw new Error(`internal: variable ${name} used before it is bound`);
    return v;
  }
  lookup(name: string): Var | undefined {
    return this.vars.get(name) ?? this.parent?.lookup(name);
  }
  bind(name: string, v: Var): void {
    this.vars.set(name, v);
  }
}

interface Visitor {
  param: string;
  body: LStmt[];
  ctx: Ctx;
}

interface Frame {
  ret: Var | null;
  done: Label;
  /** The try blocks open when the function began: a return runs those opened since. */
  tries: number;
}

export interface Ctx {
  env: Env;
  frame: Frame;
  loops: { out: Label; tries: number }[];
  tries: { body: LStmt[]; ctx: Ctx }[];
  visitor: Visitor | null;
  depth: number;
}

/** A view's instant: expressions, printed as a capture program for the perf sample or the uprobe. */
export function printCapture(view: Pick<LView, 'funcs' | 'roots'>, instant: string[], layout: LayoutFacts, o: CaptureOptions): BpfProgram {
  return new CapturePrinter(view.funcs, layout, o).program(view.roots.map((r) => r.fn), instant);
}

/** Why a view's instant: expressions cannot be printed as eBPF (text built in the kernel, ...), or null. */
export function captureRefusal(view: Pick<LView, 'funcs' | 'roots'>, instant: string[], layout: LayoutFacts): string | null {
  try {
    printCapture(view, instant, layout, { tgid: 1, maxNodes: 1, maxTotal: 10, entries: 16, ringBytes: 4096, global: () => 0n });
    return null;
  } catch (e) {
    if (e instanceof Refused) return e.message;
    throw e;
  }
}

/**
 * The statements and expressions of the loop IR as instructions, every function inlined: what a capture
 * (below) and a probe (probe.ts) share. How a load is done, where stacks live and what a register or a
 * text is, each program says.
 */
export abstract class WalkPrinter<O extends WalkOptions = WalkOptions> {
  protected readonly a = new Asm();
  protected readonly fns: Map<string, LFunc>;
  protected sp: number = SLOT.first;
  protected readonly end: Label;
  protected readonly full: Label;
  protected readonly walkError: Label;
  protected stacks = 0;
  protected stacksLive = 0;
  protected readonly stackCap: number;
  private readonly values: ConstAlgebra<bigint>;

  constructor(
    funcs: LFunc[],
    protected readonly layout: LayoutFacts,
    protected readonly o: O,
  ) {
    this.fns = new Map(funcs.map((f) => [f.name, f]));
    this.values = layoutValues(layout, o);
    this.stackCap = stackCap(o.maxNodes);
    this.end = this.a.label('end');
    this.full = this.a.label('full');
    this.walkError = this.a.label('walk_error');
  }

  /** r7: bytes bytes at the address in r7 (a bitfield's bits of them). */
  protected abstract load(bytes: number, signed: boolean, bitfield: { bit: number; bits: number } | null): void;
  /** Where, in the area REC points at, the stacks of the walk begin. */
  protected abstract stacksAt(): number;
  /** r7: the register at index i of PT_REGS of the thread. */
  protected abstract register(i: number): void;

  /** A runtime helper other than register() and global(): text and what user space knows, refused unless a program can. */
  protected otherRuntime(e: Extract<LExpr, { k: 'rt' }>, ctx: Ctx): void {
    void ctx;
    throw new Refused(`${e.fn}() builds text or asks user space (${e.fn === 'symbol' ? 'a symbol name' : e.fn === 'clock' ? 'the clock' : 'text'}), which the kernel does not: leave it to a column`);
  }

  /** r0 = the address of element `key` of the array map `map` (the key written at SLOT.key), or 0. */
  protected lookupAt(map: string, key: number): void {
    const a = this.a;
    a.stImm(4, FP, SLOT.key, key);
    a.mapFd(R1, map);
    a.mov(R2, FP);
    a.aluImm('add', R2, SLOT.key);
    a.call(HELPER.map_lookup_elem);
  }

  /** r0 = probe_read_user of `bytes` bytes (1 to 8) at the address in r7 into SLOT.scratch, zeroed first: 0, or an error. */
  protected readUser(bytes: number): void {
    const a = this.a;
    if (bytes < 1 || bytes > 8) throw new Refused(`a load of ${bytes} bytes`);
    a.stImm(8, FP, SLOT.scratch, 0);
    a.mov(R1, FP);
    a.aluImm('add', R1, SLOT.scratch);
    a.movImm(R2, BigInt(bytes));
    a.mov(R3, V);
    a.call(HELPER.probe_read_user);
  }

  /** The value or sign extension of a load's bytes in r7 (a bitfield's bits). */
  protected extend(bytes: number, signed: boolean, bitfield: { bit: number; bits: number } | null): void {
    const a = this.a;
    if (bitfield) {
      const left = 64 - bitfield.bit - bitfield.bits;
      if (left) a.aluImm('lsh', V, left);
      a.aluImm(signed ? 'arsh' : 'rsh', V, 64 - bitfield.bits);
    } else if (signed && bytes < 8) {
      a.aluImm('lsh', V, 64 - bytes * 8);
      a.aluImm('arsh', V, 64 - bytes * 8);
    }
  }

  // ---- slots ----

  protected slot(wide = false): Var {
    this.sp -= 8;
    if (this.sp < -MAX_STACK) throw new Refused(`the walk needs more than ${MAX_STACK} bytes of the kernel's stack for its variables`);
    return { off: this.sp, wide };
  }

  /** Runs f with slots taken inside it given back after. */
  protected scoped<T>(f: () => T): T {
    const sp = this.sp;
    const stacks = this.stacksLive;
    try {
      return f();
    } finally {
      this.sp = sp;
      this.stacksLive = stacks;
    }
  }

  // ---- statements ----

  protected block(ss: LStmt[], ctx: Ctx): void {
    this.scoped(() => {
      const inner: Ctx = { ...ctx, env: new Env(ctx.env) };
      for (const s of ss) this.stmt(s, inner);
    });
  }

  protected stmt(s: LStmt, ctx: Ctx): void {
    const a = this.a;
    switch (s.k) {
      case 'let': {
        const wide = this.wide(s.e, ctx);
        this.expr(s.e, ctx);
        const v = this.slot(wide);
        a.stx(8, FP, v.off, V);
        ctx.env.bind(s.name, v);
        return;
      }
      case 'set': {
        const v = ctx.env.get(s.name);
        if (this.wide(s.e, ctx)) v.wide = true;
        this.expr(s.e, ctx);
        a.stx(8, FP, v.off, V);
        return;
      }
      case 'addVisited':
        this.expr(s.n, ctx);
        a.ldx(8, W, FP, SLOT.visited);
        a.alu('add', W, V);
        a.stx(8, FP, SLOT.visited, W);
        return;
      case 'map':
      case 'mapSet':
        throw new Refused('reach_path() keeps a map of the objects it has seen, which a kernel program does not: leave it to a column');
      case 'stack': {
        // A stack: its depth in a slot, its elements in the record's map value past the words.
        const v = this.slot();
        const index = this.stacksLive++;
        this.stacks = Math.max(this.stacks, this.stacksLive);
        a.stImm(8, FP, v.off, 0);
        ctx.env.bind(s.name, v);
        this.stackBase.set(v, index);
        return;
      }
      case 'push': {
        const d = ctx.env.get(s.stack);
        this.expr(s.e, ctx);
        a.ldx(8, R1, FP, d.off);
        a.jmpImm('jge', R1, this.stackCap, this.full);
        this.stackAddr(d, R1, R2);
        a.stx(8, R2, 0, V);
        a.aluImm('add', R1, 1);
        a.stx(8, FP, d.off, R1);
        return;
      }
      case 'if': {
        const els = a.label('else');
        const done = a.label('fi');
        this.jumpIf(s.c, false, els, ctx);
        this.block(s.then, ctx);
        if (s.else.length) a.ja(done);
        a.bind(els);
        if (s.else.length) this.block(s.else, ctx);
        a.bind(done);
        return;
      }
      case 'loop': {
        const top = a.label('loop');
        const out = a.label('pool');
        a.bind(top);
        this.block(s.body, { ...ctx, loops: [...ctx.loops, { out, tries: ctx.tries.length }] });
        a.ja(top);
        a.bind(out);
        return;
      }
      case 'break': {
        const l = ctx.loops[ctx.loops.length - 1];
        if (!l) throw new Error('internal: break outside a loop');
        this.unwind(ctx, l.tries);
        a.ja(l.out);
        return;
      }
      case 'return':
        if (s.e) {
          this.expr(s.e, ctx);
          if (ctx.frame.ret) a.stx(8, FP, ctx.frame.ret.off, V);
        }
        this.unwind(ctx, ctx.frame.tries);
        a.ja(ctx.frame.done);
        return;
      case 'fail':
        // The message is the user-space run's to write: it stops at the same place over the same words.
        a.ja(this.walkError);
        return;
      case 'try':
        this.block(s.body, { ...ctx, tries: [...ctx.tries, { body: s.finally, ctx }] });
        this.block(s.finally, ctx);
        return;
      case 'expr':
        this.expr(s.e, ctx);
        return;
      case 'readsOf':
        return;
      case 'catch':
      case 'throw':
        throw new Refused('a grouped fold (several aggregates of one walk in one loop) keeps a failure per aggregate, which the kernel does not');
    }
  }

  /** The finally blocks between here and an exit to a point where `keep` of them are open, innermost first. */
  protected unwind(ctx: Ctx, keep: number): void {
    for (let i = ctx.tries.length - 1; i >= keep; i--) {
      const t = ctx.tries[i];
      this.block(t.body, { ...t.ctx, tries: ctx.tries.slice(0, i) });
    }
  }

  protected readonly stackBase = new Map<Var, number>();
  /** Each let: of the view: its value in this row, and whether it is known yet. */
  protected readonly memos = new Map<string, { val: Var; known: Var }>();

  /** into = the address of element `index` (a register holding the depth, checked below the stack cap) of the stack d. */
  protected stackAddr(d: Var, index: Reg, into: Reg): void {
    const a = this.a;
    const base = this.stacksAt() + this.stackBase.get(d)! * this.stackCap * 8;
    a.mov(into, index);
    a.aluImm('and', into, this.stackCap - 1);
    a.aluImm('lsh', into, 3);
    a.alu('add', into, REC);
    a.aluImm('add', into, base);
  }

  // ---- expressions: the value in r7 ----

  /** The value of a constant expression (fold.ts: layout facts and the walk's limits), a sum as a 64-bit register holds it; else null. */
  protected constant(e: LExpr): bigint | null {
    const v = foldConst(e, this.values);
    return v !== null && e.k === 'bin' ? BigInt.asIntN(64, v) : v;
  }

  /** Whether e may be an unsigned 64-bit value past 2^63 (compared unsigned). */
  protected wide(e: LExpr, ctx: Ctx): boolean {
    switch (e.k) {
      case 'load':
        return e.size === 8 && !e.signed;
      case 'field': {
        const f = this.layout.field(e.struct, e.field);
        return f.bits === undefined && f.size === 8 && !e.signed;
      }
      case 'gint':
        return this.layout.global(e.name).size === 8 && !e.signed;
      case 'var':
        return ctx.env.lookup(e.name)?.wide ?? false;
      case 'bin':
        return (e.op === '+' || e.op === '-' || e.op === '*' || e.op === '/' || e.op === '%') && (this.wide(e.a, ctx) || this.wide(e.b, ctx));
      case 'cond':
        return this.wide(e.a, ctx) || this.wide(e.b, ctx);
      default:
        return false;
    }
  }

  protected expr(e: LExpr, ctx: Ctx): void {
    const a = this.a;
    const c = this.constant(e);
    if (c !== null) return a.movImm(V, c);
    switch (e.k) {
      case 'var':
        return a.ldx(8, V, FP, ctx.env.get(e.name).off);
      case 'none':
        return a.movImm(V, 0n);
      case 'str':
        throw new Refused(`text ("${e.v.slice(0, 40)}") is not computed in the kernel`);
      case 'load':
        this.expr(e.addr, ctx);
        return this.load(e.size, e.signed, null);
      case 'field': {
        const f = this.layout.field(e.struct, e.field);
        this.expr(e.base, ctx);
        if (f.offset) a.aluImm('add', V, f.offset);
        if (f.bits !== undefined) return this.load(Math.ceil(((f.bit ?? 0) + f.bits) / 8), e.signed, { bit: f.bit ?? 0, bits: f.bits });
        return this.load(f.size, e.signed, null);
      }
      case 'gint':
        this.expr(e.addr, ctx);
        return this.load(this.layout.global(e.name).size, e.signed, null);
      case 'state':
        if (e.name === 'visited') return a.ldx(8, V, FP, SLOT.visited);
        throw new Error(`internal: state ${e.name}`);
      case 'bin':
        return this.bin(e, ctx);
      case 'un':
        if (e.op === '!') return this.truth(e, ctx);
        this.expr(e.a, ctx);
        if (e.op === '-') a.aluImm('neg', V, 0);
        else a.aluImm('xor', V, -1);
        return;
      case 'cond': {
        const els = a.label('c_else');
        const done = a.label('c_fi');
        this.jumpIf(e.c, false, els, ctx);
        this.expr(e.a, ctx);
        a.ja(done);
        a.bind(els);
        this.expr(e.b, ctx);
        a.bind(done);
        return;
      }
      case 'rt':
        return this.runtime(e, ctx);
      case 'memo': {
        const m = this.memos.get(e.key);
        if (!m) throw new Error(`internal: let ${e.key} of no row`);
        const known = a.label('known');
        const done = a.label('memo');
        a.ldx(8, R1, FP, m.known.off);
        a.jmpImm('jne', R1, 0, known);
        this.call(e.fn, e.args, ctx);
        a.stx(8, FP, m.val.off, V);
        a.stImm(8, FP, m.known.off, 1);
        a.ja(done);
        a.bind(known);
        a.ldx(8, V, FP, m.val.off);
        a.bind(done);
        return;
      }
      case 'call':
        return this.call(e.fn, e.args, ctx);
      case 'visit':
        return this.visit(e.e, ctx);
      case 'depth':
        return a.ldx(8, V, FP, ctx.env.get(e.stack).off);
      case 'at':
      case 'mapGet':
      case 'shared':
        throw new Refused('reach_path() keeps a map and a queue of the objects it has seen, which a kernel program does not: leave it to a column');
      case 'pop': {
        const d = ctx.env.get(e.stack);
        const ok = a.label('pop');
        a.ldx(8, R1, FP, d.off);
        a.jmpImm('jgt', R1, 0, ok);
        a.ja(this.walkError);
        a.bind(ok);
        a.aluImm('sub', R1, 1);
        a.jmpImm('jge', R1, this.stackCap, this.full);
        a.stx(8, FP, d.off, R1);
        this.stackAddr(d, R1, R2);
        a.ldx(8, V, R2, 0);
        return;
      }
      case 'enumName':
        throw new Refused('enum_name() builds text, which the kernel does not');
      case 'item':
        throw new Refused('a grouped fold (several aggregates of one walk in one loop) returns a record, which the kernel does not');
      case 'visitor':
        throw new Error('internal: a visitor outside a call');
      default:
        throw new Error(`internal: ${e.k} in the eBPF printer`);
    }
  }

  protected runtime(e: Extract<LExpr, { k: 'rt' }>, ctx: Ctx): void {
    const a = this.a;
    const name = (i: number): string => {
      const x = e.args[i];
      if (x?.k !== 'str') throw new Error(`internal: ${e.fn}() of a name that is not text`);
      return x.v;
    };
    switch (e.fn) {
      case 'register': {
        const i = PT_REGS.indexOf(name(0));
        if (i < 0) throw new Refused(`register ${name(0)} is not one the kernel gives a program (${PT_REGS.join(', ')})`);
        return this.register(i);
      }
      case 'global':
        return a.movImm(V, this.o.global(name(0)));
      default:
        return this.otherRuntime(e, ctx);
    }
  }

  // ---- operators ----

  protected bin(e: Extract<LExpr, { k: 'bin' }>, ctx: Ctx): void {
    const a = this.a;
    if (CMP_OPS.has(e.op) || e.op === '&&' || e.op === '||') return this.truth(e, ctx);
    const wide = this.wide(e.a, ctx) || this.wide(e.b, ctx);
    const ops: Record<string, AluOp> = { '+': 'add', '-': 'sub', '*': 'mul', '/': wide ? 'div' : 'sdiv', '%': wide ? 'mod' : 'smod', '&': 'and', '|': 'or', '^': 'xor', '<<': 'lsh', '>>': 'rsh' };
    const op = ops[e.op];
    if (!op) throw new Error(`internal: operator ${e.op}`);
    const k = this.constant(e.b);
    const shift = op === 'lsh' || op === 'rsh';
    if (shift && k !== null && (k < 0n || k >= 64n)) {
      // Shifted out: 0, as exact.ts has it (the kernel refuses a shift past 63).
      this.expr(e.a, ctx);
      return a.movImm(V, 0n);
    }
    const divides = op === 'div' || op === 'mod' || op === 'sdiv' || op === 'smod';
    if (k !== null && k >= -(2n ** 31n) && k < 2n ** 31n && (!divides || k > 0n)) {
      this.expr(e.a, ctx);
      a.aluImm(op, V, Number(k));
      return;
    }
    this.operands(e.a, e.b, ctx);
    if (divides && this.wide(e.a, ctx) !== this.wide(e.b, ctx)) return this.divideMixed(e.op === '/', this.wide(e.a, ctx));
    a.alu(op, V, W);
  }

  /**
   * r7 / r8 or r7 % r8, exact, where one side may be an unsigned 64-bit value past 2^63 and the other is
   * signed (aWide: r7 is the unsigned one): the magnitudes divided unsigned, the sign as C's (a quotient
   * negative when one side is, a remainder of the dividend's sign).
   */
  private divideMixed(quotient: boolean, aWide: boolean): void {
    const a = this.a;
    const signed = aWide ? W : V;
    const plain = a.label('unsigned');
    const done = a.label('divided');
    a.jmpImm('jsge', signed, 0, plain);
    a.aluImm('neg', signed, 0);
    a.alu(quotient ? 'div' : 'mod', V, W);
    if (quotient || !aWide) a.aluImm('neg', V, 0);
    a.ja(done);
    a.bind(plain);
    a.alu(quotient ? 'div' : 'mod', V, W);
    a.bind(done);
  }

  /** r7 = a, r8 = b (a kept in a slot while b is computed). */
  protected operands(x: LExpr, y: LExpr, ctx: Ctx): void {
    const a = this.a;
    this.expr(x, ctx);
    this.scoped(() => {
      const t = this.slot();
      a.stx(8, FP, t.off, V);
      this.expr(y, ctx);
      a.mov(W, V);
      a.ldx(8, V, FP, t.off);
    });
  }

  /** r7 = 1 or 0 as e holds. */
  protected truth(e: LExpr, ctx: Ctx): void {
    const a = this.a;
    const no = a.label('false');
    const done = a.label('truth');
    this.jumpIf(e, false, no, ctx);
    a.movImm(V, 1n);
    a.ja(done);
    a.bind(no);
    a.movImm(V, 0n);
    a.bind(done);
  }

  /** Jumps to `to` when e's truth is `when`; falls through otherwise. */
  protected jumpIf(e: LExpr, when: boolean, to: Label, ctx: Ctx): void {
    const a = this.a;
    if (e.k === 'un' && e.op === '!') return this.jumpIf(e.a, !when, to, ctx);
    if (e.k === 'bin' && (e.op === '&&' || e.op === '||')) {
      // a && b is false when a is, a || b true when a is: straight to `to`; otherwise b decides.
      if ((e.op === '&&') === !when) {
        this.jumpIf(e.a, when, to, ctx);
        this.jumpIf(e.b, when, to, ctx);
      } else {
        const skip = a.label('sc');
        this.jumpIf(e.a, !when, skip, ctx);
        this.jumpIf(e.b, when, to, ctx);
        a.bind(skip);
      }
      return;
    }
    if (e.k === 'bin' && CMP_OPS.has(e.op)) {
      const wa = this.wide(e.a, ctx);
      const wb = this.wide(e.b, ctx);
      const op = cmpOp(e.op, wa || wb);
      const jop = when ? op : NEGATE[op as keyof typeof NEGATE];
      // Exact, as exact.ts: an unsigned 64-bit value past 2^63 is no negative number. Where one side may be
      // such a value and the other is negative, the comparison is decided by that sign alone.
      const negative = wa !== wb ? signDecides(e.op, wa) : null;
      const k = this.constant(e.b);
      if (k !== null && k >= -(2n ** 31n) && k < 2n ** 31n) {
        this.expr(e.a, ctx);
        if (negative !== null && k < 0n) {
          if (negative === when) a.ja(to);
          return;
        }
        return a.jmpImm(jop, V, Number(k), to);
      }
      this.operands(e.a, e.b, ctx);
      if (negative !== null) {
        const skip = a.label('signed');
        a.jmpImm('jslt', wa ? W : V, 0, negative === when ? to : skip);
        a.jmp(jop, V, W, to);
        a.bind(skip);
        return;
      }
      return a.jmp(jop, V, W, to);
    }
    const c = this.constant(e);
    if (c !== null) {
      if ((c !== 0n) === when) a.ja(to);
      return;
    }
    this.expr(e, ctx);
    a.jmpImm(when ? 'jne' : 'jeq', V, 0, to);
  }

  // ---- calls: every function inlined ----

  protected call(name: string, args: LExpr[], ctx: Ctx): void {
    const f = this.fns.get(name);
    if (!f) throw new Error(`internal: no function ${name}`);
    if (ctx.depth >= MAX_INLINE) throw new Refused(`the walk nests its functions deeper than ${MAX_INLINE} (recursion?)`);
    const a = this.a;
    this.scoped(() => {
      const ret = this.slot();
      a.stImm(8, FP, ret.off, 0);
      const env = new Env(null);
      const plain = f.kind === 'seq' ? args.slice(0, -1) : args;
      let visitor: Visitor | null = null;
      if (f.kind === 'seq') {
        const v = args[args.length - 1];
        if (v?.k !== 'visitor') throw new Error(`internal: seq function ${name} called without a visitor`);
        visitor = { param: v.param, body: v.body, ctx };
      }
      plain.forEach((x, i) => {
        const wide = this.wide(x, ctx);
        this.expr(x, ctx);
        const p = this.slot(wide);
        a.stx(8, FP, p.off, V);
        env.bind(f.params[i], p);
      });
      const done = a.label(`ret_${name}`);
      const inner: Ctx = { env, frame: { ret, done, tries: 0 }, loops: [], tries: [], visitor, depth: ctx.depth + 1 };
      this.block(f.body, inner);
      a.bind(done);
      a.ldx(8, V, FP, ret.off);
    });
  }

  /** visit(x) in a seq function: its caller's visitor, inlined with x, where the caller wrote it. */
  protected visit(x: LExpr, ctx: Ctx): void {
    const vis = ctx.visitor;
    if (!vis) throw new Error('internal: visit() outside a seq function');
    if (ctx.depth >= MAX_INLINE) throw new Refused(`the walk nests its functions deeper than ${MAX_INLINE}`);
    const a = this.a;
    this.scoped(() => {
      const ret = this.slot();
      a.stImm(8, FP, ret.off, 0);
      const wide = this.wide(x, ctx);
      this.expr(x, ctx);
      const p = this.slot(wide);
      a.stx(8, FP, p.off, V);
      const env = new Env(vis.ctx.env);
      env.bind(vis.param, p);
      const done = a.label('visited');
      const inner: Ctx = { env, frame: { ret, done, tries: 0 }, loops: [], tries: [], visitor: vis.ctx.visitor, depth: ctx.depth + 1 };
      this.block(vis.body, inner);
      a.bind(done);
      a.ldx(8, V, FP, ret.off);
    });
  }
}

/** The capture: each root's elements walked by the instant: expressions, every word loaded written into a record. */
class CapturePrinter extends WalkPrinter<CaptureOptions> {
  private usesRegs = false;

  /** The registers area: in every record (zeros unless the walk reads a register), so words are at one place. */
  private readonly regsSize = PT_REGS.length * 8;

  program(roots: string[], instant: string[]): BpfProgram {
    const a = this.a;
    if (this.o.entries & (this.o.entries - 1)) throw new Error(`internal: ${this.o.entries} words a capture: not a power of two`);
    const out = a.label('out');
    // The registers are read in the prologue when any function of the view asks for one.
    this.usesRegs = [...this.fns.values()].some((f) => asksRegister(f.body));

    // The target's threads only.
    a.call(HELPER.get_current_pid_tgid);
    a.aluImm('rsh', R0, 32);
    a.jmpImm('jne', R0, this.o.tgid, out);
    // The record: the frame map's one element (per CPU).
    this.lookupAt('frame', 0);
    a.jmpImm('jeq', R0, 0, out);
    a.mov(REC, R0);
    a.stImm(8, FP, SLOT.visited, 0);
    a.stImm(8, REC, 0, 0);
    a.call(HELPER.get_current_pid_tgid);
    a.stx(8, REC, 8, R0);
    a.call(HELPER.ktime_get_ns);
    a.stx(8, REC, 16, R0);
    a.stImm(4, REC, 24, this.regsSize);
    if (this.usesRegs) {
      // The thread's user registers: where the sample interrupted it in user mode, or where it entered the kernel.
      a.call(HELPER.get_current_task_btf);
      a.mov(R1, R0);
      a.call(HELPER.task_pt_regs);
      a.mov(R3, R0);
      a.mov(R1, REC);
      a.aluImm('add', R1, CAPTURE.header);
      a.movImm(R2, BigInt(this.regsSize));
      a.call(HELPER.probe_read_kernel);
      const ok = a.label('regs_ok');
      a.jmpImm('jeq', R0, 0, ok);
      a.stImm(4, REC, REC_STATUS, STATUS.regs);
      a.ja(this.end);
      a.bind(ok);
    }
    this.body(roots, instant);
    a.ja(this.end);

    a.bind(this.walkError);
    a.stImm(4, REC, REC_STATUS, STATUS.walkError);
    a.ja(this.end);

    a.bind(this.full);
    a.stImm(4, REC, REC_STATUS, STATUS.full);

    a.bind(this.end);
    a.ldx(4, R3, REC, REC_NLOG);
    const fits = a.label('fits');
    a.jmpImm('jle', R3, this.o.entries, fits);
    a.stImm(4, REC, REC_STATUS, STATUS.full);
    a.movImm(R3, BigInt(this.o.entries));
    a.stx(4, REC, REC_NLOG, R3);
    a.bind(fits);
    a.jmpImm('jgt', R3, this.o.entries, out);
    a.aluImm('lsh', R3, 4);
    a.aluImm('add', R3, CAPTURE.header + this.regsSize);
    a.mapFd(R1, 'ring');
    a.mov(R2, REC);
    // BPF_RB_NO_WAKEUP: user space drains on its own clock; a wake-up a record costs the target ~4 µs.
    a.movImm(R4, 1n);
    a.call(HELPER.ringbuf_output);
    a.jmpImm('jeq', R0, 0, out);
    a.ldx(4, R1, REC, CAPTURE.dropped);
    a.aluImm('add', R1, 1);
    a.stx(4, REC, CAPTURE.dropped, R1);
    a.bind(out);
    a.movImm(R0, this.o.keepSample ? 1n : 0n);
    a.exit();

    const stackBytes = this.stacks * this.stackCap * 8;
    return {
      insns: a.bytes(),
      relocs: a.relocs,
      maps: [
        { name: 'frame', type: 'percpu_array', keySize: 4, valueSize: this.stacksAt() + stackBytes, maxEntries: 1 },
        { name: 'ring', type: 'ringbuf', keySize: 0, valueSize: 0, maxEntries: this.o.ringBytes },
      ],
      regsSize: this.regsSize,
      entries: this.o.entries,
    };
  }

  protected stacksAt(): number {
    return CAPTURE.header + this.regsSize + this.o.entries * CAPTURE.entry;
  }

  /** Each root's elements, and for each the instant expressions. */
  private body(roots: string[], instant: string[]): void {
    const top: Ctx = { env: new Env(null), frame: { ret: null, done: this.a.label('top'), tries: 0 }, loops: [], tries: [], visitor: null, depth: 0 };
    // A view's let: is computed once a row (an element of a root), as the JS and Python runtimes keep it:
    // its value and whether it is known in slots of the whole program, forgotten at each element.
    const forget: LStmt[] = [];
    for (const key of memoKeys([...this.fns.values()])) {
      const m = { val: this.slot(), known: this.slot() };
      this.memos.set(key, m);
      top.env.bind(`$known ${key}`, m.known);
      forget.push({ k: 'set', name: `$known ${key}`, e: { k: 'int', v: 0n } });
    }
    for (const root of roots) {
      const x = 'x';
      const visitor: LExpr = {
        k: 'visitor',
        param: x,
        body: [...forget, ...instant.map((fn): LStmt => ({ k: 'expr', e: { k: 'call', fn, args: [{ k: 'var', name: x }] } })), { k: 'return', e: { k: 'int', v: 1n } }],
      };
      this.expr({ k: 'call', fn: root, args: [visitor] }, top);
    }
    this.a.bind(top.frame.done);
  }


  protected register(i: number): void {
    this.a.ldx(8, V, REC, CAPTURE.header + i * 8);
  }

  /**
   * r7: bytes bytes at the address in r7 (a bitfield's bits of them), each read written into the record.
   * No branch: the verifier keeps a branch not taken for later, and a walk of a few hundred steps of a few
   * loads each would leave it more than it keeps (8192). So a read that faults gives 0 and is written
   * down with no bytes (user space stops there, as the kernel's later words are of a walk gone wrong),
   * and the record's words wrap at a power of two (user space sees the count past it: cut short).
   */
  protected load(bytes: number, signed: boolean, bitfield: { bit: number; bits: number } | null): void {
    const a = this.a;
    a.stx(8, FP, SLOT.addr, V);
    this.readUser(bytes);
    a.ldx(8, V, FP, SLOT.scratch);
    this.logEntry(bytes);
    this.extend(bytes, signed, bitfield);
  }

  /** Writes the word at SLOT.addr, its value in r7 and r0 the read's result (0, or an error: no bytes), as the next entry. */
  private logEntry(bytes: number): void {
    const a = this.a;
    a.ldx(4, R1, REC, REC_NLOG);
    a.mov(R2, R1);
    a.aluImm('and', R2, this.o.entries - 1);
    a.aluImm('lsh', R2, 4);
    a.alu('add', R2, REC);
    a.ldx(8, R3, FP, SLOT.addr);
    const at = CAPTURE.header + this.regsSize;
    a.stx(8, R2, at, R3);
    // bytes when r0 is 0, else 0: (r0 | -r0) >> 63 is 1 for any r0 but 0.
    a.mov(R4, R0);
    a.aluImm('neg', R4, 0);
    a.alu('or', R4, R0);
    a.aluImm('rsh', R4, 63);
    a.aluImm('xor', R4, 1);
    a.aluImm('mul', R4, bytes);
    a.stx(1, R2, at + 7, R4);
    a.stx(8, R2, at + 8, V);
    a.aluImm('add', R1, 1);
    a.stx(4, REC, REC_NLOG, R1);
  }
}

/** Whether statements ask for a register of the thread (register() in a schema). */
function asksRegister(ss: LStmt[]): boolean {
  return irNodes(ss).some((o) => o.k === 'rt' && o.fn === 'register');
}

/** Every node (statement or expression) of the loop IR under x, depth first. */
export function irNodes(x: unknown, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (Array.isArray(x)) for (const y of x) irNodes(y, out);
  else if (typeof x === 'object' && x !== null && typeof x !== 'bigint') {
    out.push(x as Record<string, unknown>);
    for (const y of Object.values(x)) irNodes(y, out);
  }
  return out;
}

/** The keys of a view's let: names the functions compute (memo). */
function memoKeys(fns: LFunc[]): string[] {
  return [...new Set(irNodes(fns).flatMap((o) => (o.k === 'memo' ? [o.key as string] : [])))];
}

/** a op b where the side that is not wide (b when aWide, else a) is negative: the wide side is the greater. */
function signDecides(op: string, aWide: boolean): boolean {
  const aGreater = aWide;
  switch (op) {
    case '==':
      return false;
    case '!=':
      return true;
    case '>':
    case '>=':
      return aGreater;
    default:
      return !aGreater;
  }
}

const CMP_OPS = new Set(['==', '!=', '<', '<=', '>', '>=']);

function cmpOp(op: string, unsigned: boolean): JmpOp {
  switch (op) {
    case '==':
      return 'jeq';
    case '!=':
      return 'jne';
    case '<':
      return unsigned ? 'jlt' : 'jslt';
    case '<=':
      return unsigned ? 'jle' : 'jsle';
    case '>':
      return unsigned ? 'jgt' : 'jsgt';
    default:
      return unsigned ? 'jge' : 'jsge';
  }
}
