/**
 * A pack decides what root reads and prints, so a folder of packs is used
 * only when no one but root or the invoking user could have written it:
 * an XWALK_PACKS folder of another user, or one others may write, a pack
 * folder or a layout file of another user inside a folder of ours, a file
 * of walks a schema imports from such a folder: each is skipped with one
 * line that says why, and the answer is walkee's own truth (or a clear
 * error), never what the lying pack says.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ElfFile } from '../core/elf.ts';
import { binPath, root, startWalkee } from './lib/walkee.ts';
import { type Run, xsample } from './lib/xsample.ts';

const NOBODY = 65534;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-packs-hostile-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const walkeeSchema = fs.readFileSync(path.join(root, 'packs/walkee/schema.yaml'), 'utf8');
const COUNT = '      count: count(chain(self.list, next))';
/** walkee's schema, but its list counts nothing: what a planted pack would say. */
const lying = walkeeSchema.replace(COUNT, '      count: 0 * count(chain(self.list, next))');

const walkee = await startWalkee(['--nodes', '100']);
t.teardown(() => walkee.kill());
const truth = await walkee.ask('truth');
const pid = String(walkee.child.pid);

/** A folder of packs holding the walkee pack with this schema (folders 0755, files 0644: as a user makes them). */
function packsWith(name: string, schema: string): string {
  const dir = path.join(tmp, name);
  fs.mkdirSync(path.join(dir, 'walkee'), { recursive: true, mode: 0o755 });
  for (const d of [dir, path.join(dir, 'walkee')]) fs.chmodSync(d, 0o755);
  fs.writeFileSync(path.join(dir, 'walkee/schema.yaml'), schema, { mode: 0o644 });
  return dir;
}

async function run(packs: string): Promise<Run> {
  return xsample(['--pid', pid, '--struct', 'walkee_list', '--json'], { env: { XWALK_PACKS: packs, XDG_CACHE_HOME: path.join(tmp, 'cache') } });
}

function truthWithOneLine(t: Test, r: Run, why: RegExp) {
  t.equal(r.code, 0, r.stderr);
  t.same([r.json.items[0].count, r.json.items[0].sum], [truth.list.count, truth.list.sum], "walkee's truth, not the lying pack's");
  const skips = r.stderr.split('\n').filter((l) => /skipping/.test(l));
  t.equal(skips.length, 1, 'one line');
  t.match(skips[0], /^xsample: skipping /, 'names the tool');
  t.match(skips[0], why, 'says why');
}

t.test('the lying pack is used when it is ours: the test can fail', async (t) => {
  t.not(lying, walkeeSchema, 'the lying schema differs');
  const r = await run(packsWith('ours', lying));
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.items[0].count, 0, 'the pack of XWALK_PACKS answered');
  t.notMatch(r.stderr, /skipping/);
});

t.test('an XWALK_PACKS folder of another user is skipped, with one line', async (t) => {
  const dir = packsWith('theirs', lying);
  for (const p of [dir, path.join(dir, 'walkee'), path.join(dir, 'walkee/schema.yaml')]) fs.chownSync(p, NOBODY, NOBODY);
  truthWithOneLine(t, await run(dir), new RegExp(`skipping .*theirs: .*theirs belongs to uid ${NOBODY}, not to root or you`));
});

t.test('an XWALK_PACKS folder others may write is skipped, with one line', async (t) => {
  const dir = packsWith('open', lying);
  fs.chmodSync(dir, 0o777);
  truthWithOneLine(t, await run(dir), /skipping .*open: .*open can be written by others \(mode 777\)/);
  fs.chmodSync(dir, 0o775);
  truthWithOneLine(t, await run(dir), /open can be written by others \(mode 775\)/);
});

t.test("a pack folder or a schema of another user inside a folder of ours is skipped", async (t) => {
  const dir = packsWith('inner', lying);
  fs.chownSync(path.join(dir, 'walkee'), NOBODY, NOBODY);
  truthWithOneLine(t, await run(dir), new RegExp(`skipping .*inner/walkee/schema\\.yaml: .*inner/walkee belongs to uid ${NOBODY}`));
  const file = packsWith('file', lying);
  fs.chmodSync(path.join(file, 'walkee/schema.yaml'), 0o666);
  truthWithOneLine(t, await run(file), /file\/walkee\/schema\.yaml can be written by others \(mode 666\)/);
  const list = await xsample(['--list'], { env: { XWALK_PACKS: dir } });
  t.equal(list.code, 0, '--list still lists the built-in packs');
  t.match(list.stdout, /^walkee: /m);
  t.equal(list.stderr.split('\n').filter((l) => /skipping/.test(l)).length, 1, 'and says once what it skipped');
});

