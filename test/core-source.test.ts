import t from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ElfFile } from '../core/elf.ts';
import { CoreSource } from '../sampler/memory/core-source.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { findMapping } from '../sampler/memory/proc-maps.ts';
import { UserError } from '../sampler/memory/memory.ts';

type TestContext = Parameters<Parameters<typeof t.test>[0]>[0];

const fixture = fileURLToPath(new URL('./fixtures/xw-target.c', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xw-core-'));
const children: ChildProcess[] = [];

t.teardown(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

function compile(name: string, ...flags: string[]): string {
  const out = path.join(dir, name);
  execFileSync('cc', ['-g', '-O0', ...flags, '-o', out, fixture]);
  return out;
}

interface Printed {
  pid: number;
  global: number;
  ver: number;
  heap: number;
  heapText: string;
  edge: number;
}

/** Starts the target (through argv, e.g. a shell) and reads the line it prints. */
async function startTarget(argv: string[], cwd = dir): Promise<{ child: ChildProcess; printed: Printed }> {
  const child = spawn(argv[0], argv.slice(1), { cwd, stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  let text = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    text += chunk;
    if (text.includes('\n')) break;
  }
  const field = (name: string): string => {
    const m = new RegExp(`\\b${name}=(\\S+)`).exec(text);
    if (!m) throw new Error(`target printed no ${name}: ${text}`);
    return m[1];
  };
  return {
    child,
    printed: {
      pid: Number(field('pid')),
      global: Number(field('global')),
      ver: Number(field('ver')),
      heap: Number(field('heap')),
      heapText: field('heap_text'),
      edge: Number(field('edge')),
    },
  };
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}

function read(source: CoreSource, addr: number, len: number): { count: number; bytes: Buffer } {
  const bytes = Buffer.alloc(len);
  return { count: source.readInto(addr, bytes), bytes };
}

/** What every core of the target must give, however it was written. */
function checkCore(t: TestContext, corePath: string, exe: string, printed: Printed): void {
  const elf = ElfFile.open(exe);
  const core = CoreSource.open(corePath, exe);
  t.teardown(() => { core.close(); elf.close(); });

  t.equal(core.pid, printed.pid);
  t.equal(core.description, `core ${corePath} (pid ${printed.pid})`);
  t.equal(core.exeBuildId, elf.buildId());
  t.ok(core.fileMappings.some((m) => m.path === exe && m.fileOffset === 0), 'NT_FILE names the executable');

  const symbols = new SymbolTable(elf.symbols(), core.loadBias(elf));
  const global = symbols.address('xw_global')!;
  t.equal(global, printed.global);
  const g = read(core, global, 8);
  t.equal(g.count, 8);
  t.equal(g.bytes.readUInt32LE(0) + g.bytes.readUInt32LE(4) * 2 ** 32, 0x1234567);

  const heap = read(core, printed.heap, printed.heapText.length + 1);
  t.equal(heap.count, printed.heapText.length + 1);
  t.equal(heap.bytes.toString('latin1'), printed.heapText + '\0');

  t.equal(symbols.address('ver'), printed.ver);
  const ver = read(core, printed.ver, 14);
  t.equal(ver.count, 14, '.rodata is readable (from the core or the executable)');
  t.equal(ver.bytes.toString('latin1'), 'fakesrv/9.8.7\0');

  // The whole text page is readable even though no dumper writes .text.
  const main = symbols.address('main')!;
  const code = read(core, main, 16);
  t.equal(code.count, 16);
  t.same(code.bytes, elf.readVaddr(main - core.loadBias(elf), 16), 'text bytes match the executable');

  t.equal(read(core, 0x1000, 8).count, 0, 'unmapped address');
  t.equal(read(core, 0x7ff000000000 - 4096 * 3, 8).count, 0, 'another unmapped address');
  const edge = read(core, printed.edge - 8, 16);
  t.equal(edge.count, 8, 'a read straddling the end of a mapping stops at the end');
  t.equal(edge.bytes.toString('latin1', 0, 8), 'EDGE-END');

  const mappings = core.mappings();
  for (let i = 1; i < mappings.length; i++) t.ok(mappings[i - 1].start <= mappings[i].start, 'sorted');
  t.ok(findMapping(mappings, printed.heap), 'heap is in mappings()');
  t.ok(findMapping(mappings, printed.ver), '.rodata is in mappings()');
  t.ok(findMapping(mappings, main), '.text is in mappings()');
  t.equal(findMapping(mappings, printed.edge), null, 'the hole after edge is not');
  t.equal(findMapping(mappings, 0x1000), null);
}

const exe = compile('target');
const otherExe = compile('target-other', '-Wl,--build-id=0x0123456789abcdef0123456789abcdef01234567');

t.test('a core written by gcore', async (t) => {
  const { child, printed } = await startTarget([exe]);
  const prefix = path.join(dir, 'gcore');
  execFileSync('gcore', ['-o', prefix, String(printed.pid)], { stdio: 'ignore' });
  await stop(child);
  const corePath = `${prefix}.${printed.pid}`;
  checkCore(t, corePath, exe, printed);

  const without = CoreSource.open(corePath);
  t.teardown(() => without.close());
  t.equal(without.pid, printed.pid, 'opens without --exe too');
  t.equal(read(without, printed.ver, 7).bytes.toString('latin1'), 'fakesrv', 'reads the executable from its recorded path');

  const other = ElfFile.open(otherExe);
  const otherId = other.buildId();
  other.close();
  t.throws(
    () => CoreSource.open(corePath, otherExe),
    new UserError(`${otherExe}: build-id ${otherId} differs from build-id ${without.exeBuildId} of the executable in ${corePath}`),
  );
  t.throws(() => CoreSource.open(exe), new UserError(`${exe}: not an ELF core file (e_type 3)`));
});

t.test('a core written by the kernel', async (t) => {
  const pattern = fs.readFileSync('/proc/sys/kernel/core_pattern', 'utf8').trim();
  if (pattern !== 'core') {
    t.plan(0, `core_pattern is ${JSON.stringify(pattern)}, not "core"`);
    return;
  }
  const cwd = fs.mkdtempSync(path.join(dir, 'kernel-'));
  const { child, printed } = await startTarget(['sh', '-c', `ulimit -c unlimited && exec ${exe}`], cwd);
  child.kill('SIGSEGV');
  await once(child, 'exit');
  const corePath = path.join(cwd, fs.readFileSync('/proc/sys/kernel/core_uses_pid', 'utf8').trim() === '1' ? `core.${printed.pid}` : 'core');
  if (!fs.existsSync(corePath)) {
    t.plan(0, 'the kernel wrote no core file (RLIMIT_CORE or a container setting)');
    return;
  }
  checkCore(t, corePath, exe, printed);
});
