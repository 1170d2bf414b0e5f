/**
 * The address space of a live process as /proc/PID/maps describes it, and
 * where its executable was loaded.
 */
import fs from 'node:fs';
import { ET_EXEC, PT_LOAD, type ElfFile } from '../core/elf.ts';
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
    return new UserError(`permission denied reading ${path} (run as the target's user or root)`);
  }
  return new UserError(`${path}: cannot read (${err.code ?? err.message})`);
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
