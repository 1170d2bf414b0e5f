/**
 * What a snapshot calls changed: the bytes a walk used, not the words around
 * them. A collector's mark byte beside an object's type (LuaJIT's marked and
 * gct share a word) changes every cycle; a walk that read only the type held
 * still.
 */
import t from 'tap';
import { PAGE, Snapshot } from '../sampler/memory/snapshot.ts';
import { FakeMemory } from './lib/fake-memory.ts';

const HEAP = 0x7f5500000000;

function world(): FakeMemory {
  const mem = new FakeMemory();
  mem.map(HEAP, 4 * PAGE);
  for (let i = 0; i < 64; i++) mem.u8(HEAP + i, i + 1);
  return mem;
}

/** The words at these addresses, as Change.at names them. */
const words = (...addrs: number[]) => new Set(addrs.map((a) => a / 8));

t.test('a byte read that changes is a change; a byte beside it in the same word is not', async (t) => {
  const mem = world();
  const s = new Snapshot(mem, mem.ranges());
  t.equal(s.u8(HEAP + 9), 10);
  mem.u8(HEAP + 8, 0xee); // the mark byte: not read
  t.equal(s.changed(), null, 'the byte before the one read changed: held still');
  mem.u8(HEAP + 15, 0xee);
  t.equal(s.changed(), null, 'the last byte of the word changed: held still');
  mem.u8(HEAP + 9, 0xee);
  t.same(s.changed(), { addr: HEAP + 8, words: 1, tags: 1, at: words(HEAP + 8) }, 'the byte read changed: its word is named');
});

t.test('every width marks exactly its bytes, across words and chunks of a value', async (t) => {
  const cases: [string, (s: Snapshot) => unknown, number[], number[]][] = [
    ['u16 at 6 (across two words)', (s) => s.u16(HEAP + 6), [6, 7], [5, 8]],
    ['u32 at 13 (across two words)', (s) => s.u32(HEAP + 13), [13, 16], [12, 17]],
    ['u64 at 3 (unaligned)', (s) => s.u64(HEAP + 3), [3, 10], [2, 11]],
    ['u64 at 24 (aligned)', (s) => s.u64(HEAP + 24), [24, 31], [23, 32]],
    ['i64 at 20', (s) => s.i64(HEAP + 20), [20, 27], [19, 28]],
    ['bytes 5..29', (s) => s.bytes(HEAP + 5, 25), [5, 17, 29], [4, 30]],
  ];
  for (const [what, read, inside, outside] of cases) {
    for (const off of outside) {
      const mem = world();
      const s = new Snapshot(mem, mem.ranges());
      read(s);
      mem.u8(HEAP + off, 0xee);
      t.equal(s.changed(), null, `${what}: byte ${off}, not read, changed: held still`);
    }
    for (const off of inside) {
      const mem = world();
      const s = new Snapshot(mem, mem.ranges());
      read(s);
      mem.u8(HEAP + off, 0xee);
      t.ok(s.changed(), `${what}: byte ${off}, read, changed: a change`);
    }
  }
});

t.test('a value across two pages read alone marks both pages', async (t) => {
  const mem = new FakeMemory();
  mem.map(HEAP, PAGE);
  mem.map(HEAP + 0x10000 - PAGE, 2 * PAGE); // a window's last page and the next window's first
  const edge = HEAP + 0x10000;
  const s = new Snapshot(mem, mem.ranges());
  s.u64(edge - 4);
  mem.u8(edge + 3, 0xee);
  t.ok(s.changed(), 'the byte in the second window changed: a change');
  const s2 = new Snapshot(mem, mem.ranges());
  s2.u64(edge - 4);
  mem.u8(edge + 4, 0xee);
  t.equal(s2.changed(), null, 'the byte after the value changed: held still');
});

t.test('a value across two windows is two reads, not one: its bytes were read at two moments', async (t) => {
  const mem = new FakeMemory();
  mem.map(HEAP + 0x10000 - PAGE, 2 * PAGE);
  const edge = HEAP + 0x10000;
  const s = new Snapshot(mem, mem.ranges());
  s.u64(edge - 16);
  const one = s.loads;
  s.u64(edge - 4);
  // view-run.ts keeps a column of one read whose word changed (true at the instant it was read): a value torn
  // across two reads must not count as one.
  t.equal(s.loads - one, 2, 'two loads for the value across the edge');
  t.equal(one, 1, 'one for a value inside a window');
});

/** A fake with process_vm_readv's batch: ranges back to back, ending at the first one that does not read whole. */
class BatchedMemory extends FakeMemory {
  batches = 0;
  /** The ranges of the last batch. */
  batch: [number, number][] = [];
  readMany(addrs: Float64Array, lens: Uint32Array, out: Uint8Array): number {
    this.batches++;
    this.batch = [...addrs].map((a, i) => [a, lens[i]]);
    let at = 0;
    for (let i = 0; i < addrs.length; i++) {
      const got = super.readInto(addrs[i], out.subarray(at, at + lens[i]));
      at += got;
      if (got < lens[i]) break;
    }
    return at;
  }
}

