/**
 * Cores and paths no one should trust. A core cut short, or whose segment
 * points past its end, gives faults that say so, never zeros read as data;
 * a note that claims to be huge is refused, not allocated; a core whose
 * NT_FILE note names another file (a root-only secret, something that is
 * not the ELF object that was mapped, a FIFO) never makes xsample read it;
 * a FIFO given as --core, --exe, a binary to xgen or a schema is one clear
 * line, never a hang. The cores are real ones (gcore of walkee), edited.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { fileEntries, gcore, kernelStyle, loadHolding, noteSegment, pathOfLength, programHeaders, renameEntry, setFilesz, setOffset } from './lib/core-craft.ts';
import { ElfFile } from '../core/elf.ts';
import { binPath, type Json, root, startWalkee } from './lib/walkee.ts';
import { type Run, xsample } from './lib/xsample.ts';

const xgen = path.join(root, 'dist/xgen.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-hostile-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** walkee copied to a long path of its own (NT_FILE renames need room), its truth, and a gcore of it. */
async function walkeeAndCore(t: Test): Promise<{ exe: string; truth: Json; core: string; bytes: Buffer; pid: number }> {
  const dir = fs.mkdtempSync(path.join(tmp, 'w-'));
  const exe = path.join(dir, 'w'.repeat(40), 'walkee');
  fs.mkdirSync(path.dirname(exe));
  fs.copyFileSync(binPath, exe);
  fs.chmodSync(exe, 0o755);
  const w = await startWalkee(['--nodes', '1000', '--pools', '3'], 'walkee', exe);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const core = await gcore(w.child.pid!, dir);
  return { exe, truth, core, bytes: fs.readFileSync(core), pid: w.child.pid! };
}

function oneLine(t: Test, r: Run, code: number, pattern: RegExp) {
  t.equal(r.code, code, `exit ${code}`);
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  t.match(r.stderr, pattern);
  t.notMatch(r.stderr, /^\s+at |internal error/m, 'no stack trace, no internal error');
}

t.test('a core cut short, or whose segment lies past its end: faults that say so, never zeros', async (t) => {
  const { exe, truth, bytes } = await walkeeAndCore(t);
  const pool0 = Number(truth.pools[0].addr);
  const seg = loadHolding(bytes, pool0);
  const inSeg = pool0 - seg.vaddr - ((pool0 - seg.vaddr) % 4096);

  // Cut where pool 0's page begins, in a core laid out as the kernel writes one (notes first).
  const kernel = kernelStyle(bytes);
  const cut = path.join(tmp, 'cut.core');
  fs.writeFileSync(cut, kernel.subarray(0, loadHolding(kernel, pool0).offset + inSeg));
  const past = path.join(tmp, 'past.core');
  const moved = Buffer.from(bytes);
  setOffset(moved, seg, bytes.length + 8192);
  fs.writeFileSync(past, moved);

  for (const [what, core] of [['cut inside a PT_LOAD', cut], ['a PT_LOAD past the end of the file', past]]) {
    const pools = await xsample(['--core', core, '--exe', exe, '--struct', 'ngx_pool', '--json']);
    t.equal(pools.code, 3, `${what}: partial, exit 3`);
    const row = pools.json.items.find((p: Json) => p.addr === truth.pools[0].addr);
    t.ok(row === undefined || row.blocks === null, `${what}: pool 0 is not read as zeros`);
    t.ok(pools.json.errors.some((e: Json) => /the core is cut short: its bytes would be at offset \d+ of .*, which ends at \d+/.test(e.message)), `${what}: the errors say the core is cut short`);
    for (const p of pools.json.items as Json[]) {
      const want = truth.pools.find((x: Json) => x.addr === p.addr);
      if (p.blocks !== null) t.equal(p.blocks, want.blocks, `${what}: a pool read whole is right`);
    }
    const list = await xsample(['--core', core, '--exe', exe, '--struct', 'walkee_list', '--json']);
    const item = list.json.items[0];
    t.ok(list.json.partial || (item.count === truth.list.count && item.sum === truth.list.sum), `${what}: the list is right or partial (count ${item.count})`);
  }
});

t.test('a note that claims 256 MiB is refused, not read', async (t) => {
  const { exe, bytes } = await walkeeAndCore(t);
  const huge = Buffer.from(bytes);
  setFilesz(huge, noteSegment(huge), 256 * 1024 * 1024);
  const core = path.join(tmp, 'huge-note.core');
  fs.writeFileSync(core, huge);
  oneLine(t, await xsample(['--core', core, '--exe', exe, '--struct', 'walkee_list']), 1, /a note area of 268435456 bytes \(more than 16 MiB\)/);
});

