/**
 * xgen symbols --for FILE: the names of a stripped object's globals and
 * statics, recovered and verified. Debian's own /usr/bin/memcached (its
 * .dynsym exports no data) is served by a rebuild of its exact source, a
 * twin in every loaded byte: the table names stats_state, stats, settings
 * and the static threads where the rebuild's own .symtab has them, and
 * settings.port read at the table's address in a running memcached is the
 * port it was given. A debug file from a debuginfod server (a local one,
 * serving a file this test made) is used only for its own build-id. A table
 * for another build, or tampered with, is refused in one line; --no-fetch
 * fetches nothing; the cache is 0700 and a cache others can write is not
 * used. xsample runs the same step by itself for a stripped binary a pack
 * covers.
 *
 * The rebuild (a few minutes) is kept in build/symbols-cache between runs
 * (XWALK_SYMBOLS_BUILDS); on a clean clone the test makes it there.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { root } from './lib/walkee.ts';

// On a clean clone the rebuilds are made first (minutes each, one at a time under /tmp/xwalk-build.lock, maybe behind
// other tests' builds).
t.setTimeout(60 * 60 * 1000);

const xgen = path.join(root, 'dist/xgen.js');
const xsample = path.join(root, 'dist/xsample.js');
const MEMCACHED = '/usr/bin/memcached';
const builds = path.join(fs.realpathSync(path.join(root, 'build')), 'symbols-cache');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-symbols-test-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Table {
  build_id: string;
  method: string;
  verified: string;
  from: string;
  matched?: number;
  total?: number;
  symbols: { name: string; value: number; size: number; kind: string; bind: string; file?: string }[];
}

/** A fresh XDG_CACHE_HOME: the user's cache of one run. */
function freshCache(name: string): string {
  const dir = path.join(tmp, 'caches', name);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return dir;
}

async function symbols(args: string[], env: Record<string, string>) {
  const r = await execa(process.execPath, [xgen, 'symbols', ...args], { reject: false, env: { XWALK_SYMBOLS_BUILDS: builds, DEBUGINFOD_URLS: '', ...env }, timeout: 40 * 60_000 });
  return { code: r.exitCode, stdout: String(r.stdout), stderr: String(r.stderr) };
}

const buildIdOf = async (file: string): Promise<string> => /Build ID: ([0-9a-f]+)/.exec((await execa('readelf', ['-n', file])).stdout)![1];
const tableFile = (cache: string, id: string) => path.join(cache, 'xwalk/symbols', `${id}.json`);
const readTable = (file: string): Table => JSON.parse(fs.readFileSync(file, 'utf8')) as Table;

/** nm's view of a file's .symtab: name -> [address, type letter], statics (lower-case letters) too. */
async function nm(file: string): Promise<Map<string, [number, string]>> {
  const out = new Map<string, [number, string]>();
  for (const line of (await execa('nm', [file])).stdout.split('\n')) {
    const m = /^([0-9a-f]+) (\w) (\S+)$/.exec(line);
    if (m) out.set(m[3], [parseInt(m[1], 16), m[2]]);
  }
  return out;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });

/** Starts Debian's memcached on a free port, and waits until it answers there. */
async function startMemcached(t: Test): Promise<{ pid: number; port: number }> {
  const port = await freePort();
  const child = execa(MEMCACHED, ['-p', String(port), '-U', '0', '-l', '127.0.0.1', '-u', 'nobody', '-m', '64'], { reject: false });
  t.teardown(() => {
    child.kill();
  });
  for (let i = 0; i < 200; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => {
        c.end();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (up) return { pid: child.pid!, port };
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`memcached did not answer on port ${port}`);
}

/** Where the process maps the first page of `file` (a PIE's load bias: its first PT_LOAD is at 0). */
function biasOf(pid: number, file: string): number {
  const line = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith(` ${file}`) && / 00000000 /.test(l));
  return parseInt(line!.split('-')[0], 16);
}

