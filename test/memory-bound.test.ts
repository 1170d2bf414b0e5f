/**
 * Memory a sample may take is bounded. A list whose nodes lie 64 KiB apart
 * costs xsample a page per node, as it costs the target, not a 64 KiB read
 * per node; --max-bytes ends a sample that would read more, as partial.
 */
import fs from 'node:fs';
import os from 'node:os';
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
