/**
 * Where things are: the xwalk checkout (found from this file, so the
 * bundled bins work too) and the folders packs are found in.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from './errors.ts';

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
 * The folders packs are found in, first first: those of XWALK_PACKS (a
 * list separated by ':', as PATH), then the built-in ones. A folder of
 * XWALK_PACKS that does not exist is an error, not an empty list.
 */
export function packDirs(): string[] {
  const extra = (process.env.XWALK_PACKS ?? '').split(':').filter((d) => d !== '');
  for (const d of extra) {
    if (!isDirectory(d)) throw new UserError(`XWALK_PACKS: ${d} is not a folder (XWALK_PACKS lists folders of packs, separated by ':')`);
  }
  return [...new Set([...extra.map((d) => path.resolve(d)), builtinPacksDir()])];
}

/** The folder of pack `name`: the first of packDirs() that has NAME/schema.yaml; null when none has. */
export function packDir(name: string): string | null {
  for (const d of packDirs()) {
    const dir = path.join(d, name);
    if (fs.existsSync(path.join(dir, 'schema.yaml'))) return dir;
  }
  return null;
}

/** Every pack name, each once (the first folder that has it wins), sorted. */
export function packNames(): string[] {
  const names = new Set<string>();
  for (const d of packDirs()) {
    if (!isDirectory(d)) continue;
    for (const n of fs.readdirSync(d)) if (fs.existsSync(path.join(d, n, 'schema.yaml'))) names.add(n);
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
