/**
 * xsample top: the table of one refresh (sorted, each number with how it
 * moved, new items marked) from rows given by hand; then on a live walkee,
 * each refresh printed as text (not a terminal), its rows walkee's pools with
 * the figures walkee's own bookkeeping gives (its truth, not a walk of the
 * same memory), largest first by the column asked for.
 */
import t from 'tap';
import { topTable, withRates } from '../sampler/outputs/top.ts';
import { startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

t.test('one refresh: sorted largest first, moves since the last one, new items marked', async (t) => {
  const first = topTable(
    [
      { origin: 'r', addr: '0x10', used: 5, name: 'a' },
      { origin: 'r', addr: '0x20', used: 9, name: 'b' },
    ],
    null,
    'used',
  );
  t.same(first.lines, ['ORIGIN  ADDR  USED↓  NAME', 'r       0x20      9  b', 'r       0x10      5  a']);
  const second = topTable(
    [
      { origin: 'r', addr: '0x10', used: 12, name: 'a' },
      { origin: 'r', addr: '0x20', used: 9, name: 'b' },
      { origin: 'r', addr: '0x30', used: 1, name: 'c' },
    ],
    first.byKey,
    'used',
  );
  t.same(second.lines, [
    'ORIGIN  ADDR    USED↓  NAME',
    'r       0x10  12 (+7)  a',
    'r       0x20        9  b',
    'r       0x30        1  c     new',
  ]);
  const third = topTable([{ origin: 'r', addr: '0x10', used: 2n ** 64n - 1n, name: 'a' }], second.byKey, 'used');
  t.same(third.lines[1], `r       0x10  ${2n ** 64n - 1n} (+${2n ** 64n - 13n})  a`, 'exact past 2^53');
});

t.test('counters: each followed by its rate per second between two samples, none for a new item or a counter that went down', async (t) => {
  const last = new Map<string, { row: Record<string, string | number | bigint | null>; at: number }>();
  const first = withRates([{ pid: 7, origin: 'cycle', requests: 100, active: 3 }], ['requests'], 1000, last);
  t.same(first, [{ pid: 7, origin: 'cycle', requests: 100, 'requests/s': null, active: 3 }], 'no rate before a second sample');
  const second = withRates([{ pid: 7, origin: 'cycle', requests: 130, active: 2 }], ['requests'], 3000, last);
  t.same(second, [{ pid: 7, origin: 'cycle', requests: 130, 'requests/s': '15.0', active: 2 }], '30 more in 2 s: 15.0/s; a gauge has none');
  const third = withRates([{ pid: 7, origin: 'cycle', requests: 2n ** 64n - 1n, active: 2 }, { pid: 8, origin: 'cycle', requests: 5, active: 0 }], ['requests'], 4000, last);
  t.same(third.map((r) => r['requests/s']), [((2 ** 64 - 131) / 1).toFixed(1), null], 'exact past 2^53; another process is a new item');
  const fourth = withRates([{ pid: 7, origin: 'cycle', requests: 4, active: 2 }], ['requests'], 5000, last);
  t.same(fourth[0]['requests/s'], null, 'a counter that went down (the program started again) has no rate');
  t.same(withRates([{ origin: 'r', used: 1 }], [], 0, last), [{ origin: 'r', used: 1 }], 'a view without counters is left as it is');
});

t.test("on a live walkee: each refresh as text, the rows of ngx_pool sorted by the column asked for, each pool's figures walkee's own", async (t) => {
  const w = await startWalkee(['--nodes', '7', '--pools', '4']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  // walkee's own bookkeeping of its pools, kept while it built them: not a walk of their memory.
  const truth = (await w.ask('truth')).pools as { addr: string; blocks: number; used: number; free: number; failed: number; large_count: number; large_bytes: number; cleanups: number }[];
  t.equal(truth.length, 4);
  const r = await xsample(['top', '--pid', pid, '--struct', 'ngx_pool', '--sort', 'used', '--count', '2', '--interval', '50']);
  t.equal(r.code, 0, r.stderr);
  const blocks = r.stdout.trim().split('\n\n');
  t.equal(blocks.length, 2, 'two refreshes');
  const sorted = [...truth].sort((a, b) => b.used - a.used);
  t.ok(new Set(sorted.map((p) => p.used)).size === sorted.length, 'no two pools use the same bytes: one order');
  blocks.forEach((b, i) => {
    const [head, cols, ...rows] = b.split('\n');
    t.match(head, new RegExp(`^xsample top: ngx_pool \\(walkee 1\\.0, pid ${pid}\\): 4 items, refresh ${i + 1} at [\\d.]+ s, by used`));
    t.equal(cols.replace(/\s+/g, ' '), 'ORIGIN ADDR BLOCKS USED↓ FREE FAILED LARGE_COUNT LARGE_BYTES CLEANUPS', 'the columns of ngx_pool');
    t.same(
      rows.map((l) => l.split(/\s+/)),
      sorted.map((p) => ['walkee', p.addr, ...[p.blocks, p.used, p.free, p.failed, p.large_count, p.large_bytes, p.cleanups].map(String)]),
      `refresh ${i + 1}: the pools largest first, every figure as walkee keeps it, nothing moved`,
    );
  });
  t.match(r.stderr, /^xsample: 2 samples in [\d.]+ s, none partial$/m);
  const bad = await xsample(['top', '--pid', pid, '--struct', 'ngx_pool', '--sort', 'nope', '--count', '1']);
  t.equal(bad.code, 1);
  t.match(bad.stderr, /view ngx_pool has no column nope to sort by \(columns: origin, addr, blocks, used,/);
});
