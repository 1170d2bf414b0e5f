/**
 * Which build of which program a binary is: the release its version
 * string names and the build signature, found by a pack's patterns in the
 * binary's .rodata. What both may look like is checked here (and in
 * py-common/xwalk_commands.py), since both end up in folder names and
 * messages.
 */
import type { ElfFile } from './elf.ts';
import type { Program } from './pattern.ts';

/** What of a pack identifies its binary: its compiled binary.version and binary.signature patterns. */
export interface Identifying {
  versionPattern: { program: Program } | null;
  signaturePattern: { program: Program } | null;
}

/**
 * The release the pack's binary.version pattern finds in the binary's
 * .rodata. It names a folder (packs/PACK/RELEASE) and appears in messages:
 * only a plain release name counts (1.22.1, 7.0.15-rc1), never "../x".
 */
export function versionOf(pack: Identifying, exe: ElfFile): string | null {
  const v = pack.versionPattern ? exe.findPattern(pack.versionPattern.program) : null;
  return v !== null && RELEASE.test(v) ? v : null;
}

/** The build signature (binary.signature) found in the binary: printable text only. */
export function signatureOf(pack: Identifying, exe: ElfFile): string | null {
  const s = pack.signaturePattern ? exe.findPattern(pack.signaturePattern.program) : null;
  return s !== null && SIGNATURE.test(s) ? s : null;
}

/** What a release and a signature may look like (py-common/xwalk_commands.py checks the same). */
export const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;
export const SIGNATURE = /^[\x20-\x7e]{1,1024}$/;

