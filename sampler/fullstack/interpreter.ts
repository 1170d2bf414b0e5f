/**
 * An interpreter's state at one sample, from the row of its pack's view that
 * splices: native_stack (NATIVE_STACK_COLUMNS in generators/ir.ts): its
 * frames grouped by entry from native code, innermost entry first, each
 * entry's frames outermost first with the line each is at, and where each
 * entry's native frame is. What the columns mean is the pack's (for LuaJIT:
 * packs/nginx/schema.yaml, lua_entries); this file only reads them.
 */
import type { Row, Value } from '../sampling/view-run.ts';

export interface InterpretedFrame {
  name: string;
  /** The line the frame is at; 0 when not known. */
  line: number;
  /** Compiled code runs it (the youngest frame while the interpreter's "vm" is JIT). */
  compiled: boolean;
}

export interface InterpreterState {
  vm: string;
  /** Innermost entry first; each entry's frames outermost first. Native functions (kind 1) left out: the native stack has them. */
  entries: InterpretedFrame[][];
  /** The stack pointer of each entry's native frame, innermost first. */
  entrySps: number[];
  /** An address in the interpreter's code. */
  vmPc: number;
}

const KIND_NATIVE = 1;
const INLINED = -1;
export const INLINED_FRAME = '(a function the trace inlined)';

function num(v: Row[string] | undefined): number {
  if (Array.isArray(v)) return Number.NaN;
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return Number.NaN;
}

const list = (v: Row[string]): (Value | null)[] => (Array.isArray(v) ? v : []);

/** The state a row says; null when no interpreted code runs (no entries). */
export function interpreterState(row: Row): InterpreterState | null {
  const frames = list(row.frames);
  const sps = list(row.entry_sps).map(num);
  if (frames.length === 0 || sps.length === 0) return null;
  const kinds = list(row.kinds).map(num);
  const ends = list(row.entry_ends).map(num);
  const callerLines = list(row.caller_lines).map(num);
  const vm = String(row.vm ?? '?');
  const entries: InterpretedFrame[][] = [[]];
  const topLine = num(row.top_line);
  // -1: the youngest frame runs code of a function compiled into its trace, which has no frame of its own.
  if (topLine === INLINED) entries[0].push({ name: INLINED_FRAME, line: 0, compiled: true });
  for (let i = 0; i < frames.length; i++) {
    const line = i === 0 ? topLine : callerLines[i - 1];
    if (kinds[i] !== KIND_NATIVE) {
      entries[entries.length - 1].unshift({ name: String(frames[i] ?? '?'), line: line > 0 ? line : 0, compiled: i === 0 && vm === 'JIT' });
    }
    if (ends[i] === 1 && i < frames.length - 1) entries.push([]);
  }
  return { vm, entries, entrySps: sps, vmPc: num(row.vm_pc) };
}
