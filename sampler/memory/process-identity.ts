/**
 * Whether a live process is still the one opened: not exited, its pid not
 * taken by another, no exec. Its /proc/PID/stat is held open: a read of it
 * fails (ESRCH) once that process is gone, even when another has its pid
 * since, so a check costs one pread and one stat of its executable (what an
 * exec changes), never a file opened: both in one call of the native addon
 * where it is built (through node's fs they cost several times more).
 *
 * Quicker, and surer: its /proc/PID/mem is held open too, and holds the
 * address space the process had then. Once watchMemory() names a byte
 * that stays mapped (its executable's first page), a check is one pread of
 * that byte: it reads while that address space is the process's, and reads
 * nothing once the process exited or called exec, even exec of the same
 * file (which the stat of its executable cannot see). Then the checks
 * above say which it was.
 */
import fs from 'node:fs';
import os from 'node:os';
import { TargetGone } from './memory.ts';
import { loadAddon } from './native-addon.ts';
import { procError } from './proc-maps.ts';

/** /proc/PID/stat is one line of 52 fields; the command name in it is at most 64 bytes. */
const STAT_BYTES = 1024;

export interface IdentityAddon {
  identity(fd: number, buf: Buffer, exe: string, out: Float64Array): number;
  alive?(fd: number, addr: number): number;
}

export class ProcessIdentity {
  private readonly fd: number;
  /** /proc/PID/mem, opened before the rest is read (-1 where it cannot be opened); the byte at memAddr is read from it. */
  private readonly memFd: number;
  private memAddr: number | null = null;
  private readonly buf = Buffer.alloc(STAT_BYTES);
  private readonly exePath: string;
  /** What the last check read of the executable: [st_dev, st_ino], or [-errno, 0]. */
  private readonly exeId = new Float64Array(2);
  private readonly start: number;
  private readonly dev: number;
  private readonly ino: number;

