/**
 * The Lua heap views on Debian's nginx with lua-nginx-module, against what
 * the VM says of itself: the strings of a big string table whose chains
 * collide (LuaJIT's secondary hash) as many as its own str.num; a busy
 * worker's sample that changed while it was read shows `?` where its
 * columns read what changed, never a number it could not compute; the
 * collector's phase and the garbage it has found and not freed yet, as much
 * as the rest of its cycle frees; and what is in one table (lua_table
 * --addr), in xsample, gdb and lldb, live and on a core.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { DEBIAN_NGINX, type Nginx, startNginx, waitUntil } from './lib/nginx.ts';
import { root } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-lua-heap-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;
const noPid = (rows: Row[]) => rows.map(({ pid: _, ...rest }) => rest);
const get = async (nginx: Nginx, url: string) => (await (await fetch(`http://127.0.0.1:${nginx.port}${url}`)).text()).trim();
const one = async (pid: number, view: string, more: string[] = []) => {
  const r = await xsample(['--pid', String(pid), '--struct', view, '--json', ...more]);
  return { r, row: (r.json?.items as Row[] | undefined)?.[0] ?? {} };
};

/** The committed layout of the LuaJIT Debian ships: where the independent reads below find g->str. */
function luajitLayout(): { types: Record<string, { size: number; fields: Record<string, { offset: number }> }> } {
  const folder = fs.readdirSync(path.join(root, 'packs/nginx')).find((d) => d.startsWith('luajit-'))!;
  const file = fs.readdirSync(path.join(root, 'packs/nginx', folder)).find((f) => f.endsWith('.json'))!;
  return JSON.parse(fs.readFileSync(path.join(root, 'packs/nginx', folder, file), 'utf8'));
}

t.test("lua_objects on a big string table whose chains collide: as many strings as LuaJIT's own str.num, in xsample, gdb and lldb", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // 300000 strings; every 16th of them has the same sparse hash as the others of its kind.
  for (let k = 0; k < 3; k++) t.equal(await get(nginx, `/lua/heap/strings?n=100000&from=${k * 100000 + 1}`), String((k + 1) * 100000));
  const { r, row } = await one(nginx.workerPid, 'lua_objects');
  t.equal(r.json.partial, false, `a quiet worker gives a complete sample: ${r.stderr.slice(-300)}`);
  t.ok(Number(row.str_num) > 300000, `LuaJIT counts ${row.str_num} strings`);
  t.equal(row.strings, row.str_num, 'the walk of the string table finds as many');
  // Independently, gdb on the stopped worker: the anchors of the string table tagged in their low bit (chains
  // LuaJIT moved to its secondary hash), so that the walk above read such a table.
  const L = luajitLayout().types;
  const vm = (await one(nginx.workerPid, 'lua_vm')).row;
  const off = (s: string, f: string) => L[s].fields[f].offset;
  const script = [
    'import gdb',
    'inf = gdb.selected_inferior()',
    'u64 = lambda a: int.from_bytes(bytes(inf.read_memory(a, 8)), "little")',
    `g = u64(${vm.addr} + ${off('lua_State', 'glref.ptr64')})`,
    `tab = u64(g + ${off('global_State', 'str.tab')})`,
    `mask = u64(g + ${off('global_State', 'str.mask')}) & 0xffffffff`,
    'words = bytes(inf.read_memory(tab, (mask + 1) * 8))',
    'print("xwalk-tagged %d of %d" % (sum(words[i] & 1 for i in range(0, len(words), 8)), mask + 1))',
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'tagged.py'), script);
  const probe = await execa('gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', '-p', String(nginx.workerPid), '-ex', `source ${path.join(dir, 'tagged.py')}`], { reject: false, env: { DEBUGINFOD_URLS: '' } });
  const tagged = /xwalk-tagged (\d+) of (\d+)/.exec(probe.stdout);
  t.ok(tagged && Number(tagged[1]) > 0, `chains of the string table are on the secondary hash: ${tagged?.[0] ?? probe.stderr.slice(-300)}`);
  // No request from here on: the debuggers see what xsample saw.
  const strings = (x: Row | undefined) => x && { strings: x.strings, str_num: x.str_num, string_bytes: x.string_bytes };
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-objects --json']);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', ['lua-objects --json']);
  t.same(strings((g.json[0]?.items as Row[])?.[0]), strings(row), `gdb: ${g.stderr.slice(-300)}`);
  t.same(strings((l.json[0]?.items as Row[])?.[0]), strings(row), `lldb: ${l.stderr.slice(-300)}`);
});

