/**
 * make bench: every way to walk walkee's list and sum a field, side by side
 * in one run, on 10k, 100k and 1M nodes laid out contiguously and shuffled;
 * the stall each one imposes on the target; nginx's latency under load
 * while it is sampled. Writes docs/BENCHMARKS.md, docs/benchmarks.svg and
 * bench/results.json. Every timed walk is checked against walkee's own sum.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { holdConnections, partialGet, startNginx } from '../test/lib/nginx.ts';
import { binPath, root, startWalkee, type Walkee } from '../test/lib/walkee.ts';
import { writeReport } from './report.ts';

const SIZES = [10_000, 100_000, 1_000_000];
const LAYOUTS = ['contiguous', 'shuffled'] as const;
const RUNS = Number(process.env.XWALK_BENCH_RUNS ?? 3);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bench-'));
const floorBin = path.join(work, 'floor');
const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

export interface Target {
  w: Walkee;
  pid: number;
  head: number;
  sum: number;
  nodes: number;
  core: string;
}

interface Timing {
  sum: number;
  ns: number;
  rssMiB?: number;
}

export interface Method {
  key: string;
  label: string;
  /** Sizes it is run at (the slowest only where it finishes in reasonable time). */
  sizes: number[];
  runs?: number;
  live: boolean;
  run(t: Target): Promise<Timing>;
}

function benchLine(out: string, what: string): Timing {
  const line = out.split('\n').find((l) => l.startsWith('XWALK-BENCH '));
  if (!line) throw new Error(`${what} printed no result:\n${out.slice(-1500)}`);
  const r = JSON.parse(line.slice(12));
  return { sum: r.sum, ns: r.ns };
}

async function xsampleRun(args: string[]): Promise<Timing> {
  const r = await execa(process.execPath, [path.join(root, 'dist/xsample.js'), ...args, '--struct', 'walkee_sum', '--json', '--verbose'], { reject: false });
  const m = /in ([\d.]+) ms, peak RSS (\d+) MiB/.exec(r.stderr);
  if (!m || r.exitCode !== 0) throw new Error(`xsample failed: ${r.stderr}`);
  return { sum: JSON.parse(r.stdout).items[0].sum, ns: Number(m[1]) * 1e6, rssMiB: Number(m[2]) };
}

const gdbRun = async (t: Target, method: 'value' | 'ext') => {
  const source = method === 'ext' ? ['-ex', `source ${path.join(root, 'generated/walkee.py')}`] : [];
  const r = await execa('gdb', ['-batch', '-nx', '-p', String(t.pid), ...source, '-x', path.join(root, 'bench/gdb_walk.py')], { reject: false, env: { XWALK_BENCH: method, DEBUGINFOD_URLS: '' }, timeout: 600_000 });
  return benchLine(r.stdout, `gdb ${method}`);
};

const lldbRun = async (t: Target, method: 'sbvalue' | 'raw' | 'ext') => {
  const ext = method === 'ext' ? ['-o', `command script import ${path.join(root, 'generated/walkee_lldb.py')}`] : [];
  const r = await execa('lldb-16', ['-b', '--no-lldbinit', '-p', String(t.pid), ...ext, '-o', `command script import ${path.join(root, 'bench/lldb_walk.py')}`], { reject: false, env: { XWALK_BENCH: method }, timeout: 1_200_000 });
  return benchLine(r.stdout, `lldb ${method}`);
};

const drgnRun = async (t: Target, method: 'objects' | 'raw') => {
  const r = await execa('/usr/bin/python3', [path.join(root, 'bench/drgn_walk.py'), String(t.pid), method], { reject: false, timeout: 600_000 });
  return benchLine(r.stdout + r.stderr, `drgn ${method}`);
};

