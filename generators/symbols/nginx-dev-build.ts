/**
 * A debug build of Debian's nginx from the source nginx-dev ships
 * (/usr/share/nginx/src, Debian's patches applied), configured as the
 * stripped executable says it was (the `configure arguments:` line `nginx -V`
 * prints is a string in its .rodata: read from the file, the binary is never
 * run), with the file-prefix map pointed at the build folder. Dynamic modules
 * are left out (they are other files). Its .symtab names the functions and
 * data of the installed executable: exactly when its loaded code is
 * identical (the rebuild route), else through matchSymbols (match.ts).
 *
 * The build runs in `work` (a private folder the caller chose), niced and
 * under /tmp/xwalk-build.lock (one heavy build at a time); a finished build
 * whose inputs are unchanged is reused.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ElfFile } from '../../core/elf.ts';
import { UserError } from '../../core/errors.ts';

export const NGINX_DEV_SOURCE = '/usr/share/nginx/src';
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
  /** The configure arguments it was built with. */
  args: string[];
  /** Whether it was built now (false: reused from work). */
  built: boolean;
}

/**
 * Builds (or reuses) a debug nginx in `work` for the stripped executable `target` from nginx-dev's source.
 * `work` must be a folder of the caller's own (it is created 0700 when missing).
 */
export async function buildNginxDebug(target: string, work: string, progress?: (msg: string) => void, source = NGINX_DEV_SOURCE): Promise<NginxDebugBuild> {
  const say = progress ?? (() => {});
  if (!fs.existsSync(path.join(source, 'configure'))) throw new UserError(`${source}/configure is missing: apt-get install nginx-dev`);
  const elf = ElfFile.open(target);
  let raw: string[];
  try {
    raw = nginxConfigureArguments(elf);
  } finally {
    elf.close();
  }
  fs.mkdirSync(work, { recursive: true, mode: 0o700 });
  const src = path.join(work, 'src');
  const args = rebuildArguments(raw, src);
  const stampFile = path.join(work, 'stamp.json');
  const binary = path.join(src, 'objs', 'nginx');
  const stamp = JSON.stringify({ source, version: sourceVersion(source), args });
  if (fs.existsSync(binary) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8') === stamp) {
    say(`reusing the debug nginx in ${src}`);
    return { binary, args, built: false };
  }
  const { execa } = await import('execa');
  fs.rmSync(src, { recursive: true, force: true });
  fs.rmSync(stampFile, { force: true });
  fs.cpSync(source, src, { recursive: true });
  const run = async (what: string, cmd: string[], log: string): Promise<void> => {
    say(`${what} (log: ${log})`);
    const r = await execa('flock', [BUILD_LOCK, 'nice', '-n', '10', ...cmd], { cwd: src, reject: false, all: true, env: { LC_ALL: 'C' } });
    fs.writeFileSync(log, r.all ?? '');
    if (r.exitCode !== 0) throw new UserError(`${what} failed (exit ${r.exitCode}): ${(r.all ?? '').split('\n').slice(-15).join('\n')}`);
  };
  await run(`configuring nginx-dev's source as ${target} was configured`, ['./configure', ...args], path.join(work, 'configure.log'));
  await run('compiling nginx with -g', ['make', '-j2', '-f', 'objs/Makefile'], path.join(work, 'make.log'));
  if (!fs.existsSync(binary)) throw new UserError(`the build left no ${binary}`);
  fs.writeFileSync(stampFile, stamp);
  return { binary, args, built: true };
}

/** nginx-dev's version, as dpkg knows it (the source folder's changelog), or '' when unknown. */
function sourceVersion(source: string): string {
  try {
    return fs.readFileSync(path.join(source, 'debian', 'changelog'), 'utf8').split('\n')[0];
  } catch {
    return fs.statSync(path.join(source, 'configure')).mtimeMs.toString();
  }
}
