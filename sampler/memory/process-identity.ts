/**
 * Whether a live process is still the one that was opened: not exited, its
 * pid not taken by another, no exec. Its /proc/PID/stat is held open: a
 * read of it fails (ESRCH) once that process is gone, even when another
 * has its pid since, so a check costs one pread and one statx of its
 * executable (what an exec changes), never a file opened.
 */
import fs from 'node:fs';
import { TargetGone } from './memory.ts';
import { procError } from './proc-maps.ts';

/** /proc/PID/stat is one line of 52 fields; the command name in it is at most 64 bytes. */
const STAT_BYTES = 1024;

export class ProcessIdentity {
  private readonly fd: number;
  private readonly buf = Buffer.alloc(STAT_BYTES);
  private readonly start: string;
  private readonly exe: string;

  constructor(readonly pid: number) {
    try {
      this.fd = fs.openSync(`/proc/${pid}/stat`, 'r');
    } catch (err) {
      throw procError(pid, 'stat', err as NodeJS.ErrnoException);
    }
    try {
      this.start = this.startTime();
      this.exe = this.exeId(false);
    } catch (err) {
      fs.closeSync(this.fd);
      throw err;
    }
  }

  /** Throws TargetGone unless the process is the one opened. */
  check(): void {
    if (this.startTime() !== this.start) throw new TargetGone(`process ${this.pid} exited, and its pid now belongs to another process`);
    if (this.exeId(true) !== this.exe) throw new TargetGone(`process ${this.pid} runs another program now${this.exePath()}: it called exec`);
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
  }

  /** starttime (field 22 of /proc/PID/stat), read through the held file; TargetGone once the process is a zombie or gone. */
  private startTime(): string {
    let n: number;
    try {
      n = fs.readSync(this.fd, this.buf, 0, STAT_BYTES, 0);
    } catch {
      throw new TargetGone(`process ${this.pid} exited${this.pidTaken() ? ', and its pid now belongs to another process' : ''}`);
    }
    const start = startOf(this.buf.toString('latin1', 0, n));
    if (start === null) throw new TargetGone(`process ${this.pid} exited`);
    return start;
  }

  /** Whether a process runs under the pid now (the one opened having gone: another has it). */
  private pidTaken(): boolean {
    try {
      return startOf(fs.readFileSync(`/proc/${this.pid}/stat`, 'latin1')) !== null;
    } catch {
      return false;
    }
  }

  /** The executable's device and inode. seen: the process was read before, so a link gone now means it is exiting (the link goes first). */
  private exeId(seen: boolean): string {
    try {
      const exe = fs.statSync(`/proc/${this.pid}/exe`);
      return `${exe.dev}:${exe.ino}`;
    } catch (err) {
      if (seen) throw new TargetGone(`process ${this.pid} exited`);
      try {
        this.startTime();
      } catch {
        throw new TargetGone(`process ${this.pid} exited`);
      }
      throw procError(this.pid, 'exe', err as NodeJS.ErrnoException);
    }
  }

  private exePath(): string {
    try {
      return ` (${fs.readlinkSync(`/proc/${this.pid}/exe`)})`;
    } catch {
      return '';
    }
  }
}

/** starttime (field 22) of a /proc/PID/stat line; null for a zombie or a process being reaped. */
function startOf(stat: string): string | null {
  // The command name may hold spaces and parentheses: the fields start after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ', 20);
  return fields[0] === 'Z' || fields[0] === 'X' || fields.length < 20 ? null : fields[19];
}