t.test('read again in one batch where the source has one: the same answers, each span alone after one that came back short', async (t) => {
  const setUp = () => {
    const mem = new BatchedMemory();
    for (let w = 0; w < 3; w++) mem.map(HEAP + w * 0x10000, PAGE);
    const s = new Snapshot(mem, mem.ranges());
    for (let w = 0; w < 3; w++) s.u64(HEAP + w * 0x10000 + 8);
    mem.reads.length = 0;
    return { mem, s };
  };
  const still = setUp();
  t.equal(still.s.changed(), null, 'three windows that held still');
  t.same([still.mem.batches, still.mem.reads.length - 3], [1, 0], 'in one batch: no read of its own for any of them');
  const third = setUp();
  third.mem.u8(HEAP + 0x20000 + 9, 0xee);
  t.same(third.s.changed(), { addr: HEAP + 0x20000 + 8, words: 1, tags: 1, at: words(HEAP + 0x20000 + 8) }, 'a change in the last span of the batch is found');
  const short = setUp();
  short.mem.hole(HEAP + 0x10000, HEAP + 0x10000 + PAGE);
  short.mem.u8(HEAP + 0x20000 + 9, 0xee);
  t.same(short.s.changed(), { addr: HEAP + 0x10000 + 8, words: 2, tags: 1, at: words(HEAP + 0x10000 + 8, HEAP + 0x20000 + 8) }, 'the span no longer readable is a change, and the one after it, read alone, too');
  t.same(short.mem.reads.slice(-2).map((r) => r.addr), [HEAP + 0x10000 + 8, HEAP + 0x20000 + 8], 'each span from the short one on read alone');
});

t.test('only the pages a walk used are read again: a span for each run of used pages, not the chunk from its first used word to its last', async (t) => {
  const mem = new BatchedMemory();
  mem.map(HEAP, 0x10000);
  const s = new Snapshot(mem, mem.ranges());
  // Two misses in the window read it whole (64 KiB); the walk uses a word of page 0, and words of pages 9 and 10.
  t.equal(s.u64(HEAP + 8), 0);
  s.u64(HEAP + 9 * PAGE + 16);
  s.u32(HEAP + 11 * PAGE - 2); // across the end of page 10 into page 11
  t.equal(s.changed(), null, 'held still');
  t.same([...mem.batch].sort((a, b) => a[0] - b[0]), [[HEAP + 8, 8], [HEAP + 9 * PAGE + 16, 2 * PAGE - 16 + 8]], 'two spans (the first page read alone, then the window): page 0\'s word, and pages 9 to 11\'s run from its first used word to its last');
  mem.u8(HEAP + 5 * PAGE, 0xee);
  t.equal(s.changed(), null, 'a page the walk did not use changed: held still');
  mem.u8(HEAP + 11 * PAGE + 1, 0xee);
  t.same(s.changed(), { addr: HEAP + 11 * PAGE, words: 1, tags: 1, at: words(HEAP + 11 * PAGE) }, 'a byte it used on page 11 changed: found');
});

t.test('a walk of more than a batch is read again in batches, each checked, the last as the first', async (t) => {
  const mem = new BatchedMemory();
  const windows = 8;
  mem.map(HEAP, windows * 0x10000);
  const s = new Snapshot(mem, mem.ranges());
  // Every page of every window used: 512 KiB to read again, more than one batch holds.
  for (let a = HEAP; a < HEAP + windows * 0x10000; a += PAGE) s.u64(a);
  mem.batches = 0;
  t.equal(s.changed(), null, 'held still');
  t.ok(mem.batches >= 2, `in ${mem.batches} batches`);
  mem.u8(HEAP + windows * 0x10000 - PAGE, 0xee);
  t.same(s.changed(), { addr: HEAP + windows * 0x10000 - PAGE, words: 1, tags: 1, at: words(HEAP + windows * 0x10000 - PAGE) }, 'a change in the last batch is found');
});

t.test("a plan holds of each window the pages its walk used, first to last; a walk past them reads the window whole, the plan's bytes kept", async (t) => {
  const W = 0x7f5500010000; // a 64 KiB window
  const mem = new BatchedMemory();
  mem.map(W, 16 * PAGE);
  for (let p = 0; p < 16; p++) mem.u8(W + p * PAGE, p + 1);
  const first = new Snapshot(mem, mem.ranges());
  t.same([first.u8(W + 3 * PAGE), first.u8(W + 5 * PAGE)], [4, 6]);
  const plan = first.plan();
  t.same(plan, [{ start: W + 3 * PAGE, len: 3 * PAGE, probe: true }], 'pages 3 to 5 of 16, as a part of the window');

  const next = new Snapshot(mem, mem.ranges());
  next.prefetch(plan);
  t.same([next.stats.reads, next.stats.pages], [1, 3], 'the plan: one read of 3 pages');
  mem.u8(W + 4 * PAGE, 0xee); // after the plan's read
  t.same([next.u8(W + 3 * PAGE), next.u8(W + 5 * PAGE)], [4, 6], 'its pages, read with no more reads');
  t.equal(next.stats.reads, 1);
  t.equal(next.u8(W + 9 * PAGE), 10, 'a page past them');
  t.same([next.stats.reads, next.stats.pages], [2, 19], 'read as the whole window');
  t.equal(next.u8(W + 4 * PAGE), 5, 'a page of the plan, read before it changed, reads as then');
  t.ok(next.changed(), 'and the change under it is seen');
  t.same(next.plan(), [{ start: W + 3 * PAGE, len: 7 * PAGE, probe: true }], 'the next plan: pages 3 to 9');
});
