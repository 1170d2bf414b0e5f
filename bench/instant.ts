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
import { xsample } from '../test/lib/xsample.ts';

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

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

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
