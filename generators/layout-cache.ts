/**
 * The layout cache: layouts derived from a binary's own DWARF on this
 * machine, kept so the next run need not derive them again
 * ($XDG_CACHE_HOME/xwalk/layouts, else ~/.cache/xwalk/layouts).
 *
 * A layout decides what xsample reads, so the cache is used only when no
 * one else could have written it: every folder of it is ours (created
 * 0700) and writable by no one else, and so is every file; otherwise it is
 * left alone, with one warning. Files are written whole (a temporary file
 * created exclusively, then renamed), never through a symlink, and
 * validated when read. An entry is keyed by the build-id and a hash of the
 * binary's content, so a binary that carries another build's build-id
 * cannot poison that build's entry. A cache that cannot be made or written
 * only loses the caching.
 */
import fs from 'node:fs';
import path from 'node:path';
import { layoutJson, type LayoutFile } from './layout.ts';
import { layoutProblem } from './layout-valid.ts';
import { makeDirs, readKeptFile } from '../core/regular-file.ts';
import { me, untrusted } from '../core/trust.ts';
import { cacheDir, type CacheKind } from '../core/cache-dir.ts';

export { cacheDir } from '../core/cache-dir.ts';

const cacheName = (kind: CacheKind): string => ({ layouts: 'layout cache', schemas: 'schema cache', packs: 'cache of probed layouts', symbols: 'symbol cache' })[kind];

/**
 * A folder of the cache that only we can have written, and whole files in
 * it: what LayoutCache and the schema cache (schema-cache.ts) stand on.
 */
export class TrustedCache {
  private warned = false;

  constructor(
    private readonly kind: CacheKind,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  /**
   * The folder for a pack's layouts (pack '': the kind's folder itself), made if need be, or null when it may
   * not be used (then it says why, once). The base folder may be shared
   * (XDG_CACHE_HOME=/tmp) when it is root's and sticky, as /tmp is: then no
   * one else can replace what we make in it.
   */
  private folder(pack: string, create: boolean): string | null {
    const where = this.locate(pack, create);
    return typeof where === 'string' ? where : where && this.refuse(where.why);
  }

  /** The folder for a pack's entries (made if create), or why it may not be used; null: it does not exist (and create is false). */
  private locate(pack: string, create: boolean): string | { why: string } | null {
    const layouts = cacheDir(this.kind);
    const xwalk = path.dirname(layouts);
    const base = path.dirname(xwalk);
    try {
      if (create) makeDirs(base, 0o700);
      // Whoever may rename entries of the base could swap our folder for theirs: it must be ours and
      // writable by no one else, or sticky and root's (as /tmp is).
      const b = fs.statSync(base);
      const sticky = (b.mode & 0o1000) !== 0;
      if (!(sticky && b.uid === 0) && b.uid !== me()) return { why: `${base} belongs to uid ${b.uid}, not to you` };
      if (!sticky && (b.mode & 0o022) !== 0) return { why: `${base} can be written by others and is not sticky` };
      for (const dir of [xwalk, layouts, path.join(layouts, pack)]) {
        if (create) {
          try {
            fs.mkdirSync(dir, { mode: 0o700 });
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
          }
        }
        const why = untrusted(fs.lstatSync(dir), dir);
        if (why) return { why };
      }
      return path.join(layouts, pack);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!create) return null;
      return { why: `${layouts}: ${code ?? (err as Error).message}` };
    }
  }

  /**
   * Where a new entry of the pack would be kept, for the line that says so before it is made: the
   * folder, or that the cache is not used and why (said here, once, and not again when writing).
   */
  placeFor(pack: string): string {
    const where = this.locate(pack, true);
    if (typeof where === 'string') return `once; cached in ${where}`;
    const why = where?.why ?? 'it cannot be made';
    if (this.warned) return 'not cached';
    this.warned = true;
    return `not using the ${cacheName(this.kind)}: ${why}`;
  }

  /** The folder for a pack's entries, made if need be, or null when it may not be used (then it says why, once). */
  dir(pack: string): string | null {
    return this.folder(pack, true);
  }

  /** Says once why the cache is not used, and goes on without it. */
  refuse(why: string): null {
    if (!this.warned) this.warn(`not using the ${cacheName(this.kind)}: ${why}`);
    this.warned = true;
    return null;
  }

  /** The bytes of entry `name` of the pack's folder, if the folder and the file can only be ours. */
  read(pack: string, name: string): { file: string; bytes: Buffer } | null {
    const dir = this.folder(pack, false);
    if (!dir) return null;
    const file = path.join(dir, name);
    const kept = readKeptFile(file, (st) => untrusted(st, file));
    if (kept && 'refused' in kept) return this.refuse(kept.refused);
    return kept && { file, bytes: kept.bytes };
  }

  /** Writes entry `name` whole (a new file, then renamed), when the cache can be ours; else says why and goes on. */
  write(pack: string, name: string, data: string | Uint8Array, opts: { only?: string } = {}): void {
    const dir = this.folder(pack, true);
    if (!dir) return;
    // only: the entry replaces the folder's others whose names do not start with it.
    if (opts.only !== undefined) for (const old of fs.readdirSync(dir)) if (old !== name && !old.startsWith(opts.only)) fs.rmSync(path.join(dir, old), { force: true });
    const file = path.join(dir, name);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, data, { flag: 'wx', mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch (err) {
      this.refuse(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }
}

export class LayoutCache {
  private readonly cache: TrustedCache;

  constructor(private readonly warn: (message: string) => void = () => {}) {
    this.cache = new TrustedCache('layouts', warn);
  }

  /** The layout derived earlier from this very binary (its build-id and content), if the cache is ours and it is valid. */
  get(pack: string, buildId: string, contentHash: string, misfit: (l: LayoutFile) => string | null = () => null): LayoutFile | null {
    const entry = this.cache.read(pack, entryName(buildId, contentHash));
    if (!entry) return null;
    let l: unknown;
    try {
      l = JSON.parse(entry.bytes.toString('utf8'));
    } catch {
      return null;
    }
    // A bad entry is passed over (and replaced by the layout derived again), saying so once.
    const problem = layoutProblem(l) ?? misfit(l as LayoutFile);
    if (problem) {
      this.warn(`ignoring ${entry.file}, which is not a valid layout: ${problem}`);
      return null;
    }
    const layout = l as LayoutFile;
    return layout.pack === pack && layout.build_id === buildId ? layout : null;
  }

  /** What the line announcing a derivation says of the cache: where the layout will be kept, or why not. */
  placeFor(pack: string): string {
    return this.cache.placeFor(pack);
  }

  /** Keeps the layout for the next run, when the cache can be ours; else says why and goes on. */
  put(layout: LayoutFile, contentHash: string): void {
    this.cache.write(layout.pack, entryName(layout.build_id, contentHash), layoutJson(layout));
  }
}

const entryName = (buildId: string, contentHash: string) => `${buildId}-${contentHash.slice(0, 32)}.json`;
