/**
 * A recovered symbol table (core/symbol-table.ts) for a stripped object, made by the tests from the .symtab of an
 * unstripped twin (a rebuild of the same source, or the unstripped copy a test stripped), after checking that
 * every loaded section of the two is identical (same address, size and bytes; .note.gnu.build-id aside): what
 * `xgen symbols --for FILE` does with a rebuild, in small, for the readers' tests until it is everywhere.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ElfFile, STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_FUNC, STT_OBJECT, SHN_ABS, SHN_UNDEF, SHT_NOBITS } from '../../core/elf.ts';
import { SYMBOL_TABLE_VERSION, type RecoveredSymbol, type SymbolTableFile } from '../../core/symbol-table.ts';

const BINDS: Record<number, RecoveredSymbol['bind']> = { [STB_GLOBAL]: 'global', [STB_LOCAL]: 'local', [STB_WEAK]: 'weak' };

/** Why the loaded sections of a and b differ, or null when each has the same address, size and bytes. */
function loadedDifference(a: ElfFile, b: ElfFile): string | null {
  // Sections that are loaded have an address; the others (.symtab, .debug_*, .comment) have none.
  const loaded = (e: ElfFile) => e.sections.filter((s) => s.addr !== 0 && s.name !== '.note.gnu.build-id');
  const bs = new Map(loaded(b).map((s) => [s.name, s]));
  const as = loaded(a);
  if (as.length !== bs.size) return `${as.length} loaded sections, not ${bs.size}`;
  for (const s of as) {
    const t = bs.get(s.name);
    if (!t || t.addr !== s.addr || t.size !== s.size) return `${s.name} is not at the same address with the same size`;
    if (s.type !== SHT_NOBITS && !a.sectionBytes(s).equals(b.sectionBytes(t))) return `${s.name} differs`;
  }
  return null;
}

/** The table of stripped `forFile` from the .symtab of its unstripped twin `twin`; throws when they are not twins. */
export function symbolTableOf(twin: string, forFile: string, from: string): SymbolTableFile {
  const d = ElfFile.open(twin);
  const f = ElfFile.open(forFile);
  try {
    const why = loadedDifference(d, f);
    if (why) throw new Error(`${twin} is not a twin of ${forFile}: ${why}`);
    const buildId = f.buildId();
    if (!buildId) throw new Error(`${forFile} has no build-id`);
    const symbols: RecoveredSymbol[] = [];
    let file: string | undefined;
    for (const s of d.symbols()) {
      if (s.type === STT_FILE) file = s.name;
      if ((s.type !== STT_FUNC && s.type !== STT_OBJECT) || s.shndx === SHN_UNDEF || s.shndx === SHN_ABS || !(s.bind in BINDS)) continue;
      const bind = BINDS[s.bind];
      symbols.push({ name: s.name, value: s.value, size: s.size, kind: s.type === STT_FUNC ? 'func' : 'object', bind, ...(bind === 'local' && file ? { file } : {}) });
    }
    return { xwalk_symbols: SYMBOL_TABLE_VERSION, build_id: buildId, file: forFile, method: 'rebuild', from, verified: 'loaded sections identical', symbols };
  } finally {
    d.close();
    f.close();
  }
}

/** Writes table into the symbol cache under cacheHome (an XDG_CACHE_HOME of the test's), as xwalk keeps it (0700 folders, a 0600 file). */
export function putInCache(cacheHome: string, table: SymbolTableFile): string {
  const dir = path.join(cacheHome, 'xwalk', 'symbols');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of [cacheHome, path.join(cacheHome, 'xwalk'), dir]) fs.chmodSync(d, 0o700);
  const file = path.join(dir, `${table.build_id}.json`);
  fs.writeFileSync(file, JSON.stringify(table), { mode: 0o600 });
  return file;
}
