/**
 * Whether a debug build's symbols may name a stripped object: one check,
 * used by every route (debuginfod, -dbgsym, a rebuild, the nearest release).
 * Accepted when the build-ids are equal, or when the two are twins in all
 * that is loaded: every PT_LOAD at the same address with the same sizes and
 * flags, and every executable and read-only section byte-identical (its
 * build-id note aside: the id hashes the debug sections too, so a rebuild
 * of the same source differs there and only there).
 */
import { type ElfFile, type ElfSection, PT_LOAD, SHF_ALLOC, SHF_WRITE, SHT_NOBITS, SHT_NOTE } from '../../core/elf.ts';

export type Verdict = { ok: true; verified: string } | { ok: false; why: string };

const hex = (n: number): string => `0x${n.toString(16)}`;

export function verifyTwin(target: ElfFile, debug: ElfFile): Verdict {
  const id = target.buildId();
  if (id !== null && id === debug.buildId()) return { ok: true, verified: 'build-id equal' };
  const mine = target.segments.filter((s) => s.type === PT_LOAD);
  const theirs = debug.segments.filter((s) => s.type === PT_LOAD);
  if (mine.length === 0) return { ok: false, why: `${target.path} has no loadable segments` };
  if (mine.length !== theirs.length) return { ok: false, why: `${mine.length} loadable segments against ${theirs.length}` };
  for (let i = 0; i < mine.length; i++) {
    const a = mine[i];
    const b = theirs[i];
    for (const k of ['vaddr', 'memsz', 'filesz', 'flags'] as const) {
      if (a[k] !== b[k]) return { ok: false, why: `loadable segment ${i} (at ${hex(a.vaddr)}) has ${k} ${hex(a[k])} against ${hex(b[k])}` };
    }
  }
  // A debug file (objcopy --only-keep-debug) keeps headers but not bytes: it can only be matched by build-id.
  const loaded = target.sections.filter(compared);
  if (loaded.length === 0) return { ok: false, why: `${target.path} has no section headers to compare` };
  let bytes = 0;
  for (const s of loaded) {
    const t = debug.section(s.name);
    if (!t || t.addr !== s.addr || t.size !== s.size) return { ok: false, why: `${s.name} is ${t ? `at ${hex(t.addr)}, ${hex(t.size)} bytes` : 'missing'} in the debug build, at ${hex(s.addr)}, ${hex(s.size)} bytes here` };
    if (t.type === SHT_NOBITS) return { ok: false, why: `${s.name} has no bytes in the debug build (a debug file, not a build)` };
    const at = firstDifference(target, s, debug, t);
    if (at !== null) return { ok: false, why: `${s.name} differs at ${hex(at)} (of ${hex(s.size)} bytes)` };
    bytes += s.size;
  }
  const writable = target.sections.filter((s) => (s.flags & SHF_ALLOC) !== 0 && (s.flags & SHF_WRITE) !== 0);
  for (const s of writable) {
    const t = debug.section(s.name);
    if (!t || t.addr !== s.addr || t.size !== s.size) return { ok: false, why: `${s.name} is ${t ? `at ${hex(t.addr)}, ${hex(t.size)} bytes` : 'missing'} in the debug build, at ${hex(s.addr)}, ${hex(s.size)} bytes here` };
  }
  return { ok: true, verified: `loaded sections identical (${mine.length} segments; ${loaded.length} read-only and executable sections, ${bytes} bytes, byte for byte; ${writable.length} writable at the same addresses); build-ids differ` };
}

/** Loaded, not writable, with bytes in the file: code and read-only data. The build-id note is what differs by design. */
function compared(s: ElfSection): boolean {
  if ((s.flags & SHF_ALLOC) === 0 || (s.flags & SHF_WRITE) !== 0 || s.type === SHT_NOBITS || s.size === 0) return false;
  return !(s.type === SHT_NOTE && s.name === '.note.gnu.build-id');
}

/** The offset in section a of the first byte that differs from b's, or null. */
function firstDifference(ea: ElfFile, a: ElfSection, eb: ElfFile, b: ElfSection): number | null {
  const chunk = 1 << 20;
  for (let at = 0; at < a.size; at += chunk) {
    const n = Math.min(chunk, a.size - at);
    const x = ea.readFileBytes(a.offset + at, n);
    const y = eb.readFileBytes(b.offset + at, n);
    if (x.length !== n || y.length !== n) return at + Math.min(x.length, y.length);
    if (!x.equals(y)) {
      for (let i = 0; i < n; i++) if (x[i] !== y[i]) return at + i;
    }
  }
  return null;
}
