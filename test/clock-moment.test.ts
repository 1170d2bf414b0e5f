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
import { runView, walkAfterClock } from '../sampler/sampling/view-run.ts';
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

  private stamped = false;
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