export const METHODS: Method[] = [
  {
    key: 'floor',
    label: 'C page-cache walker (process_vm_readv): the floor',
    sizes: SIZES,
    live: true,
    async run(t) {
      const r = await execa(floorBin, [String(t.pid), '0x' + t.head.toString(16), '0', '8']);
      const j = JSON.parse(r.stdout);
      return { sum: j.sum, ns: j.ns };
    },
  },
  { key: 'xsample', label: 'xsample (live)', sizes: SIZES, live: true, run: (t) => xsampleRun(['--pid', String(t.pid)]) },
  { key: 'xsample_core', label: 'xsample --core', sizes: SIZES, live: false, run: (t) => xsampleRun(['--core', t.core, '--exe', binPath]) },
  { key: 'gdb_ext', label: 'generated gdb extension', sizes: SIZES, live: true, run: (t) => gdbRun(t, 'ext') },
  { key: 'lldb_ext', label: 'generated lldb extension', sizes: SIZES, live: true, run: (t) => lldbRun(t, 'ext') },
  { key: 'gdb_value', label: 'gdb Python, gdb.Value', sizes: SIZES, live: true, run: (t) => gdbRun(t, 'value') },
  { key: 'lldb_raw', label: 'lldb Python, process.ReadMemory per field', sizes: SIZES, live: true, run: (t) => lldbRun(t, 'raw') },
  { key: 'lldb_sbvalue', label: 'lldb Python, SBValue', sizes: [10_000], runs: 1, live: true, run: (t) => lldbRun(t, 'sbvalue') },
  { key: 'drgn_objects', label: 'drgn 0.0.22, objects', sizes: SIZES, live: true, run: (t) => drgnRun(t, 'objects') },
  { key: 'drgn_raw', label: 'drgn 0.0.22, prog.read', sizes: SIZES, live: true, run: (t) => drgnRun(t, 'raw') },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function target(nodes: number, layout: string): Promise<Target> {
  const w = await startWalkee(['--nodes', String(nodes), '--layout', layout]);
  const truth = await w.ask('truth');
  const core = path.join(work, `core-${nodes}-${layout}`);
  await execa('gcore', ['-o', core, String(w.child.pid)], { stdio: 'ignore' });
  return { w, pid: w.child.pid!, head: Number(truth.list.head), sum: truth.list.sum, nodes, core: `${core}.${w.child.pid}` };
}

export interface WalkResult {
  method: string;
  nodes: number;
  layout: string;
  nsPerNode: number;
  runs: number[];
  rssMiB?: number;
}

async function walks(): Promise<WalkResult[]> {
  const out: WalkResult[] = [];
  for (const nodes of SIZES) {
    for (const layout of LAYOUTS) {
      const t = await target(nodes, layout);
      try {
        for (const m of METHODS.filter((m) => m.sizes.includes(nodes))) {
          const runs: number[] = [];
          let rss: number | undefined;
          for (let i = 0; i < (m.runs ?? RUNS); i++) {
            const r = await m.run(t);
            if (r.sum !== t.sum) throw new Error(`${m.key} summed ${r.sum}, walkee says ${t.sum}: not timed on a wrong answer`);
            runs.push(r.ns / nodes);
            rss = r.rssMiB ?? rss;
          }
          out.push({ method: m.key, nodes, layout, nsPerNode: median(runs), runs, rssMiB: rss });
          log(`${nodes} ${layout} ${m.key}: ${median(runs).toFixed(0)} ns/node`);
        }
      } finally {
        await t.w.kill();
        fs.rmSync(t.core, { force: true });
      }
    }
  }
  return out;
}

export interface StallResult {
  method: string;
  maxGapUs: number;
  p99GapUs: number;
  progress: number;
  wallMs: number;
}

/** The target's own loop gaps while each method walks 1M shuffled nodes, against an unobserved period. */
async function stalls(): Promise<StallResult[]> {
  const t = await target(1_000_000, 'shuffled');
  const out: StallResult[] = [];
  try {
    for (const m of METHODS.filter((m) => m.live && m.sizes.includes(1_000_000))) {
      await t.w.ask('gaps');
      await new Promise((r) => setTimeout(r, 1000));
      const quiet = await t.w.ask('gaps');
      const t0 = Date.now();
      await m.run(t);
      const wallMs = Date.now() - t0;
      const g = await t.w.ask('gaps');
      const progress = g.iterations / g.elapsed_us / (quiet.iterations / quiet.elapsed_us);
      out.push({ method: m.key, maxGapUs: g.max_gap_us, p99GapUs: g.p99_gap_us, progress, wallMs });
      log(`stall ${m.key}: max ${g.max_gap_us} µs, p99 ${g.p99_gap_us} µs, progress ${progress.toFixed(2)}`);
    }
  } finally {
    await t.w.kill();
    fs.rmSync(t.core, { force: true });
  }
  return out;
}

export interface LoadResult {
  condition: string;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  samples: number;
}

function wrkLatency(out: string, pct: string): number {
  const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)$`, 'm').exec(out);
  if (!m) throw new Error(`wrk printed no ${pct}% latency:\n${out}`);
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

/** nginx under wrk on loopback: unsampled, sampled by xsample at 10 and 100 Hz, and by the gdb extension. */
async function load(): Promise<LoadResult[]> {
  const nginx = await startNginx();
  const held = await holdConnections(nginx.port, 4, { partialRequest: partialGet });
  const out: LoadResult[] = [];
  const seconds = 5;
  const wrk = () => execa('wrk', ['-t2', '-c32', `-d${seconds}s`, '--latency', `http://127.0.0.1:${nginx.port}/`], { reject: false });
  const pid = String(nginx.workerPid);
  try {
    const conditions: [string, () => Promise<number>][] = [
      ['unsampled', async () => 0],
      ['xsample ngx_requests, 10 Hz', () => sampled(pid, 100, seconds)],
      ['xsample ngx_requests, 100 Hz', () => sampled(pid, 10, seconds)],
      ['gdb extension ngx-requests, back to back', () => gdbLoop(pid, seconds)],
    ];
    for (const [condition, sampler] of conditions) {
      const [w, samples] = await Promise.all([wrk(), sampler()]);
      const requests = Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0);
      out.push({ condition, p50Ms: wrkLatency(w.stdout, '50'), p99Ms: wrkLatency(w.stdout, '99'), requests, samples });
      log(`load ${condition}: p50 ${out.at(-1)!.p50Ms} ms, p99 ${out.at(-1)!.p99Ms} ms, ${requests} requests, ${samples} samples`);
    }
  } finally {
    await held.close();
    await nginx.stop();
  }
  return out;
}

