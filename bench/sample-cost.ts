/**
 * make bench, what one sample costs xsample (issue 26): the CPU time, user and kernel, of a small view
 * (ngx_requests, 3 requests held) sampled at 100 Hz, as the difference between N + 1 samples and one (the
 * start-up cancels out), checked (--consistency verify, the default) and not. The kernel's part is what its
 * system calls cost (process_vm_readv, the identity check); the rest is xsample's JavaScript. V8 compiles what
 * runs each sample over the first thousand or so; the last samples (after the last doubling of the count,
 * --verbose's last line) are those of a sampler warmed up. Rounds take turns; medians, with each round's figure.
 */
import { execa } from 'execa';
import { holdConnections, partialGet, startNginx } from '../test/lib/nginx.ts';
import { xsampleBin } from '../test/lib/xsample.ts';
import type { SampleFloor } from './sample-floor.ts';
import { log, median } from './report-log.ts';

export interface SampleCost {
  consistency: 'verify' | 'off';
  samples: number;
  /** µs of CPU a sample, each round: user + system, and the system part */
  usPerSample: number[];
  kernelUsPerSample: number[];
  /** µs of CPU a sample over the last `warm` samples, warmed up (--verbose's last line), each round */
  warmUsPerSample: number[];
  warm: number;
  /** µs of CPU from a sample's start to its answer (--verbose, median of each round): the read, the read again, the identity check */
  inSampleUs: number[];
  /** process_vm_readv calls and bytes a sample, from --verbose */
  reads: number;
  kib: number;
}


/** xsample run to its end under bash, whose `times` gives its CPU seconds (user, system); --verbose's last read line. */
async function timed(args: string[]): Promise<{ user: number; system: number; verbose: string; inSampleUs: number; warm: { n: number; us: number } | null }> {
  const r = await execa('bash', ['-c', '"$@" >/dev/null; rc=$?; times >&2; exit $rc', 'bash', process.execPath, xsampleBin, ...args], { reject: false });
  if (r.exitCode !== 0) throw new Error(`xsample failed: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  const [user, system] = [...lines.at(-1)!.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  const reads = lines.filter((l) => / elements, /.test(l));
  const inSample = reads.map((l) => Number(/ (\d+) µs of CPU since the sample began/.exec(l)?.[1])).filter((n) => Number.isFinite(n));
  const warm = /; the last (\d+): (\d+) µs a sample$/m.exec(r.stderr);
  return { user, system, verbose: reads.at(-1) ?? '', inSampleUs: inSample.length ? median(inSample) : NaN, warm: warm ? { n: Number(warm[1]), us: Number(warm[2]) } : null };
}

export async function sampleCost(): Promise<SampleCost[]> {
  const nginx = await startNginx();
  const held = await holdConnections(nginx.port, 3, { partialRequest: partialGet });
  const rounds = Number(process.env.XWALK_BENCH_COST_ROUNDS ?? 3);
  // 3,000 after the first: past the JIT's warm-up, and the last 953 (after sample 2,048) warmed up.
  const samples = 3000;
  const base = ['--pid', String(nginx.workerPid), '--struct', 'ngx_requests', '--json', '--interval', '10'];
  const out: SampleCost[] = (['verify', 'off'] as const).map((consistency) => ({ consistency, samples, usPerSample: [], kernelUsPerSample: [], warmUsPerSample: [], warm: 0, inSampleUs: [], reads: NaN, kib: NaN }));
  try {
    // Round after round, each checked and not in turn: the host's speed drifts by more than what they differ in.
    for (let round = 0; round < rounds; round++) {
      for (const c of out) {
        const args = [...base, '--consistency', c.consistency];
        const one = await timed([...args, '--count', '1']);
        const many = await timed([...args, '--count', String(samples + 1), '--verbose']);
        if (!many.warm) throw new Error(`xsample --verbose did not say the CPU of its last samples: ${many.verbose}`);
        c.usPerSample.push(((many.user + many.system - (one.user + one.system)) / samples) * 1e6);
        c.kernelUsPerSample.push(((many.system - one.system) / samples) * 1e6);
        c.inSampleUs.push(many.inSampleUs);
        c.warmUsPerSample.push(many.warm.us);
        c.warm = many.warm.n;
        const m = / (\d+) reads?, \d+ pages, (\d+) KiB in /.exec(many.verbose);
        [c.reads, c.kib] = [Number(m?.[1] ?? NaN), Number(m?.[2] ?? NaN)];
        log(`sample cost, --consistency ${c.consistency} (round ${round + 1}): ${c.usPerSample.at(-1)!.toFixed(0)} µs of CPU a sample, ${c.kernelUsPerSample.at(-1)!.toFixed(0)} in the kernel, ${c.inSampleUs.at(-1)} from a sample's start to its answer; the last ${c.warm}: ${c.warmUsPerSample.at(-1)} µs a sample`);
      }
    }
  } finally {
    await held.close();
    await nginx.stop();
  }
  return out;
}

