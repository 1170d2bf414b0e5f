/**
 * Loads a BpfProgram (the eBPF printer's output) and runs it at the instant
 * of an event of one target process: a software CPU clock on each of its
 * threads (a perf_event program) or a uprobe on a function (a kprobe-type
 * program). Maps are created first and their fds patched into the program;
 * ring buffers are drained, maps read. Everything is a file descriptor:
 * detach() closes them all, and when xsample exits, is killed or crashes
 * the kernel closes them and nothing stays attached (no tracefs, nothing
 * global).
 */
import fs from 'node:fs';
import { TargetGone, UserError } from '../memory/memory.ts';
import { type BpfAddon, type BpfError, type BpfProgInfo, VerifierRefused, bpfAddon } from './addon.ts';
import type { BpfMapSpec, BpfProgram } from './program.ts';
import { checkMapped, uprobeTarget } from './uprobe-target.ts';

const LD_IMM64 = 0x18;
const BPF_PSEUDO_MAP_FD = 1;
const LICENSE = 'GPL'; // bpf_probe_read_user and friends are GPL-only helpers

export interface BpfCosts {
  /** Runs since the program was loaded (counted while stats were on). */
  runCount: number;
  runTimeNs: number;
  /** Mean run time of one run, in ns; null before the first. */
  nsPerRun: number | null;
  jitedLen: number;
  xlatedLen: number;
  verifiedInsns: number;
}

export interface AttachOptions {
  /** Count runs and their time (BPF_ENABLE_STATS, held until detach): costs() needs it. It costs a clock read per run. */
  stats?: boolean;
  /** The program's name in the kernel (bpftool prog list), at most 15 characters. */
  name?: string;
}

interface OpenMap {
  spec: BpfMapSpec;
  fd: number;
  /** A ring buffer's mapping. */
  ring: object | null;
}

/** A program loaded and attached to one process; detach() undoes all. */
export class AttachedBpf {
  readonly maps = new Map<string, OpenMap>();
  /** The perf events the program is attached to (one per thread for a clock, one for a uprobe). */
  readonly events: number[] = [];
  progFd = -1;
  private statsFd = -1;
  private closed = false;

  private constructor(readonly addon: BpfAddon) {}

  /** Creates the maps, patches their fds into the program and loads it; undone if anything fails. */
  static load(prog: BpfProgram, type: 'perf_event' | 'kprobe', opts: AttachOptions): AttachedBpf {
    const a = new AttachedBpf(bpfAddon());
    try {
      if (opts.stats) a.statsFd = a.addon.enableStats();
      for (const spec of prog.maps) {
        if (a.maps.has(spec.name)) throw new Error(`internal: two maps named ${spec.name}`);
        const fd = a.addon.mapCreate(spec.type, spec.keySize, spec.valueSize, spec.maxEntries, spec.name);
        a.maps.set(spec.name, { spec, fd, ring: null });
        if (spec.type === 'ringbuf') a.maps.get(spec.name)!.ring = a.addon.ringbufOpen(fd, spec.maxEntries);
      }
      const insns = Buffer.from(prog.insns);
      for (const r of prog.relocs) {
        const map = a.maps.get(r.map);
        if (!map) throw new Error(`internal: a relocation names the map ${r.map}, which the program does not declare`);
        const at = r.insn * 8;
        if (!Number.isInteger(r.insn) || r.insn < 0 || at + 16 > insns.length || insns[at] !== LD_IMM64) {
          throw new Error(`internal: relocation of ${r.map} at instruction ${r.insn}, which is not a 16-byte load (code 0x18)`);
        }
        insns[at + 1] = (BPF_PSEUDO_MAP_FD << 4) | (insns[at + 1] & 0x0f);
        insns.writeInt32LE(map.fd, at + 4);
        insns.writeInt32LE(0, at + 12);
      }
      try {
        a.progFd = a.addon.progLoad(type, insns, LICENSE, opts.name ?? 'xwalk');
      } catch (err) {
        const e = err as BpfError;
        if (e.log !== undefined) throw new VerifierRefused(e.message, e.log);
        throw err;
      }
      return a;
    } catch (err) {
      a.detach();
      throw userFacing(err);
    }
  }

  /** Closes every event, the program, the maps and the stats fd; the kernel frees the program when the last goes. */
  detach(): void {
    if (this.closed) return;
    this.closed = true;
    const close = (fd: number) => {
      try {
        this.addon.close(fd);
      } catch {
        // already closed: nothing else to undo
      }
    };
    for (const fd of this.events.splice(0)) close(fd);
    if (this.progFd >= 0) close(this.progFd);
    for (const m of this.maps.values()) {
      if (m.ring) this.addon.ringbufClose(m.ring);
      close(m.fd);
    }
    if (this.statsFd >= 0) close(this.statsFd);
    this.progFd = this.statsFd = -1;
  }

  /** The records the program wrote to ring buffer `map` (the only one when not named), oldest first, at most max. */
  drain(map?: string, max = 1 << 20): Buffer[] {
    return this.addon.ringbufDrain(this.ring(map), max);
  }

  /** Waits up to ms for a record in ring buffer `map`; true when one is there. */
  wait(ms: number, map?: string): boolean {
    return this.addon.ringbufWait(this.ring(map), ms);
  }

