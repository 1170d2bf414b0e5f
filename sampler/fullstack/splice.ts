/**
 * One sample's stack, whole: the native frames the unwinder found, with the
 * frames of an interpreter's entries in place of its own native frames, and
 * the kernel's frames on top.
 *
 * The interpreter's native frame of entry k lies at entrySps[k] (the pack
 * says so, interpreter.ts). A frame runs the interpreter when its pc is in
 * the interpreter's code (the frame description that covers vmPc) or in no
 * file at all (code the JIT compiled, which has no frame description): it
 * stands for the entry whose native frame is the nearest at or above its
 * stack pointer, and unwinding goes on from that frame, whose description
 * holds there whatever the pc was (compiled code, a helper the compiled
 * code called, the tail of the interpreter that keeps another stack).
 */
import { RIP, RSP } from '../unwind/regs.ts';
import type { NativeFrame, Regs, StackCopy, Unwinder, Unwound, UnwindHooks } from '../unwind/unwinder.ts';
import { nativeFrameName, type KernelSymbols } from '../unwind/frame-names.ts';
import type { InterpreterState, InterpretedFrame } from './interpreter.ts';

/** The suffixes flame graph tools colour by (flamegraph.pl: _[k] kernel, _[j] compiled); _[l] an interpreted frame. */
export const LAYER = { kernel: '_[k]', compiled: '_[j]', interpreted: '_[l]' } as const;

export class EntrySplicer {
  /** Which entry each native frame (by depth) stands for. */
  readonly at = new Map<number, number>();

  constructor(
    readonly state: InterpreterState,
    private readonly unwinder: Unwinder,
    private readonly vmCode: { start: number; end: number } | null,
    private readonly stack: StackCopy,
  ) {}

  hooks(): UnwindHooks {
    return { override: (f, depth) => this.override(f, depth) };
  }

  private override(f: NativeFrame, depth: number): Regs | null | undefined {
    const inVm = this.vmCode !== null && f.pc >= this.vmCode.start && f.pc < this.vmCode.end;
    const compiled = f.object === null;
    if (!inVm && !compiled) return undefined;
    const k = this.state.entrySps.findIndex((sp) => sp >= f.sp);
    if (k < 0) return compiled ? null : undefined;
    this.at.set(depth, k);
    const sp = this.state.entrySps[k];
    const regs: Regs = Float64Array.from(f.regs);
    regs[RSP] = sp;
    regs[RIP] = this.state.vmPc;
    const caller = this.unwinder.step({ pc: this.state.vmPc, sp, regs, object: f.object }, this.stack);
    return 'end' in caller ? null : caller;
  }
}

const interpretedName = (f: InterpretedFrame): string =>
  `${f.name}${f.line > 0 ? ` line ${f.line}` : ''}${f.compiled ? LAYER.compiled : LAYER.interpreted}`;

/**
 * The frames of one sample, outermost first: the native frames (an entry's frames where the splicer put
 * them; a stack the unwinder could not finish starts with why), then the kernel's.
 */
export function stackNames(unwound: Unwound, splicer: EntrySplicer | null, kernel: number[], ksyms: KernelSymbols | null): string[] {
  const out: string[] = [];
  if (unwound.end !== 'outermost') out.push(`[unwinding stopped: ${unwound.end}]`);
  let lastEntry = -1;
  for (let d = unwound.frames.length - 1; d >= 0; d--) {
    const f = unwound.frames[d];
    const k = splicer?.at.get(d);
    if (k === undefined) {
      out.push(nativeFrameName(f.object, f.pc, d > 0));
      continue;
    }
    if (k === lastEntry) continue;
    lastEntry = k;
    const frames = splicer!.state.entries[k];
    if (!frames || frames.length === 0) out.push(`[${splicer!.state.vm}]${LAYER.interpreted}`);
    else for (const x of frames) out.push(interpretedName(x));
  }
  for (let i = kernel.length - 1; i >= 0; i--) out.push(`${ksyms ? ksyms.name(kernel[i]) : `0x${kernel[i].toString(16)}`}${LAYER.kernel}`);
  return out;
}
