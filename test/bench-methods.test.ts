/**
 * The benchmark's methods, each run once on a small list: every one must
 * find walkee's own sum, or the benchmark would time a wrong answer.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { METHODS, paths, type Target } from '../bench/methods.ts';
import { root, startWalkee } from './lib/walkee.ts';

t.test('every benchmark method sums the list as walkee did', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bench-test-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  paths.floor = path.join(dir, 'floor');
  await execa('cc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', paths.floor, path.join(root, 'bench/floor.c')]);
  const w = await startWalkee(['--nodes', '2000', '--layout', 'shuffled']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  await execa('gcore', ['-o', path.join(dir, 'core'), String(w.child.pid)], { stdio: 'ignore' });
  const target: Target = { w, pid: w.child.pid!, head: Number(truth.list.head), sum: truth.list.sum, nodes: 2000, core: path.join(dir, `core.${w.child.pid}`) };
  for (const m of METHODS) {
    const r = await m.run(target);
    t.equal(r.sum, truth.list.sum, `${m.label}: the sum`);
    t.ok(r.ns > 0, `${m.label}: timed (${(r.ns / 2000).toFixed(0)} ns/node)`);
  }
});
