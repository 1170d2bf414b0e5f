/**
 * A target: a live process or a core file, with what every walk needs —
 * the memory source, its readable ranges, the executable's ELF, build-id
 * and symbols at their runtime addresses.
 */
import fs from 'node:fs';
import { CoreSource, truncatedSaysSo } from './core-source.ts';
import { ElfFile } from '../../core/elf.ts';
import { openLiveSource } from './live-source.ts';
import { type MemorySource, TargetGone, UserError } from './memory.ts';
import { exePath, imageStart, loadBias, type Mapping, readProcMaps, withoutDeleted } from './proc-maps.ts';
import { groupByPath, type MainObject, type MappedObject, ProcessSymbols } from './process-symbols.ts';
import type { Range } from './snapshot.ts';
import { objectSymbolsLater, strippedWhy } from './recovered-symbols.ts';
import { SymbolTable } from './symbols.ts';
import { fixedRegisters, LiveRegisters, type RegisterSource } from './live-registers.ts';
import { ProcessIdentity } from './process-identity.ts';

export interface Target {
  readonly kind: 'live' | 'core';
  readonly pid: number | null;
  readonly source: MemorySource;
  readonly exe: ElfFile;
  readonly exeName: string;
  readonly buildId: string | null;
  /** The executable's symbols, then those of every other object mapped. */
  readonly symbols: ProcessSymbols;
  /**
   * The first thread's registers: a core's, those of the thread that dumped it; a live process's, the newest
   * perf-event sample of them, when it is fresh (never a stop).
   */
  readonly registers: RegisterSource;
  /** Readable ranges now (a live process maps and unmaps; a core never changes). */
  ranges(): Range[];
  /** Throws TargetGone unless this is still the process that was opened (not exited, not replaced). */
  checkIdentity(): void;
  close(): void;
}

/** A watch on process pid as it is now: whether that same process still runs (not exited, its pid not reused, no exec); close() lets it go. */
export function watchProcess(pid: number): { same: () => boolean; close: () => void } {
  const identity = new ProcessIdentity(pid);
  return { same: () => identity.same(), close: () => identity.close() };
}

/** Pointers never lead into these, and reading them can fail; leave them out. */
const SPECIAL = new Set(['[vvar]', '[vsyscall]', '[vvar_vclock]']);

function readable(mappings: Mapping[]): Range[] {
  return mappings.filter((m) => m.perms[0] === 'r' && !SPECIAL.has(m.path)).map((m) => ({ start: m.start, end: m.end }));
}

export function openLive(pid: number, prefer?: 'pvr' | 'procmem'): Target {
  if (!Number.isSafeInteger(pid) || pid <= 0) throw new UserError(`--pid needs a process id, not ${pid}`);
  if (!fs.existsSync(`/proc/${pid}`)) throw new TargetGone(`no process with pid ${pid}`);
  const identity = new ProcessIdentity(pid);
  try {
    return liveTarget(pid, identity, prefer);
  } catch (err) {
    identity.close();
    throw err;
  }
}

function liveTarget(pid: number, identity: ProcessIdentity, prefer?: 'pvr' | 'procmem'): Target {
  const mappings = readProcMaps(pid);
  const name = exePath(pid);
  // /proc/PID/exe reaches the file the process runs even if it was replaced on disk.
  const exe = ElfFile.open(`/proc/${pid}/exe`);
  const bias = loadBias(mappings, name, exe);
  const image = imageStart(exe, bias);
  if (image !== null) identity.watchMemory(image);
  const ranges = readable(mappings);
  const source = openLiveSource(pid, ranges.length ? ranges[0].start : 0, prefer);
  const registers = new LiveRegisters(pid);
  return {
    kind: 'live',
    pid,
    source,
    exe,
    exeName: name,
    buildId: exe.buildId(),
    symbols: processSymbols(exe, name ?? exe.path, bias, liveObjects(pid, mappings, name), mainObject(mappings, name, bias)),
    registers,
    ranges: () => readable(readProcMaps(pid)),
    checkIdentity: () => identity.check(),
    close: () => {
      registers.close();
      source.close();
      exe.close();
      identity.close();
    },
  };
}

const hexOf = (n: number): string => n.toString(16);

/**
 * The process's symbols: the executable's own, with a recovered table's names when it is stripped (looked up at
 * the first lookup, recovered-symbols.ts), then every other object's; a missing global names the stripped
 * executable and the command that recovers its names.
 */
function processSymbols(exe: ElfFile, exePathName: string, bias: number, others: MappedObject[], main: MainObject | null): ProcessSymbols {
  const mine = objectSymbolsLater(exe);
  return new ProcessSymbols(new SymbolTable(() => mine().symbols, bias), others, main, () => strippedWhy(withoutDeleted(exePathName), mine()));
}

