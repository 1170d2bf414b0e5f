/**
 * make bench: every way to walk walkee's list and sum a field, side by side
 * in one run, on 10k, 100k and 1M nodes laid out contiguously and shuffled;
 * the stall each one imposes on the target; nginx's latency under load
 * while it is sampled. Writes docs/BENCHMARKS.md, docs/benchmarks.svg and
 * bench/results.json. Every timed walk is checked against walkee's own sum.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { holdConnections, partialGet, startNginx } from '../test/lib/nginx.ts';
import { root, startWalkee } from '../test/lib/walkee.ts';
import { METHODS, paths, SIZES, type Target } from './methods.ts';
import { writeReport } from './report.ts';
import { instant, probeCost } from './instant.ts';
import { fullstack } from './fullstack.ts';
import { luaHeap } from './lua-heap.ts';
import { sampleCost } from './sample-cost.ts';
import { sampleFloor } from './sample-floor.ts';
import { log, median } from './report-log.ts';

const LAYOUTS = ['contiguous', 'shuffled'] as const;
const RUNS = Number(process.env.XWALK_BENCH_RUNS ?? 3);
/** XWALK_BENCH_METHODS=floor,xsample: only these (for a quick look; the report wants them all). */
const ONLY = process.env.XWALK_BENCH_METHODS?.split(',');
/** Scratch space for the floor's binary and the cores (made by main). */
let work = '';


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
        for (const m of METHODS.filter((m) => m.sizes.includes(nodes) && (!ONLY || ONLY.includes(m.key)))) {
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
  quietMaxGapUs: number;
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
      out.push({ method: m.key, quietMaxGapUs: quiet.max_gap_us, maxGapUs: g.max_gap_us, p99GapUs: g.p99_gap_us, progress, wallMs });
      log(`stall ${m.key}: max ${g.max_gap_us} µs, p99 ${g.p99_gap_us} µs, progress ${progress.toFixed(2)}`);
    }
  } finally {
    await t.w.kill();
    fs.rmSync(t.core, { force: true });
  }
  return out;
}

export interface ColdResult {
  what: string;
  /** Median wall time of a whole command, start to exit, in ms. */
  ms: number;
  runs: number[];
}

/**
 * A one-shot command from start to exit, as a user at a shell waits for it:
 * xsample on an nginx worker (the schema cached after the first run, as on
 * any machine after its first use), against node doing nothing. The commands
 * take turns, round after round: this host's speed drifts over seconds, and
 * a ratio is of runs made at the same time.
 */
async function coldStart(): Promise<ColdResult[]> {
  const nginx = await startNginx();
  const rounds = 9;
  try {
    const pid = String(nginx.workerPid);
    const xsample = path.join(root, 'dist/xsample.js');
    const commands: [string, string[]][] = [
      ['node -e 0', ['-e', '0']],
      ['xsample --pid W --struct ngx_connection_totals', [xsample, '--pid', pid, '--struct', 'ngx_connection_totals']],
      ['xsample --pid W --struct ngx_requests --json', [xsample, '--pid', pid, '--struct', 'ngx_requests', '--json']],
    ];
    const runs = commands.map((): number[] => []);
    for (const [, args] of commands) await execa(process.execPath, args, { reject: false }); // caches filled, files in the page cache
    for (let i = 0; i < rounds; i++) {
      for (const [j, [what, args]] of commands.entries()) {
        const t0 = performance.now();
        const r = await execa(process.execPath, args, { reject: false });
        if (r.exitCode !== 0) throw new Error(`${what} failed: ${r.stderr}`);
        runs[j].push(performance.now() - t0);
      }
    }
    return commands.map(([what], j) => {
      log(`cold start ${what}: ${median(runs[j]).toFixed(0)} ms`);
      return { what, ms: median(runs[j]), runs: runs[j] };
    });
  } finally {
    await nginx.stop();
  }
}

export interface LoadResult {
  condition: string;
  p50Ms: number;
  p99Ms: number;
  /** Each round's p99, in the order the rounds ran: how much one run can differ from the next. */
  p99sMs: number[];
  requests: number;
  /** Each round's requests, in the order the rounds ran. */
  requestsEach?: number[];
  samples: number;
  /** Of xsample's samples (all rounds): how many were partial, and of the items they found, how many changed while read. */
  partial?: number;
  items?: number;
  itemsChanged?: number;
}

/** What a sampler did while wrk ran: samples taken, and of xsample's, the partial ones and their items. */
interface Sampled {
  samples: number;
  partial?: number;
  items?: number;
  itemsChanged?: number;
}

