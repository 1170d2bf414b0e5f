/**
 * Names for a stripped object from the debug build of a nearby release,
 * matched function by function (issue 24, the "nearest release" route):
 * when the exact source of an installed build cannot be rebuilt, its
 * functions and data are placed by comparing code, never by guessing.
 *
 * - The target's functions are where its .eh_frame FDEs start (their ranges
 *   are the extents), plus its .dynsym exports and its entry point; the
 *   debug build's are its .symtab's sized STT_FUNC entries.
 * - Each function's code is hashed with every linker-chosen address masked
 *   (generators/symbols/x86-mask.ts): equal hashes mean equal code but for
 *   where things were placed.
 * - Anchors: the names the target exports (.dynsym) and its entry point.
 * - Rounds, until nothing changes: a matched pair's k-th reference on each
 *   side proposes a pair (a call: two functions; a RIP-relative reference:
 *   a data object and where it lies in the target; a relocated pointer in a
 *   matched object: what it points to); then functions whose code, with
 *   every reference written as what it is known to be (a matched symbol, an
 *   import, a string), is unique on both sides with the same size.
 * - Every pair is verified before it is accepted: same size, same code (or
 *   the same reference structure for a function a matched caller names), and
 *   each reference that lands on an already-matched symbol lands on the same
 *   one at the same position; an object fits its section and overlaps no
 *   other, with its relocated words at the same offsets. Two candidates for
 *   one symbol is no match: it stays an address.
 * - Last, when nothing else moves: a function the newer release changed (its
 *   size differs) is named when every reference to it comes from a pair of
 *   identical code and all agree (the same call in the same code calls the
 *   same function), an FDE starts there and the sizes are within a factor of
 *   two; `verified` counts these apart. The references of such a changed
 *   pair are aligned on those known on both sides (longest common
 *   subsequence): equal runs between two anchors are weak proposals,
 *   accepted for identical code (functions) or a verified fit (objects).
 *
 * Measured (2 loaded cores), no false name in any: Debian's memcached
 * 1.6.18-1+deb12u1 against 1.6.18-1's debug build, 379 of 383 functions and
 * 153 of 158 objects, 534 names where the exact twin has them, under 1 s; a
 * simulated point release (test-targets/memcached/point-release.patch), 534
 * names where its own .symtab has them; Debian's nginx 1.22.1-9+deb12u12
 * against deb12u9's debug build, 1623 of 1640 functions and 655 of 663
 * objects in about 2 s, and with its exports hidden 743 of its 751 exported
 * names found; Debian's redis-server against our -g build (other flags),
 * exports hidden, 3270 of 4002 exported names found.
 */
import crypto from 'node:crypto';
import { ET_EXEC, PT_LOAD, u16, STB_GLOBAL, STB_LOCAL, STB_WEAK, STT_FILE, STT_FUNC, STT_OBJECT, SHN_ABS, SHN_UNDEF, SHT_NOBITS, u32, u64, cString, type ElfFile, type ElfSection } from '../../core/elf.ts';
import { UserError } from '../../core/errors.ts';
import type { RecoveredSymbol } from '../../core/symbol-table.ts';
import { ehFrameOf } from '../../core/eh-frame.ts';
import { maskCode, type CodeRef, type MaskedCode } from './x86-mask.ts';

export interface MatchResult {
  symbols: RecoveredSymbol[];
  /** Functions and objects of the debug build placed in the target. */
  matched: number;
  /** Functions and objects of the debug build (distinct addresses). */
  total: number;
  /** In words: "matched 1702 of 1750 functions and 310 of 330 objects of FILE's debug build ...". */
  verified: string;
}

const R_X86_64_64 = 1;
const R_X86_64_GLOB_DAT = 6;
const R_X86_64_JUMP_SLOT = 7;
const R_X86_64_RELATIVE = 8;
const SHT_RELA = 4;
const EM_X86_64 = 62;
const MAX_ROUNDS = 64;
const MAX_FUNCTION = 1 << 20;
/** Code shorter than this is matched by its code alone only when a reference names a matched symbol: short code recurs in unrelated programs. */
const MIN_UNIQUE = 32;
/** Reference lists longer than this (the product of the two) are not aligned when a function changed. */
const MAX_ALIGN = 4_000_000;

