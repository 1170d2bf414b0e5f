/**
 * The worked example of docs/schema.md that is not nginx (kvstore: a hash
 * table of chains, an LRU list, a binary tree, char[24] keys): the page
 * shows the files of docs/examples/kvstore as they are; the program builds;
 * its pack, which has no version string, gets a layout by build-id; and
 * xsample, gdb and lldb answer what the program's data must give, computed
 * here from its inputs, not from its memory.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { root } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const example = path.join(root, 'docs/examples/kvstore');
const source = fs.readFileSync(path.join(example, 'kvstore.c'), 'utf8');
const schema = fs.readFileSync(path.join(example, 'schema.yaml'), 'utf8');
const xgen = path.join(root, 'dist/xgen.js');

/** What kvstore.c's main() puts, and what its data structures must then hold. */
const words = ['apple', 'banana', 'cherry', 'date', 'elderberry', 'fig', 'grape', 'honeydew', 'kiwi', 'lemon'];
const entries = words.map((key, i) => ({ key, value: (i + 1) * 100, expires: (((i * 7) % 10) * 1000) }));
const bucket = (k: string) => [...Buffer.from(k)].reduce((h, c) => (Math.imul(h, 33) + c) >>> 0, 5381) % 8;
/** Bucket by bucket; a bucket's chain newest first (put() pushes on its head). */
const tableOrder = [...Array(8).keys()].flatMap((b) => entries.filter((e) => bucket(e.key) === b).reverse());
const chains = [...Array(8).keys()].map((b) => entries.filter((e) => bucket(e.key) === b).length);

t.test('the page shows the example as it is', async (t) => {
  const doc = fs.readFileSync(path.join(root, 'docs/schema.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## A second example'), doc.indexOf('## Top-level keys'));
  t.ok(section.includes('```c\n' + source + '```'), 'kvstore.c');
  t.ok(section.includes('```yaml\n' + schema + '```'), 'schema.yaml');
});

t.test('xsample, gdb and lldb on a running kvstore', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-kvstore-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const bin = path.join(dir, 'kvstore');
  await execa('cc', ['-g', '-O0', '-Wall', '-Werror', '-o', bin, path.join(example, 'kvstore.c')]);
  fs.mkdirSync(path.join(dir, 'packs/kvstore'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'packs/kvstore/schema.yaml'), schema);
  const env = { XWALK_PACKS: path.join(dir, 'packs'), XDG_CACHE_HOME: path.join(dir, 'cache') };
  const layout = await execa(process.execPath, [xgen, 'layout', '--pack', 'kvstore', bin], { env, reject: false });
  t.equal(layout.exitCode, 0, layout.stderr);
  t.match(layout.stdout, /kvstore build-[0-9a-f]{12}, build-id [0-9a-f]+, 3 types$/, 'known by build-id: no --release');

  const child = spawn(bin, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => child.kill());
  const first = await new Promise<string>((resolve) => createInterface({ input: child.stdout! }).once('line', resolve));
  t.match(first, /^kvstore pid \d+$/);
  const pid = child.pid!;

  const store = await xsample(['--pid', String(pid), '--struct', 'kv_store', '--json'], { env });
  t.equal(store.code, 0, store.stderr);
  const byExpiry = [...entries].sort((a, b) => a.expires - b.expires);
  t.same(store.json.items[0], {
    pid,
    origin: 'store',
    count: 10,
    entries: 10,
    used_buckets: chains.filter((n) => n > 0).length,
    longest_chain: Math.max(...chains),
    recent: words.slice(-3).reverse(),
    soonest: byExpiry[0].key,
    by_expiry: byExpiry.map((e) => e.expires),
  });
  t.equal(store.json.partial, false, 'both checks hold');
  const table = await xsample(['--pid', String(pid), '--struct', 'kv_entries', '--json'], { env });
  t.same(
    table.json.items.map((i: { key: string; value: number; expires: number }) => ({ key: i.key, value: i.value, expires: i.expires })),
    tableOrder,
    'every entry, bucket by bucket, each chain newest first',
  );

  const gdbPy = path.join(dir, 'kvstore.py');
  const lldbPy = path.join(dir, 'kvstore_lldb.py');
  t.equal((await execa(process.execPath, [xgen, 'gdb', '--pack', 'kvstore', '--out', gdbPy], { env, reject: false })).exitCode, 0);
  t.equal((await execa(process.execPath, [xgen, 'lldb', '--pack', 'kvstore', '--out', lldbPy], { env, reject: false })).exitCode, 0);
  const g = await execa('gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', '-p', String(pid), '-ex', `source ${gdbPy}`, '-ex', 'kv-store --json', '-ex', 'kv-entries --json'], { reject: false, env: { DEBUGINFOD_URLS: '' } });
  const l = await execa('lldb-16', ['-b', '--no-lldbinit', '-p', String(pid), '-o', `command script import ${lldbPy}`, '-o', 'kv-store --json', '-o', 'kv-entries --json'], { reject: false });
  for (const [name, out] of [['gdb', g.stdout], ['lldb', l.stdout]] as const) {
    const docs = out.split('\n').filter((x) => x.startsWith('{')).map((x) => JSON.parse(x));
    t.equal(docs.length, 2, `${name}: two answers`);
    t.same(docs[0]?.items, store.json.items, `${name}: kv_store as xsample`);
    t.same(docs[1]?.items, table.json.items, `${name}: kv_entries as xsample`);
  }
});