t.test("a core that names another file in place of the one mapped never makes xsample read it", async (t) => {
  const { exe, truth, bytes } = await walkeeAndCore(t);
  const secretDir = fs.mkdtempSync('/tmp/xw-');
  t.teardown(() => fs.rmSync(secretDir, { recursive: true, force: true }));
  const secret = pathOfLength(secretDir, Buffer.byteLength(exe));
  fs.writeFileSync(secret, 'TOPSECRET '.repeat(200_000), { mode: 0o600 });
  const fifo = pathOfLength(fs.mkdtempSync(path.join(secretDir, 'f')), Buffer.byteLength(exe));
  await execa('mkfifo', [fifo]);
  // As a kernel core does, leave the executable's read-only pages out (.rodata, where walkee.name points):
  // then they are read from the file the NT_FILE note names.
  const craft = (name: string, to: string, which: (e: { path: string; fileOffset: number; start: number; end: number }) => boolean, owner?: number) => {
    const b = Buffer.from(bytes);
    for (const e of fileEntries(b)) {
      if (e.path !== exe) continue;
      for (const p of programHeaders(b)) if (p.type === 1 && (p.flags & 2) === 0 && p.vaddr >= e.start && p.vaddr < e.end && e.fileOffset !== 0) setFilesz(b, p, 0);
      if (which(e)) renameEntry(b, e, to);
    }
    const file = path.join(tmp, name);
    fs.writeFileSync(file, b);
    if (owner !== undefined) fs.chownSync(file, owner, owner);
    return file;
  };
  // Only the mapping of .rodata: the one holding the entry point stands for the executable, which --exe replaces.
  const elf = ElfFile.open(exe);
  const rodata = elf.section('.rodata')!.offset;
  elf.close();
  const rodataOnly = (e: { fileOffset: number; start: number; end: number }) => e.fileOffset <= rodata && rodata < e.fileOffset + (e.end - e.start);

  // walkee.name points into .rodata: a file-backed page the core left out, read from the file NT_FILE names.
  const cases: [string, string, RegExp][] = [
    ["another user's core names a root-only file", craft('other-user.core', secret, rodataOnly, 65534), /is not readable by the owner of .*, so it is not read for them/],
    ['our own core names a file whose ELF header it does not hold', craft('own.core', secret, rodataOnly), /the core does not hold the ELF header of .*, so it cannot tell which file was mapped there/],
    ['a core names a FIFO', craft('fifo.core', fifo, rodataOnly), /the core does not hold the ELF header|is a FIFO, not a regular file/],
  ];
  for (const [what, core, reason] of cases) {
    const r = await xsample(['--core', core, '--exe', exe, '--struct', 'walkee_name', '--json'], { timeout: 30_000 });
    t.equal(r.code, 3, `${what}: partial, exit 3`);
    t.equal(r.json.items[0].name, null, `${what}: the name is not read from the file it names`);
    t.match(r.json.errors[0].message, reason, `${what}: and the error says why`);
    t.notMatch(r.stdout + r.stderr, /TOPSECRET/, `${what}: nothing of the secret`);
  }
  const honest = await xsample(['--core', craft('honest.core', exe, () => false), '--struct', 'walkee_name', '--json']);
  t.same(honest.json.items[0].name, truth.name, 'the untouched core reads the name from the file it names');

  // Naming the secret for the executable too: without --exe there is no executable to trust.
  const all = craft('all.core', secret, () => true, 65534);
  const r = await xsample(['--core', all, '--struct', 'walkee_name']);
  oneLine(t, r, 1, /cannot use the executable it names: .* is not readable by the owner of .*: pass --exe with the binary that dumped it/);
  t.notMatch(r.stdout + r.stderr, /TOPSECRET/);
});

t.test('a FIFO where a file is wanted is one clear line, never a hang', async (t) => {
  const { exe, core } = await walkeeAndCore(t);
  const fifo = path.join(tmp, 'fifo');
  await execa('mkfifo', [fifo]);
  const run = (args: string[]) => xsample(args, { timeout: 30_000 });
  oneLine(t, await run(['--core', fifo, '--struct', 'walkee_list']), 1, /fifo: is a FIFO, not a regular file/);
  oneLine(t, await run(['--core', core, '--exe', fifo, '--struct', 'walkee_list']), 1, /fifo: is a FIFO, not a regular file/);
  for (const args of [
    ['layout', '--pack', 'walkee', fifo],
    ['check', '--schema', fifo],
  ]) {
    const r = await execa(process.execPath, [xgen, ...args], { reject: false, timeout: 30_000 });
    t.equal(r.exitCode, 1, `xgen ${args[0]}: exit 1 (${r.stderr})`);
    t.match(r.stderr, /fifo: is a FIFO, not a regular file/, `xgen ${args[0]}: says why`);
  }
  t.ok(fs.existsSync(exe));
});

