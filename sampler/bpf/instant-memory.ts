/**
 * The target's memory as it was at a capture's instant where the kernel
 * read it, and as it is now everywhere else: a MemorySource over the live
 * one with the captured words laid on top. A walk run over it sees, for
 * every word the capture holds, the value of the instant, however often it
 * reads it (so the read-again check agrees on them); what the capture does
 * not hold is read live and checked as any sample's memory is. A read that
 * faulted in the kernel faults here too.
 */
import type { MemorySource } from '../memory/memory.ts';
import type { Capture } from './capture.ts';
import type { RegisterSource } from '../memory/live-registers.ts';

export class InstantMemory implements MemorySource {
  private capture: Capture | null = null;
  /** The captured words sorted by address, for the reads that meet them. */
  private words: { addr: number; end: number; bytes: Uint8Array }[] = [];

  constructor(private readonly live: MemorySource) {}

  get description(): string {
    return `${this.live.description} at the instant of a perf sample (eBPF)`;
  }

  get current(): Capture | null {
    return this.capture;
  }

  /** The capture later reads see (null: live memory alone). */
  use(capture: Capture | null): void {
    this.capture = capture;
    this.words = capture ? capture.words.map((w) => ({ addr: w.addr, end: w.addr + w.bytes.length, bytes: w.bytes })).sort((a, b) => a.addr - b.addr) : [];
  }

  readInto(addr: number, out: Uint8Array): number {
    const end = addr + out.length;
    const fault = this.capture?.fault ?? null;
    const limit = fault !== null && fault >= addr && fault < end ? fault - addr : out.length;
    let n = limit > 0 ? this.live.readInto(addr, limit === out.length ? out : out.subarray(0, limit)) : 0;
    // Captured bytes over the live ones; a live read cut short goes on while the capture holds the bytes.
    const held = new Uint8Array(limit);
    for (const w of this.words) {
      if (w.end <= addr) continue;
      if (w.addr >= addr + limit) break;
      const from = Math.max(w.addr, addr);
      const to = Math.min(w.end, addr + limit);
      out.set(w.bytes.subarray(from - w.addr, to - w.addr), from - addr);
      held.fill(1, from - addr, to - addr);
    }
    while (n < limit && held[n]) n++;
    return n;
  }

  explain(addr: number): string {
    if (this.capture?.fault === addr) return 'the kernel could not read it at the instant (a page not resident, or not mapped)';
    return this.live.explain?.(addr) ?? 'unreadable';
  }

  close(): void {
    // The live source is the target's to close.
  }
}

/** The capture's registers as the walk's register source: fixed for the sample, so they never "moved". */
export function instantRegisters(capture: () => Capture | null): RegisterSource {
  return {
    read: () => capture()?.regs ?? null,
    get unavailable() {
      return capture()?.regs ? null : 'the capture holds no registers';
    },
    close: () => {},
  };
}
