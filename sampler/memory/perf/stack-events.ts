/**
 * Stack samples of every thread of a process, taken by the kernel at the
 * instant (perf events, sampler/native/perf_stacks.c), never a stop: the
 * user registers, a copy of the user stack from sp upward (unwound in user
 * space from .eh_frame: sampler/memory/unwind/) and the kernel callchain.
 *
 * kind 'cpu': a software CPU clock at `hz` on each thread (on-CPU profile).
 * kind 'switch': a sample at every switch-out of each thread, taken as it
 * leaves the CPU (its kernel callchain shows where it blocked), and the
 * switch records in and out: a switch-out's blocked time is the time to the
 * same thread's next switch-in (off-CPU profile).
 *
 * Times are CLOCK_MONOTONIC ns, as bpf_ktime_get_ns() in an eBPF program
 * attached to the same event (`fds`, xwalk_bpf's attach()).
 */
import fs from 'node:fs';
import os from 'node:os';
import { TargetGone, UserError } from '../../../core/errors.ts';
import { PERF_REGS } from '../live-registers.ts';
import { loadAddon } from '../native-addon.ts';
import { procError } from '../proc-maps.ts';

/** A sample record as the addon gives it (its contract is at the top of perf_stacks.c). */
export interface RawSample {
  type: 'sample';
  pid: number;
  tid: number;
  time: bigint;
  /** As the kernel wrote it: PERF_CONTEXT_* markers kept. */
  callchain: BigUint64Array;
  abi: number;
  regs: BigUint64Array | null;
  stack: Buffer;
  stackSize: number;
}
export interface RawSwitch {
  type: 'switch';
  out: boolean;
  preempt: boolean;
  pid: number;
  tid: number;
  time: bigint;
}

/** The addon xwalk_perf_stacks. */
export interface PerfStacksAddon {
  open(tid: number, kind: 'cpu' | 'switch', rateOrPeriod: number, stackBytes: number, ringPages: number, disabled?: boolean): object;
  drain(handle: object, max: number): (RawSample | RawSwitch)[];
  wait(handles: object[], ms: number): boolean;
  enable(handle: object): void;
  fd(handle: object): number;
  lost(handle: object): number;
  corrupt(handle: object): number;
  close(handle: object): void;
}

/**
 * The user registers of a sample are in PERF_REGS order (perf_stacks.c's REG_MASK, the same as perf_regs.c's:
 * enum perf_event_x86_regs without flags and the segment registers).
 */
export { PERF_REGS } from '../live-registers.ts';
const SP = PERF_REGS.indexOf('rsp');
const IP = PERF_REGS.indexOf('rip');

export interface StackSample {
  tid: number;
  pid: number;
  /** ns, CLOCK_MONOTONIC */
  time: bigint;
  /**
   * Kernel callchain ips, innermost first, PERF_CONTEXT_* markers removed
   * (empty for a sample taken in user mode). bigint: a kernel address
   * (0xffffffff8…) does not fit a double exactly.
   */
  kernel: bigint[];
  /** The user registers in PERF_REGS order (rax rbx rcx rdx rsi rdi rbp rsp rip r8..r15). */
  regs: BigUint64Array;
  sp: number;
  ip: number;
  /** Memory at sp.. as it was at the sample. */
  stack: Buffer;
  /** The copy is shorter than asked (the stack's top is nearer, or the record had no room). */
  stackCut: boolean;
}

export interface SwitchEvent {
  tid: number;
  time: bigint;
  out: boolean;
  /** A switch-out where the thread was preempted (still runnable), not blocked. */
  preempt: boolean;
}

export interface StackEventOptions {
  kind: 'cpu' | 'switch';
  /** Samples a second of each thread's CPU time ('cpu' only); 99 unless given. */
  hz?: number;
  /** Bytes of user stack copied a sample: a multiple of 8, 8..65528. */
  stackBytes: number;
  /** Data pages of each thread's ring (a power of two); sized from the rate and stackBytes unless given. */
  ringPages?: number;
  /** Open the events disabled: enable() (or xwalk_bpf's attach()) starts them. */
  disabled?: boolean;
}

const PERF_CONTEXT_MAX = 2n ** 64n - 4095n;
const PERF_CONTEXT_KERNEL = 2n ** 64n - 128n;
const MAX_STACK_BYTES = 65528;
const DRAIN_BATCH = 4096;
/** Beyond the stack copy, a sample's record holds at most this much (header, ids, 127 ips, 17 registers). */
const RECORD_OVERHEAD = 1536;
const PAGE = 4096;

const ERRNO_NAME = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));
const { EACCES, EPERM, ESRCH, ENOENT, EOPNOTSUPP, EINVAL, E2BIG, ENODEV } = os.constants.errno;

/** Why stack sampling cannot run here, or null when the addon is built. */
export function stackEventsUnavailable(): string | null {
  return loadAddon<PerfStacksAddon>('xwalk_perf_stacks') ? null : 'the native addon xwalk_perf_stacks is not built (make native)';
}

