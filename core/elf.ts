/**
 * A reader for ELF64 little-endian files: executables, shared objects and
 * core files. Headers, section and program headers are read when the file
 * is opened; everything else (notes, symbols, segment bytes) is read on
 * demand with positioned reads, so a core of hundreds of MB costs little.
 */
import { isAscii } from 'node:buffer';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { UserError } from './errors.ts';
import type { Program } from './pattern.ts';
import { PatternSearch } from './pattern-vm.ts';
import { describeOpenError, openRegular } from './regular-file.ts';

export const ET_EXEC = 2;
export const ET_DYN = 3;
export const ET_CORE = 4;

export const PT_LOAD = 1;
export const PT_NOTE = 4;

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;

export const SHT_SYMTAB = 2;
export const SHT_NOTE = 7;
export const SHT_NOBITS = 8;
export const SHT_DYNSYM = 11;

export const SHF_WRITE = 1;
export const SHF_ALLOC = 2;
export const SHF_EXECINSTR = 4;

export const SHN_UNDEF = 0;
export const SHN_ABS = 0xfff1;

export const STT_NOTYPE = 0;
export const STT_OBJECT = 1;
export const STT_FUNC = 2;
export const STT_FILE = 4;

export const STB_LOCAL = 0;
export const STB_GLOBAL = 1;
export const STB_WEAK = 2;

export const NT_GNU_BUILD_ID = 3;

const EHDR_SIZE = 64;
const PHDR_SIZE = 56;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const PN_XNUM = 0xffff;
const SHN_XINDEX = 0xffff;

export interface ElfSection {
  name: string;
  type: number;
  /** SHF_* */
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  entsize: number;
  addralign: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  /** STT_* */
  type: number;
  /** STB_* */
  bind: number;
  shndx: number;
}

export interface ElfNote {
  name: string;
  type: number;
  desc: Buffer;
}

/** A 64-bit little-endian value as a JS number (exact below 2^53). */
export function u64(buf: Uint8Array, at: number): number {
  const lo = (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16)) + buf[at + 3] * 0x1000000;
  const hi = (buf[at + 4] | (buf[at + 5] << 8) | (buf[at + 6] << 16)) + buf[at + 7] * 0x1000000;
  return hi * 0x100000000 + lo;
}

export function u32(buf: Uint8Array, at: number): number {
  return (buf[at] | (buf[at + 1] << 8) | (buf[at + 2] << 16)) + buf[at + 3] * 0x1000000;
}

export function u16(buf: Uint8Array, at: number): number {
  return buf[at] | (buf[at + 1] << 8);
}

/** The NUL-terminated string at `at`, decoded as UTF-8. */
export function cString(buf: Buffer, at: number): string {
  let end = buf.indexOf(0, at);
  if (end < 0) end = buf.length;
  return buf.toString('utf8', at, end);
}

/** The NUL-terminated names of a string table, as cString reads them: sliced from one string when it is all ASCII. */
function namesOf(strtab: Buffer): (at: number) => string {
  if (!isAscii(strtab)) return (at) => cString(strtab, at);
  const text = strtab.toString('latin1');
  return (at) => {
    const end = text.indexOf('\0', at);
    return text.slice(at, end < 0 ? text.length : end);
  };
}

/** Tables and notes larger than these are no ELF file xsample reads: refused, not allocated. */
const MAX_TABLE = 64 * 1024 * 1024;
export const MAX_NOTES = 16 * 1024 * 1024;
const MAX_SECTION = 512 * 1024 * 1024;


