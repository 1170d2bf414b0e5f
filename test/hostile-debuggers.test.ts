/**
 * The gdb and lldb extensions, given what a user should not have given:
 * an expression that is no pointer or address ($_siginfo), a --folded
 * path that cannot be written, a symlink, another user's file, a folder.
 * Each is one line that says what is wrong; no file is written through a
 * symlink or onto another user's file, and a file of ours is replaced
 * whole (written beside, renamed), leaving nothing beside it.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { extension, gdb, lldb } from './lib/debuggers.ts';
import { startWalkee, walkeeAsNobody } from './lib/walkee.ts';

const NOBODY = 65534;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-debuggers-hostile-'));
fs.chmodSync(tmp, 0o755);
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

const w = await startWalkee(['--nodes', '10', '--pools', '2']);
t.teardown(() => w.kill());
const where = { pid: w.child.pid! };

/** The one line a command said (gdb prints a command's error on stderr, lldb as "error: ..." on stdout). */
const said = (out: string, pattern: RegExp) => out.split('\n').filter((l) => pattern.test(l));

function refused(t: Test, out: string, pattern: RegExp, what: string) {
  t.equal(said(out, pattern).length, 1, `${what}: one line that says why`);
  t.notMatch(out, /internal error|Traceback|TypeError|FileNotFoundError/, `${what}: not an internal error`);
}

t.test("gdb: an expression that is no pointer or address is one line, not a TypeError", async (t) => {
  const r = await gdb(where, 'walkee', ['ngx-pool $_siginfo', 'ngx-pool 1.5', 'ngx-pool walkee.pools[0]']);
  const out = r.stdout + r.stderr;
  refused(t, out, /^\$_siginfo is a .*siginfo.* that is not in the target's memory: give a pointer to one, or an address$/, '$_siginfo');
  refused(t, out, /^1\.5 is a double, not a pointer or an address$/, '1.5');
  t.match(r.stdout, /^ngx_pool: 1 item/m, 'a pointer to a pool still works');
});

t.test('lldb: the same', async (t) => {
  const r = await lldb(where, 'walkee', ['ngx-pool 1.5', 'ngx-pool walkee.pools[0]'], { keepGoing: true });
  refused(t, r.stdout + r.stderr, /error: 1\.5 is a double, not a pointer or an address$/, '1.5');
  t.match(r.stdout, /^ngx_pool: 1 item/m, 'a pointer to a pool still works');
});

t.test('--folded never follows a symlink, never writes onto another user\'s file, and says so in one line', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'out-'));
  const victim = path.join(dir, 'victim');
  fs.writeFileSync(victim, 'precious\n', { mode: 0o600 });
  const link = path.join(dir, 'link.folded');
  fs.symlinkSync(victim, link);
  const theirs = path.join(dir, 'theirs.folded');
  fs.writeFileSync(theirs, 'theirs\n', { mode: 0o644 });
  fs.chownSync(theirs, NOBODY, NOBODY);
  const folder = path.join(dir, 'a-folder');
  fs.mkdirSync(folder);
  const missing = path.join(dir, 'no-such-folder', 'x.folded');
  const cases: [string, RegExp][] = [
    [link, /cannot write .*link\.folded: it is a symlink, which is not followed/],
    [theirs, new RegExp(`cannot write .*theirs\\.folded: it belongs to uid ${NOBODY}, not to you`)],
    [folder, /cannot write .*a-folder: it is a directory/],
    [missing, /cannot write .*no-such-folder\/x\.folded: No such file or directory/],
  ];
  const g = await gdb(where, 'walkee', cases.map(([file]) => `walkee-pool-memory --folded ${file}`));
  const l = await lldb(where, 'walkee', cases.map(([file]) => `walkee-pool-memory --folded ${file}`), { keepGoing: true });
  for (const [file, pattern] of cases) {
    refused(t, g.stdout + g.stderr, pattern, `gdb ${path.basename(file)}`);
    refused(t, l.stdout + l.stderr, new RegExp(`error: ${pattern.source}`), `lldb ${path.basename(file)}`);
  }
  t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the file the symlink names is untouched');
  t.ok(fs.lstatSync(link).isSymbolicLink(), 'and the symlink is still one');
  t.equal(fs.readFileSync(theirs, 'utf8'), 'theirs\n', "another user's file is untouched");
  t.same(fs.readdirSync(dir).sort(), ['a-folder', 'link.folded', 'theirs.folded', 'victim'], 'nothing left beside them');
});

t.test('--folded replaces a file of ours whole, and leaves nothing beside it', async (t) => {
  const dir = fs.mkdtempSync(path.join(tmp, 'replace-'));
  const file = path.join(dir, 'pools.folded');
  fs.writeFileSync(file, 'old line that is longer than anything the view writes '.repeat(100), { mode: 0o640 });
  const before = fs.statSync(file);
  for (const [name, run] of [['gdb', () => gdb(where, 'walkee', [`walkee-pool-memory --folded ${file}`])], ['lldb', () => lldb(where, 'walkee', [`walkee-pool-memory --folded ${file}`])]] as const) {
    const r = await run();
    t.match(r.stdout + r.stderr, new RegExp(`wrote ${file}: 2 stacks`), `${name}: says what it wrote`);
    const lines = fs.readFileSync(file, 'utf8').trimEnd().split('\n');
    t.equal(lines.length, 2, `${name}: the two pools, nothing of the old file`);
    for (const l of lines) t.match(l, new RegExp(`^pid ${w.child.pid};pools;pool 0x[0-9a-f]+ \\d+$`));
    t.equal(fs.statSync(file).mode & 0o777, 0o640, `${name}: keeps the file's mode`);
    t.same(fs.readdirSync(dir), ['pools.folded'], `${name}: nothing beside it`);
  }
  t.not(fs.statSync(file).ino, before.ino, 'a new file, renamed over the old one');
});

t.test('gdb run by a user who cannot write there: Permission denied, in one line', async (t) => {
  const theirs = await startWalkee(['--nodes', '10', '--pools', '2'], 'walkee', walkeeAsNobody(tmp));
  t.teardown(() => theirs.kill());
  const rootOnly = fs.mkdtempSync(path.join(tmp, 'root-only-'));
  fs.chmodSync(rootOnly, 0o755);
  const file = path.join(rootOnly, 'x.folded');
  // The checkout may be a folder only root can read (a clone in a mktemp -d folder): nobody sources a copy.
  const ext = path.join(tmp, 'walkee.py');
  fs.copyFileSync(extension('walkee', 'gdb'), ext);
  fs.chmodSync(ext, 0o644);
  const r = await execa('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'gdb', '-batch', '-nx', '-iex', 'set debuginfod enabled off', '-p', String(theirs.child.pid), '-ex', `source ${ext}`, '-ex', `walkee-pool-memory --folded ${file}`], { reject: false, env: { HOME: tmp, DEBUGINFOD_URLS: '' } });
  refused(t, r.stdout + r.stderr, new RegExp(`^cannot write ${file}: Permission denied$`), 'a folder of root');
  t.same(fs.readdirSync(rootOnly), [], 'nothing written');
});
