/**
 * The address space of a live process as /proc/PID/maps describes it, and
 * where its executable was loaded.
 */
import fs from 'node:fs';
import { ET_EXEC, PT_LOAD, type ElfFile } from '../../core/elf.ts';
import { TargetGone, UserError, hex } from './memory.ts';

export interface Mapping {
  start: number;
  end: number;
  /** "r-xp" */
  perms: string;
  /** File offset in bytes. */
  offset: number;
  /** "fe:00" (major:minor, hex) */
  dev: string;
  inode: number;
  /** File path, "[heap]" and the like, or "" for anonymous memory; may end in " (deleted)". */
  path: string;
}

const DELETED = ' (deleted)';
const PAGE_SIZE = 4096;

export function withoutDeleted(path: string): string {
  return path.endsWith(DELETED) ? path.slice(0, -DELETED.length) : path;
}

/** The error of reading /proc/PID/FILE, for people: gone, a zombie or kernel thread, or not ours to read. */
export function procError(pid: number, file: string, err: NodeJS.ErrnoException): Error {
  const path = `/proc/${pid}/${file}`;
  if (err.code === 'ENOENT' || err.code === 'ESRCH') {
    if (fs.existsSync(`/proc/${pid}`)) {
      return new UserError(`${path}: not available (process ${pid} is a kernel thread or a zombie)`);
    }
    return new TargetGone(`process ${pid} exited (or does not exist)`);
  }
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return new UserError(`permission denied reading ${path}: ${deniedBecause(pid)}`);
  }
  return new UserError(`${path}: cannot read (${err.code ?? err.message})`);
}

const readText = (file: string): string | null => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};

const readLink = (file: string): string | null => {
  try {
    return fs.readlinkSync(file);
  } catch {
    return null;
  }
};

const CAP_SYS_PTRACE = 19n;

/**
 * Why this process may not read pid's memory, as far as /proc tells: what
 * follows 'permission denied'. Root is told the real reason (Yama, a
 * capability taken away, another user namespace, a security module), not
 * to run as root.
 */
export function deniedBecause(pid: number): string {
  const target = readText(`/proc/${pid}/status`);
  if (target === null) return `process ${pid} is gone (or cannot be seen from here)`;
  const uids = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(target)?.slice(1).map(Number) ?? [];
  const me = process.geteuid?.() ?? -1;
  const scope = readText('/proc/sys/kernel/yama/ptrace_scope')?.trim();
  if (scope === '3') return "kernel.yama.ptrace_scope is 3: no process may read another's memory, root neither, until the machine reboots";
  const capEff = /^CapEff:\s+([0-9a-f]+)/m.exec(readText('/proc/self/status') ?? '')?.[1];
  const canPtrace = capEff !== undefined && ((BigInt(`0x${capEff}`) >> CAP_SYS_PTRACE) & 1n) === 1n;
  if (canPtrace) {
    const ours = readLink('/proc/self/ns/user');
    const theirs = readLink(`/proc/${pid}/ns/user`);
    if (ours && theirs && ours !== theirs) return `pid ${pid} is in another user namespace (${theirs}; xsample is in ${ours}), where its CAP_SYS_PTRACE does not reach: run xsample in the target's namespace (its container)`;
    return 'xsample has CAP_SYS_PTRACE, so a security module (AppArmor, SELinux) or a seccomp filter denies it: see the kernel log';
  }
  if (me === 0) return `xsample runs as root without CAP_SYS_PTRACE (taken from its capabilities, as a container does): give it CAP_SYS_PTRACE, or run as the target's user (uid ${uids[0] ?? '?'})`;
  if (uids.length === 3 && uids.some((u) => u !== me)) {
    if (uids.every((u) => u === uids[0])) return `pid ${pid} belongs to uid ${uids[0]}, not to you (uid ${me}): run as the target's user or as root`;
    return `pid ${pid} changed its credentials (real, effective, saved uid ${uids.join(', ')}): run as root`;
  }
  if (scope === '2') return 'kernel.yama.ptrace_scope is 2: only a process with CAP_SYS_PTRACE may read another\'s memory: run as root';
  if (scope === '1') return "kernel.yama.ptrace_scope is 1: only a process's ancestors may read its memory: run as root (or set it to 0)";
  return `pid ${pid} is not dumpable (it changed its credentials, or called prctl(PR_SET_DUMPABLE, 0)): run as root`;
}