interface ElfHeader {
  type: number;
  entry: number;
  phoff: number;
  shoff: number;
  phentsize: number;
  phnum: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

/** A file that is not ELF at all (a process maps fonts and locale archives too). */
export class NotElf extends UserError {}

function parseHeader(path: string, h: Buffer, got: number): ElfHeader {
  if (got < 4 || h[0] !== 0x7f || h[1] !== 0x45 || h[2] !== 0x4c || h[3] !== 0x46) {
    throw new NotElf(`${path}: not an ELF file`);
  }
  if (got < EHDR_SIZE) throw new UserError(`${path}: truncated ELF header`);
  if (h[4] !== 2) throw new UserError(`${path}: not a 64-bit ELF file (EI_CLASS ${h[4]})`);
  if (h[5] !== 1) throw new UserError(`${path}: not a little-endian ELF file (EI_DATA ${h[5]})`);
  return {
    type: u16(h, 16),
    entry: u64(h, 24),
    phoff: u64(h, 32),
    shoff: u64(h, 40),
    phentsize: u16(h, 54),
    phnum: u16(h, 56),
    shentsize: u16(h, 58),
    shnum: u16(h, 60),
    shstrndx: u16(h, 62),
  };
}

export class ElfFile {
  readonly path: string;
  readonly type: number;
  readonly entry: number;
  readonly size: number;
  readonly sections: ElfSection[];
  readonly segments: ElfSegment[];
  /** The file's owner and mode, as it was opened. */
  readonly stat: fs.Stats;
  private fd: number | null;
  /** An image in memory (the vDSO a process maps) instead of a file. */
  private image: Buffer | null = null;
  private cachedSymbols: ElfSymbol[] | null = null;
  private cachedNotes: ElfNote[] | null = null;
  private cachedHash: string | null = null;

  static open(path: string): ElfFile {
    const { fd, stat } = openRegular(path);
    try {
      return new ElfFile(path, fd, stat);
    } catch (err) {
      fs.closeSync(fd);
      if (err instanceof UserError) throw err;
      throw new UserError(describeOpenError(path, err as NodeJS.ErrnoException));
    }
  }

  /**
   * An ELF image held in memory, as a process maps one with no file behind it (the vDSO): name stands for the
   * path in messages; stat is zeros but for the size.
   */
  static fromImage(name: string, bytes: Buffer): ElfFile {
    const st = Object.assign(Object.create(fs.Stats.prototype) as fs.Stats, { dev: 0, ino: 0, mode: 0, uid: 0, gid: 0, size: bytes.length, mtimeMs: 0 });
    return new ElfFile(name, null, st, bytes);
  }

  private constructor(path: string, fd: number | null, st: fs.Stats, image: Buffer | null = null) {
    this.path = path;
    this.fd = fd;
    this.image = image;
    this.stat = st;
    this.size = st.size;
    const head = Buffer.alloc(EHDR_SIZE);
    const got = this.readFileInto(0, head);
    const h = parseHeader(path, head, got);
    this.type = h.type;
    this.entry = h.entry;
    const first = h.shoff !== 0 && h.shentsize >= SHDR_SIZE ? this.readSectionHeader0(h) : null;
    const phnum = h.phnum === PN_XNUM && first ? first.info : h.phnum;
    const shnum = h.shnum === 0 && first ? first.size : h.shnum;
    const shstrndx = h.shstrndx === SHN_XINDEX && first ? first.link : h.shstrndx;
    this.segments = this.readSegments(h, phnum);
    // A core needs no sections (the kernel writes none; gcore puts them last): a core cut short may have lost them.
    const sectionsLost = h.type === ET_CORE && h.shoff + shnum * h.shentsize > this.size;
    this.sections = h.shoff !== 0 && h.shentsize >= SHDR_SIZE && !sectionsLost ? this.readSections(h, shnum, shstrndx) : [];
  }

  /** Section 0 holds the real counts when they overflow the 16-bit header fields. */
  private readSectionHeader0(h: ElfHeader): { size: number; link: number; info: number } | null {
    const b = this.readFileBytes(h.shoff, SHDR_SIZE);
    if (b.length < SHDR_SIZE) return null;
    return { size: u64(b, 32), link: u32(b, 40), info: u32(b, 44) };
  }

