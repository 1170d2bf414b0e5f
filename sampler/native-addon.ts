/** The native addons (sampler/native), loaded once each; null when they were not built. */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const loaded = new Map<string, unknown>();

/** The addon `name` (xwalk_pvr, xwalk_perf) from the bundle's folder or from the sources', or null. */
export function loadAddon<T>(name: string): T | null {
  if (loaded.has(name)) return loaded.get(name) as T | null;
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = [path.join(here, `native/build/Release/${name}.node`), path.join(here, `../sampler/native/build/Release/${name}.node`)].find((f) =>
    fs.existsSync(f),
  );
  const addon = file ? (createRequire(import.meta.url)(file) as T) : null;
  loaded.set(name, addon);
  return addon;
}
