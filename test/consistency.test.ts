/**
 * Never a wrong answer marked complete. churn (test-targets/churn.c) moves
 * entries through its cache millions of times a second, reusing their
 * memory (hash chains merge and split under a reader), and rebuilds its
 * list in fresh mappings (the kernel hands the old addresses back). Its
 * invariants hold at every instant, so any answer outside them is wrong:
 * over hundreds of samples per view, xsample may say "partial" as often as
 * it must, but every sample it calls complete is right. Once churn stops,
 * every sample is complete and right again. And the same reads without the
 * check do give wrong answers marked complete: the churn is fierce enough
 * for this test to fail.
 */
import { execa } from 'execa';
import t from 'tap';
import { type Json, startWalkee } from './lib/walkee.ts';
import { xsample, xsampleBin } from './lib/xsample.ts';

const SAMPLES = 200;
/**
 * Rests between rounds of churn (a round: 4096 moves through the cache and a rebuilt list, about a
 * millisecond), long enough for some walks of each view to fall in a rest, short enough for others to
 * meet a round: the table's walk is the longest.
 */
const REST_US: Record<string, number> = { churn_table: 30_000, churn_lru: 5000, churn_list: 5000 };

type Truth = { entries: number; list_len: number; list_sum: number };

/** Whether a sample's figures are ones the structure held at some instant. */
function right(view: string, item: Json, truth: Truth): boolean {
  if (view === 'churn_list') return item.count === truth.list_len && item.sum === truth.list_sum;
  return item.entries === truth.entries || item.entries === truth.entries - 1;
}

