/**
 * The redis pack against Debian's redis-server (stripped, its layout from a
 * probe of Debian's source) and our -g build of the same source: every view
 * against what redis says of itself (CLIENT LIST, INFO, DBSIZE, SLOWLOG GET,
 * TYPE) while it is idle; redis_current while its main thread sleeps in
 * DEBUG SLEEP and answers nothing; a keyspace changing under a write load;
 * and gdb, lldb and xsample on a core.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { waitUntil } from './lib/nginx.ts';
import { buildRedis, DEBIAN_REDIS, type Redis, type RespClient, startRedis } from './lib/redis.ts';
import { xsample } from './lib/xsample.ts';
import { ElfFile } from '../core/elf.ts';
import { root } from './lib/walkee.ts';

type Row = Record<string, unknown>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-redis-test-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const view = async (r: Redis, name: string): Promise<Row[]> => {
  const run = await xsample(['--pid', String(r.pid), '--struct', name, '--json']);
  if (run.code !== 0) throw new Error(`xsample --struct ${name}: exit ${run.code}: ${run.stderr}`);
  return run.json.items as Row[];
};
const noPid = (rows: Row[]) => rows.map(({ pid: _, ...rest }) => rest);

/** CLIENT LIST's lines as maps of its fields. */
function clientList(text: string): Map<string, string>[] {
  return text.trim().split('\n').map((line) => new Map(line.split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])));
}

/** INFO's lines as a map of field to value. */
function info(text: string): Map<string, string> {
  return new Map(text.split('\r\n').filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]));
}

/** Keys in three databases, some with expiries, of every type; two named clients, each on a database of its own. */
async function populate(r: Redis): Promise<RespClient[]> {
  for (let i = 0; i < 20; i++) await r.cli('SET', `s${i}`, i % 2 ? `value-${i}` : i - 10); // integers, negative ones too
  for (let i = 0; i < 5; i++) await r.cli('SET', `e${i}`, 'x', 'EX', 1000 + i);
  const named: RespClient[] = [];
  for (const [name, db] of [['alpha', 1], ['beta', 2]] as const) {
    const c = await r.connect();
    await c.send('CLIENT', 'SETNAME', name);
    await c.send('SELECT', db);
    await c.send('RPUSH', `list-${name}`, 'a', 'b');
    await c.send('HSET', `hash-${name}`, 'f', 'v');
    await c.send('SADD', `set-${name}`, 'm');
    await c.send('ZADD', `zset-${name}`, 1, 'm');
    await c.send('XADD', `stream-${name}`, '*', 'f', 'v');
    await c.send('SET', `ex-${name}`, 'v', 'PX', 900000);
    named.push(c);
  }
  return named;
}

