/**
 * The layout cache is used only when no one else could have written it,
 * and a layout is data checked before it becomes addresses. A cache folder
 * of another user, or one others may write, is left alone with one
 * warning; a planted symlink is never followed; an entry that is not a
 * valid layout is refused; a binary that carries another build's build-id
 * gets an entry of its own; a cache that cannot be made only loses the
 * caching; a broken committed layout is one line that names it. The schema
 * cache (a pack's checked IR) stands on the same rules. In every case the
 * answer is still walkee's own truth.
 */
import { execa } from 'execa';
import crypto from 'node:crypto';
import fs from 'node:fs';
import v8 from 'node:v8';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ElfFile } from '../core/elf.ts';
import { parseSchema } from '../printers/checked-schema.ts';
import { binPath, type Json, root, startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-cache-hostile-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const walkee = await startWalkee(['--nodes', '100']);
t.teardown(() => walkee.kill());
const truth = await walkee.ask('truth');
const pid = String(walkee.child.pid);
const elf = ElfFile.open(binPath);
const buildId = elf.buildId()!;
const entry = `${buildId}-${elf.contentHash().slice(0, 32)}.json`;
elf.close();

/** xsample on walkee with this cache base; its answer must be walkee's truth. */
async function sample(t: Test, base: string) {
  const r = await xsample(['--pid', pid, '--struct', 'walkee_list', '--json', '--verbose'], { env: { XDG_CACHE_HOME: base } });
  t.equal(r.code, 0, r.stderr);
  t.same([r.json.items[0].count, r.json.items[0].sum], [truth.list.count, truth.list.sum], "the answer is walkee's truth");
  return r;
}

/** A valid layout of walkee whose offsets lie: what a planted entry would hold. */
async function lyingLayout(): Promise<Json> {
  const dir = fs.mkdtempSync(path.join(tmp, 'made-'));
  const made = await execa(process.execPath, [path.join(root, 'dist/xgen.js'), 'layout', '--pack', 'walkee', '--out', dir, binPath]);
  const l = JSON.parse(fs.readFileSync(made.stdout.split(':')[0], 'utf8'));
  l.types.walkee_item_t.fields.next.offset += 8;
  return l;
}

t.test("a cache folder of another user is left alone, and says so once", async (t) => {
  const base = fs.mkdtempSync(path.join(tmp, 'other-'));
  const dir = path.join(base, 'xwalk/layouts/walkee');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, entry), JSON.stringify(await lyingLayout()));
  for (const d of ['xwalk', 'xwalk/layouts', 'xwalk/layouts/walkee', `xwalk/layouts/walkee/${entry}`]) fs.chownSync(path.join(base, d), 65534, 65534);
  const r = await sample(t, base);
  t.match(r.stderr, /not using the layout cache: .*xwalk belongs to uid 65534, not to you/);
  t.equal(r.stderr.match(/not using the layout cache/g)?.length, 1, 'one warning');
  t.match(r.stderr, /derived from DWARF/, 'derived afresh');
});

t.test('a cache folder others may write is left alone', async (t) => {
  const base = fs.mkdtempSync(path.join(tmp, 'open-'));
  fs.mkdirSync(path.join(base, 'xwalk'));
  fs.chmodSync(path.join(base, 'xwalk'), 0o777);
  const r = await sample(t, base);
  t.match(r.stderr, /not using the layout cache: .*xwalk can be written by others \(mode 777\)/);
  t.notOk(fs.existsSync(path.join(base, 'xwalk/layouts')), 'and nothing is written there');
});

t.test('a planted symlink is never followed: the file it names stays as it was', async (t) => {
  const base = fs.mkdtempSync(path.join(tmp, 'link-'));
  const victim = path.join(tmp, 'victim');
  fs.writeFileSync(victim, 'precious\n', { mode: 0o600 });
  const dir = path.join(base, 'xwalk/layouts/walkee');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of ['xwalk', 'xwalk/layouts', 'xwalk/layouts/walkee']) fs.chmodSync(path.join(base, d), 0o700);
  fs.symlinkSync(victim, path.join(dir, entry));
  await sample(t, base);
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the file the symlink names is untouched');
  t.ok(fs.lstatSync(path.join(dir, entry)).isFile(), 'the entry is now a file of ours');
});