/**
 * The live process's mapped files besides its executable, each opened through /proc/PID/map_files: the
 * file the process maps, even if another has taken its path since. Mappings are those listed at open.
 */
function liveObjects(pid: number, mappings: Mapping[], exe: string): MappedObject[] {
  const objects = groupByPath(mappings, (p) => p.startsWith('/') && withoutDeleted(p) !== withoutDeleted(exe));
  return objects.flatMap((o) => {
    const open = liveOpener(pid, o);
    return open ? [{ path: withoutDeleted(o.path), start: o.start, end: o.end, mappings: o.mappings, open }] : [];
  });
}

/**
 * How to open one file a live process maps (its mappings, grouped by path): through /proc/PID/map_files of the
 * mapping of its first page, with its load bias; null when its first page is not mapped.
 */
export function liveOpener(pid: number, o: { path: string; mappings: Mapping[] }): (() => { elf: ElfFile; bias: number }) | null {
  const header = o.mappings.find((m) => m.offset === 0);
  if (!header) return null;
  return () => {
    const elf = ElfFile.open(`/proc/${pid}/map_files/${hexOf(header.start)}-${hexOf(header.end)}`);
    try {
      return { elf, bias: loadBias(o.mappings, o.path, elf) };
    } catch (err) {
      elf.close();
      throw err;
    }
  };
}

/** How to open the file mapped from NT_FILE path in a core, if the core vouches for it (CoreSource.openMapped), with its load bias. */
export function coreOpener(core: CoreSource, path: string): () => { elf: ElfFile; bias: number } {
  return () => {
    const elf = core.openMapped(path);
    const bias = core.loadBiasOf(path, elf);
    if (bias === null) {
      elf.close();
      throw new UserError(`${core.path}: cannot tell where ${path} was loaded`);
    }
    return { elf, bias };
  };
}

/** The core's mapped files besides its executable, each read only if the core vouches for it (CoreSource.openMapped). */
function coreObjects(core: CoreSource): MappedObject[] {
  const objects = groupByPath(core.fileMappings, (p) => p.startsWith('/') && p !== core.exeMappedPath);
  return objects.flatMap((o) => {
    if (!o.mappings.some((m) => m.fileOffset === 0)) return [];
    return [{ path: o.path, start: o.start, end: o.end, mappings: o.mappings, open: coreOpener(core, o.path) }];
  });
}

/** Where the executable `exe` (a mapped path, " (deleted)" or not) is mapped; null when it is not. */
function mainObject(mappings: { start: number; end: number; path: string }[], exe: string | null, bias: number): MainObject | null {
  if (exe === null) return null;
  const own = mappings.filter((m) => withoutDeleted(m.path) === withoutDeleted(exe));
  return own.length > 0 ? { path: withoutDeleted(exe), mappings: own, bias } : null;
}

/** The executable the core names, if it is the one that was mapped (see CoreSource.openMapped). */
function mappedExecutable(core: CoreSource, corePath: string): ElfFile {
  if (!core.exeMappedPath) throw new UserError(`${corePath}: does not name its executable: pass --exe BINARY`);
  try {
    return core.openMapped(core.exeMappedPath);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    throw new UserError(`${corePath}: cannot use the executable it names: ${err.message}: pass --exe with the binary that dumped it`);
  }
}

export function openCore(corePath: string, exePathArg?: string): Target {
  const core = CoreSource.open(corePath, exePathArg);
  let exe: ElfFile | undefined;
  try {
    return truncatedSaysSo(corePath, core.truncated, () => {
      exe = exePathArg ? ElfFile.open(exePathArg) : mappedExecutable(core, corePath);
      return coreTarget(core, exe);
    });
  } catch (err) {
    core.close();
    exe?.close();
    throw err;
  }
}

function coreTarget(core: CoreSource, exe: ElfFile): Target {
  const exeFile = exe.path;
  const ranges = readable(core.mappings());
  return {
    kind: 'core',
    pid: core.pid,
    source: core,
    exe,
    exeName: exeFile,
    buildId: core.exeBuildId ?? exe.buildId(),
    symbols: processSymbols(exe, core.exeMappedPath ?? exe.path, core.loadBias(exe), coreObjects(core), mainObject(core.fileMappings, core.exeMappedPath, core.loadBias(exe))),
    registers: fixedRegisters(core.registers),
    ranges: () => ranges,
    checkIdentity: () => {},
    close: () => {
      core.close();
      exe.close();
    },
  };
}
