/**
 * A sample whose memory changed while it was read keeps what held still,
 * item by item: a row loses only the values that read a word that changed;
 * a row found through a link that changed is not shown (the item may have
 * left the set, or never been in it), and the sample says the set may be
 * missing items; the rest are whole. Which row read what is found by
 * walking the same bytes again with the changed words watched. On fake
 * memory, built by hand; test/consistency.test.ts holds it to a live
 * process's own invariants.
 */
import t from 'tap';
import type { LayoutFile } from '../generators/layout.ts';
import { lowerView } from '../generators/lower/lower.ts';
import { parseSchema } from '../printers/checked-schema.ts';
import { BoundLayout } from '../sampler/sampling/bound-layout.ts';
import { compileView } from '../printers/js.ts';
import { Snapshot } from '../sampler/memory/snapshot.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { runView, touchesOf, valuesTrue, withoutChanged } from '../sampler/sampling/view-run.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import { FakeMemory } from './lib/fake-memory.ts';

const SCHEMA = `xwalk: 1
pack: fake
types:
  node_t:
    fields:
      value: uint
      next: ptr node_t
      twin: uint
      extra: uint
  root_t:
    fields:
      list: ptr node_t
globals:
  G: root_t
views:
  nodes:
    of: node_t
    roots:
      list: chain(G.list, next)
    columns:
      value: self.value
      both: self.value + self.extra
    checks:
      - expr: self.twin == self.value
        message: twin differs
`;

const LAYOUT: LayoutFile = {
  xwalk_layout: 1,
  pack: 'fake',
  release: 'test',
  build_id: '00',
  binary: 'fake',
  producer: 'written by hand for changed-items.test.ts',
  types: {
    node_t: { size: 32, align: 8, fields: { value: { offset: 0, size: 8, signed: false }, next: { offset: 8, size: 8 }, twin: { offset: 16, size: 8, signed: false }, extra: { offset: 24, size: 8, signed: false } } },
    root_t: { size: 8, align: 8, fields: { list: { offset: 0, size: 8 } } },
  },
  globals: { G: { size: 8 } },
};

const PACK = parseSchema(SCHEMA, 'fake.yaml');
const BOUND = BoundLayout.bind(PACK, LAYOUT, 'changed-items layout');
const STT_OBJECT = 1;

/** G and a list of n nodes (values 1..n, each twin and extra the same), the nodes on a page of their own. */
function world(n: number) {
  const mem = new FakeMemory();
  mem.map(0x7f0000000000, 4096);
  const g = mem.alloc(8);
  mem.map(0x7f0000100000, Math.ceil((n * 32) / 4096) * 4096);
  const nodes = Array.from({ length: n }, () => mem.alloc(32));
  nodes.forEach((a, i) => {
    mem.u64(a, i + 1);
    mem.u64(a + 8, i + 1 < n ? nodes[i + 1] : 0);
    mem.u64(a + 16, i + 1);
    mem.u64(a + 24, i + 1);
  });
  mem.u64(g, nodes[0]);
  return { mem, g, nodes };
}

/** One sample read, then the memory changed by change(), then what the sample shows. */
function sampleAcross(n: number, change: (w: ReturnType<typeof world>) => void) {
  const w = world(n);
  const snap = new Snapshot(w.mem, w.mem.ranges());
  const symbols = new SymbolTable([{ name: 'G', value: w.g, size: 8, type: STT_OBJECT, bind: 1, shndx: 14 }], 0);
  const R = new WalkRuntime(snap, symbols, { maxNodes: 100_000, maxTotal: 1_000_000 });
  const view = compileView(lowerView(PACK.views.get('nodes')!), BOUND, R);
  const loads: Record<string, number> = {};
  const r = runView(view, undefined, snap, loads);
  change(w);
  const c = snap.changed();
  if (!c) return { r, out: r, reads: w.mem.readCount };
  // As the process saw them: the fake memory counts every read made of it.
  const reads = w.mem.readCount;
  const touches = c.at ? touchesOf(view, undefined, R, c.at, r.items.length) : undefined;
  return { r, out: withoutChanged(view, r, { tags: c.tags, touches }, loads, snap.sharedBy), reads, readsAfter: w.mem.readCount, listed: c.at?.size ?? null };
}

const row = (v: number, both: number | null = 2 * v) => ({ origin: 'list', value: v, both });

t.test('read once, all there', async (t) => {
  const { out } = sampleAcross(4, () => {});
  t.same(out.items, [row(1), row(2), row(3), row(4)]);
  t.equal(out.partial, false);
});