t.test('an entry that is not a valid layout is refused', async (t) => {
  const base = fs.mkdtempSync(path.join(tmp, 'bad-'));
  const dir = path.join(base, 'xwalk/layouts/walkee');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of ['xwalk', 'xwalk/layouts', 'xwalk/layouts/walkee']) fs.chmodSync(path.join(base, d), 0o700);
  const bad = await lyingLayout();
  bad.types.walkee_item_t.fields.next.offset = -5;
  fs.writeFileSync(path.join(dir, entry), JSON.stringify(bad), { mode: 0o600 });
  const r = await sample(t, base);
  t.match(r.stderr, /is not a valid layout: types\.walkee_item_t\.fields\.next\.offset -5 does not leave its 8 bytes inside the struct/);
});

t.test("a binary with another build's build-id gets an entry of its own: it cannot poison the real one's", async (t) => {
  const base = fs.mkdtempSync(path.join(tmp, 'twin-'));
  const twin = path.join(tmp, 'twin-walkee');
  fs.writeFileSync(twin, Buffer.concat([fs.readFileSync(binPath), Buffer.from('another build\n')]), { mode: 0o755 });
  const w = await startWalkee(['--nodes', '100'], 'walkee', twin);
  t.teardown(() => w.kill());
  const first = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json'], { env: { XDG_CACHE_HOME: base } });
  t.equal(first.json.build_id, buildId, 'the twin carries the real build-id');
  t.match(first.stderr, /deriving the layout/);
  const real = await sample(t, base);
  t.match(real.stderr, /deriving the layout/, "the real binary is not served by the twin's entry");
  t.equal(fs.readdirSync(path.join(base, 'xwalk/layouts/walkee')).length, 2, 'two entries, one per binary');
  const again = await sample(t, base);
  t.notMatch(again.stderr, /deriving the layout/, 'and then by its own');
});

t.test('a cache that cannot be made only loses the caching', async (t) => {
  for (const base of ['/dev/null/xwalk', '/proc/self/xwalk-cache']) {
    const r = await sample(t, base);
    t.match(r.stderr, /not using the layout cache: /, `${base}: says so`);
    t.notMatch(r.stderr, /internal error/);
  }
});

t.test('a broken committed layout is one line that names it', async (t) => {
  const packs = path.join(tmp, 'packs');
  fs.mkdirSync(path.join(packs, 'walkee/1.0'), { recursive: true });
  fs.copyFileSync(path.join(root, 'packs/walkee/schema.yaml'), path.join(packs, 'walkee/schema.yaml'));
  const broken = path.join(packs, 'walkee/1.0/broken.json');
  fs.writeFileSync(broken, '{"xwalk_layout": 1, "pack": "walkee"');
  const r = await xsample(['--pid', pid, '--struct', 'walkee_list'], { env: { XWALK_PACKS: packs } });
  t.equal(r.code, 1);
  t.match(r.stderr.trim(), new RegExp(`^xsample: ${broken}: not a layout: .*JSON`));
  fs.writeFileSync(broken, JSON.stringify({ ...(await lyingLayout()), build_id: 'not hex' }));
  const r2 = await xsample(['--pid', pid, '--struct', 'walkee_list'], { env: { XWALK_PACKS: packs } });
  t.match(r2.stderr.trim(), new RegExp(`^xsample: ${broken}: not a valid layout: build_id is not a hex string$`));
});

t.test("the schema cache: read only when only we could have written it; garbage is parsed again", async (t) => {
  // The entry xsample would read for walkee's schema: keyed by the bundle, the path and the text.
  const bundle = path.join(root, 'dist/xsample-main.js');
  const st = fs.statSync(bundle);
  const schemaFile = path.join(root, 'packs/walkee/schema.yaml');
  const text = fs.readFileSync(schemaFile, 'utf8');
  const name = `${crypto.createHash('sha256').update(`${bundle} ${st.size} ${st.mtimeMs}\0${schemaFile}\0${text}`).digest('hex').slice(0, 40)}.v8`;
  // A checked IR whose walkee_list counts nothing: what a planted entry would say.
  const lying = v8.serialize(parseSchema(text.replace('      count: count(chain(self.list, next))', '      count: 0 * count(chain(self.list, next))'), schemaFile));
  const plant = (base: string, bytes: Uint8Array) => {
    const dir = path.join(base, 'xwalk/schemas/walkee');
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    for (const d of ['xwalk', 'xwalk/schemas']) fs.chmodSync(path.join(base, d), 0o700);
    fs.writeFileSync(path.join(dir, name), bytes, { mode: 0o600 });
    return dir;
  };
  const count = async (base: string) => (await xsample(['--pid', pid, '--struct', 'walkee_list', '--json'], { env: { XDG_CACHE_HOME: base } })).json.items[0].count;

  const ours = fs.mkdtempSync(path.join(tmp, 'schema-ours-'));
  plant(ours, lying);
  t.equal(await count(ours), 0, 'an entry of ours is read (the cache works: the planted IR answered)');

  const theirs = fs.mkdtempSync(path.join(tmp, 'schema-theirs-'));
  const dir = plant(theirs, lying);
  for (const d of ['xwalk', 'xwalk/schemas', 'xwalk/schemas/walkee']) fs.chownSync(path.join(theirs, d), 65534, 65534);
  fs.chownSync(path.join(dir, name), 65534, 65534);
  t.equal(await count(theirs), truth.list.count, "another user's is not: walkee's truth");

  const garbage = fs.mkdtempSync(path.join(tmp, 'schema-garbage-'));
  const gdir = plant(garbage, Buffer.from('not an IR'));
  t.equal(await count(garbage), truth.list.count, 'garbage is parsed again');
  t.not(fs.readFileSync(path.join(gdir, name)).toString(), 'not an IR', 'and written anew');
});

