/**
 * Packs from anywhere: XWALK_PACKS is a search path in front of the
 * built-in packs (a pack of yours is found first, nginx's and walkee's stay
 * available), a folder that does not exist is one clear line, and a program
 * with no version string is known by its build-id alone: xgen layout files
 * its layout without --release, and xsample reads a stripped build with it.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { binPath, root, startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const xgen = path.join(root, 'dist/xgen.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-packs-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const walkeeSchema = fs.readFileSync(path.join(root, 'packs/walkee/schema.yaml'), 'utf8');

t.test('a folder of XWALK_PACKS that does not exist is an error, not an empty list', async (t) => {
  const r = await xsample(['--list'], { env: { XWALK_PACKS: path.join(tmp, 'nowhere') } });
  t.equal(r.code, 1);
  t.match(r.stderr.trim(), /^xsample: XWALK_PACKS: .*nowhere is not a folder/);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  const g = await execa(process.execPath, [xgen, 'check', '--pack', 'walkee'], { reject: false, env: { XWALK_PACKS: path.join(tmp, 'nowhere') } });
  t.equal(g.exitCode, 1);
  t.match(g.stderr, /XWALK_PACKS: .*nowhere is not a folder/);
});

t.test('a pack without a version string, known by build-id; the built-in packs stay', async (t) => {
  // walkee's schema as another program's: no binary.version at all (nginx's walks still found among the built-in packs).
  const mine = path.join(tmp, 'mine');
  const plain = walkeeSchema.replace('pack: walkee', 'pack: plain').replace(/^binary:\n(?: {2}.*\n)+/m, '');
  t.notMatch(plain, /^binary:/m, 'no binary: section');
  fs.mkdirSync(path.join(mine, 'plain'), { recursive: true });
  fs.writeFileSync(path.join(mine, 'plain/schema.yaml'), plain);
  const env = { XWALK_PACKS: `${path.join(tmp, 'empty-but-real')}:${mine}` };
  fs.mkdirSync(path.join(tmp, 'empty-but-real'));

  const list = await xsample(['--list'], { env });
  t.equal(list.code, 0, list.stderr);
  for (const p of ['plain', 'walkee', 'nginx']) t.match(list.stdout, new RegExp(`^${p}: `, 'm'), `${p} is listed`);

  const made = await execa(process.execPath, [xgen, 'layout', '--pack', 'plain', binPath], { reject: false, env });
  t.equal(made.exitCode, 0, made.stderr);
  const buildId = (await execa('readelf', ['-n', binPath])).stdout.match(/Build ID: ([0-9a-f]+)/)![1];
  const file = path.join(mine, 'plain', `build-${buildId.slice(0, 12)}`, `${buildId}.json`);
  t.ok(fs.existsSync(file), `filed under its build-id: ${made.stdout}`);

  // A copy without DWARF has the same build-id: only the layout filed above can serve it.
  const stripped = path.join(tmp, 'walkee-stripped');
  await execa('strip', ['--strip-debug', '-o', stripped, binPath]);
  const w = await startWalkee(['--nodes', '7'], 'walkee', stripped);
  t.teardown(() => w.kill());
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json'], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.pack, 'plain');
  t.equal(r.json.release, `build-${buildId.slice(0, 12)}`);
  t.equal(r.json.items[0].count, 7);
});

t.test("walks from a file the schema imports; the schema cache notices when that file changes", async (t) => {
  const packs = path.join(tmp, 'libbed-packs');
  fs.mkdirSync(path.join(packs, 'libbed'), { recursive: true });
  const schema = walkeeSchema
    .replace('pack: walkee', 'pack: libbed')
    .replace('imports: [nginx/idioms.yaml]', 'imports: [nginx/idioms.yaml, libbed/firsts.yaml]')
    .replace('count: count(chain(self.list, next))', 'count: count(firsts(self))');
  t.match(schema, 'count: count(firsts(self))');
  fs.writeFileSync(path.join(packs, 'libbed/schema.yaml'), schema);
  const library = (k: number) => `xwalk: 1\nwalks:\n  firsts:\n    of: walkee_root_t\n    yields: take(chain(self.list, next), ${k})\n`;
  fs.writeFileSync(path.join(packs, 'libbed/firsts.yaml'), library(3));
  const cache = path.join(tmp, 'libbed-cache');
  const env = { XWALK_PACKS: packs, XDG_CACHE_HOME: cache };
  const w = await startWalkee(['--nodes', '7']);
  t.teardown(() => w.kill());
  const run = () => xsample(['--pid', String(w.child.pid), '--pack', 'libbed', '--struct', 'walkee_list', '--json'], { env });
  const first = await run();
  t.equal(first.code, 0, first.stderr);
  t.equal(first.json.items[0].count, 3, 'take(…, 3) from firsts.yaml');
  const entries = () => fs.readdirSync(path.join(cache, 'xwalk/schemas/libbed')).map((f) => f.replace(/[0-9a-f]{40}/, 'KEY').replace(/\.[0-9a-f]{16}\./, '.PART.')).sort();
  t.same(entries(), ['KEY.PART.v8', 'KEY.v8'], "the checked schema was cached: the pack's, and the part with walkee_list alone");
  fs.writeFileSync(path.join(packs, 'libbed/firsts.yaml'), library(5));
  const second = await run();
  t.equal(second.code, 0, second.stderr);
  t.equal(second.json.items[0].count, 5, 'the changed file of walks is read, not the cached schema');
  t.same(entries(), ['KEY.PART.v8', 'KEY.v8'], 'and cached anew, the part too');
});
