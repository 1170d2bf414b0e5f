/**
 * A live thread's user registers, from the kernel's perf events: a task-clock
 * event samples them every millisecond of the thread's CPU time into a ring,
 * and a read takes the newest sample, if it is fresh. perf_event_open needs
 * only the ptrace access check, as process_vm_readv does: the thread is
 * never stopped. Opened at the first read, so only walks that ask for a
 * register (register() in a schema) pay for it. Samples are of user mode
 * only (a sample in the kernel holds no interpreter state).
 */
import os from 'node:os';
import { type Int, norm } from '../../core/exact.ts';
import { loadAddon } from './native-addon.ts';

interface PerfAddon {
  open(tid: number, periodNs: number): object | number;
  latest(handle: object, maxAgeNs: number, waitMs: number): BigUint64Array | null | number;
  close(handle: object): void;
}

/** The order sampler/native/perf_regs.c gives them in (enum perf_event_x86_regs). */
export const PERF_REGS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'rip', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'];
/** A sample each millisecond the thread runs. */
const PERIOD_NS = 1_000_000;
/** Registers older than this describe another moment than the memory read with them: they are not used. */
const MAX_AGE_NS = 2_000_000;
/** How long a read waits for a fresh sample; the first waits longer, for the event to start. */
const WAIT_MS = 3;
const FIRST_WAIT_MS = 20;

/** errno's name by its number (EACCES for 13). */
const ERRNO_NAME = new Map(Object.entries(os.constants.errno).map(([name, n]) => [n, name]));

/** Registers as a sample has them, or null when none is known; `unavailable` says why none ever will be. */
export interface RegisterSource {
  read(): Record<string, Int> | null;
  readonly unavailable: string | null;
  close(): void;
}

/** A core's registers: those of the thread that dumped it, fixed. */
export function fixedRegisters(regs: Record<string, Int> | null): RegisterSource {
  return { read: () => regs, unavailable: regs ? null : 'the core holds no thread registers (NT_PRSTATUS)', close: () => {} };
}

export class LiveRegisters implements RegisterSource {
  unavailable: string | null = null;
  private handle: object | null = null;

  constructor(private readonly tid: number) {}

  read(): Record<string, Int> | null {
    if (this.unavailable !== null) return null;
    const first = this.handle === null;
    const handle = (this.handle ??= this.open());
    if (handle === null) return null;
    const regs = loadAddon<PerfAddon>('xwalk_perf')!.latest(handle, MAX_AGE_NS, first ? FIRST_WAIT_MS : WAIT_MS);
    if (regs === null || typeof regs === 'number') return null;
    return Object.fromEntries(PERF_REGS.map((name, i) => [name, norm(regs[i])]));
  }

  close(): void {
    if (this.handle) loadAddon<PerfAddon>('xwalk_perf')!.close(this.handle);
    this.handle = null;
  }

  private open(): object | null {
    const addon = loadAddon<PerfAddon>('xwalk_perf');
    if (!addon) {
      this.unavailable = 'the native addon xwalk_perf is not built (make native)';
      return null;
    }
    const h = addon.open(this.tid, PERIOD_NS);
    if (typeof h === 'number') {
      this.unavailable = `perf_event_open on thread ${this.tid} failed (${ERRNO_NAME.get(-h) ?? `errno ${-h}`}): run as root, or with CAP_PERFMON, or lower /proc/sys/kernel/perf_event_paranoid to 2`;
      return null;
    }
    return h;
  }
}
