/** Paths inside the xwalk checkout, found from this file so the bundled bins work too. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

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

export const packsDir = (): string => process.env.XWALK_PACKS ?? path.join(repoRoot(), 'packs');

/** xwalk's version, from its package.json (xsample --version, xgen --version). */
export function xwalkVersion(): string {
  return String(JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8')).version);
}
