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
import type { ObjectLookup, UnwindObject } from '../memory/unwind/objects.ts';
import { RIP, RSP, type Regs } from '../memory/unwind/regs.ts';
import type { NativeFrame, StackCopy, UnwindEnd, Unwinder, Unwound, UnwindHooks } from '../memory/unwind/unwinder.ts';
import { nativeFrameName, type KernelSymbols } from '../memory/unwind/frame-names.ts';
import type { InterpreterState, InterpretedFrame } from './interpreter.ts';

/** The suffixes flame graph tools colour by (flamegraph.pl: _[k] kernel, _[j] compiled); _[l] an interpreted frame. */
export const LAYER = { kernel: '_[k]', compiled: '_[j]', interpreted: '_[l]' } as const;

export class EntrySplicer {
  /** Which entry each native frame (by depth) stands for. */
  readonly at = new Map<number, number>();

  constructor(
    readonly state: InterpreterState,
    private readonly unwinder: Unwinder,
    private readonly vm: InterpreterCode | null,
    private readonly stack: StackCopy,
  ) {}

  hooks(): UnwindHooks {
    return { override: (f, depth) => this.override(f, depth) };
  }

  private override(f: NativeFrame, depth: number): Regs | { end: UnwindEnd } | undefined {
    const inVm = this.vm !== null && f.pc >= this.vm.start && f.pc < this.vm.end;
    const compiled = f.object === null;
    if (!inVm && !compiled) return undefined;
    const k = this.state.entrySps.findIndex((sp) => sp >= f.sp);
    if (k < 0 || this.vm === null) return compiled ? { end: 'no-cfi' } : undefined;
    this.at.set(depth, k);
    const sp = this.state.entrySps[k];
    const regs: Regs = Float64Array.from(f.regs);
    regs[RSP] = sp;
    regs[RIP] = this.state.vmPc;
    const caller = this.unwinder.step({ pc: this.state.vmPc, sp, regs, object: this.vm.object, returnAddress: false }, this.stack);
    return caller;
  }
}

/** The interpreter's code: the object and the range of the frame description that covers pc. */
export interface InterpreterCode {
  object: UnwindObject;
  start: number;
  end: number;
}

/** The code of the interpreter at pc: the row of its frame description that holds there (LuaJIT's VM: one row for all of it). */
export function interpreterCode(objects: ObjectLookup, pc: number): InterpreterCode | null {
  const object = objects.objectAt(pc);
  const row = object?.row(pc);
  return object && row ? { object, start: row.start + object.bias, end: row.end + object.bias } : null;
}

const interpretedName = (f: InterpretedFrame): string =>
  `${f.name}${f.line > 0 ? ` line ${f.line}` : ''}${f.compiled ? LAYER.compiled : LAYER.interpreted}`;

/**
 * The frames of one sample, outermost first: the native frames (an entry's frames where the splicer put
 * them; a stack the unwinder could not finish starts with why), then the kernel's.
 */
export function stackNames(unwound: Unwound, splicer: EntrySplicer | null, kernel: readonly bigint[], ksyms: KernelSymbols | null): string[] {
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
