/**
 * Pretty printers from the schema's printers: section: a gdb.printing
 * collection named after the pack (info/disable pretty-printer know it)
 * and lldb type summaries with synthetic children in a category of the
 * same name. What they show comes from raw memory and equals the truth.
 */
import t from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { type Json, startWalkee } from './lib/walkee.ts';

const poolLine = (p: Json) => `blocks=${p.blocks} used=${p.used} free=${p.free} failed=${p.failed} large_count=${p.large_count} large_bytes=${p.large_bytes} cleanups=${p.cleanups}`;

t.test('gdb pretty printers', async (t) => {
  const w = await startWalkee(['--pools', '2', '--array', '5']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const r = await gdb({ pid: w.child.pid! }, 'walkee', [
    'info pretty-printer',
    'print walkee.name',
    'print *walkee.pools[1]',
    'print *walkee.array',
    'print sizeof(walkee_elt_t)',
    'print walkee.array->elts',
    'disable pretty-printer global walkee',
    'print walkee.name',
  ]);
  t.match(r.stdout, /^ {2}walkee\n {4}ngx_array_t\n {4}ngx_pool_t\n {4}ngx_str_t$/m, 'info pretty-printer lists the collection and its types');
  t.match(r.stdout, /^\$1 = "walkee"$/m, 'ngx_str_t as a string');
  t.match(r.stdout, new RegExp(`^\\$2 = ${poolLine(truth.pools[1])}$`, 'm'), 'a pool in one line, as the truth says');
  const elts = /^\$5 = \(void \*\) (0x[0-9a-f]+)$/m.exec(r.stdout)![1];
  const size = Number(/^\$4 = (\d+)$/m.exec(r.stdout)![1]);
  const children = Array.from({ length: 5 }, (_, i) => '0x' + (Number(elts) + i * size).toString(16));
  t.match(r.stdout, new RegExp(`^\\$3 = ngx_array_t with 5 elements = \\{${children.join(', ')}\\}$`, 'm'), 'ngx_array_t elements as children');
  t.match(r.stdout, /^\$6 = \{len = 6, data = 0x[0-9a-f]+ "walkee"\}$/m, 'disabled: gdb prints the raw struct');
});

t.test('lldb summaries and synthetic children', async (t) => {
  const w = await startWalkee(['--pools', '2', '--array', '3']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const r = await lldb({ pid: w.child.pid! }, 'walkee', ['type category list walkee', 'p walkee.name', 'p *walkee.pools[0]', 'p *walkee.array', 'p walkee.array->elts', 'p sizeof(walkee_elt_t)', 'type category disable walkee', 'p walkee.name']);
  t.match(r.stdout, /Category: walkee \(enabled\)/);
  t.match(r.stdout, /^\(ngx_str_t\) \$0 = "walkee"$/m);
  t.match(r.stdout, new RegExp(`^\\(ngx_pool_t\\) \\$1 = ${poolLine(truth.pools[0])}$`, 'm'));
  const elts = Number(/^\(void \*\) \$3 = (0x[0-9a-f]+)$/m.exec(r.stdout)![1]);
  const size = Number(/^\(unsigned long\) \$4 = (\d+)$/m.exec(r.stdout)![1]);
  const kids = [0, 1, 2].map((i) => `  \\[${i}\\] = 0x${(elts + i * size).toString(16).padStart(16, '0')}`).join('\n');
  t.match(r.stdout, new RegExp(`^\\(ngx_array_t\\) \\$2 = 3 elements \\{\n${kids}\n\\}$`, 'm'), 'children under the summary');
  t.match(r.stdout, /^\(ngx_str_t\) \$5 = \(len = 6, data = "walkee"\)$/m, 'disabled: the raw struct');
});
