/**
 * make bench, the full-stack part (xsample record --cpu, issue 21): what recording at 99 Hz costs the target
 * (Debian's nginx under wrk, a Lua handler and static files, rounds with and without in turns), what a sample
 * costs xsample (its unwinder's time, --verbose, and its CPU time a sample), and how many samples of a busy
 * Lua worker unwind to the outermost frame at each --stack-bytes.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { outermostShare, foldedStacks, serveStaticUnlimited, startBurn, startRecord, summaryOf, unwindUsOf, wrk } from '../test/lib/fullstack.ts';
import { DEBIAN_NGINX, startNginx } from '../test/lib/nginx.ts';
import { xsampleBin } from '../test/lib/xsample.ts';
import { log, median } from './report-log.ts';

export interface LossResult {
  workload: string;
  /** requests a second without and with the recording, each round */
  without: number[];
  with: number[];
  /** 1 - with/without of each round (the round's two runs are back to back) */
  losses: number[];
  samples: number[];
}

export interface FullstackResult {
  loss: LossResult[];
  cost: { jit: 'on' | 'off'; seconds: number; samples: number; unwindUs: number; captureUs: number; cpuMsTotal: number; cpuUsPerSample: number }[];
  depth: { stackBytes: number; jit: 'on' | 'off'; samples: number; outermost: number }[];
}


