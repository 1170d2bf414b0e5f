/**
 * Address → the mapped object that holds it, with its call frame tables
 * and symbols. Objects are opened the way sampler/memory/target.ts opens them for
 * symbols (a live process's through /proc/PID/map_files, a core's through
 * CoreSource.openMapped); what is parsed from a file (its CFI tables, its
 * symbols, the rows already computed) is kept per build-id (per path,
 * device and inode when it has none) and shared by every process.
 */
import fs from 'node:fs';
import { untrusted } from '../../../core/trust.ts';
import { ElfFile, PF_X, PT_LOAD, SHT_SYMTAB, STT_FUNC, type ElfSymbol } from '../../../core/elf.ts';
import type { CoreSource } from '../core-source.ts';
import { findMapping, readProcMaps, withoutDeleted } from '../proc-maps.ts';
import { ProcMemSource } from '../live-source.ts';
import { coreOpener, liveOpener } from '../target.ts';
import { groupByPath } from '../process-symbols.ts';
import { findRecoveredTable, recoveredSymbols } from '../recovered-symbols.ts';
import { type ObjectShape, shapeOf } from '../../../generators/symbols/cache.ts';
import { SymbolTable } from '../symbols.ts';
import { rowAt, type Row } from './cfi.ts';
import { CfiError, CfiTable, ehFrameOf, sectionBytes } from '../../../core/eh-frame.ts';

/** Rows kept per object before the cache starts over (a profile touches a few thousand pcs). */
const MAX_ROWS = 1 << 16;
/** Parsed objects kept across processes. */
const MAX_CACHED = 256;

export interface UnwindObject {
  path: string;
  /** basename */
  name: string;
  buildId: string | null;
  /** runtime address − link-time address */
  bias: number;
  /** The CFI row holding at a runtime pc (already pc-1 for a return address), or null: no FDE covers it, or its CFI is malformed. */
  row(pc: number): Row | null;
  /** The function (from .symtab, else .dynsym) holding a runtime pc, with the offset into it. */
  symbol(pc: number): { name: string; offset: number } | null;
}

/** What one file holds for unwinding, at link-time addresses: shared by every mapping of that file. */
class ObjectData {
  private readonly rows = new Map<number, Row | null>();
  private symbolTable: SymbolTable | null = null;

  constructor(
    private readonly eh: CfiTable | null,
    private readonly debug: CfiTable | null,
    private readonly readSymbols: () => SymbolTable,
  ) {}

  static read(elf: ElfFile, buildId: string | null): ObjectData {
    const eh = ehFrameOf(elf);
    const debugSection = elf.section('.debug_frame');
    const debug = debugSection && debugSection.size > 0 ? new CfiTable('debug', sectionBytes(elf, debugSection), 0) : null;
    // The object's symbols are read now (the file may be gone later) but indexed at the first name asked for;
    // a separate debug file's (a system package's, which stays) only then.
    const syms = elf.symbols();
    const stripped = !elf.sections.some((x) => x.type === SHT_SYMTAB);
    const shape = shapeOf(elf);
    return new ObjectData(eh, debug, () => new SymbolTable([...syms, ...(stripped ? strippedNames(shape, syms) : [])], 0));
  }

  row(pc: number): Row | null {
    const known = this.rows.get(pc);
    if (known !== undefined) return known;
    if (this.rows.size >= MAX_ROWS) this.rows.clear();
    const row = this.compute(this.eh, pc) ?? this.compute(this.debug, pc);
    this.rows.set(pc, row);
    return row;
  }

  private compute(table: CfiTable | null, pc: number): Row | null {
    if (!table) return null;
    const fde = table.find(pc);
    if (!fde) return null;
    try {
      return rowAt(table, fde, pc);
    } catch (err) {
      if (err instanceof CfiError) return null;
      throw err;
    }
  }

  symbols(): SymbolTable {
    return (this.symbolTable ??= this.readSymbols());
  }
}

/** Where distributions install the .symtab a stripped object lost (Debian's -dbg and -dbgsym packages), by build-id. */
export const DEBUG_BUILD_ID_DIR = '/usr/lib/debug/.build-id';

/**
 * The .symtab of a stripped object's separate debug file (as gdb finds it: by build-id), so static functions get
 * their names; [] when there is none. Read only when root owns it and no one else may write it (a system
 * package's file), and when it carries the same build-id.
 */