t.test('a segment offset of 2^60 is a fault that says where the segment points, never an internal error', async (t) => {
  const { exe, truth, bytes } = await walkeeAndCore(t);
  const pool0 = Number(truth.pools[0].addr);
  const moved = Buffer.from(bytes);
  const seg = loadHolding(bytes, pool0);
  setOffset(moved, seg, 2 ** 60);
  const core = path.join(tmp, 'offset-2-60.core');
  fs.writeFileSync(core, moved);
  const r = await xsample(['--core', core, '--exe', exe, '--struct', 'ngx_pool', '--json']);
  t.equal(r.code, 3, 'partial, exit 3');
  t.notMatch(r.stderr, /internal error|out of range/);
  t.ok(r.json.errors.some((e: Json) => new RegExp(`the core's segment at 0x${seg.vaddr.toString(16)} says its bytes are at offset 0x1000000000000000, past the end of .* \\(${bytes.length} bytes\\)`).test(e.message)), 'the errors say where the segment points');
  const row = r.json.items.find((p: Json) => p.addr === truth.pools[0].addr);
  t.ok(row === undefined || row.blocks === null, 'pool 0 is not read as zeros');
});

t.test('a core cut short says so first: at 70%, and inside its notes', async (t) => {
  const { exe, bytes } = await walkeeAndCore(t);
  // gcore writes its notes last: cut at 70%, they are gone, and so is what names the executable.
  const cut70 = path.join(tmp, 'cut70.core');
  const at70 = Math.floor(bytes.length * 0.7);
  fs.writeFileSync(cut70, bytes.subarray(0, at70));
  const need = Math.max(...programHeaders(bytes).filter((p) => p.type === 1 || p.type === 4).map((p) => p.offset + p.filesz));
  for (const args of [['--core', cut70], ['--core', cut70, '--exe', exe]]) {
    const r = await xsample([...args, '--struct', 'walkee_list', '--json']);
    const said = new RegExp(`core is truncated: ${at70} bytes, the segments need ${need}`);
    if (r.code === 1) oneLine(t, r, 1, said);
    else t.ok(r.code === 3 && r.json.errors.some((e: Json) => /cut short/.test(e.message)), `${args.join(' ')}: partial, saying the core is cut short`);
    t.notMatch(r.stderr, /cannot tell where|pass --exe/, `${args.join(' ')}: not what failed because of it`);
  }
  const plain = await xsample(['--core', cut70, '--struct', 'walkee_list']);
  oneLine(t, plain, 1, new RegExp(`^xsample: ${cut70}: core is truncated: ${at70} bytes, the segments need ${need} \\(cut short while it was written or copied: dump it again\\)$`));

  // A kernel core has its notes first: cut inside them.
  const kernel = kernelStyle(bytes);
  const note = noteSegment(kernel);
  const inNotes = path.join(tmp, 'cut-in-notes.core');
  const cutAt = note.offset + Math.floor(note.filesz / 2);
  fs.writeFileSync(inNotes, kernel.subarray(0, cutAt));
  const kneed = Math.max(...programHeaders(kernel).filter((p) => p.type === 1 || p.type === 4).map((p) => p.offset + p.filesz));
  oneLine(t, await xsample(['--core', inNotes, '--struct', 'walkee_list']), 1, new RegExp(`core is truncated: ${cutAt} bytes, the segments need ${kneed}`));
});

t.test('an NT_FILE table that lists the executable at overlapping addresses says the table is corrupt', async (t) => {
  const { exe, bytes } = await walkeeAndCore(t);
  const b = Buffer.from(bytes);
  const mine = fileEntries(b).filter((e) => e.path === exe);
  t.ok(mine.length >= 2, 'the executable has several mappings');
  // The second mapping now starts inside the first.
  b.writeBigUInt64LE(BigInt(mine[0].start + 4096), mine[1].entryAt);
  const core = path.join(tmp, 'overlap.core');
  fs.writeFileSync(core, b);
  for (const args of [['--core', core], ['--core', core, '--exe', exe]]) {
    const r = await xsample([...args, '--struct', 'walkee_list']);
    oneLine(t, r, 1, /its NT_FILE note lists .*walkee at 0x[0-9a-f]+-0x[0-9a-f]+ and .*walkee at 0x[0-9a-f]+-0x[0-9a-f]+, which overlap: the file table is corrupt/);
    t.notMatch(r.stderr, /does not hold the ELF header/);
  }
});