function addon(): PerfStacksAddon {
  const why = stackEventsUnavailable();
  if (why !== null) throw new UserError(`perf stack sampling is not available: ${why}`);
  return loadAddon<PerfStacksAddon>('xwalk_perf_stacks')!;
}

/** The ring of one thread: room for about half a second of samples (cpu) or 64 switch-outs, 8 to 1024 pages. */
export function defaultRingPages(opts: StackEventOptions): number {
  const record = opts.stackBytes + RECORD_OVERHEAD;
  const bytes = opts.kind === 'cpu' ? ((opts.hz ?? 99) * record) / 2 : 64 * record;
  let pages = 8;
  while (pages < 1024 && pages * PAGE < bytes) pages *= 2;
  return pages;
}

/** The tids of /proc/PID/task; a process that is gone or cannot be seen gives procError's one line. */
function threadsOf(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .filter((t) => Number.isInteger(t) && t > 0);
  } catch (err) {
    throw procError(pid, 'task', err as NodeJS.ErrnoException);
  }
}

/** One line for a refused perf_event_open; null for ESRCH (the thread is gone: skipped). */
function openError(pid: number, tid: number, opts: StackEventOptions, err: Error & { errno?: number }): Error | null {
  const errno = err.errno ?? 0;
  const what = opts.kind === 'cpu' ? 'a CPU clock' : 'context switches';
  if (errno === ESRCH) return null;
  if (errno === EACCES || errno === EPERM) {
    const paranoid = readParanoid();
    return new UserError(
      `perf_event_open(${what}) on thread ${tid} of pid ${pid} was refused (${ERRNO_NAME.get(errno)}): kernel stacks need root or CAP_PERFMON` +
        (paranoid !== null ? ` (kernel.perf_event_paranoid is ${paranoid})` : '') +
        ', and the target must be one you may ptrace',
    );
  }
  if (errno === ENOENT || errno === EOPNOTSUPP || errno === E2BIG || errno === ENODEV || errno === EINVAL) {
    return new UserError(
      `this kernel cannot sample ${what} with user stacks and kernel callchains (perf_event_open: ${ERRNO_NAME.get(errno) ?? errno}): ` +
        'it needs software perf events with PERF_SAMPLE_STACK_USER' +
        (opts.kind === 'switch' ? ' and context_switch records (Linux 4.3+)' : ''),
    );
  }
  return new UserError(`perf_event_open(${what}) on thread ${tid} of pid ${pid}: ${err.message}`);
}

function readParanoid(): string | null {
  try {
    return fs.readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8').trim();
  } catch {
    return null;
  }
}

/** The kernel ips of a callchain, innermost first: the PERF_CONTEXT_KERNEL part, markers removed. */
export function kernelIps(callchain: BigUint64Array): bigint[] {
  const out: bigint[] = [];
  let kernel = true; // a callchain without a marker is all kernel (exclude_callchain_user)
  for (const ip of callchain) {
    if (ip >= PERF_CONTEXT_MAX) {
      kernel = ip === PERF_CONTEXT_KERNEL;
      continue;
    }
    if (kernel) out.push(ip);
  }
  return out;
}

interface Thread {
  tid: number;
  handle: object;
}

export class StackEvents {
  private readonly threads = new Map<number, Thread>();
  /** Records of threads that exited, drained before their events were closed. */
  private pending: (RawSample | RawSwitch)[] = [];
  private lostClosed = 0;
  private corruptClosed = 0;
  private withoutRegsCount = 0;
  private closed = false;

  private constructor(
    readonly pid: number,
    private readonly opts: Required<Omit<StackEventOptions, 'disabled'>> & { disabled: boolean },
  ) {}

  /** Events on every thread of /proc/PID/task; rescan() adds threads started since. */
  static open(pid: number, opts: StackEventOptions): StackEvents {
    const stackBytes = opts.stackBytes;
    if (!Number.isInteger(stackBytes) || stackBytes < 8 || stackBytes > MAX_STACK_BYTES || stackBytes % 8 !== 0) {
      throw new UserError(`the stack copy must be a multiple of 8 bytes from 8 to ${MAX_STACK_BYTES}, not ${stackBytes}`);
    }
    const hz = opts.hz ?? 99;
    if (!Number.isInteger(hz) || hz < 1) throw new UserError(`the sampling rate must be a whole number of Hz, not ${hz}`);
    const ringPages = opts.ringPages ?? defaultRingPages({ ...opts, hz });
    const a = addon();
    const events = new StackEvents(pid, { kind: opts.kind, hz, stackBytes, ringPages, disabled: opts.disabled ?? false });
    try {
      events.rescan(a);
    } catch (err) {
      events.close();
      throw err;
    }
    if (events.threads.size === 0) throw new TargetGone(`process ${pid} exited (or does not exist)`);
    return events;
  }

