/**
 * --retries N: a sample whose memory changed while it was read is taken
 * again up to N more times, then it is partial and says how many times it
 * was read. Under churn that never rests, every walk of the table meets
 * change: each sample is read exactly N + 1 times (counted from --verbose's
 * line per read) and ends partial, "changed while it was read, N+1 times".
 */
import t from 'tap';
import { startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const SAMPLES = 5;

t.test('--retries N: each sample that keeps changing is read N + 1 times, then partial, and says so', async (t) => {
  const w = await startWalkee([], 'churn');
  t.teardown(() => w.kill());
  t.same(await w.ask('churn on'), { ok: true });
  t.teardown(() => w.ask('churn off'));
  const pid = String(w.child.pid);
  for (const retries of [0, 2, 5]) {
    const r = await xsample(['--pid', pid, '--struct', 'churn_table', '--json', '--verbose', '--interval', '1', '--count', String(SAMPLES), '--retries', String(retries)], { timeout: 300_000 });
    t.ok(r.code === 0 || r.code === 3, `--retries ${retries}: exit ${r.code} ${r.code > 3 || r.code === 1 ? r.stderr : ''}`);
    t.equal(r.json.length, SAMPLES, `--retries ${retries}: ${SAMPLES} samples`);
    const reads = r.stderr.split('\n').filter((l) => /^xsample: churn_table: .* in [\d.]+ ms; read again in/.test(l));
    const changed = reads.filter((l) => /changed while read \(/.test(l)).length;
    const partial = r.json.filter((s: { partial: boolean }) => s.partial);
    for (const s of partial) t.match(s.errors[0]?.message, new RegExp(`^changed while it was read, ${retries + 1} time${retries === 0 ? '' : 's'} \\(the last time: `), `--retries ${retries}: a partial sample was read ${retries + 1} times`);
    // Each sample ends at its first read that held still (complete) or after retries + 1 that did not (partial).
    t.equal(reads.length - changed, SAMPLES - partial.length, `--retries ${retries}: one read held still for each of the ${SAMPLES - partial.length} complete samples`);
    t.ok(
      changed >= partial.length * (retries + 1) && changed <= partial.length * (retries + 1) + (SAMPLES - partial.length) * retries,
      `--retries ${retries}: ${changed} reads met change: ${retries + 1} for each of ${partial.length} partial samples, at most ${retries} for each complete one`,
    );
    t.ok(partial.length > 0, `--retries ${retries}: churn without rest leaves ${partial.length} of ${SAMPLES} samples partial`);
  }
  const bad = await xsample(['--pid', pid, '--struct', 'churn_table', '--retries', '101']);
  t.equal(bad.code, 2, '--retries 101: bad usage');
  t.match(bad.stderr, /--retries takes a whole number from 0 to 100, not '101'/);
});
