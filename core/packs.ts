/**
 * Where things are: the xwalk checkout (found from this file, so the
 * bundled bins work too) and the folders packs are found in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir } from './cache-dir.ts';
import { UserError } from './errors.ts';
import { me, untrusted } from './trust.ts';

let root: string | undefined;

export function repoRoot(): string {
  if (root) return root;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && JSON.parse(fs.readFileSync(pkg, 'utf8')).name === 'xwalk') return (root = dir);
    const up = path.dirname(dir);
    if (up === dir) throw new Error('cannot find the xwalk checkout above ' + fileURLToPath(import.meta.url));
    dir = up;
  }
}

/** The packs that come with xwalk. */
export const builtinPacksDir = (): string => path.join(repoRoot(), 'packs');

/**
 * A pack decides what is read and printed, so a folder of packs (built-in,
 * XWALK_PACKS, the one an imported file is found in) is used only when no
 * one but root or you could have written it: every folder from the folder
 * of packs down to the file, and the file, owned by root or you and
 * writable by no one else, none a symlink. Otherwise one line says why and
 * it is skipped, as if it were not there.
 */
let warnUntrusted = (message: string): void => console.error(`xwalk: ${message}`);
const warned = new Set<string>();

/** Where the one line about a skipped pack folder goes (the CLIs prefix their name). */
export function onUntrustedPack(warn: (message: string) => void): void {
  warnUntrusted = warn;
}

/** Why `file` (top itself, or a folder or file inside it) cannot be trusted: each step from top down to it is checked; null when all can be (or it does not exist). */
export function packPathProblem(top: string, file: string): string | null {
  const rel = path.relative(top, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return `${file} is outside ${top}`;
  const owners = [0, me()];
  let step = top;
  for (const part of ['', ...(rel ? rel.split(path.sep) : [])]) {
    step = path.join(step, part);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(step);
    } catch {
      return null;
    }
    const why = untrusted(st, step, owners);
    if (why) return why;
  }
  return null;
}

/** Whether `file` inside the folder of packs `top` may be used; when not, it says why (once) and the caller skips it. */
export function trustedInPacks(top: string, file: string): boolean {
  const why = packPathProblem(top, file);
  if (!why) return true;
  if (!warned.has(why)) {
    warned.add(why);
    warnUntrusted(`skipping ${file}: ${why} (a pack is used only when root or you own it and no one else can write it)`);
  }
  return false;
}

const realFolder = (d: string): string => {
  try {
    return fs.realpathSync(d);
  } catch {
    return path.resolve(d);
  }
};

/**
 * The folders packs are found in, first first: those of XWALK_PACKS (a
 * list separated by ':', as PATH), then the built-in ones, then the user's
 * cache of probed layouts (cacheDir('packs')); a folder that
 * cannot be trusted is skipped, saying why. A folder of XWALK_PACKS that
 * does not exist is an error, not an empty list.
 */
export function packDirs(): string[] {
  const extra = (process.env.XWALK_PACKS ?? '').split(':').filter((d) => d !== '');
  for (const d of extra) {
    if (!isDirectory(d)) throw new UserError(`XWALK_PACKS: ${d} is not a folder (XWALK_PACKS lists folders of packs, separated by ':')`);
  }
  // The user's cache holds the layouts `xgen layout --for FILE` probed: a folder of packs with layouts only, used when it exists.
  const cached = isDirectory(cacheDir('packs')) ? [realFolder(cacheDir('packs'))] : [];
  return [...new Set([...extra.map(realFolder), realFolder(builtinPacksDir()), ...cached])].filter((d) => trustedInPacks(d, d));
}

/** The folder of pack `name`: the first of packDirs() that has NAME/schema.yaml we may trust; null when none has. */
export function packDir(name: string): string | null {
  for (const d of packDirs()) {
    const dir = path.join(d, name);
    const schema = path.join(dir, 'schema.yaml');
    if (fs.existsSync(schema) && trustedInPacks(d, schema)) return dir;
  }
  return null;
}

/** Every pack name, each once (the first folder that has it wins), sorted. */
export function packNames(): string[] {
  const names = new Set<string>();
  for (const d of packDirs()) {
    if (!isDirectory(d)) continue;
    for (const n of fs.readdirSync(d)) {
      const schema = path.join(d, n, 'schema.yaml');
      if (fs.existsSync(schema) && trustedInPacks(d, schema)) names.add(n);
    }
  }
  return [...names].sort();
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** xwalk's version, from its package.json (xsample --version, xgen --version). */
export function xwalkVersion(): string {
  return String(JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')).version);
}
