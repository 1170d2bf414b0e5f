/**
 * Call frame information tables: the CIEs and FDEs of .eh_frame (found
 * through .eh_frame_hdr's binary search table when there is one) and of
 * .debug_frame (CIE id 0xffffffff, absolute addresses), as DWARF 5 §6.4
 * and the LSB's "Exception Frames" lay them out. Addresses are link-time.
 *
 * Every read is bounded by its section and by the entry's own length: a
 * malformed table (truncated, a length past the section, a CIE pointer to
 * nowhere) makes the lookup answer null, never throw out of find().
 */
import { type ElfFile, type ElfSection, PT_LOAD, u16, u32, u64 } from './elf.ts';

const PT_GNU_EH_FRAME = 0x6474e550;

/** Thrown by Reader on a read past its end; caught by the table, which then answers "no CFI". */
export class CfiError extends Error {}

/** A bounded little-endian reader over buf[pos, end). */
export class Reader {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {
    if (end > buf.length || pos < 0 || pos > end) throw new CfiError(`range ${pos}..${end} outside ${buf.length} bytes`);
  }

  private need(n: number): number {
    const at = this.pos;
    if (at + n > this.end) throw new CfiError(`read of ${n} bytes at ${at} past the end (${this.end})`);
    this.pos += n;
    return at;
  }

  u8(): number {
    return this.buf[this.need(1)];
  }
  u16(): number {
    return u16(this.buf, this.need(2));
  }
  u32(): number {
    return u32(this.buf, this.need(4));
  }
  u64(): number {
    return u64(this.buf, this.need(8));
  }
  s8(): number {
    const v = this.u8();
    return v >= 0x80 ? v - 0x100 : v;
  }
  s16(): number {
    const v = this.u16();
    return v >= 0x8000 ? v - 0x10000 : v;
  }
  s32(): number {
    const v = this.u32();
    return v >= 0x80000000 ? v - 0x100000000 : v;
  }
  /** A signed 64-bit value; exact for the magnitudes CFI holds (below 2^53). */
  s64(): number {
    const lo = this.u32();
    const hi = this.u32();
    return hi >= 0x80000000 ? (hi - 0x100000000) * 0x100000000 + lo : hi * 0x100000000 + lo;
  }
  u64big(): bigint {
    const at = this.need(8);
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + at, 8).readBigUInt64LE(0);
  }
  uleb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      const b = this.u8();
      if (i < 8) result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) return result;
      if (i > 16) throw new CfiError('LEB128 longer than 16 bytes');
    }
  }
  sleb(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; ; i++) {
      const b = this.u8();
      if (i < 8) result += (b & 0x7f) * mul;
      mul *= 128;
      if ((b & 0x80) === 0) {
        if (b & 0x40 && i < 8) result -= mul;
        return result;
      }
      if (i > 16) throw new CfiError('LEB128 longer than 16 bytes');
    }
  }
  cstring(): string {
    const start = this.pos;
    while (this.u8() !== 0) {
      /* bounded by end */
    }
    return Buffer.from(this.buf.buffer, this.buf.byteOffset + start, this.pos - 1 - start).toString('latin1');
  }
}

/** DW_EH_PE_* */
export const DW_EH_PE_omit = 0xff;
const PE_absptr = 0x00;
const PE_uleb128 = 0x01;
const PE_udata2 = 0x02;
const PE_udata4 = 0x03;
const PE_udata8 = 0x04;
const PE_sleb128 = 0x09;
const PE_sdata2 = 0x0a;
const PE_sdata4 = 0x0b;
const PE_sdata8 = 0x0c;
const PE_pcrel = 0x10;
const PE_datarel = 0x30;
const PE_indirect = 0x80;

/**
 * A pointer encoded as `enc` (DW_EH_PE_*) at r.pos, whose bytes lie at link-time address sectionVaddr + r.pos
 * (for pcrel); datarel is relative to dataBase. Indirect pointers and text/func-relative ones are refused.
 */
