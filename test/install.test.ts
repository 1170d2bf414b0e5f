/**
 * xwalk installed the way Node tools are: `npm pack` of this checkout, then
 * `npm install -g` of that tarball into a new prefix, used from another
 * folder with no checkout: xsample and xgen answer --version, xsample reads
 * walkee's pools, and `xgen layout --for /usr/bin/redis-server` probes
 * Debian's redis (its source fetched and compiled by the shipped probe) for
 * an installed package whose committed redis layout was taken away, so that
 * only the probed layout can serve it, checked against redis's own INFO;
 * and `xgen symbols --for /usr/bin/memcached` recovers the names Debian's
 * stripped memcached lacks, so that the installed xsample reads its stats.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ElfFile } from '../core/elf.ts';
import { DEBIAN_MEMCACHED, McClient, SYMBOLS_BUILDS, startMemcached, stats } from './lib/memcached.ts';
import { DEBIAN_REDIS, startRedis } from './lib/redis.ts';
import { root, startWalkee } from './lib/walkee.ts';

const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
const language = /^xwalk: (\d+)$/m.exec(fs.readFileSync(path.join(root, 'packs/walkee/schema.yaml'), 'utf8'))![1];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-install-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const prefix = path.join(dir, 'prefix');
const elsewhere = path.join(dir, 'elsewhere'); // the cwd of every command: no checkout above it
fs.mkdirSync(elsewhere);
const bin = (name: string) => path.join(prefix, 'bin', name);
// A user's environment (tap's own instrumentation left out), with a cache of its own.
const userEnv = (extra: Record<string, string> = {}) => ({ PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', XDG_CACHE_HOME: path.join(dir, 'cache'), ...extra });
const run = (file: string, args: string[], env: Record<string, string> = {}) =>
  execa(file, args, { cwd: elsewhere, env: userEnv(env), extendEnv: false, reject: false, timeout: 600_000, stdin: 'ignore' });

const tracked = async () => (await execa('git', ['status', '--porcelain'], { cwd: root })).stdout;

t.test('npm pack, then npm install -g of the tarball into a new prefix: xsample and xgen work from another folder', async (t) => {
  const before = await tracked();
  const started = Date.now();
  const pack = await execa('npm', ['pack', '--pack-destination', dir, '--json'], { cwd: root, reject: false });
  t.equal(pack.exitCode, 0, String(pack.stderr));
  const tarball = path.join(dir, (JSON.parse(pack.stdout) as { filename: string }[])[0].filename);
  t.equal(await tracked(), before, 'npm pack wrote nothing into the checkout');
  t.comment(`tarball ${path.basename(tarball)}: ${(fs.statSync(tarball).size / 1024).toFixed(0)} KiB, packed in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const t0 = Date.now();
  // The addons build on install (npm's own node-gyp); execa, the one dependency left outside the bundles, from the npm cache if it is there.
  const install = await execa('npm', ['install', '-g', tarball, '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund'], { cwd: elsewhere, reject: false, timeout: 600_000 });
  t.equal(install.exitCode, 0, `${install.stdout}\n${install.stderr}`);
  t.comment(`npm install -g: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const installed = path.join(prefix, 'lib/node_modules/xwalk');
  for (const addon of ['xwalk_pvr', 'xwalk_perf', 'xwalk_bpf', 'xwalk_perf_stacks']) {
    t.ok(fs.existsSync(path.join(installed, 'sampler/native/build/Release', `${addon}.node`)), `the ${addon} addon was built on install`);
  }
  t.equal(await tracked(), before, 'installing wrote nothing into the checkout');

  for (const name of ['xsample', 'xgen']) {
    const v = await run(bin(name), ['--version']);
    t.equal(v.exitCode, 0, String(v.stderr));
    t.equal(v.stdout, `${name} ${pkg.version} (schema language ${language})`, `${name} --version: the package's version and the schema language's`);
  }

  // A view of a live walkee, read through the installed bundle's addon, packs and layout derivation.
  const w = await startWalkee(['--nodes', '100']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const pools = await run(bin('xsample'), ['--pid', String(w.child.pid), '--struct', 'ngx_pool', '--json']);
  t.equal(pools.exitCode, 0, String(pools.stderr));
  const items = (JSON.parse(pools.stdout) as { items: { addr: string; used: number }[] }).items;
  const rows = (ps: { addr: string; used: number }[]) => ps.map((p) => `${BigInt(p.addr).toString(16)} used ${p.used}`).sort();
  t.same(
    rows(items),
    rows(truth.pools),
    `every pool and its used bytes, as walkee counts them (${items.length} pools)`,
  );

  t.test("xgen layout --for Debian's redis-server, with no checkout: the probe's layout serves a build no shipped layout covers", async (t) => {
    // The package as it would be for a redis point release it has no layout of: its committed redis layouts taken away.
    const buildId = (() => {
      const elf = ElfFile.open(fs.realpathSync(DEBIAN_REDIS));
      try {
        return elf.buildId()!;
      } finally {
        elf.close();
      }
    })();
    for (const release of fs.readdirSync(path.join(installed, 'packs/redis'))) {
      const f = path.join(installed, 'packs/redis', release);
      if (fs.statSync(f).isDirectory()) fs.rmSync(f, { recursive: true });
    }
    const r = await startRedis();
    t.teardown(() => r.stop());
    for (let i = 0; i < 37; i++) await r.cli('SET', `k${i}`, i);
    for (let i = 0; i < 5; i++) await r.cli('SET', `e${i}`, 'x', 'EX', 1000);

    const unknown = await run(bin('xsample'), ['--pid', String(r.pid), '--struct', 'redis_keyspace', '--json']);
    t.not(unknown.exitCode, 0, 'without the probe, the installed xsample has no layout for it');
    t.match(unknown.stderr, /unknown build of redis/, 'and says so');

    // The slowest step: the redis source is fetched and a probe compiled (one heavy build at a time on this machine).
    const packs = path.join(dir, 'packs');
    const t1 = Date.now();
    const probe = await run('flock', ['/tmp/xwalk-build.lock', 'nice', '-n', '10', bin('xgen'), 'layout', '--for', DEBIAN_REDIS, '--into', packs]);
    t.equal(probe.exitCode, 0, String(probe.stderr));
    t.comment(`xgen layout --for ${DEBIAN_REDIS}: ${((Date.now() - t1) / 1000).toFixed(0)} s (flock wait included)`);
    const layoutFile = probe.stdout.trim();
    t.match(layoutFile, new RegExp(`^${packs}/redis/[^/]+/${buildId}\\.json$`), 'the layout of its build-id, in the folder --into names');
    t.match(probe.stderr, /is of package redis-server/, 'a line names the package it found');
    if (process.getuid?.() === 0) t.match(probe.stderr, /fetching and compiling as nobody/, 'run as root, the source is fetched and compiled as nobody');
    t.equal(await tracked(), before, 'the probe wrote nothing into the checkout');

    const env = { XWALK_PACKS: packs, XDG_CACHE_HOME: path.join(dir, 'fresh-cache') };
    const got = await run(bin('xsample'), ['--pid', String(r.pid), '--struct', 'redis_keyspace', '--json'], env);
    t.equal(got.exitCode, 0, String(got.stderr));
    const dbs = (JSON.parse(got.stdout) as { items: { db: number; keys: number; expires: number }[] }).items;
    const info = String(await r.cli('INFO', 'keyspace'));
    const db0 = /^db0:keys=(\d+),expires=(\d+)/m.exec(info);
    t.ok(db0, info);
    t.same(
      dbs.filter((d) => d.db === 0).map((d) => [d.keys, d.expires]),
      [[Number(db0![1]), Number(db0![2])]],
      `db0's keys and expiries as INFO keyspace says (${db0![1]}, ${db0![2]})`,
    );
    // The same layout in the user's cache of probed layouts, where xgen layout --for puts it with no --into: found with no setting.
    const cached = path.join(dir, 'cache-with-layout');
    const into = path.join(cached, 'xwalk/packs', path.relative(packs, path.dirname(layoutFile)));
    fs.mkdirSync(into, { recursive: true, mode: 0o700 });
    fs.copyFileSync(layoutFile, path.join(into, path.basename(layoutFile)));
    const fromCache = await run(bin('xsample'), ['--pid', String(r.pid), '--struct', 'redis_keyspace', '--json'], { XDG_CACHE_HOME: cached });
    t.equal(fromCache.exitCode, 0, String(fromCache.stderr));
    const counts = (out: string) => (JSON.parse(out) as { items: { db: number; keys: number; expires: number }[] }).items.map((d) => [d.db, d.keys, d.expires]);
    t.same(counts(fromCache.stdout), counts(got.stdout), 'the layout in the cache serves it as XWALK_PACKS did (avg_ttl left out: it moves with redis cron)');
  });

  t.test("xgen symbols --for Debian's stripped memcached from the installed package: the installed xsample reads its globals, as memcached's own stats counts them", async (t) => {
    const cache = path.join(dir, 'symbols-cache-home');
    fs.mkdirSync(SYMBOLS_BUILDS, { recursive: true, mode: 0o700 });
    const made = await run(bin('xgen'), ['symbols', '--for', DEBIAN_MEMCACHED], { XDG_CACHE_HOME: cache, XWALK_SYMBOLS_BUILDS: SYMBOLS_BUILDS });
    t.equal(made.exitCode, 0, String(made.stderr));
    t.match(made.stdout, /^(wrote|have) .*\/xwalk\/symbols\/[0-9a-f]+\.json: \/usr\/bin\/memcached build-id/m, 'the table went to the user\'s cache');
    const mc = await startMemcached();
    t.teardown(() => mc.stop());
    const c = await McClient.connect(mc.port);
    t.teardown(() => c.close());
    for (let i = 0; i < 3; i++) await c.line(`set k${i} 0 0 1\r\nv\r\n`);
    await c.listing('get k0 k1 nope\r\n');
    const before = (await stats(c)).values;
    const got = await run(bin('xsample'), ['--pid', String(mc.pid), '--struct', 'memcached_stats', '--json', '--no-fetch'], { XDG_CACHE_HOME: cache });
    t.equal(got.exitCode, 0, String(got.stderr));
    const row = (JSON.parse(got.stdout) as { items: Record<string, unknown>[] }).items[0];
    for (const k of ['curr_items', 'total_items', 'cmd_get', 'cmd_set', 'get_hits', 'get_misses']) t.equal(String(row[k]), before.get(k), `${k} as memcached's stats says (${before.get(k)})`);
  });
});
