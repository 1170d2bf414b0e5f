/**
 * A view that reads the clock and memory (now_ms() - a time in memory) gives values of one moment: the clock is read
 * again after the walk's memory (view-run.ts walkAfterClock), since the read again proves each word held still from
 * its first read on, not from before it. On fake memory, with a word written between the first clock reading and the
 * walk's read of it, as a program does that stamps a time while it is being sampled.
 */
import t from 'tap';
import type { LayoutFile } from '../generators/layout.ts';
import { lowerView } from '../generators/lower/lower.ts';
import { parseSchema } from '../printers/checked-schema.ts';
import { compileView } from '../printers/js.ts';
import { Snapshot } from '../sampler/memory/snapshot.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { BoundLayout } from '../sampler/sampling/bound-layout.ts';
import type { ClockReading } from '../sampler/sampling/clock-reading.ts';
import { runView, walkAfterClock, walkSample } from '../sampler/sampling/view-run.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import { FakeMemory } from './lib/fake-memory.ts';

const SCHEMA = `xwalk: 1
pack: fake
types:
  root_t:
    fields:
      stamp: uint
globals:
  G: root_t
views:
  age:
    of: root_t
    roots:
      g: '&G'
    columns:
      age_ms: now_ms() - self.stamp
`;

const LAYOUT: LayoutFile = {
  xwalk_layout: 1,
  pack: 'fake',
  release: 'test',
  build_id: '00',
  binary: 'fake',
  producer: 'written by hand for clock-moment.test.ts',
  types: { root_t: { size: 8, align: 8, fields: { stamp: { offset: 0, size: 8, signed: false } } } },
  globals: { G: { size: 8 } },
};

const PACK = parseSchema(SCHEMA, 'fake.yaml');
const BOUND = BoundLayout.bind(PACK, LAYOUT, 'clock-moment layout');

/** A memory whose stamp is written (to `stamp`) just before the first read of it: after the clock was first read. */
class StampedOnRead extends FakeMemory {
  constructor(
    private readonly at: number,
    private readonly stamp: number,
  ) {
    super();
  }

  /** Whether the stamp is written: a clock read after it reads after the stamp's time. */
  stamped = false;
  override readInto(addr: number, out: Uint8Array): number {
    if (!this.stamped) {
      this.stamped = true;
      this.u64(this.at, this.stamp);
    }
    return super.readInto(addr, out);
  }
}

const clockAt = (ms: number): ClockReading => ({ source: 'live', now_ms: ms, monotonic_ms: ms, why: {} });

t.test('a time stamped after the clock was read: walked again with the clock read after the memory, the age is of one moment', async (t) => {
  const mem = new StampedOnRead(0x7f0000000000, 1500);
  mem.map(0x7f0000000000, 4096);
  const g = mem.alloc(8);
  mem.u64(g, 1000);
  const symbols = new SymbolTable([{ name: 'G', value: g, size: 8, type: 1, bind: 1, shndx: 14 }], 0);
  const snap = new Snapshot(mem, mem.ranges());
  const R = new WalkRuntime(snap, symbols, { maxNodes: 1000, maxTotal: 10_000 });
  const view = compileView(lowerView(PACK.views.get('age')!), BOUND, R);
  R.clock = clockAt(1200);
  const first = runView(view, undefined, snap);
  t.same(first.items, [{ origin: 'g', age_ms: -300 }], 'with the clock read before the memory, an age no moment had');
  const reads = snap.stats.reads;
  const { r } = walkAfterClock(view, undefined, R, () => clockAt(1600));
  t.same(r.items, [{ origin: 'g', age_ms: 100 }], 'with the clock read after it: the age at that moment');
  t.equal(r.partial, false);
  t.equal(snap.stats.reads, reads, 'the second walk read nothing from the process: its bytes were there');
});

/** walkee-like memory: G's stamp, written when the process is first read; a second mapping far from it. */
function stamped() {
  const mem = new StampedOnRead(0x7f0000000000, 1500);
  mem.map(0x7f0000000000, 4096);
  const g = mem.alloc(8);
  mem.u64(g, 1000);
  const other = mem.map(0x7e0000000000, 4096);
  const symbols = new SymbolTable([{ name: 'G', value: g, size: 8, type: 1, bind: 1, shndx: 14 }], 0);
  const snap = new Snapshot(mem, mem.ranges());
  const R = new WalkRuntime(snap, symbols, { maxNodes: 1000, maxTotal: 10_000 });
  const view = compileView(lowerView(PACK.views.get('age')!), BOUND, R);
  // The clock as the program's: 1200 before the stamp (1500) is written, 1600 after.
  let readings = 0;
  const readClock = () => (readings++, clockAt(mem.stamped ? 1600 : 1200));
  return { mem, g, other, snap, R, view, readClock, readings: () => readings };
}

t.test('a sample that reads the last sample\'s chunks first reads the clock after all its memory: one walk, the age of one moment', async (t) => {
  const { g, snap, R, view, readClock, readings } = stamped();
  const { r } = walkSample(view, undefined, R, { plan: [{ start: g - (g % 4096), len: 4096, probe: true }], readClock, checked: true });
  t.same(r.items, [{ origin: 'g', age_ms: 100 }], 'the stamp was read before the clock: the age at the clock reading');
  t.equal(readings(), 1, 'the clock read once: the walk read nothing after it');
  t.equal(snap.stats.reads, 1, 'the one read, of the plan');
});

t.test('without a plan, or with one that misses what the walk reads, the walk that read after the clock is walked again', async (t) => {
  for (const plan of [undefined, 'elsewhere'] as const) {
    const { other, R, view, readClock, readings } = stamped();
    const { r } = walkSample(view, undefined, R, { plan: plan && [{ start: other, len: 4096, probe: true }], readClock, checked: true });
    t.same(r.items, [{ origin: 'g', age_ms: 100 }], `${plan ?? 'no plan'}: the age at the second clock reading, not -300`);
    t.equal(readings(), 2, `${plan ?? 'no plan'}: the clock read again after the memory`);
  }
  const { R, view, readClock } = stamped();
  const unchecked = walkSample(view, undefined, R, { readClock, checked: false });
  t.same(unchecked.r.items, [{ origin: 'g', age_ms: -300 }], 'unchecked (--consistency off), the one walk stands: what the check is for');
});

t.test('a plan is read as far as the mappings go: a chunk no longer mapped is left out, and read by no one', async (t) => {
  const { mem, g, snap, R, view, readClock } = stamped();
  const { r } = walkSample(view, undefined, R, { plan: [{ start: 0x100000000000, len: 4096, probe: true }, { start: g - (g % 4096), len: 4096, probe: true }], readClock, checked: true });
  t.same(r.items, [{ origin: 'g', age_ms: 100 }]);
  t.notOk(mem.reads.some((x) => x.addr === 0x100000000000), 'the unmapped chunk was not read');
  t.equal(snap.plan().length, 1, 'and the next plan holds only what was read');
});

t.test('a chunk read ahead that the walk did not use is not in the next plan: a plan never grows past what a walk reads', async (t) => {
  const { g, other, snap, R, view, readClock } = stamped();
  walkSample(view, undefined, R, { plan: [{ start: other, len: 4096, probe: true }, { start: g - (g % 4096), len: 4096, probe: true }], readClock, checked: true });
  t.equal(snap.stats.pages, 2, 'both read');
  t.same(snap.plan(), [{ start: g - (g % 4096), len: 4096, probe: true }], "the next plan: G's chunk alone");
});