export function readEncoded(r: Reader, enc: number, sectionVaddr: number, dataBase = NaN): number {
  if (enc === DW_EH_PE_omit) throw new CfiError('an omitted pointer was read');
  if (enc & PE_indirect) throw new CfiError('indirect pointer encoding');
  const fieldAddr = sectionVaddr + r.pos;
  let v: number;
  switch (enc & 0x0f) {
    case PE_absptr:
    case PE_udata8:
      v = r.u64();
      break;
    case PE_uleb128:
      v = r.uleb();
      break;
    case PE_udata2:
      v = r.u16();
      break;
    case PE_udata4:
      v = r.u32();
      break;
    case PE_sleb128:
      v = r.sleb();
      break;
    case PE_sdata2:
      v = r.s16();
      break;
    case PE_sdata4:
      v = r.s32();
      break;
    case PE_sdata8:
      v = r.s64();
      break;
    default:
      throw new CfiError(`pointer encoding 0x${enc.toString(16)}`);
  }
  switch (enc & 0x70) {
    case 0:
      return v;
    case PE_pcrel:
      return fieldAddr + v;
    case PE_datarel:
      if (Number.isNaN(dataBase)) throw new CfiError('datarel pointer without a data base');
      return dataBase + v;
    default:
      throw new CfiError(`pointer application 0x${(enc & 0x70).toString(16)}`);
  }
}

export interface Cie {
  codeAlign: number;
  dataAlign: number;
  raReg: number;
  /** DW_EH_PE_* of the FDEs' addresses (absptr in .debug_frame). */
  fdeEnc: number;
  /** 'z' augmentation: FDEs carry an augmentation data length. */
  hasAugData: boolean;
  /** 'S': a signal frame (its pc is not a return address). */
  signal: boolean;
  /** The initial instructions: bytes [insnStart, insnEnd) of the section. */
  insnStart: number;
  insnEnd: number;
}

export interface Fde {
  cie: Cie;
  /** Link-time [start, end) the FDE covers. */
  start: number;
  end: number;
  insnStart: number;
  insnEnd: number;
}

export type CfiKind = 'eh' | 'debug';

const MAX_CIES = 4096;

/** One section of CFI (.eh_frame or .debug_frame) and its lookup by pc. */
export class CfiTable {
  private readonly cies = new Map<number, Cie | null>();
  /** FDEs sorted by start, built once when there is no .eh_frame_hdr table (or for .debug_frame). */
  private sorted: Fde[] | null = null;
  /** Set when the whole table is unusable (a walk over it met a malformed entry). */
  broken: string | null = null;

  constructor(
    readonly kind: CfiKind,
    readonly buf: Buffer,
    /** Link-time address of buf[0] (ignored for .debug_frame). */
    readonly vaddr: number,
    private readonly hdr: EhFrameHdr | null = null,
  ) {}

