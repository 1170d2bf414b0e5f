/**
 * Where recovered symbol tables are kept and found: the user's cache
 * (cacheDir('symbols')/BUILD-ID.json, the layout cache's rules: folders
 * 0700 and ours, whole-file writes, see layout-cache.ts) and each pack's
 * symbols/ folder (packs found as core/packs.ts finds them, XWALK_PACKS
 * too). A table is used only for the object whose build-id it names, and
 * only once it is valid and fits that object; a bad one is passed over with
 * one line saying why.
 */
import fs from 'node:fs';
import path from 'node:path';
import { type ElfFile, PF_X, PT_LOAD } from '../../core/elf.ts';
import { packDir, packDirs, trustedInPacks } from '../../core/packs.ts';
import { makeDirs, readKeptFile } from '../../core/regular-file.ts';
import { UserError } from '../../core/errors.ts';
import { symbolTableProblem, type SymbolTableFile } from '../../core/symbol-table.ts';
import { cacheDir, TrustedCache } from '../layout-cache.ts';

export const tableName = (buildId: string): string => `${buildId}.json`;

/** A table bigger than this is not read (the largest real ones are a few MB). */
const MAX_TABLE_BYTES = 256 << 20;

/** What a table is checked against: the object's path (for messages), build-id and loaded segments, read while it was open. */
export interface ObjectShape {
  path: string;
  buildId: string | null;
  loads: { vaddr: number; memsz: number; flags: number }[];
}

export const shapeOf = (elf: ElfFile): ObjectShape => ({
  path: elf.path,
  buildId: elf.buildId(),
  loads: elf.segments.filter((s) => s.type === PT_LOAD).map((s) => ({ vaddr: s.vaddr, memsz: s.memsz, flags: s.flags })),
});

/** Why table t (already valid) cannot name the object's symbols, or null: another build-id, or a symbol outside its loaded segments. */
export function tableMisfit(t: SymbolTableFile, o: ObjectShape): string | null {
  if (t.build_id !== o.buildId) return `it names build-id ${t.build_id}, the object's is ${o.buildId ?? '(none)'}`;
  for (const s of t.symbols) {
    const seg = o.loads.find((l) => s.value >= l.vaddr && s.value + s.size <= l.vaddr + l.memsz);
    if (!seg) return `${s.name} at 0x${s.value.toString(16)} is outside ${o.path}'s loaded segments`;
    if (s.kind === 'func' && (seg.flags & PF_X) === 0) return `function ${s.name} at 0x${s.value.toString(16)} is not in ${o.path}'s code`;
  }
  return null;
}

/** The table in `bytes` (from `where`) if it is valid and fits the object, else null after one warning. */
function accept(bytes: Buffer, where: string, o: ObjectShape, warn: (m: string) => void): SymbolTableFile | null {
  let t: unknown;
  try {
    t = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    warn(`ignoring ${where}, which is not a symbol table: ${(err as Error).message}`);
    return null;
  }
  const problem = symbolTableProblem(t);
  if (problem) {
    warn(`ignoring ${where}, which is not a valid symbol table: ${problem}`);
    return null;
  }
  const misfit = tableMisfit(t as SymbolTableFile, o);
  if (misfit) {
    warn(`ignoring ${where}: ${misfit}`);
    return null;
  }
  return t as SymbolTableFile;
}

export interface FoundTable {
  table: SymbolTableFile;
  where: string;
}

/** The table for the object's build-id: the user's cache first, then the packs' symbols/ folders (XWALK_PACKS first). */
export function findTable(o: ObjectShape, warn: (m: string) => void): FoundTable | null {
  const id = o.buildId;
  if (!id) return null;
  const cached = new TrustedCache('symbols', warn).read('', tableName(id));
  if (cached) {
    const table = accept(cached.bytes, cached.file, o, warn);
    if (table) return { table, where: cached.file };
  }
  let dirs: string[];
  try {
    dirs = packDirs();
  } catch {
    return null; // XWALK_PACKS names no folder: said where packs are chosen
  }
  for (const top of dirs) {
    let packs: string[];
    try {
      packs = fs.readdirSync(top);
    } catch {
      continue;
    }
    for (const p of packs.sort()) {
      const file = path.join(top, p, 'symbols', tableName(id));
      if (!fs.existsSync(file) || !trustedInPacks(top, file)) continue;
      const bytes = readBounded(file, warn);
      const table = bytes && accept(bytes, file, o, warn);
      if (table) return { table, where: file };
    }
  }
  return null;
}

/** A pack's table file, opened without following a symlink, if it is a regular file of a sane size. */
function readBounded(file: string, warn: (m: string) => void): Buffer | null {
  const kept = readKeptFile(file, (st) => (st.size > MAX_TABLE_BYTES ? `${file} is ${st.size} bytes (a symbol table has at most ${MAX_TABLE_BYTES})` : null));
  if (kept && 'refused' in kept) return warn(`ignoring a symbol table: ${kept.refused}`), null;
  return kept && kept.bytes;
}

/** The table as JSON, one symbol a line (a pack's table reads and diffs well). */
const tableJson = (t: SymbolTableFile): string =>
  `${JSON.stringify({ ...t, symbols: [] }, null, 1).replace('"symbols": []', () => `"symbols": [\n${t.symbols.map((s) => `  ${JSON.stringify(s)}`).join(',\n')}\n ]`)}\n`;

/**
 * Writes the table (validated first) into the user's cache, or into pack `pack`'s symbols/ folder; returns
 * where, or null when the cache could not be used (a warning said why).
 */
export function writeTable(t: SymbolTableFile, opts: { pack?: string; warn: (m: string) => void }): string | null {
  const why = symbolTableProblem(t);
  if (why) throw new Error(`the table made for ${t.file} is not valid: ${why}`);
  if (opts.pack !== undefined) {
    const dir = packDir(opts.pack);
    if (!dir) throw new UserError(`no pack named ${opts.pack}`);
    const folder = path.join(dir, 'symbols');
    makeDirs(folder);
    const file = path.join(folder, tableName(t.build_id));
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, tableJson(t), { flag: 'wx', mode: 0o644 });
      fs.renameSync(tmp, file);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
    return file;
  }
  let refused = false;
  const cache = new TrustedCache('symbols', (m) => {
    refused = true;
    opts.warn(m);
  });
  cache.write('', tableName(t.build_id), tableJson(t));
  return refused ? null : path.join(cacheDir('symbols'), tableName(t.build_id));
}
