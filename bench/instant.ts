/**
 * make bench, the CPU profile part: lua_stacks recorded under the short-call workload (test/lib/lua-split.ts)
 * at the instant (the kernel's capture, eBPF) and by reading memory, JIT on and off, each against
 * jit.profile's split in the same worker just after; the kernel's cost a capture from its own run-time stats.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DEBIAN_NGINX, startNginx } from '../test/lib/nginx.ts';
import { foldedSplit, jitProfileSplit, startShortCalls, stopShortCalls } from '../test/lib/lua-split.ts';
import { xsample, xsampleBin } from '../test/lib/xsample.ts';
import { execa } from 'execa';
import http from 'node:http';
import { createInterface } from 'node:readline';
import { log } from './report-log.ts';

export interface InstantResult {
  jit: 'on' | 'off';
  mode: 'on' | 'off';
  samples: number;
  partial: number;
  share: number;
  /** jit.profile's share of heavy, just after */
  truth: number;
  /** the kernel's mean time a capture, µs (at the instant only) */
  captureUs: number | null;
}


export async function instant(seconds = 5): Promise<InstantResult[]> {
  const out: InstantResult[] = [];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bench-instant-'));
  try {
    for (const jit of ['on', 'off'] as const) {
      const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
      try {
        for (const mode of ['on', 'off'] as const) {
          const calls = await startShortCalls(nginx, { jit });
          const file = path.join(dir, `${jit}-${mode}.folded`);
          const r = await xsample(['record', '--pid', String(nginx.workerPid), '--struct', 'lua_stacks', '--rate', '100', '--duration', String(seconds), '--instant', mode, '--verbose', '-o', file]);
          await calls.stop();
          const said = r.stderr;
          const f = foldedSplit(fs.readFileSync(file, 'utf8'));
          const truth = await jitProfileSplit(nginx, { seconds, jit });
          const us = /the kernel's capture: \d+ runs, ([\d.]+) µs each/.exec(said)?.[1];
          const res: InstantResult = {
            jit,
            mode,
            samples: Number(/: (\d+) samples? in/.exec(said)?.[1] ?? 0),
            partial: Number(/, (\d+) partial/.exec(said)?.[1] ?? 0),
            share: f.share,
            truth: truth.share,
            captureUs: us ? Number(us) : null,
          };
          log(`lua_stacks JIT ${jit}, instant ${mode}: heavy ${res.share.toFixed(3)} vs jit.profile ${res.truth.toFixed(3)}; ${res.samples} samples, ${res.partial} partial${us ? `; ${us} µs a capture` : ''}`);
          out.push(res);
        }
      } finally {
        await stopShortCalls();
        await nginx.stop();
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

export interface ProbeCost {
  requests: number;
  /** Median over the rounds of the worker's CPU time a request (its schedstat: user, kernel and traps), µs, untraced and traced. */
  plainUs: number;
  tracedUs: number;
  /** What tracing adds to a request (one call of ngx_http_free_request): the trap and the program. */
  addedUs: number;
  /** The program alone, by the kernel's run-time statistics. */
  programUs: number;
  counted: number;
}

/** The CPU time a process's threads have had, ns (/proc/PID/schedstat: the trap of a uprobe included). */
const cpuNs = (pid: number): number => Number(fs.readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);

/** Sequential keep-alive requests to nginx: the worker's CPU time a request, µs. */
async function timeRequests(port: number, worker: number, n: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const t0 = cpuNs(worker);
  for (let i = 0; i < n; i++) {
    await new Promise<void>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => res.resume().on('end', resolve)).on('error', reject);
    });
  }
  agent.destroy();
  return (cpuNs(worker) - t0) / 1000 / n;
}

/** ngx_request_done on our nginx: what a traced request costs more than an untraced one, rounds taking turns. */
export async function probeCost(rounds = 3, n = 3000): Promise<ProbeCost> {
  const nginx = await startNginx();
  const plain: number[] = [];
  const traced: number[] = [];
  const program: number[] = [];
  let counted = 0;
  try {
    await timeRequests(nginx.port, nginx.workerPid, 200); // warm
    for (let r = 0; r < rounds; r++) {
      plain.push(await timeRequests(nginx.port, nginx.workerPid, n));
      const child = execa(process.execPath, [xsampleBin, 'trace', '--pid', String(nginx.workerPid), '--probe', 'ngx_request_done'], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
      const lines: string[] = [];
      await new Promise<void>((resolve) => createInterface({ input: child.stderr! }).on('line', (l) => (lines.push(l), /tracing /.test(l) && resolve())));
      traced.push(await timeRequests(nginx.port, nginx.workerPid, n));
      child.kill('SIGINT');
      await child;
      const end = lines.find((l) => /calls counted/.test(l)) ?? '';
      counted += Number(/(\d+) calls counted/.exec(end)?.[1] ?? 0);
      program.push(Number(/([\d.]+) µs a call in the kernel/.exec(end)?.[1] ?? NaN));
      log(`ngx_request_done round ${r + 1}: ${plain.at(-1)!.toFixed(1)} µs of the worker's CPU a request untraced, ${traced.at(-1)!.toFixed(1)} traced; ${end}`);
    }
  } finally {
    await nginx.stop();
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  return { requests: n, plainUs: med(plain), tracedUs: med(traced), addedUs: med(traced.map((t, i) => t - plain[i])), programUs: med(program), counted };
}
