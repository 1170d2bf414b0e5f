/**
 * Stop-free: while xsample walks a 1M-node list, the target is never
 * traced (TracerPid stays 0, it is never in a stopped state), xsample makes
 * no ptrace call and sends no signal (strace of xsample shows only
 * process_vm_readv), and the target's own loop never pauses for long.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { startWalkee } from './lib/walkee.ts';
import { xsampleBin } from './lib/xsample.ts';

const NODES = 1_000_000;
/**
 * The ticker sleeps ~200 µs a round; a stopped target shows a gap of the whole walk (gdb: seconds).
 * On a busy machine the scheduler alone can hold it off the CPU for a while, and the walk takes
 * longer too: the bound is 20 ms or half the walk, whichever is more. Stopping it for the walk
 * would still show.
 */
const MIN_GAP_BOUND_US = 20_000;

function traceState(pid: number): { tracer: number; state: string } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { tracer: Number(/^TracerPid:\s+(\d+)/m.exec(status)![1]), state: /^State:\s+(\S)/m.exec(status)![1] };
}

t.test('xsample walks 1M nodes without stopping or tracing the target', async (t) => {
  const w = await startWalkee(['--nodes', String(NODES), '--layout', 'shuffled']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const pid = w.child.pid!;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-strace-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const log = path.join(dir, 'strace.log');

  const seen = { polls: 0, traced: 0, stopped: 0 };
  const poll = setInterval(() => {
    const s = traceState(pid);
    seen.polls++;
    if (s.tracer !== 0) seen.traced++;
    if (s.state === 'T' || s.state === 't') seen.stopped++;
  }, 1);
  await w.ask('gaps'); // start a fresh gap window
  const run = await execa(
    'strace',
    ['-f', '-qq', '--seccomp-bpf', '-e', 'trace=ptrace,kill,tkill,tgkill,rt_sigqueueinfo,rt_tgsigqueueinfo,pidfd_send_signal,process_vm_readv', '-o', log, process.execPath, xsampleBin, '--pid', String(pid), '--struct', 'walkee_list', '--json', '--verbose'],
    { reject: false, timeout: 120_000 },
  );
  const gaps = await w.ask('gaps');
  clearInterval(poll);

  t.equal(run.exitCode, 0, run.stderr);
  t.same(JSON.parse(run.stdout).items[0], { pid, origin: 'walkee', count: NODES, sum: truth.list.sum }, 'the walk is right');

  const calls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  t.same(calls.filter((l) => /\bptrace\(/.test(l)), [], 'no ptrace call');
  t.same(calls.filter((l) => /\b(kill|tkill|tgkill|rt_sigqueueinfo|rt_tgsigqueueinfo|pidfd_send_signal)\(/.test(l) && l.includes(String(pid))), [], 'no signal to the target');
  t.ok(calls.some((l) => new RegExp(`process_vm_readv\\(${pid},`).test(l)), 'memory was read with process_vm_readv');

  t.ok(seen.polls > 10, `the target was watched during the walk (${seen.polls} polls)`);
  t.equal(seen.traced, 0, 'TracerPid stayed 0');
  t.equal(seen.stopped, 0, 'never in a stopped state');
  t.ok(gaps.iterations > 0, `the target kept running (${gaps.iterations} rounds in ${gaps.elapsed_us} µs)`);
  const walkUs = Number(/ in ([\d.]+) ms/.exec(run.stderr)?.[1] ?? NaN) * 1000;
  t.ok(walkUs > 0, `the walk took ${walkUs / 1000} ms`);
  const bound = Math.max(MIN_GAP_BOUND_US, walkUs / 2);
  t.ok(gaps.max_gap_us < bound, `its longest pause was ${gaps.max_gap_us} µs (p99 ${gaps.p99_gap_us} µs), under ${bound.toFixed(0)} µs`);
});

t.test('xsample runs every thread at nice 19 (or --nice), from before its first sample', async (t) => {
  const w = await startWalkee(['--nodes', '1000']);
  t.teardown(() => w.kill());
  const niceOf = (pid: number) =>
    fs.readdirSync(`/proc/${pid}/task`).map((tid) => Number(fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[16]));
  for (const [args, want] of [
    [[], 19],
    [['--nice', '7'], 7],
    [['--nice=3'], 3],
  ] as [string[], number][]) {
    const child = execa(process.execPath, [xsampleBin, '--pid', String(w.child.pid), '--struct', 'walkee_list', '--interval', '50', '--verbose', ...args], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
    // --verbose reports each sample on stderr: once one is reported, xsample is running its sampling loop.
    await new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stderr! }).on('line', (l) => /^xsample: walkee_list: /.test(l) && resolve());
      void child.then((r) => reject(new Error(`xsample ended before sampling (exit ${r.exitCode})`)));
    });
    const nices = niceOf(child.pid!);
    t.ok(nices.length > 1, `${nices.length} threads`);
    t.same([...new Set(nices)], [want], `every thread at nice ${want} (${args.join(' ') || 'default'})`);
    child.kill('SIGINT');
    t.equal((await child).exitCode, 0, 'Ctrl-C: stops, exit 0');
  }
});
