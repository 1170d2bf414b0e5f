/**
 * A snapshot: one consistent-as-possible view of the target's memory,
 * read through a cache so a walk touches each page once. The first miss in
 * a 64 KiB window reads its page; a second one reads the whole window
 * (clipped to the mapping), and so does the first miss in a window next to
 * one read whole: a walk over a contiguous or shuffled structure
 * costs a few syscalls, not one per node, and one whose nodes lie far apart
 * costs a page per node, not 64 KiB. Bytes already read are never read
 * again: later reads see the same bytes. The bytes read are bounded
 * (maxBytes): past it the walk ends, partial.
 *
 * The hot path is u64(): one bounds check against the last chunk used;
 * otherwise the chunk is found by index in its mapping's table (no hashing).
 *
 * Chunks are read at different moments, so a walk may combine bytes that
 * never coexisted (a chain that merges into another one as it is
 * rebuilt). Every read marks the bytes it used; changed() reads their
 * words again and compares the bytes marked. When none changed, a walk of
 * the second read would have used the same bytes and given the same answer,
 * and every byte held its value from its first read to its second: all of
 * them at once, between the last first read and the first second one.
 * Bytes, not words: a collector's mark bits beside an object's type (a
 * LuaJIT object's marked and gct share a word) change on every cycle, and
 * a walk that reads only the type must not be retried for them.
 *
 * A word is marked with the tag of what read it (mark: runView gives each
 * column a bit of its own), so that a sample that changed says which of
 * its columns read what changed: those are not shown (view-run.ts). Which
 * items read them is found by walking the same bytes once more with the
 * changed words watched (watch()): reads then say so in touched.
 */
import type { Int } from '../../core/exact.ts';
import type { MemorySource } from './memory.ts';
import { WalkError } from './walk-error.ts';
import { hex } from './memory.ts';
import { Slabs } from './slabs.ts';

export const PAGE = 4096;
const PAGE_SHIFT = 12;
const CHUNK = 64 * 1024;
/**
 * Marks are kept per 8-byte word: one bit per byte used (changed() compares only those bytes), and the tags of
 * the reads that used it. A cache line would call a frame's link changed whenever the locals beside it change
 * (a Lua loop's counters), and retry a sample whose answer held still.
 */
const WORD_SHIFT = 3;
const WORD = 1 << WORD_SHIFT;
const TWO32 = 4294967296;

/** A readable range of the target's address space. */
export interface Range {
  start: number;
  end: number;
}