t.test("Debian's redis, idle: every view says what redis says of itself", async (t) => {
  const r = await startRedis();
  t.teardown(() => r.stop());
  const named = await populate(r);
  t.teardown(() => named.forEach((c) => c.close()));
  await r.cli('CONFIG', 'SET', 'slowlog-log-slower-than', 0);
  await r.cli('CONFIG', 'SET', 'slowlog-max-len', 100000); // none dropped: SLOWLOG GET is logged once it has run
  const blocker = await r.connect();
  t.teardown(() => blocker.close());
  await blocker.send('CLIENT', 'SETNAME', 'blocker');
  const blocked = blocker.send('BLPOP', 'wanted-1', 'wanted-2', 300);

  // CLIENT LIST from a client that stays (it writes every client's address, which redis keeps from then on).
  const lister = await r.connect();
  t.teardown(() => lister.close());
  let listed: Map<string, string>[] = [];
  // The connections populate() opened and closed are gone once redis has read their ends.
  await waitUntil('CLIENT LIST shows alpha, beta, blocker and the lister', async () => (listed = clientList((await lister.send('CLIENT', 'LIST')) as string)).length === 4);
  const listedAt = Date.now();
  const clients = await view(r, 'redis_clients');
  // The view reads ages some seconds after CLIENT LIST on a busy machine: they may have grown by that much, and a tick.
  const since = Math.ceil((Date.now() - listedAt) / 1000);
  const grewBy = (got: unknown, listedAs: string | undefined) => Number(got) - Number(listedAs) >= -1 && Number(got) - Number(listedAs) <= since + 1;
  t.equal(clients.length, listed.length, `as many clients as CLIENT LIST (${listed.length})`);
  for (const want of listed) {
    const got = clients.find((c) => String(c.id) === want.get('id'));
    t.ok(got, `client ${want.get('id')} (${want.get('name')})`);
    if (!got) continue;
    const same = ['fd', 'addr', 'name', 'db', 'flags'].map((k) => [k, String(got[k]), want.get(k)]);
    const isLister = want.get('cmd') === 'client|list';
    // The lister's own row was written while CLIENT LIST ran; it has finished since (its buffers, its last command).
    if (!isLister) same.push(['cmd', String(got.cmd), want.get('cmd')], ['qbuf', String(got.qbuf), want.get('qbuf')], ['obl', String(got.obl), want.get('obl')], ['oll', String(got.oll), want.get('oll')], ['omem', String(got.omem), want.get('omem')]);
    t.same(Object.fromEntries(same.map(([k, a]) => [k, a])), Object.fromEntries(same.map(([k, , b]) => [k, b])), `client ${want.get('id')}: as CLIENT LIST says`);
    t.ok(grewBy(got.age_s, want.get('age')) && grewBy(got.idle_s, want.get('idle')), `age ${got.age_s} s and idle ${got.idle_s} s, as CLIENT LIST's ${want.get('age')} and ${want.get('idle')} ${since} s before (a second's tick apart)`);
  }

  const keyspace = info((await r.cli('INFO', 'keyspace')) as string);
  const dbs = await view(r, 'redis_keyspace');
  t.same(dbs.map((d) => `db${d.db}:keys=${d.keys},expires=${d.expires}`), [...keyspace].map(([k, v]) => `${k}:${v.replace(/,avg_ttl=.*/, '')}`), 'the databases, their keys and expiries, as INFO keyspace');
  for (const d of dbs) {
    const c = await r.connect();
    await c.send('SELECT', Number(d.db));
    t.equal(d.keys, await c.send('DBSIZE'), `db ${d.db}: DBSIZE`);
    c.close();
  }

  const before = info((await r.cli('INFO', 'memory')) as string);
  const [mem] = await view(r, 'redis_memory');
  const after = info((await r.cli('INFO', 'memory')) as string);
  t.equal(mem.startup, Number(before.get('used_memory_startup')), 'used_memory_startup');
  t.ok(Number(before.get('used_memory_peak')) <= Number(mem.peak) && Number(mem.peak) <= Number(after.get('used_memory_peak')), `the peak (${mem.peak}) between INFO's before and after`);
  t.ok(Number(mem.rss) > 0 && Number(mem.used_memory) > 0, 'rss and used memory as serverCron last sampled them');
  const bounded = await xsample(['--pid', String(r.pid), '--struct', 'redis_memory', '--max-nodes', '10', '--json']);
  t.equal(bounded.code, 3, 'a walk of the keyspace past --max-nodes is partial');
  t.match(JSON.stringify(bounded.json.errors), /max-nodes/, 'and says so');
  const types = new Map<string, number>();
  for (const db of [0, 1, 2]) {
    const c = await r.connect();
    await c.send('SELECT', db);
    for (const key of ((await c.send('KEYS', '*')) as string[])) {
      const type = (await c.send('TYPE', key)) as string;
      types.set(type, (types.get(type) ?? 0) + 1);
    }
    c.close();
  }
  t.same(
    { strings: mem.strings, lists: mem.lists, sets: mem.sets, zsets: mem.zsets, hashes: mem.hashes, streams: mem.streams },
    { strings: types.get('string'), lists: types.get('list'), sets: types.get('set'), zsets: types.get('zset'), hashes: types.get('hash'), streams: types.get('stream') },
    'values by type, as TYPE says of every key',
  );

  const slowlog = (await r.cli('SLOWLOG', 'GET', 1000)) as [number, number, number, string[], string, string][];
  const entries = (await view(r, 'redis_slowlog')).filter((e) => Number(e.id) <= slowlog[0][0]);
  t.same(
    entries.map((e) => [e.id, e.time, e.duration_us, e.args, e.addr, e.name]),
    slowlog.map(([id, time, us, args, addr, name]) => [id, time, us, args, addr, name]),
    `the slow log as SLOWLOG GET (${slowlog.length} entries; the SLOWLOG GET itself is logged after it ran)`,
  );

  const blockedRows = await view(r, 'redis_blocked');
  const infoClients = info((await r.cli('INFO', 'clients')) as string);
  t.equal(blockedRows.length, Number(infoClients.get('blocked_clients')), 'as many blocked clients as INFO');
  t.same(blockedRows.map((b) => [b.name, b.cmd, b.on, [...(b.keys as string[])].sort()]), [['blocker', 'blpop', 'list', ['wanted-1', 'wanted-2']]], 'the BLPOP client, on its two keys');
  t.ok(Math.abs(Number(blockedRows[0]?.timeout_ms) - (Date.now() + 300_000)) < 30_000, 'timing out in about 300 s');
  await r.cli('RPUSH', 'wanted-2', 'here');
  t.same(await blocked, ['wanted-2', 'here'], 'and it gets its value');
  t.same(await view(r, 'redis_current'), [], 'an idle redis runs no command');
});

