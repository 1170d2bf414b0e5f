/**
 * Memory a sample may take is bounded. A list whose nodes lie 64 KiB apart
 * costs xsample a page per node, as it costs the target, not a 64 KiB read
 * per node; --max-bytes ends a sample that would read more, as partial.
 * The next sample reads those pages in batches of IOV_MAX ranges, and
 * --verbose counts the system calls that took, as strace does.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const NODES = 20_000;

t.test('nodes 64 KiB apart: a page read per node, and --max-bytes bounds a sample', async (t) => {
  const w = await startWalkee(['--nodes', String(NODES), '--stride', '65536', '--layout', 'shuffled']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const pid = String(w.child.pid);
  const targetRss = Number(/^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);

  const t0 = Date.now();
  const r = await xsample(['--pid', pid, '--struct', 'walkee_list', '--json', '--verbose']);
  const wallUs = (Date.now() - t0) * 1000;
  t.equal(r.code, 0, r.stderr);
  t.same([r.json.items[0].count, r.json.items[0].sum], [truth.list.count, truth.list.sum], 'the walk is right');
  const readKiB = Number(/ (\d+) KiB in /.exec(r.stderr)![1]);
  const cpu = / (\d+) µs of CPU since the sample began \((\d+) in the kernel\)/.exec(r.stderr);
  // Bounded by what the test itself timed: no more CPU than the whole command's wall time on every CPU (a figure in the wrong unit fails).
  t.ok(cpu && Number(cpu[1]) > 0 && Number(cpu[1]) <= wallUs * os.cpus().length && Number(cpu[2]) <= Number(cpu[1]), `--verbose says the sample's CPU, and the kernel's part of it: ${cpu?.[0]}, within the command's ${wallUs} µs of wall time on ${os.cpus().length} CPUs`);
  t.ok(readKiB <= NODES * 4 + 1024, `xsample read ${readKiB} KiB for ${NODES} nodes: about a page each (the target holds ${targetRss} KiB), not 64 KiB each (${NODES * 64} KiB)`);

  const bounded = await xsample(['--pid', pid, '--struct', 'walkee_list', '--json', '--max-bytes', '8M']);
  t.equal(bounded.code, 3, 'partial: exit 3');
  t.equal(bounded.json.items[0].count, null, 'no count from a walk cut short');
  t.match(bounded.json.errors[0].message, /the sample would read more than 8 MiB \(--max-bytes\)/);
});

t.test("a sample's reads of more pages than one process_vm_readv takes: --verbose counts each call, as strace does", async (t) => {
  const nodes = 3000;
  const w = await startWalkee(['--nodes', String(nodes), '--stride', '65536', '--layout', 'shuffled']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-iov-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const trace = path.join(dir, 'trace');
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json', '--verbose', '--count', '2', '--interval', '1'], {
    prefix: ['strace', '-f', '-e', 'trace=process_vm_readv,pread64,epoll_wait,epoll_pwait', '-o', trace],
  });
  t.equal(r.code, 0, r.stderr);
  t.same(r.json.map((s: { items: { count: number; sum: number }[] }) => [s.items[0].count, s.items[0].sum]), [[truth.list.count, truth.list.sum], [truth.list.count, truth.list.sum]], "walkee's truth, both times");
  const said = [...r.stderr.matchAll(/walkee_list: \d+ elements, (\d+) reads?,/g)].map((m) => Number(m[1]));
  // The second sample's walk: the reads between the sampler's wait for it and its identity check (pread64), which
  // follows the walk; the read again comes after that.
  const calls = fs.readFileSync(trace, 'utf8').split('\n').filter((l) => /\b(process_vm_readv|pread64|epoll_p?wait)\(/.test(l));
  const checks = calls.flatMap((l, i) => (/\bpread64\(/.test(l) ? [i] : []));
  const second = checks.at(-1)!;
  let waited = second - 1;
  while (waited >= 0 && !/\bepoll_p?wait\(/.test(calls[waited])) waited--;
  const counted = calls.slice(waited + 1, second).filter((l) => /\bprocess_vm_readv\(/.test(l)).length;
  t.ok(waited > checks.at(-2)!, 'the sampler waited between its two samples');
  t.ok(counted >= Math.ceil(nodes / 1024), `the second sample read ${nodes} pages or more in ${counted} calls: IOV_MAX ranges a call at most`);
  t.equal(said[1], counted, `--verbose says the second sample made ${said[1]} reads: strace counted ${counted}`);
});
