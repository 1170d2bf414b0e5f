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
import { ElfFile, STT_FUNC } from '../core/elf.ts';
import { ProcessSymbols } from '../sampler/memory/process-symbols.ts';
import { Snapshot } from '../sampler/memory/snapshot.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { openCore, openLive } from '../sampler/memory/target.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import { FakeMemory } from './lib/fake-memory.ts';
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

/** A 64-bit ELF image with one PT_LOAD (no sections, no symbols: a stripped object). */
function strippedImage(type: number, vaddr: number): Buffer {
  const b = Buffer.alloc(64 + 56);
  Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]).copy(b, 0);
  b.writeUInt16LE(type, 16);
  b.writeUInt16LE(0x3e, 18);
  b.writeUInt32LE(1, 20);
  b.writeBigUInt64LE(64n, 32);
  b.writeUInt16LE(64, 52);
  b.writeUInt16LE(56, 54);
  b.writeUInt16LE(1, 56);
  b.writeUInt32LE(1, 64);
  b.writeUInt32LE(5, 68);
  b.writeBigUInt64LE(BigInt(vaddr), 80);
  return b;
}

t.test('an address no symbol names: the object whose file is mapped there, by the address in that file; else the bare address', async (t) => {
  const mod = 0x7f0000010000;
  const pages = (...r: [number, number][]) => r.map(([start, end]) => ({ start, end }));
  const object = (path: string, mappings: { start: number; end: number }[], image: Buffer | null, bias: number) => ({
    path,
    start: Math.min(...mappings.map((m) => m.start)),
    end: Math.max(...mappings.map((m) => m.end)),
    mappings,
    open: () => {
      if (!image) throw new Error(`${path}: cannot be read`);
      return { elf: ElfFile.fromImage(path, image), bias };
    },
  });
  const symbols = new ProcessSymbols(
    new SymbolTable([{ name: 'main', value: 0x401000, size: 0x40, type: STT_FUNC, bind: 1, shndx: 14 }], 0),
    [
      // nginx maps its shared zones from /dev/zero far apart: that span holds every library between them.
      object('/dev/zero (deleted)', pages([0x7f0000000000, 0x7f0000001000], [0x7f0000f00000, 0x7f0000f01000]), Buffer.from('not an ELF file'), 0),
      object('/usr/lib/nginx/modules/ngx_http_lua_module.so', pages([mod, mod + 0x1000], [mod + 0x1000, mod + 0x3000]), strippedImage(3, 0), mod),
      object('/usr/lib/gone.so', pages([0x7f0000040000, 0x7f0000041000]), null, 0x7f0000040000),
    ],
    { path: '/usr/sbin/nginx', mappings: pages([0x400000, 0x403000]), bias: 0 },
  );
  const runtime = new WalkRuntime(new Snapshot(new FakeMemory(), []), symbols, { maxNodes: 10, maxTotal: 100 });
  t.same(symbols.objectAt(mod + 0x1c10), { name: 'ngx_http_lua_module.so', bias: mod }, 'in the module, inside the span of /dev/zero');
  t.equal(runtime.symbol(mod + 0x1c10), 'ngx_http_lua_module.so+0x1c10');
  t.equal(runtime.symbol(0x401010), 'main+0x10', 'a symbol still names its address');
  t.equal(runtime.symbol(0x402010), 'nginx+0x402010', 'the stripped part of the executable: its name and its link-time address');
  t.equal(runtime.symbol(0x7f0000015000), '0x7f0000015000', 'in the span of an object but in no page of a file (anonymous memory): bare');
  t.equal(runtime.symbol(0x7f0000000010), '0x7f0000000010', 'in a file that is no ELF object: bare');
  t.equal(runtime.symbol(0x7f0000040010), '0x7f0000040010', 'in an object that cannot be read: bare (its offset could not be vouched for)');
  t.equal(runtime.symbol(0), 'NULL');
});
