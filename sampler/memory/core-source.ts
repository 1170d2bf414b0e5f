/**
 * A MemorySource over an ELF core file (from the kernel or gcore). Memory
 * comes from the core's PT_LOAD segments; what the dumper left out
 * (typically unmodified file-backed pages such as .text and .rodata) is
 * read from the mapped files named in the NT_FILE note.
 *
 * A core may be cut short or crafted. A byte it does not hold is a fault
 * that says why (cut short, left out), never a zero. A file its NT_FILE
 * note names is read only when it is a regular file that whoever owns the
 * core could read, and is the very ELF object the core says was mapped
 * there (the build-id in the core's copy of its first page): a core cannot
 * make xsample read any other file.
 */
import fs from 'node:fs';
import {
  ET_CORE, ET_EXEC, MAX_NOTES, NT_GNU_BUILD_ID, PF_R, PF_W, PF_X, PT_LOAD, PT_NOTE,
  ElfFile, parseNotes, u16, u32, u64, cString, type ElfNote, type ElfSegment,
} from '../../core/elf.ts';
import { UserError, type MemorySource } from './memory.ts';
import { type Int, norm } from '../../core/exact.ts';
import type { Mapping } from './proc-maps.ts';

const NT_PRSTATUS = 1;
const NT_PRPSINFO = 3;
const NT_AUXV = 6;
const NT_FILE = 0x46494c45;
const AT_ENTRY = 9;
/** Offsets in the x86_64 struct elf_prpsinfo and struct elf_prstatus. */
const PRPSINFO_PID = 24;
const PRSTATUS_PID = 32;
/** pr_reg in struct elf_prstatus: a struct user_regs_struct, 8 bytes a register, in this order. */
const PRSTATUS_REGS = 112;
const USER_REGS = ['r15', 'r14', 'r13', 'r12', 'rbp', 'rbx', 'r11', 'r10', 'r9', 'r8', 'rax', 'rcx', 'rdx', 'rsi', 'rdi', 'orig_rax', 'rip', 'cs', 'eflags', 'rsp'];
const PAGE_SIZE = 4096;
const DELETED = ' (deleted)';

export interface FileMapping {
  start: number;
  end: number;
  /** Bytes into the file. */
  fileOffset: number;
  path: string;
}

export class CoreSource implements MemorySource {
  readonly path: string;
  readonly pid: number | null;
  /** The general registers of the first thread (the one that dumped the core), or null when the core has none. */
  readonly registers: Record<string, Int> | null;
  readonly fileMappings: FileMapping[];
  readonly exeBuildId: string | null;
  readonly description: string;
  /** The NT_FILE path of the main executable, or null when it cannot be told. */
  readonly exeMappedPath: string | null;
  private readonly core: ElfFile;
  /** Readable PT_LOAD segments, sorted by vaddr. */
  private readonly loads: ElfSegment[];
  private readonly entry: number | null;
  private readonly exeOverride: string | null;
  /** Mapped files by NT_FILE path: opened and checked, or the reason they are not read. */
  private readonly files = new Map<string, ElfFile | string>();
  private readonly buildIds = new Map<string, string | null>();

  static open(corePath: string, exePath?: string): CoreSource {
    const core = ElfFile.open(corePath);
    try {
      if (core.type !== ET_CORE) throw new UserError(`${corePath}: not an ELF core file (e_type ${core.type})`);
      const source = truncatedSaysSo(corePath, truncation(core), () => new CoreSource(core, exePath ?? null));
      if (exePath !== undefined) source.checkExecutable(exePath);
      return source;
    } catch (err) {
      core.close();
      throw err;
    }
  }

  /** 'core is truncated: N bytes, the segments need M' when the file ends before its segments do, else null. */
  get truncated(): string | null {
    return truncation(this.core);
  }

  private constructor(core: ElfFile, exeOverride: string | null) {
    this.core = core;
    this.path = core.path;
    this.exeOverride = exeOverride;
    const notes = core.notes().filter((n) => n.name === 'CORE');
    this.pid = pidFromNotes(notes);
    this.registers = registersFromNotes(notes);
    this.fileMappings = fileMappingsFromNotes(core.path, notes);
    this.entry = auxvEntry(notes);
    this.loads = core.segments
      .filter((s) => s.type === PT_LOAD && (s.flags & PF_R) !== 0 && s.memsz > 0)
      .sort((a, b) => a.vaddr - b.vaddr);
    this.exeMappedPath = this.findExeMappedPath();
    this.exeBuildId = this.exeMappedPath === null ? null : this.mappedBuildId(this.exeMappedPath);
    this.description = this.pid === null ? `core ${core.path}` : `core ${core.path} (pid ${this.pid})`;
  }