export function readProcMaps(pid: number): Mapping[] {
  try {
    return parseMaps(fs.readFileSync(`/proc/${pid}/maps`, 'utf8'));
  } catch (err) {
    throw procError(pid, 'maps', err as NodeJS.ErrnoException);
  }
}

// start-end perms offset dev inode [path]; the path may contain spaces.
const MAPS_LINE = /^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) (\S+) (\d+)(?: +(.*))?$/;

/** Parses /proc/PID/maps text; the result is sorted by start, as the kernel writes it. */
export function parseMaps(text: string): Mapping[] {
  const mappings: Mapping[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = MAPS_LINE.exec(line);
    if (!m) throw new UserError(`cannot parse /proc maps line: ${JSON.stringify(line)}`);
    mappings.push({
      start: parseInt(m[1], 16),
      end: parseInt(m[2], 16),
      perms: m[3],
      offset: parseInt(m[4], 16),
      dev: m[5],
      inode: Number(m[6]),
      path: m[7] ?? '',
    });
  }
  return mappings.sort((a, b) => a.start - b.start);
}

/** The executable's path; " (deleted)" is stripped when the file was replaced or removed. */
export function exePath(pid: number): string {
  try {
    return withoutDeleted(fs.readlinkSync(`/proc/${pid}/exe`));
  } catch (err) {
    throw procError(pid, 'exe', err as NodeJS.ErrnoException);
  }
}

/**
 * Runtime address minus link-time address for the executable `exe`
 * (a path as in the maps, " (deleted)" or not), whose contents are `elf`.
 * A mapping with the inode of elf's file is preferred; when the mapped file
 * was deleted and elf is another file, the symbols would be wrong, so that
 * is an error (open /proc/PID/exe instead, which still reaches the old file).
 */
export function loadBias(mappings: Mapping[], exe: string, elf: ElfFile): number {
  if (elf.type === ET_EXEC) return 0;
  const first = elf.segments.find((s) => s.type === PT_LOAD);
  if (!first) throw new UserError(`${elf.path}: no PT_LOAD segment`);
  const fileOffset = pageDown(first.offset);
  const wanted = withoutDeleted(exe);
  const candidates = mappings.filter((m) => withoutDeleted(m.path) === wanted && m.offset === fileOffset);
  if (candidates.length === 0) {
    throw new UserError(`${exe}: not mapped in the process at file offset ${hex(fileOffset)} (is it the target's executable?)`);
  }
  const inode = inodeOf(elf.path);
  const sameFile = candidates.filter((m) => m.inode === inode);
  // Inode numbers can differ legitimately (overlayfs), so a mismatch only
  // counts when the kernel says the mapped file is gone from its path.
  if (sameFile.length === 0 && candidates[0].path.endsWith(DELETED)) {
    throw new UserError(
      `${elf.path}: not the file the process has mapped (${candidates[0].path}): ` +
        `the binary was replaced on disk; read /proc/PID/exe instead`,
    );
  }
  const chosen = (sameFile.length > 0 ? sameFile : candidates)[0];
  return chosen.start - pageDown(first.vaddr);
}

function inodeOf(path: string): number | null {
  try {
    return fs.statSync(path).ino;
  } catch {
    return null;
  }
}

const pageDown = (n: number): number => n - (n % PAGE_SIZE);

/** Where the executable's first loaded page is in the process (its ELF header, in a usual build): mapped while it runs that program. */
export function imageStart(elf: ElfFile, bias: number): number | null {
  const first = elf.segments.find((s) => s.type === PT_LOAD);
  return first ? bias + pageDown(first.vaddr) : null;
}

/** The mapping containing addr, by binary search over mappings sorted by start. */
export function findMapping<M extends { start: number; end: number }>(mappings: M[], addr: number): M | null {
  let lo = 0;
  let hi = mappings.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const m = mappings[mid];
    if (addr < m.start) hi = mid - 1;
    else if (addr >= m.end) lo = mid + 1;
    else return m;
  }
  return null;
}