  /** addon: the native one where it is built; null reads through node's fs. */
  constructor(
    readonly pid: number,
    private readonly addon = loadAddon<IdentityAddon>('xwalk_pvr'),
  ) {
    this.exePath = `/proc/${pid}/exe`;
    try {
      this.fd = fs.openSync(`/proc/${pid}/stat`, 'r');
    } catch (err) {
      throw procError(pid, 'stat', err as NodeJS.ErrnoException);
    }
    // First: an exec after this is seen by every check (the memory held is then not the process's).
    this.memFd = openMem(pid);
    try {
      this.start = this.read();
      if (this.exeId[0] < 0) this.exeError();
      [this.dev, this.ino] = this.exeId;
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /**
   * From now on a check reads the byte at addr, which must stay mapped while the process runs the program it ran
   * when opened (its executable's first page): when it cannot be read now, checks go on without it.
   */
  watchMemory(addr: number): void {
    this.memAddr = addr;
    if (this.readMem() !== 1) this.memAddr = null;
  }

  /** Throws TargetGone unless the process is the one opened. */
  check(): void {
    const mem = this.memAddr === null ? -1 : this.readMem();
    if (mem === 1) return;
    // The byte became unreadable (unmapped): checks go on through the stat alone.
    if (mem < 0) this.memAddr = null;
    this.checkStat();
    if (mem === 0) throw new TargetGone(`process ${this.pid} runs a new program now${this.exeTarget()}: it called exec`);
  }

  /** The check through /proc/PID/stat and the executable's stat. */
  private checkStat(): void {
    if (this.read() !== this.start) throw new TargetGone(`process ${this.pid} exited, and its pid now belongs to another process`);
    // A link gone now means the process is exiting (the link goes first).
    if (this.exeId[0] < 0) throw new TargetGone(`process ${this.pid} exited`);
    if (this.exeId[0] !== this.dev || this.exeId[1] !== this.ino) throw new TargetGone(`process ${this.pid} runs another program now${this.exeTarget()}: it called exec`);
  }

  /** Whether the process is the one opened. */
  same(): boolean {
    try {
      this.check();
      return true;
    } catch (err) {
      if (err instanceof TargetGone) return false;
      throw err;
    }
  }

  close(): void {
    fs.closeSync(this.fd);
    if (this.memFd >= 0) fs.closeSync(this.memFd);
  }

  /** The byte at memAddr read from the /proc/PID/mem held: 1, 0 once that memory is no longer the process's, or -1. */
  private readMem(): number {
    if (this.memFd < 0 || this.memAddr === null) return -1;
    if (this.addon?.alive) return Math.max(-1, this.addon.alive(this.memFd, this.memAddr));
    try {
      return fs.readSync(this.memFd, this.buf, 0, 1, this.memAddr);
    } catch {
      return -1;
    }
  }

  /** starttime (field 22 of /proc/PID/stat), read through the held file, and the executable's identity into exeId; TargetGone once the process is a zombie or gone. */
  private read(): number {
    let n: number;
    try {
      n = this.addon ? this.addon.identity(this.fd, this.buf, this.exePath, this.exeId) : this.readByFs();
    } catch {
      n = -1;
    }
    if (n < 0) throw new TargetGone(`process ${this.pid} exited${this.pidTaken() ? ', and its pid now belongs to another process' : ''}`);
    const start = startOf(this.buf, n);
    if (start === null) throw new TargetGone(`process ${this.pid} exited`);
    return start;
  }

  /** What the addon's identity() does, through node's fs. */
  private readByFs(): number {
    const n = fs.readSync(this.fd, this.buf, 0, STAT_BYTES, 0);
    try {
      const exe = fs.statSync(this.exePath);
      this.exeId[0] = exe.dev;
      this.exeId[1] = exe.ino;
    } catch (err) {
      this.exeId[0] = -(os.constants.errno[(err as NodeJS.ErrnoException).code as keyof typeof os.constants.errno] ?? 1);
      this.exeId[1] = 0;
    }
    return n;
  }

  /** Whether a process runs under the pid now (the one opened having gone: another has it). */
  private pidTaken(): boolean {
    try {
      const stat = fs.readFileSync(`/proc/${this.pid}/stat`);
      return startOf(stat, stat.length) !== null;
    } catch {
      return false;
    }
  }

  /** Why the executable could not be read at open (asked again, for node's error). */
  private exeError(): never {
    try {
      fs.statSync(this.exePath);
    } catch (err) {
      throw procError(this.pid, 'exe', err as NodeJS.ErrnoException);
    }
    throw procError(this.pid, 'exe', Object.assign(new Error('unreadable'), { code: 'EIO' }));
  }

  private exeTarget(): string {
    try {
      return ` (${fs.readlinkSync(this.exePath)})`;
    } catch {
      return '';
    }
  }
}

const CLOSE_PAREN = 0x29;
const SPACE = 0x20;
/** After the command name: the state (field 3), then up to starttime (field 22). */
const FIELDS_TO_START = 19;

/** starttime (field 22) of a /proc/PID/stat line of n bytes; null for a zombie, a process being reaped, or a line cut short. */
function startOf(stat: Buffer, n: number): number | null {
  // The command name may hold spaces and parentheses: the fields start after its last ')'.
  const paren = stat.lastIndexOf(CLOSE_PAREN, n - 1);
  let p = paren + 2;
  if (paren < 0 || p >= n || stat[p] === 0x5a /* Z */ || stat[p] === 0x58 /* X */) return null;
  for (let spaces = 0; spaces < FIELDS_TO_START; p++) {
    if (p >= n) return null;
    if (stat[p] === SPACE) spaces++;
  }
  let start = 0;
  let digits = 0;
  for (; p < n && stat[p] >= 0x30 && stat[p] <= 0x39; p++, digits++) start = start * 10 + (stat[p] - 0x30);
  return digits > 0 ? start : null;
}

/** /proc/PID/mem opened for reading, or -1 where it cannot be (checks then go through the stat alone). */
function openMem(pid: number): number {
  try {
    return fs.openSync(`/proc/${pid}/mem`, 'r');
  } catch {
    return -1;
  }
}
