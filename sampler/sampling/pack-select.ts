/**
 * Which pack and which layout serve a binary: by build-id first (a
 * committed layout or one cached earlier), else by the version string the
 * pack's schema looks for, deriving the layout from the binary's own DWARF
 * when it has some. An unknown stripped build is a clear error.
 */
import fs from 'node:fs';
import path from 'node:path';
import { extractLayout, knownLayouts, layoutByBuildId, type LayoutFile, packLayouts } from '../../generators/layout.ts';
import { chooseLayout, type LayoutCandidate, type ProcessFacts } from '../../generators/layout-choice.ts';
import { LayoutCache } from '../../generators/layout-cache.ts';
import { layoutMisfit } from '../../generators/layout-valid.ts';
import type { PackIR } from '../../generators/ir.ts';
import { packDir, packNames } from '../../core/packs.ts';
import { loadBinarySection } from '../../generators/schema.ts';
import { loadSchemaCached } from '../../printers/checked-schema.ts';
import { SchemaError } from '../../generators/ir.ts';
import { BoundLayout, type ObjectLayout } from './bound-layout.ts';
import type { ObjectInfo } from '../memory/process-symbols.ts';
import { ElfFile, SHN_UNDEF } from '../../core/elf.ts';
import { debuginfodUrls } from '../../generators/symbols/debuginfod.ts';
import { packageOf } from '../../generators/symbols/package.ts';
import { shapeOf } from '../../generators/symbols/cache.ts';
import { findRecoveredTable } from '../memory/recovered-symbols.ts';
import { recoverSymbols } from '../../generators/symbols/recover.ts';
import { describeCounts } from '../../generators/symbols/table.ts';
import { exePath, readProcMaps } from '../memory/proc-maps.ts';
import { TargetGone, UserError } from '../memory/memory.ts';
import { signatureOf, versionOf } from '../../core/identity.ts';

export interface Selected {
  pack: PackIR;
  layout: BoundLayout;
  release: string;
  /** Which builds of the pack's objects the layout was joined with (objectsKey): another process of the same executable may map others. */
  objects: string;
}

/** Every pack's name: XWALK_PACKS's folders first, then the built-in packs. */
export function listPacks(): string[] {
  return packNames();
}

function schemaFile(name: string): string {
  const dir = packDir(name);
  if (!dir) throw new UserError(`no pack named ${name} (packs: ${listPacks().join(', ') || 'none'})`);
  return path.join(dir, 'schema.yaml');
}

/** The pack's IR; with `wants` (views or flame graphs), only those views when the pack has them all (schema-cache.ts). */
export function loadPack(name: string, wants?: string[]): PackIR {
  return loadSchemaCached(schemaFile(name), undefined, wants);
}

export interface SelectOptions {
  pack?: string;
  /** The shared objects the process maps whose path `which` accepts: for the layouts of the pack's objects (objects:). */
  mapped?: (which: (path: string) => boolean) => ObjectInfo[];
  /** Called before a layout is derived from DWARF (it takes a few seconds). */
  onDerive?: (message: string) => void;
  /** The views (or flame graphs) the command reads: the pack chosen holds only those, when it has them all. */
  wants?: string[];
}

/**
 * The layout for this build, in this order: the one committed (or cached
 * earlier) for its build-id; else, when the binary carries DWARF, the one
 * derived from it (cached); else one made for another build of the same
 * release and signature; else a clear error. A build of ours with debug
 * info is served by its own DWARF even when its build-id moved with the
 * machine's package versions, never silently by a look-alike.
 */
