/**
 * The symbols of a whole process, not only its executable: a live walkee's
 * libc, and the same from a gcore of it, against gdb's own answers (it
 * reads the same libc its own way) and the build-id readelf prints.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { openCore, openLive } from '../sampler/target.ts';
import { startWalkee } from './lib/walkee.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-process-symbols-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** gdb's answers, attached to pid: where malloc and environ are, what it calls malloc's address. */
async function gdbTruth(pid: number): Promise<{ malloc: number; environ: number; mallocName: string }> {
  const r = await execa('gdb', ['-batch', '-nx', '-p', String(pid), '-ex', 'printf "malloc=%lu\\n", (unsigned long)&malloc', '-ex', 'printf "environ=%lu\\n", (unsigned long)&environ', '-ex', 'info symbol (unsigned long)&malloc'], { env: { DEBUGINFOD_URLS: '' } });
  const num = (k: string) => Number(new RegExp(`^${k}=(\\d+)$`, 'm').exec(r.stdout)?.[1]);
  return { malloc: num('malloc'), environ: num('environ'), mallocName: /^(\S+) in section \.text of .*libc/m.exec(r.stdout)?.[1] ?? `no answer: ${r.stdout}` };
}

async function readelfBuildId(file: string): Promise<string | undefined> {
  return /Build ID: ([0-9a-f]+)/.exec((await execa('readelf', ['-n', file])).stdout)?.[1];
}

t.test("a live process's and its core's shared objects: libc's symbols and build-id", async (t) => {
  const w = await startWalkee(['--nodes', '3']);
  t.teardown(() => w.kill());
  const pid = w.child.pid!;
  const truth = await gdbTruth(pid);
  t.ok(truth.malloc > 0 && truth.environ > 0, `gdb answered: ${JSON.stringify(truth)}`);
  const core = path.join(dir, 'core');
  await execa('gcore', ['-o', core, String(pid)], { stdio: 'ignore' });

  for (const target of [openLive(pid), openCore(`${core}.${pid}`)]) {
    t.teardown(() => target.close());
    const { symbols } = target;
    t.equal(symbols.address('malloc'), truth.malloc, `${target.kind}: malloc, a function libc defines`);
    t.equal(symbols.address('environ'), truth.environ, `${target.kind}: environ, an object libc defines`);
    t.equal(symbols.symbolize(truth.malloc)?.name, truth.mallocName, `${target.kind}: malloc's address named as gdb names it`);
    t.equal(symbols.address('xw_no_such_symbol_anywhere'), null, `${target.kind}: a name nobody defines`);
    t.ok(symbols.address('main') !== null && symbols.symbolize(symbols.address('main')!)?.name === 'main', `${target.kind}: the executable's own symbols still come first`);
    const objects = symbols.objects();
    const libc = objects.find((o) => /\/libc\.so\.6$/.test(o.path));
    t.ok(libc, `${target.kind}: libc is listed: ${objects.map((o) => o.path).join(', ')}`);
    t.equal(libc?.buildId, await readelfBuildId(libc!.path), `${target.kind}: with the build-id readelf reads from the file`);
    t.ok(libc!.start <= truth.malloc && truth.malloc < libc!.end, `${target.kind}: and the addresses it is mapped at hold malloc`);
    t.notOk(objects.some((o) => o.path === target.exeName), `${target.kind}: the executable is not listed among the others`);
    t.notOk(objects.some((o) => o.error), `${target.kind}: every object was read: ${JSON.stringify(objects.filter((o) => o.error))}`);
  }
});