  /** The FDE covering a link-time pc, or null (none, or malformed). */
  find(pc: number): Fde | null {
    try {
      if (this.hdr) {
        const fdeAddr = this.hdr.lookup(pc);
        if (fdeAddr === null) return null;
        const fde = this.parseFde(fdeAddr - this.vaddr);
        return fde && pc >= fde.start && pc < fde.end ? fde : null;
      }
      const all = this.allFdes();
      let lo = 0;
      let hi = all.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (all[mid].start <= pc) {
          found = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return found >= 0 && pc < all[found].end ? all[found] : null;
    } catch (err) {
      if (err instanceof CfiError) return null;
      throw err;
    }
  }

  /** Every FDE, sorted by start; a malformed section gives none (broken says why). */
  allFdes(): Fde[] {
    if (this.sorted) return this.sorted;
    const out: Fde[] = [];
    try {
      let at = 0;
      while (at + 4 <= this.buf.length) {
        const e = this.entryBounds(at);
        if (e === null) break; // terminator
        if (!e.isCie) {
          const fde = this.parseFde(at);
          if (fde && fde.end > fde.start) out.push(fde);
        }
        at = e.next;
      }
    } catch (err) {
      if (!(err instanceof CfiError)) throw err;
      this.broken = err.message;
      out.length = 0;
    }
    this.sorted = out.sort((a, b) => a.start - b.start);
    return this.sorted;
  }

  /** Length, id and where the next entry starts; null for the .eh_frame terminator (length 0). */
  private entryBounds(at: number): { body: number; end: number; next: number; idAt: number; id: number; isCie: boolean; wide: boolean } | null {
    const r = new Reader(this.buf, at, this.buf.length);
    let len = r.u32();
    let wide = false;
    if (len === 0) {
      if (this.kind === 'eh') return null;
      throw new CfiError(`zero-length entry at ${at}`);
    }
    if (len === 0xffffffff) {
      len = r.u64();
      wide = true;
    }
    const body = r.pos;
    const end = body + len;
    if (!Number.isSafeInteger(end) || end > this.buf.length) throw new CfiError(`entry at ${at} of ${len} bytes runs past the section (${this.buf.length})`);
    const idAt = r.pos;
    const er = new Reader(this.buf, body, end);
    const id = wide ? er.u64() : er.u32();
    // .debug_frame's CIE id is all ones (0xffffffff, or 64 of them in the 64-bit format: 2^64 once a double).
    const isCie = this.kind === 'eh' ? id === 0 : id === (wide ? 2 ** 64 - 1 : 0xffffffff);
    return { body, end, next: end, idAt, id, isCie, wide };
  }

  private cieAt(at: number): Cie {
    const known = this.cies.get(at);
    if (known) return known;
    if (known === null) throw new CfiError(`CIE at ${at} is malformed`);
    if (this.cies.size > MAX_CIES) this.cies.clear();
    this.cies.set(at, null);
    const e = this.entryBounds(at);
    if (!e || !e.isCie) throw new CfiError(`no CIE at ${at}`);
    const r = new Reader(this.buf, e.idAt + (e.wide ? 8 : 4), e.end);
    const version = r.u8();
    if (version !== 1 && version !== 3 && version !== 4) throw new CfiError(`CIE version ${version}`);
    const aug = r.cstring();
    if (version === 4) {
      const addressSize = r.u8();
      r.u8(); // segment selector size
      if (addressSize !== 8) throw new CfiError(`address size ${addressSize}`);
    }
    const codeAlign = r.uleb();
    const dataAlign = r.sleb();
    const raReg = version === 1 ? r.u8() : r.uleb();
    let fdeEnc = PE_absptr;
    let signal = false;
    const hasAugData = aug.startsWith('z');
    if (hasAugData) {
      const augLen = r.uleb();
      const augEnd = r.pos + augLen;
      if (augEnd > e.end) throw new CfiError('CIE augmentation data past its end');
      const ar = new Reader(this.buf, r.pos, augEnd);
      for (const c of aug.slice(1)) {
        if (c === 'R') fdeEnc = ar.u8();
        else if (c === 'L') ar.u8();
        else if (c === 'P') readEncoded(ar, ar.u8() & 0x0f, this.vaddr); // skipped: only its size matters (glibc's is indirect|pcrel)
        else if (c === 'S') signal = true;
        else if (c === 'B') {
          /* AArch64 BTI: no data */
        } else break; // unknown: the rest of the data is skipped by its length
      }
      r.pos = augEnd;
    } else if (aug !== '') {
      if (aug === 'eh') r.u64();
      else throw new CfiError(`CIE augmentation "${aug}"`);
    }
    const cie: Cie = { codeAlign, dataAlign, raReg, fdeEnc, hasAugData, signal, insnStart: r.pos, insnEnd: e.end };
    this.cies.set(at, cie);
    return cie;
  }

  /** The FDE whose entry starts at byte `at` of the section, or null when it is a CIE or the terminator. */
  private parseFde(at: number): Fde | null {
    if (!Number.isSafeInteger(at) || at < 0 || at >= this.buf.length) throw new CfiError(`FDE offset ${at} outside the section`);
    const e = this.entryBounds(at);
    if (!e || e.isCie) return null;
    // .eh_frame: the CIE pointer is an offset back from its own field; .debug_frame: an offset into the section.
    const cieAt = this.kind === 'eh' ? e.idAt - e.id : e.id;
    if (cieAt < 0 || cieAt >= this.buf.length || cieAt === at) throw new CfiError(`FDE at ${at} names a CIE at ${cieAt}`);
    const cie = this.cieAt(cieAt);
    const r = new Reader(this.buf, e.idAt + (e.wide ? 8 : 4), e.end);
    const enc = this.kind === 'eh' ? cie.fdeEnc : PE_absptr;
    const start = readEncoded(r, enc, this.vaddr);
    const range = readEncoded(r, enc & 0x0f, this.vaddr);
    if (cie.hasAugData) {
      const augLen = r.uleb();
      r.pos += augLen;
      if (r.pos > e.end) throw new CfiError(`FDE at ${at}: augmentation data past its end`);
    }
    return { cie, start, end: start + range, insnStart: r.pos, insnEnd: e.end };
  }
}

/** .eh_frame_hdr: where .eh_frame is, and a table of (initial location, FDE address) sorted by location. */
export class EhFrameHdr {
  private constructor(
    private readonly buf: Buffer,
    private readonly vaddr: number,
    readonly ehFrameAddr: number,
    private readonly tableAt: number,
    private readonly count: number,
  ) {}

