/**
 * The frame loop: from a sample's registers and its copy of the user stack,
 * each caller's registers by the CFI of the frame's object (what libgcc's
 * _Unwind_Find_FDE / uw_frame_state_for do for a live stack, and gdb's
 * dwarf2 frame unwinder for a stopped one). Memory is only ever the stack
 * copy, every read bounds-checked; the walk is bounded by depth and by the
 * CFA, which must grow.
 */
import { ExprFault, evalExpr, type ExprContext, type Row, RuleKind } from './cfi.ts';
import { CfiError } from '../../../core/eh-frame.ts';
import type { ObjectLookup, UnwindObject } from './objects.ts';
import { CALLEE_SAVED, NREGS, RIP, RSP, type Regs, RegsPool, unknownRegs } from './regs.ts';

export interface StackCopy {
  sp: number;
  /** bytes[i] is memory at sp + i */
  bytes: Buffer;
}

export interface NativeFrame {
  pc: number;
  sp: number;
  regs: Regs;
  object: UnwindObject | null;
  /** pc is a return address (look up pc-1): false for the sampled frame and for a frame a signal interrupted. */
  returnAddress?: boolean;
}

export type UnwindEnd = 'outermost' | 'no-cfi' | 'stack-cut' | 'bad-return-address' | 'no-progress' | 'max-depth' | 'unmapped';

export interface Unwound {
  /** innermost first; frames[0].pc is the sampled rip */
  frames: NativeFrame[];
  end: UnwindEnd;
}

export interface UnwindHooks {
  /**
   * Asked before each step from frame f: return Regs to continue from instead of f's CFI step (the LuaJIT rule
   * uses it to resume from the VM's C frame), { end } to stop there and say why, null to stop (the walk ends 'outermost'),
   * or undefined to apply CFI.
   */
  override?(f: NativeFrame, depth: number): Regs | { end: UnwindEnd } | null | undefined;
}

const DEFAULT_MAX_DEPTH = 128;
/** An unknown pc re-reads the process's mappings (a dlopen since), at most this often: garbage pcs must not cost a read each. */
const REFRESH_INTERVAL_MS = 100;

/** An 8-byte read from the stack copy, or null past either end of it. */
export function readStack(stack: StackCopy, addr: number): number | null {
  const at = addr - stack.sp;
  if (!(at >= 0 && at + 8 <= stack.bytes.length)) return null;
  return stack.bytes.readUInt32LE(at) + stack.bytes.readUInt32LE(at + 4) * 0x100000000;
}

class StackCut extends Error {}

export class Unwinder {
  private readonly maxDepth: number;
  /** Where step() carves callers' registers from. */
  private readonly pool = new RegsPool();
  private lastRefresh = -Infinity;

