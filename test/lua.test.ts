/**
 * OpenResty's Lua VM inside Debian's own nginx (stripped), read through the
 * layouts of the objects the worker maps: lua-nginx-module and OpenResty's
 * LuaJIT, each keyed by its own build-id. The GC bytes are checked against
 * what the worker says of itself (collectgarbage("count"), with its GC
 * stopped so that the bytes in use only grow); gdb and lldb say the same
 * live and on a core; a build without the module says why in one line.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { buildNginx, DEBIAN_NGINX, type Nginx, startNginx, waitUntil } from './lib/nginx.ts';
import { parseFolded, steady, xsample } from './lib/xsample.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-lua-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;

/** Rows without their pid: a core's and a live process's answers compared. */
const noPid = (rows: Row[]) => rows.map(({ pid: _, ...rest }) => rest);

/** How lua-nginx-module names the chunk of a location's content_by_lua_block: by its line in the config nginx read. */
function chunkOf(nginx: { dir: string }, location: string): string {
  const conf = fs.readFileSync(path.join(nginx.dir, 'nginx.conf'), 'utf8').split('\n');
  return `content_by_lua(nginx.conf:${conf.findIndex((l) => l.includes(`location = ${location}`)) + 2})`;
}

/** LuaJIT's threshold while its collector is stopped (LJ_MAX_MEM64, 2^47): what collectgarbage("stop") sets. */
const STOPPED = 2 ** 47;

t.test("lua_vm on Debian's nginx with lua-nginx-module: the worker's own GC bytes, in xsample, gdb and lldb, live and on a core", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const said = async () => Number((await (await fetch(`http://127.0.0.1:${nginx.port}/lua/gc`)).text()).trim());
  await said(); // stops the worker's GC: from here on the bytes in use only grow
  const before = await said();
  const live = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_vm', '--json']);
  const after = await said();
  const vm = (live.json.items as Record<string, unknown>[])[0];
  t.equal(live.json.partial, false);
  t.ok(before <= Number(vm.gc_bytes) && Number(vm.gc_bytes) <= after, `GC bytes ${vm.gc_bytes}: between what the worker said before (${before}) and after (${after})`);
  t.ok(after - before < 64 * 1024, 'and the two answers are close, so that this means something');
  t.equal(vm.gc_threshold, STOPPED, "the threshold of a stopped collector, as the worker's collectgarbage('stop') left it");
  t.match(vm.vmstate, /^(interpreted|C|GC)$/, `an idle worker runs no trace, records and compiles none (${vm.vmstate})`);

  // No request from here on: the idle worker's VM holds still, so every reader must give the same figures.
  const again = (await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_vm', '--json'])).json.items as Record<string, unknown>[];
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-vm --json']);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', ['lua-vm --json']);
  t.same(g.json[0]?.items, again, `gdb on the live worker says the same: ${g.stderr.slice(-300)}`);
  t.same(l.json[0]?.items, again, `lldb on the live worker says the same: ${l.stderr.slice(-300)}`);

  const prefix = path.join(dir, 'core');
  await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
  const core = `${prefix}.${nginx.workerPid}`;
  const fromCore = (await xsample(['--core', core, '--struct', 'lua_vm', '--json'])).json.items as Record<string, unknown>[];
  t.same(noPid(fromCore), noPid(again), 'xsample on a core of the worker');
  const gc = await gdb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-vm --json']);
  const lc = await lldb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-vm --json']);
  t.same(noPid((gc.json[0]?.items ?? []) as Record<string, unknown>[]), noPid(again), `gdb on the core: ${gc.stderr.slice(-300)}`);
  t.same(noPid((lc.json[0]?.items ?? []) as Record<string, unknown>[]), noPid(again), `lldb on the core: ${lc.stderr.slice(-300)}`);
});