function wrkLatency(out: string, pct: string): number {
  const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)$`, 'm').exec(out);
  if (!m) throw new Error(`wrk printed no ${pct}% latency:\n${out}`);
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

/** A sampler started before the load, in its steady state; stop() ends it and says how many samples it took meanwhile. */
type Sampler = () => Promise<{ stop: () => Promise<Sampled> }>;

/**
 * nginx under wrk on loopback: unsampled, sampled by xsample at 10 and 100 Hz,
 * and by the gdb extension. What is measured is the sampler in its steady
 * state: each is started and has taken its first sample before wrk starts,
 * and is stopped after wrk ends (a tool's start-up is not its sampling rate).
 * With two CPUs or more, the worker is pinned to one and wrk to another, so
 * that the two do not trade places from run to run; the sampler is left
 * where the kernel puts it. The conditions take turns, ROUNDS times, each round
 * starting one condition later, and the medians are reported: one 5-second
 * run is too noisy on a shared 2-core host.
 */
async function load(): Promise<LoadResult[]> {
  const nginx = await startNginx();
  const held = await holdConnections(nginx.port, 4, { partialRequest: partialGet });
  const seconds = 5;
  const rounds = Number(process.env.XWALK_BENCH_LOAD_ROUNDS ?? 8);
  const pin = os.cpus().length >= 2;
  const pid = String(nginx.workerPid);
  if (pin) await execa('taskset', ['-p', '-c', '1', pid], { stdout: 'ignore' });
  const wrkArgv = ['wrk', '-t2', '-c32', `-d${seconds}s`, '--latency', `http://127.0.0.1:${nginx.port}/`];
  const wrk = () => (pin ? execa('taskset', ['-c', '0', ...wrkArgv], { reject: false }) : execa(wrkArgv[0], wrkArgv.slice(1), { reject: false }));
  const conditions: [string, Sampler][] = [
    ['unsampled', async () => ({ stop: async () => ({ samples: 0 }) })],
    ['xsample ngx_requests, 10 Hz', () => sampled(pid, 100)],
    ['xsample ngx_requests, 100 Hz', () => sampled(pid, 10)],
    // The same, scheduled only on a CPU with nothing else to run: what is left of the loss is not the CPU it takes.
    ['xsample ngx_requests, 100 Hz, SCHED_IDLE', () => sampled(pid, 10, ['chrt', '--idle', '0'])],
    ['gdb extension ngx-requests, back to back', () => gdbLoop(pid)],
  ];
  const runs = new Map<string, LoadResult[]>(conditions.map(([c]) => [c, []]));
  try {
    for (let round = 0; round < rounds; round++) {
      // Each round starts one condition later: a host that slows down over a round of load (turbo
      // budget, caches) then weighs on every condition alike, not on the ones that come last.
      const order = conditions.map((_, i) => conditions[(i + round) % conditions.length]);
      for (const [condition, start] of order) {
        const sampler = await start();
        const w = await wrk();
        const sampled = await sampler.stop();
        const requests = Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0);
        const p99Ms = wrkLatency(w.stdout, '99');
        const r = { condition, p50Ms: wrkLatency(w.stdout, '50'), p99Ms, p99sMs: [p99Ms], requests, ...sampled };
        runs.get(condition)!.push(r);
        const partly = sampled.partial === undefined ? '' : ` (${sampled.partial} partial; of ${sampled.items} items found, ${sampled.itemsChanged} changed while read)`;
        log(`load ${condition} (round ${round + 1}): p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${requests} requests, ${sampled.samples} samples${partly}`);
      }
    }
  } finally {
    await held.close();
    await nginx.stop();
  }
  return conditions.map(([condition]) => {
    const rs = runs.get(condition)!;
    const sum = (k: 'partial' | 'items' | 'itemsChanged') => (rs[0][k] === undefined ? {} : { [k]: rs.reduce((n, r) => n + (r[k] ?? 0), 0) });
    return {
      condition,
      p50Ms: median(rs.map((r) => r.p50Ms)),
      p99Ms: median(rs.map((r) => r.p99Ms)),
      p99sMs: rs.map((r) => r.p99Ms),
      requests: median(rs.map((r) => r.requests)),
      requestsEach: rs.map((r) => r.requests),
      samples: median(rs.map((r) => r.samples)),
      ...sum('partial'),
      ...sum('items'),
      ...sum('itemsChanged'),
    };
  });
}