function debugFileSymbols(buildId: string | null): ElfSymbol[] {
  if (!buildId || buildId.length < 4) return [];
  const file = `${DEBUG_BUILD_ID_DIR}/${buildId.slice(0, 2)}/${buildId.slice(2)}.debug`;
  let elf: ElfFile | undefined;
  try {
    elf = ElfFile.open(file);
    if (untrusted(elf.stat, file, [0]) !== null || elf.buildId() !== buildId) return [];
    return elf.symbols().filter((sym) => sym.type === STT_FUNC);
  } catch {
    return [];
  } finally {
    elf?.close();
  }
}

/**
 * The names a stripped object lost: its separate debug file's functions, else those of a recovered symbol table
 * (recovered-symbols.ts) that it does not define itself.
 */
function strippedNames(shape: ObjectShape, own: ElfSymbol[]): ElfSymbol[] {
  const debug = debugFileSymbols(shape.buildId);
  if (debug.length > 0 || !shape.buildId) return debug;
  const found = findRecoveredTable(shape);
  return found ? recoveredSymbols(found, own) : [];
}

const cache = new Map<string, ObjectData>();

/** The parsed data of elf, from the cache when the same file (build-id, else path+device+inode) was read before. */
function dataOf(elf: ElfFile, buildId: string | null, path: string): ObjectData {
  const key = buildId ? `id:${buildId}` : `file:${path}:${elf.stat.dev}:${elf.stat.ino}:${elf.stat.mtimeMs}`;
  let data = cache.get(key);
  if (data) {
    cache.delete(key); // most recently used last
  } else {
    if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value!);
    data = ObjectData.read(elf, buildId);
  }
  cache.set(key, data);
  return data;
}

class MappedObject implements UnwindObject {
  readonly name: string;

  constructor(
    readonly path: string,
    readonly buildId: string | null,
    readonly bias: number,
    private readonly data: ObjectData,
  ) {
    this.name = path.slice(path.lastIndexOf('/') + 1);
  }

  row(pc: number): Row | null {
    const r = this.data.row(pc - this.bias);
    return r;
  }

  symbol(pc: number): { name: string; offset: number } | null {
    return this.data.symbols().symbolize(pc - this.bias);
  }
}

/** One file mapped into the process: the ranges it is mapped executable at, and how to open it. */
export interface FileObject {
  path: string;
  ranges: { start: number; end: number }[];
  open(): { elf: ElfFile; bias: number };
}

/** What a process has mapped executable: file objects, and every executable range (anonymous JIT code too). */
export interface ExecutableMap {
  files: FileObject[];
  executable: { start: number; end: number }[];
}

interface Slot {
  start: number;
  end: number;
  file: FileObject;
  /** the ranges of one file share one entry of ProcessObjects.opened */
  key: string;
}

/** What the unwinder asks of a process's objects (ProcessObjects; a fake in unit tests). */
export interface ObjectLookup {
  objectAt(pc: number): UnwindObject | null;
  isExecutable(pc: number): boolean;
  refresh(): void;
}

export class ProcessObjects implements ObjectLookup {
  private slots: Slot[] = [];
  private executableRanges: { start: number; end: number }[] = [];
  /** Opened objects (or null: could not be), by path and the start of their first range. */
  private readonly opened = new Map<string, UnwindObject | null>();
  /** Why objects could not be opened, by path. */
  readonly errors = new Map<string, string>();

  constructor(private readonly load: () => ExecutableMap) {
    this.refresh();
  }

  /** A live process: /proc/PID/maps, each object opened through /proc/PID/map_files. */
  static live(pid: number): ProcessObjects {
    return new ProcessObjects(() => liveMap(pid));
  }

  /** A core: its NT_FILE mappings and executable PT_LOADs, each file opened if the core vouches for it. */
  static core(core: CoreSource): ProcessObjects {
    return new ProcessObjects(() => coreMap(core));
  }

  refresh(): void {
    const map = this.load();
    this.slots = map.files.flatMap((file) => file.ranges.map((r) => ({ start: r.start, end: r.end, file, key: `${file.path}@${file.ranges[0].start}` }))).sort((a, b) => a.start - b.start);
    this.executableRanges = [...map.executable].sort((a, b) => a.start - b.start);
  }

  /** The object mapped executable at pc, or null (anonymous or JIT code, no mapping, or a file that cannot be read). */
  objectAt(pc: number): UnwindObject | null {
    const slot = findMapping(this.slots, pc);
    if (!slot) return null;
    let o = this.opened.get(slot.key);
    if (o === undefined) {
      o = this.open(slot.file);
      this.opened.set(slot.key, o);
    }
    return o;
  }

