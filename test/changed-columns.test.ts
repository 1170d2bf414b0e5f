/**
 * A partial sample never shows a number it could not compute: a column
 * whose walk faults half way is null (in JS and in the Python the
 * debuggers run), and in a live sample whose memory changed while it was
 * read, each column that read a word that changed is null too - a count of
 * a list cut short by a sweep is not shown - while a column of one read
 * (a value of one instant) and a column that read nothing that changed
 * keep their values. On fake memory, built by hand.
 */
import t from 'tap';
import type { LayoutFile } from '../generators/layout.ts';
import { lowerColumn, lowerView } from '../generators/lower/lower.ts';
import { columnValue } from '../generators/schema.ts';
import { parseSchema } from '../printers/checked-schema.ts';
import { BoundLayout } from '../sampler/sampling/bound-layout.ts';
import type { Int } from '../core/exact.ts';
import { compileView } from '../printers/js.ts';
import { Snapshot } from '../sampler/memory/snapshot.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { runView, withoutChanged } from '../sampler/sampling/view-run.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import { FakeMemory } from './lib/fake-memory.ts';
import { pyRun } from './lib/py-walk.ts';

const SCHEMA = `xwalk: 1
pack: fake
types:
  node_t:
    fields:
      value: uint
      next: ptr node_t
  root_t:
    fields:
      list: ptr node_t
      total: uint
      extra: uint
views:
  lists:
    of: root_t
    columns:
      total: self.total
      both: self.total + self.extra
      nodes: count(chain(self.list, next))
      sum: sum(chain(self.list, next), it.value)
      extra: self.extra * 2
`;

const LAYOUT: LayoutFile = {
  xwalk_layout: 1,
  pack: 'fake',
  release: 'test',
  build_id: '00',
  binary: 'fake',
  producer: 'written by hand for changed-columns.test.ts',
  types: {
    node_t: { size: 16, align: 8, fields: { value: { offset: 0, size: 8, signed: false }, next: { offset: 8, size: 8 } } },
    root_t: { size: 24, align: 8, fields: { list: { offset: 0, size: 8 }, total: { offset: 8, size: 8, signed: false }, extra: { offset: 16, size: 8, signed: false } } },
  },
  globals: {},
};

const PACK = parseSchema(SCHEMA, 'fake.yaml');
const BOUND = BoundLayout.bind(PACK, LAYOUT, 'changed-columns layout');
const VIEW = PACK.views.get('lists')!;

/** A root and a list of n nodes (values 1..n) in fresh fake memory, the nodes on a page of their own. */
function world(n: number) {
  const mem = new FakeMemory();
  mem.map(0x7f0000000000, 4096);
  const root = mem.alloc(24);
  mem.map(0x7f0000100000, 4096);
  const nodes = Array.from({ length: n }, () => mem.alloc(16));
  nodes.forEach((a, i) => {
    mem.u64(a, i + 1);
    mem.u64(a + 8, i + 1 < n ? nodes[i + 1] : 0);
  });
  mem.u64(root, nodes[0]);
  mem.u64(root + 8, n);
  mem.u64(root + 16, 7);
  return { mem, root, nodes };
}

function sample(mem: FakeMemory, root: number) {
  const snap = new Snapshot(mem, mem.ranges());
  const R = new WalkRuntime(snap, new SymbolTable([], 0), { maxNodes: 1000, maxTotal: 10000 });
  const view = compileView(lowerView(VIEW), BOUND, R);
  const loads: Record<string, number> = {};
  return { snap, view, loads, r: runView(view, () => root as Int, snap, loads) };
}

t.test('a column whose walk faults half way is null, in JS and in Python; the others keep their values', async (t) => {
  const { mem, root, nodes } = world(4);
  mem.u64(nodes[1] + 8, 0x7f0000900000); // the second node's next: not mapped
  const { r } = sample(mem, root);
  t.same(r.items, [{ origin: 'addr', total: 4, both: 11, nodes: null, sum: null, extra: 14 }]);
  t.same(
    r.errors.map((e) => [e.column, e.message]),
    [
      ['nodes', '0x7f0000900008: not in any mapping'],
      ['sum', '0x7f0000900000: not in any mapping'],
    ],
  );
  for (const [name, at] of [['nodes', '0x7f0000900008'], ['sum', '0x7f0000900000']]) {
    const prog = lowerColumn(columnValue(VIEW.columns.find((c) => c.name === name)!.expr));
    const py = pyRun(prog, 'value', { mem, symbols: [], layout: LAYOUT }, { maxNodes: 1000, maxTotal: 10000, visited: 0, self: root });
    t.same([py.value, py.error?.message], [undefined, `${at}: not in any mapping`], `python: ${name} has no value, and says why`);
  }
});