export async function selectPack(exe: ElfFile, exeName: string, buildId: string | null, opts: SelectOptions): Promise<Selected> {
  const names = opts.pack ? [opts.pack] : listPacks();
  const named = opts.pack ? loadPack(opts.pack, opts.wants) : null; // a pack named on the command line must load, or say why
  const cache = new LayoutCache(opts.onDerive);
  // What is wrong with a pack's files is said when that pack is the one: another's cannot break this run.
  const problems = new Map<string, Error>();
  const tolerant = <T>(name: string, f: () => T): T | null => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof UserError || err instanceof SchemaError)) throw err;
      if (!problems.has(name)) problems.set(name, err);
      return null;
    }
  };
  const chosen = (name: string): PackIR => {
    const problem = problems.get(name);
    if (problem) throw problem;
    return named ?? loadPack(name, opts.wants); // with --pack, the one name is that pack
  };
  // A layout made before the schema read more (committed, or cached by an earlier run) serves no longer: a build
  // with debug info is then served by its own DWARF, and stderr says why; a stripped one by a layout of the same
  // release and signature, else it is refused, saying why (generators/layout-choice.ts).
  let stale: string | null = null;
  const unlessStale = (f: () => Selected): Selected | null => {
    try {
      return f();
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      stale ??= err.message;
      return null;
    }
  };
  if (buildId) {
    for (const name of names) {
      const l = tolerant(name, () => layoutByBuildId(name, buildId));
      const s = l && unlessStale(() => bound(chosen(name), l, `${name} ${l.release} (${l.build_id.slice(0, 12)})`, opts));
      if (s) return s;
    }
    for (const name of names) {
      const misfit = (x: LayoutFile) => {
        const pack = tolerant(name, () => chosen(name));
        return pack && layoutMisfit(pack, x);
      };
      const l = cache.get(name, buildId, exe.contentHash(), misfit);
      const s = l && unlessStale(() => bound(chosen(name), l, `${name} ${l.release} (${l.build_id.slice(0, 12)}, derived from DWARF)`, opts));
      if (s) return s;
    }
  }
  const match = names
    .map((name) => ({ name, id: tolerant(name, () => loadBinarySection(schemaFile(name))) }))
    .map((m) => ({ ...m, version: m.id ? versionOf(m.id, exe) : null }))
    .find((m) => m.version !== null || opts.pack);
  if (!match) {
    if (stale) throw new UserError(stale);
    const unread = [...problems].map(([n, e]) => `${n} (${e.message})`);
    throw new UserError(`no pack knows ${exeName} (build-id ${buildId ?? 'none'}; packs: ${listPacks().join(', ')}${unread.length ? `; could not read: ${unread.join('; ')}` : ''}): pass --pack NAME`);
  }
  const pack = chosen(match.name);
  const version = match.version;
  const signature = signatureOf(pack, exe);
  // The rest is the one rule of generators/layout-choice.ts: asked as if the binary's DWARF served, then again with why not.
  const own = packLayouts(pack.name).filter((l) => l.object === undefined);
  // A layout the rule may choose by release and signature is checked against the schema (its own structs: no I/O).
  const sameRelease = (l: LayoutFile) => version !== null && signature !== null && l.release === version && l.signature === signature;
  const candidates: LayoutCandidate[] = own.map((l) => ({
    release: l.release,
    build_id: l.build_id,
    signature: l.signature ?? null,
    binary: l.binary,
    misfit: l.build_id === buildId ? stale : sameRelease(l) ? misfitOf(() => BoundLayout.bind(pack, l, `${pack.name} ${l.release} (${l.build_id.slice(0, 12)})`)) : null,
  }));
  const facts: ProcessFacts = { pack: pack.name, exe: exeName, build_id: buildId, version, signature, debug: buildId && exe.hasDebugInfo() ? 'serves' : null, embedded: false };
  let choice = chooseLayout(candidates, facts);
  if ('by' in choice && choice.by === 'dwarf') {
    try {
      return await derive(pack, exe, { release: version ?? 'unknown', buildId: buildId!, signature }, choice.source, cache, opts, stale);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      choice = chooseLayout(candidates, { ...facts, debug: err.message.replace(/:\n/g, ': ').replace(/\n/g, '; ') });
    }
  }
  if ('refused' in choice) throw new UserError(choice.refused);
  if (choice.by === 'dwarf') throw new Error('internal: the layout rule chose the DWARF twice');
  return bound(pack, own[choice.layout], choice.source, opts);
}

/** Why a layout does not fit the schema (BoundLayout.bind's line), or null. */
function misfitOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    return err.message;
  }
}

/** The layout from the binary's own DWARF, kept in the cache for the next run (when the cache can be ours). */
async function derive(pack: PackIR, exe: ElfFile, id: { release: string; buildId: string; signature: string | null }, source: string, cache: LayoutCache, opts: SelectOptions, stale: string | null): Promise<Selected> {
  const why = stale ? `${stale.replace(/; regenerate it with xgen layout$/, '')}: ` : '';
  opts.onDerive?.(`${why}deriving the layout of ${pack.name} ${id.release} build ${id.buildId.slice(0, 12)} from its DWARF (${cache.placeFor(pack.name)})`);
  const layout = await extractLayout(pack, exe.path, id);
  cache.put(layout, exe.contentHash());
  return bound(pack, layout, source, opts);
}