t.test('redis_current: while DEBUG SLEEP holds the main thread and PING gets no answer, xsample names the command, its client and its running time', async (t) => {
  const r = await startRedis();
  t.teardown(() => r.stop());
  const sleeper = await r.connect();
  t.teardown(() => sleeper.close());
  await sleeper.send('CLIENT', 'SETNAME', 'sleeper');
  await r.cli('CLIENT', 'LIST'); // redis writes the clients' addresses
  const sent = Date.now();
  // Long enough for the reads below on a busy host (xsample has taken 3 s a run with a load of 12 on 2 CPUs); the test waits for it to end.
  const slept = sleeper.send('DEBUG', 'SLEEP', 12);
  let pongAt: number | undefined;
  const pinger = await r.connect();
  t.teardown(() => pinger.close());
  const pong = pinger.send('PING').then((x) => ((pongAt = Date.now()), x));
  /** Two samples of redis_current 300 ms apart in one run (one start-up), bracketed by the test's own clock. */
  const twice = async () => {
    const before = Date.now();
    const run = await xsample(['--pid', String(r.pid), '--struct', 'redis_current', '--interval', '300', '--count', '2', '--json']);
    if (run.code !== 0) throw new Error(`xsample --struct redis_current: exit ${run.code}: ${run.stderr}`);
    const after = Date.now();
    return (run.json as { clock: { now_ms: number }; items: Row[] }[]).map((d) => ({ before, after, now: Number(d.clock?.now_ms), rows: d.items }));
  };
  let samples: Awaited<ReturnType<typeof twice>> = [];
  await waitUntil('both samples see DEBUG SLEEP', async () => (samples = await twice()).length === 2 && samples.every((x) => x.rows.length === 1));
  const [first, second] = samples;
  const row = second.rows[0];
  t.ok(pongAt === undefined || pongAt > second.now, 'PING is not answered while redis sleeps');
  t.same([row.name, row.cmd, row.args, row.argc], ['sleeper', 'debug', ['DEBUG', 'SLEEP', '12'], 3], 'the command, its arguments and its client');
  t.equal(row.id, first.rows[0].id, 'the same client both times');
  // Each sample's moment lies within the test's own bracket of the run; the running time grows with the clock.
  for (const x of samples) t.ok(x.now >= x.before - 2 && x.now <= x.after + 2, `sampled at ${x.now - sent} ms, between ${x.before - sent} and ${x.after - sent} ms by the test's clock`);
  const grew = Number(row.running_ms) - Number(first.rows[0].running_ms);
  const between = second.now - first.now;
  t.ok(between >= 300 - 2, `the samples are ${between} ms apart (--interval 300)`);
  t.ok(Math.abs(grew - between) <= 2, `the running time grew by ${grew} ms between two reads ${between} ms apart: not frozen`);
  t.ok(Number(first.rows[0].running_ms) >= 0 && Number(row.running_ms) <= second.after - sent + 2, `and it is not longer (${row.running_ms} ms) than since the command was sent (${second.after - sent} ms)`);
  t.equal(await slept, 'OK', 'DEBUG SLEEP ends');
  t.equal(await pong, 'PONG', 'then PING is answered');
  t.same(await view(r, 'redis_current'), [], 'and redis is idle again');
});

