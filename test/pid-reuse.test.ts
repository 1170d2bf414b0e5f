/**
 * The process's identity is checked at every sample: when the target exits
 * and another process is given its pid, xsample --interval says so and
 * stops; it never prints the newcomer's figures as the old process's. The
 * pid is handed to the newcomer through /proc/sys/kernel/ns_last_pid (as
 * CRIU restores pids), while the sampler is held with SIGSTOP, so that the
 * swap happens between two samples whatever the host's timing.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import t from 'tap';
import { startWalkee, type Walkee } from './lib/walkee.ts';
import { xsampleBin } from './lib/xsample.ts';

/** A walkee started with args whose pid is `pid`, made so through ns_last_pid; null if the kernel will not (not root, another pid namespace's file). */
async function walkeeAtPid(pid: number, args: string[]): Promise<Walkee | null> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    } catch {
      return null;
    }
    const w = await startWalkee(args);
    if (w.child.pid === pid) return w;
    await w.kill(); // another process took the pid first: try again
  }
  throw new Error(`pid ${pid} was never handed to a walkee in 50 attempts`);
}

t.test('xsample --interval on a pid that exits and is reused: one line that says so, never the newcomer\'s figures', async (t) => {
  const old = await startWalkee(['--nodes', '100']);
  t.teardown(() => old.kill());
  const oldTruth = await old.ask('truth');
  const pid = old.child.pid!;
  const child = execa(process.execPath, [xsampleBin, '--pid', String(pid), '--struct', 'walkee_list', '--interval', '20', '--count', '500', '--json'], { reject: false, stdin: 'ignore' }); // at most 10 s of samples, should the check miss the newcomer
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  // Between two samples: hold the sampler, end the target, give its pid to another walkee with another list.
  process.kill(child.pid!, 'SIGSTOP');
  await old.kill();
  const newcomer = await walkeeAtPid(pid, ['--nodes', '300']);
  if (!newcomer) {
    process.kill(child.pid!, 'SIGCONT');
    child.kill('SIGINT');
    await child;
    t.pass('pid reuse', { skip: 'cannot choose the next pid (/proc/sys/kernel/ns_last_pid is not writable here)' });
    return;
  }
  t.teardown(() => newcomer.kill());
  const newTruth = await newcomer.ask('truth');
  t.not(newTruth.list.count, oldTruth.list.count, `the newcomer (pid ${pid} again) holds another list: ${newTruth.list.count} nodes, not ${oldTruth.list.count}`);
  process.kill(child.pid!, 'SIGCONT');
  const r = await child;
  t.equal(r.exitCode, 1, 'xsample stops with an error');
  t.match(r.stderr.trim(), new RegExp(`^xsample: process ${pid} exited, and its pid now belongs to another process$`), 'and says the pid now belongs to another process');
  const samples = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  t.ok(samples.length > 0, `${samples.length} samples of the old process`);
  t.same(samples.filter((s) => s.items[0]?.count !== oldTruth.list.count).map((s) => s.items[0]), [], `every sample printed is the old process's (${oldTruth.list.count} nodes), none the newcomer's`);
});
