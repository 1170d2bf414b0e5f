/**
 * A debug build of Debian's nginx for a stripped /usr/sbin/nginx: Debian's
 * own source of the installed version (`apt-get source nginx=VERSION`,
 * Debian's patches applied by dpkg-source) or, when that is not reachable
 * (a security update's source may 404), the nearest version that is;
 * configured as the stripped executable says it was (the `configure
 * arguments:` line `nginx -V` prints is a string in its .rodata: read from
 * the file, the binary is never run), with the file-prefix map pointed at
 * the build folder. Dynamic modules are left out (they are other files).
 * nginx-dev is no help here: /usr/share/nginx/src holds the headers only.
 * Its .symtab names the functions and data of the installed executable:
 * exactly when its loaded code is identical (the rebuild route), else
 * through matchSymbols (match.ts).
 *
 * The build runs in `work` (a private folder the caller chose), niced and
 * under /tmp/xwalk-build.lock (one heavy build at a time); a finished build
 * whose inputs are unchanged is reused.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ElfFile } from '../../core/elf.ts';
import { UserError } from '../../core/errors.ts';
import { untrusted } from '../../core/trust.ts';
import { unprivileged } from './rebuild.ts';

const BUILD_LOCK = '/tmp/xwalk-build.lock';
const MAX_CONFIGURE = 16 * 1024;

/** One configure argument this build passes on: an option, and a value of plain characters (no quote, $, `, ;, newline). */
const SAFE_ARG = /^--[a-z0-9_-]+(=[A-Za-z0-9_=,./+: -]*)?$/;

/** The configure arguments nginx was built with, as its own `nginx -V` would print them, read from its .rodata. */
export function nginxConfigureArguments(binary: ElfFile): string[] {
  const rodata = binary.section('.rodata');
  if (!rodata) throw new UserError(`${binary.path}: no .rodata, so no configure arguments to read`);
  const bytes = binary.sectionBytes(rodata);
  const marker = Buffer.from('configure arguments:');
  const at = bytes.indexOf(marker);
  if (at < 0) throw new UserError(`${binary.path}: no "configure arguments:" string: not an nginx executable`);
  const end = bytes.indexOf(0, at);
  const line = bytes.toString('latin1', at + marker.length, Math.min(end < 0 ? bytes.length : end, at + MAX_CONFIGURE)).trim();
  return splitShellWords(line, binary.path);
}

/** Words of a line as a POSIX shell splits them, with single quotes only (what nginx's configure writes). */
function splitShellWords(line: string, where: string): string[] {
  const out: string[] = [];
  let cur: string | null = null;
  let quoted = false;
  for (const c of line) {
    if (quoted) {
      if (c === "'") quoted = false;
      else cur += c;
    } else if (c === "'") {
      quoted = true;
      cur ??= '';
    } else if (c === ' ' || c === '\t' || c === '\n') {
      if (cur !== null) out.push(cur);
      cur = null;
    } else cur = (cur ?? '') + c;
  }
  if (quoted) throw new UserError(`${where}: its configure arguments have an unterminated quote`);
  if (cur !== null) out.push(cur);
  return out;
}

/**
 * The arguments to configure the copy in `src` with: the binary's own, without dynamic modules, with its
 * -ffile-prefix-map pointed at src (so __FILE__ and the debug info's paths read as Debian's do). An argument
 * this build does not pass on (a third-party module's path, an unsafe character) is an error naming it.
 */
export function rebuildArguments(args: string[], src: string): string[] {
  const out: string[] = [];
  for (const a of args) {
    if (/=dynamic$/.test(a)) continue;
    if (a.startsWith('--add-module') || a.startsWith('--add-dynamic-module')) throw new UserError(`configure argument ${a}: a third-party module's source is not in nginx-dev`);
    if (!SAFE_ARG.test(a)) throw new UserError(`configure argument ${JSON.stringify(a)}: not one this build passes on`);
    out.push(a.startsWith('--with-cc-opt=') ? a.replace(/-ffile-prefix-map=\S+=\./g, `-ffile-prefix-map=${src}=.`) : a);
  }
  return out;
}

export interface NginxDebugBuild {
  /** The unstripped executable, with .symtab and DWARF. */
  binary: string;
  /** The Debian version of the source it was built from. */
  version: string;
  /** The configure arguments it was built with. */
  args: string[];
  /** Whether it was built now (false: reused from work). */
  built: boolean;
}

const VERSION = /^[0-9][A-Za-z0-9.+~:-]*$/;

/**
 * Builds (or reuses) a debug nginx in `work` for the stripped executable `target`, from Debian's source of the
 * first of `versions` that `apt-get source` fetches (pass the installed version first, then the nearest others:
 * package.ts nearestSourceVersions). `work` must be a folder of the caller's own (it is created 0700 when missing).
 */