  private readTable(what: string, offset: number, count: number, entsize: number): Buffer {
    const len = count * entsize;
    if (len > MAX_TABLE) throw new UserError(`${this.path}: ${count} ${what} of ${entsize} bytes: more than an ELF file has`);
    if (offset + len > this.size) {
      throw new UserError(`${this.path}: truncated ELF file (${what} end past the end of the file)`);
    }
    return this.readFileBytes(offset, len);
  }

  private readSegments(h: ElfHeader, phnum: number): ElfSegment[] {
    if (phnum === 0 || h.phoff === 0) return [];
    if (h.phentsize < PHDR_SIZE) throw new UserError(`${this.path}: bad program header size ${h.phentsize}`);
    const table = this.readTable('program headers', h.phoff, phnum, h.phentsize);
    const segments: ElfSegment[] = [];
    for (let i = 0; i < phnum; i++) {
      const at = i * h.phentsize;
      segments.push({
        type: u32(table, at),
        flags: u32(table, at + 4),
        offset: u64(table, at + 8),
        vaddr: u64(table, at + 16),
        filesz: u64(table, at + 32),
        memsz: u64(table, at + 40),
        align: u64(table, at + 48),
      });
    }
    return segments;
  }

  private readSections(h: ElfHeader, shnum: number, shstrndx: number): ElfSection[] {
    if (shnum === 0) return [];
    const table = this.readTable('section headers', h.shoff, shnum, h.shentsize);
    const raw: (ElfSection & { nameOffset: number })[] = [];
    for (let i = 0; i < shnum; i++) {
      const at = i * h.shentsize;
      raw.push({
        nameOffset: u32(table, at),
        name: '',
        type: u32(table, at + 4),
        flags: u64(table, at + 8),
        addr: u64(table, at + 16),
        offset: u64(table, at + 24),
        size: u64(table, at + 32),
        link: u32(table, at + 40),
        addralign: u64(table, at + 48),
        entsize: u64(table, at + 56),
      });
    }
    const strtab = shstrndx < raw.length ? this.sectionBytes(raw[shstrndx]) : null;
    return raw.map(({ nameOffset, ...s }) => ({
      ...s,
      name: strtab && nameOffset < strtab.length ? cString(strtab, nameOffset) : '',
    }));
  }

  /** Up to len bytes of the file at offset (fewer at the end of the file). */
  readFileBytes(offset: number, len: number): Buffer {
    const out = Buffer.alloc(Math.max(0, Math.min(len, this.size - offset)));
    const got = this.readFileInto(offset, out);
    return got === out.length ? out : out.subarray(0, got);
  }

  /** Fills out from the file at offset; returns the count read (short at end of file). */
  readFileInto(offset: number, out: Uint8Array): number {
    // An offset from the file itself (a crafted core's 2^60) is checked before it becomes a position.
    if (!Number.isSafeInteger(offset) || offset < 0 || offset >= this.size) return 0;
    if (out.length > this.size - offset) out = out.subarray(0, this.size - offset);
    if (this.image) return this.image.copy(out, 0, offset, offset + out.length);
    const fd = this.descriptor();
    let done = 0;
    while (done < out.length) {
      const n = fs.readSync(fd, out, done, out.length - done, offset + done);
      if (n <= 0) break;
      done += n;
    }
    return done;
  }

  /** The open file; after close(), the same file again (by device and inode), or an error. */
  private descriptor(): number {
    if (this.fd === null) {
      const { fd, stat } = openRegular(this.path);
      if (stat.dev !== this.stat.dev || stat.ino !== this.stat.ino) {
        fs.closeSync(fd);
        throw new UserError(`${this.path}: replaced by another file while it was read`);
      }
      this.fd = fd;
    }
    return this.fd;
  }