t.test('redis_current in a busy EVAL: the script while it runs; partial, with the reason, once redis answers BUSY', async (t) => {
  const r = await startRedis({ args: ['--busy-reply-threshold', '1000'] });
  t.teardown(() => r.stop());
  const caller = await r.connect();
  t.teardown(() => caller.close());
  await caller.send('CLIENT', 'SETNAME', 'scripter');
  const script = 'local n = 0 while true do n = n + 1 end';
  const evaluated = caller.send('EVAL', script, 0);
  // On a busy host the first sample may come after busy-reply-threshold: partial then (exit 3), its row still names the script.
  let row: Row | undefined;
  await waitUntil('redis runs the script', async () => {
    const run = await xsample(['--pid', String(r.pid), '--struct', 'redis_current', '--json']);
    if (run.code !== 0 && run.code !== 3) throw new Error(`xsample --struct redis_current: exit ${run.code}: ${run.stderr}`);
    return (row = (run.json.items as Row[])[0]) !== undefined;
  });
  t.same([row?.name, row?.cmd, row?.args], ['scripter', 'eval', ['EVAL', script, '0']], 'the EVAL, its script and its client');
  // Past busy-reply-threshold redis serves other clients between script instructions, with BUSY errors.
  const other = await r.connect();
  t.teardown(() => other.close());
  await waitUntil('redis answers BUSY', async () => /^BUSY/.test(String(((await other.send('PING')) as Error).message ?? '')));
  const busy = await xsample(['--pid', String(r.pid), '--struct', 'redis_current', '--json']);
  t.equal(busy.code, 3, 'then the sample is partial');
  t.match(JSON.stringify(busy.json.errors), /busy-reply-threshold/, 'and says why: its running time no longer counts from the start');
  t.equal(await other.send('SCRIPT', 'KILL'), 'OK', 'SCRIPT KILL');
  t.match(String((await evaluated as Error).message), /killed/i, 'the script ends, killed');
});