/** A read of memory that is not there: the walk that hit it reports it. */
export class Fault extends Error {
  constructor(
    readonly addr: Int,
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

/** Bytes read from [start, start + view.byteLength), and which of its words a walk used. */
export interface Chunk {
  start: number;
  end: number;
  view: DataView;
  /**
   * used[(addr - start) >> 3]: bit (addr - start) & 7 set once a read used that byte, and above BYTE_BITS
   * the tags (Snapshot.mark) of the reads that used the word; 0 while none did.
   */
  used: Uint32Array;
  /** Bit i set once a read used a byte of the chunk's i-th page (a chunk is at most 16 pages): what changed() reads again. */
  pages: number;
  /** Only part of its window so far (the page of a window's first miss, or the pages a plan read): a read elsewhere in the window reads it whole. */
  probe?: boolean;
}

/** A word's mark: its bytes used in the low 8 bits, the tags above. */
const BYTE_BITS = 8;

/** Where memory a walk used was found different when read again. */
export interface Change {
  addr: number;
  words: number;
  /** The tags of the reads that used the words that changed, or-ed. */
  tags: number;
  /** The words that changed, each by its address / 8; null when more changed than are listed (MAX_LISTED). */
  at: Set<number> | null;
}

/** How many changed words a Change lists at most: past it, which items read them is not worked out. */
const MAX_LISTED = 1 << 16;

/** a's listed words and b's, or null when they are more than MAX_LISTED (or either is null). */
function listedBoth(a: Set<number> | null, b: Set<number> | null): Set<number> | null {
  if (a === null || b === null || a.size + b.size > MAX_LISTED) return null;
  for (const w of b) a.add(w);
  return a;
}

/** A chunk as it was read: where, how many bytes, and whether only as a window's first page (Chunk.probe). */
export interface ChunkRead {
  start: number;
  len: number;
  probe: boolean;
}

/** A mapping, with its chunks by index: chunk i covers the i-th 64 KiB-aligned window that meets it. */
interface Mapped extends Range {
  firstWindow: number;
  chunks: (Chunk | null | undefined)[];
}

/** Words of a value assembled across two chunks are marked in those chunks; its own marks are not checked. */
const SCRATCH_USED = new Uint32Array(CHUNK >> WORD_SHIFT);
const NONE: Chunk = { start: 0, end: 0, view: new DataView(new ArrayBuffer(8)), used: SCRATCH_USED, pages: 0 };


export class Snapshot {
  readonly stats: SnapshotStats = { reads: 0, bytes: 0, pages: 0 };
  private readonly ranges: Mapped[];
  private last: Chunk = NONE;
  private lastRange: Mapped | null = null;
  /** Pages read one by one where a chunk came back short (the mapping changed under us). */
  private readonly singles = new Map<number, Chunk | null>();
  /** Probe pages a whole window replaced: hot loops may still hold them, and what they used is checked too. */
  private readonly retired: Chunk[] = [];
  /** What the reads from now on mark the words they use with (a bit per column, set by runView); 1 unless told. */
  mark = 1;
  /** How many reads (loads of a value, copies of bytes) walks made: a column of one read is an instant's value. */
  loads = 0;
  /** The tags of the columns that used a value shared by columns (view-run.ts Marks.sharedBy). */
  sharedBy = 0;
  /** While words are watched (watch()): the tags (mark) of the reads since touched was last cleared that used one. */
  touched = 0;
  private watched: Set<number> | null = null;
  /**
   * ranges: the readable mappings; reads outside them fault without a syscall. maxBytes: what it may
   * read in all. slabs: where its chunks are copied to (a sampler's, reused sample after sample).
   */
  constructor(
    readonly source: MemorySource,
    ranges: Range[],
    private readonly maxBytes = Infinity,
    private readonly slabs = new Slabs(),
  ) {
    // A process's maps come sorted: they are sorted again only when not (a sort a sample, of a hundred mappings or more).
    const sorted = ranges.every((r, i) => i === 0 || ranges[i - 1].start <= r.start) ? ranges : [...ranges].sort((a, b) => a.start - b.start);
    this.ranges = sorted.map((r) => ({ start: r.start, end: r.end, firstWindow: Math.floor(r.start / CHUNK), chunks: [] }));
  }

  u8(addr: Int): number {
    const c = this.chunk(addr, 1);
    return c.view.getUint8((addr as number) - c.start);
  }

  u16(addr: Int): number {
    const c = this.chunk(addr, 2);
    return c.view.getUint16((addr as number) - c.start, true);
  }

  u32(addr: Int): number {
    const c = this.chunk(addr, 4);
    return c.view.getUint32((addr as number) - c.start, true);
  }

  /** An unsigned 64-bit value, exact: a number below 2^53 (every x86_64 user address), a bigint above. */
  u64(addr: Int): Int {
    let c = this.last;
    if (typeof addr !== 'number' || addr < c.start || addr + 8 > c.end) c = this.chunk(addr, 8);
    else this.loads++;
    const off = (addr as number) - c.start;
    if ((off & 7) === 0) {
      c.used[off >> WORD_SHIFT] |= (this.mark << BYTE_BITS) | 0xff;
      c.pages |= 1 << (off >>> PAGE_SHIFT);
    } else markBytes(c, off, 8, this.mark << BYTE_BITS);
    const hi = c.view.getUint32(off + 4, true);
    const lo = c.view.getUint32(off, true);
    return hi < 0x200000 ? hi * TWO32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
  }

  i8(addr: Int): number {
    const c = this.chunk(addr, 1);
    return c.view.getInt8((addr as number) - c.start);
  }

  i16(addr: Int): number {
    const c = this.chunk(addr, 2);
    return c.view.getInt16((addr as number) - c.start, true);
  }

  i32(addr: Int): number {
    const c = this.chunk(addr, 4);
    return c.view.getInt32((addr as number) - c.start, true);
  }

  /** A signed 64-bit value, exact. */
  i64(addr: Int): Int {
    const c = this.chunk(addr, 8);
    const off = (addr as number) - c.start;
    const hi = c.view.getInt32(off + 4, true);
    const lo = c.view.getUint32(off, true);
    return hi < 0x200000 && hi >= -0x200000 ? hi * TWO32 + lo : (BigInt(hi) << 32n) | BigInt(lo);
  }

  /** An integer of `size` bytes (1, 2, 4 or 8), signed or not. */
  int(addr: Int, size: number, signed: boolean): Int {
    if (size === 8) return signed ? this.i64(addr) : this.u64(addr);
    // The hot read of a walk's fields: from the chunk of the last read when it holds the value, as u64() does.
    let c = this.last;
    if (typeof addr === 'number' && addr >= c.start && addr + size <= c.end) {
      this.loads++;
      markBytes(c, addr - c.start, size, this.mark << BYTE_BITS);
    } else c = this.chunk(addr, size);
    const off = (addr as number) - c.start;
    switch (size) {
      case 1:
        return signed ? c.view.getInt8(off) : c.view.getUint8(off);
      case 2:
        return signed ? c.view.getInt16(off, true) : c.view.getUint16(off, true);
      case 4:
        return signed ? c.view.getInt32(off, true) : c.view.getUint32(off, true);
      default:
        throw new Error(`unsupported integer size ${size}`);
    }
  }

  /** A copy of len bytes at addr. */
  bytes(addr: Int, len: number): Uint8Array {
    this.loads += 2; // bytes of many words, read at once: a text may still be torn
    if (typeof addr !== 'number') this.outside(addr);
    const out = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const a = addr + done;
      const c = this.chunk(a, 1);
      const n = Math.min(c.end - a, len - done);
      if (this.watched !== null) this.touch(a, n);
      markBytes(c, a - c.start, n, this.mark << BYTE_BITS);
      out.set(new Uint8Array(c.view.buffer, c.view.byteOffset + (a - c.start), n), done);
      done += n;
    }
    return out;
  }

  /** True when the byte at addr lies in a readable mapping (no read is made). */
  mapped(addr: number): boolean {
    return this.rangeOf(addr) !== null;
  }

  /**
   * A chunk holding [addr, addr + len), with the words of that range marked
   * used. A value that straddles two chunks (or a short chunk's end) comes
   * from a small chunk of its own bytes.
   */
  chunk(addr: Int, len: number): Chunk {
    this.loads++;
    if (typeof addr !== 'number') this.outside(addr);
    if (this.watched !== null) this.touch(addr, len);
    const c = this.window(addr);
    if (addr + len <= c.end) {
      if (this.watched === null) this.last = c;
      markBytes(c, addr - c.start, len, this.mark << BYTE_BITS);
      return c;
    }
    // Bytes from two chunks, read at two moments: never a value of one read (view-run.ts keeps those when they change).
    this.loads++;
    const bytes = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const w = this.window(addr + i);
      markBytes(w, addr + i - w.start, 1, this.mark << BYTE_BITS);
      bytes[i] = w.view.getUint8(addr + i - w.start);
    }
    return { start: addr, end: addr + len, view: new DataView(bytes.buffer), used: SCRATCH_USED, pages: 0 };
  }