  /** The header at link-time vaddr, or null when it has no binary search table this reader can use. */
  static parse(buf: Buffer, vaddr: number): EhFrameHdr | null {
    try {
      const r = new Reader(buf, 0, buf.length);
      if (r.u8() !== 1) return null;
      const ptrEnc = r.u8();
      const countEnc = r.u8();
      const tableEnc = r.u8();
      const ehFrameAddr = readEncoded(r, ptrEnc, vaddr, vaddr);
      if (countEnc === DW_EH_PE_omit || tableEnc !== 0x3b) return new EhFrameHdr(buf, vaddr, ehFrameAddr, 0, 0);
      const count = readEncoded(r, countEnc, vaddr, vaddr);
      if (!Number.isSafeInteger(count) || count < 0 || r.pos + count * 8 > buf.length) return null;
      return new EhFrameHdr(buf, vaddr, ehFrameAddr, r.pos, count);
    } catch (err) {
      if (err instanceof CfiError) return null;
      throw err;
    }
  }

  get hasTable(): boolean {
    return this.count > 0;
  }

  /** The link-time address of the FDE whose initial location is the greatest not above pc (datarel sdata4 pairs). */
  lookup(pc: number): number | null {
    let lo = 0;
    let hi = this.count - 1;
    let found = -1;
    const rel = pc - this.vaddr;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.buf.readInt32LE(this.tableAt + mid * 8) <= rel) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found < 0 ? null : this.vaddr + this.buf.readInt32LE(this.tableAt + found * 8 + 4);
  }
}

/** A section's bytes, or none when the file holds fewer than its header says. */
export function sectionBytes(elf: ElfFile, s: ElfSection): Buffer {
  const b = elf.sectionBytes(s);
  return b.length === s.size ? b : Buffer.alloc(0);
}

/** .eh_frame with its header's search table; through PT_GNU_EH_FRAME when the file has no section headers. */
export function ehFrameOf(elf: ElfFile): CfiTable | null {
  const hdrSection = elf.section('.eh_frame_hdr');
  let hdr: EhFrameHdr | null = null;
  if (hdrSection && hdrSection.size > 0) {
    hdr = EhFrameHdr.parse(sectionBytes(elf, hdrSection), hdrSection.addr);
  } else {
    const seg = elf.segments.find((s) => s.type === PT_GNU_EH_FRAME);
    const bytes = seg ? elf.readVaddr(seg.vaddr, seg.filesz) : null;
    if (seg && bytes) {
      hdr = EhFrameHdr.parse(bytes, seg.vaddr);
    }
  }
  const section = elf.section('.eh_frame');
  if (section && section.size > 0) {
    const usable = hdr && hdr.hasTable && hdr.ehFrameAddr === section.addr ? hdr : null;
    return new CfiTable('eh', sectionBytes(elf, section), section.addr, usable);
  }
  if (!hdr || !hdr.hasTable) return null;
  // No section headers: .eh_frame runs from where the header says to the end of its PT_LOAD.
  const load = elf.segments.find((s) => s.type === PT_LOAD && hdr.ehFrameAddr >= s.vaddr && hdr.ehFrameAddr < s.vaddr + s.filesz);
  const bytes = load ? elf.readVaddr(hdr.ehFrameAddr, load.vaddr + load.filesz - hdr.ehFrameAddr) : null;
  return bytes ? new CfiTable('eh', bytes, hdr.ehFrameAddr, hdr) : null;
}
