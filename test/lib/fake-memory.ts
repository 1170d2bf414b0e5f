/**
 * A fake MemorySource for unit tests of the walk logic: a few mapped
 * regions laid out by hand, little-endian writers, and a record of every
 * readInto call. A read that leaves the regions throws (the snapshot must
 * never ask for bytes outside the ranges it was given); a hole makes a
 * read stop short, as when the target unmaps memory after maps was listed.
 */
import type { MemorySource } from '../../sampler/memory/memory.ts';
import type { Range } from '../../sampler/memory/snapshot.ts';

interface Region {
  start: number;
  bytes: Uint8Array;
  next: number; // bump pointer for alloc()
}

export class FakeMemory implements MemorySource {
  readonly description = 'fake memory';
  /** Every readInto call, in order. */
  readonly reads: { addr: number; len: number }[] = [];
  private readonly regions: Region[] = [];
  private readonly holes: Range[] = [];

  /** Maps [start, start + size) (both page multiples), zero-filled; alloc() then allocates from it. */
  map(start: number, size: number): number {
    if (start % 4096 !== 0 || size % 4096 !== 0) throw new Error(`fake: map ${start.toString(16)}+${size} is not page-aligned`);
    for (const r of this.regions) {
      if (start < r.start + r.bytes.length && r.start < start + size) throw new Error('fake: regions overlap');
    }
    this.regions.push({ start, bytes: new Uint8Array(size), next: start });
    return start;
  }

  /** size zeroed bytes aligned to align, from the region that starts at `region` (default: the one mapped last). */
  alloc(size: number, align = 8, region?: number): number {
    const r = region === undefined ? this.regions[this.regions.length - 1] : this.regions.find((x) => x.start === region);
    if (!r) throw new Error('fake: no such region');
    const addr = Math.ceil(r.next / align) * align;
    if (addr + size > r.start + r.bytes.length) throw new Error('fake: region full');
    r.next = addr + size;
    return addr;
  }

  /** Readable in ranges(), but a read reaching it stops short there. */
  hole(start: number, end: number): void {
    this.holes.push({ start, end });
  }

  ranges(): Range[] {
    return this.regions.map((r) => ({ start: r.start, end: r.start + r.bytes.length }));
  }

  /** Number of readInto calls so far. */
  get readCount(): number {
    return this.reads.length;
  }

  // ---- writers (little-endian, like x86_64) ----

  bytes(addr: number, b: ArrayLike<number>): void {
    const { region, off } = this.locate(addr, b.length);
    region.bytes.set(b, off);
  }

  u8(addr: number, v: number): void {
    this.bytes(addr, [v & 0xff]);
  }

  u32(addr: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.bytes(addr, b);
  }

  i32(addr: number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    this.bytes(addr, b);
  }

  /** A 64-bit value: a number (exact up to 2^53) or a bigint (any, two's complement when negative). */
  u64(addr: number, v: number | bigint): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, BigInt(v)), true);
    this.bytes(addr, b);
  }

  /** ASCII text at addr, NUL-terminated when nul is true. */
  text(addr: number, s: string, nul = false): void {
    this.bytes(addr, [...Buffer.from(s, 'latin1'), ...(nul ? [0] : [])]);
  }

  /** The regions and holes as plain data, each region's pages that are not all zero in hex (for test/lib/py_walk.py). */
  dump(): { regions: { start: number; size: number; pages: [number, string][] }[]; holes: [number, number][] } {
    const regions = this.regions.map((r) => {
      const pages: [number, string][] = [];
      for (let off = 0; off < r.bytes.length; off += 4096) {
        const page = r.bytes.subarray(off, off + 4096);
        if (page.some((b) => b !== 0)) pages.push([off, Buffer.from(page).toString('hex')]);
      }
      return { start: r.start, size: r.bytes.length, pages };
    });
    return { regions, holes: this.holes.map((h) => [h.start, h.end]) };
  }

  // ---- the MemorySource contract ----

  readInto(addr: number, out: Uint8Array): number {
    this.reads.push({ addr, len: out.length });
    const { region, off } = this.locate(addr, out.length);
    let n = out.length;
    for (const h of this.holes) if (h.start < addr + n && h.end > addr) n = Math.max(0, h.start - addr);
    out.set(region.bytes.subarray(off, off + n));
    return n;
  }

  close(): void {}

  private locate(addr: number, len: number): { region: Region; off: number } {
    for (const r of this.regions) {
      if (addr >= r.start && addr + len <= r.start + r.bytes.length) return { region: r, off: addr - r.start };
    }
    throw new Error(`fake: access of ${len} bytes at 0x${addr.toString(16)} is outside every mapped region`);
  }
}
