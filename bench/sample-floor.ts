/**
 * make bench, the floor of a sample (issue 26): what one xsample sample of ngx_requests would cost if it were
 * its system calls alone. strace records a few samples (process_vm_readv with its ranges, the identity check's
 * pread and stat); bench/syscall-replay.c replays the last one's calls, in order, back to back and 10 ms apart
 * (as at 100 Hz: caches cool between samples), and says their CPU a sample.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { holdConnections, partialGet, startNginx } from '../test/lib/nginx.ts';
import { xsampleBin } from '../test/lib/xsample.ts';
import { root } from '../test/lib/walkee.ts';
import { log, median } from './report-log.ts';


export interface SampleFloor {
  /** System calls and bytes of the sample replayed. */
  syscalls: number;
  bytes: number;
  /** CPU µs a sample, its calls back to back, and 10 ms apart (with the wait's own calls), each round. */
  backToBackUs: number[];
  apartUs: number[];
}

const GAP_US = 10_000;

/**
 * One sample's calls as syscall-replay's plan: the walk's reads, the identity check (one pread of /proc/PID/mem
 * where the process's memory is watched, else a pread of /proc/PID/stat and a stat), the read again.
 */
export function planOf(strace: string): { plan: string; syscalls: number; bytes: number; walkBytes: number; walkReads: number } {
  const lines = strace.split('\n').filter((l) => /\b(process_vm_readv|pread64|newfstatat|statx|stat)\(/.test(l));
  const identity = lines.flatMap((l, i) => (/\bpread64\(/.test(l) ? [i] : []));
  if (identity.length < 2) throw new Error('strace saw fewer than two samples');
  const [a, b] = identity.slice(-2);
  const readv = (l: string | undefined): l is string => l !== undefined && /\bprocess_vm_readv\(/.test(l);
  /** The first call after a check that is not its stat: the read again. */
  const afterCheck = (i: number) => (readv(lines[i + 1]) ? i + 1 : i + 2);
  /** The remote ranges: the second of its two iovec lists (the local one shows the bytes read, or addresses). */
  const remote = (l: string) => [...(/\], \d+, \[(.*)\], \d+, 0\)/.exec(l)?.[1] ?? '').matchAll(/iov_base=(0x[0-9a-f]+), iov_len=(\d+)/g)];
  const steps: string[] = [];
  let bytes = 0;
  const add = (l: string) => {
    const r = remote(l);
    bytes += r.reduce((n, m) => n + Number(m[2]), 0);
    steps.push(`readv ${r.map((m) => `${BigInt(m[1])} ${m[2]}`).join(' ')}`);
  };
  // After the previous sample's identity check and its read again: this sample's walk.
  for (const l of lines.slice(afterCheck(a) + 1, b)) if (readv(l)) add(l);
  const [walkBytes, walkReads] = [bytes, steps.length];
  // pread64(fd, "...", 1, ADDR) = 1: a byte of the memory watched.
  const watched = /\bpread64\(\d+, .*, 1, (\d+)\) = 1$/.exec(lines[b]);
  steps.push(watched ? `identity ${watched[1]}` : 'identity');
  const again = afterCheck(b);
  if (readv(lines[again])) add(lines[again]);
  return { plan: steps.join('\n') + '\n', syscalls: steps.length + (watched ? 0 : 1), bytes, walkBytes, walkReads };
}

/** On our nginx with 3 requests held, as the sample cost is measured (sample-cost.ts). */
export async function sampleFloor(work: string): Promise<SampleFloor> {
  const nginx = await startNginx();
  const held = await holdConnections(nginx.port, 3, { partialRequest: partialGet });
  try {
    const floor = await floorOf(nginx.workerPid, work, Number(process.env.XWALK_BENCH_COST_ROUNDS ?? 5));
    log(`sample floor: ${floor.syscalls} system calls, ${(floor.bytes / 1024).toFixed(0)} KiB: ${median(floor.backToBackUs).toFixed(0)} µs of CPU a sample back to back, ${median(floor.apartUs).toFixed(0)} µs 10 ms apart`);
    return floor;
  } finally {
    await held.close();
    await nginx.stop();
  }
}

async function floorOf(pid: number, work: string, rounds: number): Promise<SampleFloor> {
  const trace = path.join(work, 'sample.strace');
  const r = await execa('strace', ['-f', '-v', '-s', '0', '-e', 'trace=process_vm_readv,pread64,newfstatat,statx,stat', '-o', trace, process.execPath, xsampleBin, '--pid', String(pid), '--struct', 'ngx_requests', '--json', '--interval', '10', '--count', '4'], { reject: false });
  if (r.exitCode !== 0) throw new Error(`xsample under strace failed: ${r.stderr}`);
  const { plan, syscalls, bytes } = planOf(fs.readFileSync(trace, 'utf8'));
  const replay = path.join(work, 'syscall-replay');
  await execa('cc', ['-O2', '-o', replay, path.join(root, 'bench/syscall-replay.c')]);
  const run = async (gap: number, count: number) => JSON.parse((await execa(replay, [String(pid), String(gap), String(count)], { input: plan })).stdout).cpu_us as number;
  const out: SampleFloor = { syscalls, bytes, backToBackUs: [], apartUs: [] };
  for (let i = 0; i < rounds; i++) {
    out.backToBackUs.push(await run(0, 2000));
    out.apartUs.push(await run(GAP_US, 300));
  }
  return out;
}
