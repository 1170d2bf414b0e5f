/**
 * Bad memory never kills the debugger session: a cycle, a wild pointer, an
 * unreadable address or a bad argument gives a clear message (or a partial
 * result that says why), and the next command works. An unknown stripped
 * build gets one message naming the known builds. EXPR is checked as
 * xsample checks --addr, and a debugger with no process says so.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { extension, gdb, lldb, type Where } from './lib/debuggers.ts';
import { binPath, startWalkee } from './lib/walkee.ts';

const lldbAtThePrompt = (where: Where, pack: string, commands: string[]) => lldb(where, pack, commands, { keepGoing: true });

for (const [name, run] of [
  ['gdb', gdb],
  ['lldb', lldbAtThePrompt],
] as const) {
  t.test(`${name}: corrupt structures give partial results and the session goes on`, async (t) => {
    const w = await startWalkee(['--nodes', '1000', '--pools', '2']);
    t.teardown(() => w.kill());
    const truth = await w.ask('truth');
    t.same(await w.ask('corrupt cycle'), { ok: true });
    t.same(await w.ask('corrupt pool-cycle'), { ok: true });
    const r = await run({ pid: w.child.pid! }, 'walkee', ['walkee-list --json', 'ngx-pools --json', 'ngx-pool 0x10 --json', 'ngx-pool --bogus', 'walkee-array --json']);
    const [list, pools, wild, array] = r.json as { partial: boolean; errors: { message: string }[]; items: Record<string, unknown>[] }[];
    t.equal(list.partial, true, 'the cyclic list is partial');
    t.match(list.errors[0].message, /next chain: cycle at 0x[0-9a-f]+/);
    t.equal(list.items[0].count, null, 'and its count is null, not garbage');
    t.equal(pools.partial, true, 'the cyclic pool is partial');
    t.match(pools.errors[0].message, /d\.next chain: cycle/);
    t.equal(pools.items.length, truth.pools.length, 'every pool is still listed');
    t.equal(wild.partial, true);
    t.match(wild.errors[0].message, /0x[0-9a-f]+: not in any mapping/);
    t.match(r.stdout + r.stderr, /unknown option --bogus/, 'a bad argument is a message');
    t.same(array.items.map(({ pid: _p, origin: _o, ...rest }) => rest), [truth.array], 'and the next command still works');
    t.notMatch(r.stdout + r.stderr, /Traceback/, 'no Python traceback');
  });

  t.test(`${name}: an unknown stripped build is one clear message`, async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-stripped-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const stripped = path.join(dir, 'walkee');
    await execa('strip', ['-o', stripped, binPath]);
    const child = execa(stripped, ['--nodes', '10'], { stdin: 'pipe', stdout: 'pipe', reject: false });
    t.teardown(() => {
      child.kill('SIGKILL');
    });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const r = await run({ pid: child.pid! }, 'walkee', ['walkee-list', 'xwalk-check']);
    t.match(r.stdout + r.stderr, /unknown build of walkee 1\.0: .*walkee \(build-id [0-9a-f]{40}\) matches no layout, and its debug info does not serve \(.*\); no builds of walkee are known yet\. Add one with: xgen layout --pack walkee BINARY-WITH-DEBUG-INFO, then regenerate/);
    t.notMatch(r.stdout + r.stderr, /Traceback/, 'no Python traceback');
  });

  t.test(`${name}: EXPR is checked as xsample checks --addr, and every mistake is one line`, async (t) => {
    const w = await startWalkee(['--nodes', '10', '--pools', '2']);
    t.teardown(() => w.kill());
    const truth = await w.ask('truth');
    const r = await run({ pid: w.child.pid! }, 'walkee', ['ngx-pool &walkee.jobs', 'ngx-pool -1', 'walkee-list --max-nodes 0', 'ngx-pool walkee.pools[1] --json']);
    const out = r.stdout + r.stderr;
    t.match(out, /&walkee\.jobs is ngx_queue_t, not a ngx_pool_t: give a pointer to one, or an address/, 'a pointer to another struct is refused');
    t.match(out, /-1 is -1, not a 64-bit address/, 'so is an address below 0');
    t.match(out, /--max-nodes takes a whole number from 1 to 1000000000, not '0'/, "a number out of range, in xsample's words");
    t.same((r.json[0]?.items as { addr: string }[] | undefined)?.map((i) => i.addr), [truth.pools[1].addr], 'a pointer to a pool is a pool');
    t.notMatch(out, /Traceback/, 'no Python traceback');
  });

  t.test(`${name}: with no process, one line that says so`, async (t) => {
    const r =
      name === 'gdb'
        ? await execa('gdb', ['-batch', '-nx', binPath, '-ex', `source ${extension('walkee', 'gdb')}`, '-ex', 'ngx-pools'], { reject: false, env: { DEBUGINFOD_URLS: '' } })
        : await execa('lldb-16', ['-b', '--no-lldbinit', binPath, '-o', `command script import ${extension('walkee', 'lldb')}`, '-o', 'ngx-pools'], { reject: false });
    t.match(r.stdout + r.stderr, /no process: attach (gdb|lldb) /);
    t.notMatch(r.stdout + r.stderr, /Traceback|0 items/);
  });
}