/** xsample sampling every intervalMs until stopped, its JSON lines going to a file (a reader woken by each would be one more process taking turns with nginx). */
async function sampled(pid: string, intervalMs: number, wrapper: string[] = []): Promise<{ stop: () => Promise<Sampled> }> {
  const out = path.join(work, `load-${intervalMs}.jsonl`);
  fs.rmSync(out, { force: true });
  const argv = [...wrapper, process.execPath, path.join(root, 'dist/xsample.js'), '--pid', pid, '--struct', 'ngx_requests', '--interval', String(intervalMs), '--json'];
  // chrt execs the command: the child is xsample itself, and Ctrl-C reaches it. Its own file descriptor, written by
  // xsample itself: what is read of the file is what it wrote, with no copy between to lag behind.
  const fd = fs.openSync(out, 'w');
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', fd, 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const text = () => fs.readFileSync(out, 'utf8');
  const lines = () => text().split('\n').length - 1;
  while (lines() === 0) {
    if (child.exitCode !== null) throw new Error(`xsample ended before its first sample: ${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const first = lines();
  return {
    stop: async () => {
      const docs = text().split('\n').slice(first, -1).map((l) => JSON.parse(l));
      child.kill('SIGINT');
      const code = await exited;
      fs.closeSync(fd);
      if (code !== 0 && code !== 3) throw new Error(`xsample failed under load: ${stderr}`);
      const items = docs.reduce((n, d) => n + (d.changed?.of ?? d.items.length), 0);
      return { samples: docs.length, partial: docs.filter((d) => d.partial).length, items, itemsChanged: docs.reduce((n, d) => n + (d.changed?.items ?? 0), 0) };
    },
  };
}

/** The gdb extension run again and again until stopped: each run attaches, walks and detaches. */
async function gdbLoop(pid: string): Promise<{ stop: () => Promise<Sampled> }> {
  let running = true;
  let n = 0;
  const once = () => execa('gdb', ['-batch', '-nx', '-p', pid, '-ex', `source ${path.join(root, 'generated/nginx.py')}`, '-ex', 'ngx-requests --json'], { reject: false, env: { DEBUGINFOD_URLS: '' } });
  await once();
  const loop = (async () => {
    while (running) {
      await once();
      n++;
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return { samples: n };
    },
  };
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
    wrk: await v('wrk', ['-v'], /wrk (?:debian\/)?([\d.]+)/),
  };
}

/** The parts measured alone (XWALK_BENCH_<PART>_ONLY=1), each the keys of the results it gives. */
const PARTS: Record<string, () => Promise<Record<string, unknown>>> = {
  XWALK_BENCH_INSTANT_ONLY: async () => ({ instant: await instant(), probe: await probeCost() }),
  XWALK_BENCH_FULLSTACK_ONLY: async () => ({ fullstack: await fullstack() }),
  XWALK_BENCH_HEAP_ONLY: async () => ({ heap: await luaHeap(work) }),
  XWALK_BENCH_COST_ONLY: async () => ({ cost: await sampleCost(), floor: await sampleFloor(work) }),
  XWALK_BENCH_LOAD_ONLY: async () => ({ load: await load() }),
  XWALK_BENCH_WALKS_ONLY: async () => ({ cold: await coldStart(), walks: await walks(), stalls: await stalls() }),
  XWALK_BENCH_COLD_ONLY: async () => ({ cold: await coldStart() }),
};

async function main(): Promise<void> {
  if (process.env.XWALK_BENCH_REPORT_ONLY) {
    // Rewrite the report from the last results, without measuring again.
    writeReport(JSON.parse(fs.readFileSync(path.join(root, 'bench/results.json'), 'utf8')), METHODS);
    return;
  }
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bench-'));
  paths.floor = path.join(work, 'floor');
  await execa('cc', ['-O2', '-o', paths.floor, path.join(root, 'bench/floor.c')]);
  const part = Object.keys(PARTS).find((k) => process.env[k]);
  if (part) {
    // Measure one part again, and rewrite that part of the last results and of the report.
    const last = JSON.parse(fs.readFileSync(path.join(root, 'bench/results.json'), 'utf8'));
    const results = { ...last, ...(await PARTS[part]()) };
    fs.writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify(results, null, 1) + '\n');
    writeReport(results, METHODS);
    fs.rmSync(work, { recursive: true, force: true });
    return;
  }
  const env = await versions();
  log(`${env.cpus}, kernel ${env.kernel}; ${RUNS} runs per point, medians`);
  const results = { env, runs: RUNS, cold: await coldStart(), walks: await walks(), stalls: await stalls(), cost: await sampleCost(), floor: await sampleFloor(work), load: await load(), instant: await instant(), probe: await probeCost(), fullstack: await fullstack(), heap: await luaHeap(work) };
  fs.writeFileSync(path.join(root, 'bench/results.json'), JSON.stringify(results, null, 1) + '\n');
  writeReport(results, METHODS);
  fs.rmSync(work, { recursive: true, force: true });
  log('wrote docs/BENCHMARKS.md, docs/benchmarks.svg, bench/results.json');
}

await main();