  /**
   * From now on every read goes through chunk() (no chunk is kept for the hot path) and adds its mark to touched
   * when it uses one of these words (Change.at); null ends it. A walk of the same bytes makes the same reads.
   */
  watch(words: Set<number> | null): void {
    this.watched = words;
    this.touched = 0;
    this.last = NONE;
  }

  private touch(addr: number, len: number): void {
    for (let w = Math.floor(addr / WORD); w <= Math.floor((addr + len - 1) / WORD); w++) {
      if (this.watched!.has(w)) {
        this.touched |= this.mark;
        return;
      }
    }
  }

  /** An address past 2^53 (a bigint): above every user mapping of x86_64. */
  private outside(addr: Int): never {
    throw new Fault(addr, this.source.explain?.(Number(addr)) ?? 'not in any mapping');
  }

  /**
   * Reads every word a walk used once more and compares it with what the
   * walk saw: the first place that changed (or is no longer readable), or
   * null when everything the answer came from held still.
   */
  changed(): Change | null {
    const chunks: Chunk[] = [];
    for (const r of this.ranges) for (const c of r.chunks) if (c) chunks.push(c);
    // A probe kept whole holds a page of singles each (grow()); most samples have no singles at all.
    if (this.singles.size) for (const c of new Set(this.singles.values())) if (c) chunks.push(c);
    chunks.push(...this.retired);
    let first: Change | null = null;
    for (const batch of batches(chunks.flatMap(usedSpans))) {
      const again = readAgain(this.source, batch);
      batch.forEach((span, i) => {
        const words = changedWords(span, again[i]);
        if (words && !first) first = words;
        else if (words && first) {
          first.words += words.words;
          first.tags |= words.tags;
          first.at = listedBoth(first.at, words.at);
        }
      });
    }
    return first;
  }