t.test('lua_requests: the exact Lua backtrace of every request parked in ngx.sleep, in xsample, gdb and lldb, live and on a core', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // /lua/sleep (test/lib/nginx.ts): the chunk calls outer() on its line 8, outer calls inner() on line 6,
  // inner calls ngx.sleep() on line 3; inner is defined on line 2, outer on 5, the chunk's own line is 0.
  const chunk = chunkOf(nginx, '/lua/sleep');
  const parked = new AbortController();
  t.teardown(() => parked.abort());
  const K = 2;
  for (let i = 0; i < K; i++) void fetch(`http://127.0.0.1:${nginx.port}/lua/sleep?s=60&i=${i}`, { signal: parked.signal }).catch(() => {});
  let rows: Row[] = [];
  await waitUntil(`${K} requests are parked in ngx.sleep`, async () => {
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_requests', '--json']);
    rows = (r.json?.items ?? []) as Row[];
    return rows.length === K && rows.every((x) => x.lua_status === 1);
  });
  for (const row of rows) {
    t.equal(row.uri, '/lua/sleep');
    t.same(
      row.backtrace,
      [`${chunk}:3: in function 'inner'`, `${chunk}:6: in function 'outer'`, `${chunk}:8: in main chunk`],
      `each frame as Lua's traceback shows it: the content_by_lua block, named by its line in the config (${chunk}); inner (an upvalue of outer) and outer (a local of the chunk) by their names`,
    );
    t.same(row.bt_line, [3, 6, 8], 'the current lines, youngest frame first: ngx.sleep() in inner, inner() in outer, outer() in the chunk');
    t.same(row.bt_defined, [2, 5, 0], 'the lines the functions are defined on');
  }
  // Parked coroutines do not move: every reader sees the same frames.
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-requests --json']);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', ['lua-requests --json']);
  // Each reads at its own instant: the time left on the sleep's timer (left_ms) moves between them.
  t.same(((g.json[0]?.items ?? []) as Row[]).map(steady), rows.map(steady), `gdb on the live worker: ${g.stderr.slice(-300)}`);
  t.same(((l.json[0]?.items ?? []) as Row[]).map(steady), rows.map(steady), `lldb on the live worker: ${l.stderr.slice(-300)}`);
  const prefix = path.join(dir, 'parked');
  await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
  const core = `${prefix}.${nginx.workerPid}`;
  const fromCore = (await xsample(['--core', core, '--struct', 'lua_requests', '--json'])).json.items as Row[];
  t.same(fromCore.map(steady), rows.map(steady), 'xsample on a core of the worker');
  const gc = await gdb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-requests --json']);
  const lc = await lldb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-requests --json']);
  // On a core the clock is nginx's own, frozen when it was dumped: the readers of one core agree to the ms.
  t.same(noPid((gc.json[0]?.items ?? []) as Row[]), noPid(fromCore), `gdb on the core: ${gc.stderr.slice(-300)}`);
  t.same(noPid((lc.json[0]?.items ?? []) as Row[]), noPid(fromCore), `lldb on the core: ${lc.stderr.slice(-300)}`);
});

t.test("lua_requests names functions as Lua's own traceback does: globals, fields, methods, upvalues and locals", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // /lua/named (test/lib/nginx.ts): top (a local) calls upper (an upvalue), which calls obj:method (a method),
  // which calls xwalk_global (a global), which calls M.field (a field, taking ...), which logs debug.traceback() and sleeps.
  const chunk = chunkOf(nginx, '/lua/named');
  const parked = new AbortController();
  t.teardown(() => parked.abort());
  void fetch(`http://127.0.0.1:${nginx.port}/lua/named?s=60`, { signal: parked.signal }).catch(() => {});
  let row: Row = {};
  await waitUntil('the request is parked in ngx.sleep', async () => {
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_requests', '--json']);
    row = ((r.json?.items ?? []) as Row[])[0] ?? {};
    return row.lua_status === 1;
  });
  const logged = /xwalk-traceback(stack traceback:\|.*?)(,|$)/m.exec(fs.readFileSync(nginx.errorLog, 'utf8'))?.[1] ?? '';
  const lua = logged.split('|').slice(1).map((l) => l.trim());
  t.equal(lua.length, 6, `the worker's own traceback: ${logged}`);
  const ours = row.backtrace as string[];
  t.same(ours, lua, "every frame as the worker's own debug.traceback() says, names and all");
  t.equal(ours[4], `${chunk}:8: in function 'top'`, 'the local function top named from the prototype\'s variable names');
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-requests --json']);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', ['lua-requests --json']);
  t.same(((g.json[0]?.items ?? []) as Row[]).map(steady), [steady(row)], `gdb says the same: ${g.stderr.slice(-300)}`);
  t.same(((l.json[0]?.items ?? []) as Row[]).map(steady), [steady(row)], `lldb says the same: ${l.stderr.slice(-300)}`);
});