t.test('a cached layout with an integer of 3 bytes is ignored with one line, derived again, and the next run is clean', async (t) => {
  const base = fs.mkdtempSync(path.join(tmp, 'size3-'));
  const dir = path.join(base, 'xwalk/layouts/walkee');
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const d of ['xwalk', 'xwalk/layouts', 'xwalk/layouts/walkee']) fs.chmodSync(path.join(base, d), 0o700);
  const bad = await lyingLayout();
  bad.types.walkee_item_t.fields.next.offset -= 8; // the offsets are true; only a size is wrong
  bad.types.walkee_item_t.fields.value.size = 3;
  fs.writeFileSync(path.join(dir, entry), JSON.stringify(bad), { mode: 0o600 });
  const r = await sample(t, base);
  const lines = r.stderr.trim().split('\n');
  t.match(lines[0], /ignoring .*\.json, which is not a valid layout: types\.walkee_item_t\.fields\.value\.size is 3, but the schema reads it as an integer \(1, 2, 4 or 8 bytes\)/);
  t.match(r.stderr, /deriving the layout of walkee 1\.0 build [0-9a-f]{12} from its DWARF \(once; cached in /, 'derived again, into the cache');
  t.notMatch(r.stderr, /internal error|unsupported integer size/);
  t.equal(JSON.parse(fs.readFileSync(path.join(dir, entry), 'utf8')).types.walkee_item_t.fields.value.size, 8, 'the entry is rebuilt');
  const again = await sample(t, base);
  t.notMatch(again.stderr, /ignoring|deriving/, 'and the next run uses it, silently');
});

t.test('a committed layout with an integer of 3 bytes is one line that names it', async (t) => {
  const packs = path.join(tmp, 'packs3');
  fs.mkdirSync(path.join(packs, 'walkee/1.0'), { recursive: true });
  fs.copyFileSync(path.join(root, 'packs/walkee/schema.yaml'), path.join(packs, 'walkee/schema.yaml'));
  const l = await lyingLayout();
  l.types.walkee_item_t.fields.next.offset -= 8;
  l.types.walkee_item_t.fields.value.size = 3;
  fs.writeFileSync(path.join(packs, 'walkee/1.0/size3.json'), JSON.stringify(l));
  // walkee has DWARF: a layout committed that does not fit the schema is passed over for its own DWARF, as one the schema outgrew is.
  const r = await xsample(['--pid', pid, '--struct', 'walkee_list', '--json'], { env: { XWALK_PACKS: packs, XDG_CACHE_HOME: path.join(tmp, 'cache3') } });
  t.equal(r.code, 0, r.stderr);
  t.same([r.json.items[0].count, r.json.items[0].sum], [truth.list.count, truth.list.sum]);
  t.notMatch(r.stderr, /internal error/);
  // A stripped copy has no DWARF to fall back on: the one line names the layout and what is wrong.
  const stripped = path.join(tmp, 'walkee-stripped-3');
  await execa('strip', ['-o', stripped, binPath]);
  const w = await startWalkee(['--nodes', '10'], 'walkee', stripped);
  t.teardown(() => w.kill());
  const s = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list'], { env: { XWALK_PACKS: packs, XDG_CACHE_HOME: path.join(tmp, 'cache3') } });
  t.equal(s.code, 1);
  t.match(s.stderr.trim(), /^xsample: the layout walkee 1\.0 \([0-9a-f]{12}\) does not fit the schema: types\.walkee_item_t\.fields\.value\.size is 3, but the schema reads it as an integer/);
  t.equal(s.stderr.trim().split('\n').length, 1, 'one line');
});