interface Fn {
  start: number;
  size: number;
  code: MaskedCode | null;
  /** sha1 of the masked bytes, or '' when the code did not decode. */
  hash: string;
}

interface Obj {
  value: number;
  size: number;
  section: string;
}

/** A debug build's named symbol (functions and objects with a size). */
interface Named {
  name: string;
  value: number;
  size: number;
  kind: 'func' | 'object';
  bind: RecoveredSymbol['bind'];
  file?: string;
}

/** What matching knows of one object file: its code, its imports, its relocated pointers, its sections. */
class Side {
  readonly fns = new Map<number, Fn>();
  /** PLT stubs and GOT slots that stand for an imported name. */
  readonly imports = new Map<number, string>();
  /** GOT slots and data words the loader fills with a link-time address of the object (R_X86_64_RELATIVE). */
  readonly pointers = new Map<number, number>();
  private readonly image: { lo: number; hi: number } | null;
  private readonly strings = new Map<number, string | null>();

  constructor(readonly elf: ElfFile) {
    const loads = elf.segments.filter((s) => s.type === PT_LOAD);
    const lo = Math.min(...loads.map((s) => s.vaddr));
    const hi = Math.max(...loads.map((s) => s.vaddr + s.memsz));
    // A PIE or shared object has no absolute address in its code (no text relocations): its immediates are numbers.
    this.image = elf.type === ET_EXEC && loads.length > 0 ? { lo, hi } : null;
    this.readRelocations();
  }

  section(addr: number): ElfSection | null {
    for (const s of this.elf.sections) if (s.addr !== 0 && addr >= s.addr && addr < s.addr + s.size) return s;
    return null;
  }

  addFn(start: number, size: number): Fn | null {
    const known = this.fns.get(start);
    if (known) return known;
    if (size <= 0 || size > MAX_FUNCTION) return null;
    const bytes = this.elf.readVaddr(start, size);
    if (!bytes) return null;
    const code = maskCode(bytes, start, this.image);
    const fn: Fn = { start, size, code, hash: code ? crypto.createHash('sha1').update(code.masked).digest('hex') : '' };
    this.fns.set(start, fn);
    return fn;
  }

  /** The string at addr when it is one (printable, NUL-terminated, 2 to 200 bytes) in a read-only section. */
  stringAt(addr: number): string | null {
    const known = this.strings.get(addr);
    if (known !== undefined) return known;
    const str = this.readString(addr);
    this.strings.set(addr, str);
    return str;
  }

  private readString(addr: number): string | null {
    const s = this.section(addr);
    if (!s || s.type === SHT_NOBITS || !s.name.startsWith('.rodata')) return null;
    const bytes = this.elf.readVaddr(addr, Math.min(201, s.addr + s.size - addr));
    if (!bytes) return null;
    const end = bytes.indexOf(0);
    if (end < 2) return null;
    for (let i = 0; i < end; i++) if (bytes[i] < 0x09 || bytes[i] > 0x7e) return null;
    return bytes.toString('latin1', 0, end);
  }