t.test('a busy worker: a sample that changed while it was read shows no number a walk of what changed computed', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  await get(nginx, '/lua/heap/strings?n=100000&from=1');
  const stop = path.join(dir, 'stop-busy');
  t.teardown(() => fs.writeFileSync(stop, ''));
  const busy = get(nginx, `/lua/heap/busy?until=${stop}`);
  // Columns that walk the lists (many reads): never a number from a sample whose memory changed under them.
  const walked = ['strings', 'string_bytes', 'tables', 'table_bytes', 'functions', 'protos', 'upvalues', 'userdata', 'garbage_objects'];
  // Until two samples changed while they were read (each is checked; a complete one too): a busy worker's
  // heap changes under nearly every walk, but how often is the machine's, so the count of tries is not fixed.
  let changed = 0;
  let tries = 0;
  for (; tries < 20 && changed < 2; tries++) {
    const { r, row } = await one(nginx.workerPid, 'lua_objects', ['--retries', '0']);
    const errors = r.json.errors as { column?: string; message: string }[];
    if (!r.json.partial) {
      t.equal(row.strings, row.str_num, 'a complete sample: as many strings as str.num');
      continue;
    }
    t.match(errors[0].message, /^changed while it was read/, 'the sample changed while it was read, and says so first');
    changed++;
    for (const c of walked) {
      t.equal(row[c], null, `${c} is not shown: ${JSON.stringify(errors.filter((e) => e.column === c))}`);
      const mine = errors.filter((e) => e.column === c);
      t.ok(mine.length > 0 && mine.every((e) => e.message.startsWith('changed while it was read')), `and its error says why first: ${mine[0]?.message}`);
    }
  }
  t.ok(changed > 0, `${changed} of ${tries} samples of the busy worker changed while they were read`);
  fs.writeFileSync(stop, '');
  t.match(await busy, /^\d+$/);
});

t.test("the collector's phase, and the garbage it has found and not freed yet: what the rest of its cycle frees, in xsample, gdb and lldb", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const N = 20000;
  t.equal(await get(nginx, `/lua/heap/garbage?n=${N}`), 'ok');
  const before = (await one(nginx.workerPid, 'lua_objects')).row;
  t.match(before.gc_phase, /^GCS(pause|propagate)$/, `before its atomic step (${before.gc_phase}) the collector has told no garbage`);
  t.equal(before.garbage_objects, 0);
  // Step the collector until its sweep of the strings: N dead strings make the table big, and a step sweeps a few
  // hundred of its chains (GCSWEEPCOST), so that 10 steps at a time stop in that phase, however long a request takes.
  let vm: Row = {};
  await waitUntil('the collector sweeps the string table', async () => {
    await get(nginx, '/lua/heap/step?n=10');
    vm = (await one(nginx.workerPid, 'lua_vm')).row;
    return vm.gc_phase === 'GCSsweepstring';
  }, 300_000);
  const { r, row } = await one(nginx.workerPid, 'lua_objects');
  t.equal(r.json.partial, false);
  t.equal(row.gc_phase, 'GCSsweepstring');
  t.ok(Number(row.garbage_objects) >= N, `${row.garbage_objects} dead objects: the ${N} tables dropped, none swept yet, and strings`);
  t.ok(Number(row.garbage_bytes) >= N * 64, `${row.garbage_bytes} bytes of them: at least a table header each`);
  t.ok(Number(row.garbage_objects) <= Number(row.tables) + Number(row.strings), 'no more garbage than objects');
  // No request from here on until the debuggers have read it.
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-objects --json', 'lua-vm --json']);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', ['lua-objects --json', 'lua-vm --json']);
  t.same(noPid(g.json[0]?.items as Row[]), noPid(r.json.items), `gdb: ${g.stderr.slice(-300)}`);
  t.same(noPid(l.json[0]?.items as Row[]), noPid(r.json.items), `lldb: ${l.stderr.slice(-300)}`);
  t.equal((g.json[1]?.items as Row[])?.[0]?.gc_phase, 'GCSsweepstring', 'gdb says the phase too');
  // The collector's own truth: finishing the cycle frees the garbage (and a full cycle after it, little more).
  const after = Number(await get(nginx, '/lua/heap/collect'));
  const freed = Number(row.gc_bytes) - after;
  t.ok(freed >= 0.95 * Number(row.garbage_bytes) && freed <= Number(row.garbage_bytes) + 512 * 1024, `the collector freed ${freed} bytes; the garbage was ${row.garbage_bytes}`);
  const done = (await one(nginx.workerPid, 'lua_objects')).row;
  t.equal(done.gc_phase, 'GCSpause', 'after a full cycle the collector pauses');
  t.equal(done.garbage_objects, 0, 'with no garbage left');
});

