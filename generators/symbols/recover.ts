/**
 * recoverSymbols: the names of a stripped object's functions and data
 * (globals and statics) for its exact build, what `xgen symbols --for FILE`
 * runs and what xsample runs by itself when a process it reads maps a
 * stripped object a pack covers. Routes, first first: the table already
 * kept (user's cache, packs); debuginfod (DEBUGINFOD_URLS); the package's
 * -dbgsym; a rebuild of the exact source; a rebuild of the nearest release,
 * matched function by function. Each route's result is verified against the
 * object (verify.ts) before a name of it is written.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ElfFile } from '../../core/elf.ts';
import { UserError } from '../../core/errors.ts';
import { SYMBOL_TABLE_VERSION, type SymbolMethod, type SymbolTableFile, type RecoveredSymbol } from '../../core/symbol-table.ts';
import { cacheDir } from '../layout-cache.ts';
import { findTable, shapeOf, writeTable } from './cache.ts';
import { debuginfodUrls, fetchDbgsym, fetchDebuginfod } from './debuginfod.ts';
import { matchSymbols } from './match.ts';
import { buildNginxDebug } from './nginx-debug-build.ts';
import { aptHas, nearestSourceVersions, packageOf, type PackageOf } from './package.ts';
import { rebuild, type Built } from './rebuild.ts';
import { symbolsOf } from './table.ts';
import { verifyTwin } from './verify.ts';

export interface RecoverOptions {
  /** false (--no-fetch): only a table already kept; nothing downloaded or built. */
  fetch: boolean;
  /** Write the table into this pack's symbols/ folder instead of the user's cache. */
  pack?: string;
  /** A line of progress (what is being fetched, built, tried). */
  progress: (m: string) => void;
  /** A line about something passed over (a bad kept table, a cache that cannot be used). */
  warn: (m: string) => void;
  /** Where rebuilds are kept between runs (XWALK_SYMBOLS_BUILDS); none by default. */
  buildCache?: string;
}

export type Recovery =
  | { status: 'has-symtab'; file: string; buildId: string | null }
  | { status: 'found' | 'made'; file: string; buildId: string; table: SymbolTableFile; where: string | null };

export async function recoverSymbols(file: string, opts: RecoverOptions): Promise<Recovery> {
  let real: string;
  try {
    real = fs.realpathSync(file);
  } catch (err) {
    throw new UserError(`${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
  const elf = ElfFile.open(real);
  try {
    if (elf.hasSymtab()) return { status: 'has-symtab', file: real, buildId: elf.buildId() };
    const buildId = elf.buildId();
    if (!buildId) throw new UserError(`${real} has no build-id note: a symbol table is kept and checked by it`);
    const found = findTable(shapeOf(elf), opts.warn);
    if (found) {
      const where = opts.pack !== undefined ? writeTable(found.table, { pack: opts.pack, warn: opts.warn }) : found.where;
      return { status: 'found', file: real, buildId, table: found.table, where };
    }
    const pkg = await packageOf(real);
    if (!opts.fetch) {
      throw new UserError(`no symbol table for ${real} (build-id ${buildId}) in ${cacheDir('symbols')} or any pack's symbols/; without --no-fetch this would ${plan(pkg)}`);
    }
    const table = await made(elf, real, buildId, pkg, opts);
    const where = writeTable(table, { pack: opts.pack, warn: opts.warn });
    return { status: 'made', file: real, buildId, table, where };
  } finally {
    elf.close();
  }
}

/** What a fetch would do, in words, for --no-fetch's line. */
function plan(pkg: PackageOf | null): string {
  const steps: string[] = [];
  if (debuginfodUrls().length) steps.push(`ask ${debuginfodUrls().join(', ')}`);
  if (pkg) steps.push(`fetch ${pkg.name}-dbgsym ${pkg.version} if apt has it, else the source of ${pkg.source} ${pkg.sourceVersion} to rebuild it`);
  return steps.length ? steps.join(', then ') : 'find nothing to fetch: no package owns it and DEBUGINFOD_URLS is not set';
}

function tableOf(real: string, buildId: string, pkg: PackageOf | null, method: SymbolMethod, from: string, verified: string, symbols: RecoveredSymbol[], counts?: { matched: number; total: number }): SymbolTableFile {
  return {
    xwalk_symbols: SYMBOL_TABLE_VERSION,
    build_id: buildId,
    file: real,
    ...(pkg ? { package: pkg.name, version: pkg.version } : {}),
    method,
    from,
    verified,
    ...(counts ?? {}),
    symbols,
  };
}

