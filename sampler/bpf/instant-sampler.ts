/**
 * A view sampled at the instant: its instant: expressions printed as an
 * eBPF capture program (printers/bpf/) for this process's layout,
 * run by the kernel on a software CPU clock of the process's first thread
 * (the one register() and the view's walks are about), each capture then
 * walked in user space by the view as any sample (sampling.ts sampleOnce)
 * over InstantMemory. No read-again retry is needed for what the kernel
 * read: it read it while the thread was interrupted.
 */
import { lowerView } from '../../generators/lower/lower.ts';
import { CAPTURE, printCapture } from '../../printers/bpf/print.ts';
import { type Print, type ReadOptions, sampleOnce, type Session } from '../sampling/sampling.ts';
import { type BpfCosts, AttachedBpf } from './loader.ts';
import { type Capture, decodeCapture } from './capture.ts';
import { InstantMemory, instantRegisters } from './instant-memory.ts';
import { TargetGone } from '../memory/memory.ts';
import type { Int } from '../../core/exact.ts';
import type { Titled } from '../sampling/result-shape.ts';

/** Words a capture holds (16 bytes each): a per-CPU map value stays under the kernel's 32 KiB. */
const ENTRIES = 1024;
const RING_BYTES = 8 << 20;
const ESRCH = 3;
/**
 * The kernel's bound of one walk: the verifier follows each step of a loop, so its time grows faster than
 * the bound (lua_stacks: 0.15 s at 64, 5 s at 128, 12 s at 200). A deeper walk stops the capture there,
 * and the sample is partial (the walk in user space goes on, past what the kernel read at the instant).
 */
const KERNEL_MAX_NODES = 64;

export class InstantSampler {
  /** Answers of captures walked, by their words (recording.ts takeCaptures). */
  readonly seen = new Map<string, { result: Titled; regs: [string, Int | undefined][] }>();

  private constructor(
    readonly session: Session,
    private readonly bpf: AttachedBpf,
    readonly memory: InstantMemory,
  ) {}

  /**
   * Prints the capture for the session's layout and attaches it at hz to the process's first thread.
   * The session's samples then read through the capture set by use(); resolve names of globals as its walks do.
   */
  static open(s: Session, hz: number, global: (name: string) => Int): InstantSampler {
    const bpf = InstantSampler.load(s, global, false);
    try {
      let fd: number;
      try {
        fd = bpf.addon.perfClock(s.target.pid!, hz);
      } catch (err) {
        if ((err as { errno?: number }).errno === ESRCH) throw new TargetGone(`process ${s.target.pid} is gone`);
        throw err;
      }
      bpf.events.push(fd);
      bpf.addon.attach(fd, bpf.progFd);
    } catch (err) {
      bpf.detach();
      throw err;
    }
    return new InstantSampler(s, bpf, new InstantMemory(s.target.source));
  }

  /**
   * The capture attached to perf events opened elsewhere (record --cpu's stack samples, any thread of the
   * process): each event still writes its own sample, and the capture of the same instant beside it.
   * The events stay the caller's: close() detaches the program only.
   */
  static attach(s: Session, perfFds: readonly number[], global: (name: string) => Int): InstantSampler {
    const bpf = InstantSampler.load(s, global, true);
    try {
      for (const fd of perfFds) bpf.addon.attach(fd, bpf.progFd);
    } catch (err) {
      bpf.detach();
      throw err;
    }
    return new InstantSampler(s, bpf, new InstantMemory(s.target.source));
  }

  /** The capture attached to more events (threads started since attach()). */
  attachTo(perfFds: readonly number[]): void {
    for (const fd of perfFds) this.bpf.addon.attach(fd, this.bpf.progFd);
  }

  private static load(s: Session, global: (name: string) => Int, keepSample: boolean): AttachedBpf {
    const lowered = lowerView(s.view, true);
    const prog = printCapture(lowered, lowered.instant, s.sel.layout, {
      tgid: s.target.pid!,
      maxNodes: KERNEL_MAX_NODES,
      maxTotal: KERNEL_MAX_NODES * 10,
      entries: ENTRIES,
      ringBytes: RING_BYTES,
      global: (n) => BigInt(global(n)),
      keepSample,
    });
    return AttachedBpf.load(prog, 'perf_event', { stats: true, name: 'xwalk_instant' });
  }

  /** The captures written since the last call, oldest first. */
  drain(): Capture[] {
    return this.bpf.drain().map(decodeCapture);
  }

  /**
   * The view's answer for one capture: walked over it, or the answer of a capture of the same words (and the
   * same values of the registers that walk asked for) walked before — the rest of what the walk read is memory
   * that does not change (a hot loop's stack, sampled again and again, is walked once).
   */
  walk(o: ReadOptions, c: Capture, warn: Print): { result: Titled; walked: boolean } {
    const key = wordsKey(c);
    const known = this.seen.get(key);
    if (known && known.regs.every(([n, v]) => c.regs?.[n] === v)) return { result: known.result, walked: false };
    this.memory.use(c);
    let r: Titled;
    try {
      r = sampleOnce(o, this.session, warn).result;
    } finally {
      this.memory.use(null);
    }
    // The walk here stops where the kernel's did (a walk error, a read that faulted), over the same words;
    // one that went on read memory the kernel did not, after the instant.
    const cut = CUT[c.status] ?? (c.status !== 'ok' && !r.partial ? `the kernel's walk stopped (${c.status === 'fault' ? `a read at 0x${c.fault?.toString(16)} faulted` : 'a walk error'}) where this one went on` : null);
    if (cut) r = { ...r, partial: true, errors: [{ message: cut }, ...r.errors] };
    const used = this.session.compiled!.R.usedRegisters();
    if (this.seen.size >= SEEN_MAX) this.seen.clear();
    this.seen.set(key, { result: r, regs: used.map((n) => [n, c.regs?.[n]] as [string, Int | undefined]) });
    return { result: r, walked: true };
  }

  /** The registers of the capture in use, as the session's walks read them. */
  readonly registerSource = instantRegisters(() => this.memory.current);

  /** Captures the kernel could not write: the ring buffer was full (this process fell behind). */
  dropped(): number {
    const cpus = this.bpf.perCpu('frame', Buffer.alloc(4)) ?? [];
    return cpus.reduce((n, v) => n + v.readUInt32LE(CAPTURE.dropped), 0);
  }

  costs(): BpfCosts {
    return this.bpf.costs();
  }

  close(): void {
    this.bpf.detach();
  }
}

/** Captures remembered by their words, per process: past this, forgotten all at once. */
const SEEN_MAX = 4096;

/** What a capture read: its words (address, bytes) and where it stopped. */
function wordsKey(c: Capture): string {
  let k = `${c.status} ${c.fault ?? ''}`;
  for (const w of c.words) k += ` ${w.addr.toString(16)}:${Buffer.from(w.bytes.buffer, w.bytes.byteOffset, w.bytes.length).toString('hex')}`;
  return k;
}

/** Why a capture the kernel cut short is not of one instant. */
const CUT: Partial<Record<Capture['status'], string>> = {
  full: 'the kernel\'s capture held more words than it has room for (the rest would not be of the instant)',
  regs: 'the kernel could not read the thread\'s registers at the instant',
};