function bound(pack: PackIR, l: LayoutFile, source: string, opts: SelectOptions): Selected {
  const mapped = mappedObjects(pack, opts.mapped);
  return { pack, layout: BoundLayout.bind(pack, l, source, objectLayouts(pack, mapped)), release: l.release, objects: keyOf(mapped) };
}

/** The mapped files that may be the pack's objects (none are opened for a pack without objects). */
function mappedObjects(pack: PackIR, mapped: SelectOptions['mapped']): ObjectInfo[] {
  return pack.objects.size > 0 && mapped ? mapped((p) => [...pack.objects.values()].some((o) => isObjectFile(o.file, p))) : [];
}

const keyOf = (mapped: ObjectInfo[]): string => mapped.map((m) => `${m.path}@${m.buildId ?? m.error ?? ''}`).join('\n');

/** What Selected.objects would be for a process that maps these: a selection made for another process serves it only when they are equal. */
export const objectsKey = (pack: PackIR, mapped: SelectOptions['mapped']): string => keyOf(mappedObjects(pack, mapped));

/** Whether a mapped file is the pack's object: named as it says, or that followed by a dot and more (a library's full version). */
export const isObjectFile = (file: string, mappedPath: string): boolean => {
  const base = path.basename(mappedPath);
  return base === file || base.startsWith(`${file}.`);
};

/** Each of the pack's objects: the layout committed for the build the process maps, or why there is none. */
function objectLayouts(pack: PackIR, mapped: ObjectInfo[]): Map<string, ObjectLayout> {
  const out = new Map<string, ObjectLayout>();
  for (const o of pack.objects.values()) {
    // The words are those of the extensions' _with_objects (py-common/xwalk_commands.py): the readers say the same.
    const m = mapped.find((x) => isObjectFile(o.file, x.path));
    if (!m) {
      out.set(o.name, { reason: `${o.file} is not mapped in this process` });
      continue;
    }
    if (m.error || !m.buildId) {
      out.set(o.name, { reason: m.error ? `${m.path} cannot be read: ${m.error}` : `${m.path} has no build-id note, and layouts are keyed by it` });
      continue;
    }
    const l = layoutByBuildId(pack.name, m.buildId, o.name);
    const known = knownLayouts(pack.name, o.name).map((k) => `${k.release} ${k.build_id.slice(0, 12)}`).join(', ') || 'none';
    out.set(o.name, l ? { layout: l, source: `${o.name} ${l.release} (${m.buildId.slice(0, 12)})` } : { reason: `unknown build of ${o.file}: ${m.path} (build-id ${m.buildId}); known builds of ${pack.name}'s ${o.name}: ${known}. Add one with: xgen layout --pack ${pack.name} --object ${o.name} --for ${m.path} PROBE-WITH-DEBUG-INFO` });
  }
  return out;
}

/**
 * The automatic step of `xgen symbols` (issue 24): before a process is read, each stripped object it maps (no
 * .symtab) that a pack covers (a layout for its build-id, the version string a pack's schema looks for, or one of
 * that pack's objects:), that does not export a global the pack reads, that has no recovered symbol table yet, and
 * that something can be fetched for (a package owns it, or DEBUGINFOD_URLS is set) gets one, saying so in one
 * line. A stripped object that exports every global its pack reads (Debian's nginx links with -rdynamic) is read
 * as it is: its static names are `xgen symbols --for FILE`'s to recover, not every run's (that is minutes of
 * rebuild). With fetch false (--no-fetch) nothing is fetched or built: one line says what is missing, and views
 * that need the globals fail as before. A failure to recover is said and is not fatal.
 */
export async function recoverStripped(pids: number[], opts: { fetch: boolean; pack?: string; warn: (m: string) => void; wants?: string[] }): Promise<void> {
  const done = new Set<string>();
  for (const pid of pids) {
    let files: Wanting[];
    try {
      files = strippedCovered(pid, opts.pack, opts.warn, opts.wants);
    } catch (err) {
      if (err instanceof UserError || err instanceof SchemaError || err instanceof TargetGone) continue; // the run itself says what is wrong with the process
      throw err;
    }
    for (const { file, missing } of files) {
      if (done.has(file)) continue;
      done.add(file);
      if (debuginfodUrls().length === 0 && !(await packageOf(file))) continue; // nothing to fetch: the views say what is missing, as before
      if (!opts.fetch) {
        opts.warn(`xsample: ${file} is stripped and does not export ${listed(missing)}, and no symbol table of it is kept (--no-fetch): xgen symbols --for ${file} recovers them`);
        continue;
      }
      opts.warn(`xsample: ${file} is stripped: recovering its symbols (xgen symbols --for ${file}; --no-fetch to skip)`);
      const say = (m: string) => opts.warn(`xsample: ${m}`);
      try {
        const r = await recoverSymbols(file, { fetch: true, progress: say, warn: say, buildCache: process.env.XWALK_SYMBOLS_BUILDS || undefined });
        if (r.status !== 'has-symtab') say(`${r.where ?? 'not kept (the cache cannot be used)'}: ${describeCounts(r.table)}; ${r.table.verified}`);
      } catch (err) {
        if (!(err instanceof UserError)) throw err;
        say(`could not recover the symbols of ${err.message.startsWith('cannot recover') ? err.message.replace(/^cannot recover the symbols of /, '') : `${file}: ${err.message}`}`);
      }
    }
  }
}