  /** The mapping holding the entry point names the executable; else the first NT_FILE entry. */
  private findExeMappedPath(): string | null {
    const byEntry = this.entry === null ? null : this.fileMappingAt(this.entry);
    if (byEntry) return byEntry.path;
    return this.fileMappings.length > 0 ? this.fileMappings[0].path : null;
  }

  /** The build-id of the object mapped from path, from the core's own copy of its first page (null: not in the core). */
  private mappedBuildId(path: string): string | null {
    if (!this.buildIds.has(path)) {
      const header = this.fileMappings.find((m) => m.path === path && m.fileOffset === 0);
      this.buildIds.set(path, header ? buildIdFromImage((a, out) => this.readDumped(a, out), header.start) : null);
    }
    return this.buildIds.get(path)!;
  }

  /**
   * The ELF file the core says was mapped from path, or a UserError saying
   * why it is not read: gone, not a regular file, not readable by the
   * core's owner, or not the object the core recorded (build-id).
   */
  openMapped(path: string): ElfFile {
    if (path.endsWith(DELETED) || !path.startsWith('/')) throw new UserError(`${path} is gone (deleted since it was mapped)`);
    let st: fs.Stats;
    try {
      st = fs.statSync(path);
    } catch {
      throw new UserError(`${path} is gone`);
    }
    if (!this.ownerMayRead(st)) throw new UserError(`${path} is not readable by the owner of ${this.path}, so it is not read for them`);
    const want = this.mappedBuildId(path);
    if (want === null) throw new UserError(`the core does not hold the ELF header of ${path}, so it cannot tell which file was mapped there`);
    const elf = ElfFile.open(path);
    const got = elf.buildId();
    if (got !== want) {
      elf.close();
      throw new UserError(`${path} is not the file that was mapped (build-id ${got ?? 'none'}; the core says ${want})`);
    }
    return elf;
  }

  /** Whether the owner of the core could read a file: root reading someone's core reads only what they could. */
  private ownerMayRead(st: fs.Stats): boolean {
    const core = this.core.stat;
    if (core.uid === process.geteuid?.()) return true;
    return (st.mode & 0o004) !== 0 || (st.uid === core.uid && (st.mode & 0o400) !== 0) || (st.gid === core.gid && (st.mode & 0o040) !== 0);
  }

  private checkExecutable(exePath: string): void {
    const exe = ElfFile.open(exePath);
    try {
      const exeId = exe.buildId();
      if (exeId && this.exeBuildId && exeId !== this.exeBuildId) {
        throw new UserError(
          `${exePath}: build-id ${exeId} differs from build-id ${this.exeBuildId} of the executable in ${this.path}`,
        );
      }
    } finally {
      exe.close();
    }
  }

  /** Readable address ranges: every readable PT_LOAD, plus file-backed ranges the core left out whose file can be read. */
  mappings(): Mapping[] {
    const out: Mapping[] = [];
    for (const seg of this.loads) {
      const fm = this.fileMappingAt(seg.vaddr);
      out.push({
        start: seg.vaddr,
        end: seg.vaddr + seg.memsz,
        perms: permString(seg.flags),
        offset: fm ? fm.fileOffset + (seg.vaddr - fm.start) : 0,
        dev: '00:00',
        inode: 0,
        path: fm ? fm.path : '',
      });
    }
    for (const fm of this.fileMappings) {
      if (typeof this.fileFor(fm) === 'string') continue;
      for (const [start, end] of this.gapsOutsideLoads(fm.start, fm.end)) {
        out.push({
          start,
          end,
          perms: 'r--p',
          offset: fm.fileOffset + (start - fm.start),
          dev: '00:00',
          inode: 0,
          path: fm.path,
        });
      }
    }
    return out.sort((a, b) => a.start - b.start);
  }