t.test('a sample that changed while it was read: each column that read a word that changed is null, and says so', async (t) => {
  const { mem, root, nodes } = world(4);
  const { snap, view, loads, r } = sample(mem, root);
  t.same(r.items, [{ origin: 'addr', total: 4, both: 11, nodes: 4, sum: 10, extra: 14 }], 'read once, all there');
  // A sweep frees the third node: the second's next now skips it, and total says 3.
  mem.u64(nodes[1] + 8, nodes[3]);
  mem.u64(root + 8, 3);
  const change = snap.changed();
  t.ok(change && change.words === 2, `two words changed: ${JSON.stringify(change)}`);
  const out = withoutChanged(view, r, { tags: change!.tags }, loads, snap.sharedBy);
  t.equal(out.partial, true);
  t.same(out.items, [{ origin: 'addr', total: 4, both: null, nodes: null, sum: null, extra: 14 }], 'the walks and the sum of two reads are not shown; total, one read, is the value of its instant; extra read nothing that changed');
  t.same(
    out.errors.map((e) => [e.column, e.message]),
    [
      ['both', 'changed while it was read: not shown'],
      ['nodes', 'changed while it was read: not shown'],
      ['sum', 'changed while it was read: not shown'],
    ],
  );
});

t.test("a walk that faults on memory that changed says first that it changed", async (t) => {
  const { mem, root, nodes } = world(3);
  mem.u64(nodes[1] + 8, 0x303030); // string bytes where a pointer was: the walk faults
  const { snap, view, loads, r } = sample(mem, root);
  mem.u64(nodes[1] + 8, nodes[2]); // and the next read sees the list whole again
  const out = withoutChanged(view, r, { tags: snap.changed()!.tags }, loads, snap.sharedBy);
  t.same(
    out.errors.map((e) => [e.column, e.message]),
    [
      ['nodes', 'changed while it was read (its walk then met 0x303038: not in any mapping)'],
      ['sum', 'changed while it was read (its walk then met 0x303030: not in any mapping)'],
    ],
  );
  t.same(out.items, [{ origin: 'addr', total: 3, both: 10, nodes: null, sum: null, extra: 14 }]);
});

t.test('aggregates one pass computes (a fold): a value that changed takes out the sum that read it, not the count beside it', async (t) => {
  const { mem, root, nodes } = world(4);
  const { snap, view, loads, r } = sample(mem, root);
  t.same(r.items, [{ origin: 'addr', total: 4, both: 11, nodes: 4, sum: 10, extra: 14 }], 'read once, all there');
  mem.u64(nodes[2], 30); // a value, not a link: the list holds still
  const out = withoutChanged(view, r, { tags: snap.changed()!.tags }, loads, snap.sharedBy);
  t.same(out.items, [{ origin: 'addr', total: 4, both: 11, nodes: 4, sum: null, extra: 14 }], 'the count of the links that held still is kept');
  t.same(out.errors.map((e) => [e.column, e.message]), [['sum', 'changed while it was read: not shown']]);
  // And a link that changed takes out both: each walked it.
  const again = sample(mem, root);
  mem.u64(nodes[1] + 8, nodes[3]);
  const out2 = withoutChanged(again.view, again.r, { tags: again.snap.changed()!.tags }, again.loads, again.snap.sharedBy);
  t.same(out2.items, [{ origin: 'addr', total: 4, both: 11, nodes: null, sum: null, extra: 14 }], 'a link that changed: both aggregates of the walk are out');
});

t.test('a column that faulted while the mappings changed says first that memory changed (it may have met a mapping made since)', async (t) => {
  const { mem, root, nodes } = world(4);
  mem.u64(nodes[1] + 8, 0x7f0000900000); // a node the sample's list of mappings does not hold
  const { snap, view, loads, r } = sample(mem, root);
  t.equal(snap.changed(), null, 'no word it read changed');
  const out = withoutChanged(view, r, { tags: 0 }, loads, snap.sharedBy, true);
  t.same(out.items, [{ origin: 'addr', total: 4, both: 11, nodes: null, sum: null, extra: 14 }]);
  t.same(
    out.errors.map((e) => [e.column, e.message]),
    [
      ['nodes', 'changed while it was read (its walk then met 0x7f0000900008: not in any mapping)'],
      ['sum', 'changed while it was read (its walk then met 0x7f0000900000: not in any mapping)'],
    ],
  );
});