t.test('under a write load: each sample is complete and consistent, or partial with a reason', async (t) => {
  const r = await startRedis();
  t.teardown(() => r.stop());
  const writer = await r.connect();
  t.teardown(() => writer.close());
  let stop = false;
  let written = 0;
  // One client writing without pause: new keys, replaced values, deletions, over a keyspace of 2000 keys.
  const load = (async () => {
    for (let i = 0; !stop; i++) {
      const batch = Array.from({ length: 20 }, (_, j) => writer.send('SET', `k${(i * 20 + j) % 2000}`, `v${i}`));
      if (i % 5 === 0) batch.push(writer.send('DEL', `k${(i * 37) % 2000}`));
      await Promise.all(batch);
      written += batch.length;
    }
  })();
  const tally = { keyspace: [0, 0], memory: [0, 0] };
  for (let i = 0; i < 20; i++) {
    for (const [name, key] of [['redis_keyspace', 'keyspace'], ['redis_memory', 'memory']] as const) {
      const run = await xsample(['--pid', String(r.pid), '--struct', name, '--json']);
      t.ok(run.code === 0 || run.code === 3, `${name}: complete (0) or partial (3), nothing else: ${run.code} ${run.stderr.slice(-200)}`);
      if (run.json?.partial) {
        tally[key][1]++;
        t.ok(run.json.errors.length > 0 && run.code === 3, `${name}: a partial sample says why (exit 3): ${JSON.stringify(run.json.errors[0])}`);
        continue;
      }
      tally[key][0]++;
      const row = run.json?.items?.[0] as Row | undefined;
      if (key === 'memory') t.ok(row && row.keys === row.dict_keys, `sample ${i}: the keys walked (${row?.keys}) are the dicts' own count`);
      else t.ok(row && Number(row.keys) > 0 && Number(row.keys) <= 2000 && row.db === 0, `sample ${i}: db 0 holds ${row?.keys} keys, of the 2000 written`);
    }
  }
  stop = true;
  await load;
  t.ok(written > 1000, `the load ran (${written} commands)`);
  t.ok(tally.keyspace[0] > 0, `keyspace: ${tally.keyspace[0]} complete samples, ${tally.keyspace[1]} partial`);
  t.comment(`memory (a walk of every key): ${tally.memory[0]} complete samples, ${tally.memory[1]} partial`);
  // Under the load every walk of the whole keyspace may be partial: the consistency check above may not have run.
  // Once the writer stops it must run, against DBSIZE as well.
  const still = await xsample(['--pid', String(r.pid), '--struct', 'redis_memory', '--json']);
  t.equal(still.code, 0, `redis_memory after the load: complete ${still.stderr.slice(-200)}`);
  const row = still.json.items[0] as Row;
  const dbsize = await writer.send('DBSIZE');
  t.ok(typeof dbsize === 'number' && dbsize > 0, `db 0 holds ${dbsize} keys`);
  t.same([row.keys, row.dict_keys], [dbsize, dbsize], `the keys walked and the dicts' own count are DBSIZE (${dbsize})`);
});

t.test('on a core: xsample, gdb and lldb agree, and gdb reads the same fields by name from our -g build', async (t) => {
  for (const binary of [DEBIAN_REDIS, await buildRedis()]) {
    const r = await startRedis({ binary });
    t.teardown(() => r.stop());
    await populate(r).then((cs) => t.teardown(() => cs.forEach((c) => c.close())));
    const sleeper = await r.connect();
    t.teardown(() => sleeper.close());
    await sleeper.send('CLIENT', 'SETNAME', 'sleeper');
    await r.cli('CLIENT', 'LIST');
    // Long enough for gcore to start on a busy host; redis is stopped, not waited for.
    void sleeper.send('DEBUG', 'SLEEP', 30);
    await waitUntil('redis runs DEBUG SLEEP', async () => (await view(r, 'redis_current')).length === 1);
    const prefix = path.join(dir, `redis-${path.basename(path.dirname(binary))}`);
    await execa('gcore', ['-o', prefix, String(r.pid)], { stdio: 'ignore' });
    const core = `${prefix}.${r.pid}`;
    const exe = fs.realpathSync(binary);
    for (const name of ['redis_current', 'redis_clients', 'redis_keyspace', 'redis_slowlog']) {
      const x = await xsample(['--core', core, '--struct', name, '--json']);
      const rows = noPid(x.json.items as Row[]);
      if (name === 'redis_current') t.same(rows.map((c) => [c.name, c.cmd, c.args]), [['sleeper', 'debug', ['DEBUG', 'SLEEP', '30']]], `${binary}: the core was taken in DEBUG SLEEP`);
      const command = name.replace(/_/g, '-');
      const g = await gdb({ core, exe }, 'redis', [`${command} --json`]);
      const l = await lldb({ core, exe }, 'redis', [`${command} --json`]);
      t.same(noPid((g.json[0]?.items ?? []) as Row[]), rows, `${binary}: gdb's ${command} on the core: ${g.stderr.slice(-300)}`);
      t.same(noPid((l.json[0]?.items ?? []) as Row[]), rows, `${binary}: lldb's ${command} on the core: ${l.stderr.slice(-300)}`);
    }
    if (binary !== DEBIAN_REDIS) {
      // Our build has DWARF: gdb evaluates C expressions by name, a read independent of the pack's layouts.
      const byName = await execa('gdb', ['-batch', '-nx', exe, core, '-ex', 'print server.current_client->id', '-ex', 'print server.clients->len', '-ex', 'print server.db[1].dict->ht_used[0] + server.db[1].dict->ht_used[1]'], { reject: false });
      const values = [...byName.stdout.matchAll(/^\$\d+ = (\d+)$/gm)].map((m) => Number(m[1]));
      const current = noPid((await xsample(['--core', core, '--struct', 'redis_current', '--json'])).json.items as Row[]);
      const clients = (await xsample(['--core', core, '--struct', 'redis_clients', '--json'])).json.items as Row[];
      const dbs = (await xsample(['--core', core, '--struct', 'redis_keyspace', '--json'])).json.items as Row[];
      t.same(values, [current[0].id, clients.length, dbs.find((d) => d.db === 1)?.keys], `gdb by name: the current client's id, the clients, db 1's keys (${byName.stderr.slice(-200)})`);
    }
  }
});