/** xsample record run to its end under bash, whose `times` says the CPU time it used (user, system). */
async function timedRecord(args: string[]): Promise<{ stderr: string; cpuMs: number }> {
  const r = await execa('bash', ['-c', '"$@"; rc=$?; times >&2; exit $rc', 'bash', process.execPath, xsampleBin, 'record', ...args], { reject: false, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' }, extendEnv: false });
  if (r.exitCode !== 0) throw new Error(`xsample record failed: ${r.stderr}`);
  // times: the shell's line, then its children's: "0m1.234s 0m0.567s".
  const last = r.stderr.trim().split('\n').at(-1)!;
  const s = [...last.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  return { stderr: r.stderr, cpuMs: (s[0] + s[1]) * 1000 };
}

/** Throughput with and without record --cpu at 99 Hz, rounds in turns (each round starts with the other one). */
async function loss(workload: 'static' | 'lua', rounds: number, seconds: number, dir: string): Promise<LossResult> {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  const res: LossResult = { workload: workload === 'static' ? 'static file (/)' : 'Lua handler (content_by_lua_block)', without: [], with: [], losses: [], samples: [] };
  try {
    const W = await serveStaticUnlimited(nginx);
    // A Lua handler a request: /lua/short on a stop file that exists answers at once (the chunk, its closures, io.open, ngx.say).
    const done = path.join(dir, 'exists');
    fs.writeFileSync(done, '');
    const url = workload === 'static' ? '/' : `/lua/short?until=${done}`;
    const pin = os.cpus().length >= 2;
    if (pin) await execa('taskset', ['-p', '-c', '1', String(W)], { stdout: 'ignore' });
    for (let round = 0; round < rounds; round++) {
      const one: Record<'with' | 'without', number> = { with: 0, without: 0 };
      for (const cond of round % 2 === 0 ? (['without', 'with'] as const) : (['with', 'without'] as const)) {
        const out = path.join(dir, `loss-${workload}.folded`);
        const rec = cond === 'with' ? startRecord(['--pid', String(W), '--cpu', '--rate', '99', '-o', out]) : null;
        await rec?.attached();
        const w = await wrk(nginx.port, seconds, url, pin ? 0 : undefined);
        if (rec) {
          rec.child.kill('SIGINT');
          const r = await rec.child;
          res.samples.push(summaryOf(String(r.stderr)).samples);
        }
        one[cond] = w.requests / seconds;
      }
      res.without.push(one.without);
      res.with.push(one.with);
      res.losses.push(1 - one.with / one.without);
      log(`${res.workload}, round ${round + 1}: ${one.without.toFixed(0)} req/s without, ${one.with.toFixed(0)} with (${(100 * res.losses.at(-1)!).toFixed(2)}%)`);
    }
  } finally {
    await nginx.stop();
  }
  return res;
}

/** The unwinder's and xsample's cost a sample on a busy Lua worker: the marginal CPU time between a short and a long recording. */
async function cost(jit: 'on' | 'off', dir: string): Promise<FullstackResult['cost'][number]> {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  try {
    const burn = await startBurn(nginx, jit);
    try {
      const runs = [];
      for (const seconds of [2, 12]) {
        const r = await timedRecord(['--pid', String(nginx.workerPid), '--cpu', '--rate', '99', '--duration', String(seconds), '--verbose', '-o', path.join(dir, `cost-${jit}.folded`)]);
        runs.push({ seconds, samples: summaryOf(r.stderr).samples, unwindUs: unwindUsOf(r.stderr), captureUs: Number(/the interpreter's capture ([\d.]+) µs/.exec(r.stderr)?.[1] ?? NaN), cpuMs: r.cpuMs });
      }
      const [a, b] = runs;
      const res = { jit, seconds: b.seconds, samples: b.samples, unwindUs: b.unwindUs, captureUs: b.captureUs, cpuMsTotal: b.cpuMs, cpuUsPerSample: ((b.cpuMs - a.cpuMs) * 1000) / (b.samples - a.samples) };
      log(`cost, JIT ${jit}: ${res.samples} samples in ${res.seconds} s; unwinding ${res.unwindUs} µs a sample, the capture's walk ${res.captureUs} µs; xsample's CPU ${res.cpuMsTotal.toFixed(0)} ms, ${res.cpuUsPerSample.toFixed(0)} µs a sample more`);
      return res;
    } finally {
      await burn.stop();
    }
  } finally {
    await nginx.stop();
  }
}

/** The share of samples to the outermost frame at each --stack-bytes, on a busy Lua worker. */
async function depth(dir: string): Promise<FullstackResult['depth']> {
  const out: FullstackResult['depth'] = [];
  // A worker each: jit.off() lasts past its request, and leaves the traces a JIT-on run compiled.
  for (const jit of ['on', 'off'] as const) {
    const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
    try {
      const burn = await startBurn(nginx, jit);
      try {
        for (const stackBytes of [8192, 16384, 32768]) {
          const file = path.join(dir, `depth-${stackBytes}.folded`);
          await timedRecord(['--pid', String(nginx.workerPid), '--cpu', '--rate', '99', '--duration', '4', '--stack-bytes', String(stackBytes), '-o', file]);
          const x = foldedStacks(fs.readFileSync(file, 'utf8'));
          const r = { stackBytes, jit, samples: x.reduce((a, s) => a + s.weight, 0), outermost: outermostShare(x) };
          log(`depth, JIT ${jit}, --stack-bytes ${stackBytes}: ${(100 * r.outermost).toFixed(1)}% of ${r.samples} to the outermost frame`);
          out.push(r);
        }
      } finally {
        await burn.stop();
      }
    } finally {
      await nginx.stop();
    }
  }
  return out;
}

export async function fullstack(): Promise<FullstackResult> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bench-fullstack-'));
  const rounds = Number(process.env.XWALK_BENCH_FULLSTACK_ROUNDS ?? 6);
  try {
    return {
      loss: [await loss('static', rounds, 5, dir), await loss('lua', rounds, 5, dir)],
      cost: [await cost('off', dir), await cost('on', dir)],
      depth: await depth(dir),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

/** The section of docs/BENCHMARKS.md. */
export function fullstackSection(r: FullstackResult | undefined): string {
  if (!r) return '';
  return `
## Whole stacks: xsample record --cpu

What recording on-CPU stacks at 99 Hz costs the target: Debian's nginx with the Lua module, wrk (1 thread,
8 connections, 5 s) on a static file and on a \`content_by_lua_block\` handler, without and with
\`xsample record --cpu --rate 99\` in the same round (the order turns each round; the worker pinned to one
CPU, wrk to the other, xsample where the kernel puts it). The goal is a loss of 1% or less.

| workload | req/s without (median) | with | loss (median) | each round's loss | samples a round |
|---|---:|---:|---:|---|---:|
${r.loss.map((l) => `| ${l.workload} | ${median(l.without).toFixed(0)} | ${median(l.with).toFixed(0)} | ${pct(median(l.losses))} | ${l.losses.map(pct).join(', ')} | ${median(l.samples)} |`).join('\n')}

What a sample costs xsample, on a worker burning Lua (/lua/burn): the unwinder's time a sample and the
capture's walk (\`--verbose\`), and xsample's own CPU time (user + system) a sample more between a 2 s and a
${r.cost[0]?.seconds ?? 12} s recording (its start, the pack and the objects' tables are paid once).

| JIT | samples | unwinding a sample | the capture's walk a sample | xsample's CPU, whole run | xsample's CPU a sample |
|---|---:|---:|---:|---:|---:|
${r.cost.map((c) => `| ${c.jit} | ${c.samples} | ${c.unwindUs} µs | ${c.captureUs} µs | ${c.cpuMsTotal.toFixed(0)} ms | ${c.cpuUsPerSample.toFixed(0)} µs |`).join('\n')}

Samples of the busy Lua worker that unwind to the outermost frame (\`_start\`), by the user stack each
sample copies (\`--stack-bytes\`), 4 s at 99 Hz:

| JIT | --stack-bytes | samples | to the outermost frame |
|---|---:|---:|---:|
${r.depth.map((d) => `| ${d.jit} | ${d.stackBytes} | ${d.samples} | ${pct(d.outermost)} |`).join('\n')}
`;
}
