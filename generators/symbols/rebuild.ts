/**
 * A debug build of a Debian source package at one version, made the way
 * Debian makes it: `apt-get source PKG=VERSION` and `dpkg-buildpackage -b`
 * with DEB_BUILD_OPTIONS='nocheck nostrip' (dpkg-buildflags' own flags and
 * build path rules), in a private folder (0700), as nobody when run as root
 * (nothing fetched or built runs as root; only `apt-get build-dep`, said in
 * its own line). The result is the unstripped twin of a file the package
 * ships, and where its symbols are (itself, or its dbgsym .debug file).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from './exec.ts';
import { ElfFile } from '../../core/elf.ts';
import { me, untrusted } from '../../core/trust.ts';

export interface Built {
  /** The file as built (its loaded bytes are compared with the installed one's). */
  twin: ElfFile;
  /** Where its .symtab is: the twin itself (nostrip), or its dbgsym .debug file. */
  debug: ElfFile;
  /** "memcached 1.6.18-1+deb12u1 rebuilt with dpkg-buildpackage". */
  from: string;
}

export interface RebuildOptions {
  progress: (m: string) => void;
  /** A folder that keeps each build's results (SOURCE_VERSION/...), for the next run; unused when not ours alone. */
  buildCache?: string;
}

/** Why a rebuild failed; unreachable: the source could not be fetched (then the nearest release is tried). */
export interface RebuildFailure {
  why: string;
  unreachable?: boolean;
}

const BUILD_LOCK = '/tmp/xwalk-build.lock';

