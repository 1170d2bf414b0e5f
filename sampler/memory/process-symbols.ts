/**
 * The symbols of a whole process: its executable first, then every other
 * ELF object it has mapped (shared libraries, modules loaded with dlopen),
 * in address order, the order the dynamic linker searches. A library's
 * table is read only when a lookup needs it: a name the executable
 * defines never opens a library, and an address is looked up only in the
 * object whose mappings hold it.
 *
 * Each object is opened the way its target can vouch for: a live process's
 * through /proc/PID/map_files (the very file mapped, even if replaced on
 * disk since), a core's through CoreSource.openMapped (the build-id in the
 * core must match). An object that cannot be opened so has no symbols, and
 * why is kept (objects() reports it).
 */
import { type ElfFile, NotElf } from '../../core/elf.ts';
import { findMapping } from './proc-maps.ts';
import { objectSymbols } from './recovered-symbols.ts';
import { type Symbols, SymbolTable } from './symbols.ts';

/** Where one object is mapped, and how to open it with the runtime-minus-link-time bias of its addresses. */
export interface MappedObject {
  path: string;
  start: number;
  end: number;
  /** The pages the file itself is mapped at (an object's span may hold other mappings: another file's, anonymous ones). */
  mappings: { start: number; end: number }[];
  open(): { elf: ElfFile; bias: number };
}

/** One object as objects() reports it. */
export interface ObjectInfo {
  path: string;
  start: number;
  end: number;
  buildId: string | null;
  /** Why its symbols are not read, when they are not. */
  error?: string;
}

/** The pages the executable itself is mapped at, and its load bias. */
export interface MainObject {
  path: string;
  mappings: { start: number; end: number }[];
  bias: number;
}

interface Loaded {
  object: MappedObject;
  start: number;
  end: number;
  notElf?: boolean;
  table?: SymbolTable;
  bias?: number;
  buildId?: string | null;
  error?: string;
}

const baseName = (path: string): string => path.slice(path.lastIndexOf('/') + 1);

export class ProcessSymbols implements Symbols {
  private readonly others: Loaded[];
  /** Every mapping of a file, sorted, with the object it maps (null: the executable). */
  private readonly pages: { start: number; end: number; o: Loaded | null }[];

  constructor(
    private readonly main: SymbolTable,
    others: MappedObject[],
    private readonly mainObject: MainObject | null = null,
    /** Why the executable names no global a walk needs (stripped, no recovered table): see recovered-symbols.ts strippedWhy. */
    private readonly mainWhy: () => string | null = () => null,
  ) {
    this.others = [...others].sort((a, b) => a.start - b.start).map((object) => ({ object, start: object.start, end: object.end }));
    this.pages = [...this.others.flatMap((o) => o.object.mappings.map((m) => ({ start: m.start, end: m.end, o }))), ...(mainObject?.mappings ?? []).map((m) => ({ start: m.start, end: m.end, o: null }))].sort(
      (a, b) => a.start - b.start,
    );
  }

  address(name: string): number | null {
    const own = this.main.address(name);
    if (own !== null) return own;
    for (const o of this.others) {
      const a = this.load(o)?.address(name) ?? null;
      if (a !== null) return a;
    }
    return null;
  }

  whyMissing(_name: string): string | null {
    return this.mainWhy();
  }

  symbolize(addr: number): { name: string; offset: number } | null {
    const o = this.holding(addr);
    return o ? (this.load(o)?.symbolize(addr) ?? null) : this.main.symbolize(addr);
  }

  fileStatic(fn: number, name: string): number | null | undefined {
    const o = this.holding(fn);
    return o ? this.load(o)?.fileStatic(fn, name) : this.main.fileStatic(fn, name);
  }

  /** The object a file mapping at addr belongs to (a page the file itself is mapped at: not a gap in its span). */
  objectAt(addr: number): { name: string; bias: number } | null {
    const page = findMapping(this.pages, addr);
    if (!page) return null;
    const o = page.o;
    if (o === null) return { name: baseName(this.mainObject!.path), bias: this.mainObject!.bias };
    return this.load(o) && o.bias !== undefined ? { name: baseName(o.object.path), bias: o.bias } : null;
  }

  /** The ELF objects besides the executable whose path `which` accepts (all by default), each opened to read its build-id (and symbols) if it was not yet. */
  objects(which: (path: string) => boolean = () => true): ObjectInfo[] {
    const chosen = this.others.filter((o) => which(o.object.path));
    for (const o of chosen) this.load(o);
    return chosen
      .filter((o) => !o.notElf)
      .map((o) => {
        const { path, start, end } = o.object;
        return { path, start, end, buildId: o.buildId ?? null, ...(o.error ? { error: o.error } : {}) };
      });
  }

  /** The object mapped at addr, else the one whose span holds it (spans may overlap: /dev/zero mapped far apart). */
  private holding(addr: number): Loaded | undefined {
    const page = findMapping(this.pages, addr);
    if (page) return page.o ?? undefined;
    return this.others.find((o) => o.start <= addr && addr < o.end);
  }

  private load(o: Loaded): SymbolTable | undefined {
    if (o.table || o.error !== undefined || o.notElf) return o.table;
    let elf: ElfFile | undefined;
    try {
      const opened = o.object.open();
      elf = opened.elf;
      o.buildId = elf.buildId();
      o.bias = opened.bias;
      // A stripped object's names come with those of its recovered symbol table (recovered-symbols.ts), if one is found.
      o.table = new SymbolTable(objectSymbols(elf).symbols, opened.bias);
    } catch (err) {
      if (err instanceof NotElf) o.notElf = true;
      else o.error = (err as Error).message;
    } finally {
      elf?.close();
    }
    return o.table;
  }
}

/** Mappings of files grouped into objects: one per path, from its lowest mapping to its highest. */
export function groupByPath<M extends { start: number; end: number; path: string }>(mappings: M[], keep: (path: string) => boolean): { path: string; start: number; end: number; mappings: M[] }[] {
  const byPath = new Map<string, { path: string; start: number; end: number; mappings: M[] }>();
  for (const m of mappings) {
    if (!keep(m.path)) continue;
    const o = byPath.get(m.path);
    if (!o) byPath.set(m.path, { path: m.path, start: m.start, end: m.end, mappings: [m] });
    else {
      o.start = Math.min(o.start, m.start);
      o.end = Math.max(o.end, m.end);
      o.mappings.push(m);
    }
  }
  return [...byPath.values()];
}