async function sampled(pid: string, intervalMs: number, seconds: number): Promise<number> {
  const count = Math.floor((seconds * 1000) / intervalMs) - 5;
  const r = await execa(process.execPath, [path.join(root, 'dist/xsample.js'), '--pid', pid, '--struct', 'ngx_requests', '--interval', String(intervalMs), '--count', String(count), '--json'], { reject: false });
  if (r.exitCode !== 0 && r.exitCode !== 3) throw new Error(`xsample failed under load: ${r.stderr}`);
  return r.stdout.trim().split('\n').length;
}

async function gdbLoop(pid: string, seconds: number): Promise<number> {
  const end = Date.now() + (seconds - 0.5) * 1000;
  let n = 0;
  while (Date.now() < end) {
    await execa('gdb', ['-batch', '-nx', '-p', pid, '-ex', `source ${path.join(root, 'generated/nginx.py')}`, '-ex', 'ngx-requests --json'], { reject: false, env: { DEBUGINFOD_URLS: '' } });
    n++;
  }
  return n;
}

async function versions(): Promise<Record<string, string>> {
  const v = async (cmd: string, args: string[], re: RegExp) => {
    const r = await execa(cmd, args, { reject: false });
    return (re.exec(r.stdout + r.stderr)?.[1] ?? 'unknown').trim();
  };
  return {
    date: new Date().toISOString().slice(0, 10),
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}`,
    kernel: os.release(),
    node: process.version,
    gdb: await v('gdb', ['--version'], /^GNU gdb .*? ([\d.]+)$/m),
    lldb: await v('lldb-16', ['--version'], /lldb version ([\d.]+)/),
    drgn: await v('/usr/bin/python3', ['-c', 'import drgn; print(drgn.__version__)'], /([\d.]+)/),
    wrk: await v('wrk', ['-v'], /wrk ([\d.]+)/),
  };
}

async function main(): Promise<void> {
  await execa('cc', ['-O2', '-o', floorBin, path.join(root, 'bench/floor.c')]);
  const env = await versions();
  log(`${env.cpus}, kernel ${env.kernel}; ${RUNS} runs per point, medians`);
  const results = { env, runs: RUNS, walks: await walks(), stalls: await stalls(), load: await load() };
  fs.writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify(results, null, 1) + '\n');
  writeReport(results, METHODS);
  fs.rmSync(work, { recursive: true, force: true });
  log('wrote docs/BENCHMARKS.md, docs/benchmarks.svg, bench/results.json');
}

await main();
