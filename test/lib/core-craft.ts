/**
 * Crafting bad cores from good ones, for the hostile-input tests: program
 * headers that point past the end of the file, notes that claim to be
 * huge, NT_FILE entries that name other files. Edits are made in place on
 * the bytes of a real core (gcore's), so everything else stays valid.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';

const PT_LOAD = 1;
const PT_NOTE = 4;
const NT_FILE = 0x46494c45;

export interface Phdr {
  /** Byte offset of this program header in the file. */
  at: number;
  type: number;
  /** PF_X 1, PF_W 2, PF_R 4 */
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

const u64 = (b: Buffer, at: number) => Number(b.readBigUInt64LE(at));

export function programHeaders(core: Buffer): Phdr[] {
  const phoff = u64(core, 32);
  const phentsize = core.readUInt16LE(54);
  const phnum = core.readUInt16LE(56);
  return Array.from({ length: phnum }, (_, i) => {
    const at = phoff + i * phentsize;
    return { at, type: core.readUInt32LE(at), flags: core.readUInt32LE(at + 4), offset: u64(core, at + 8), vaddr: u64(core, at + 16), filesz: u64(core, at + 32), memsz: u64(core, at + 40) };
  });
}

/** The PT_LOAD whose bytes hold addr. */
export function loadHolding(core: Buffer, addr: number): Phdr {
  const seg = programHeaders(core).find((p) => p.type === PT_LOAD && addr >= p.vaddr && addr < p.vaddr + p.filesz);
  if (!seg) throw new Error(`no PT_LOAD of the core holds 0x${addr.toString(16)}`);
  return seg;
}

export const setOffset = (core: Buffer, p: Phdr, offset: number) => core.writeBigUInt64LE(BigInt(offset), p.at + 8);
export const setFilesz = (core: Buffer, p: Phdr, filesz: number) => core.writeBigUInt64LE(BigInt(filesz), p.at + 32);

export function noteSegment(core: Buffer): Phdr {
  const p = programHeaders(core).find((x) => x.type === PT_NOTE);
  if (!p) throw new Error('the core has no PT_NOTE');
  return p;
}

export interface FileEntry {
  start: number;
  end: number;
  fileOffset: number;
  path: string;
  /** Byte offset of the path's first character in the core file. */
  pathAt: number;
  /** Byte offset of the entry's (start, end, page offset) in the core file. */
  entryAt: number;
}

/** The NT_FILE note's entries, with where each path lies in the file. */
export function fileEntries(core: Buffer): FileEntry[] {
  const note = noteSegment(core);
  let at = note.offset;
  const end = note.offset + note.filesz;
  while (at + 12 <= end) {
    const namesz = core.readUInt32LE(at);
    const descsz = core.readUInt32LE(at + 4);
    const type = core.readUInt32LE(at + 8);
    const descAt = at + 12 + Math.ceil(namesz / 4) * 4;
    if (type === NT_FILE) {
      const count = u64(core, descAt);
      const pageSize = u64(core, descAt + 8);
      let nameAt = descAt + 16 + count * 24;
      return Array.from({ length: count }, (_, i) => {
        const e = descAt + 16 + i * 24;
        const stop = core.indexOf(0, nameAt);
        const entry = { start: u64(core, e), end: u64(core, e + 8), fileOffset: u64(core, e + 16) * pageSize, path: core.toString('utf8', nameAt, stop), pathAt: nameAt, entryAt: e };
        nameAt = stop + 1;
        return entry;
      });
    }
    at = descAt + Math.ceil(descsz / 4) * 4;
  }
  throw new Error('the core has no NT_FILE note');
}

/** Makes an NT_FILE entry name another path of the same length (the note's layout stays). */
export function renameEntry(core: Buffer, e: FileEntry, to: string): void {
  if (Buffer.byteLength(to) !== Buffer.byteLength(e.path)) throw new Error(`${to} is not as long as ${e.path}`);
  core.write(to, e.pathAt, 'utf8');
}

/** A path of exactly `length` bytes in dir (which must be shorter): dir/xxx...x. */
export function pathOfLength(dir: string, length: number): string {
  const rest = length - dir.length - 1;
  if (rest < 1) throw new Error(`${dir} is too long for a path of ${length} bytes`);
  return path.join(dir, 'x'.repeat(rest));
}

/**
 * The same core laid out as the kernel writes one: notes first, right
 * after the program headers, then the segments, and no section headers.
 * (gcore puts its notes last, so a gcore cut short loses them all.)
 */
export function kernelStyle(core: Buffer): Buffer {
  const phdrs = programHeaders(core);
  const note = noteSegment(core);
  const headerEnd = core.readUInt16LE(56) * core.readUInt16LE(54) + u64(core, 32);
  const notes = core.subarray(note.offset, note.offset + note.filesz);
  const shift = Math.ceil(notes.length / 8) * 8;
  const loads = phdrs.filter((p) => p.type === PT_LOAD && p.filesz > 0);
  const dataStart = Math.min(...loads.map((p) => p.offset));
  const dataEnd = Math.max(...loads.map((p) => p.offset + p.filesz));
  if (dataStart < headerEnd) throw new Error('segments overlap the headers');
  const out = Buffer.concat([core.subarray(0, dataStart), Buffer.alloc(shift), core.subarray(dataStart, dataEnd)]);
  notes.copy(out, dataStart);
  setOffset(out, note, dataStart);
  for (const p of loads) setOffset(out, p, p.offset + shift);
  out.writeBigUInt64LE(0n, 40); // e_shoff
  out.writeUInt16LE(0, 60); // e_shnum
  out.writeUInt16LE(0, 62); // e_shstrndx
  return out;
}

/** gcore of pid into dir; the core's path. */
export async function gcore(pid: number, dir: string): Promise<string> {
  await execa('gcore', ['-o', path.join(dir, 'core'), String(pid)], { stdio: 'ignore' });
  const file = path.join(dir, `core.${pid}`);
  if (!fs.existsSync(file)) throw new Error(`gcore wrote no ${file}`);
  return file;
}