t.test("the line that announces a derivation never says 'cached in' when the cache is not used", async (t) => {
  for (const base of ['/dev/null/xwalk', fs.mkdtempSync(path.join(tmp, 'theirs-'))]) {
    if (!base.startsWith('/dev')) {
      fs.mkdirSync(path.join(base, 'xwalk'));
      fs.chownSync(path.join(base, 'xwalk'), 65534, 65534);
    }
    const r = await sample(t, base);
    t.equal(r.stderr.match(/not using the layout cache/g)?.length, 1, `${base}: says once that the cache is not used`);
    t.notMatch(r.stderr, /cached in/, `${base}: and never that it was cached`);
  }
});

t.test("a command that names its view keeps the pack with only that view beside the pack's entry, trusted alike", async (t) => {
  const bundle = path.join(root, 'dist/xsample-main.js');
  const st = fs.statSync(bundle);
  const schemaFile = path.join(root, 'packs/walkee/schema.yaml');
  const text = fs.readFileSync(schemaFile, 'utf8');
  const key = crypto.createHash('sha256').update(`${bundle} ${st.size} ${st.mtimeMs}\0${schemaFile}\0${text}`).digest('hex').slice(0, 40);
  const part = `${key}.${crypto.createHash('sha256').update(JSON.stringify(['walkee_list'])).digest('hex').slice(0, 16)}.v8`;
  const run = async (base: string, view = 'walkee_list') => xsample(['--pid', pid, '--struct', view, '--json'], { env: { XDG_CACHE_HOME: base } });

  const base = fs.mkdtempSync(path.join(tmp, 'part-'));
  const dir = path.join(base, 'xwalk/schemas/walkee');
  const first = await run(base);
  t.same([first.json.items[0].count, first.json.items[0].sum], [truth.list.count, truth.list.sum], "walkee's truth");
  t.same(fs.readdirSync(dir).sort(), [`${key}.v8`, part].sort(), "the pack's entry, and the part for walkee_list");
  const kept = v8.deserialize(fs.readFileSync(path.join(dir, part)));
  t.same([...kept.views.keys()], ['walkee_list'], 'the part holds that view alone');
  t.equal(kept.walks.size, 0, 'and no named walks (the view holds what it calls)');
  t.equal(kept.structs.size, v8.deserialize(fs.readFileSync(path.join(dir, `${key}.v8`))).structs.size, 'and every struct');

  // What is read is the part: one that counts nothing answers, when only we could have written it.
  const lying = parseSchema(text.replace('      count: count(chain(self.list, next))', '      count: 0 * count(chain(self.list, next))'), schemaFile);
  fs.writeFileSync(path.join(dir, part), v8.serialize({ ...lying, views: new Map([['walkee_list', lying.views.get('walkee_list')]]) }), { mode: 0o600 });
  t.equal((await run(base)).json.items[0].count, 0, 'the part is what the next run reads');
  fs.chownSync(path.join(dir, part), 65534, 65534);
  const theirs = await run(base);
  t.equal(theirs.json.items[0].count, truth.list.count, "another user's part is not read: walkee's truth");

  // A name the pack does not have is answered by the whole pack: the error lists every view.
  const nosuch = await run(base, 'nosuch');
  t.equal(nosuch.code, 1);
  t.match(nosuch.stderr, /has no view 'nosuch' \(views: ngx_pool, walkee_list, walkee_sum, walkee_array, /);

  // A schema that changes makes a new pack entry, which takes the old one's parts away with it.
  fs.chownSync(path.join(dir, part), 0, 0);
  const stale = path.join(dir, `${'0'.repeat(40)}.${'1'.repeat(16)}.v8`);
  fs.writeFileSync(stale, 'old', { mode: 0o600 });
  fs.rmSync(path.join(dir, `${key}.v8`));
  const sum = await run(base, 'walkee_sum');
  t.equal(sum.code, 0, sum.stderr);
  t.notOk(fs.existsSync(stale), "writing the pack's entry anew removes the entries of other texts");
  t.ok(fs.existsSync(path.join(dir, part)), 'but not its own parts');
  t.equal(fs.readdirSync(dir).length, 3, 'the pack, and its parts for walkee_list and walkee_sum');
});