  /**
   * Where the next sample of the same walk will read, as prefetch() takes it: of each chunk the walk used (not
   * those only prefetched), its pages from the first it used to the last. A chunk cut so is read as part of its
   * window (a probe): a walk that goes past it reads the rest.
   */
  plan(): ChunkRead[] {
    const out: ChunkRead[] = [];
    for (const r of this.ranges) {
      for (const c of r.chunks) {
        if (!c || c.pages === 0) continue;
        const first = 31 - Math.clz32(c.pages & -c.pages);
        const last = 31 - Math.clz32(c.pages);
        const start = c.start + first * PAGE;
        const end = Math.min(c.end, c.start + (last + 1) * PAGE);
        out.push({ start, len: end - start, probe: c.probe === true || start !== c.start || end !== c.end });
      }
    }
    return out;
  }

  /**
   * Reads the chunks of a plan (an earlier sample's) that are not read yet, in one batched read where the source
   * has one: the walk then finds them read, and a clock read after this is read after all of its memory. A chunk
   * outside the mappings, or past the first that comes back short, is left to be read when a walk wants it.
   */
  prefetch(plan: ChunkRead[]): void {
    const want: { r: Mapped; i: number; start: number; len: number; probe: boolean }[] = [];
    const wanted = new Map<Mapped, Set<number>>(); // the windows already in want, by mapping
    let total = 0;
    for (const p of plan) {
      const r = this.rangeOf(p.start);
      if (r === null || p.start + p.len > r.end) continue;
      const i = Math.floor(p.start / CHUNK) - r.firstWindow;
      const windows = wanted.get(r) ?? wanted.set(r, new Set()).get(r)!;
      if (r.chunks[i] !== undefined || windows.has(i)) continue;
      windows.add(i);
      want.push({ r, i, start: p.start, len: p.len, probe: p.probe });
      total += p.len;
    }
    if (want.length === 0 || this.stats.bytes + total > this.maxBytes) return;
    const buf = this.slabs.take(total);
    let got = 0;
    if (this.source.readMany && want.length > 1) {
      const calls = this.source.systemCalls;
      got = this.source.readMany(new Float64Array(want.map((w) => w.start)), new Uint32Array(want.map((w) => w.len)), buf);
      this.stats.reads += calls === undefined ? 1 : this.source.systemCalls! - calls;
      this.stats.bytes += got;
    } else {
      for (const w of want) {
        const one = this.read(w.start, buf.subarray(got, got + w.len));
        got += one;
        if (one < w.len) break;
      }
    }
    let at = 0;
    for (const w of want) {
      if (got < at + w.len) break;
      w.r.chunks[w.i] = { start: w.start, end: w.start + w.len, view: new DataView(buf.buffer, buf.byteOffset + at, w.len), used: this.slabs.words((w.len + WORD - 1) >> WORD_SHIFT), pages: 0, probe: w.probe };
      this.stats.pages += w.len / PAGE;
      at += w.len;
    }
  }

