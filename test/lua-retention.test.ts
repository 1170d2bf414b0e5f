/**
 * Who holds a Lua object (issue 22): retention paths from the collector's
 * roots, on Debian's nginx with lua-nginx-module. The worker plants objects
 * in known places (test/lib/nginx.ts, /lua/retain/*) and says their
 * addresses itself (tostring of a table); each path must name its holder
 * exactly, the same in xsample, gdb and lldb, live and on a core.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { writeShop } from './lib/lua-shop.ts';
import { DEBIAN_NGINX, type Nginx, startNginx, waitUntil } from './lib/nginx.ts';
import { parseFolded, xsample } from './lib/xsample.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-retain-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;
const noPid = (rows: Row[]) => rows.map(({ pid: _, ...rest }) => rest);

/** How lua-nginx-module names the chunk of a location's content_by_lua_block: by its line in the config nginx read. */
function chunkOf(nginx: Nginx, location: string): string {
  const conf = fs.readFileSync(path.join(nginx.dir, 'nginx.conf'), 'utf8').split('\n');
  return `content_by_lua(nginx.conf:${conf.findIndex((l) => l.includes(`location = ${location}`)) + 2})`;
}

async function get(nginx: Nginx, url: string): Promise<string> {
  return (await fetch(`http://127.0.0.1:${nginx.port}${url}`)).text();
}

/** A worker with its module written into its prefix, planted: the addresses it says of its holders. */
async function planted(t: Test): Promise<{ nginx: Nginx; cache: string; global: string; sessions: string; parked: string }> {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  writeShop(nginx.dir);
  const said = await get(nginx, '/lua/retain/plant');
  const addr = (what: string) => new RegExp(`^${what} table: (0x[0-9a-f]+)$`, 'm').exec(said)?.[1] ?? `(${what}: not in ${JSON.stringify(said)})`;
  const ac = new AbortController();
  t.teardown(() => ac.abort());
  void fetch(`http://127.0.0.1:${nginx.port}/lua/retain/park?s=120`, { signal: ac.signal }).catch(() => {});
  let parked = '';
  await waitUntil('the request logs its table and parks in ngx.sleep', async () => {
    parked = /xwalk-held table: (0x[0-9a-f]+)/.exec(fs.readFileSync(nginx.errorLog, 'utf8'))?.[1] ?? '';
    if (!parked) return false;
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_requests', '--json']);
    return ((r.json?.items ?? []) as Row[]).some((x) => x.lua_status === 1);
  });
  return { nginx, cache: addr('cache'), global: addr('global'), sessions: addr('sessions'), parked };
}

t.test('the path from a GC root to each planted holder, named as Lua names it, in xsample, gdb and lldb, live and on a core', async (t) => {
  const { nginx, cache, global, sessions, parked } = await planted(t);
  const module = path.join(nginx.dir, 'xwalk_shop.lua');
  const expected: Record<string, string[]> = {
    [cache]: ['registry', 'package.loaded', '.xwalk_shop', `.render_item (${module}:3)`, 'upvalue page_cache'],
    [global]: ['_G', '.xwalk_global_holder'],
    [sessions]: ['registry', 'package.loaded', '.xwalk_shop', '.sessions'],
    // The request's coroutine: lua-nginx-module keeps it in a registry table under a light userdata key (the address
    // of its global ngx_http_lua_coroutines_key, named by its symbol), by a luaL_ref.
    [parked]: ['registry', '[ngx_http_lua_coroutines_key]', /^\[\d+\] \(coroutine\)$/ as unknown as string, `local held of ${chunkOf(nginx, '/lua/retain/park')} main chunk`],
  };
  const live: Record<string, Row> = {};
  for (const [addr, want] of Object.entries(expected)) {
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_held_by', '--addr', addr, '--json']);
    t.equal(r.json.partial, false, `${addr}: a complete answer ${JSON.stringify(r.json.errors)}`);
    const row = (r.json.items as Row[])[0];
    t.equal(row.type, 'table');
    t.match(row.held_by, want, `${addr}: ${JSON.stringify(row.held_by)}`);
    t.equal((row.held_by as string[]).length, want.length, 'and no step more');
    live[addr] = row;
  }

  // The worker is idle (the request sleeps): every reader must give the same paths.
  for (const [addr, row] of Object.entries(live)) {
    const g = await gdb({ pid: nginx.workerPid }, 'nginx', [`lua-held-by --json ${addr}`]);
    const l = await lldb({ pid: nginx.workerPid }, 'nginx', [`lua-held-by --json ${addr}`]);
    t.same(g.json[0]?.items, [row], `gdb on the live worker, ${addr}: ${g.stderr.slice(-300)}`);
    t.same(l.json[0]?.items, [row], `lldb on the live worker, ${addr}: ${l.stderr.slice(-300)}`);
  }
  const prefix = path.join(dir, 'core');
  await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
  const core = `${prefix}.${nginx.workerPid}`;
  for (const [addr, row] of Object.entries(live)) {
    const x = (await xsample(['--core', core, '--struct', 'lua_held_by', '--addr', addr, '--json'])).json.items as Row[];
    t.same(noPid(x), noPid([row]), `xsample on a core, ${addr}`);
    const g = await gdb({ core, exe: DEBIAN_NGINX }, 'nginx', [`lua-held-by --json ${addr}`]);
    const l = await lldb({ core, exe: DEBIAN_NGINX }, 'nginx', [`lua-held-by --json ${addr}`]);
    t.same(noPid((g.json[0]?.items ?? []) as Row[]), noPid([row]), `gdb on the core, ${addr}: ${g.stderr.slice(-300)}`);
    t.same(noPid((l.json[0]?.items ?? []) as Row[]), noPid([row]), `lldb on the core, ${addr}: ${l.stderr.slice(-300)}`);
  }
});

