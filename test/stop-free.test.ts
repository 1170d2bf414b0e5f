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
import { type Json, startWalkee } from './lib/walkee.ts';
import { xsampleBin } from './lib/xsample.ts';

const NODES = 1_000_000;
/**
 * The target's ticker sleeps ~200 µs a round and reports, beside its longest wall-clock gap, the
 * longest a round was held off while neither running nor waiting for a CPU (its gap less its CPU
 * time and run-queue wait, from the kernel's schedstat): a stop (SIGSTOP, ptrace) shows there whole,
 * while the scheduler's delays on a busy host (wall gaps of 100-450 ms seen with a load of 12 on 2
 * CPUs) do not. The host still holds a thread off now and then (60-100 ms, about once in 8 s of a
 * thread's life here, one thread at a time), so each window where the walk reads the target has its
 * own baseline: a twin of the target, the same program with the same list, nothing reading it, in
 * the same window. A window is within bounds when the target was held off less than GAP_FACTOR ×
 * the twin's longest + GAP_SLACK_US; most of TRIALS windows must be. Windows where the walk reads
 * the twin instead give the target's own baseline, reported. A sampler that SIGSTOPs the target
 * for 50 ms in each walk fails it (tried by hand).
 */
const TRIALS = 3;
const GAP_FACTOR = 2;
const GAP_SLACK_US = 5_000;

function traceState(pid: number): { tracer: number; state: string } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { tracer: Number(/^TracerPid:\s+(\d+)/m.exec(status)![1]), state: /^State:\s+(\S)/m.exec(status)![1] };
}

t.test('xsample walks 1M nodes without stopping or tracing the target', async (t) => {
  const w = await startWalkee(['--nodes', String(NODES), '--layout', 'shuffled']);
  t.teardown(() => w.kill());
  // The twin the baseline walk reads: the same list, so the host carries the same load.
  const twin = await startWalkee(['--nodes', String(NODES), '--layout', 'shuffled']);
  t.teardown(() => twin.kill());
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
  const run = await execa(
    'strace',
    ['-f', '-qq', '--seccomp-bpf', '-e', 'trace=ptrace,kill,tkill,tgkill,rt_sigqueueinfo,rt_tgsigqueueinfo,pidfd_send_signal,process_vm_readv', '-o', log, process.execPath, xsampleBin, '--pid', String(pid), '--struct', 'walkee_list', '--json', '--verbose'],
    { reject: false, timeout: 120_000 },
  );
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

  /** One walk of walkee `of`; both walkees' gaps over exactly that window. */
  const walk = async (of: number) => {
    await Promise.all([w.ask('gaps'), twin.ask('gaps')]); // fresh gap windows
    const r = await execa(process.execPath, [xsampleBin, '--pid', String(of), '--struct', 'walkee_list', '--json'], { reject: false, timeout: 120_000 });
    if (r.exitCode !== 0) throw new Error(`xsample --pid ${of}: exit ${r.exitCode}: ${r.stderr}`);
    const [target, other] = await Promise.all([w.ask('gaps'), twin.ask('gaps')]);
    return { target, twin: other };
  };
  const read: { target: Json; twin: Json }[] = [];
  const baseline: { target: Json; twin: Json }[] = [];
  for (let i = 0; i < TRIALS; i++) {
    baseline.push(await walk(twin.child.pid!));
    read.push(await walk(pid));
  }
  for (const g of read) t.ok(g.target.iterations > 0 && g.twin.iterations > 0, `both kept running (${g.target.iterations} and ${g.twin.iterations} rounds in ${g.target.elapsed_us} µs)`);
  const bounds = read.map((g) => g.twin.max_held_us * GAP_FACTOR + GAP_SLACK_US);
  const within = read.filter((g, i) => g.target.max_held_us < bounds[i]).length;
  t.ok(
    within * 2 > TRIALS,
    `held off while read: ${read.map((g, i) => `${g.target.max_held_us} µs (bound ${bounds[i]}: ${GAP_FACTOR} × the unread twin's ${g.twin.max_held_us} + ${GAP_SLACK_US})`).join('; ')}: ${within} of ${TRIALS} windows within bounds`,
  );
  t.comment(`held off while the twin was read instead: target ${baseline.map((g) => g.target.max_held_us).join(', ')} µs, twin ${baseline.map((g) => g.twin.max_held_us).join(', ')} µs`);
  t.comment(`wall-clock gaps (the scheduler's delays too): ${read.map((g) => `${g.target.max_gap_us} µs (p99 ${g.target.p99_gap_us})`).join(', ')} while read; ${baseline.map((g) => `${g.target.max_gap_us} µs (p99 ${g.target.p99_gap_us})`).join(', ')} while the twin was`);
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
