/**
 * Symbol lookups for one loaded ELF object: name → runtime address and
 * runtime address → nearest symbol. Runtime address = st_value + bias.
 */
import { STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_FUNC, STT_NOTYPE, STT_OBJECT, SHN_ABS, SHN_UNDEF, type ElfSymbol } from '../../core/elf.ts';

/** How far past a symbol of unknown size (st_size 0) an address may still be attributed to it. */
const UNSIZED_REACH = 64 * 1024;

interface Located {
  name: string;
  start: number;
  size: number;
  rank: number;
}

/** What a walk asks of symbols: one object's (SymbolTable) or a whole process's (ProcessSymbols). */
export interface Symbols {
  address(name: string): number | null;
  symbolize(addr: number): { name: string; offset: number } | null;
  fileStatic(fn: number, name: string): number | null | undefined;
  /** The ELF object mapped at addr (its file name, and runtime − link-time address), or null: no mapping, anonymous memory, or a file that is not an ELF object or cannot be read. */
  objectAt(addr: number): { name: string; bias: number } | null;
  /** Why no symbol table names `name`, when it is worth saying (the executable is stripped and no recovered table was found): the end of the one line a missing global fails with. */
  whyMissing?(name: string): string | null;
}

/**
 * The text of a runtime address that no symbol names, inside ELF object `name` (a file name: `ngx_http_lua_module.so`,
 * `nginx`) loaded with `bias` (runtime − link-time address): `name+0xVADDR`, the address in the file's own link-time
 * address space, what `addr2line -e FILE 0xVADDR`, `objdump --start-address=0xVADDR` and perf's unsymbolised frames
 * take. The one rule for symbol() columns (walk-runtime.ts, xwalk_core.py) and unwound frames (unwind/frame-names.ts).
 */
export function inObject(name: string, addr: number, bias: number): string {
  return `${name}+0x${(addr - bias).toString(16)}`;
}

export class SymbolTable implements Symbols {
  private indexed: { byName: Map<string, ElfSymbol>; sorted: Located[] } | null = null;
  private readonly bias: number;
  private read: ElfSymbol[] | null = null;

  private files: { fileOf: Map<number, number>; statics: Map<string, number> } | null = null;

  /** symbols: the object's, or how to get them at the first lookup (a recovered table is read only when a lookup needs it). */
  constructor(
    private readonly source: ElfSymbol[] | (() => ElfSymbol[]),
    bias: number,
  ) {
    this.bias = bias;
  }

  private get symbols(): ElfSymbol[] {
    const src = this.source;
    return (this.read ??= typeof src === 'function' ? src() : src);
  }

  /** By name, and functions and objects sorted by start (at equal starts, sized and global ones first). */
  private index(): { byName: Map<string, ElfSymbol>; sorted: Located[] } {
    if (this.indexed) return this.indexed;
    const byName = new Map<string, ElfSymbol>();
    const located: Located[] = [];
    for (const sym of this.symbols) {
      if (!isDefinedAddress(sym)) continue;
      const known = byName.get(sym.name);
      if (!known || rank(sym) < rank(known)) byName.set(sym.name, sym);
      if (sym.type === STT_FUNC || sym.type === STT_OBJECT) {
        located.push({ name: sym.name, start: sym.value + this.bias, size: sym.size, rank: rank(sym) });
      }
    }
    return (this.indexed = { byName, sorted: located.sort(byStartThenPreference) });
  }

  /**
   * Runtime address of a function, object or untyped (linker-defined) symbol.
   * When several share the name (file-local statics), a global one wins.
   */
  address(name: string): number | null {
    const sym = this.index().byName.get(name);
    return sym ? sym.value + this.bias : null;
  }

  /**
   * The runtime address of the local object `name` of the C file that
   * defines the (static) function at fn: .symtab lists each file's locals
   * after that file's STT_FILE symbol. null when there is none; undefined
   * when the binary has no .symtab (stripped) and cannot tell.
   */
  fileStatic(fn: number, name: string): number | null | undefined {
    if (!this.files) {
      const fileOf = new Map<number, number>();
      const statics = new Map<string, number>();
      let file = -1;
      for (const sym of this.symbols) {
        if (sym.type === STT_FILE) file++;
        else if (file >= 0 && sym.bind === STB_LOCAL && isDefinedAddress(sym)) {
          if (sym.type === STT_FUNC && !fileOf.has(sym.value)) fileOf.set(sym.value, file);
          if (sym.type === STT_OBJECT) statics.set(`${file} ${sym.name}`, sym.value);
        }
      }
      this.files = { fileOf, statics };
    }
    if (this.files.fileOf.size === 0) return undefined;
    const file = this.files.fileOf.get(fn - this.bias);
    const value = file === undefined ? undefined : this.files.statics.get(`${file} ${name}`);
    return value === undefined ? null : value + this.bias;
  }

  /** One object's table does not know where the object is mapped: ProcessSymbols does. */
  objectAt(_addr: number): null {
    return null;
  }

  /** The function or object whose extent covers addr, or null. */
  symbolize(addr: number): { name: string; offset: number } | null {
    const sorted = this.index().sorted;
    let lo = 0;
    let hi = sorted.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (sorted[mid].start <= addr) {
        found = mid;
        lo = mid + 1;
      } else {
        hi = mid - 1;
      }
    }
    if (found < 0) return null;
    const start = sorted[found].start;
    let first = found;
    while (first > 0 && sorted[first - 1].start === start) first--;
    const best = sorted[first];
    const offset = addr - start;
    const reach = best.size > 0 ? best.size : UNSIZED_REACH;
    return offset < reach ? { name: best.name, offset } : null;
  }
}

function isDefinedAddress(sym: ElfSymbol): boolean {
  if (sym.shndx === SHN_UNDEF || sym.shndx === SHN_ABS) return false;
  return sym.type === STT_FUNC || sym.type === STT_OBJECT || sym.type === STT_NOTYPE;
}

/** Lower is preferred: typed over untyped, then global, weak, local. */
function rank(sym: ElfSymbol): number {
  const typed = sym.type === STT_NOTYPE ? 10 : 0;
  const bind = sym.bind === STB_GLOBAL ? 0 : sym.bind === STB_WEAK ? 1 : sym.bind === STB_LOCAL ? 2 : 3;
  return typed + bind;
}

function byStartThenPreference(a: Located, b: Located): number {
  if (a.start !== b.start) return a.start - b.start;
  if ((a.size > 0) !== (b.size > 0)) return a.size > 0 ? -1 : 1;
  return a.rank - b.rank;
}
