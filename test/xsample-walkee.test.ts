/**
 * xsample against walkee, whose answers are known: every view equals the
 * ground truth walkee bookkept while building, live (process_vm_readv and
 * /proc/PID/mem) and from a core; corrupt structures give partial results
 * that say why.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { figures, xsample } from './lib/xsample.ts';
import { type Json, startWalkee } from './lib/walkee.ts';

/** What each view must say, from walkee's truth. */
function expected(truth: Json) {
  return {
    ngx_pool: truth.pools,
    walkee_list: [{ count: truth.list.count, sum: truth.list.sum }],
    walkee_array: [truth.array],
    walkee_kvs: [truth.kvs],
    walkee_name: [{ name: truth.name, len: truth.name.length }],
  };
}

function inorderHash(keys: number[]): number {
  let h = 0;
  for (const k of keys) h = (h * 1000003 + k) % 2 ** 31;
  return h;
}

async function checkAllViews(t: Test, truth: Json, pid: number, extra: string[]) {
  for (const [view, want] of Object.entries(expected(truth))) {
    const r = await xsample([...extra, '--struct', view, '--json']);
    t.equal(r.code, 0, `${view}: exit 0 (${r.stderr.trim()})`);
    t.equal(r.json?.partial, false, `${view}: not partial`);
    t.same(r.json?.items.map(figures), want, `${view} equals walkee's truth`);
    t.ok(r.json?.items.every((i: Json) => i.pid === pid), `${view}: every item says walkee's pid`);
  }
  const jobs = await xsample([...extra, '--struct', 'walkee_jobs', '--json']);
  const ids = jobs.json.items.map((i: Json) => i.id);
  t.equal(ids.length, truth.jobs.count, 'jobs: count');
  t.equal(ids[0], truth.jobs.first_id, 'jobs: first in queue order');
  t.equal(ids[ids.length - 1], truth.jobs.last_id, 'jobs: last in queue order');
  t.equal(jobs.json.items.reduce((s: number, i: Json) => s + i.cost, 0), truth.jobs.cost_sum, 'jobs: cost sum');
  const timers = await xsample([...extra, '--struct', 'walkee_timers', '--json']);
  const keys = timers.json.items.map((i: Json) => i.key);
  t.equal(keys.length, truth.timers.count, 'timers: count');
  t.equal(inorderHash(keys), truth.timers.inorder_hash, 'timers: in key order (order-sensitive hash)');
  t.equal(keys.reduce((a: number, b: number) => a + b, 0), truth.timers.key_sum, 'timers: key sum');
  const bst = (await xsample([...extra, '--struct', 'walkee_bst', '--json'])).json.items[0];
  t.same([bst.count, bst.key_sum, bst.min_key], [truth.bst.count, truth.bst.key_sum, Math.min(...bst.keys)], 'bst: count, sum, first in order');
  t.equal(inorderHash(bst.keys), truth.bst.inorder_hash, 'bst: in order (C recursion)');
  t.equal(inorderHash(bst.preorder), truth.bst.preorder_hash, 'bst: root first (C recursion)');
  const arrays = (await xsample([...extra, '--struct', 'walkee_arrays', '--json'])).json.items[0];
  const counts = truth.arrays.counts as number[];
  t.same(
    [arrays.tag, arrays.counts, arrays.total, arrays.third, arrays.heads, arrays.first],
    [truth.arrays.tag, counts, counts.reduce((a, b) => a + b, 0), counts[2], truth.arrays.heads, truth.arrays.heads[0]],
    'array members: char[16] as text, u32[4] as a list and a walk, ptr[2] indexed and listed',
  );
}

for (const layout of ['contiguous', 'shuffled']) {
  t.test(`every view equals the truth, ${layout} list`, async (t) => {
    const w = await startWalkee(['--nodes', '20000', '--layout', layout, '--pools', '5', '--seed', '7']);
    t.teardown(() => w.kill());
    const truth = await w.ask('truth');
    const pid = String(w.child.pid);
    await t.test('process_vm_readv', (t) => checkAllViews(t, truth, w.child.pid!, ['--pid', pid]));
    await t.test('/proc/PID/mem', (t) => checkAllViews(t, truth, w.child.pid!, ['--pid', pid, '--source', 'procmem']));
  });
}