t.test("lua_requests: a request's light threads (ngx.thread.spawn), each with its own backtrace as its debug.traceback() gives it", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // /lua/threads (test/lib/nginx.ts): two threads, one in worker() then nap(), one in nap() directly; nap (line 2)
  // logs its coroutine's traceback and sleeps; the entry coroutine waits for both on line 6.
  const chunk = chunkOf(nginx, '/lua/threads');
  const parked = new AbortController();
  t.teardown(() => parked.abort());
  void fetch(`http://127.0.0.1:${nginx.port}/lua/threads?s=60`, { signal: parked.signal }).catch(() => {});
  let row: Row = {};
  await waitUntil('both threads sleep', async () => {
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_requests', '--json']);
    row = ((r.json?.items ?? []) as Row[])[0] ?? {};
    return (row.threads as string[] | undefined)?.filter((l) => l.startsWith('coroutine')).length === 2 && (row.backtrace as string[]).length > 0;
  });
  t.same(row.backtrace, [`${chunk}:6: in main chunk`], 'the entry coroutine waits on line 6');
  const logged = [...fs.readFileSync(nginx.errorLog, 'utf8').matchAll(/xwalk-thread(stack traceback:\|.*?)(,|$)/gm)].map((m) => m[1].split('|').slice(1).map((l) => l.trim()));
  t.equal(logged.length, 2, 'each thread logged its traceback');
  const threads = (row.threads as string[]).join('\n').split(/^coroutine \((\w+)\):\n?/m).slice(1);
  const ours = [threads[1], threads[3]].map((block) => block.trim().split('\n'));
  t.same([threads[0], threads[2]], ['running', 'running'], "both threads parked in ngx.sleep (which lua-nginx-module leaves 'running')");
  t.same(ours.map((l) => l.join('|')).sort(), logged.map((l) => l.join('|')).sort(), "each thread's frames as its own debug.traceback() says");
  t.ok(ours.some((l) => l.length === 2 && l[0] === `${chunk}:2: in function 'nap'`), 'worker() calling nap(), the upvalue, by name');
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-requests --json']);
  t.same(((g.json[0]?.items ?? []) as Row[]).map(steady), [steady(row)], `gdb says the same: ${g.stderr.slice(-300)}`);
});