t.test('lua_tables: a memo table keyed by URI grows large, and held_by names the module, function and upvalue that hold it', async (t) => {
  const { nginx, cache } = await planted(t);
  await get(nginx, '/lua/retain/leak?from=a&n=3000');
  const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_tables', '--json']);
  const row = (r.json.items as Row[]).find((x) => x.addr === cache);
  t.ok(row, `the memo table ${cache} is among the large tables: ${JSON.stringify(r.json.items)}`);
  t.ok(Number(row?.hash_slots) >= 3000, `its hash part holds the 3000 URIs (${row?.hash_slots} slots)`);
  t.same(row?.held_by, ['registry', 'package.loaded', '.xwalk_shop', `.render_item (${path.join(nginx.dir, 'xwalk_shop.lua')}:3)`, 'upvalue page_cache']);
  const text = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_tables']);
  t.match(text.stdout, '.render_item (', 'the text output shows the path too');
});

t.test('a table no root reaches (garbage not yet swept) has no path; past --max-nodes the column fails', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // The collector is stopped, so a table its request dropped stays in memory, reached by no one.
  await get(nginx, '/lua/gc');
  writeShop(nginx.dir);
  const said = await get(nginx, '/lua/retain/plant');
  const dropped = /^dropped table: (0x[0-9a-f]+)$/m.exec(said)![1];
  const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_held_by', '--addr', dropped, '--json']);
  t.equal(r.json.partial, false);
  t.same((r.json.items as Row[])[0].held_by, [], `the dropped table ${dropped}: no path`);
  const tiny = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_held_by', '--addr', dropped, '--json', '--max-nodes', '1000']);
  t.equal(tiny.json.partial, true, 'past --max-nodes (the whole heap is more) the path is not guessed: the column fails');
  t.match(JSON.stringify(tiny.json.errors), 'reach(): more than 1000 objects reached (--max-nodes)', JSON.stringify(tiny.json.errors));
});

/** The folded stacks a recording of lua_references wrote: each line's frames (pid first) and bytes. */
async function referenceGraph(pid: number, out: string): Promise<{ frames: string[]; weight: number }[]> {
  const r = await xsample(['record', '--pid', String(pid), '--struct', 'lua_references', '--rate', '1', '--duration', '1', '--format', 'folded', '-o', out]);
  if (r.code !== 0) throw new Error(`xsample record: ${r.stderr}`);
  return names(parseFolded(fs.readFileSync(out, 'utf8')));
}

/** Stacks without their process, each frame as the path names it (a frame of the column lua is `lua NAME`). */
const names = (stacks: { frames: string[]; weight: number }[]) => stacks.map((s) => ({ frames: s.frames.slice(1).map((f) => f.replace(/^lua /, '')), weight: s.weight }));

t.test("lua_references: on a quiet worker the reference flame graph weighs what collectgarbage('count') says, within 5%; gdb and lldb draw the same", async (t) => {
  const { nginx } = await planted(t);
  // A full collection, then the collector stopped: what the worker counts is (nearly) all live, and stays.
  const count = Number((await get(nginx, '/lua/retain/quiet')).trim());
  const stacks = await referenceGraph(nginx.workerPid, path.join(dir, 'quiet.folded'));
  const total = stacks.reduce((a, s) => a + s.weight, 0);
  t.ok(Math.abs(total - count) / count < 0.05, `the graph's ${total} bytes against the worker's own count of ${count} (${((total / count) * 100).toFixed(1)}%)`);
  const under = (prefix: string[]) => stacks.filter((s) => prefix.every((f, i) => s.frames[i] === f)).reduce((a, s) => a + s.weight, 0);
  t.ok(under(['vm']) > 0, "the VM's own allocations are a frame of their own");
  t.ok(under(['objects', '_G']) > 0 && under(['objects', 'registry', 'package.loaded']) > 0, 'the globals and the modules are frames');
  t.same(
    stacks.filter((s) => s.frames.includes('.xwalk_global_holder')).map((s) => s.frames),
    [['objects', '_G', '.xwalk_global_holder']],
    'a planted table is one stack, named as its path, with the string of its field under it',
  );
  const x = new Map(stacks.map((s) => [s.frames.join(';'), s.weight]));
  for (const [name, run] of [
    ['gdb', gdb],
    ['lldb', lldb],
  ] as const) {
    const file = path.join(dir, `quiet-${name}.folded`);
    const r = await run({ pid: nginx.workerPid }, 'nginx', [`lua-references --folded ${file}`]);
    const theirs = new Map(names(parseFolded(fs.readFileSync(file, 'utf8'))).map((s) => [s.frames.join(';'), s.weight]));
    t.same(theirs, x, `${name} on the live worker draws the same graph: ${r.stderr.slice(-300)}`);
  }
});

t.test('lua_references: a memo table keyed by URI, filled by requests, is the widest path of the reference flame graph', async (t) => {
  const { nginx } = await planted(t);
  for (let i = 0; i < 4; i++) await get(nginx, `/lua/retain/leak?from=r${i}&n=5000`);
  await get(nginx, '/lua/retain/quiet');
  const stacks = await referenceGraph(nginx.workerPid, path.join(dir, 'leak.folded'));
  const total = stacks.reduce((a, s) => a + s.weight, 0);
  const widest = [...stacks].sort((a, b) => b.weight - a.weight)[0];
  t.same(widest.frames, ['objects', 'registry', 'package.loaded', '.xwalk_shop', `.render_item (${path.join(nginx.dir, 'xwalk_shop.lua')}:3)`, 'upvalue page_cache']);
  t.ok(widest.weight > total / 2, `the memo and the 20000 URIs and pages only it holds weigh most of the heap (${widest.weight} of ${total} bytes)`);
});