  /** The value at key, or null when the map has none; per-CPU maps give every CPU's value (see perCpu). */
  lookup(map: string, key: Buffer): Buffer | null {
    const m = this.map(map);
    const value = Buffer.alloc(this.valueBytes(m.spec));
    return this.addon.mapLookup(m.fd, key, value) ? value : null;
  }

  /** A per-CPU map's value at key, one Buffer of valueSize per possible CPU; null when there is none. */
  perCpu(map: string, key: Buffer): Buffer[] | null {
    const m = this.map(map);
    const all = this.lookup(map, key);
    if (!all) return null;
    const stride = (m.spec.valueSize + 7) & ~7;
    return Array.from({ length: all.length / stride }, (_, i) => all.subarray(i * stride, i * stride + m.spec.valueSize));
  }

  update(map: string, key: Buffer, value: Buffer): void {
    this.addon.mapUpdate(this.map(map).fd, key, value);
  }

  /** Every key and value of a hash map (as one pass of BPF_MAP_GET_NEXT_KEY sees them while the program runs on). */
  entries(map: string): [Buffer, Buffer][] {
    const m = this.map(map);
    const out: [Buffer, Buffer][] = [];
    let key: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(m.spec.keySize);
      if (!this.addon.mapNextKey(m.fd, key, next)) break;
      const value = this.lookup(map, next);
      if (value) out.push([next, value]); // deleted between the two calls: skipped
      key = next;
    }
    return out;
  }

  /** Run count and time of the program since it was loaded; needs stats: true. */
  costs(): BpfCosts {
    if (this.statsFd < 0) throw new Error('internal: costs() of a program attached without stats: true');
    const i: BpfProgInfo = this.addon.progInfo(this.progFd);
    return {
      runCount: i.runCount,
      runTimeNs: i.runTimeNs,
      nsPerRun: i.runCount > 0 ? i.runTimeNs / i.runCount : null,
      jitedLen: i.jitedLen,
      xlatedLen: i.xlatedLen,
      verifiedInsns: i.verifiedInsns,
    };
  }

  /** The program's id in the kernel (bpftool prog show id N). */
  id(): number {
    return this.addon.progInfo(this.progFd).id;
  }

  private map(name: string): OpenMap {
    const m = this.maps.get(name);
    if (!m) throw new Error(`internal: the program has no map ${name}`);
    return m;
  }

  private ring(name?: string): object {
    const rings = [...this.maps.values()].filter((m) => m.ring && (name === undefined || m.spec.name === name));
    if (rings.length !== 1) throw new Error(`internal: ${name === undefined ? 'the program has not exactly one ring buffer' : `the program has no ring buffer ${name}`}`);
    return rings[0].ring!;
  }

  private valueBytes(spec: BpfMapSpec): number {
    return spec.type === 'percpu_array' || spec.type === 'percpu_hash' ? ((spec.valueSize + 7) & ~7) * this.addon.possibleCpus() : spec.valueSize;
  }
}

/** The thread ids of process pid now. */
function threads(pid: number): number[] {
  try {
    return fs
      .readdirSync(`/proc/${pid}/task`)
      .map(Number)
      .filter((t) => t > 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new TargetGone(`process ${pid} is gone`);
    throw err;
  }
}

/**
 * prog as a perf_event program on a software CPU clock of hz on every thread of pid: it runs each 1/hz
 * s of a thread's CPU time, in that thread's context, while the thread is interrupted. The threads are
 * those of /proc/PID/task now: threads started later are not sampled (call again to include them).
 */
export function attachClock(prog: BpfProgram, pid: number, hz: number, opts: AttachOptions = {}): AttachedBpf {
  const a = AttachedBpf.load(prog, 'perf_event', opts);
  try {
    for (const tid of threads(pid)) {
      let fd: number;
      try {
        fd = a.addon.perfClock(tid, hz);
      } catch (err) {
        if ((err as BpfError).errno === ESRCH) continue; // the thread ended since it was listed
        throw err;
      }
      a.events.push(fd);
      a.addon.attach(fd, a.progFd);
    }
    if (a.events.length === 0) throw new TargetGone(`process ${pid} is gone`);
    return a;
  } catch (err) {
    a.detach();
    throw userFacing(err, pid);
  }
}

/**
 * prog as a uprobe program (kprobe type) on function fn (a symbol of binaryPath, or a file offset in it)
 * in process pid only: the kernel puts the breakpoint into pid's address space alone, so other
 * processes running the same binary are never trapped.
 */
export function attachUprobe(prog: BpfProgram, pid: number, binaryPath: string, fn: string | number, opts: AttachOptions = {}): AttachedBpf {
  const target = uprobeTarget(binaryPath, fn);
  checkMapped(pid, binaryPath);
  const a = AttachedBpf.load(prog, 'kprobe', opts);
  try {
    const fd = a.addon.perfUprobe(target.path, target.fileOffset, pid);
    a.events.push(fd);
    a.addon.attach(fd, a.progFd);
    return a;
  } catch (err) {
    a.detach();
    throw userFacing(err, pid);
  }
}

const ESRCH = 3;

/** An error of the addon (it has an errno) as the one line the CLI prints; a vanished pid as TargetGone; others as they are. */
function userFacing(err: unknown, pid?: number): unknown {
  const e = err as BpfError;
  if (!(err instanceof Error) || err instanceof UserError || err instanceof TargetGone || e.errno === undefined) return err;
  if (e.errno === ESRCH && pid !== undefined) return new TargetGone(`process ${pid} is gone`);
  return new UserError(e.message);
}