  private readRelocations(): void {
    const dynsym = this.elf.sections.find((s) => s.name === '.dynsym');
    const names: string[] = [];
    if (dynsym) {
      const strtab = this.elf.sections[dynsym.link];
      const str = strtab ? this.elf.sectionBytes(strtab) : Buffer.alloc(0);
      const tab = this.elf.sectionBytes(dynsym);
      for (let at = 0; at + 24 <= tab.length; at += 24) names.push(cString(str, u32(tab, at)));
    }
    const slots = new Map<number, string>();
    for (const s of this.elf.sections) {
      if (s.type !== SHT_RELA || s.entsize !== 24) continue;
      const tab = this.elf.sectionBytes(s);
      for (let at = 0; at + 24 <= tab.length; at += 24) {
        const offset = u64(tab, at);
        const type = u32(tab, at + 8);
        const sym = u32(tab, at + 12);
        const addend = u64(tab, at + 16);
        if (type === R_X86_64_RELATIVE) this.pointers.set(offset, addend);
        else if ((type === R_X86_64_GLOB_DAT || type === R_X86_64_JUMP_SLOT || type === R_X86_64_64) && names[sym]) slots.set(offset, names[sym]);
      }
    }
    for (const [slot, name] of slots) this.imports.set(slot, name);
    // A PLT stub is `jmp *slot(%rip)` (FF 25 disp32), after an endbr64 or a bnd prefix in .plt.sec builds.
    for (const s of this.elf.sections) {
      if (!/^\.plt(\.sec|\.got)?$/.test(s.name) || s.type === SHT_NOBITS) continue;
      const bytes = this.elf.sectionBytes(s);
      const step = s.name === '.plt.got' ? 8 : 16;
      for (let at = 0; at + step <= bytes.length; at += step) {
        for (let i = at; i + 6 <= at + step; i++) {
          if (bytes[i] !== 0xff || bytes[i + 1] !== 0x25) continue;
          const slot = s.addr + i + 6 + bytes.readInt32LE(i + 2);
          const name = slots.get(slot);
          if (name) this.imports.set(s.addr + at, name);
          break;
        }
      }
    }
  }
}

/** The debug build's sized functions and objects, each local with the STT_FILE it follows. */
function debugSymbols(elf: ElfFile): Named[] {
  const out: Named[] = [];
  let file: string | undefined;
  for (const s of elf.symbols()) {
    if (s.type === STT_FILE) {
      file = s.name;
      continue;
    }
    if (s.type !== STT_FUNC && s.type !== STT_OBJECT) continue;
    if (s.size === 0 || s.shndx === SHN_UNDEF || s.shndx === SHN_ABS) continue;
    const bind = s.bind === STB_LOCAL ? 'local' : s.bind === STB_WEAK ? 'weak' : s.bind === STB_GLOBAL ? 'global' : null;
    if (!bind) continue;
    out.push({ name: s.name, value: s.value, size: s.size, kind: s.type === STT_FUNC ? 'func' : 'object', bind, ...(bind === 'local' && file !== undefined ? { file } : {}) });
  }
  return out;
}

/** Sorted ranges, found by address. */
class Ranges<T extends { value: number; size: number }> {
  private sorted: T[];
  constructor(items: Iterable<T>) {
    this.sorted = [...items].sort((a, b) => a.value - b.value);
  }
  add(item: T): void {
    this.sorted.push(item);
    this.sorted.sort((a, b) => a.value - b.value);
  }
  find(addr: number): T | null {
    let lo = 0;
    let hi = this.sorted.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid].value <= addr) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0) return null;
    const r = this.sorted[found];
    return addr < r.value + r.size ? r : null;
  }
  overlaps(value: number, size: number): boolean {
    return this.sorted.some((r) => r.value < value + size && value < r.value + r.size);
  }
}

export interface MatchOptions {
  /**
   * Anchor on the target's exported names (default true). Off, the names a target exports are a truth to
   * measure the matching against: what a program that exports nothing (memcached) gets.
   */
  useExports?: boolean;
  /** What the debug build is, in words, for `verified` ("nginx 1.22.1-9+deb12u9"); its path when not given. */
  debugName?: string;
}

/** A pair to verify; fromSame: proposed by a reference of a pair whose code is identical (masked). */
type Proposal = { kind: 'func' | 'object'; d: number; t: number; fromSame?: boolean; weak?: boolean };

/**
 * The names of target's functions and objects, from debug (a debug build of
 * the same program, ideally of the nearest release), at target's link-time
 * addresses. Both must be x86-64 ELF objects; debug must have a .symtab.
 */
