/**
 * A generated extension makes its runtime's modules (sys.modules) afresh each time it is sourced: the
 * same file sourced twice, then another pack's, in one gdb or lldb-16 session, and the first pack's
 * commands still give what they give after one source (the other pack does not take its state).
 */
import t from 'tap';
import { extension, gdb, lldb } from './lib/debuggers.ts';
import { build, startWalkee, type Json } from './lib/walkee.ts';

build();

/** The items of each JSON document (the live clock's reading differs from run to run). */
const items = (docs: Record<string, unknown>[]): unknown[] => docs.map((d: Json) => d.items);

t.test('sourced twice, then another pack: the first pack still answers as after one source', async (t) => {
  const w = await startWalkee(['--nodes', '50', '--pools', '2']);
  t.teardown(() => w.kill());
  const where = { pid: w.child.pid! };

  const once = await gdb(where, 'walkee', ['walkee-list --json', 'ngx-pool --json']);
  t.equal(once.json.length, 2, once.stderr);
  t.ok(items(once.json).every((x) => Array.isArray(x) && x.length > 0), 'gdb: items to compare');
  const again = await gdb(where, 'walkee', [`source ${extension('walkee', 'gdb')}`, `source ${extension('churn', 'gdb')}`, 'walkee-list --json', 'ngx-pool --json']);
  t.same(items(again.json), items(once.json), `gdb: the same items ${again.stderr}`);
  t.notMatch(again.stderr, /Traceback|Error/, 'gdb: no error');

  const lonce = await lldb(where, 'walkee', ['walkee-list --json', 'ngx-pool --json']);
  t.equal(lonce.json.length, 2, lonce.stderr);
  t.ok(items(lonce.json).every((x) => Array.isArray(x) && x.length > 0), 'lldb-16: items to compare');
  const lagain = await lldb(where, 'walkee', [`command script import ${extension('walkee', 'lldb')}`, `command script import ${extension('churn', 'lldb')}`, 'walkee-list --json', 'ngx-pool --json']);
  t.same(items(lagain.json), items(lonce.json), `lldb-16: the same items ${lagain.stderr}`);
  t.notMatch(lagain.stdout + lagain.stderr, /Traceback|error:/, 'lldb-16: no error');
});
