/** The native addons (sampler/native), loaded once each; null when they were not built. */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../../core/errors.ts';

const loaded = new Map<string, unknown>();

/**
 * The addon `name` (xwalk_pvr, xwalk_perf): beside a bundle (its own native/, as a bundle copied with its addons
 * carries it), in the checkout's or the package's sampler/native/ as the bundle in dist/ finds it, or as
 * sampler/memory/ run from source finds it; or null.
 * One built for another Node (its NODE_MODULE_VERSION is not process.versions.modules: node was
 * upgraded after npm install -g built it) is one line saying how to rebuild it.
 */
export function loadAddon<T>(name: string): T | null {
  if (loaded.has(name)) return loaded.get(name) as T | null;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = [path.join(here, `native/build/Release/${name}.node`), path.join(here, `../sampler/native/build/Release/${name}.node`), path.join(here, `../native/build/Release/${name}.node`)].find((f) =>
    fs.existsSync(f),
  );
  let addon: T | null = null;
  if (file) {
    try {
      addon = createRequire(import.meta.url)(file) as T;
    } catch (err) {
      const abi = /NODE_MODULE_VERSION (\d+)/.exec((err as Error).message);
      if (!abi) throw err;
      throw new UserError(
        `${file} was built for another Node (NODE_MODULE_VERSION ${abi[1]}; this node ${process.version} is ${process.versions.modules}): ` +
          `rebuild it with npm rebuild -g xwalk (an installed package) or make native (a checkout)`,
      );
    }
  }
  loaded.set(name, addon);
  return addon;
}
