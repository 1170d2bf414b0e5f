/**
 * The memcached pack against Debian's stripped /usr/bin/memcached, whose .dynsym names none of the globals the
 * pack reads: with a recovered symbol table (xgen symbols, or the rebuild of Debian's source) xsample, the gdb
 * extension and the lldb-16 extension read memcached_stats, and every figure equals memcached's own `stats` of the
 * same moment; without one, each says in one line which object is stripped and what to run.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { gcore } from './lib/core-craft.ts';
import { gdb, lldb } from './lib/debuggers.ts';
import { DEBIAN_MEMCACHED, type McClient, McClient as Client, type Memcached, recoverMemcachedSymbols, startMemcached, stats, SYMBOLS_BUILDS } from './lib/memcached.ts';
import { root } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

// On a clean clone the rebuilds are made first (minutes each, one at a time under /tmp/xwalk-build.lock, maybe behind
// other tests' builds).
t.setTimeout(60 * 60 * 1000);

type Row = Record<string, unknown>;

if (!fs.existsSync(DEBIAN_MEMCACHED)) {
  t.plan(0, `${DEBIAN_MEMCACHED} is not installed (make deps installs Debian's memcached)`);
  process.exit(0);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-memcached-test-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
// XDG_CACHE_HOME of a user with a recovered table, and of one without.
const withTable = path.join(dir, 'cache');
const noTable = path.join(dir, 'empty');
fs.mkdirSync(noTable, { mode: 0o700 });

/** Known traffic: stores, hits, misses, deletes, incr/decr, touches, a cas of each kind. */
async function traffic(t: Test, c: McClient): Promise<void> {
  for (let i = 0; i < 6; i++) t.equal(await c.line(`set key${i} 0 0 ${`value-${i}`.length}\r\nvalue-${i}\r\n`), 'STORED\r\n');
  await c.listing('get key0\r\n');
  await c.listing('get key1 key2 nosuch1\r\n');
  await c.listing('get nosuch2\r\n');
  t.equal(await c.line('delete key5\r\n'), 'DELETED\r\n');
  t.equal(await c.line('delete nosuch3\r\n'), 'NOT_FOUND\r\n');
  t.equal(await c.line('set n 0 0 2\r\n10\r\n'), 'STORED\r\n');
  t.equal(await c.line('incr n 5\r\n'), '15\r\n');
  t.equal(await c.line('decr n 1\r\n'), '14\r\n');
  t.equal(await c.line('incr nosuch4 1\r\n'), 'NOT_FOUND\r\n');
  t.equal(await c.line('touch key0 100\r\n'), 'TOUCHED\r\n');
  t.equal(await c.line('touch nosuch5 100\r\n'), 'NOT_FOUND\r\n');
  const cas = /VALUE key1 0 7 (\d+)/.exec(await c.listing('gets key1\r\n'))![1];
  t.equal(await c.line(`cas key1 0 0 1 ${cas}\r\nx\r\n`), 'STORED\r\n');
  t.equal(await c.line(`cas key1 0 0 1 ${cas}\r\ny\r\n`), 'EXISTS\r\n');
  t.equal(await c.line(`cas nosuch6 0 0 1 1\r\nz\r\n`), 'NOT_FOUND\r\n');
}

/** The one row of memcached_stats, without what names where it was read. */
const figures = (doc: Row | undefined): Row => {
  const items = (doc?.items ?? []) as Row[];
  const { pid: _pid, origin: _origin, ...rest } = items[0] ?? {};
  return rest;
};