t.test("a layout file of another user in a pack of ours is skipped: walkee's layout is derived from its DWARF", async (t) => {
  const dir = packsWith('layout', walkeeSchema);
  const made = await execa(process.execPath, [path.join(root, 'dist/xgen.js'), 'layout', '--pack', 'walkee', '--out', path.join(dir, 'walkee/1.0'), binPath], { env: { XWALK_PACKS: dir } });
  const file = made.stdout.split(':')[0];
  const l = JSON.parse(fs.readFileSync(file, 'utf8'));
  l.types.walkee_item_t.fields.next.offset += 8; // it lies
  fs.writeFileSync(file, JSON.stringify(l));
  fs.chmodSync(path.dirname(file), 0o755);
  const ours = await run(dir);
  t.equal(ours.code, 3, 'ours is used (and its lie shows): the test can fail');
  fs.chownSync(file, NOBODY, NOBODY);
  const r = await run(dir);
  truthWithOneLine(t, r, new RegExp(`skipping ${file.replace(/[.]/g, '\\.')}: .* belongs to uid ${NOBODY}`));
  const elf = ElfFile.open(binPath);
  t.equal(r.json.build_id, elf.buildId());
  elf.close();
});

t.test('a file of walks imported from a folder of another user is not read: a clear error', async (t) => {
  const dir = packsWith('imports', walkeeSchema.replace('imports: [nginx/idioms.yaml]', 'imports: [nginx/idioms.yaml, lib/more.yaml]').replace(COUNT, '      count: count(items(self))'));
  fs.mkdirSync(path.join(dir, 'lib'), { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'lib/more.yaml'), 'xwalk: 1\ndoc: more walks\nwalks:\n  items:\n    of: walkee_root_t\n    yields: chain(self.list, next)\n', { mode: 0o644 });
  const ours = await run(dir);
  t.equal(ours.code, 0, ours.stderr);
  t.equal(ours.json.items[0].count, truth.list.count, 'imported from a folder of ours');
  fs.chownSync(path.join(dir, 'lib'), NOBODY, NOBODY);
  const r = await run(dir);
  t.equal(r.code, 1);
  const lines = r.stderr.trim().split('\n');
  t.match(lines[0], new RegExp(`^xsample: skipping .*imports/lib/more\\.yaml: .*imports/lib belongs to uid ${NOBODY}`));
  t.match(r.stderr, /cannot import lib\/more\.yaml: no such file in /);
  t.notMatch(r.stderr, /internal error|^\s+at /m);
});

t.test('xgen says the same, prefixed by its name', async (t) => {
  const dir = packsWith('xgen', lying);
  fs.chmodSync(dir, 0o777);
  const r = await execa(process.execPath, [path.join(root, 'dist/xgen.js'), 'check', '--pack', 'walkee'], { reject: false, env: { XWALK_PACKS: dir } });
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stderr, /^xgen: skipping .*xgen: .*can be written by others/m);
  t.match(r.stdout, new RegExp(`${root.replace(/[.]/g, '\\.')}/packs/walkee/schema\\.yaml: ok`), 'the built-in pack was checked');
});


t.test("the user's cache of probed layouts (xgen layout --for FILE puts them there) is read with no setting, and skipped when others may write it", async (t) => {
  const cache = path.join(tmp, 'probed-cache');
  const packs = path.join(cache, 'xwalk/packs');
  fs.mkdirSync(packs, { recursive: true, mode: 0o700 });
  const made = await execa(process.execPath, [path.join(root, 'dist/xgen.js'), 'layout', '--pack', 'walkee', '--into', packs, binPath]);
  const file = made.stdout.split(':')[0];
  t.ok(file.startsWith(packs), `the layout is in the cache: ${file}`);
  const l = JSON.parse(fs.readFileSync(file, 'utf8'));
  l.types.walkee_item_t.fields.next.offset += 8; // it lies
  fs.writeFileSync(file, JSON.stringify(l));
  const cached = () => xsample(['--pid', pid, '--struct', 'walkee_list', '--json'], { env: { XDG_CACHE_HOME: cache } });
  t.equal((await cached()).code, 3, 'with no XWALK_PACKS, the cached layout is used (and its lie shows): the test can fail');
  fs.chmodSync(packs, 0o777);
  truthWithOneLine(t, await cached(), /skipping .*xwalk\/packs: .*packs can be written by others \(mode 777\)/);
});
