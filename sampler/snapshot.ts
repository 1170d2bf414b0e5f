/**
 * A snapshot: one consistent-as-possible view of the target's memory,
 * read through a page cache so a walk touches each page once. Misses
 * are filled a chunk at a time (clipped to the mapping), so a walk over
 * a contiguous or shuffled structure costs a few syscalls, not one per node.
 * Pages already read are never read again: later reads see the same bytes.
 */
import type { MemorySource } from './memory.ts';
import { hex } from './memory.ts';

export const PAGE = 4096;
const CHUNK = 64 * 1024;
const TWO32 = 4294967296;

/** A readable range of the target's address space. */
export interface Range {
  start: number;
  end: number;
}

/** A read of memory that is not there: the walk that hit it reports it. */
export class Fault extends Error {
  constructor(
    readonly addr: number,
    reason: string,
  ) {
    super(`${hex(addr)}: ${reason}`);
    this.name = 'Fault';
  }
}

export interface SnapshotStats {
  reads: number;
  bytes: number;
  pages: number;
}

export class Snapshot {
  readonly stats: SnapshotStats = { reads: 0, bytes: 0, pages: 0 };
  private readonly pages = new Map<number, DataView | null>();
  private lastPage = -1;
  private lastView: DataView = new DataView(new ArrayBuffer(PAGE));
  private readonly ranges: Range[];

  /** ranges: the readable mappings, sorted by start; reads outside them fault without a syscall. */
  constructor(
    readonly source: MemorySource,
    ranges: Range[],
  ) {
    this.ranges = [...ranges].sort((a, b) => a.start - b.start);
  }

  u8(addr: number): number {
    return this.view(addr).getUint8(addr % PAGE);
  }

  u16(addr: number): number {
    const off = addr % PAGE;
    if (off <= PAGE - 2) return this.view(addr).getUint16(off, true);
    return this.bytes(addr, 2).reduce((acc, b, i) => acc + b * 2 ** (8 * i), 0);
  }

  u32(addr: number): number {
    const off = addr % PAGE;
    if (off <= PAGE - 4) return this.view(addr).getUint32(off, true);
    const b = this.bytes(addr, 4);
    return (b[0] | (b[1] << 8) | (b[2] << 16)) + b[3] * 16777216;
  }

  /** An unsigned 64-bit value as a double: exact below 2^53 (every x86_64 user address). */
  u64(addr: number): number {
    const page = Math.floor(addr / PAGE);
    const off = addr - page * PAGE;
    const v = page === this.lastPage ? this.lastView : this.pageView(page, addr);
    if (off <= PAGE - 8) return v.getUint32(off, true) + v.getUint32(off + 4, true) * TWO32;
    const b = new DataView(this.bytes(addr, 8).buffer);
    return b.getUint32(0, true) + b.getUint32(4, true) * TWO32;
  }

  i8(addr: number): number {
    const v = this.u8(addr);
    return v >= 0x80 ? v - 0x100 : v;
  }

  i16(addr: number): number {
    const v = this.u16(addr);
    return v >= 0x8000 ? v - 0x10000 : v;
  }

  i32(addr: number): number {
    const v = this.u32(addr);
    return v >= 0x80000000 ? v - TWO32 : v;
  }

  i64(addr: number): number {
    const lo = this.u32(addr);
    const hi = this.u32(addr + 4);
    return hi >= 0x80000000 ? (hi - TWO32) * TWO32 + lo : hi * TWO32 + lo;
  }

  /** An integer of `size` bytes (1, 2, 4 or 8), signed or not. */
  int(addr: number, size: number, signed: boolean): number {
    switch (size) {
      case 1:
        return signed ? this.i8(addr) : this.u8(addr);
      case 2:
        return signed ? this.i16(addr) : this.u16(addr);
      case 4:
        return signed ? this.i32(addr) : this.u32(addr);
      case 8:
        return signed ? this.i64(addr) : this.u64(addr);
      default:
        throw new Error(`unsupported integer size ${size}`);
    }
  }

  /** A copy of len bytes at addr. */
  bytes(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const off = a % PAGE;
      const n = Math.min(PAGE - off, len - done);
      const v = this.view(a);
      out.set(new Uint8Array(v.buffer, v.byteOffset + off, n), done);
      done += n;
    }
    return out;
  }

  /** True when the byte at addr lies in a readable mapping (no read is made). */
  mapped(addr: number): boolean {
    return this.rangeOf(addr) !== null;
  }

  private view(addr: number): DataView {
    const page = Math.floor(addr / PAGE);
    return page === this.lastPage ? this.lastView : this.pageView(page, addr);
  }

  private pageView(page: number, addr: number): DataView {
    let v = this.pages.get(page);
    if (v === undefined) v = this.fill(page);
    if (v === null) throw new Fault(addr, this.mapped(addr) ? 'unreadable' : 'not in any mapping');
    this.lastPage = page;
    this.lastView = v;
    return v;
  }

  /** Reads the chunk around `page` (within its mapping) and caches every page not yet cached. */
  private fill(page: number): DataView | null {
    const addr = page * PAGE;
    const range = this.rangeOf(addr);
    if (!range) {
      this.pages.set(page, null);
      return null;
    }
    const chunkStart = Math.max(range.start, Math.floor(addr / CHUNK) * CHUNK);
    const chunkEnd = Math.min(range.end, chunkStart + CHUNK);
    const buf = new Uint8Array(chunkEnd - chunkStart);
    const got = this.read(chunkStart, buf);
    for (let a = chunkStart; a + PAGE <= chunkStart + got; a += PAGE) {
      const p = a / PAGE;
      if (!this.pages.has(p)) {
        this.pages.set(p, new DataView(buf.buffer, a - chunkStart, PAGE));
        this.stats.pages++;
      }
    }
    if (!this.pages.has(page)) {
      // The chunk read stopped short (the mapping changed since we listed it): try the page alone.
      const one = new Uint8Array(PAGE);
      const ok = this.read(addr, one) === PAGE;
      this.pages.set(page, ok ? new DataView(one.buffer) : null);
      if (ok) this.stats.pages++;
    }
    return this.pages.get(page)!;
  }

  private read(addr: number, out: Uint8Array): number {
    this.stats.reads++;
    const got = this.source.readInto(addr, out);
    this.stats.bytes += got;
    return got;
  }

  private rangeOf(addr: number): Range | null {
    const r = this.ranges;
    let lo = 0;
    let hi = r.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (addr < r[mid].start) hi = mid - 1;
      else if (addr >= r[mid].end) lo = mid + 1;
      else return r[mid];
    }
    return null;
  }
}
