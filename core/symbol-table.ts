/**
 * A recovered symbol table: the names of a stripped ELF object's functions
 * and data (globals and statics), made for one build by `xgen symbols --for
 * FILE` from a debug build of its source (an exact twin, or the nearest
 * release matched function by function), a -dbgsym package or debuginfod.
 * It is kept as JSON by the build-id of the object it names (the user's
 * cache, or a pack's `symbols/` folder) and used only for that build-id.
 * Values are the object's own link-time addresses (as in its .symtab).
 */
import { STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_FUNC, STT_OBJECT, type ElfSymbol } from './elf.ts';

/** The format's version: a reader refuses any other. */
export const SYMBOL_TABLE_VERSION = 1;

/** Bounds a table is checked against before it is used (a table is input: from a cache, a pack, a download). */
const MAX_SYMBOLS = 2_000_000;
const MAX_NAME = 4096;

export type SymbolMethod = 'rebuild' | 'matched' | 'dbgsym' | 'debuginfod';

export interface RecoveredSymbol {
  name: string;
  /** Link-time virtual address. */
  value: number;
  size: number;
  kind: 'func' | 'object';
  bind: 'global' | 'local' | 'weak';
  /** The source file a local belongs to (its STT_FILE in the debug build): statics of one file are told apart by it. */
  file?: string;
}

export interface SymbolTableFile {
  xwalk_symbols: typeof SYMBOL_TABLE_VERSION;
  /** The build-id (hex) of the object the table names: the only build it is used for. */
  build_id: string;
  /** The path it was made for (informative). */
  file: string;
  package?: string;
  version?: string;
  method: SymbolMethod;
  /** Where the names came from, in words: "memcached 1.6.18-1+deb12u1 rebuilt with dpkg-buildpackage". */
  from: string;
  /** How it was verified against the object, in words: "build-id equal", "3 loaded segments identical", "812 of 845 functions matched". */
  verified: string;
  /** For method matched: how many of the debug build's functions and objects were placed, of how many. */
  matched?: number;
  total?: number;
  symbols: RecoveredSymbol[];
}

const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Why t is not a symbol table this reader can use, or null. */
export function symbolTableProblem(t: unknown): string | null {
  if (typeof t !== 'object' || t === null || Array.isArray(t)) return 'not a JSON object';
  const o = t as Record<string, unknown>;
  if (o.xwalk_symbols !== SYMBOL_TABLE_VERSION) return `xwalk_symbols is ${JSON.stringify(o.xwalk_symbols)}, this reader knows ${SYMBOL_TABLE_VERSION}`;
  if (typeof o.build_id !== 'string' || !/^[0-9a-f]{2,128}$/.test(o.build_id)) return 'build_id is not a hex string';
  for (const k of ['file', 'from', 'verified'] as const) if (typeof o[k] !== 'string') return `${k} is not a string`;
  if (!['rebuild', 'matched', 'dbgsym', 'debuginfod'].includes(o.method as string)) return `method ${JSON.stringify(o.method)} is unknown`;
  for (const k of ['matched', 'total'] as const) if (o[k] !== undefined && !isInt(o[k])) return `${k} is not a count`;
  if (!Array.isArray(o.symbols)) return 'symbols is not a list';
  if (o.symbols.length > MAX_SYMBOLS) return `${o.symbols.length} symbols (at most ${MAX_SYMBOLS})`;
  for (let i = 0; i < o.symbols.length; i++) {
    const why = symbolProblem(o.symbols[i]);
    if (why) return `symbols[${i}]: ${why}`;
  }
  return null;
}

function symbolProblem(s: unknown): string | null {
  if (typeof s !== 'object' || s === null) return 'not an object';
  const o = s as Record<string, unknown>;
  if (typeof o.name !== 'string' || o.name === '' || o.name.length > MAX_NAME || /[\0-\x1f]/.test(o.name)) return 'name is not a printable string';
  if (!isInt(o.value) || !isInt(o.size)) return `${o.name}: value and size must be non-negative integers`;
  if (o.kind !== 'func' && o.kind !== 'object') return `${o.name}: kind is not func or object`;
  if (o.bind !== 'global' && o.bind !== 'local' && o.bind !== 'weak') return `${o.name}: bind is not global, local or weak`;
  if (o.file !== undefined && (typeof o.file !== 'string' || o.file.length > MAX_NAME)) return `${o.name}: file is not a string`;
  return null;
}

const BINDS = { global: STB_GLOBAL, local: STB_LOCAL, weak: STB_WEAK } as const;

/** A defined section index for symbols that name an address (any but SHN_UNDEF and SHN_ABS). */
const SHN_SOME = 1;

/**
 * The table as .symtab entries, each file's locals after an STT_FILE entry of
 * their file (as a linker writes them): what SymbolTable (sampler/memory/symbols.ts)
 * reads, file statics included.
 */
export function toElfSymbols(t: SymbolTableFile): ElfSymbol[] {
  const out: ElfSymbol[] = [];
  const byFile = new Map<string, RecoveredSymbol[]>();
  for (const s of t.symbols) {
    if (s.bind === 'local' && s.file !== undefined) {
      const list = byFile.get(s.file) ?? [];
      list.push(s);
      byFile.set(s.file, list);
    } else out.push(elfSymbol(s));
  }
  for (const [file, list] of byFile) {
    out.push({ name: file, value: 0, size: 0, type: STT_FILE, bind: STB_LOCAL, shndx: 0xfff1 });
    for (const s of list) out.push(elfSymbol(s));
  }
  return out;
}

function elfSymbol(s: RecoveredSymbol): ElfSymbol {
  return { name: s.name, value: s.value, size: s.size, type: s.kind === 'func' ? STT_FUNC : STT_OBJECT, bind: BINDS[s.bind], shndx: SHN_SOME };
}