async function made(elf: ElfFile, real: string, buildId: string, pkg: PackageOf | null, opts: RecoverOptions): Promise<SymbolTableFile> {
  const tried: string[] = [];
  const downloads = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-debug-'));
  try {
    if (debuginfodUrls().length) {
      const got = await fetchDebuginfod(buildId, downloads, opts.progress);
      if ('elf' in got) {
        const v = verifyTwin(elf, got.elf);
        if (v.ok) return tableOf(real, buildId, pkg, 'debuginfod', got.from, v.verified, symbolsOf(got.elf));
        tried.push(`debuginfod's file does not fit: ${v.why}`);
        opts.progress(`${got.from} does not fit ${real}: ${v.why}`);
      } else tried.push(`debuginfod: ${got.why}`);
    }
    if (!pkg) throw new UserError(`cannot recover the symbols of ${real}: no package owns it${tried.length ? `; ${tried.join('; ')}` : ' and DEBUGINFOD_URLS is not set'}`);
    if (await aptHas(`${pkg.name}-dbgsym`, pkg.version)) {
      opts.progress(`fetching ${pkg.name}-dbgsym ${pkg.version}`);
      const got = await fetchDbgsym(pkg.name, pkg.version, buildId, downloads, []);
      if ('elf' in got) {
        const v = verifyTwin(elf, got.elf);
        if (v.ok) return tableOf(real, buildId, pkg, 'dbgsym', got.from, v.verified, symbolsOf(got.elf));
        tried.push(`${got.from}: ${v.why}`);
      } else tried.push(got.why);
    }
    if (pkg.source === 'nginx' && isNginxExecutable(elf)) return await fromNginxDebug(elf, real, buildId, pkg, opts);
    const rel = pkg.path.replace(/^\/+/, '');
    const exact = await rebuild(pkg.source, pkg.sourceVersion, pkg.name, rel, { progress: opts.progress, buildCache: opts.buildCache });
    if ('twin' in exact) {
      const v = verifyTwin(elf, exact.twin);
      if (v.ok) return fromBuild(real, buildId, pkg, exact, v.verified);
      // The exact source built by another toolchain: still the nearest code there is.
      opts.progress(`the rebuild of ${pkg.source} ${pkg.sourceVersion} is not ${real}'s twin (${v.why}): matching its functions against ${real}`);
      const m = matchSymbols(elf, exact.debug, opts.progress);
      return tableOf(real, buildId, pkg, 'matched', `${exact.from}, matched`, m.verified, m.symbols, { matched: m.matched, total: m.total });
    } else {
      if (!exact.unreachable) throw new UserError(`cannot recover the symbols of ${real}: ${exact.why}`);
      opts.progress(`${exact.why}: trying the nearest release`);
      tried.push(exact.why);
    }
    for (const version of (await nearestSourceVersions(pkg.source, pkg.sourceVersion)).slice(0, 2)) {
      const near = await rebuild(pkg.source, version, pkg.name, rel, { progress: opts.progress, buildCache: opts.buildCache });
      if (!('twin' in near)) {
        tried.push(near.why);
        if (near.unreachable) continue;
        break;
      }
      const v = verifyTwin(elf, near.twin);
      if (v.ok) return fromBuild(real, buildId, pkg, near, v.verified);
      opts.progress(`${pkg.source} ${version} is not a twin (${v.why}): matching its functions against ${real}`);
      const m = matchSymbols(elf, near.debug, opts.progress);
      return tableOf(real, buildId, pkg, 'matched', `${near.from}, matched (nearest release to ${pkg.sourceVersion})`, m.verified, m.symbols, { matched: m.matched, total: m.total });
    }
    throw new UserError(`cannot recover the symbols of ${real}: ${tried.join('; ')}`);
  } finally {
    fs.rmSync(downloads, { recursive: true, force: true });
  }
}

function isNginxExecutable(elf: ElfFile): boolean {
  const rodata = elf.section('.rodata');
  return rodata !== undefined && rodata !== null && elf.sectionBytes(rodata).includes('configure arguments:');
}

/**
 * Debian's nginx executable: a debug nginx alone is built (configured as the executable says it was), not the
 * whole source package (every flavour and module); its names are exact when its loaded code is identical, else
 * matched function by function.
 */
async function fromNginxDebug(elf: ElfFile, real: string, buildId: string, pkg: PackageOf, opts: RecoverOptions): Promise<SymbolTableFile> {
  const work = opts.buildCache ? path.join(opts.buildCache, 'nginx-debug') : fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-nginx-debug-'));
  try {
    const versions = [pkg.sourceVersion, ...(await nearestSourceVersions('nginx', pkg.sourceVersion))];
    const built = await buildNginxDebug(real, versions, work, opts.progress);
    const debug = ElfFile.open(built.binary);
    try {
      const from = `a debug nginx built from Debian's source of nginx ${built.version}`;
      const v = verifyTwin(elf, debug);
      if (v.ok) return tableOf(real, buildId, pkg, 'rebuild', from, v.verified, symbolsOf(debug));
      opts.progress(`nginx ${built.version}'s debug build is not a twin (${v.why}): matching its functions against ${real}`);
      const m = matchSymbols(elf, debug, opts.progress);
      return tableOf(real, buildId, pkg, 'matched', `${from}, matched`, m.verified, m.symbols, { matched: m.matched, total: m.total });
    } finally {
      debug.close();
    }
  } finally {
    if (!opts.buildCache) fs.rmSync(work, { recursive: true, force: true });
  }
}

function fromBuild(real: string, buildId: string, pkg: PackageOf, built: Built, verified: string): SymbolTableFile {
  const symbols = symbolsOf(built.debug);
  if (symbols.length === 0) throw new UserError(`the rebuild of ${pkg.source} has no .symtab in ${built.debug.path} (was it stripped?)`);
  return tableOf(real, buildId, pkg, 'rebuild', built.from, verified, symbols);
}