t.test('--addr reads one pool; an expression works too', async (t) => {
  const w = await startWalkee(['--pools', '3']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const pid = String(w.child.pid);
  const one = await xsample(['--pid', pid, '--struct', 'ngx_pool', '--addr', truth.pools[1].addr, '--json']);
  t.same(one.json.items.map(figures), [truth.pools[1]]);
  const expr = await xsample(['--pid', pid, '--struct', 'ngx_pool', '--addr', 'walkee.pools[2]', '--json']);
  t.same(expr.json.items.map(figures), [truth.pools[2]]);
  const text = await xsample(['--pid', pid, '--struct', 'ngx_pool']);
  t.equal(text.code, 0);
  t.equal(text.stdout.trim().split('\n').length, 2 + truth.pools.length, 'text: a title, a header and one line per pool');
  for (const p of truth.pools) t.match(text.stdout, new RegExp(`${p.addr}\\s+${p.blocks}\\s+${p.used}\\s+${p.free}\\s`), `text line of ${p.addr}`);
});

t.test('a core file gives the same answers as the live process', async (t) => {
  const w = await startWalkee(['--nodes', '5000', '--layout', 'shuffled', '--pools', '4']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-core-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await execa('gcore', ['-o', path.join(dir, 'core'), String(w.child.pid)], { stdio: 'ignore' });
  const core = path.join(dir, `core.${w.child.pid}`);
  await checkAllViews(t, truth, w.child.pid!, ['--core', core, '--exe', (await import('./lib/walkee.ts')).binPath]);
  const r = await xsample(['--core', core, '--struct', 'walkee_list', '--json']);
  t.equal(r.json.pid, w.child.pid, 'the core knows its pid; the executable is found from the core');
  t.same(r.json.items.map(figures), [{ count: truth.list.count, sum: truth.list.sum }]);
});

t.test('corrupt structures: partial, with the reason, exit 3', async (t) => {
  const w = await startWalkee(['--nodes', '1000', '--pools', '2', '--jobs', '10']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const cases: [string, string, RegExp][] = [
    ['cycle', 'walkee_list', /cycle/],
    ['badptr', 'walkee_list', /0x10: not in any mapping/],
    ['pool-cycle', 'ngx_pool', /d\.next chain: cycle/],
    ['queue', 'walkee_jobs', /ngx_queue .*: NULL next|ngx_queue .* has prev|not in any mapping/],
  ];
  for (const [corruption, view, reason] of cases) {
    t.same(await w.ask(`corrupt ${corruption}`), { ok: true });
    const r = await xsample(['--pid', pid, '--struct', view, '--json']);
    t.equal(r.code, 3, `${corruption}: exit 3`);
    t.equal(r.json.partial, true, `${corruption}: partial`);
    t.match(r.json.errors[0].message, reason, `${corruption}: says why`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${corruption}: one line on stderr`);
    t.match(r.stderr, /^xsample: partial result: /);
    t.same(await w.ask('repair'), { ok: true });
  }
  const ok = await xsample(['--pid', pid, '--struct', 'walkee_list', '--json']);
  t.equal(ok.json.partial, false, 'after repair the walk is whole again');
});

t.test('--interval/--count samples again and says how figures moved', async (t) => {
  const w = await startWalkee(['--pools', '2']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const r = await xsample(['--pid', pid, '--struct', 'ngx_pool', '--interval', '50', '--count', '3']);
  t.equal(r.code, 0);
  t.equal((r.stdout.match(/^-- sample/gm) ?? []).length, 3);
  t.match(r.stdout, /over \d+\.\d s:\n {2}nothing moved/);
  const j = await xsample(['--pid', pid, '--struct', 'ngx_pool', '--interval', '50', '--count', '2', '--json']);
  t.equal(j.json.length, 2, 'one JSON object per sample');
  t.same(j.json.map((s: Json) => s.sample), [0, 1]);
});

t.test('a sample after the first reads the chunks the last one read in one process_vm_readv, and answers as the first', async (t) => {
  const w = await startWalkee(['--nodes', '3000', '--layout', 'shuffled', '--pools', '2']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '20', '--count', '3', '--json', '--verbose']);
  t.equal(r.code, 0, r.stderr);
  t.same(r.json.map((s: Json) => [s.items[0].count, s.items[0].sum]), Array(3).fill([truth.list.count, truth.list.sum]), "walkee's truth, each time");
  const reads = [...r.stderr.matchAll(/walkee_list: \d+ elements, (\d+) reads?,/g)].map((m) => Number(m[1]));
  t.equal(reads.length, 3, r.stderr);
  t.ok(reads[0] > 1, `the first read the list's chunks one by one (${reads[0]} reads)`);
  t.same(reads.slice(1), [1, 1], 'the others, in one batched read');
});

t.test('sampling while another thread mutates: never garbage, never a crash', async (t) => {
  const w = await startWalkee(['--nodes', '200000', '--layout', 'shuffled', '--pools', '4']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  t.same(await w.ask('mutate on'), { ok: true });
  const pid = String(w.child.pid);
  for (const view of ['walkee_list', 'ngx_pool']) {
    const r = await xsample(['--pid', pid, '--struct', view, '--interval', '20', '--count', '5', '--json']);
    t.ok(r.code === 0 || r.code === 3, `${view}: a whole or a partial answer (exit ${r.code}: ${r.stderr.trim()})`);
    t.equal(r.json.length, 5, `${view}: the 5 samples asked for`);
    for (const s of r.json) {
      if (view === 'walkee_list') t.equal(s.items[0].count, truth.list.count, 'the links are stable, so the count is exact');
      else t.same(s.items.map((i: Json) => i.addr), truth.pools.map((p: Json) => p.addr), 'the same pools');
      if (s.partial) t.ok(s.errors.length > 0, 'a partial sample says why');
    }
  }
  t.same(await w.ask('mutate off'), { ok: true });
  const after = await xsample(['--pid', pid, '--struct', 'walkee_list', '--json']);
  t.equal(after.json.items[0].sum, truth.list.sum, 'values were only swapped: the sum is whole again');
});