t.test("Debian's stripped memcached: every figure of memcached_stats equals its own stats, in xsample, gdb and lldb", async (t) => {
  await recoverMemcachedSymbols(withTable);
  const mc: Memcached = await startMemcached();
  t.teardown(() => mc.stop());
  const c = await Client.connect(mc.port);
  t.teardown(() => c.close());
  await traffic(t, c);

  // memcached is idle between the two stats: only the stats commands move its byte counters.
  const before = await stats(c);
  const env = { XDG_CACHE_HOME: withTable };
  const run = await xsample(['--pid', String(mc.pid), '--struct', 'memcached_stats', '--json'], { env });
  const inGdb = await gdb({ pid: mc.pid }, 'memcached', ['memcached-stats --json'], { env });
  const inLldb = await lldb({ pid: mc.pid }, 'memcached', ['memcached-stats --json'], { env });
  const after = await stats(c);

  const s = before.values;
  // Figures of the view only: memcached's LRU maintainer moves others (moves_to_cold, lru_maintainer_juggles) on its own.
  for (const k of Object.keys(figures(run.json))) {
    if (k === 'bytes_read' || k === 'bytes_written') continue;
    t.equal(after.values.get(k), s.get(k), `stats ${k} did not move while the readers read`);
  }
  t.equal(Number(after.values.get('bytes_read')), Number(s.get('bytes_read')) + 'stats\r\n'.length, 'only the second stats was read meanwhile');
  t.equal(Number(after.values.get('bytes_written')), Number(s.get('bytes_written')) + Buffer.byteLength(before.text, 'latin1'), 'only the first reply was written');
  // What the traffic did, as memcached counts it: its stats are the truth the readers are held to.
  t.match(Object.fromEntries(s), { cmd_get: '6', get_hits: '4', get_misses: '2', cmd_set: '10', delete_hits: '1', delete_misses: '1', incr_hits: '1', incr_misses: '1', decr_hits: '1', touch_hits: '1', touch_misses: '1', cas_hits: '1', cas_badval: '1', cas_misses: '1', curr_items: '6', curr_connections: '1' });

  t.equal(run.code, 0, run.stderr);
  t.notMatch(run.stderr + inGdb.stdout + inGdb.stderr + inLldb.stdout + inLldb.stderr, /not in the binary's symbol tables/, 'every global found');
  const readers: [string, Row | undefined][] = [['xsample', run.json], ['gdb', inGdb.json[0]], ['lldb', inLldb.json[0]]];
  for (const [who, doc] of readers) equalsStats(t, who, doc, before);
});

/** Every figure a reader read equals memcached's own stats, taken just before it read (the reply to that stats is written by then). */
function equalsStats(t: Test, who: string, doc: Row | undefined, before: Awaited<ReturnType<typeof stats>>): void {
  t.equal(doc?.partial, false, `${who}: complete`);
  const row = figures(doc);
  t.ok(Object.keys(row).length >= 40, `${who}: a row of every figure`);
  const s = before.values;
  for (const [k, v] of Object.entries(row)) {
    const expected = k === 'bytes_written' ? Number(s.get(k)) + Buffer.byteLength(before.text, 'latin1') : Number(s.get(k));
    t.equal(v, expected, `${who}: ${k} is memcached's ${k} (${s.get(k)})`);
  }
}

t.test("on a core of Debian's memcached, xsample, gdb and lldb read what the live process showed", async (t) => {
  await recoverMemcachedSymbols(withTable);
  const mc = await startMemcached();
  t.teardown(() => mc.stop());
  const c = await Client.connect(mc.port);
  t.teardown(() => c.close());
  await traffic(t, c);
  const env = { XDG_CACHE_HOME: withTable };
  const live = await xsample(['--pid', String(mc.pid), '--struct', 'memcached_stats', '--json'], { env });
  const core = await gcore(mc.pid, dir);
  const x = await xsample(['--core', core, '--struct', 'memcached_stats', '--json'], { env });
  t.equal(x.code, 0, x.stderr);
  t.same(figures(x.json), figures(live.json), 'xsample on the core');
  const where = { core, exe: DEBIAN_MEMCACHED };
  const inGdb = await gdb(where, 'memcached', ['memcached-stats --json'], { env });
  t.same(figures(inGdb.json[0]), figures(live.json), 'gdb on the core');
  const inLldb = await lldb(where, 'memcached', ['memcached-stats --json'], { env });
  t.same(figures(inLldb.json[0]), figures(live.json), 'lldb on the core');
});

t.test("without a recovered table each reader names the stripped memcached and the command to run", async (t) => {
  const mc = await startMemcached();
  t.teardown(() => mc.stop());
  const env = { XDG_CACHE_HOME: noTable };
  const why = /the symbol \w+ is not in the binary's symbol tables: \/usr\/bin\/memcached is stripped and no recovered symbol table is found for it \(build-id [0-9a-f]+\): run `xgen symbols --for \/usr\/bin\/memcached`/;
  const run = await xsample(['--pid', String(mc.pid), '--struct', 'memcached_stats', ...(await noFetch())], { env });
  t.equal(run.code, 3, 'a partial result');
  t.match(run.stderr, why);
  t.equal(run.stderr.split('\n').filter((l) => why.test(l)).length, 1, 'one line says it');
  // XWALK_NO_FETCH: an xgen on the PATH must not recover the table here.
  const inGdb = await gdb({ pid: mc.pid }, 'memcached', ['memcached-stats'], { env: { ...env, XWALK_NO_FETCH: '1' } });
  t.match(inGdb.stdout + inGdb.stderr, why, 'gdb says the same');
  const inLldb = await lldb({ pid: mc.pid }, 'memcached', ['memcached-stats'], { env: { ...env, XWALK_NO_FETCH: '1' } });
  t.match(inLldb.stdout + inLldb.stderr, why, 'lldb says the same');
});

t.test('with xgen on the PATH, the gdb and lldb extensions recover the table themselves, as xsample does', async (t) => {
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.writeFileSync(path.join(bin, 'xgen'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(path.join(root, 'dist/xgen.js'))} "$@"\n`, { mode: 0o755 });
  await recoverMemcachedSymbols(withTable);
  const mc = await startMemcached();
  t.teardown(() => mc.stop());
  const c = await Client.connect(mc.port);
  t.teardown(() => c.close());
  await traffic(t, c);
  for (const [name, read] of [['gdb', gdb], ['lldb', lldb]] as const) {
    const home = path.join(dir, `auto-${name}`);
    const env = { XDG_CACHE_HOME: home, PATH: `${bin}:${process.env.PATH}`, XWALK_SYMBOLS_BUILDS: SYMBOLS_BUILDS };
    const before = await stats(c);
    const r = await read({ pid: mc.pid }, 'memcached', ['memcached-stats --json'], { env });
    t.match(r.stderr, /xwalk: \/usr\/bin\/memcached is stripped: recovering its symbols \(xgen symbols --for \/usr\/bin\/memcached; XWALK_NO_FETCH=1 to skip\)/, `${name}: one line says what it does`);
    t.match(r.stderr, /xwalk: wrote .*\/xwalk\/symbols\/[0-9a-f]+\.json/, `${name}: xgen's own lines follow`);
    equalsStats(t, `${name} after recovering the table itself`, r.json[0], before);
  }
});

t.test('a table that names another build is refused with one line naming the file and both ids', async (t) => {
  const home = path.join(dir, 'wrong');
  const good = await recoverMemcachedSymbols(path.join(dir, 'cache'));
  const table = JSON.parse(fs.readFileSync(good, 'utf8'));
  const id = table.build_id as string;
  table.build_id = 'ab'.repeat(20);
  const folder = path.join(home, 'xwalk', 'symbols');
  fs.mkdirSync(folder, { recursive: true, mode: 0o700 });
  for (const d of [home, path.join(home, 'xwalk'), folder]) fs.chmodSync(d, 0o700);
  const file = path.join(folder, `${id}.json`);
  fs.writeFileSync(file, JSON.stringify(table), { mode: 0o600 });
  const mc = await startMemcached();
  t.teardown(() => mc.stop());
  const env = { XDG_CACHE_HOME: home };
  const refused = `ignoring ${file}: it names build-id ${table.build_id}, the object's is ${id}`;
  const run = await xsample(['--pid', String(mc.pid), '--struct', 'memcached_stats', ...(await noFetch())], { env });
  t.equal(run.stderr.split('\n').filter((l) => l.includes(refused)).length, 1, `xsample: ${refused}`);
  t.match(run.stderr, /\/usr\/bin\/memcached is stripped and no recovered symbol table is found/);
  const inGdb = await gdb({ pid: mc.pid }, 'memcached', ['memcached-stats'], { env });
  t.match(inGdb.stderr + inGdb.stdout, refused, 'gdb refuses it too');
  t.match(inGdb.stderr + inGdb.stdout, /\/usr\/bin\/memcached is stripped and no recovered symbol table is found/);
});

/** --no-fetch where xsample has it (part symtab's automatic step): a missing table is not made here. */
async function noFetch(): Promise<string[]> {
  const help = await xsample(['--help']);
  return /--no-fetch/.test(help.stdout + help.stderr) ? ['--no-fetch'] : [];
}

/** Runs fn with env set in this process's environment (the debugger helpers pass theirs on), then puts it back. */
