/** The user's xwalk cache: $XDG_CACHE_HOME/xwalk/KIND, else ~/.cache/xwalk/KIND. */
import os from 'node:os';
import path from 'node:path';

/**
 * layouts: derived from a binary's own DWARF; schemas: checked IRs; packs: a folder of packs holding
 * the layouts `xgen layout --for FILE` probed for installed builds (packDirs() reads it); symbols:
 * recovered symbol tables by build-id.
 */
export type CacheKind = 'layouts' | 'schemas' | 'packs' | 'symbols';

export function cacheDir(kind: CacheKind = 'layouts'): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'xwalk', kind);
}
