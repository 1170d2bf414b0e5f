/**
 * A stack-shaped view's stacks from the generated gdb and lldb extensions
 * (VIEW-COMMAND --folded FILE) are what one sample of xsample record
 * writes: the same lines, live and on a core of the same walkee, and they
 * weigh what the ngx_pool view says each pool holds.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb, type Where } from './lib/debuggers.ts';
import { binPath, startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-folded-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const read = (f: string) => fs.readFileSync(f, 'utf8');

t.test('gdb, lldb and xsample record write the same stacks, live and on a core', async (t) => {
  const w = await startWalkee(['--nodes', '10', '--pools', '4']);
  t.teardown(() => w.kill());
  const pid = w.child.pid!;

  const mine = path.join(tmp, 'xsample.folded');
  const r = await xsample(['record', '--pid', String(pid), '--struct', 'walkee_pool_memory', '--rate', '1', '--duration', '1', '-o', mine]);
  t.equal(r.code, 0, r.stderr);
  t.match(r.stderr, /\(folded\): 1 sample in /, 'one sample');
  const pools = (await xsample(['--pid', String(pid), '--struct', 'ngx_pool', '--json'])).json.items as { addr: string; used: number; free: number; large_bytes: number }[];
  const expected = pools
    .map((p) => ({ line: `pid ${pid};pools;pool ${p.addr}`, w: p.used + p.free + p.large_bytes }))
    .sort((a, b) => b.w - a.w || (a.line < b.line ? -1 : 1))
    .map((e) => `${e.line} ${e.w}`);
  t.same(read(mine).trim().split('\n'), expected, "xsample's stacks weigh what ngx_pool says each pool holds");

  const core = path.join(tmp, 'walkee');
  await execa('gcore', ['-o', core, String(pid)], { stdio: 'ignore' });
  const wheres: [string, Where][] = [
    ['live', { pid }],
    ['core', { core: `${core}.${pid}`, exe: binPath }],
  ];
  for (const [how, where] of wheres) {
    for (const [name, run] of [
      ['gdb', gdb],
      ['lldb', lldb],
    ] as const) {
      const out = path.join(tmp, `${name}-${how}.folded`);
      const d = await run(where, 'walkee', [`walkee-pool-memory --folded ${out}`]);
      t.match(d.stdout, `wrote ${out}: 4 stacks`, `${name} ${how}: says what it wrote ${d.stderr}`);
      t.equal(read(out), read(mine), `${name} ${how}: the same lines as xsample record`);
    }
  }
  const table = await gdb({ pid }, 'walkee', [`ngx-pool --folded ${path.join(tmp, 'no.folded')}`]);
  t.match(table.stdout + table.stderr, 'view ngx_pool is a table, not stack-shaped (no stack: in the schema): --folded needs one');
  t.notOk(fs.existsSync(path.join(tmp, 'no.folded')), 'nothing written');
});