t.test("a value that changed takes out that row's values that read it, not the other rows", async (t) => {
  const { out, reads, readsAfter } = sampleAcross(4, ({ mem, nodes }) => mem.u64(nodes[2] + 24, 99));
  t.same(out.items, [row(1), row(2), row(3, null), row(4)], "the third row's sum of two reads is not shown; its value, one read, is its instant's");
  t.same(out.changed, { items: 1, of: 4 });
  t.equal(out.partial, true);
  t.same(out.errors.map((e) => [e.column, e.message]), [['both', 'changed while it was read: not shown in 1 of 4 items']]);
  t.equal(readsAfter, reads, 'the second walk read nothing from the process: its bytes were all there');
});

t.test('a link that changed: the items found through it are not shown, and the sample says items may be missing', async (t) => {
  // The second node's next now skips the third: the walk went on through a link that is no longer there.
  const { out } = sampleAcross(4, ({ mem, nodes }) => mem.u64(nodes[1] + 8, nodes[3]));
  t.same(out.items, [row(1), row(2)], 'the items before the link are whole; those after it are not shown');
  t.same(out.changed, { items: 2, of: 4 });
  t.same(
    out.errors.map((e) => e.message),
    ['2 of 4 items not shown: found through memory that changed while it was read, or checked against it', 'the walk that found the items read memory that changed: items may be missing'],
  );
});

t.test('the head that changed: no item is shown', async (t) => {
  const { out } = sampleAcross(3, ({ mem, g, nodes }) => mem.u64(g, nodes[1]));
  t.same(out.items, []);
  t.same(out.changed, { items: 3, of: 3 });
});

t.test("a row whose check read what changed is not shown: whether it is an item is not known", async (t) => {
  // Only the check reads the twin: the columns keep what they read, but the check's verdict is of a torn row.
  const { out } = sampleAcross(3, ({ mem, nodes }) => {
    mem.u64(nodes[0] + 16, 5);
  });
  t.same(out.items, [row(2), row(3)]);
  t.same(out.changed, { items: 1, of: 3 });
});

t.test('more words changed than are listed: which rows read them is not worked out, and every row loses the columns that did', async (t) => {
  const n = 66_000;
  const { out, listed } = sampleAcross(n, ({ mem, nodes }) => {
    for (const a of nodes) mem.u64(a + 24, 0);
  });
  t.equal(listed, null, `${n} words changed: more than a sample lists`);
  t.equal(out.items.length, n, 'every row is shown: neither the walk that found them nor their check read what changed');
  t.ok(out.items.every((r, i) => r.both === null && r.value === i + 1), 'none with a value that read what changed; the others whole');
  t.equal(out.changed, undefined, 'and the sample does not say how many items changed: it does not know');
});

t.test('more words changed than are listed, among them words the items were checked against: no item is shown', async (t) => {
  const n = 33_000;
  const { out, listed } = sampleAcross(n, ({ mem, nodes }) => {
    for (const a of nodes) {
      mem.u64(a + 16, 0);
      mem.u64(a + 24, 0);
    }
  });
  t.equal(listed, null, `${2 * n} words changed: more than a sample lists`);
  t.same(out.items, [], 'which checks read them is not known: no row is sure to be an item');
  t.equal(out.partial, true);
  t.same(out.errors.map((e) => e.message), [`${n} of ${n} items not shown: found through memory that changed while it was read, or checked against it`]);
});

t.test('valuesTrue: the values a partial answer shows are all true only when what changed is its one problem, it was read again, and it used no register', async (t) => {
  const { r, out } = sampleAcross(4, ({ mem, nodes }) => mem.u64(nodes[2] + 24, 99));
  t.equal(out.partial, true);
  t.equal(valuesTrue(out, r, true, false), true, 'what changed was taken out: the rest is true');
  t.equal(valuesTrue(out, r, false, false), false, 'not read again: a value may be torn');
  t.equal(valuesTrue(out, r, true, true), false, 'registers are read at another moment, and compared only when a newer sample of them is there');
  const checked = { ...r, partial: true, errors: [{ item: '0x7f0000100000', message: 'check failed: twin differs' }] };
  t.equal(valuesTrue(out, checked, true, false), false, 'a row that failed its check is shown with values its check doubts');
  const faulted = { ...r, partial: true, errors: [{ item: '0x7f0000100000', column: 'value', message: '0x10: not in any mapping' }] };
  t.equal(valuesTrue(out, faulted, true, false), false, 'a value that could not be read while its memory held still: a problem the change does not explain');
  t.equal(valuesTrue({ ...out, explained: 1 }, faulted, true, false), true, 'one of a column that read memory that changed: the change explains it');
  const whole = sampleAcross(4, () => {});
  t.equal(valuesTrue(whole.out, whole.r, false, true), true, 'an answer with no problem is true as it is');
});