  /** Closes the file; a later read reopens it by path. */
  close(): void {
    if (this.fd !== null) {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }

  section(name: string): ElfSection | null {
    return this.sections.find((s) => s.name === name) ?? null;
  }

  sectionBytes(s: ElfSection): Buffer {
    if (s.type === SHT_NOBITS) return Buffer.alloc(0);
    if (s.size > MAX_SECTION) throw new UserError(`${this.path}: section ${s.name || '?'} of ${s.size} bytes is larger than xsample reads`);
    return this.readFileBytes(s.offset, s.size);
  }

  /** Note bytes, bounded: a note bigger than any real one is refused, not read. */
  private noteBytes(offset: number, size: number): Buffer {
    if (size > MAX_NOTES) throw new UserError(`${this.path}: a note area of ${size} bytes (more than ${MAX_NOTES / 1024 / 1024} MiB): no ELF file or core has one`);
    return this.readFileBytes(offset, size);
  }

  /** The file offset of a link-time virtual address inside a PT_LOAD's file contents (what a uprobe names), or null. */
  fileOffset(vaddr: number): number | null {
    for (const seg of this.segments) {
      if (seg.type === PT_LOAD && vaddr >= seg.vaddr && vaddr < seg.vaddr + seg.filesz) return seg.offset + (vaddr - seg.vaddr);
    }
    return null;
  }

  /** Bytes at a link-time virtual address, from the file contents of a PT_LOAD. */
  readVaddr(vaddr: number, len: number): Buffer | null {
    for (const seg of this.segments) {
      if (seg.type !== PT_LOAD) continue;
      if (vaddr >= seg.vaddr && vaddr + len <= seg.vaddr + seg.filesz) {
        const b = this.readFileBytes(seg.offset + (vaddr - seg.vaddr), len);
        return b.length === len ? b : null;
      }
    }
    return null;
  }

  notes(): ElfNote[] {
    if (this.cachedNotes) return this.cachedNotes;
    const notes: ElfNote[] = [];
    const covered: [number, number][] = [];
    for (const seg of this.segments) {
      if (seg.type !== PT_NOTE || seg.filesz === 0) continue;
      covered.push([seg.offset, seg.offset + seg.filesz]);
      parseNotes(this.noteBytes(seg.offset, seg.filesz), seg.align, notes);
    }
    for (const s of this.sections) {
      if (s.type !== SHT_NOTE || s.size === 0) continue;
      if (covered.some(([a, b]) => s.offset >= a && s.offset + s.size <= b)) continue;
      parseNotes(this.noteBytes(s.offset, s.size), s.addralign, notes);
    }
    this.cachedNotes = notes;
    return notes;
  }

  /** sha256 of the whole file: what ties a cached layout to this very binary, not only to its build-id. */
  contentHash(): string {
    if (this.cachedHash) return this.cachedHash;
    const h = crypto.createHash('sha256');
    const buf = Buffer.alloc(1 << 20);
    for (let at = 0; at < this.size; ) {
      const n = this.readFileInto(at, buf.subarray(0, Math.min(buf.length, this.size - at)));
      if (n <= 0) break;
      h.update(buf.subarray(0, n));
      at += n;
    }
    return (this.cachedHash = h.digest('hex'));
  }

  buildId(): string | null {
    const note = this.notes().find((n) => n.name === 'GNU' && n.type === NT_GNU_BUILD_ID);
    return note && note.desc.length > 0 ? note.desc.toString('hex') : null;
  }

  hasDebugInfo(): boolean {
    const s = this.section('.debug_info');
    return s !== null && s.type !== SHT_NOBITS && s.size > 0;
  }

  /** .symtab plus .dynsym, without duplicates (same name and value); named symbols only. */
  symbols(): ElfSymbol[] {
    if (this.cachedSymbols) return this.cachedSymbols;
    const seen = new Set<string>();
    const out: ElfSymbol[] = [];
    for (const type of [SHT_SYMTAB, SHT_DYNSYM]) {
      for (const s of this.sections) {
        if (s.type !== type) continue;
        for (const sym of this.readSymbolSection(s)) {
          const key = sym.name + '@' + sym.value;
          // STT_FILE entries are kept as they are: they group the locals that follow them.
          if (sym.type !== STT_FILE && seen.has(key)) continue;
          seen.add(key);
          out.push(sym);
        }
      }
    }
    this.cachedSymbols = out;
    return out;
  }

  /** Whether the object has a .symtab (with entries): a stripped one has only .dynsym. */
  hasSymtab(): boolean {
    return this.sections.some((s) => s.type === SHT_SYMTAB && s.size > SYM_SIZE);
  }

  /** The .symtab alone, in its order (each file's locals after its STT_FILE entry, then the globals). */
  symtab(): ElfSymbol[] {
    return this.sections.filter((s) => s.type === SHT_SYMTAB).flatMap((s) => this.readSymbolSection(s));
  }

  private readSymbolSection(s: ElfSection): ElfSymbol[] {
    const strSection = this.sections[s.link];
    if (!strSection) return [];
    const strtab = this.sectionBytes(strSection);
    const table = this.sectionBytes(s);
    const entsize = s.entsize >= SYM_SIZE ? s.entsize : SYM_SIZE;
    // Read as it is by a command's first use, in the interpreter: 32-bit words from an aligned copy and names
    // sliced from one string cost a tenth of reading byte by byte and decoding each name.
    const words = new Uint32Array(Math.ceil(table.length / 4));
    new Uint8Array(words.buffer).set(table);
    const aligned = entsize % 4 === 0;
    const names = namesOf(strtab);
    const syms: ElfSymbol[] = [];
    for (let at = 0; at + SYM_SIZE <= table.length; at += entsize) {
      const w = at >> 2;
      const nameOffset = aligned ? words[w] : u32(table, at);
      if (nameOffset === 0 || nameOffset >= strtab.length) continue;
      const info = table[at + 4];
      syms.push({
        name: names(nameOffset),
        value: aligned ? words[w + 3] * 0x100000000 + words[w + 2] : u64(table, at + 8),
        size: aligned ? words[w + 5] * 0x100000000 + words[w + 4] : u64(table, at + 16),
        type: info & 0xf,
        bind: info >> 4,
        shndx: u16(table, at + 6),
      });
    }
    return syms;
  }

  /**
   * The capture of the first match of a pattern's program (generators/
   * pattern.ts) in .rodata (the whole file when there are no section
   * headers), scanning at most maxScan bytes: linear time, whatever the
   * pattern and the bytes.
   */
  findPattern(program: Program, maxScan = 64 * 1024 * 1024): string | null {
    const rodata = this.section('.rodata');
    if (this.sections.length > 0 && !rodata) return null;
    const start = rodata ? rodata.offset : 0;
    const end = Math.min(rodata ? rodata.offset + rodata.size : this.size, start + maxScan);
    const search = new PatternSearch(program);
    let at = start;
    for (; at < end; ) {
      const bytes = this.readFileBytes(at, Math.min(1 << 20, end - at));
      if (bytes.length === 0) break;
      if (search.feed(bytes, at)) break;
      at += bytes.length;
    }
    if (!search.done) search.end(at);
    const m = search.match;
    return m ? this.readFileBytes(m.capStart, m.capEnd - m.capStart).toString('latin1') : null;
  }
}

/**
 * Appends the notes of a PT_NOTE segment or SHT_NOTE section. Entries are
 * 4-byte aligned unless the container says 8 (.note.gnu.property on
 * x86_64); gcore writes p_align 1 for its 4-aligned notes.
 */
export function parseNotes(buf: Buffer, containerAlign: number, into: ElfNote[]): void {
  const a = containerAlign === 8 ? 8 : 4;
  let at = 0;
  while (at + 12 <= buf.length) {
    const namesz = u32(buf, at);
    const descsz = u32(buf, at + 4);
    const type = u32(buf, at + 8);
    const nameAt = at + 12;
    const descAt = alignUp(nameAt + namesz, a);
    if (descAt + descsz > buf.length) break;
    const name = buf.toString('latin1', nameAt, nameAt + namesz).replace(/\0+$/, '');
    into.push({ name, type, desc: buf.subarray(descAt, descAt + descsz) });
    at = alignUp(descAt + descsz, a);
  }
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;
