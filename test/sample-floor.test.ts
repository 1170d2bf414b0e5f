/**
 * make bench's floor of a sample (bench/sample-floor.ts): the plan made from
 * strace's record of xsample holds the reads the sample made, as many and as
 * many bytes as --verbose says, then the identity check and the read again;
 * and bench/syscall-replay.c replays it against the live process.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { planOf } from '../bench/sample-floor.ts';
import { root, startWalkee } from './lib/walkee.ts';
import { xsampleBin } from './lib/xsample.ts';

t.test("a sample's system calls, recorded and replayed", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-floor-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const w = await startWalkee(['--nodes', '5000', '--layout', 'shuffled']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const trace = path.join(dir, 'trace');
  const r = await execa('strace', ['-f', '-v', '-s', '0', '-e', 'trace=process_vm_readv,pread64,newfstatat,statx,stat', '-o', trace, process.execPath, xsampleBin, '--pid', pid, '--struct', 'walkee_sum', '--json', '--verbose', '--interval', '1', '--count', '3']);
  const last = r.stderr.split('\n').filter((l) => / elements, /.test(l)).at(-1)!;
  const [, reads, kib] = / (\d+) reads?, \d+ pages, (\d+) KiB in /.exec(last)!;
  const p = planOf(fs.readFileSync(trace, 'utf8'));
  t.equal(p.walkReads, Number(reads), `the walk's ${reads} reads`);
  t.equal(Math.round(p.walkBytes / 1024), Number(kib), `its ${kib} KiB`);
  t.match(p.plan, /\nidentity \d+\nreadv \d+ \d+/, 'then the identity check (a byte of its memory, watched), then the read again');
  t.equal(p.syscalls, p.walkReads + 2);
  const replay = path.join(dir, 'replay');
  await execa('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', replay, path.join(root, 'bench/syscall-replay.c')]);
  const out = JSON.parse((await execa(replay, [pid, '0', '20'], { input: p.plan })).stdout);
  t.ok(out.cpu_us > 0 && out.kernel_us >= 0, `replayed: ${out.cpu_us} µs of CPU a sample`);
});