/** The samples, and how many reads --verbose says met memory that changed (each taken again, or partial). */
async function samples(pid: number, view: string, extra: string[] = []): Promise<{ docs: Json[]; changed: number }> {
  const r = await xsample(['--pid', String(pid), '--struct', view, '--json', '--verbose', '--interval', '1', '--count', String(SAMPLES), ...extra], { timeout: 300_000 });
  if (r.code !== 0 && r.code !== 3) throw new Error(`xsample failed (exit ${r.code}): ${r.stderr}`);
  return { docs: r.json, changed: (r.stderr.match(/: changed while read \(/g) ?? []).length };
}

for (const view of ['churn_table', 'churn_lru', 'churn_list']) {
  t.test(`${view}: under churn, every complete sample is right; at rest, every sample is complete`, async (t) => {
    const w = await startWalkee([], 'churn');
    t.teardown(() => w.kill());
    const truth: Truth = await w.ask('truth');
    // Rounds of churn with rests between: some walks fall in a rest, others meet a round.
    t.same(await w.ask(`churn on ${REST_US[view]}`), { ok: true });
    const { docs: during, changed } = await samples(w.child.pid!, view);
    const after: Truth & { ops: number; rebuilds: number } = await w.ask('truth');
    t.same(await w.ask('churn off'), { ok: true });
    t.equal(during.length, SAMPLES, `${SAMPLES} samples`);
    const complete = during.filter((s) => !s.partial);
    const wrong = complete.filter((s) => !right(view, s.items[0], truth));
    t.same(wrong.map((s) => s.items[0]), [], `${complete.length} complete, none wrong; ${SAMPLES - complete.length} partial (churn did ${after.ops} moves and ${after.rebuilds} rebuilds meanwhile)`);
    t.ok(during.every((s) => !s.partial || s.errors.length > 0), 'each partial sample says why');
    t.ok(changed > 0, `${changed} reads met churn and were taken again (or the sample said partial)`);
    const gaveUp = during.filter((s) => s.errors.some((e: { message: string }) => /^changed while it was read, 4 times/.test(e.message))).length;
    t.ok(gaveUp <= changed / 4, `${gaveUp} samples partial after 4 tries`);

    const { docs: still } = await samples(w.child.pid!, view, ['--count', '5']);
    t.ok(still.every((s) => !s.partial && right(view, s.items[0], truth)), 'at rest: every sample complete and right');
  });
}

t.test('churn_entries: item by item, the entries that held still are shown whole, the others lose what changed, none is wrong', async (t) => {
  const w = await startWalkee([], 'churn');
  t.teardown(() => w.kill());
  // Without rests: every read meets churn. No retries: each sample is the first read's answer.
  t.same(await w.ask('churn on'), { ok: true });
  const { docs } = await samples(w.child.pid!, 'churn_entries', ['--retries', '0', '--count', '60']);
  const { docs: off } = await samples(w.child.pid!, 'churn_entries', ['--consistency', 'off', '--count', '60']);
  t.same(await w.ask('churn off'), { ok: true });
  type Entry = { key: unknown; same: number | null };
  const rows = (s: Json): Entry[] => s.items;
  // An entry and its shadow agree at every instant but while it moves: a row that says they differ is wrong.
  const wrongIn = (ss: Json[]) => ss.flatMap(rows).filter((r) => r.same === 0).length;
  t.ok(wrongIn(off) > 0, `without the check, ${wrongIn(off)} rows of ${off.length} samples say an entry and its shadow differ: the churn tears rows`);
  t.equal(wrongIn(docs), 0, 'with it, no row is wrong');
  const partial = docs.filter((s) => s.partial);
  t.ok(partial.length > 0, `${partial.length} of ${docs.length} samples met churn`);
  for (const [i, s] of partial.entries()) {
    const lost = rows(s).filter((r) => r.same === null).length;
    if (s.changed?.items !== lost || s.changed?.of !== rows(s).length) t.fail(`partial sample ${i}: changed ${JSON.stringify(s.changed)}, but ${lost} of ${rows(s).length} rows lost a value`);
  }
  // Before items were told apart, each of these samples showed no entry whole.
  const mostlyWhole = partial.filter((s) => rows(s).filter((r) => r.same === 1).length >= 0.9 * rows(s).length).length;
  t.ok(mostlyWhole >= partial.length / 2, `${mostlyWhole} of the ${partial.length} samples that met churn show 90% of their entries whole or more`);
});

t.test('without the check (--consistency off), the same churn gives wrong answers marked complete, and the JSON says the check was off', async (t) => {
  const w = await startWalkee([], 'churn');
  t.teardown(() => w.kill());
  const truth: Truth = await w.ask('truth');
  t.same(await w.ask('churn on'), { ok: true });
  const { docs: off } = await samples(w.child.pid!, 'churn_table', ['--consistency', 'off', '--count', '100']);
  t.same(await w.ask('churn off'), { ok: true });
  const wrong = off.filter((s) => !s.partial && !right('churn_table', s.items[0], truth));
  t.ok(wrong.length > 0, `${wrong.length} of ${off.length} samples complete and wrong (entries ${wrong.slice(0, 3).map((s) => s.items[0].entries).join(', ')}, truth ${truth.entries})`);
  t.ok(off.every((s) => s.consistency === 'off'), 'each says consistency: off');
  const on = await xsample(['--pid', String(w.child.pid), '--struct', 'churn_table', '--json']);
  t.notOk('consistency' in on.json, 'a checked answer carries no such key');
});

t.test('a process replaced by exec ends sampling with one line that says so', async (t) => {
  const w = await startWalkee([], 'churn');
  t.teardown(() => w.kill());
  const child = execa(process.execPath, [xsampleBin, '--pid', String(w.child.pid), '--struct', 'churn_list', '--interval', '20', '--json'], { reject: false, stdin: 'ignore' });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  t.same(await w.ask('exec'), { ok: true });
  const r = await child;
  t.equal(r.exitCode, 1);
  t.match(r.stderr.trim(), new RegExp(`^xsample: process ${w.child.pid} runs another program now \\(/(usr/)?bin/sleep\\): it called exec$`));
  for (const line of r.stdout.trim().split('\n')) {
    const s = JSON.parse(line);
    t.ok(s.partial || right('churn_list', s.items[0], { entries: 0, list_len: 20000, list_sum: 200010000 }), `sample ${s.sample}: of churn, not of sleep`);
  }
});

t.test('a sample partial because memory changed leads with that cause, before what a walk of the moving memory said', async (t) => {
  const w = await startWalkee([], 'churn');
  t.teardown(() => w.kill());
  t.same(await w.ask('churn on'), { ok: true });
  const { docs } = await samples(w.child.pid!, 'churn_table', ['--retries', '0', '--count', '50']);
  t.same(await w.ask('churn off'), { ok: true });
  const changedFirst = (s: Json) => /^changed while it was read, 1 time /.test(s.errors[0]?.message ?? '');
  const mentions = docs.filter((s) => s.errors.some((e: { message: string }) => /^changed while it was read/.test(e.message)));
  t.ok(mentions.length > 0, `with no retries, ${mentions.length} of ${docs.length} samples met churn`);
  t.same(mentions.filter((s) => !changedFirst(s)).map((s) => s.errors), [], 'each leads with "changed while it was read"');
});