  /** Whether pc lies in an executable mapping (a return address anywhere else is garbage). */
  isExecutable(pc: number): boolean {
    return findMapping(this.executableRanges, pc) !== null;
  }

  private open(file: FileObject): UnwindObject | null {
    let elf: ElfFile | undefined;
    try {
      const opened = file.open();
      elf = opened.elf;
      const buildId = elf.buildId();
      return new MappedObject(file.path, buildId, opened.bias, dataOf(elf, buildId, file.path));
    } catch (err) {
      this.errors.set(file.path, (err as Error).message);
      return null;
    } finally {
      elf?.close();
    }
  }
}

function liveMap(pid: number): ExecutableMap {
  const mappings = readProcMaps(pid);
  const executable = mappings.filter((m) => m.perms[2] === 'x');
  const files = groupByPath(mappings, (p) => p.startsWith('/')).flatMap((o): FileObject[] => {
    const ranges = o.mappings.filter((m) => m.perms[2] === 'x');
    const open = liveOpener(pid, o);
    return ranges.length > 0 && open ? [{ path: withoutDeleted(o.path), ranges, open }] : [];
  });
  const vdso = mappings.find((m) => m.path === '[vdso]');
  if (vdso) files.push(imageObject('[vdso]', vdso, (out) => readProcMem(pid, vdso.start, out)));
  return { files, executable };
}

/** Bytes of a live process's memory, read once (the vDSO's image): through the sampler's own reader of /proc/PID/mem. */
function readProcMem(pid: number, addr: number, out: Buffer): number {
  const mem = new ProcMemSource(pid);
  try {
    return mem.readInto(addr, out);
  } finally {
    mem.close();
  }
}

/** Larger than any vDSO: an image past it is not read. */
const MAX_IMAGE = 1 << 20;

/**
 * An ELF object mapped with no file behind it (the vDSO), opened from the process's memory: its CFI and
 * .dynsym are in the image. Its link-time addresses start at 0 (the kernel links it so); the bias is where it is.
 */
function imageObject(name: string, m: { start: number; end: number }, read: (out: Buffer) => number): FileObject {
  return {
    path: name,
    ranges: [{ start: m.start, end: m.end }],
    open: () => {
      if (m.end - m.start > MAX_IMAGE) throw new CfiError(`${name}: ${m.end - m.start} bytes, larger than a vDSO`);
      const bytes = Buffer.alloc(m.end - m.start);
      const got = read(bytes);
      const elf = ElfFile.fromImage(name, bytes.subarray(0, got));
      const first = elf.segments.find((s) => s.type === PT_LOAD);
      return { elf, bias: m.start - pageDown(first ? first.vaddr : 0) };
    },
  };
}

/**
 * gcore leaves unmodified text out of the core (no PT_LOAD at all), so a core's executable ranges are its
 * files' mappings of their PF_X segments (by file offset), plus the executable PT_LOADs it has.
 */
function coreMap(core: CoreSource): ExecutableMap {
  const executable = core.mappings().filter((m) => m.perms[2] === 'x').map((m) => ({ start: m.start, end: m.end }));
  const files = groupByPath(core.fileMappings, (p) => p.startsWith('/')).flatMap((o): FileObject[] => {
    if (!o.mappings.some((m) => m.fileOffset === 0)) return [];
    const open = coreOpener(core, o.path);
    let text: { offset: number; end: number }[];
    try {
      const { elf } = open();
      text = elf.segments.filter((s) => s.type === PT_LOAD && (s.flags & PF_X) !== 0).map((s) => ({ offset: pageDown(s.offset), end: s.offset + s.filesz }));
      elf.close();
    } catch {
      return [];
    }
    const ranges = o.mappings.filter((m) => text.some((t) => m.fileOffset >= t.offset && m.fileOffset < t.end)).map((m) => ({ start: m.start, end: m.end }));
    executable.push(...ranges);
    return ranges.length > 0 ? [{ path: o.path, ranges, open }] : [];
  });
  // The vDSO: an executable PT_LOAD of no file that holds an ELF image (the core has its bytes; gdb reads it so too).
  for (const m of core.mappings()) {
    if (m.perms[2] !== 'x' || m.path !== '') continue;
    const magic = Buffer.alloc(4);
    if (core.readInto(m.start, magic) === 4 && magic.readUInt32BE(0) === 0x7f454c46) {
      files.push(imageObject('[vdso]', m, (out) => core.readInto(m.start, out)));
    }
  }
  return { files, executable };
}

const pageDown = (n: number): number => n - (n % 4096);