t.test("lua_objects: the worker's Lua objects by type, against LuaJIT's own count of strings and the tables a handler makes, in xsample, gdb and lldb", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // /lua/objects (test/lib/nginx.ts) stops the GC and keeps N new tables, each holding a new string.
  const keep = async (n: number, tag: string) => Number((await (await fetch(`http://127.0.0.1:${nginx.port}/lua/objects?n=${n}&tag=${tag}`)).text()).trim());
  await keep(0, 'warm');
  const read = async () => ((await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_objects', '--json'])).json.items as Record<string, number>[])[0];
  const before = await read();
  const N = 1000;
  t.equal(await keep(N, 'made'), N, `the worker kept ${N} tables`);
  const after = await read();
  for (const x of [before, after]) {
    t.equal(x.strings, x.str_num, `the strings walked (${x.strings}) are as many as LuaJIT counts itself`);
    const bytes = x.string_bytes + x.table_bytes + x.function_bytes + x.proto_bytes + x.thread_bytes + x.userdata_bytes;
    t.ok(bytes > 0 && bytes < x.gc_bytes, `the objects' bytes (${bytes}) are within what the GC holds in all (${x.gc_bytes})`);
  }
  const tables = after.tables - before.tables;
  const strings = after.strings - before.strings;
  t.ok(tables >= N && tables <= N + 10, `${tables} more tables: the ${N} kept, and at most a few of the request's own`);
  t.ok(strings >= N && strings <= N + 10, `${strings} more strings: the ${N} new ones, and at most a few of the request's own`);
  t.ok(after.table_bytes - before.table_bytes >= N * (64 + 8), 'each new table is at least its header and a one-slot array');
  const vm = ((await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_vm', '--json'])).json.items as Record<string, number>[])[0];
  t.ok(vm.traces >= 1, "the handler's 1000-round loop was compiled to a trace");
  t.ok(after.largest_table_bytes >= N * 8, `the largest table holds at least the ${N} kept (${after.largest_table_bytes} bytes)`);
  t.equal(vm.traces, after.traces, `the JIT's own table of traces holds as many (${vm.traces}) as the GC's list: two reads of one fact`);
  // No request from here on: the idle worker's objects hold still.
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-objects --json']);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', ['lua-objects --json']);
  t.same(g.json[0]?.items, [after], `gdb on the live worker: ${g.stderr.slice(-300)}`);
  t.same(l.json[0]?.items, [after], `lldb on the live worker: ${l.stderr.slice(-300)}`);

  // One table of 100000 array slots, with a metatable: lua_tables lists it, and only tables of 64 KiB or more.
  await keep(0, 'big&big=100000');
  const large = (await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_tables', '--json'])).json.items as Record<string, unknown>[];
  const big = large.filter((x) => Number(x.array_slots) >= 100000);
  t.equal(big.length, 1, `the big table is listed: ${JSON.stringify(large)}`);
  t.ok(Number(big[0]?.bytes) >= 100000 * 8, 'with its array part counted');
  t.equal(big[0]?.metatable, 1, 'and its metatable');
  t.ok(large.every((x) => Number(x.bytes) >= 65536), 'every table listed is 64 KiB or more');
  const objects = ((await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_objects', '--json'])).json.items as Record<string, number>[])[0];
  t.equal(objects.largest_table_bytes, Math.max(...large.map((x) => Number(x.bytes))), "lua_objects' largest table is lua_tables' largest");
});

/** Records lua_stacks 2 s at a time until 200 samples saw Lua run (a busy host takes fewer a second: the sampler yields to the worker). */
async function recordUntil200(t: Test, pid: number, out: string): Promise<Map<string, number>> {
  const weights = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < 20 && all < 200; i++) {
    const r = await xsample(['record', '--pid', String(pid), '--struct', 'lua_stacks', '--rate', '100', '--duration', '2', '--format', 'folded', '-o', out]);
    // A partial sample (frames torn, or no frame base) is left out and counted: a few are, on a busy host.
    const partial = Number(/, (\d+) partial/.exec(r.stderr)?.[1] ?? 0);
    const taken = Number(/: (\d+) samples? in/.exec(r.stderr)?.[1] ?? 0);
    t.ok((r.code === 0 || r.code === 3) && partial <= 0.25 * taken, `${partial} of ${taken} samples partial: ${r.stderr.slice(-300)}`);
    for (const { frames, weight } of parseFolded(fs.readFileSync(out, 'utf8'))) {
      const stack = frames.join(';');
      weights.set(stack, (weights.get(stack) ?? 0) + weight);
    }
    all = [...weights.values()].reduce((a, b) => a + b, 0);
  }
  return weights;
}

/**
 * /lua/burn (test/lib/nginx.ts) calls heavy(3000000) then M.light(1000000) until the file it names exists: the same
 * loop, 3 rounds in 4 in heavy. Started, and running Lua; the stop file is written at the test's end, whatever happens.
 */
async function burn(t: Test, nginx: Nginx, jit: 'on' | 'off'): Promise<{ chunk: string; stop: () => Promise<string> }> {
  const chunk = chunkOf(nginx, '/lua/burn');
  const stopFile = path.join(dir, `burn-${jit}.stop`);
  t.teardown(() => fs.writeFileSync(stopFile, '')); // a failed assertion must not leave the worker burning
  const burning = fetch(`http://127.0.0.1:${nginx.port}/lua/burn?until=${stopFile}&jit=${jit}`).then((r) => r.text());
  await waitUntil('the handler runs Lua', async () => {
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_stacks', '--json']);
    return (r.json?.items as Record<string, unknown>[] | undefined)?.[0]?.running === 1;
  });
  return { chunk, stop: () => (fs.writeFileSync(stopFile, ''), burning) };
}

/**
 * heavy's share of the samples in heavy or light, and theirs of all: heavy is defined on line 2 of the chunk, light
 * on 3; heavy is a local (named by where it is defined), M.light a field (named by the call, as Lua names it).
 */
function shares(weights: Map<string, number>, chunk: string): { all: number; heavy: number; light: number } {
  const under = (leaf: string) => [...weights].filter(([s]) => s.endsWith(`;lua ${leaf}`)).reduce((a, [, w]) => a + w, 0);
  return { all: [...weights.values()].reduce((a, b) => a + b, 0), heavy: under(`heavy (${chunk}:2)`), light: under(`light (${chunk}:3)`) };
}

t.test('lua_stacks: a CPU-bound handler recorded at 100 Hz splits between its two functions as their work does, without stopping the worker', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // LuaJIT compiles both loops, so nearly every sample is in a trace, where the frames are found from the JIT's frame base.
  const { chunk, stop } = await burn(t, nginx, 'on');
  const weights = await recordUntil200(t, nginx.workerPid, path.join(dir, 'lua.folded'));
  const { all, heavy, light } = shares(weights, chunk);
  t.ok(all >= 200, `200 samples saw the handler run (${all})`);
  t.ok(heavy + light >= 0.8 * all, `nearly all of them in heavy or light (${heavy + light} of ${all})`);
  // 3 in 4 by work; with 200 samples or more the binomial spread is at most 0.031, so 0.75 ± 0.12 is four of them.
  const share = heavy / (heavy + light);
  t.ok(Math.abs(share - 0.75) <= 0.12, `heavy's share is ${share.toFixed(3)}, about 3/4 (${heavy} to ${light})`);
  t.ok(weights.has(`pid ${nginx.workerPid};vm JIT;lua ${chunk} main chunk;lua heavy (${chunk}:2)`), 'a path: the VM in JIT code, the main chunk, then heavy');
  t.notOk([...weights.keys()].some((s) => s.includes('vm C;') && !s.includes(`lua ${chunk} main chunk`)), 'C called from Lua sits under the Lua that called it');
  // A core taken while it burns (gcore stops the worker for that, as a test may): the three readers agree on it.
  const prefix = path.join(dir, 'burning');
  await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
  const core = `${prefix}.${nginx.workerPid}`;
  const fromCore = noPid((await xsample(['--core', core, '--struct', 'lua_stacks', '--json'])).json.items as Row[]);
  const gc = await gdb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-stacks --json']);
  const lc = await lldb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-stacks --json']);
  t.same(noPid((gc.json[0]?.items ?? []) as Row[]), fromCore, `gdb on the core: ${gc.stderr.slice(-300)}`);
  t.same(noPid((lc.json[0]?.items ?? []) as Row[]), fromCore, `lldb on the core: ${lc.stderr.slice(-300)}`);
  t.match(await stop(), /^\d+\n$/, 'and the handler finished when told, never stopped by the recording');
  const idle = path.join(dir, 'idle.folded');
  t.equal((await xsample(['record', '--pid', String(nginx.workerPid), '--struct', 'lua_stacks', '--rate', '100', '--duration', '1', '--format', 'folded', '-o', idle])).code, 0);
  t.equal(fs.readFileSync(idle, 'utf8').trim(), '', 'a worker that runs no Lua weighs nothing');
});

t.test('lua_backtrace (lbt): the Lua stack of a worker blocked in C called from Lua, live and on a core, in xsample, gdb and lldb', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const read = async (): Promise<Row> => ((await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_backtrace', '--json'])).json.items as Row[])[0];
  const idle = await read();
  t.same([idle.coroutine, idle.backtrace], ['0x0', []], 'a worker waiting for events runs no Lua: no coroutine, no frames');
  // /lua/blocked (test/lib/nginx.ts): the chunk calls wait() on its line 5, wait() (defined on line 2) calls
  // os.execute() on line 3, which blocks in C until the test writes a byte to the FIFO it names.
  const chunk = chunkOf(nginx, '/lua/blocked');
  const fifo = path.join(dir, 'blocked.fifo');
  await execa('mkfifo', [fifo]);
  const done = fetch(`http://127.0.0.1:${nginx.port}/lua/blocked?fifo=${fifo}`).then((r) => r.text());
  let live: Row = idle;
  await waitUntil('the handler is blocked in os.execute', async () => ((live = await read()).backtrace as string[]).length > 0);
  const want = [`${chunk}:3: in function 'wait'`, `${chunk}:5: in main chunk`];
  t.same(live.backtrace, want, 'the frames, youngest first, as Lua writes a traceback');
  t.equal(live.vm, 'C', 'in C called from Lua');
  const prefix = path.join(dir, 'blocked');
  await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
  fs.writeFileSync(fifo, 'x');
  t.equal(await done, 'done\n', 'the handler goes on once the FIFO is written');
  const core = `${prefix}.${nginx.workerPid}`;
  t.same(noPid((await xsample(['--core', core, '--struct', 'lua_backtrace', '--json'])).json.items as Row[]), noPid([live]), 'xsample on the core');
  const g = await gdb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lbt --json']);
  const l = await lldb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lbt --json']);
  t.same(noPid((g.json[0]?.items ?? []) as Row[]), noPid([live]), `gdb's lbt on the core: ${g.stderr.slice(-300)}`);
  t.same(noPid((l.json[0]?.items ?? []) as Row[]), noPid([live]), `lldb's lbt on the core: ${l.stderr.slice(-300)}`);
});

t.test('lua_stacks with the JIT off: the interpreter\'s frames from its BASE register in perf-event samples of the live worker, in the same split', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const { chunk, stop } = await burn(t, nginx, 'off');
  const weights = await recordUntil200(t, nginx.workerPid, path.join(dir, 'interpreted.folded'));
  const { all, heavy, light } = shares(weights, chunk);
  t.ok(all >= 200, `200 samples saw the handler run (${all})`);
  t.ok([...weights.keys()].every((s) => s.startsWith(`pid ${nginx.workerPid};vm interpreted;lua ${chunk} main chunk`) || s.startsWith(`pid ${nginx.workerPid};vm C;lua ${chunk} main chunk`)), `all in the interpreter, or in C (io.open), under the chunk: ${[...weights.keys()].join(' | ')}`);
  // A sample without a fresh register sample is partial and left out: every one drawn has the frames.
  t.ok(heavy + light >= 0.95 * all, `the samples drawn have the interpreter's frames, in heavy or light (${heavy + light} of ${all})`);
  const share = heavy / (heavy + light);
  t.ok(Math.abs(share - 0.75) <= 0.12, `heavy's share is ${share.toFixed(3)}, about 3/4 as in JIT code (${heavy} to ${light})`);
  t.ok(weights.has(`pid ${nginx.workerPid};vm interpreted;lua ${chunk} main chunk;lua heavy (${chunk}:2)`), 'a path: the interpreter, the main chunk, then heavy');
  // The VM-state split comes with the recording: in its JSON, the weight under each first frame.
  const j = await xsample(['record', '--pid', String(nginx.workerPid), '--struct', 'lua_stacks', '--rate', '100', '--duration', '1', '--format', 'json']);
  const meta = JSON.parse(j.stdout) as { split: Record<string, number>; total_weight: number };
  t.equal(Object.values(meta.split).reduce((a, b) => a + b, 0), meta.total_weight, `the split adds up to the weight: ${JSON.stringify(meta.split)}`);
  t.ok(meta.split['vm interpreted'] >= 0.8 * meta.total_weight, 'nearly all of it in the interpreter');
  t.match(await stop(), /^\d+\n$/, 'the handler finished when told, never stopped');
});

t.test("the interpreter's frames: from the BASE register, live (perf-event samples) and on a core (xsample, gdb, lldb)", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // /lua/interpreted (test/lib/nginx.ts) turns the JIT off and calls spin() (defined on line 2 of the block)
  // from its main chunk until the file it names exists.
  const chunk = chunkOf(nginx, '/lua/interpreted');
  const stopFile = path.join(dir, 'interpreted.stop');
  t.teardown(() => fs.writeFileSync(stopFile, '')); // a failed assertion must not leave the worker spinning
  const done = fetch(`http://127.0.0.1:${nginx.port}/lua/interpreted?until=${stopFile}`).then((r) => r.text());
  let live: Row = {};
  await waitUntil('the interpreter runs spin()', async () => {
    live = ((await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_stacks', '--json'])).json.items as Row[])[0];
    return live.vm === 'interpreted' && (live.lua as string[]).length > 0;
  });
  t.same(live.lua, [`${chunk} main chunk`, `spin (${chunk}:2)`], "live, from the perf-event sample's registers: spin() under the main chunk");
  // A core stops the worker anywhere: nearly always in spin()'s loop, now and then in io.open(). Take cores until one is in the loop.
  let core = '';
  let fromCore: Row = {};
  for (let i = 0; i < 5 && fromCore.vm !== 'interpreted'; i++) {
    const prefix = path.join(dir, `interpreted-${i}`);
    await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
    core = `${prefix}.${nginx.workerPid}`;
    fromCore = ((await xsample(['--core', core, '--struct', 'lua_stacks', '--json'])).json.items as Row[])[0];
  }
  fs.writeFileSync(stopFile, '');
  t.match(await done, /^\d+\n$/, 'the handler ends when told');
  t.equal(fromCore.vm, 'interpreted', 'a core taken in the interpreter');
  t.same(fromCore.lua, [`${chunk} main chunk`, `spin (${chunk}:2)`], "from the core's registers: spin() under the main chunk");
  const g = await gdb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-stacks --json']);
  const l = await lldb({ core, exe: DEBIAN_NGINX }, 'nginx', ['lua-stacks --json']);
  t.same(noPid((g.json[0]?.items ?? []) as Row[]), noPid([fromCore]), `gdb reads the same registers: ${g.stderr.slice(-300)}`);
  t.same(noPid((l.json[0]?.items ?? []) as Row[]), noPid([fromCore]), `lldb reads the same registers: ${l.stderr.slice(-300)}`);
});

t.test("a LuaJIT build no layout covers (another package, or a security update not yet probed): the Lua views say which, in one line; the others run", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  // A copy of the nginx pack without LuaJIT's layouts, found first (XWALK_PACKS).
  const packs = path.join(dir, 'packs-without-luajit');
  fs.cpSync(path.join(import.meta.dirname, '../packs/nginx'), path.join(packs, 'nginx'), { recursive: true, filter: (src) => !/luajit-/.test(path.basename(src)) });
  const env = { XWALK_PACKS: packs, XDG_CACHE_HOME: path.join(dir, 'cache-without-luajit') };
  const lua = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_vm'], { env });
  t.equal(lua.code, 1, 'the Lua view fails');
  t.match(lua.stderr.trim(), /^xsample: [^\n]*unknown build of libluajit-5\.1\.so\.2: \S+ \(build-id [0-9a-f]{40}\); known builds of nginx's luajit: none\. Add one with: xgen layout --pack nginx --object luajit --for \S+ PROBE-WITH-DEBUG-INFO$/, `in one line, naming the file, its build-id, the builds known and how to add one: ${lua.stderr}`);
  const other = await xsample(['--pid', String(nginx.workerPid), '--struct', 'ngx_connection_totals', '--json'], { env });
  t.equal(other.code, 0, `nginx's own views still run: ${other.stderr}`);
});

t.test('two processes of one nginx build, one with the Lua module and one without: each is read with the layouts of what it maps', async (t) => {
  const withLua = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => withLua.stop());
  const without = await startNginx({ binary: DEBIAN_NGINX });
  t.teardown(() => without.stop());
  const r = await xsample(['--pid', `${withLua.workerPid},${without.workerPid}`, '--struct', 'lua_vm', '--json']);
  const docs = (Array.isArray(r.json) ? r.json : [r.json]) as { pid: number; items: Row[] }[];
  t.ok(Number(docs.find((d) => d.pid === withLua.workerPid)?.items[0]?.gc_bytes) > 0, 'the worker with the module: its VM');
  t.equal(r.stderr.trim(), 'xsample: ngx_http_lua_main_conf_t cannot be read: ngx_http_lua_module.so is not mapped in this process', "the other: not read with the first one's Lua layouts, but said to have none");
});

t.test('a worker without lua-nginx-module: lua_vm says what is missing, in one line, and the other views still run', async (t) => {
  const nginx = await startNginx({ binary: await buildNginx() });
  t.teardown(() => nginx.stop());
  const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_vm']);
  t.not(r.code, 0);
  t.equal(r.stderr.trim(), 'xsample: ngx_http_lua_main_conf_t cannot be read: ngx_http_lua_module.so is not mapped in this process');
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-vm', 'ngx-connection-totals --json']);
  t.match(g.stderr + g.stdout, /ngx_http_lua_main_conf_t cannot be read: ngx_http_lua_module\.so is not mapped in this process/, 'gdb says the same');
  t.equal(g.json[0]?.view, 'ngx_connection_totals', 'and its other commands still run');
});