  /** Runtime minus link-time address of `exe`, the core's main executable. */
  loadBias(exe: ElfFile): number {
    const bias = this.loadBiasOf(this.exeMappedPath, exe);
    if (bias !== null) return bias;
    if (this.entry !== null && exe.entry !== 0) return this.entry - exe.entry;
    throw new UserError(`${this.path}: cannot tell where ${exe.path} was loaded (no NT_FILE mapping and no AT_ENTRY)`);
  }

  /** Runtime minus link-time address of elf, mapped from the NT_FILE path `path`; null when the core does not say. */
  loadBiasOf(path: string | null, elf: ElfFile): number | null {
    if (elf.type === ET_EXEC) return 0;
    const first = elf.segments.find((s) => s.type === PT_LOAD);
    if (!first) throw new UserError(`${elf.path}: no PT_LOAD segment`);
    const fileOffset = pageDown(first.offset);
    const mapped = this.fileMappings.find((m) => m.path === path && m.fileOffset === fileOffset);
    return mapped ? mapped.start - pageDown(first.vaddr) : null;
  }

  readInto(addr: number, out: Uint8Array): number {
    let done = 0;
    while (done < out.length) {
      const n = this.readSome(addr + done, out.subarray(done));
      if (n === 0) break;
      done += n;
    }
    return done;
  }

  /**
   * Reads a prefix of out from whichever single source holds addr; 0 when
   * addr is unreadable. Bytes a segment claims but the file does not hold
   * (cut short) are unreadable; so are bytes the dump left out with no file
   * to read them from: never zeros.
   */
  private readSome(addr: number, out: Uint8Array): number {
    const i = this.loadIndexAt(addr);
    const seg = i >= 0 ? this.loads[i] : null;
    if (seg && addr - seg.vaddr < seg.filesz) {
      const n = Math.min(out.length, seg.filesz - (addr - seg.vaddr));
      return this.core.readFileInto(seg.offset + (addr - seg.vaddr), out.subarray(0, n));
    }
    // A writable page may have been written: the file's bytes are not its memory.
    if (seg && (seg.flags & PF_W) !== 0) return 0;
    const limit = seg ? seg.vaddr + seg.memsz : this.nextLoadStart(addr);
    const fm = this.fileMappingAt(addr);
    if (fm) return this.readMappedFile(fm, addr, out.subarray(0, Math.min(out.length, Math.min(limit, fm.end) - addr)));
    return 0;
  }

  /** Why the byte at addr cannot be read. */
  explain(addr: number): string {
    const i = this.loadIndexAt(addr);
    const seg = i >= 0 ? this.loads[i] : null;
    const rel = seg ? addr - seg.vaddr : 0;
    if (seg && rel < seg.filesz && seg.offset >= this.core.size && truncation(this.core) === null) {
      return `the core's segment at 0x${seg.vaddr.toString(16)} says its bytes are at offset 0x${seg.offset.toString(16)}, past the end of ${this.path} (${this.core.size} bytes)`;
    }
    if (seg && rel < seg.filesz) return `the core is cut short: its bytes would be at offset ${seg.offset + rel} of ${this.path}, which ends at ${this.core.size}`;
    if (seg && (seg.flags & PF_W) !== 0) return 'not in the core: a writable page left out when it was dumped (its file no longer tells what it held)';
    const fm = this.fileMappingAt(addr);
    const file = fm ? this.fileFor(fm) : null;
    if (fm && typeof file === 'string') return `not in the core, and ${file}`;
    if (fm) return `not in the core, and ${fm.path} ends before it`;
    if (seg) return 'not in the core: left out when it was dumped';
    return 'not in any mapping';
  }

  /** Reads only bytes the core itself holds. */
  private readDumped(addr: number, out: Uint8Array): number {
    const i = this.loadIndexAt(addr);
    if (i < 0) return 0;
    const seg = this.loads[i];
    const rel = addr - seg.vaddr;
    if (rel >= seg.filesz) return 0;
    return this.core.readFileInto(seg.offset + rel, out.subarray(0, Math.min(out.length, seg.filesz - rel)));
  }

  private readMappedFile(fm: FileMapping, addr: number, out: Uint8Array): number {
    const file = this.fileFor(fm);
    if (typeof file === 'string') return 0;
    return file.readFileInto(fm.fileOffset + (addr - fm.start), out);
  }

