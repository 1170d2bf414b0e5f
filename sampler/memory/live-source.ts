/**
 * Memory sources for a live process. Neither stops the target: both need
 * only ptrace *access* (same user or CAP_SYS_PTRACE), never an attach.
 */
import fs from 'node:fs';
import os from 'node:os';
import { loadAddon } from './native-addon.ts';
import { type MemorySource, TargetGone, UserError } from './memory.ts';
import { deniedBecause } from './proc-maps.ts';

interface PvrAddon {
  readv(pid: number, addrs: Float64Array, lens: Uint32Array, out: Buffer, calls?: Float64Array): number;
}

const { ESRCH, EPERM, EFAULT, ENOSYS } = os.constants.errno;

/** The native addon, or null when it was not built (then /proc/PID/mem serves). */
export const loadPvrAddon = (): PvrAddon | null => loadAddon<PvrAddon>('xwalk_pvr');

function processGone(pid: number): TargetGone {
  return new TargetGone(`process ${pid} exited (or does not exist)`);
}

function permissionDenied(pid: number, how: string): UserError {
  return new UserError(`permission denied reading the memory of pid ${pid} (${how}): ${deniedBecause(pid)}`);
}

/** process_vm_readv through the native addon; ranges are batched into one syscall. */
export class PvrSource implements MemorySource {
  readonly description: string;
  private readonly addrs = new Float64Array(1);
  private readonly lens = new Uint32Array(1);
  /** The addon adds the process_vm_readv calls it makes (one per IOV_MAX ranges). */
  private readonly calls = new Float64Array(1);

  constructor(
    readonly pid: number,
    private readonly pvr: PvrAddon,
  ) {
    this.description = `pid ${pid} (process_vm_readv)`;
  }

  readInto(addr: number, out: Uint8Array): number {
    this.addrs[0] = addr;
    this.lens[0] = out.length;
    return this.readMany(this.addrs, this.lens, out);
  }

  readMany(addrs: Float64Array, lens: Uint32Array, out: Uint8Array): number {
    const buf = Buffer.from(out.buffer, out.byteOffset, out.length);
    const got = this.pvr.readv(this.pid, addrs, lens, buf, this.calls);
    if (got >= 0) return got;
    if (-got === EFAULT) return 0;
    if (-got === ESRCH) throw processGone(this.pid);
    if (-got === EPERM) throw permissionDenied(this.pid, 'process_vm_readv');
    throw new UserError(`process_vm_readv on pid ${this.pid} failed: errno ${-got}`);
  }

  get systemCalls(): number {
    return this.calls[0];
  }

  close(): void {}
}

/** /proc/PID/mem with pread: the fallback where the addon or the syscall is missing. */
export class ProcMemSource implements MemorySource {
  readonly description: string;
  private fd: number;

  constructor(readonly pid: number) {
    this.description = `pid ${pid} (/proc/${pid}/mem)`;
    try {
      this.fd = fs.openSync(`/proc/${pid}/mem`, 'r');
    } catch (err) {
      throw procError(pid, err);
    }
  }

  readInto(addr: number, out: Uint8Array): number {
    let done = 0;
    while (done < out.length) {
      let got: number;
      try {
        got = fs.readSync(this.fd, out, done, out.length - done, addr + done);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'EIO' || code === 'EFAULT') return done;
        if (!fs.existsSync(`/proc/${this.pid}`)) throw processGone(this.pid);
        throw procError(this.pid, err);
      }
      if (got === 0) {
        // A dead process's mem file reads as empty.
        if (!fs.existsSync(`/proc/${this.pid}`)) throw processGone(this.pid);
        return done;
      }
      done += got;
    }
    return done;
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

function procError(pid: number, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ESRCH') return processGone(pid);
  if (code === 'EACCES' || code === 'EPERM') return permissionDenied(pid, `/proc/${pid}/mem`);
  return new UserError(`cannot read /proc/${pid}/mem: ${(err as Error).message}`);
}

/**
 * The best live source for pid: process_vm_readv when the addon is built
 * and the kernel allows it, else /proc/PID/mem. Probes with a one-byte read
 * at `probeAddr` (a mapped address) so permission errors surface here.
 */
export function openLiveSource(pid: number, probeAddr: number, prefer?: 'pvr' | 'procmem'): MemorySource {
  const pvr = prefer === 'procmem' ? null : loadPvrAddon();
  if (pvr) {
    const probe = pvr.readv(pid, Float64Array.of(probeAddr), Uint32Array.of(1), Buffer.alloc(1));
    if (probe === -ESRCH) throw processGone(pid);
    if (probe !== -ENOSYS && probe !== -EPERM) return new PvrSource(pid, pvr);
  }
  return new ProcMemSource(pid);
}
