/**
 * A layout made before the schema read more, as docs/schema.md says: a
 * build with debug info is served by a layout derived anew from its own
 * DWARF, and stderr says which layout was left and why; a stripped build
 * is refused with the fix. A stale layout in the cache is derived again
 * and replaced. In every case served, the answer is walkee's own truth.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ElfFile } from '../core/elf.ts';
import { binPath, type Json, root, startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-stale-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const walkee = await startWalkee(['--nodes', '50']);
t.teardown(() => walkee.kill());
const truth = await walkee.ask('truth');
const elf = ElfFile.open(binPath);
const buildId = elf.buildId()!;
elf.close();

/** walkee's layout, from its DWARF, without walkee_item_t.value: what a layout made before the schema read it looks like. */
async function staleLayout(): Promise<Json> {
  const dir = fs.mkdtempSync(path.join(tmp, 'made-'));
  const made = await execa(process.execPath, [path.join(root, 'dist/xgen.js'), 'layout', '--pack', 'walkee', '--out', dir, binPath]);
  const l = JSON.parse(fs.readFileSync(made.stdout.split(':')[0], 'utf8'));
  t.ok(l.types.walkee_item_t.fields.value, 'the schema reads walkee_item_t.value');
  delete l.types.walkee_item_t.fields.value;
  return l;
}

/** A folder of packs holding only walkee's stale layout: it joins the built-in pack's layouts. */
async function packsWithStale(): Promise<string> {
  const packs = fs.mkdtempSync(path.join(tmp, 'packs-'));
  const l = await staleLayout();
  fs.mkdirSync(path.join(packs, 'walkee', l.release), { recursive: true });
  fs.writeFileSync(path.join(packs, 'walkee', l.release, `${buildId}.json`), JSON.stringify(l));
  return packs;
}

const sample = (pid: number, env: Record<string, string>) => xsample(['--pid', String(pid), '--struct', 'walkee_list', '--json', '--verbose'], { env });

t.test('a build with debug info and a stale layout of its build-id is served by its own DWARF, and says why', async (t) => {
  const env = { XWALK_PACKS: await packsWithStale(), XDG_CACHE_HOME: fs.mkdtempSync(path.join(tmp, 'cache-')) };
  const r = await sample(walkee.child.pid!, env);
  t.equal(r.code, 0, r.stderr);
  t.same([r.json.items[0].count, r.json.items[0].sum], [truth.list.count, truth.list.sum], "walkee's truth");
  t.match(r.stderr, new RegExp(`xsample: the layout walkee \\S+ \\(${buildId.slice(0, 12)}\\) lacks walkee_item_t\\.value: the schema changed since it was made: deriving the layout of walkee`), 'which layout was left, and why');
  t.match(r.stderr, /derived from DWARF\)\)?$/m, 'the one taken');
});

t.test('a stripped build with a stale layout is refused, with the fix', async (t) => {
  const stripped = path.join(tmp, 'walkee-stripped');
  await execa('strip', ['-o', stripped, binPath]);
  t.equal(ElfFile.open(stripped).buildId(), buildId, 'strip keeps the build-id');
  const w = await startWalkee(['--nodes', '5'], 'walkee', stripped);
  t.teardown(() => w.kill());
  const r = await sample(w.child.pid!, { XWALK_PACKS: await packsWithStale(), XDG_CACHE_HOME: fs.mkdtempSync(path.join(tmp, 'cache-')) });
  t.not(r.code, 0);
  t.match(r.stderr.trim(), /^xsample: the layout walkee \S+ \(\w{12}\) lacks walkee_item_t\.value: the schema changed since it was made; regenerate it with xgen layout$/);
});

t.test('a stale layout in the cache is derived again and replaced', async (t) => {
  const base = fs.mkdtempSync(path.join(tmp, 'cache-'));
  const env = { XDG_CACHE_HOME: base };
  const first = await sample(walkee.child.pid!, env);
  t.equal(first.code, 0, first.stderr);
  const dir = path.join(base, 'xwalk/layouts/walkee');
  const [entry] = fs.readdirSync(dir);
  const file = path.join(dir, entry);
  const l = JSON.parse(fs.readFileSync(file, 'utf8'));
  delete l.types.walkee_item_t.fields.value;
  fs.writeFileSync(file, JSON.stringify(l), { mode: 0o600 });
  const r = await sample(walkee.child.pid!, env);
  t.equal(r.code, 0, r.stderr);
  t.same([r.json.items[0].count, r.json.items[0].sum], [truth.list.count, truth.list.sum], "walkee's truth");
  t.match(r.stderr, /derived from DWARF\) lacks walkee_item_t\.value: the schema changed since it was made: deriving the layout/);
  t.ok(JSON.parse(fs.readFileSync(file, 'utf8')).types.walkee_item_t.fields.value, 'the cached entry is whole again');
});