  /** The mapped file, checked (--exe, given by the user, stands for the main executable), or why it is not read. */
  private fileFor(fm: FileMapping): ElfFile | string {
    let file = this.files.get(fm.path);
    if (file === undefined) {
      try {
        file = this.exeOverride !== null && fm.path === this.exeMappedPath ? ElfFile.open(this.exeOverride) : this.openMapped(fm.path);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        file = err.message;
      }
      this.files.set(fm.path, file);
    }
    return file;
  }

  /** Index of the PT_LOAD containing addr (within memsz), or -1. */
  private loadIndexAt(addr: number): number {
    let lo = 0;
    let hi = this.loads.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.loads[mid];
      if (addr < s.vaddr) hi = mid - 1;
      else if (addr >= s.vaddr + s.memsz) lo = mid + 1;
      else return mid;
    }
    return -1;
  }

  /** Start of the first PT_LOAD above addr, or Infinity. */
  private nextLoadStart(addr: number): number {
    let lo = 0;
    let hi = this.loads.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.loads[mid].vaddr > addr) hi = mid;
      else lo = mid + 1;
    }
    return lo < this.loads.length ? this.loads[lo].vaddr : Infinity;
  }

  private fileMappingAt(addr: number): FileMapping | null {
    let lo = 0;
    let hi = this.fileMappings.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const m = this.fileMappings[mid];
      if (addr < m.start) hi = mid - 1;
      else if (addr >= m.end) lo = mid + 1;
      else return m;
    }
    return null;
  }

  /** The parts of [start, end) that no readable PT_LOAD covers. */
  private gapsOutsideLoads(start: number, end: number): [number, number][] {
    const gaps: [number, number][] = [];
    let at = start;
    for (const s of this.loads) {
      const segEnd = s.vaddr + s.memsz;
      if (segEnd <= at || s.vaddr >= end) continue;
      if (s.vaddr > at) gaps.push([at, s.vaddr]);
      at = Math.max(at, segEnd);
      if (at >= end) break;
    }
    if (at < end) gaps.push([at, end]);
    return gaps;
  }

  close(): void {
    for (const f of this.files.values()) if (typeof f !== 'string') f.close();
    this.files.clear();
    this.core.close();
  }
}

/**
 * Whether the core file ends before its segments (notes and memory) do, as a gcore or a kernel
 * core cut short does: 'core is truncated: N bytes, the segments need M', else null. A segment
 * whose end is not even a safe integer is a lie, not a cut (its reads fault, saying where).
 */
function truncation(core: ElfFile): string | null {
  let need = 0;
  for (const s of core.segments) {
    if ((s.type !== PT_LOAD && s.type !== PT_NOTE) || s.filesz === 0 || !Number.isSafeInteger(s.offset + s.filesz)) continue;
    if (s.type === PT_NOTE && s.filesz > MAX_NOTES) continue; // a lie ElfFile.notes() refuses, saying so
    need = Math.max(need, s.offset + s.filesz);
  }
  return need > core.size ? `core is truncated: ${core.size} bytes, the segments need ${need}` : null;
}

/**
 * f(), and when it fails with a UserError on a core cut short, the cut instead: it is the cause, and
 * what failed because of it (no NT_FILE, so 'pass --exe') would send the user the wrong way.
 */
export function truncatedSaysSo<T>(corePath: string, cut: string | null, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (!(err instanceof UserError) || cut === null) throw err;
    throw new UserError(`${corePath}: ${cut} (cut short while it was written or copied: dump it again)`);
  }
}

/** The process id: NT_PRPSINFO has the process's; the first NT_PRSTATUS has a thread's, the main one in gcore output. */
function pidFromNotes(notes: ElfNote[]): number | null {
  const psinfo = notes.find((n) => n.type === NT_PRPSINFO && n.desc.length >= PRPSINFO_PID + 4);
  if (psinfo) return u32(psinfo.desc, PRPSINFO_PID);
  const status = notes.find((n) => n.type === NT_PRSTATUS && n.desc.length >= PRSTATUS_PID + 4);
  return status ? u32(status.desc, PRSTATUS_PID) : null;
}

/** The first NT_PRSTATUS's registers: the thread that dumped the core (gcore and the kernel write it first). */
function registersFromNotes(notes: ElfNote[]): Record<string, Int> | null {
  const status = notes.find((n) => n.type === NT_PRSTATUS && n.desc.length >= PRSTATUS_REGS + USER_REGS.length * 8);
  if (!status) return null;
  return Object.fromEntries(USER_REGS.map((name, i) => [name, norm(status.desc.readBigUInt64LE(PRSTATUS_REGS + i * 8))]));
}