  constructor(
    private readonly objects: ObjectLookup,
    opts: { maxDepth?: number } = {},
  ) {
    this.maxDepth = opts.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  unwind(regs: Regs, stack: StackCopy, hooks?: UnwindHooks): Unwound {
    const pc = regs[RIP];
    if (!this.objects.isExecutable(pc)) this.refresh();
    if (!this.objects.isExecutable(pc)) {
      return { frames: [{ pc, sp: regs[RSP], regs, object: null, returnAddress: false }], end: 'unmapped' };
    }
    const frames: NativeFrame[] = [this.frame(regs, false)];
    for (;;) {
      if (frames.length >= this.maxDepth) return { frames, end: 'max-depth' };
      const f = frames[frames.length - 1];
      const given = hooks?.override?.(f, frames.length - 1);
      if (given === null) return { frames, end: 'outermost' };
      let next: Regs | { end: UnwindEnd };
      let afterSignal = false;
      if (given !== undefined) next = 'end' in given ? given : this.check(f, given);
      else {
        next = this.step(f, stack);
        afterSignal = !('end' in next) && (rowOf(f)?.signal ?? false);
      }
      if ('end' in next) return { frames, end: next.end };
      frames.push(this.frame(next, !afterSignal));
    }
  }

  private frame(regs: Regs, returnAddress: boolean): NativeFrame {
    const pc = regs[RIP];
    let object = this.objects.objectAt(pc);
    if (object === null && !this.objects.isExecutable(pc)) {
      this.refresh(); // a module loaded since (dlopen)
      object = this.objects.objectAt(pc);
    }
    return { pc, sp: regs[RSP], regs, object, returnAddress };
  }

  private refresh(): void {
    const now = performance.now();
    if (now - this.lastRefresh < REFRESH_INTERVAL_MS) return;
    this.lastRefresh = now;
    this.objects.refresh();
  }

  /** The CFI step alone: the caller's registers, or why there is none. */
  step(f: NativeFrame, stack: StackCopy): Regs | { end: UnwindEnd } {
    const row = rowOf(f);
    if (!row) return { end: 'no-cfi' };
    const out = applyRow(row, f.regs, stack, this.pool);
    return typeof out === 'string' ? { end: out } : this.check(f, out);
  }

  /** The caller's registers if they make a frame: a return address in executable memory, a stack that grew. */
  private check(f: NativeFrame, caller: Regs): Regs | { end: UnwindEnd } {
    const ra = caller[RIP];
    if (ra === 0) return { end: 'outermost' };
    if (!Number.isFinite(ra)) return { end: 'outermost' };
    if (!this.objects.isExecutable(ra)) {
      this.refresh();
      if (!this.objects.isExecutable(ra)) return { end: 'bad-return-address' };
    }
    if (!(caller[RSP] > f.sp)) return { end: 'no-progress' };
    return caller;
  }
}

/** The pc to look a frame's CFI up at: a return address may follow a call that ends its function. */
const lookupPc = (f: NativeFrame): number => (f.returnAddress ? f.pc - 1 : f.pc);

/** The frame's CFI row, or null (no object, no FDE, or CFI that does not parse). */
function rowOf(f: NativeFrame): Row | null {
  try {
    return f.object?.row(lookupPc(f)) ?? null;
  } catch (err) {
    if (err instanceof CfiError) return null;
    throw err;
  }
}

/**
 * The caller's registers by row, or why not: 'outermost' (the return address rule is undefined), 'stack-cut'
 * (a rule reads past the stack copy), 'no-cfi' (a rule needs a register not known, or an expression is bad).
 */
export function applyRow(row: Row, regs: Regs, stack: StackCopy, pool?: RegsPool): Regs | 'outermost' | 'stack-cut' | 'no-cfi' {
  try {
    return applyRowOrThrow(row, regs, stack, pool) ?? 'no-cfi';
  } catch (err) {
    if (err instanceof StackCut) return 'stack-cut';
    if (err instanceof ExprFault) return err.unreadable ? 'stack-cut' : 'no-cfi';
    if (err instanceof CfiError) return 'no-cfi';
    throw err;
  }
}

function applyRowOrThrow(row: Row, regs: Regs, stack: StackCopy, pool?: RegsPool): Regs | 'outermost' | null {
  let cfa: number;
  // One context for the row's expressions (a signal frame's row has one per register), made at the first.
  let ctx: ExprContext | undefined;
  if (row.cfaExpr) cfa = Number(evalExpr(row.cfaExpr, (ctx ??= exprContext(regs, stack))));
  else {
    const base = row.cfaReg < NREGS ? regs[row.cfaReg] : NaN;
    if (!Number.isFinite(base)) return null;
    cfa = base + row.cfaOffset;
  }
  if (!Number.isSafeInteger(cfa) || cfa <= 0) return null;
  const raRule = row.rules[row.raReg];
  if (!raRule || raRule.kind === RuleKind.Undefined) return 'outermost';
  const out = pool ? pool.take() : unknownRegs();
  for (const r of CALLEE_SAVED) out[r] = regs[r];
  out[RSP] = cfa;
  for (let reg = 0; reg < NREGS; reg++) {
    const rule = row.rules[reg];
    if (!rule) continue;
    const target = reg === row.raReg ? RIP : reg;
    switch (rule.kind) {
      case RuleKind.Undefined:
        out[target] = NaN;
        break;
      case RuleKind.SameValue:
        out[target] = regs[reg];
        break;
      case RuleKind.Offset:
        out[target] = load(stack, cfa + rule.n);
        break;
      case RuleKind.ValOffset:
        out[target] = cfa + rule.n;
        break;
      case RuleKind.Register:
        out[target] = rule.n < NREGS ? regs[rule.n] : NaN;
        break;
      case RuleKind.Expression:
        out[target] = load(stack, Number(evalExpr(rule.expr!, (ctx ??= exprContext(regs, stack)), BigInt(cfa))));
        break;
      case RuleKind.ValExpression:
        out[target] = Number(evalExpr(rule.expr!, (ctx ??= exprContext(regs, stack)), BigInt(cfa)));
        break;
    }
  }
  return out;
}

function load(stack: StackCopy, addr: number): number {
  const v = readStack(stack, addr);
  if (v === null) throw new StackCut();
  return v;
}

/** What a DWARF expression may read: the registers, and the stack copy (nothing else is memory here). */
function exprContext(regs: Regs, stack: StackCopy): ExprContext {
  return {
    reg: (n) => (n < NREGS ? regs[n] : NaN),
    read: (addr, size) => {
      const at = Number(addr) - stack.sp;
      if (!(at >= 0 && at + size <= stack.bytes.length)) return null;
      let v = 0n;
      for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(stack.bytes[at + i]);
      return v;
    },
  };
}
