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
import { SHT_SYMTAB, STT_FILE, type ElfFile, type ElfSymbol } from '../../core/elf.ts';
import { toElfSymbols } from '../../core/symbol-table.ts';
import { findTable, type FoundTable, type ObjectShape, shapeOf } from '../../generators/symbols/cache.ts';

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

/**
 * The first valid recovered table for the object (its build-id, its loaded segments), or null. A file that is not a
 * valid table, names another build-id or places a symbol outside the object is passed over with one line naming it.
 */
export function findRecoveredTable(o: ObjectShape): FoundTable | null {
  return findTable(o, warnOnce);
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
  const shape = shapeOf(elf);
  const buildId = shape.buildId;
  let done: ObjectSymbols | undefined;
  return () => {
    if (done) return done;
    const recovered = stripped && buildId ? findRecoveredTable(shape) : null;
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
