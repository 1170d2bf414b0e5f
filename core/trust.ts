/**
 * Whether a file or folder can only have been written by someone we trust:
 * what the layout cache (generators/layout-cache.ts) and the pack folders
 * (core/packs.ts) stand on. Root must never act on what another user wrote.
 */
import type fs from 'node:fs';

/** The effective uid: "you". */
export const me = (): number => process.geteuid?.() ?? -1;

/**
 * Why st (of path `what`, from lstat) cannot be trusted, or null: a symlink,
 * owned by someone not among `owners` (default: only you), or writable by
 * group or others.
 */
export function untrusted(st: fs.Stats, what: string, owners: number[] = [me()]): string | null {
  if (st.isSymbolicLink()) return `${what} is a symlink`;
  if (!owners.includes(st.uid)) return `${what} belongs to uid ${st.uid}, not to ${owners.length > 1 && owners.includes(0) ? 'root or you' : 'you'}`;
  if ((st.mode & 0o022) !== 0) return `${what} can be written by others (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
}