export async function buildNginxDebug(target: string, versions: string[], work: string, progress?: (msg: string) => void): Promise<NginxDebugBuild> {
  const say = progress ?? (() => {});
  const elf = ElfFile.open(target);
  let raw: string[];
  try {
    raw = nginxConfigureArguments(elf);
  } finally {
    elf.close();
  }
  fs.mkdirSync(work, { recursive: true, mode: 0o700 });
  const { execa } = await import('execa');
  const user = await unprivileged(say);
  const tried: string[] = [];
  for (const version of versions) {
    if (!VERSION.test(version)) throw new UserError(`${JSON.stringify(version)} is not a Debian version`);
    // The fetch and the build run as nobody (when we are root) in a private folder of their own; what is kept, the
    // debug nginx and its stamp, is copied into dir, ours alone.
    const dir = path.join(work, version);
    const build = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-nginx-build-'));
    const src = path.join(build, 'src');
    const args = rebuildArguments(raw, src);
    const stampFile = path.join(dir, 'stamp.json');
    const binary = path.join(dir, 'nginx');
    // The stamp leaves out where the build is (the prefix map names it): a build moved with its folder is reused.
    const stamp = JSON.stringify({ version, args: rebuildArguments(raw, '.') });
    if (keptBuild(work, dir, binary, stampFile, stamp)) {
      fs.rmSync(build, { recursive: true, force: true });
      say(`reusing the debug nginx ${version} in ${dir}`);
      return { binary, version, args, built: false };
    }
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    let as: string[] = [];
    if (user) {
      fs.chownSync(build, user.uid, user.gid);
      if ((await execa(user.prefix[0], [...user.prefix.slice(1), 'test', '-w', build], { reject: false })).exitCode === 0) as = user.prefix;
      else say(`building nginx as root: nobody cannot reach ${build}`);
    }
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: build, LC_ALL: 'C', DEBIAN_FRONTEND: 'noninteractive' };
    const exec = (cmd: string[], cwd: string) =>
      execa(as[0] ?? cmd[0], [...as.slice(1), ...(as.length ? cmd : cmd.slice(1))], { cwd, reject: false, all: true, env, extendEnv: false });
    say(`apt-get source nginx=${version}${as.length ? ' (as nobody)' : ''}`);
    const got = await exec(['apt-get', 'source', '-qq', '--download-only', `nginx=${version}`], build);
    const dsc = fs.readdirSync(build).find((f) => f.endsWith('.dsc'));
    if (got.exitCode !== 0 || !dsc) {
      tried.push(`${version}: ${(got.all ?? '').split('\n').filter((l) => /^E:/.test(l))[0] ?? `exit ${got.exitCode}`}`);
      fs.rmSync(build, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
      continue;
    }
    const x = await exec(['dpkg-source', '--no-check', '-x', dsc, 'src'], build);
    if (x.exitCode !== 0) throw new UserError(`dpkg-source -x ${dsc} failed: ${x.all}`);
    const run = async (what: string, cmd: string[], log: string): Promise<void> => {
      say(`${what} (log: ${log})`);
      const r = await exec(['flock', BUILD_LOCK, 'nice', '-n', '10', ...cmd], src);
      fs.writeFileSync(log, r.all ?? '');
      if (r.exitCode !== 0) throw new UserError(`${what} failed (exit ${r.exitCode}): ${(r.all ?? '').split('\n').slice(-15).join('\n')}`);
    };
    await run(`configuring nginx ${version} as ${target} was configured`, ['./configure', ...args], path.join(dir, 'configure.log'));
    await run(`compiling nginx ${version} with -g`, ['make', '-j2', '-f', 'objs/Makefile'], path.join(dir, 'make.log'));
    const made = path.join(src, 'objs', 'nginx');
    if (!fs.lstatSync(made, { throwIfNoEntry: false })?.isFile()) throw new UserError(`the build left no ${made}`);
    fs.copyFileSync(made, binary);
    fs.chmodSync(binary, 0o600);
    fs.writeFileSync(stampFile, stamp, { mode: 0o600 });
    fs.rmSync(build, { recursive: true, force: true });
    return { binary, version, args, built: true };
  }
  throw new UserError(`no source of nginx could be fetched: ${tried.join('; ')}`);
}

/** A kept build is reused only when what it keeps can only have been written by us, and its stamp is this build's. */
function keptBuild(work: string, dir: string, binary: string, stampFile: string, stamp: string): boolean {
  try {
    for (const p of [work, dir, binary, stampFile]) if (untrusted(fs.lstatSync(p), p)) return false;
    return fs.readFileSync(stampFile, 'utf8') === stamp;
  } catch {
    return false;
  }
}