/** The command prefix that runs as nobody when we are root (setpriv), or nothing; and the uid/gid to give the folder. */
export async function unprivileged(progress: (m: string) => void): Promise<{ prefix: string[]; uid: number; gid: number } | null> {
  if (me() !== 0) return null;
  const uid = await execa('id', ['-u', 'nobody'], { reject: false });
  const gid = await execa('getent', ['group', 'nogroup'], { reject: false });
  const has = (await execa('setpriv', ['--version'], { reject: false })).exitCode === 0;
  if (uid.exitCode !== 0 || gid.exitCode !== 0 || !has) {
    progress('cannot run as nobody here (no nobody user, nogroup group or setpriv): fetching and building as root');
    return null;
  }
  return { prefix: ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'], uid: Number(uid.stdout), gid: Number(String(gid.stdout).split(':')[2]) };
}

const folderName = (source: string, version: string) => `${source}_${version}`.replace(/[^A-Za-z0-9.+~_-]/g, '_');

/** The kept build of `rel` for source at version, when the folder and files can only be ours. */
function kept(cache: string | undefined, source: string, version: string, binary: string, rel: string): Built | null {
  if (!cache) return null;
  const dir = path.join(cache, folderName(source, version));
  const twin = path.join(dir, binary, rel);
  const debug = `${twin}.debug`;
  try {
    for (const p of [cache, dir, path.dirname(twin), twin]) if (untrusted(fs.lstatSync(p), p)) return null;
  } catch {
    return null;
  }
  const t = ElfFile.open(twin);
  const d = fs.existsSync(debug) && !untrusted(fs.lstatSync(debug), debug) ? ElfFile.open(debug) : t;
  return { twin: t, debug: d, from: `${source} ${version} rebuilt with dpkg-buildpackage (kept in ${dir})` };
}

function keep(cache: string | undefined, source: string, version: string, binary: string, rel: string, built: Built): void {
  if (!cache) return;
  const twin = path.join(cache, folderName(source, version), binary, rel);
  fs.mkdirSync(path.dirname(twin), { recursive: true, mode: 0o700 });
  fs.copyFileSync(built.twin.path, twin);
  if (built.debug !== built.twin) fs.copyFileSync(built.debug.path, `${twin}.debug`);
}

/**
 * Rebuilds `source` at `version` and returns the twin of `rel` (the installed file's path without its
 * leading /) from binary package `binary`.
 */
export async function rebuild(source: string, version: string, binary: string, rel: string, opts: RebuildOptions): Promise<Built | RebuildFailure> {
  const hit = kept(opts.buildCache, source, version, binary, rel);
  if (hit) {
    opts.progress(`using the build of ${source} ${version} kept in ${opts.buildCache}`);
    return hit;
  }
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-symbols-'));
  fs.chmodSync(work, 0o700);
  const user = await unprivileged(opts.progress);
  if (user) fs.chownSync(work, user.uid, user.gid);
  const as = user?.prefix ?? [];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, LC_ALL: 'C.UTF-8', DEBIAN_FRONTEND: 'noninteractive' };
  const run = (cmd: string[], cwd: string, extra: Record<string, string> = {}, log?: string) =>
    execa(as[0] ?? cmd[0], [...as.slice(1), ...(as.length ? cmd : cmd.slice(1))], {
      cwd,
      env: { ...env, ...extra },
      extendEnv: false,
      reject: false,
      all: true,
      ...(log ? { stdout: { file: log }, stderr: { file: log } } : {}),
    });
  let ok = false;
  try {
    opts.progress(`fetching ${source} ${version} source`);
    const got = await run(['apt-get', 'source', '-qq', `${source}=${version}`], work);
    if (got.exitCode !== 0) return { why: `apt-get source ${source}=${version} failed: ${lastLine(got.all)}`, unreachable: true };
    const src = fs.readdirSync(work, { withFileTypes: true }).find((d) => d.isDirectory());
    if (!src) return { why: `apt-get source ${source}=${version} unpacked no folder`, unreachable: true };
    const srcDir = path.join(work, src.name);
    const deps = await run(['dpkg-checkbuilddeps'], srcDir);
    if (deps.exitCode !== 0) {
      const missing = lastLine(deps.all).replace(/^dpkg-checkbuilddeps: error: /, '');
      if (me() !== 0) return { why: `${missing}; as root: apt-get build-dep ${source}=${version}` };
      opts.progress(`installing the build dependencies of ${source} ${version} as root: apt-get build-dep -y ${source}=${version}`);
      const bd = await execa('apt-get', ['build-dep', '-y', '-qq', `${source}=${version}`], { reject: false, all: true, env: { DEBIAN_FRONTEND: 'noninteractive' } });
      if (bd.exitCode !== 0) return { why: `apt-get build-dep ${source}=${version} failed: ${lastLine(bd.all)}` };
    }
    const log = path.join(work, 'build.log');
    fs.writeFileSync(log, '', { mode: 0o644 });
    if (user) fs.chownSync(log, user.uid, user.gid);
    opts.progress(`building ${source} ${version} (this takes a few minutes; log: ${log})`);
    const started = Date.now();
    const lock = fs.existsSync('/usr/bin/flock') ? ['flock', BUILD_LOCK] : [];
    const b = await run([...lock, 'nice', '-n', '10', 'dpkg-buildpackage', '-b', '-uc', '-us'], srcDir, { DEB_BUILD_OPTIONS: 'nocheck nostrip parallel=2' }, log);
    if (b.exitCode !== 0) return { why: `dpkg-buildpackage of ${source} ${version} failed (exit ${b.exitCode}); its log: ${log}` };
    const built = twinOf(srcDir, binary, rel);
    if (!built) return { why: `the build of ${source} ${version} made no ${rel} in debian/${binary}; its log: ${log}` };
    opts.progress(`built ${source} ${version} in ${Math.round((Date.now() - started) / 1000)} s`);
    const result = { ...built, from: `${source} ${version} rebuilt with dpkg-buildpackage` };
    keep(opts.buildCache, source, version, binary, rel, result);
    ok = true;
    return result;
  } finally {
    // A failed build's folder is kept for its log; a good one's results are read before it goes.
    if (ok) setImmediate(() => fs.rmSync(work, { recursive: true, force: true }));
  }
}

/** The built file in debian/BINARY/REL (any debian/*\/REL else), and its symbols: itself, or the dbgsym .debug of its build-id. */
function twinOf(srcDir: string, binary: string, rel: string): { twin: ElfFile; debug: ElfFile } | null {
  const deb = path.join(srcDir, 'debian');
  const candidates = [path.join(deb, binary, rel), ...fs.readdirSync(deb).map((d) => path.join(deb, d, rel))];
  const file = candidates.find((f) => fs.existsSync(f) && fs.lstatSync(f).isFile());
  if (!file) return null;
  // Read whole into memory: the build folder is removed once the result is taken.
  const twin = ElfFile.fromImage(file, fs.readFileSync(file));
  if (twin.hasSymtab()) return { twin, debug: twin };
  const id = twin.buildId();
  const dbg = id && path.join(deb, '.debhelper', binary, 'dbgsym-root/usr/lib/debug/.build-id', id.slice(0, 2), `${id.slice(2)}.debug`);
  if (!dbg || !fs.existsSync(dbg)) return { twin, debug: twin };
  return { twin, debug: ElfFile.fromImage(dbg, fs.readFileSync(dbg)) };
}

const lastLine = (s: unknown): string => String(s ?? '').trim().split('\n').filter(Boolean).pop() ?? '';