export function sampleCostSection(cost: SampleCost[] | undefined, floor?: SampleFloor): string {
  if (!cost) return '';
  const verify = cost.find((c) => c.consistency === 'verify');
  const floorText = floor
    ? `
The floor: the system calls of one such sample alone (${floor.syscalls}: its reads of memory, the identity check's
pread and stat, the read again; ${(floor.bytes / 1024).toFixed(0)} KiB), recorded with strace and replayed from C
(bench/syscall-replay.c), cost ${median(floor.backToBackUs).toFixed(0)} µs of CPU a sample back to back and
${median(floor.apartUs).toFixed(0)} µs 10 ms apart, the wait's own calls included (rounds: ${floor.apartUs.map((u) => u.toFixed(0)).join(', ')}).
xsample, checked, costs ${verify ? `${(median(verify.usPerSample) / median(floor.apartUs)).toFixed(1)}×` : '?'} that at the same spacing${verify?.warmUsPerSample ? `, and ${(median(verify.warmUsPerSample) / median(floor.apartUs)).toFixed(1)}× warmed up` : ''}.
`
    : '';
  const warmed = (c: SampleCost) => (c.warmUsPerSample ? `${median(c.warmUsPerSample).toFixed(0)} µs (${c.warmUsPerSample.join(', ')})` : '?');
  const rows = cost.map((c) => `| ${c.consistency} | ${median(c.usPerSample).toFixed(0)} µs | ${median(c.kernelUsPerSample).toFixed(0)} µs | ${warmed(c)} | ${c.inSampleUs ? `${median(c.inSampleUs).toFixed(0)} µs` : '?'} | ${c.usPerSample.map((u) => u.toFixed(0)).join(', ')} | ${c.reads} read${c.reads === 1 ? '' : 's'}, ${c.kib} KiB |`).join('\n');
  return `
## What a sample costs xsample

\`xsample --struct ngx_requests --json\` on our nginx with 3 requests held, 100 samples a second: the CPU time
(user and system, every thread) of ${cost[0]?.samples ?? 1000} more samples than one (start-up cancels out), per sample, median of
the rounds; the kernel's part is its system calls (reads of memory, the read again, the identity check, the
output, the timer). "From start to answer" is the part --verbose counts, from a sample's start to its answer:
the reads, the walk, the read again, the identity check, not the printing nor the wait. This host runs a
sample taken right after another (1 ms apart) at about half the CPU of one taken 10 ms after the last:
caches and clocks cool down between samples. "Warmed up" is the CPU a sample of the last
${cost[0]?.warm ?? '?'} (after the count last doubled, --verbose's last line): V8 compiles what runs each sample over the first thousand
or so, at 100 Hz its first ten seconds or more. The goal (issue 26): 100 µs.

| --consistency | CPU a sample | in the kernel | warmed up (each round) | from start to answer | each round | the last sample read |
|---|---|---|---|---|---|---|
${rows}
${floorText}`;
}