t.test("an unknown stripped build of redis is refused in one line that lists the builds the pack knows", async (t) => {
  // Debian's redis-server with another build-id: a newer point release, as far as xsample can tell.
  const elf = ElfFile.open(DEBIAN_REDIS);
  const id = elf.buildId();
  elf.close();
  t.ok(id, `${DEBIAN_REDIS} has a build-id`);
  if (!id) return;
  const bytes = fs.readFileSync(DEBIAN_REDIS);
  const old = Buffer.from(id, 'hex');
  t.equal(bytes.indexOf(old), bytes.lastIndexOf(old), 'its build-id bytes occur once, in the note');
  const other = Buffer.from(old.map((b) => b ^ 0xff));
  other.copy(bytes, bytes.indexOf(old));
  const copy = path.join(dir, 'redis-server');
  fs.writeFileSync(copy, bytes, { mode: 0o755 });
  const copied = ElfFile.open(copy);
  t.equal(copied.buildId(), other.toString('hex'), 'the copy has another build-id');
  copied.close();
  const r = await startRedis({ binary: copy });
  t.teardown(() => r.stop());
  t.equal(await r.cli('PING'), 'PONG', 'and runs');
  // What the pack knows: its committed layouts (each keyed by a build-id); an empty cache, so nothing else.
  const packDir = path.join(root, 'packs/redis');
  const known = fs.readdirSync(packDir).filter((d) => fs.statSync(path.join(packDir, d)).isDirectory())
    .flatMap((release) => fs.readdirSync(path.join(packDir, release)).filter((f) => f.endsWith('.json')).map((f) => ({ release, id: JSON.parse(fs.readFileSync(path.join(packDir, release, f), 'utf8')).build_id as string })));
  t.ok(known.length > 0, `the pack knows ${known.length} builds`);
  const cache = fs.mkdtempSync(path.join(dir, 'cache-'));
  const x = await xsample(['--pid', String(r.pid), '--struct', 'redis_current', '--json'], { env: { XDG_CACHE_HOME: cache } });
  t.equal(x.code, 1, 'exit 1');
  t.equal(x.stdout, '', 'no answer printed');
  const lines = x.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${x.stderr}`);
  t.match(lines[0], new RegExp(`unknown build of redis .*${other.toString('hex')}.*stripped`), 'it names the build and says it is stripped');
  for (const k of known) t.ok(lines[0].includes(k.release) && lines[0].includes(k.id.slice(0, 12)), `it lists the known build ${k.release} ${k.id.slice(0, 12)}`);
  t.match(lines[0], /xgen layout/, 'and says how to add one');
});