  /** The chunk that holds the byte at addr, read on first use. */
  private window(addr: number): Chunk {
    const r = this.lastRange !== null && addr >= this.lastRange.start && addr < this.lastRange.end ? this.lastRange : this.rangeOf(addr);
    if (r === null) throw new Fault(addr, this.source.explain?.(addr) ?? 'not in any mapping');
    this.lastRange = r;
    const i = Math.floor(addr / CHUNK) - r.firstWindow;
    let c = r.chunks[i];
    if (c === undefined) c = r.chunks[i] = (this.dense(r, i) && this.wholeWindow(r, i)) || this.fill(r, Math.max(r.start, addr - (addr % PAGE)), PAGE, true);
    else if (c !== null && c.probe && (addr < c.start || addr >= c.end)) c = r.chunks[i] = this.grow(r, i, c);
    if (c !== null && addr >= c.start && addr < c.end) return c;
    return this.single(addr);
  }

  /**
   * A page of window i outside its probe is wanted: read the whole window.
   * The probe's bytes, read first, stay what every read of them sees: copied
   * into the window, or (when the window came back short of it) kept as
   * pages of their own.
   */
  private grow(r: Mapped, i: number, probe: Chunk): Chunk {
    const whole = this.wholeWindow(r, i);
    if (whole === null) {
      probe.probe = false; // the window cannot be read whole: its other pages are read alone
      return probe;
    }
    if (probe.start >= whole.start && probe.end <= whole.end) {
      new Uint8Array(whole.view.buffer, whole.view.byteOffset + (probe.start - whole.start), probe.end - probe.start).set(new Uint8Array(probe.view.buffer, probe.view.byteOffset, probe.end - probe.start));
      // Its marks stay the probe's (changed() reads it too); the pages they are on are the window's, for plan().
      whole.pages |= probe.pages << ((probe.start - whole.start) / PAGE);
      this.retired.push(probe);
    } else for (let a = probe.start; a < probe.end; a += PAGE) this.singles.set(Math.floor(a / PAGE), probe);
    return whole;
  }

  /**
   * Whether a window next to window i was read whole: a walk across a structure larger than a window (an array
   * of connections) then reads the next window whole at its first miss, not its first page and then the rest.
   */
  private dense(r: Mapped, i: number): boolean {
    const before = r.chunks[i - 1];
    const after = r.chunks[i + 1];
    return (before != null && !before.probe && before.end - before.start > PAGE) || (after != null && !after.probe && after.end - after.start > PAGE);
  }

  /** Window i of mapping r (clipped to it) in one read, or null. */
  private wholeWindow(r: Mapped, i: number): Chunk | null {
    const start = Math.max(r.start, (r.firstWindow + i) * CHUNK);
    return this.fill(r, start, Math.min(r.end, (r.firstWindow + i + 1) * CHUNK) - start, false);
  }

  /** Reads [start, start + len) of mapping r, clipped to it, in one syscall; whole pages only. */
  private fill(r: Mapped, start: number, len: number, probe: boolean): Chunk | null {
    const end = Math.min(r.end, start + len);
    const buf = this.slabs.take(end - start);
    const got = this.read(start, buf);
    const whole = got - (got % PAGE);
    if (whole === 0) return null;
    this.stats.pages += whole / PAGE;
    return { start, end: start + whole, view: new DataView(buf.buffer, buf.byteOffset, whole), used: this.slabs.words((whole + WORD - 1) >> WORD_SHIFT), pages: 0, probe };
  }

