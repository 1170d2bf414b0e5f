/**
 * Where a uprobe goes: a function of an ELF file named by symbol (.symtab
 * or .dynsym, so Debian's stripped binaries too) or a file offset, as the
 * uprobe PMU takes it (config2 = the offset of the instruction in the file).
 */
import fs from 'node:fs';
import { ElfFile, SHN_UNDEF, STT_FUNC } from '../../core/elf.ts';
import { UserError, hex } from '../memory/memory.ts';
import { readProcMaps } from '../memory/proc-maps.ts';

export interface UprobeTarget {
  path: string;
  fileOffset: number;
  /** The function's name, when it was named. */
  symbol: string | null;
}

/** The file offset of `fn` (a function's name or a file offset) in the ELF file at path. */
export function uprobeTarget(path: string, fn: string | number): UprobeTarget {
  if (typeof fn === 'number') {
    if (!Number.isSafeInteger(fn) || fn < 0) throw new UserError(`uprobe offset ${fn}: not a file offset`);
    return { path, fileOffset: fn, symbol: null };
  }
  const elf = ElfFile.open(path);
  try {
    const defs = elf.symbols().filter((s) => s.name === fn && s.type === STT_FUNC && s.shndx !== SHN_UNDEF && s.value !== 0);
    const addrs = [...new Set(defs.map((s) => s.value))];
    if (addrs.length === 0) throw new UserError(`${path} defines no function ${fn} (in .symtab or .dynsym)`);
    if (addrs.length > 1) throw new UserError(`${path} defines ${addrs.length} functions named ${fn} (at ${addrs.map(hex).join(', ')}): give a file offset`);
    const fileOffset = elf.fileOffset(addrs[0]);
    if (fileOffset === null) throw new UserError(`${fn} at ${hex(addrs[0])} is in no loaded segment of ${path}`);
    return { path, fileOffset, symbol: fn };
  } finally {
    elf.close();
  }
}

/** Throws unless process pid maps the file at path (else the uprobe would never fire there): same device and inode. */
export function checkMapped(pid: number, path: string): void {
  const st = fs.statSync(path);
  // new_encode_dev(): the maps file prints MAJOR:MINOR in hex.
  const dev = `${((st.dev >> 8) & 0xfff).toString(16).padStart(2, '0')}:${((st.dev & 0xff) | ((st.dev >> 12) & 0xfff00)).toString(16).padStart(2, '0')}`;
  if (!readProcMaps(pid).some((m) => m.inode === st.ino && m.dev === dev)) {
    throw new UserError(`process ${pid} does not map ${path}: a uprobe there would never fire`);
  }
}
