/**
 * What a perf stack sample costs the sampled thread (not part of make bench;
 * run as root: node --import=tsx bench/perf-stacks-cost.ts [rounds] [window_ms]).
 *
 * test-targets/stack-burner.c burns in xw_burn() and counts rounds of a
 * fixed amount of work. Its CPU time (schedstat) holds the sampling's own
 * cost: the CPU clock's handler, the copy of the user stack and the kernel
 * callchain run on its CPU while it is current (this kernel has no
 * IRQ_TIME_ACCOUNTING). So the cost of a sample is the CPU the thread spent
 * beyond what its rounds cost unsampled, divided by the samples taken.
 * Each sampled window is paired with an unsampled one just before it (the
 * host's load drifts), configurations take turns in rotating order, and the
 * median over rounds is reported. 4999 Hz shows the slope above the noise
 * (a few % of the work rate between windows on a shared host).
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StackEvents } from '../sampler/memory/perf/stack-events.ts';
import { median } from './report-log.ts';

const rounds = Number(process.argv[2] ?? 5);
const windowMs = Number(process.argv[3] ?? 1500);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-perf-cost-'));
const binary = path.join(dir, 'stack-burner');
execFileSync('cc', ['-O2', '-pthread', '-o', binary, path.join(import.meta.dirname, '..', 'test-targets', 'stack-burner.c')]);
const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines: string[] = [];
let waiting: ((l: string) => void) | null = null;
let pending = '';
child.stdout!.setEncoding('utf8').on('data', (s: string) => {
  pending += s;
  for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
    const l = pending.slice(0, nl);
    pending = pending.slice(nl + 1);
    if (waiting) {
      const w = waiting;
      waiting = null;
      w(l);
    } else lines.push(l);
  }
});
const ask = async (c: string): Promise<string> => {
  child.stdin!.write(c + '\n');
  return lines.length ? lines.shift()! : new Promise((r) => (waiting = r));
};
const tid = Number((await ask('burn')).split(' ')[1]);
const cpuNs = () => Number(fs.readFileSync(`/proc/${child.pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
const work = async () => Number((await ask('work')).split(' ')[1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Config {
  name: string;
  hz: number;
  stackBytes: number;
}
const configs: Config[] = [];
for (const hz of [99, 999, 4999]) for (const kib of [8, 16, 32]) configs.push({ name: `${hz} Hz ${kib} KiB`, hz, stackBytes: kib * 1024 });

interface Window {
  cpu: number;
  work: number;
  samples: number;
  lost: number;
  drainUs: number;
}
const results = new Map<string, { off: Window; on: Window }[]>();

async function measure(c: Config | null): Promise<Window> {
  const ev = c ? StackEvents.open(child.pid!, { kind: 'cpu', hz: c.hz, stackBytes: c.stackBytes }) : null;
  await sleep(50);
  ev?.drain();
  const w0 = await work();
  const c0 = cpuNs();
  let samples = 0;
  let drainUs = 0;
  const end = Date.now() + windowMs;
  while (Date.now() < end) {
    await sleep(50);
    if (ev) {
      const u = process.cpuUsage();
      samples += ev.drain().samples.filter((s) => s.tid === tid).length;
      const d = process.cpuUsage(u);
      drainUs += d.user + d.system;
    }
  }
  const c1 = cpuNs();
  const w1 = await work();
  if (ev) samples += ev.drain().samples.filter((s) => s.tid === tid).length;
  const lost = ev?.lost() ?? 0;
  ev?.close();
  return { cpu: c1 - c0, work: w1 - w0, samples, lost, drainUs };
}

for (let r = 0; r < rounds; r++) {
  for (let i = 0; i < configs.length; i++) {
    const c = configs[(i + r) % configs.length];
    const pair = { off: await measure(null), on: await measure(c) };
    results.set(c.name, [...(results.get(c.name) ?? []), pair]);
  }
}
child.stdin!.end();
fs.rmSync(dir, { recursive: true, force: true });

console.log(`windows of ${windowMs} ms, ${rounds} rounds; cost = CPU beyond the unsampled window's ns a round, a sample`);
for (const c of configs) {
  const ws = results.get(c.name)!;
  const perSample = ws.map(({ off, on }) => (on.cpu - on.work * (off.cpu / off.work)) / Math.max(1, on.samples) / 1000);
  const rate = ws.map(({ on }) => on.samples / (on.cpu / 1e9));
  const slowdown = ws.map(({ off, on }) => (on.cpu / on.work / (off.cpu / off.work) - 1) * 100);
  const drain = ws.map(({ on }) => on.drainUs / Math.max(1, on.samples));
  console.log(
    `${c.name.padEnd(15)} ${median(rate).toFixed(0).padStart(4)} samples/s of CPU, cost ${median(perSample).toFixed(1).padStart(5)} µs a sample ` +
      `(rounds: ${perSample.map((x) => x.toFixed(1)).join(' ')}), work rate ${median(slowdown).toFixed(2)}% lower, ` +
      `drain ${median(drain).toFixed(1)} µs a sample in xsample, lost ${ws.reduce((a, w) => a + w.on.lost, 0)}`,
  );
}