t.test('lua_table --addr: what is in a table - its entries, keys as text, values by type - in xsample, gdb and lldb, live and on a core', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const N = 1000;
  const [pages, mixed] = (await get(nginx, `/lua/heap/pages?n=${N}`)).split(' ');
  const { r, row } = await one(nginx.workerPid, 'lua_table', ['--addr', pages]);
  t.equal(r.json.partial, false, r.stderr.slice(-300));
  t.equal(row.addr, pages);
  t.equal(row.entries, N, `${N} entries, as the handler made`);
  t.equal(row.hash_entries, N, 'all in its hash part');
  t.equal(row.array_entries, 0);
  const keys = row.keys as string[];
  t.equal(keys.length, 20, 'a sample of 20 keys');
  t.ok(keys.every((k) => /^'\/page\/\d+'$/.test(k)), `each as Lua text: ${keys.slice(0, 3).join(', ')}...`);
  t.equal(new Set(keys).size, 20, 'each a different key');
  t.equal(row.strings, N, 'every value a string');
  const GCstr = luajitLayout().types.GCstr.size;
  let bytes = 0;
  for (let i = 1; i <= N; i++) bytes += GCstr + `<html>page ${i}</html>`.length + 1;
  t.equal(row.string_bytes, bytes, "the strings' bytes, as LuaJIT sizes a string (lj_str_size)");
  t.same([row.tables, row.numbers, row.booleans, row.functions, row.others], [0, 0, 0, 0, 0]);
  // A table keyed by other types: each key as Lua would write it.
  const m = (await one(nginx.workerPid, 'lua_table', ['--addr', mixed])).row;
  t.same([...(m.keys as string[])].sort(), ["'k'", '-3', '1099511627776', '<number>', '<table>', 'true'].sort(), `keys of other types: ${JSON.stringify(m.keys)}`);
  t.equal(m.numbers, 6, 'six number values');

  const live = noPid(r.json.items);
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', [`lua-table ${pages} --json`]);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', [`lua-table ${pages} --json`]);
  t.same(noPid(g.json[0]?.items as Row[]), live, `gdb: ${g.stderr.slice(-300)}`);
  t.same(noPid(l.json[0]?.items as Row[]), live, `lldb: ${l.stderr.slice(-300)}`);
  const prefix = path.join(dir, 'core');
  await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
  const core = `${prefix}.${nginx.workerPid}`;
  const fromCore = await xsample(['--core', core, '--struct', 'lua_table', '--addr', pages, '--json']);
  t.same(noPid(fromCore.json.items), live, `xsample on a core: ${fromCore.stderr.slice(-300)}`);
  const gc = await gdb({ core, exe: DEBIAN_NGINX }, 'nginx', [`lua-table ${pages} --json`]);
  const lc = await lldb({ core, exe: DEBIAN_NGINX }, 'nginx', [`lua-table ${pages} --json`]);
  t.same(noPid(gc.json[0]?.items as Row[]), live, `gdb on the core: ${gc.stderr.slice(-300)}`);
  t.same(noPid(lc.json[0]?.items as Row[]), live, `lldb on the core: ${lc.stderr.slice(-300)}`);
});