  /** The event fds, one a thread (for xwalk_bpf's attach()). */
  get fds(): number[] {
    const a = addon();
    return [...this.threads.values()].map((t) => a.fd(t.handle));
  }

  /** The tids sampled now. */
  get tids(): number[] {
    return [...this.threads.keys()];
  }

  /**
   * Opens events on threads started since; those of threads that exited are drained and closed. Returns the
   * fds of the events added (an fd closed here may be given again to one of them: the fds are not a set that
   * only grows).
   */
  rescan(a: PerfStacksAddon = addon()): number[] {
    if (this.closed) return [];
    const now = threadsOf(this.pid);
    const alive = new Set(now);
    for (const [tid, t] of this.threads) {
      if (alive.has(tid)) continue;
      for (const r of drainAll(a, t.handle)) this.pending.push(r);
      this.lostClosed += a.lost(t.handle);
      this.corruptClosed += a.corrupt(t.handle);
      a.close(t.handle);
      this.threads.delete(tid);
    }
    const added: number[] = [];
    for (const tid of now) {
      if (this.threads.has(tid)) continue;
      const rate = this.opts.kind === 'cpu' ? this.opts.hz : 1;
      try {
        const handle = a.open(tid, this.opts.kind, rate, this.opts.stackBytes, this.opts.ringPages, this.opts.disabled);
        this.threads.set(tid, { tid, handle });
        added.push(a.fd(handle));
      } catch (err) {
        const e = openError(this.pid, tid, this.opts, err as Error & { errno?: number });
        if (e) throw e;
      }
    }
    return added;
  }

  /** Starts events opened with `disabled` (an eBPF attach() enables its own): all of them, or those of the fds given. */
  enable(fds?: number[]): void {
    const a = addon();
    const only = fds && new Set(fds);
    for (const t of this.threads.values()) if (!only || only.has(a.fd(t.handle))) a.enable(t.handle);
  }

  /** Blocks up to ms (poll(2), the event loop waits too) until a thread's ring is half full; true when one is. */
  wait(ms: number): boolean {
    if (this.closed) return false;
    return addon().wait([...this.threads.values()].map((t) => t.handle), ms);
  }

  /** Everything the rings hold now, each list in time order. Samples without user registers are counted (withoutRegs()), not given. */
  drain(): { samples: StackSample[]; switches: SwitchEvent[] } {
    const samples: StackSample[] = [];
    const switches: SwitchEvent[] = [];
    const raw = this.pending;
    this.pending = [];
    if (!this.closed) {
      const a = addon();
      for (const t of this.threads.values()) for (const r of drainAll(a, t.handle)) raw.push(r);
    }
    for (const r of raw) {
      if (r.type === 'switch') {
        switches.push({ tid: r.tid, time: r.time, out: r.out, preempt: r.preempt });
        continue;
      }
      if (!r.regs) {
        this.withoutRegsCount++;
        continue;
      }
      samples.push({
        tid: r.tid,
        pid: r.pid,
        time: r.time,
        kernel: kernelIps(r.callchain),
        regs: r.regs,
        sp: Number(r.regs[SP]),
        ip: Number(r.regs[IP]),
        stack: r.stack,
        stackCut: r.stack.length < this.opts.stackBytes,
      });
    }
    samples.sort((x, y) => (x.time < y.time ? -1 : x.time > y.time ? 1 : 0));
    switches.sort((x, y) => (x.time < y.time ? -1 : x.time > y.time ? 1 : 0));
    return { samples, switches };
  }

  /** Samples the kernel could not write (a ring was full). */
  lost(): number {
    return this.lostClosed + this.sum((a, h) => a.lost(h));
  }

  /** Records skipped because their sizes did not hold together. */
  corrupt(): number {
    return this.corruptClosed + this.sum((a, h) => a.corrupt(h));
  }

  /** A count of every open thread's ring. */
  private sum(count: (a: PerfStacksAddon, handle: object) => number): number {
    if (this.closed) return 0;
    const a = addon();
    let n = 0;
    for (const t of this.threads.values()) n += count(a, t.handle);
    return n;
  }

  /** Samples without user registers (taken where the thread had no user context). */
  withoutRegs(): number {
    return this.withoutRegsCount;
  }

  /** Closes every event; what the rings still held is lost (drain() first). lost() and corrupt() still answer. */
  close(): void {
    if (this.closed) return;
    const a = loadAddon<PerfStacksAddon>('xwalk_perf_stacks');
    if (a) {
      for (const t of this.threads.values()) {
        this.lostClosed += a.lost(t.handle);
        this.corruptClosed += a.corrupt(t.handle);
        a.close(t.handle);
      }
    }
    this.threads.clear();
    this.closed = true;
  }
}

function drainAll(a: PerfStacksAddon, handle: object): (RawSample | RawSwitch)[] {
  const out: (RawSample | RawSwitch)[] = [];
  for (;;) {
    const batch = a.drain(handle, DRAIN_BATCH);
    out.push(...batch);
    if (batch.length < DRAIN_BATCH) return out;
  }
}
