/**
 * A capture: what the kernel program of a view's instant: expressions
 * (printers/bpf/) wrote into its ring buffer at one perf sample or
 * uprobe hit — the status, the thread, the time, the thread's registers and
 * every word the walk loaded — decoded.
 */
import { CAPTURE, PT_REGS, STATUS } from '../../printers/bpf/print.ts';
import type { Int } from '../../core/exact.ts';

export interface CapturedWord {
  addr: number;
  bytes: Uint8Array;
}

export interface Capture {
  status: keyof typeof STATUS;
  pid: number;
  tid: number;
  /** CLOCK_MONOTONIC, ns. */
  timeNs: bigint;
  /** The thread's user registers at the instant, by name; null when the walk reads none. */
  regs: Record<string, Int> | null;
  words: CapturedWord[];
  /** A read that faulted (the capture stops there). */
  fault: number | null;
}

const NAMES = Object.fromEntries(Object.entries(STATUS).map(([k, v]) => [v, k])) as Record<number, keyof typeof STATUS>;

/** Decodes one record; throws on a record the program could not have written (a short or inconsistent one). */
export function decodeCapture(rec: Buffer): Capture {
  if (rec.length < CAPTURE.header) throw new Error(`internal: a capture of ${rec.length} bytes`);
  const status = NAMES[rec.readUInt32LE(0)];
  const n = rec.readUInt32LE(4);
  const pidTgid = rec.readBigUInt64LE(8);
  const regsSize = rec.readUInt32LE(24);
  const wordsAt = CAPTURE.header + regsSize;
  if (status === undefined || rec.length !== wordsAt + n * CAPTURE.entry) throw new Error(`internal: a capture of ${rec.length} bytes says ${n} words`);
  let regs: Record<string, Int> | null = null;
  if (regsSize > 0) {
    regs = {};
    for (let i = 0; i < PT_REGS.length && (i + 1) * 8 <= regsSize; i++) {
      const v = rec.readBigUInt64LE(CAPTURE.header + i * 8);
      regs[PT_REGS[i]] = v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
  }
  const words: CapturedWord[] = [];
  let fault: number | null = null;
  for (let i = 0; i < n; i++) {
    const at = wordsAt + i * CAPTURE.entry;
    const size = rec[at + 7];
    const addr = Number(rec.readBigUInt64LE(at) & 0x00ffffffffffffffn);
    if (size === 0) fault = addr;
    else words.push({ addr, bytes: Uint8Array.prototype.slice.call(rec, at + 8, at + 8 + size) });
  }
  return { status, pid: Number(pidTgid >> 32n), tid: Number(pidTgid & 0xffffffffn), timeNs: rec.readBigUInt64LE(16), regs, words, fault };
}
