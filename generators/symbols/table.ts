/**
 * A symbol table (core/symbol-table.ts) from a debug build's .symtab: its
 * functions and data objects, globals and statics, each static with the
 * source file its STT_FILE entry names; and the counts xgen symbols prints.
 */
import { type ElfFile, SHN_ABS, SHN_UNDEF, STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_FUNC, STT_OBJECT } from '../../core/elf.ts';
import type { RecoveredSymbol, SymbolTableFile } from '../../core/symbol-table.ts';

/** The named, defined functions and objects of debug's .symtab. */
export function symbolsOf(debug: ElfFile): RecoveredSymbol[] {
  const out: RecoveredSymbol[] = [];
  let file: string | undefined;
  for (const s of debug.symtab()) {
    if (s.type === STT_FILE) {
      file = s.name;
      continue;
    }
    if (s.type !== STT_FUNC && s.type !== STT_OBJECT) continue;
    if (s.shndx === SHN_UNDEF || s.shndx === SHN_ABS || s.name === '') continue;
    const bind = s.bind === STB_LOCAL ? 'local' : s.bind === STB_GLOBAL ? 'global' : s.bind === STB_WEAK ? 'weak' : null;
    if (!bind) continue;
    out.push({ name: s.name, value: s.value, size: s.size, kind: s.type === STT_FUNC ? 'func' : 'object', bind, ...(bind === 'local' && file !== undefined ? { file } : {}) });
  }
  return out;
}

/** "812 functions, 143 objects (97 statics)". */
export function describeCounts(t: SymbolTableFile): string {
  const funcs = t.symbols.filter((s) => s.kind === 'func').length;
  const objects = t.symbols.length - funcs;
  const statics = t.symbols.filter((s) => s.bind === 'local').length;
  return `${funcs} functions, ${objects} objects (${statics} statics)`;
}