/** NT_FILE: count, page size, count × (start, end, page offset), then count NUL-terminated paths. */
function fileMappingsFromNotes(corePath: string, notes: ElfNote[]): FileMapping[] {
  const note = notes.find((n) => n.type === NT_FILE);
  if (!note) return [];
  const d = note.desc;
  const count = d.length >= 16 ? u64(d, 0) : 0;
  const pageSize = d.length >= 16 ? u64(d, 8) : 0;
  let nameAt = 16 + count * 24;
  if (nameAt > d.length) throw new UserError(`${corePath}: truncated NT_FILE note (${count} entries)`);
  const out: FileMapping[] = [];
  for (let i = 0; i < count; i++) {
    const at = 16 + i * 24;
    const path = cString(d, nameAt);
    nameAt += Buffer.byteLength(path) + 1;
    out.push({ start: u64(d, at), end: u64(d, at + 8), fileOffset: u64(d, at + 16) * pageSize, path });
  }
  out.sort((a, b) => a.start - b.start);
  // The table is searched by address: entries that overlap (or run backwards) would make any answer about an address a guess.
  const hex = (m: FileMapping) => `${m.path} at 0x${m.start.toString(16)}-0x${m.end.toString(16)}`;
  for (const [i, m] of out.entries()) {
    if (!(m.end > m.start)) throw new UserError(`${corePath}: its NT_FILE note lists ${hex(m)}, which ends before it starts: the file table is corrupt`);
    if (i > 0 && m.start < out[i - 1].end) throw new UserError(`${corePath}: its NT_FILE note lists ${hex(out[i - 1])} and ${hex(m)}, which overlap: the file table is corrupt`);
  }
  return out;
}

function auxvEntry(notes: ElfNote[]): number | null {
  const auxv = notes.find((n) => n.type === NT_AUXV);
  if (!auxv) return null;
  for (let at = 0; at + 16 <= auxv.desc.length; at += 16) {
    if (u64(auxv.desc, at) === AT_ENTRY) return u64(auxv.desc, at + 8);
  }
  return null;
}

/**
 * The GNU build-id of the ELF object whose first page is at base in a
 * memory image, found through its program headers and PT_NOTE segments;
 * null when those bytes are not readable.
 */
export function buildIdFromImage(read: (addr: number, out: Uint8Array) => number, base: number): string | null {
  const ehdr = Buffer.alloc(64);
  if (read(base, ehdr) !== 64 || ehdr.readUInt32BE(0) !== 0x7f454c46 || ehdr[4] !== 2) return null;
  const phoff = u64(ehdr, 32);
  const phentsize = u16(ehdr, 54);
  const phnum = u16(ehdr, 56);
  if (phentsize < 56 || phnum === 0 || phnum * phentsize > 64 * 1024) return null;
  const table = Buffer.alloc(phnum * phentsize);
  if (read(base + phoff, table) !== table.length) return null;
  const phdrs = [];
  for (let i = 0; i < phnum; i++) {
    const at = i * phentsize;
    phdrs.push({ type: u32(table, at), vaddr: u64(table, at + 16), filesz: u64(table, at + 32), align: u64(table, at + 48) });
  }
  const first = phdrs.find((p) => p.type === PT_LOAD);
  if (!first) return null;
  const bias = base - pageDown(first.vaddr);
  for (const p of phdrs) {
    if (p.type !== PT_NOTE || p.filesz === 0 || p.filesz > 64 * 1024) continue;
    const bytes = Buffer.alloc(p.filesz);
    if (read(bias + p.vaddr, bytes) !== bytes.length) continue;
    const notes: ElfNote[] = [];
    parseNotes(bytes, p.align, notes);
    const id = notes.find((n) => n.name === 'GNU' && n.type === NT_GNU_BUILD_ID);
    if (id) return id.desc.toString('hex');
  }
  return null;
}

function permString(flags: number): string {
  return (flags & PF_R ? 'r' : '-') + (flags & PF_W ? 'w' : '-') + (flags & PF_X ? 'x' : '-') + 'p';
}

const pageDown = (n: number): number => n - (n % PAGE_SIZE);
