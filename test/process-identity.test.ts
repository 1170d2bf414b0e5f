/**
 * The identity check of a live process (sampler/memory/process-identity.ts),
 * through the native addon and through node's fs alike: a process that runs
 * is the one opened, whatever its command name holds (spaces, parentheses,
 * a state letter: /proc/PID/stat's fields start after the name's last ')');
 * once it exits it is not, and the check says so. With its memory watched
 * (a byte of its executable's first page, through the /proc/PID/mem held
 * since it was opened), an exec of the very same file is seen too. pid
 * reuse and exec are tested on real processes in pid-reuse.test.ts and
 * consistency.test.ts.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ElfFile } from '../core/elf.ts';
import { TargetGone } from '../sampler/memory/memory.ts';
import { loadAddon } from '../sampler/memory/native-addon.ts';
import { type IdentityAddon, ProcessIdentity } from '../sampler/memory/process-identity.ts';
import { exePath, imageStart, loadBias, readProcMaps } from '../sampler/memory/proc-maps.ts';

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

/** Where a process's executable starts in it, as a live target finds it (target.ts). */
function imageOf(pid: number): number {
  const elf = ElfFile.open(`/proc/${pid}/exe`);
  try {
    return imageStart(elf, loadBias(readProcMaps(pid), exePath(pid), elf))!;
  } finally {
    elf.close();
  }
}

/** bash reading a line, then (given one) running bash again by exec, the very same file, which waits for another line. */
async function reexecs(t: Test) {
  const child = spawn('/bin/bash', ['-c', 'read line; exec /bin/bash -c "read again; true"'], { stdio: ['pipe', 'ignore', 'ignore'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(async () => (child.kill('SIGKILL'), await exited));
  await new Promise((resolve) => child.once('spawn', resolve));
  // The command the second bash runs (the first's holds it too, inside its own).
  const running = () => fs.readFileSync(`/proc/${child.pid}/cmdline`, 'latin1').split('\0')[2];
  return {
    pid: child.pid!,
    exec: async () => {
      child.stdin.write('go\n');
      while (running() !== 'read again; true') await new Promise((resolve) => setTimeout(resolve, 10));
    },
  };
}

for (const [how, use] of [
  ['the addon', addon],
  ["node's fs", null],
] as const) {
  for (const watched of [false, true]) {
    t.test(`${how}${watched ? ', its memory watched' : ''}: a process named like stat's fields is the one opened while it runs, and gone once it exits`, async (t) => {
      if (how === 'the addon' && !use) return t.fail('the addon xwalk_pvr is not built');
      const p = await oddlyNamed(t);
      t.match(fs.readFileSync(`/proc/${p.pid}/stat`, 'latin1'), /^\d+ \(a\) Z \(b c\) [RSD] /, 'its stat line holds the name whole');
      const id = new ProcessIdentity(p.pid, use);
      t.teardown(() => id.close());
      if (watched) id.watchMemory(imageOf(p.pid));
      t.equal(id.same(), true, 'running: the same');
      for (let i = 0; i < 100; i++) id.check();
      await p.stop();
      t.equal(id.same(), false, 'exited and reaped: not the same');
      t.throws(() => id.check(), TargetGone, 'the check says it is gone');
    });
  }

  t.test(`${how}: an exec of the same file is seen once its memory is watched, and not by the stat of its executable`, async (t) => {
    if (how === 'the addon' && !use) return t.fail('the addon xwalk_pvr is not built');
    const p = await reexecs(t);
    const watched = new ProcessIdentity(p.pid, use);
    t.teardown(() => watched.close());
    watched.watchMemory(imageOf(p.pid));
    const statOnly = new ProcessIdentity(p.pid, use);
    t.teardown(() => statOnly.close());
    t.equal(watched.same(), true, 'before the exec: the same');
    await p.exec();
    t.equal(fs.readlinkSync(`/proc/${p.pid}/exe`), fs.realpathSync('/bin/bash'), 'it runs the same file');
    t.throws(() => watched.check(), { name: 'TargetGone', message: /runs a new program now \(.*bash\): it called exec/ }, 'the watched check says it called exec');
    t.equal(statOnly.same(), true, 'what the stat alone would say: the same (why the memory is watched)');
  });
}

t.test('a process that is not there cannot be opened, and says why in one line', async (t) => {
  t.throws(() => new ProcessIdentity(2 ** 22 + 7), /2?4194311|no such process|not found|exist/i);
});