export function matchSymbols(target: ElfFile, debug: ElfFile, progress?: (msg: string) => void, options: MatchOptions = {}): MatchResult {
  const started = Date.now();
  const say = progress ?? (() => {});
  for (const e of [target, debug]) {
    const machine = u16(e.readFileBytes(18, 2), 0);
    if (machine !== EM_X86_64) throw new UserError(`${e.path}: machine ${machine}, not x86-64: its code cannot be matched`);
  }
  const named = debugSymbols(debug);
  if (!named.some((s) => s.kind === 'func')) throw new UserError(`${debug.path}: no function symbols (.symtab) to match from`);

  const D = new Side(debug);
  const T = new Side(target);
  const dFnNames = new Map<number, Named[]>();
  const dObjects = new Map<number, Obj & { names: Named[] }>();
  for (const s of named) {
    if (s.kind === 'func') {
      const list = dFnNames.get(s.value) ?? [];
      list.push(s);
      dFnNames.set(s.value, list);
      D.addFn(s.value, s.size);
    } else {
      const known = dObjects.get(s.value);
      if (known) {
        known.names.push(s);
        known.size = Math.max(known.size, s.size);
      } else dObjects.set(s.value, { value: s.value, size: s.size, section: D.section(s.value)?.name ?? '', names: [s] });
    }
  }
  const dObjRanges = new Ranges(dObjects.values());

  // The target's functions: FDE ranges, .dynsym functions, the entry point.
  const eh = ehFrameOf(target);
  for (const fde of eh?.allFdes() ?? []) T.addFn(fde.start, fde.end - fde.start);
  const tExports = target.sections.some((s) => s.name === '.dynsym') ? target.symbols().filter((s) => s.shndx !== SHN_UNDEF && s.shndx !== SHN_ABS && s.bind !== STB_LOCAL) : [];
  for (const s of tExports) if (s.type === STT_FUNC && s.size > 0) T.addFn(s.value, s.size);
  say(`${T.fns.size} functions in ${target.path} (.eh_frame, .dynsym), ${dFnNames.size} functions and ${dObjects.size} objects in ${debug.path}`);

  const fnD2T = new Map<number, number>();
  const fnT2D = new Map<number, number>();
  const objD2T = new Map<number, number>();
  const objT2D = new Map<number, number>();
  const tObjRanges = new Ranges<{ value: number; size: number; d: number }>([]);
  /** Pairs proposed two ways: never accepted. */
  const refused = new Set<string>();
  let byName = 0;
  let changed = 0;
  let weakObjects = 0;

  const acceptFn = (d: number, t: number): void => {
    fnD2T.set(d, t);
    fnT2D.set(t, d);
  };
  const acceptObj = (d: number, t: number): void => {
    objD2T.set(d, t);
    objT2D.set(t, d);
    tObjRanges.add({ value: t, size: dObjects.get(d)!.size, d });
  };

  /**
   * What a reference lands on, in terms both sides share: an import's name, a matched function or object (by its
   * debug build address) and offset, a string's text, or '?'. A GOT slot the loader fills with an address of the
   * object stands for that address (prefix *).
   */
  const refKey = (side: Side, fn: (a: number) => number | undefined, obj: (a: number) => { d: number; off: number } | null, ref: CodeRef): string => {
    const imp = side.imports.get(ref.target);
    if (imp) return `i:${imp}`;
    let a = ref.target;
    let via = '';
    const p = side.pointers.get(a);
    if (ref.kind === 'data' && p !== undefined && side.section(a)?.name === '.got') {
      a = p;
      via = '*';
    }
    const f = fn(a);
    if (f !== undefined) return `${via}f:${f}`;
    const o = obj(a);
    if (o) return `${via}o:${o.d}+${o.off}`;
    const s = side.stringAt(a);
    return s === null ? '?' : `${via}s:${s}`;
  };
  const keyD = (ref: CodeRef): string =>
    refKey(D, (a) => (fnD2T.has(a) ? a : undefined), (a) => {
      const o = dObjRanges.find(a);
      return o && objD2T.has(o.value) ? { d: o.value, off: a - o.value } : null;
    }, ref);
  const keyT = (ref: CodeRef): string =>
    refKey(T, (a) => fnT2D.get(a), (a) => {
      const o = tObjRanges.find(a);
      return o ? { d: o.d, off: a - o.value } : null;
    }, ref);

  /** A debug function and a target function are the same: sizes, code or shape, and every known reference agree. */
  const verifyFn = (d: number, t: number, sameCodeOnly: boolean): boolean => {
    const df = D.fns.get(d);
    const tf = T.fns.get(t);
    if (!df || !tf || df.size !== tf.size || !df.code || !tf.code) return false;
    if (df.hash !== tf.hash) {
      if (sameCodeOnly) return false;
      if (df.code.insns !== tf.code.insns || df.code.refs.length !== tf.code.refs.length) return false;
      for (let k = 0; k < df.code.refs.length; k++) {
        if (df.code.refs[k].kind !== tf.code.refs[k].kind || df.code.refs[k].insn !== tf.code.refs[k].insn) return false;
      }
    }
    for (let k = 0; k < df.code.refs.length; k++) {
      const a = keyD(df.code.refs[k]);
      const b = keyT(tf.code.refs[k]);
      const known = (x: string) => x !== '?' && !x.startsWith('s:');
      if ((known(a) || known(b)) && a !== b) return false;
    }
    return true;
  };

  /** A debug object fits at t in the target: same section, no overlap, the same relocated words. */
  const verifyObj = (d: number, t: number): boolean => {
    const o = dObjects.get(d);
    if (!o || objT2D.has(t)) return false;
    const ts = T.section(t);
    if (!ts || ts.name !== o.section || t + o.size > ts.addr + ts.size) return false;
    if (tObjRanges.overlaps(t, o.size)) return false;
    for (let off = 0; off < o.size; off += 8) {
      if (D.pointers.has(d + off) !== T.pointers.has(t + off)) return false;
    }
    return true;
  };

  // Anchors: the target's own exported names, and its entry point.
  const dGlobals = new Map<string, Named>();
  for (const s of named) if (s.bind !== 'local') dGlobals.set(s.name, s);
  for (const s of options.useExports === false ? [] : tExports) {
    const d = dGlobals.get(s.name);
    if (!d) continue;
    if (d.kind === 'func' && s.type === STT_FUNC && !fnD2T.has(d.value) && !fnT2D.has(s.value) && T.fns.has(s.value)) {
      acceptFn(d.value, s.value);
      byName++;
    } else if (d.kind === 'object' && s.type === STT_OBJECT && !objD2T.has(d.value) && !objT2D.has(s.value) && dObjects.get(d.value)?.size === s.size) {
      acceptObj(d.value, s.value);
      byName++;
    }
  }
  if (dFnNames.has(debug.entry) && !fnD2T.has(debug.entry) && !fnT2D.has(target.entry)) {
    if (!T.fns.has(target.entry)) T.addFn(target.entry, D.fns.get(debug.entry)!.size);
    if (verifyFn(debug.entry, target.entry, true)) acceptFn(debug.entry, target.entry);
  }
  say(`${byName} anchored by the target's exported names`);

  for (let round = 1; round <= MAX_ROUNDS; round++) {
    const before = fnD2T.size + objD2T.size;
    // Propagation: what matched pairs refer to, position by position.
    const proposals: Proposal[] = [];
    for (const [d, t] of fnD2T) {
      const df = D.fns.get(d)?.code;
      const tf = T.fns.get(t)?.code;
      if (!df || !tf) continue;
      if (df.refs.length !== tf.refs.length) {
        alignChanged(df.refs, tf.refs, proposals);
        continue;
      }
      const same = D.fns.get(d)!.hash === T.fns.get(t)!.hash;
      for (let k = 0; k < df.refs.length; k++) {
        const a = df.refs[k];
        const b = tf.refs[k];
        if (a.kind !== b.kind || a.insn !== b.insn) break;
        propose(a.target, b.target, a.kind === 'data', proposals, same);
      }
    }
    for (const [d, t] of objD2T) {
      const o = dObjects.get(d)!;
      for (let off = 0; off < o.size; off += 8) {
        const a = D.pointers.get(d + off);
        const b = T.pointers.get(t + off);
        if (a !== undefined && b !== undefined) propose(a, b, true, proposals);
      }
    }
    const placed = settle(proposals, false);
    // Unique code: functions whose code and known references are theirs alone, with the same size on both sides.
    const unique = uniqueCode();
    // Nothing else moves: functions whose own code changed, named by callers whose code did not.
    const moved = placed + unique === 0 ? settle(proposals, true) : 0;
    say(`round ${round}: ${placed} placed by references, ${unique} by unique code, ${moved} changed functions by their callers; ${fnD2T.size} functions and ${objD2T.size} objects matched`);
    if (fnD2T.size + objD2T.size === before) break;
  }

  /**
   * The references of a matched function whose code changed (another count of references): aligned on those known
   * on both sides (the longest common subsequence of their keys); where the runs between two such anchors have the
   * same length and kinds, the unknown calls at equal positions are weak proposals (accepted for identical code only).
   */
  function alignChanged(a: CodeRef[], b: CodeRef[], into: Proposal[]): void {
    if (a.length * b.length > MAX_ALIGN) return;
    const ka = a.map(keyD);
    const kb = b.map(keyT);
    const n = a.length;
    const m = b.length;
    const w = m + 1;
    const lcs = new Uint16Array((n + 1) * w);
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i * w + j] = ka[i] !== '?' && ka[i] === kb[j] ? lcs[(i + 1) * w + j + 1] + 1 : Math.max(lcs[(i + 1) * w + j], lcs[i * w + j + 1]);
      }
    }
    const anchors: [number, number][] = [[-1, -1]];
    for (let i = 0, j = 0; i < n && j < m; ) {
      if (ka[i] !== '?' && ka[i] === kb[j]) {
        anchors.push([i, j]);
        i++;
        j++;
      } else if (lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) i++;
      else j++;
    }
    anchors.push([n, m]);
    for (let x = 1; x < anchors.length; x++) {
      const [i0, j0] = anchors[x - 1];
      const [i1, j1] = anchors[x];
      if (i1 - i0 !== j1 - j0) continue;
      let same = true;
      for (let k = 1; k < i1 - i0 && same; k++) same = a[i0 + k].kind === b[j0 + k].kind;
      if (!same) continue;
      for (let k = 1; k < i1 - i0; k++) {
        if (ka[i0 + k] !== '?' || kb[j0 + k] !== '?') continue;
        const before = into.length;
        propose(a[i0 + k].target, b[j0 + k].target, a[i0 + k].kind === 'data', into);
        for (let q = before; q < into.length; q++) into[q].weak = true;
      }
    }
  }

  function propose(dAddr: number, tAddr: number, data: boolean, into: Proposal[], fromSame = false): void {
    if (D.imports.has(dAddr) || T.imports.has(tAddr)) return;
    if (data && D.section(dAddr)?.name === '.got') {
      const a = D.pointers.get(dAddr);
      const b = T.pointers.get(tAddr);
      if (a === undefined || b === undefined) return;
      dAddr = a;
      tAddr = b;
    }
    if (dFnNames.has(dAddr)) {
      if (!fnD2T.has(dAddr) && !fnT2D.has(tAddr) && T.fns.has(tAddr)) into.push({ kind: 'func', d: dAddr, t: tAddr, fromSame });
      return;
    }
    const o = dObjRanges.find(dAddr);
    if (o && !objD2T.has(o.value)) into.push({ kind: 'object', d: o.value, t: tAddr - (dAddr - o.value) });
  }

  /**
   * Accepts the proposals that agree with each other and pass verification; returns how many. With changedCode, a
   * function whose size or code differs is accepted when every reference naming it comes from a pair of identical
   * code (the same call in the same code calls the same function: a patch changed the callee), all name the same
   * target, an FDE starts there, and the sizes are within a factor of two.
   */
  function settle(proposals: Proposal[], changedCode: boolean): number {
    const byD = new Map<string, Set<number>>();
    const byT = new Map<string, Set<number>>();
    const notSame = new Set<string>();
    const strong = new Set<string>();
    for (const p of proposals) {
      const dk = `${p.kind}:${p.d}`;
      const tk = `${p.kind}:${p.t}`;
      if (!p.fromSame) notSame.add(dk);
      if (!p.weak) strong.add(dk);
      (byD.get(dk) ?? byD.set(dk, new Set()).get(dk)!).add(p.t);
      (byT.get(tk) ?? byT.set(tk, new Set()).get(tk)!).add(p.d);
    }
    let n = 0;
    for (const [dk, ts] of byD) {
      const [kind, dStr] = dk.split(':');
      const d = Number(dStr);
      if (ts.size !== 1) {
        refused.add(dk);
        continue;
      }
      const t = [...ts][0];
      if (byT.get(`${kind}:${t}`)!.size !== 1) continue;
      if (kind === 'func') {
        if (fnD2T.has(d) || fnT2D.has(t)) continue;
        if (changedCode) {
          const df = D.fns.get(d)!;
          const tf = T.fns.get(t)!;
          if (notSame.has(dk) || tf.size > 2 * df.size || df.size > 2 * tf.size) continue;
          changed++;
        } else if (!verifyFn(d, t, !strong.has(dk))) continue;
        acceptFn(d, t);
      } else {
        if (changedCode || objD2T.has(d) || !verifyObj(d, t)) continue;
        if (!strong.has(dk)) weakObjects++;
        acceptObj(d, t);
      }
      n++;
    }
    return n;
  }

  function uniqueCode(): number {
    const groups = new Map<string, { d: number[]; t: number[] }>();
    for (const [d, f] of D.fns) {
      if (fnD2T.has(d) || !f.code || !dFnNames.has(d) || refused.has(`func:${d}`)) continue;
      // A part split off a function (.cold) is placed through its function; code too short to tell apart only through references.
      if (dFnNames.get(d)!.some((s) => s.name.includes('.cold'))) continue;
      const refs = f.code.refs.map(keyD);
      if (f.size < MIN_UNIQUE && !refs.some((r) => /^\*?[fo]:/.test(r))) continue;
      const k = `${f.size}:${f.hash}:${refs.join('\u0001')}`;
      (groups.get(k) ?? groups.set(k, { d: [], t: [] }).get(k)!).d.push(d);
    }
    for (const [t, f] of T.fns) {
      if (fnT2D.has(t) || !f.code) continue;
      const g = groups.get(`${f.size}:${f.hash}:${f.code.refs.map(keyT).join('\u0001')}`);
      if (g) g.t.push(t);
    }
    let n = 0;
    for (const g of groups.values()) {
      if (g.d.length !== 1 || g.t.length !== 1) continue;
      if (!verifyFn(g.d[0], g.t[0], true)) continue;
      acceptFn(g.d[0], g.t[0]);
      n++;
    }
    return n;
  }

  const symbols: RecoveredSymbol[] = [];
  for (const [d, t] of fnD2T) {
    for (const s of dFnNames.get(d) ?? []) symbols.push(recovered(s, t));
  }
  for (const [d, t] of objD2T) {
    for (const s of dObjects.get(d)!.names) symbols.push(recovered(s, t));
  }
  symbols.sort((a, b) => a.value - b.value || (a.name < b.name ? -1 : 1));
  const fnTotal = dFnNames.size;
  const objTotal = dObjects.size;
  const ms = Date.now() - started;
  const verified =
    `matched ${fnD2T.size} of ${fnTotal} functions and ${objD2T.size} of ${objTotal} objects of ${options.debugName ?? debug.path}'s debug build` +
    ` (build-id ${debug.buildId() ?? 'none'}; ${byName} by exported name, the rest by masked code and references, each verified` +
    `${changed ? `; ${changed} functions whose code changed named by unchanged callers` : ''}${weakObjects ? `; ${weakObjects} objects placed by changed functions` : ''}; ${ms} ms)`;
  say(verified);
  return { symbols, matched: fnD2T.size + objD2T.size, total: fnTotal + objTotal, verified };
}

function recovered(s: Named, value: number): RecoveredSymbol {
  return { name: s.name, value, size: s.size, kind: s.kind, bind: s.bind, ...(s.file !== undefined ? { file: s.file } : {}) };
}