function readMem(pid: number, addr: number, len: number): Buffer {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const b = Buffer.alloc(len);
    fs.readSync(fd, b, 0, len, addr);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

const haveMemcached = fs.existsSync(MEMCACHED) && (await execa('dpkg', ['-S', MEMCACHED], { reject: false })).exitCode === 0;
const memcachedSkip = haveMemcached ? false : `${MEMCACHED} is not Debian's memcached package here (make deps installs it)`;

/** The cache of the memcached run, and its table: made once for the tests below that need it. */
let mc: { cache: string; table: Table; id: string } | null = null;

t.test("Debian's stripped memcached: a rebuild of its exact source gives its table (a twin, or its functions matched), naming every global and static", { skip: memcachedSkip }, async (t) => {
  const id = await buildIdOf(MEMCACHED);
  const plain = await execa('readelf', ['-S', '--wide', MEMCACHED]);
  t.notMatch(plain.stdout, /\.symtab/, 'the installed binary is stripped');
  const cache = freshCache('memcached');
  const r = await symbols(['--for', MEMCACHED], { XDG_CACHE_HOME: cache });
  t.equal(r.code, 0, r.stderr);
  t.match(r.stdout, new RegExp(`^wrote ${tableFile(cache, id).replace(/[.+]/g, '\\$&')}: /usr/bin/memcached build-id ${id}, \\d+ functions, \\d+ objects \\(\\d+ statics\\)`, 'm'), 'says what it wrote, with the counts');
  const table = readTable(tableFile(cache, id));
  t.equal(table.build_id, id);
  // A twin when this machine's toolchain builds Debian's memcached byte for byte; else its names matched against it.
  const twin = table.method === 'rebuild';
  t.match(table.method, /^(rebuild|matched)$/);
  if (twin) t.match(table.verified, /^(build-id equal|loaded sections identical)/, 'verified against the installed binary');
  else t.comment(`the rebuild is not a twin here: ${table.from}; ${table.verified}`);
  mc = { cache, table, id };

  // The rebuild kept for the next run: its own .symtab, read by nm, is the independent account of the names.
  const [version] = (await execa('dpkg-query', ['-W', '-f=${source:Version}', 'memcached'])).stdout.split('\n');
  const kept = path.join(builds, `memcached_${version}`.replace(/[^A-Za-z0-9.+~_-]/g, '_'), 'memcached/usr/bin/memcached');
  const names = await nm(kept);
  const byName = new Map(table.symbols.map((s) => [s.name, s]));
  for (const [name, bind] of [['stats_state', 'global'], ['stats', 'global'], ['settings', 'global'], ['threads', 'local']] as const) {
    const s = byName.get(name);
    t.ok(s, `the table names ${name}`);
    if (twin) t.equal(s?.value, names.get(name)?.[0], `${name} where the rebuild's .symtab has it`);
    t.equal(s?.bind, bind, `${name} is ${bind}`);
    t.equal(s?.kind, 'object');
  }
  t.equal(byName.get('threads')?.file, 'thread.c', 'the static threads belongs to thread.c');
  const funcs = table.symbols.filter((s) => s.kind === 'func').length;
  t.ok(funcs > 300, `${funcs} functions`);

  // Independent of xwalk's readers: settings.port at the table's address in a running memcached, offset by gdb from the rebuild's DWARF.
  const off = await execa('gdb', ['-batch', '-nx', '-ex', 'print (long) &((struct settings *) 0)->port', kept]);
  const portOffset = Number(/= (\d+)/.exec(off.stdout)![1]);
  const { pid, port } = await startMemcached(t);
  const addr = biasOf(pid, MEMCACHED) + byName.get('settings')!.value + portOffset;
  t.equal(readMem(pid, addr, 4).readInt32LE(0), port, "settings.port at the table's address is the -p port memcached was given");

  const again = await symbols(['--for', MEMCACHED], { XDG_CACHE_HOME: cache });
  t.equal(again.code, 0, again.stderr);
  t.match(again.stdout, /^have .*: \/usr\/bin\/memcached build-id/m, 'a second run uses the table kept');
  t.notMatch(again.stderr, /fetching|building/, 'and fetches nothing');
  const j = await symbols(['--for', MEMCACHED, '--json'], { XDG_CACHE_HOME: cache });
  t.same(JSON.parse(j.stdout), { file: MEMCACHED, build_id: id, status: 'found', where: tableFile(cache, id), method: table.method, from: table.from, verified: table.verified, symbols: table.symbols.length, ...(twin ? {} : { matched: table.matched, total: table.total }) }, '--json says the same');
});

t.test('a wrong table is refused: for another build-id, tampered with, or naming addresses outside the binary', { skip: memcachedSkip }, async (t) => {
  if (!mc) return t.fail('the memcached table was not made');
  const cases: [string, (x: Table) => unknown, RegExp][] = [
    ['another build-id', (x) => ({ ...x, build_id: 'ab'.repeat(20) }), /it names build-id abab.*, the object's is /],
    ['a symbol of no kind', (x) => ({ ...x, symbols: x.symbols.map((s, i) => (i === 3 ? { ...s, kind: 'bogus' } : s)) }), /symbols\[3\]: .*kind is not func or object/],
    ['a function moved into no segment', (x) => ({ ...x, symbols: x.symbols.map((s) => (s.name === 'settings' ? { ...s, value: 0x7fff0000 } : s)) }), /settings at 0x7fff0000 is outside \/usr\/bin\/memcached's loaded segments/],
  ];
  for (const [what, change, why] of cases) {
    const cache = freshCache(`wrong-${what.replace(/\W/g, '-')}`);
    fs.mkdirSync(path.join(cache, 'xwalk/symbols'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(tableFile(cache, mc.id), JSON.stringify(change(mc.table)), { mode: 0o600 });
    const r = await symbols(['--for', MEMCACHED, '--no-fetch'], { XDG_CACHE_HOME: cache });
    t.equal(r.code, 1, `${what}: exit 1`);
    const lines = r.stderr.trim().split('\n');
    t.match(lines[0], /^xgen symbols: ignoring .*\.json(, which is not a valid symbol table)?: /, `${what}: one line saying it is ignored`);
    t.match(lines[0], why, `${what}: and why`);
    t.match(lines[1], /^xgen: no symbol table for \/usr\/bin\/memcached/, `${what}: then nothing is used`);
  }
});

t.test('--no-fetch with no table kept: exit 1 and one line of what would be fetched', { skip: memcachedSkip }, async (t) => {
  const cache = freshCache('nofetch');
  const r = await symbols(['--for', MEMCACHED, '--no-fetch'], { XDG_CACHE_HOME: cache });
  t.equal(r.code, 1);
  t.equal(r.stdout, '');
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, /^xgen: no symbol table for \/usr\/bin\/memcached \(build-id [0-9a-f]+\) in .*; without --no-fetch this would fetch memcached-dbgsym .* else the source of memcached .* to rebuild it/);
  t.notOk(fs.existsSync(path.join(cache, 'xwalk/symbols')), 'nothing written');
});

/** A program with a static and a global, built with -g; its stripped copy; its debug file (objcopy --only-keep-debug). */
async function tinyProgram(name: string, value: number): Promise<{ full: string; stripped: string; debug: string; id: string }> {
  const dir = path.join(tmp, name);
  fs.mkdirSync(dir);
  const src = path.join(dir, `${name}.c`);
  fs.writeFileSync(src, `#include <stdio.h>\nstatic int counter = ${value};\nint visible = 7;\n__attribute__((noinline)) static int bump(int n) { return counter += n; }\nint main(int argc, char **argv) { (void) argv; printf("%d\\n", bump(argc) + visible); return 0; }\n`);
  const full = path.join(dir, name);
  await execa('cc', ['-g', '-O1', '-Wl,--build-id', src, '-o', full]);
  const debug = `${full}.debug`;
  await execa('objcopy', ['--only-keep-debug', full, debug]);
  const stripped = `${full}.stripped`;
  await execa('strip', ['--strip-all', '-o', stripped, full]);
  return { full, stripped, debug, id: await buildIdOf(stripped) };
}

t.test('debuginfod: the debug file of the build-id, used only when its build-id is the binary own', async (t) => {
  const prog = await tinyProgram('tiny', 42);
  const other = await tinyProgram('other', 43);
  t.not(prog.id, other.id, 'two builds');
  const asked: string[] = [];
  const serve = (file: string) =>
    new Promise<{ url: string; server: http.Server }>((resolve) => {
      const server = http.createServer((req, res) => {
        asked.push(req.url ?? '');
        if (req.url === `/buildid/${prog.id}/debuginfo`) res.end(fs.readFileSync(file));
        else res.writeHead(404).end();
      });
      server.listen(0, '127.0.0.1', () => resolve({ url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, server }));
    });
  const good = await serve(prog.debug);
  const liar = await serve(other.debug);
  t.teardown(() => {
    good.server.close();
    liar.server.close();
  });

  const cache = freshCache('debuginfod');
  const r = await symbols(['--for', prog.stripped], { XDG_CACHE_HOME: cache, DEBUGINFOD_URLS: good.url });
  t.equal(r.code, 0, r.stderr);
  t.same(asked, [`/buildid/${prog.id}/debuginfo`], 'asked the server for the build-id');
  const table = readTable(tableFile(cache, prog.id));
  t.equal(table.method, 'debuginfod');
  t.equal(table.verified, 'build-id equal');
  const names = await nm(prog.full);
  const counter = table.symbols.find((s) => s.name === 'counter');
  t.equal(counter?.value, names.get('counter')?.[0], 'the static counter where the -g build has it');
  t.equal(counter?.bind, 'local');
  t.equal(table.symbols.find((s) => s.name === 'visible')?.value, names.get('visible')?.[0], 'the global visible too');
  t.equal(table.symbols.find((s) => s.name === 'bump')?.kind, 'func', 'and the static function bump');

  // The cache: 0700 folders, a 0600 file.
  for (const d of ['xwalk', 'xwalk/symbols']) t.equal(fs.statSync(path.join(cache, d)).mode & 0o777, 0o700, `${d} is 0700`);
  t.equal(fs.statSync(tableFile(cache, prog.id)).mode & 0o777, 0o600, 'the table is 0600');

  // A server that answers with another build's debug file is not believed.
  const wrong = await symbols(['--for', prog.stripped], { XDG_CACHE_HOME: freshCache('liar'), DEBUGINFOD_URLS: liar.url });
  t.equal(wrong.code, 1);
  t.match(wrong.stderr, new RegExp(`/buildid/${prog.id}/debuginfo does not fit .*: \\d+ loadable segments against \\d+|does not fit .*differs|does not fit`), 'says it does not fit');
  t.match(wrong.stderr, /^xgen: cannot recover the symbols of .*: no package owns it; debuginfod's file does not fit/m, 'and ends in one error');
  t.notOk(fs.existsSync(tableFile(path.join(tmp, 'caches/liar'), prog.id)), 'no table written');
});

t.test('the cache is used only when no one else can write it', async (t) => {
  const prog = await tinyProgram('shared', 44);
  const made = freshCache('made');
  const one = await symbols(['--for', prog.stripped], { XDG_CACHE_HOME: made, DEBUGINFOD_URLS: await oneShotServer(t, prog) });
  t.equal(one.code, 0, one.stderr);
  const open = freshCache('open');
  fs.mkdirSync(path.join(open, 'xwalk/symbols'), { recursive: true, mode: 0o700 });
  fs.copyFileSync(tableFile(made, prog.id), tableFile(open, prog.id));
  const ours = await symbols(['--for', prog.stripped, '--no-fetch'], { XDG_CACHE_HOME: open });
  t.equal(ours.code, 0, `a valid table in a folder of ours is used: ${ours.stderr}`);
  fs.chmodSync(path.join(open, 'xwalk/symbols'), 0o777);
  const r = await symbols(['--for', prog.stripped, '--no-fetch'], { XDG_CACHE_HOME: open });
  t.equal(r.code, 1);
  t.match(r.stderr, /^xgen symbols: not using the symbol cache: .*xwalk\/symbols can be written by others \(mode 777\)$/m, 'one warning says why');
  t.match(r.stderr, /^xgen: no symbol table for /m);
});

/** A debuginfod server for one program, closed with the test. */
async function oneShotServer(t: Test, prog: { debug: string; id: string }): Promise<string> {
  const server = http.createServer((req, res) => (req.url === `/buildid/${prog.id}/debuginfo` ? res.end(fs.readFileSync(prog.debug)) : res.writeHead(404).end()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  return `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
}

t.test('--pack NAME writes the table into the pack, where --no-fetch finds it', async (t) => {
  const prog = await tinyProgram('packed', 45);
  const packs = path.join(tmp, 'packs');
  fs.mkdirSync(path.join(packs, 'tiny'), { recursive: true, mode: 0o755 });
  fs.writeFileSync(path.join(packs, 'tiny/schema.yaml'), 'xwalk: 1\npack: tiny\ndoc: a tiny program\ntypes:\n  t:\n    fields:\n      n: int\n', { mode: 0o644 });
  const env = { XWALK_PACKS: packs, XDG_CACHE_HOME: freshCache('pack') };
  const r = await symbols(['--for', prog.stripped, '--pack', 'tiny'], { ...env, DEBUGINFOD_URLS: await oneShotServer(t, prog) });
  t.equal(r.code, 0, r.stderr);
  const file = path.join(packs, 'tiny/symbols', `${prog.id}.json`);
  t.match(r.stdout, `wrote ${file}:`);
  t.ok(fs.existsSync(file), 'in the pack');
  t.notOk(fs.existsSync(tableFile(env.XDG_CACHE_HOME, prog.id)), 'not in the cache');
  const found = await symbols(['--for', prog.stripped, '--no-fetch'], env);
  t.equal(found.code, 0, found.stderr);
  t.match(found.stdout, `have ${file}:`);
});

t.test('a file with its own .symtab needs nothing', async (t) => {
  const prog = await tinyProgram('whole', 46);
  const r = await symbols(['--for', prog.full], { XDG_CACHE_HOME: freshCache('whole') });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.stdout.trim(), `${fs.realpathSync(prog.full)} has its own .symtab: nothing to recover`);
});

t.test('xsample recovers the symbols of a stripped binary a pack covers by itself, unless --no-fetch', { skip: memcachedSkip }, async (t) => {
  const packs = path.join(tmp, 'mcpacks');
  fs.mkdirSync(path.join(packs, 'mctest'), { recursive: true, mode: 0o755 });
  // A pack that knows memcached by its version string: it covers the binary (no layout needed for this step).
  const schema = (name: string, global: string) =>
    `xwalk: 1\npack: ${name}\ndoc: names Debian's memcached\nbinary:\n  version: 'memcached (\\d+\\.\\d+\\.\\d+)'\ntypes:\n  t:\n    fields:\n      n: int\nglobals:\n  ${global}: t\nviews:\n  mc_settings:\n    doc: settings\n    of: t\n    roots:\n      settings: '&${global}'\n    columns:\n      n: self.n\n`;
  fs.mkdirSync(path.join(packs, 'mcexported'), { mode: 0o755 });
  // A pack that reads only what memcached exports (optarg, in its .dynsym): nothing to recover.
  fs.writeFileSync(path.join(packs, 'mcexported/schema.yaml'), schema('mcexported', 'optarg'), { mode: 0o644 });
  fs.writeFileSync(path.join(packs, 'mctest/schema.yaml'), "xwalk: 1\npack: mctest\ndoc: names Debian's memcached\nbinary:\n  version: 'memcached (\\d+\\.\\d+\\.\\d+)'\ntypes:\n  t:\n    fields:\n      n: int\nglobals:\n  settings: t\nviews:\n  mc_settings:\n    doc: settings\n    of: t\n    roots:\n      settings: '&settings'\n    columns:\n      n: self.n\n", { mode: 0o644 });
  const { pid } = await startMemcached(t);
  const run = async (cache: string, extra: string[], pack = 'mctest') => {
    const r = await execa(process.execPath, [xsample, '--pid', String(pid), '--pack', pack, '--struct', 'mc_settings', ...extra], {
      reject: false,
      env: { XWALK_PACKS: packs, XDG_CACHE_HOME: cache, XWALK_SYMBOLS_BUILDS: builds, DEBUGINFOD_URLS: '' },
      timeout: 40 * 60_000,
    });
    return String(r.stderr);
  };
  const exported = await run(freshCache('xsample-exported'), [], 'mcexported');
  t.notMatch(exported, /recovering|symbol table|does not export/, 'a pack that reads only exported globals starts no recovery');

  const off = freshCache('xsample-nofetch');
  const skipped = await run(off, ['--no-fetch']);
  t.match(skipped, /^xsample: \/usr\/bin\/memcached is stripped and does not export settings, and no symbol table of it is kept \(--no-fetch\): xgen symbols --for \/usr\/bin\/memcached recovers them$/m, '--no-fetch: one line, nothing fetched');
  t.notMatch(skipped, /recovering/);
  t.notOk(fs.existsSync(path.join(off, 'xwalk/symbols')), 'nothing written');

  const cache = freshCache('xsample');
  const err = await run(cache, []);
  t.match(err, /^xsample: \/usr\/bin\/memcached is stripped: recovering its symbols \(xgen symbols --for \/usr\/bin\/memcached; --no-fetch to skip\)$/m, 'the line that says what it does');
  const id = await buildIdOf(MEMCACHED);
  t.ok(fs.existsSync(tableFile(cache, id)), 'the table is in the user cache');
  t.match(err, /\d+ functions, \d+ objects \(\d+ statics\)/);
  const again = await run(cache, []);
  t.notMatch(again, /recovering/, 'not again once the table is kept');
});
