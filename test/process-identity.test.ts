/**
 * The identity check of a live process (sampler/memory/process-identity.ts),
 * through the native addon and through node's fs alike: a process that runs
 * is the one opened, whatever its command name holds (spaces, parentheses,
 * a state letter: /proc/PID/stat's fields start after the name's last ')');
 * once it exits it is not, and the check says so. pid reuse and exec are
 * tested on real processes in pid-reuse.test.ts and consistency.test.ts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { TargetGone } from '../sampler/memory/memory.ts';
import { loadAddon } from '../sampler/memory/native-addon.ts';
import { type IdentityAddon, ProcessIdentity } from '../sampler/memory/process-identity.ts';

const addon = loadAddon<IdentityAddon>('xwalk_pvr');

/** sleep, run under a name that reads like the fields of /proc/PID/stat. */
async function oddlyNamed(t: Test) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-identity-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const exe = path.join(dir, 'a) Z (b c');
  fs.copyFileSync('/bin/sleep', exe);
  fs.chmodSync(exe, 0o755);
  const child = spawn(exe, ['600'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(() => child.kill('SIGKILL'));
  await new Promise((resolve) => child.once('spawn', resolve));
  return { pid: child.pid!, stop: async () => (child.kill('SIGKILL'), await exited) };
}

for (const [how, use] of [
  ['the addon', addon],
  ["node's fs", null],
] as const) {
  t.test(`${how}: a process named like stat's fields is the one opened while it runs, and gone once it exits`, async (t) => {
    if (how === 'the addon' && !use) return t.fail('the addon xwalk_pvr is not built');
    const p = await oddlyNamed(t);
    t.match(fs.readFileSync(`/proc/${p.pid}/stat`, 'latin1'), /^\d+ \(a\) Z \(b c\) [RSD] /, 'its stat line holds the name whole');
    const id = new ProcessIdentity(p.pid, use);
    t.teardown(() => id.close());
    t.equal(id.same(), true, 'running: the same');
    for (let i = 0; i < 100; i++) id.check();
    await p.stop();
    t.equal(id.same(), false, 'exited and reaped: not the same');
    t.throws(() => id.check(), TargetGone, 'the check says it is gone');
  });
}

t.test('a process that is not there cannot be opened, and says why in one line', async (t) => {
  t.throws(() => new ProcessIdentity(2 ** 22 + 7), /2?4194311|no such process|not found|exist/i);
});
