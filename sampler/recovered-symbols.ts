/**
 * The names a stripped object lost, from a recovered symbol table
 * (core/symbol-table.ts, made by `xgen symbols --for FILE`): looked up by
 * the object's build-id in the user's cache (cacheDir('symbols')/<build-id>.json,
 * used only if no one else could have written it, as the layout cache) and
 * in every folder of packs (`<pack>/symbols/<build-id>.json`, XWALK_PACKS
 * first, each trusted as packs are). A table is validated before it is
 * used and used only for the object whose build-id it names; its symbols
 * join the object's own (.dynsym), which win on a name clash.
 */
import fs from 'node:fs';
import path from 'node:path';
import { SHT_SYMTAB, STT_FILE, type ElfFile, type ElfSymbol } from '../core/elf.ts';
import { packDirs, trustedInPacks } from '../core/packs.ts';
import { symbolTableProblem, toElfSymbols, type SymbolTableFile } from '../core/symbol-table.ts';
import { cacheDir, TrustedCache } from '../generators/layout-cache.ts';

/** A table bigger than this is not read (the largest real ones are a few MB). */
const MAX_TABLE_BYTES = 256 << 20;

let warnTable = (message: string): void => console.error(`xwalk: ${message}`);
const warned = new Set<string>();

/** Where the one line about a refused table goes (the CLIs prefix their name). */
export function onSymbolTableWarning(warn: (message: string) => void): void {
  warnTable = warn;
}

function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  warnTable(message);
}

/** Whether an ELF object has no .symtab: its statics and most of its globals have no name but a recovered table's. */
export function isStripped(elf: ElfFile): boolean {
  return !elf.sections.some((s) => s.type === SHT_SYMTAB);
}

/** A recovered table and the file it was read from. */
export interface FoundTable {
  table: SymbolTableFile;
  file: string;
}

/** The files a table for buildId may be in, first first: the user's cache, then each folder of packs' packs. */
function candidates(buildId: string): { file: string; read: () => Buffer | null }[] {
  const name = `${buildId}.json`;
  const out: { file: string; read: () => Buffer | null }[] = [];
  const cache = new TrustedCache('symbols', warnOnce);
  out.push({ file: path.join(cacheDir('symbols'), name), read: () => cache.read('', name)?.bytes ?? null });
  let dirs: string[] = [];
  try {
    dirs = packDirs();
  } catch {
    dirs = []; // XWALK_PACKS names no folder: said where packs are chosen
  }
  for (const top of dirs) {
    let packs: string[];
    try {
      packs = fs.readdirSync(top);
    } catch {
      continue;
    }
    for (const pack of packs.sort()) {
      const file = path.join(top, pack, 'symbols', name);
      out.push({ file, read: () => (fs.existsSync(file) && trustedInPacks(top, file) ? readBounded(file) : null) });
    }
  }
  return out;
}

function readBounded(file: string): Buffer | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return warnOnce(`ignoring ${file}: not a regular file`), null;
    if (st.size > MAX_TABLE_BYTES) return warnOnce(`ignoring ${file}: ${st.size} bytes (a symbol table has at most ${MAX_TABLE_BYTES})`), null;
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * The first valid recovered table for the object of build-id buildId, or null. A file that is not a valid table,
 * or names another build-id, is passed over with one line naming it (and both ids).
 */
export function findRecoveredTable(buildId: string): FoundTable | null {
  for (const c of candidates(buildId)) {
    const bytes = c.read();
    if (!bytes) continue;
    const file = c.file;
    let t: unknown;
    try {
      t = JSON.parse(bytes.toString('utf8'));
    } catch (err) {
      warnOnce(`ignoring ${file}, which is not a symbol table: ${(err as Error).message}`);
      continue;
    }
    const problem = symbolTableProblem(t);
    if (problem) {
      warnOnce(`ignoring ${file}, which is not a valid symbol table: ${problem}`);
      continue;
    }
    const table = t as SymbolTableFile;
    if (table.build_id !== buildId) {
      warnOnce(`ignoring ${file}: it names build-id ${table.build_id}, the object's is ${buildId}`);
      continue;
    }
    return { table, file };
  }
  return null;
}

/** An object's symbols as the readers use them: its own, and a recovered table's when it is stripped. */
export interface ObjectSymbols {
  symbols: ElfSymbol[];
  stripped: boolean;
  buildId: string | null;
  /** The table whose names joined the object's own (null: none, or the object is not stripped). */
  recovered: FoundTable | null;
}

/**
 * An object's own symbols (.symtab and .dynsym), and when it is stripped those of its recovered table that it does
 * not define itself (its own win on a name clash).
 */
export function objectSymbols(elf: ElfFile): ObjectSymbols {
  return objectSymbolsLater(elf)();
}

/**
 * objectSymbols, with what the object's file gives read now (the file may be closed or gone later) and its
 * recovered table looked up at the first call, once.
 */
export function objectSymbolsLater(elf: ElfFile): () => ObjectSymbols {
  const own = elf.symbols();
  const stripped = isStripped(elf);
  const buildId = elf.buildId();
  let done: ObjectSymbols | undefined;
  return () => {
    if (done) return done;
    const recovered = stripped && buildId ? findRecoveredTable(buildId) : null;
    return (done = { symbols: recovered ? [...own, ...recoveredSymbols(recovered, own)] : own, stripped, buildId, recovered });
  };
}

/** The symbols of a recovered table that the object does not define itself (its own win on a name clash), as .symtab entries. */
export function recoveredSymbols(found: FoundTable, own: ElfSymbol[]): ElfSymbol[] {
  const ownNames = new Set(own.map((s) => s.name));
  return toElfSymbols(found.table).filter((s) => s.type === STT_FILE || !ownNames.has(s.name));
}

/** Why a name the walks need is not found in the object at path, when it is stripped and no recovered table names its globals; else null. */
export function strippedWhy(path: string, o: ObjectSymbols): string | null {
  if (!o.stripped || o.recovered) return null;
  const id = o.buildId ? `build-id ${o.buildId}` : 'no build-id';
  return `${path} is stripped and no recovered symbol table is found for it (${id}): run \`xgen symbols --for ${path}\``;
}