const listed = (names: string[]): string => (names.length > 3 ? `${names.slice(0, 3).join(', ')} and ${names.length - 3} more` : names.join(', '));

interface Wanting {
  file: string;
  /** The globals the pack reads from it that it does not define (not the optional ones). */
  missing: string[];
}

/** The files pid maps that are stripped, covered by a pack that reads a global they do not export, and have no symbol table kept: its executable, then the pack's objects. */
function strippedCovered(pid: number, packName: string | undefined, warn: (m: string) => void, wants?: string[]): Wanting[] {
  const out: Wanting[] = [];
  const exe = openMapped(exePath(pid), `/proc/${pid}/exe`);
  if (!exe) return out;
  if (exe.hasSymtab()) {
    // A program with its own symbols (our -g builds): its packs are not searched; its objects are looked at when --pack names the pack.
    exe.close();
    const named = packName === undefined ? null : loadPack(packName, wants);
    return named === null || named.objects.size === 0 ? out : strippedObjects(pid, named, warn);
  }
  let pack: PackIR | null = null;
  try {
    const id = exe.buildId();
    for (const name of packName ? [packName] : listPacks()) {
      let covers = false;
      try {
        covers = (id !== null && layoutByBuildId(name, id) !== null) || versionOf(loadBinarySection(schemaFile(name)), exe) !== null;
      } catch (err) {
        if (!(err instanceof UserError || err instanceof SchemaError)) throw err;
      }
      if (covers) {
        pack = loadPack(name, wants);
        break;
      }
    }
    if (!pack) return out;
    const missing = wanting(pack, exe, undefined);
    if (missing.length) out.push({ file: exe.path, missing });
  } finally {
    exe.close();
  }
  return [...out, ...strippedObjects(pid, pack, warn)];
}

/** The pack's objects (objects:) pid maps that want a table. */
function strippedObjects(pid: number, pack: PackIR, warn: (m: string) => void): Wanting[] {
  const out: Wanting[] = [];
  if (pack.objects.size === 0) return out;
  const seen = new Set<string>();
  for (const m of readProcMaps(pid)) {
    const object = [...pack.objects.values()].find((o) => isObjectFile(o.file, m.path));
    if (!m.path.startsWith('/') || seen.has(m.path) || !object) continue;
    seen.add(m.path);
    const elf = openMapped(m.path, `/proc/${pid}/map_files/${m.start.toString(16)}-${m.end.toString(16)}`);
    if (!elf) continue;
    try {
      const missing = wanting(pack, elf, object.name);
      if (missing.length) out.push({ file: elf.path, missing });
    } finally {
      elf.close();
    }
  }
  return out;
}

/** The file at `file` when it is the very one the process maps (same device and inode as `mapped`), else null. */
function openMapped(file: string, mapped: string): ElfFile | null {
  try {
    const a = fs.statSync(mapped);
    const elf = ElfFile.open(fs.realpathSync(file));
    if (elf.stat.dev !== a.dev || elf.stat.ino !== a.ino) {
      elf.close();
      return null;
    }
    return elf;
  } catch {
    return null;
  }
}

/** The globals of `object` (undefined: the program's own) the pack needs that elf, stripped and with no table kept, does not define; [] when it has all or may already be named. */
function wanting(pack: PackIR, elf: ElfFile, object: string | undefined): string[] {
  if (elf.hasSymtab() || elf.buildId() === null) return [];
  const defined = new Set(elf.symbols().filter((s) => s.shndx !== SHN_UNDEF).map((s) => s.name));
  const missing = [...pack.globals.values()].filter((g) => g.object === object && !g.optional && !defined.has(g.name)).map((g) => g.name);
  if (missing.length === 0 || findRecoveredTable(shapeOf(elf)) !== null) return [];
  return missing;
}
