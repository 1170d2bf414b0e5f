/**
 * xsample at a shell, as py-spy and rbspy behave: `| head` ends quietly,
 * Ctrl-C stops sampling and keeps what was gathered, --interval alone
 * samples until Ctrl-C, --version answers, and the exit status of many
 * samples is the worst of them, with a summary that says how many were
 * partial and why. Every wait is for something xsample or walkee said,
 * never a fixed time.
 */
import { execa, type ResultPromise } from 'execa';
import { createInterface } from 'node:readline';
import os from 'node:os';
import t from 'tap';
import { startWalkee } from './lib/walkee.ts';
import { xsample, xsampleBin } from './lib/xsample.ts';

/** xsample as a child whose stdout lines arrive one by one, each with a way to wait for the next that matches. */
function spawnXsample(args: string[]) {
  const child = execa(process.execPath, [xsampleBin, ...args], { reject: false, stdin: 'ignore', buffer: { stdout: false } });
  const lines: string[] = [];
  const waiters: { test: (l: string) => boolean; resolve: () => void }[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => {
    lines.push(l);
    for (const w of [...waiters]) if (w.test(l)) w.resolve();
  });
  const until = (test: (l: string) => boolean) =>
    new Promise<void>((resolve, reject) => {
      if (lines.some(test)) return resolve();
      waiters.push({ test, resolve });
      void child.then(() => reject(new Error(`xsample ended before it printed the line waited for; it printed:\n${lines.join('\n')}`)));
    });
  return { child: child as ResultPromise, lines, until };
}

t.test('--version', async (t) => {
  const r = await xsample(['--version']);
  t.equal(r.code, 0);
  t.match(r.stdout.trim(), /^xsample \d+\.\d+\.\d+ \(schema language \d+\)$/);
});

t.test('a reader that closes the pipe early (xsample | head -1) ends it quietly, exit 0', async (t) => {
  const w = await startWalkee(['--nodes', '1000']);
  t.teardown(() => w.kill());
  const x = spawnXsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '20']);
  await x.until(() => true);
  x.child.stdout!.destroy();
  const r = await x.child;
  t.equal(r.exitCode, 0, 'exit 0');
  t.equal(r.stderr, '', 'nothing on stderr: no EPIPE, no stack trace');
});

t.test('--interval alone samples until Ctrl-C, then prints how the figures moved and a summary', async (t) => {
  const w = await startWalkee(['--nodes', '1000']);
  t.teardown(() => w.kill());
  const x = spawnXsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '20']);
  await x.until((l) => l.startsWith('-- sample 3 at'));
  x.child.kill('SIGINT');
  const r = await x.child;
  t.equal(r.exitCode, 0, 'exit 0: every sample was whole');
  const samples = x.lines.filter((l) => l.startsWith('-- sample ')).length;
  t.ok(samples >= 3, `${samples} samples printed`);
  t.ok(x.lines.some((l) => /^over \d+\.\d s:$/.test(l)), 'how the figures moved');
  t.match(String(r.stderr).trim(), new RegExp(`^xsample: ${samples} samples in \\d+\\.\\d s, none partial$`), 'the summary counts what was printed');
});

t.test('with many samples the exit status is the worst of them, and the summary says how many were partial and why', async (t) => {
  const w = await startWalkee(['--nodes', '1000']);
  t.teardown(() => w.kill());
  const x = spawnXsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '20', '--json']);
  const partial = (l: string) => JSON.parse(l).partial === true;
  await x.until((l) => !partial(l));
  t.same(await w.ask('corrupt cycle'), { ok: true });
  await x.until(partial);
  t.same(await w.ask('repair'), { ok: true });
  const seen = x.lines.length;
  await x.until((l) => !partial(l) && x.lines.indexOf(l) >= seen);
  x.child.kill('SIGINT');
  const r = await x.child;
  const all = x.lines.map((l) => JSON.parse(l));
  const partials = all.filter((s) => s.partial).length;
  t.notOk(all[all.length - 1].partial, 'the last sample was whole');
  t.equal(r.exitCode, 3, 'exit 3: a sample before it was partial');
  t.match(
    String(r.stderr).trim(),
    new RegExp(`^xsample: ${all.length} samples in \\d+\\.\\d s, ${partials} partial: .*walkee_item_t\\.next chain: cycle at 0x[0-9a-f]+ after \\d+ elements \\(${partials} samples?\\)$`),
    'the summary: how many, and why',
  );
  t.same(all.map((s) => s.sample), all.map((_, i) => i), 'each JSON line numbers its sample');
});

t.test('--count K takes K samples and ends by itself; each item says its pid', async (t) => {
  const w = await startWalkee(['--nodes', '1000']);
  t.teardown(() => w.kill());
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '1', '--count', '3', '--json']);
  t.equal(r.code, 0);
  t.equal(r.json.length, 3);
  t.same(r.json.map((s: { items: { pid: number }[] }) => s.items[0].pid), [w.child.pid, w.child.pid, w.child.pid]);
  t.match(r.stderr.trim(), /^xsample: 3 samples in \d+\.\d s, none partial$/);
});

t.test("--verbose ends with xsample's own CPU for the samples after the first, in all and a sample", async (t) => {
  const w = await startWalkee(['--nodes', '1000']);
  t.teardown(() => w.kill());
  const t0 = Date.now();
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '1', '--count', '6', '--json', '--verbose']);
  const wallMs = Date.now() - t0;
  t.equal(r.code, 0, r.stderr);
  const m = /^xsample: xsample's own CPU for the 5 samples after the first: (\d+) ms \((\d+) in the kernel\), (\d+) µs a sample; the last 2: (\d+) µs a sample$/m.exec(r.stderr);
  t.ok(m, `the line: ${m?.[0] ?? r.stderr}`);
  const [all, kernel, each, lastEach] = m!.slice(1).map(Number);
  // The last 2 (samples 5 and 6, after the count last doubled, at 4) are part of the 5: together no more than all of them.
  t.ok(lastEach > 0 && lastEach * 2 <= all * 1000 + 1000, `the last 2, ${lastEach} µs a sample, within the 5's ${all} ms`);
  // Bounded by what the test timed itself: no more than the command's wall time on every CPU (a figure in the wrong unit fails).
  t.ok(kernel <= all && all <= wallMs * os.cpus().length, `${all} ms (${kernel} in the kernel) within the command's ${wallMs} ms on ${os.cpus().length} CPUs`);
  t.ok(Math.abs(each - (all * 1000) / 5) <= 1000 / 5 + 1, `${each} µs a sample is the whole over 5 samples (${all} ms)`);
  const plain = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '1', '--count', '2', '--json']);
  t.notMatch(plain.stderr, /own CPU/, 'not without --verbose');
});