  /** A page the chunk read did not bring (the mapping changed since we listed it): read alone. */
  private single(addr: number): Chunk {
    const page = Math.floor(addr / PAGE);
    let c = this.singles.get(page);
    if (c === undefined) {
      const buf = new Uint8Array(PAGE);
      c = this.read(page * PAGE, buf) === PAGE ? { start: page * PAGE, end: page * PAGE + PAGE, view: new DataView(buf.buffer), used: this.slabs.words(PAGE >> WORD_SHIFT), pages: 0 } : null;
      if (c) this.stats.pages++;
      this.singles.set(page, c);
    }
    if (c === null) throw new Fault(addr, this.source.explain?.(addr) ?? 'unreadable');
    return c;
  }

  private read(addr: number, out: Uint8Array): number {
    if (this.stats.bytes + out.length > this.maxBytes) {
      throw new WalkError('limit', `the sample would read more than ${(this.maxBytes / 1024 / 1024).toFixed(0)} MiB (--max-bytes)`);
    }
    this.stats.reads++;
    const got = this.source.readInto(addr, out);
    this.stats.bytes += got;
    return got;
  }

  private rangeOf(addr: number): Mapped | null {
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

/** Marks bytes [off, off + len) of a chunk used, by reads of the tags in tagBits (already shifted), and their pages. */
function markBytes(c: Chunk, off: number, len: number, tagBits: number): void {
  const used = c.used;
  const end = off + len - 1;
  for (let p = off >>> PAGE_SHIFT; p <= end >>> PAGE_SHIFT; p++) c.pages |= 1 << p;
  let w = off >> WORD_SHIFT;
  const last = end >> WORD_SHIFT;
  if (w === last) {
    used[w] |= tagBits | (((1 << len) - 1) << (off & 7));
    return;
  }
  used[w] |= tagBits | ((0xff << (off & 7)) & 0xff);
  for (w++; w < last; w++) used[w] |= tagBits | 0xff;
  used[last] |= tagBits | (0xff >> (7 - (end & 7)));
}

/**
 * Marks are found block by block from either end, each block compared with zeros natively (no loop for the JIT
 * to warm up, no buffer made), then word by word inside the first block that holds one: a chunk's marks are
 * usually near its ends (a walk over it), and a sparse chunk is a probe page of 512 words.
 */
const MARK_BYTES = 4;
const BLOCK_WORDS = 64;
const ZERO_BLOCK = Buffer.alloc(BLOCK_WORDS * MARK_BYTES);

const marksOf = (used: Uint32Array): Buffer => Buffer.from(used.buffer, used.byteOffset, used.length * MARK_BYTES);

/** Whether words [from, to) (at most a block) are all unmarked. */
const blockUnused = (marks: Buffer, from: number, to: number): boolean => marks.compare(ZERO_BLOCK, 0, (to - from) * MARK_BYTES, from * MARK_BYTES, to * MARK_BYTES) === 0;

/** The first word of [from, to) marked used, or -1. */
function firstUsed(used: Uint32Array, marks: Buffer, from: number, to: number): number {
  for (let b = from; b < to; b += BLOCK_WORDS) {
    const end = Math.min(b + BLOCK_WORDS, to);
    if (blockUnused(marks, b, end)) continue;
    for (let w = b; w < end; w++) if (used[w] !== 0) return w;
  }
  return -1;
}

/** The last word of [from, to) marked used, or -1. */
function lastUsed(used: Uint32Array, marks: Buffer, from: number, to: number): number {
  for (let end = to; end > from; end -= BLOCK_WORDS) {
    const b = Math.max(from, end - BLOCK_WORDS);
    if (blockUnused(marks, b, end)) continue;
    for (let w = end - 1; w >= b; w--) if (used[w] !== 0) return w;
  }
  return -1;
}

/** Words of a chunk from a first used to a last: what changed() reads again. */
interface UsedSpan {
  c: Chunk;
  /** The first and last word used. */
  lo: number;
  hi: number;
  /** The bytes they cover, from the chunk's start. */
  from: number;
  to: number;
}

/** The words a chunk's reads used, a span for each run of its pages that were used: from the run's first used word to its last. */
function usedSpans(c: Chunk): UsedSpan[] {
  const spans: UsedSpan[] = [];
  const marks = marksOf(c.used);
  const pageWords = PAGE >> WORD_SHIFT;
  for (let p = 0; c.pages >>> p !== 0; ) {
    if (((c.pages >>> p) & 1) === 0) {
      p++;
      continue;
    }
    let q = p;
    while (((c.pages >>> (q + 1)) & 1) !== 0) q++;
    const from = p * pageWords;
    const to = Math.min((q + 1) * pageWords, c.used.length);
    const lo = firstUsed(c.used, marks, from, to);
    if (lo >= 0) {
      const hi = lastUsed(c.used, marks, from, to);
      spans.push({ c, lo, hi, from: lo << WORD_SHIFT, to: Math.min((hi + 1) << WORD_SHIFT, c.end - c.start) });
    }
    p = q + 1;
  }
  return spans;
}

/**
 * What changed() reads again in one call at the most, and where: a buffer kept from sample to sample, small
 * enough to stay in the cache and to cost no page faults (a 24 MB walk read again into fresh memory took 5
 * times as long as in batches). A span is at most a chunk.
 */
const BATCH_BYTES = 4 * CHUNK;
const againBuffer = new Uint8Array(BATCH_BYTES);

/** Spans in order, in batches of at most BATCH_BYTES. */
function batches(spans: UsedSpan[]): UsedSpan[][] {
  const out: UsedSpan[][] = [];
  let bytes = Infinity;
  for (const s of spans) {
    if (bytes + s.to - s.from > BATCH_BYTES) {
      out.push([]);
      bytes = 0;
    }
    out[out.length - 1].push(s);
    bytes += s.to - s.from;
  }
  return out;
}

/**
 * Each span's bytes as they read now (a prefix where the rest could not be read): in one batched read where
 * the source has one (process_vm_readv takes every span in one call), each span alone after the first that
 * came back short, and each alone where the source has no batch.
 */
function readAgain(source: MemorySource, spans: UsedSpan[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const s of spans) {
    out.push(againBuffer.subarray(at, at + s.to - s.from));
    at += s.to - s.from;
  }
  let whole = 0; // spans [0, whole) came back whole from the batch
  if (source.readMany && spans.length > 1) {
    const addrs = new Float64Array(spans.map((s) => s.c.start + s.from));
    const lens = new Uint32Array(spans.map((s) => s.to - s.from));
    let got = source.readMany(addrs, lens, againBuffer.subarray(0, at));
    while (whole < spans.length && got >= lens[whole]) got -= lens[whole++];
  }
  for (let i = whole; i < spans.length; i++) {
    const got = source.readInto(spans[i].c.start + spans[i].from, out[i]);
    out[i] = out[i].subarray(0, got);
  }
  return out;
}

/** The used words of a span whose used bytes read differently now (or not at all): where the first is, how many, and their tags. */
function changedWords(span: UsedSpan, again: Uint8Array): Change | null {
  const { c, lo, hi, from, to } = span;
  const used = c.used;
  const got = again.length;
  const before = new Uint8Array(c.view.buffer, c.view.byteOffset + from, to - from);
  // Nothing moved in the whole span: the common case, at memcmp speed.
  if (got === to - from && Buffer.from(again.buffer, again.byteOffset, again.length).equals(Buffer.from(before.buffer, before.byteOffset, before.length))) return null;
  let first = -1;
  let words = 0;
  let tags = 0;
  let at: Set<number> | null = new Set<number>();
  for (let word = lo; word <= hi; word++) {
    const m = used[word];
    if (!m) continue;
    const a = (word << WORD_SHIFT) - from;
    const b = Math.min(a + WORD, to - from);
    let same = b <= got;
    for (let i = a; same && i < b; i++) same = ((m >> (i - a)) & 1) === 0 || again[i] === before[i];
    if (!same) {
      words++;
      tags |= m >>> BYTE_BITS;
      if (at !== null && at.size === MAX_LISTED) at = null;
      at?.add(c.start / WORD + word);
      if (first < 0) first = c.start + from + a;
    }
  }
  return words ? { addr: first, words, tags, at } : null;
}
