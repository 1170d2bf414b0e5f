import t from 'tap';
import { compilePattern } from '../core/pattern.ts';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ET_DYN, ElfFile } from '../core/elf.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { exePath, findMapping, loadBias, parseMaps, readProcMaps } from '../sampler/memory/proc-maps.ts';
import { TargetGone, UserError } from '../sampler/memory/memory.ts';

const fixture = fileURLToPath(new URL('./fixtures/xw-target.c', import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xw-elf-'));
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

const run = (cmd: string, ...args: string[]): string => execFileSync(cmd, args, { encoding: 'utf8' });

/** The build-id as binutils' readelf prints it: an independent reading. */
function readelfBuildId(file: string): string {
  const m = /Build ID: ([0-9a-f]+)/.exec(run('readelf', '-n', file));
  if (!m) throw new Error(`readelf shows no build-id for ${file}`);
  return m[1];
}

function nmValue(file: string, symbol: string, dynamic = false): number {
  const out = run('nm', ...(dynamic ? ['-D'] : []), file);
  const line = out.split('\n').find((l) => l.endsWith(' ' + symbol));
  if (!line) throw new Error(`nm shows no ${symbol} in ${file}`);
  return parseInt(line.split(' ')[0], 16);
}

interface Printed {
  pid: number;
  global: number;
  ver: number;
}

async function startTarget(exe: string): Promise<{ child: ChildProcess; printed: Printed }> {
  const child = spawn(exe, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  let text = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    text += chunk;
    if (text.includes('\n')) break;
  }
  const field = (name: string): number => {
    const m = new RegExp(`\\b${name}=(0x[0-9a-f]+|\\d+)`).exec(text);
    if (!m) throw new Error(`target printed no ${name}: ${text}`);
    return Number(m[1]);
  };
  return { child, printed: { pid: field('pid'), global: field('global'), ver: field('ver') } };
}

function missingPid(): number {
  const max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let pid = max - 1; pid > 1; pid--) if (!fs.existsSync(`/proc/${pid}`)) return pid;
  throw new Error('no free pid');
}

const plain = compile('target');
const exported = compile('target-dyn', '-rdynamic');
const stripped = path.join(dir, 'target-dyn-stripped');
fs.copyFileSync(exported, stripped);
execFileSync('strip', [stripped]);

const TYPES: Record<string, number> = { NOTYPE: 0, OBJECT: 1, FUNC: 2, SECTION: 3, FILE: 4, TLS: 6, IFUNC: 10 };
const BINDS: Record<string, number> = { LOCAL: 0, GLOBAL: 1, WEAK: 2, UNIQUE: 10 };
const NDX: Record<string, number> = { UND: 0, ABS: 0xfff1, COM: 0xfff2 };

/** The named entries of file's .symtab as binutils' readelf prints them (non-ASCII as \uXXXX): an independent reading. */
function readelfSymtab(file: string): [string, number, number, number, number, number][] {
  const text = execFileSync('readelf', ['-sW', '--unicode=escape', file]).toString('utf8');
  const table = text.slice(text.indexOf("Symbol table '.symtab'"));
  return table
    .split('\n')
    .map((l) => /^\s*\d+: ([0-9a-f]+)\s+(\S+) (\S+)\s+(\S+)\s+\S+\s+(\S+) (.+)$/.exec(l))
    .filter((m) => m !== null)
    .map((m) => [m[6].replace(/\\u([0-9a-f]{4})/g, (_, u: string) => String.fromCharCode(parseInt(u, 16))), parseInt(m[1], 16), Number(m[2]), TYPES[m[3]] ?? -1, BINDS[m[4]] ?? -1, NDX[m[5]] ?? Number(m[5])]);
}

t.test('every named .symtab entry as readelf reads it, a name in UTF-8 too', async (t) => {
  const source = path.join(dir, 'utf8.c');
  fs.writeFileSync(source, 'int caf\u00e9 = 1;\nint main(void) { return caf\u00e9 - 1; }\n');
  const utf8 = path.join(dir, 'utf8');
  execFileSync('cc', ['-o', utf8, source]);
  for (const file of [plain, utf8]) {
    const elf = ElfFile.open(file);
    t.teardown(() => elf.close());
    const want = readelfSymtab(file);
    t.ok(want.length > 20, `${path.basename(file)}: readelf lists ${want.length}`);
    t.same(elf.symtab().map((s) => [s.name, s.value, s.size, s.type, s.bind, s.shndx]), want, path.basename(file));
  }
  const elf = ElfFile.open(utf8);
  t.teardown(() => elf.close());
  t.equal(elf.symbols().find((s) => s.name === 'caf\u00e9')?.value, nmValue(utf8, 'caf\u00e9'), 'the name in UTF-8, found by it');
});

t.test('headers, build-id, symbols and strings of a PIE', async (t) => {
  const elf = ElfFile.open(plain);
  t.teardown(() => elf.close());
  t.equal(elf.type, ET_DYN);
  t.equal(elf.buildId(), readelfBuildId(plain));
  t.ok(elf.hasDebugInfo());
  const sym = elf.symbols().find((s) => s.name === 'xw_global');
  t.ok(sym, 'xw_global in .symtab');
  t.equal(sym?.value, nmValue(plain, 'xw_global'));
  t.equal(sym?.size, 8);
  t.equal(elf.findPattern(compilePattern('fakesrv/(\\d+\\.\\d+\\.\\d+)')), '9.8.7');
  t.equal(elf.findPattern(compilePattern('(fakesrv)/\\d+')), 'fakesrv', 'the capture, wherever it sits');
  t.equal(elf.findPattern(compilePattern('nosuchserver/(\\d+)')), null);
  const ver = elf.symbols().find((s) => s.name === 'ver')!;
  t.equal(elf.readVaddr(ver.value, 13)?.toString('latin1'), 'fakesrv/9.8.7');
  t.equal(elf.readVaddr(0x7fff0000, 4), null);
});

t.test('a stripped copy keeps the build-id and the dynamic symbols', async (t) => {
  const full = ElfFile.open(exported);
  const bare = ElfFile.open(stripped);
  t.teardown(() => { full.close(); bare.close(); });
  t.ok(full.hasDebugInfo());
  t.notOk(bare.hasDebugInfo());
  t.equal(bare.section('.symtab'), null);
  t.equal(bare.buildId(), readelfBuildId(stripped));
  t.equal(bare.buildId(), full.buildId());
  const sym = bare.symbols().find((s) => s.name === 'xw_global');
  t.equal(sym?.value, nmValue(stripped, 'xw_global', true), 'xw_global from .dynsym');
  t.equal(full.symbols().filter((s) => s.name === 'xw_global').length, 1, '.symtab and .dynsym entries are merged');
});

t.test('symbol addresses in a running process', async (t) => {
  const { child, printed } = await startTarget(plain);
  t.equal(printed.pid, child.pid);
  const maps = readProcMaps(printed.pid);
  const exe = exePath(printed.pid);
  t.equal(exe, fs.realpathSync(plain));
  const elf = ElfFile.open(exe);
  t.teardown(() => elf.close());
  const bias = loadBias(maps, exe, elf);
  t.equal(bias % 4096, 0, 'page-aligned bias');
  const symbols = new SymbolTable(elf.symbols(), bias);
  t.equal(symbols.address('xw_global'), printed.global);
  t.equal(symbols.address('ver'), printed.ver);
  t.equal(symbols.address('no_such_symbol'), null);
  t.same(symbols.symbolize(printed.global + 4), { name: 'xw_global', offset: 4 });
  t.equal(symbols.symbolize(symbols.address('main')! + 3)?.name, 'main');
  t.equal(symbols.symbolize(1), null);
  t.equal(findMapping(maps, printed.global)?.path, fs.realpathSync(plain));
  t.equal(findMapping(maps, 4096), null);

  const viaProc = ElfFile.open(`/proc/${printed.pid}/exe`);
  t.teardown(() => viaProc.close());
  t.equal(loadBias(maps, exe, viaProc), bias, 'same bias from /proc/PID/exe');
  const other = ElfFile.open(exported);
  t.teardown(() => other.close());
  t.throws(() => loadBias(maps, exported, other), UserError, 'an executable the process does not map');
});

t.test('an executable replaced on disk while it runs', async (t) => {
  const running = path.join(dir, 'replaced');
  fs.copyFileSync(plain, running);
  const { child, printed } = await startTarget(running);
  const fresh = path.join(dir, 'replaced.new');
  fs.copyFileSync(exported, fresh);
  fs.renameSync(fresh, running);
  const maps = readProcMaps(printed.pid);
  const exe = exePath(printed.pid);
  t.equal(exe, fs.realpathSync(running), '" (deleted)" is stripped');
  const onDisk = ElfFile.open(exe);
  const viaProc = ElfFile.open(`/proc/${printed.pid}/exe`);
  t.teardown(() => { onDisk.close(); viaProc.close(); });
  t.throws(() => loadBias(maps, exe, onDisk), UserError, 'the new file would give wrong symbols');
  const symbols = new SymbolTable(viaProc.symbols(), loadBias(maps, exe, viaProc));
  t.equal(symbols.address('xw_global'), printed.global, '/proc/PID/exe still reaches the running binary');
  child.kill('SIGKILL');
  await once(child, 'exit');
});

t.test('parseMaps', async (t) => {
  const maps = parseMaps(
    '7f0000001000-7f0000002000 rw-p 00000000 00:00 0 \n' +
      '55d0c8a00000-55d0c8a2c000 r--p 00001000 08:01 1234567    /opt/my server/nginx (deleted)\n' +
      'ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0                  [vsyscall]\n',
  );
  t.equal(maps.length, 3);
  t.same(maps[0], {
    start: 0x55d0c8a00000, end: 0x55d0c8a2c000, perms: 'r--p', offset: 0x1000,
    dev: '08:01', inode: 1234567, path: '/opt/my server/nginx (deleted)',
  });
  t.equal(maps[1].path, '');
  t.equal(maps[2].path, '[vsyscall]');
  t.equal(findMapping(maps, 0x7f0000001fff), maps[1]);
  t.equal(findMapping(maps, 0x7f0000002000), null);
  t.throws(() => parseMaps('garbage\n'), UserError);
});

t.test('errors', async (t) => {
  const missing = path.join(dir, 'no-such-file');
  t.throws(() => ElfFile.open(missing), new UserError(`${missing}: no such file`));
  const text = path.join(dir, 'not-elf.txt');
  fs.writeFileSync(text, 'hello, not an ELF file\n');
  t.throws(() => ElfFile.open(text), new UserError(`${text}: not an ELF file`));
  const tiny = path.join(dir, 'truncated');
  fs.writeFileSync(tiny, fs.readFileSync(plain).subarray(0, 40));
  t.throws(() => ElfFile.open(tiny), new UserError(`${tiny}: truncated ELF header`));
  t.throws(() => ElfFile.open(dir), UserError);
  const pid = missingPid();
  t.throws(() => readProcMaps(pid), new TargetGone(`process ${pid} exited (or does not exist)`));
  t.throws(() => exePath(pid), new TargetGone(`process ${pid} exited (or does not exist)`));
  const kthread = kernelThread();
  if (kthread === null) t.comment('no kernel thread is visible in this pid namespace');
  else t.throws(() => exePath(kthread), new UserError(`/proc/${kthread}/exe: not available (process ${kthread} is a kernel thread or a zombie)`), `a kernel thread (pid ${kthread}) has no executable`);
  const zombie = await makeZombie();
  t.throws(() => exePath(zombie), new UserError(`/proc/${zombie}/exe: not available (process ${zombie} is a kernel thread or a zombie)`), `a zombie the test made (pid ${zombie}) has no executable`);
});

/** A kernel thread: a process whose flags (the 9th field of /proc/PID/stat) have PF_KTHREAD; null if none is visible. */
function kernelThread(): number | null {
  const PF_KTHREAD = 0x00200000;
  for (const name of fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n))) {
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // gone since
    }
    const flags = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[6]);
    if (flags & PF_KTHREAD) return Number(name);
  }
  return null;
}

/**
 * A child of a shell that then exec'd sleep: it ends when the test writes a line, and sleep never
 * reaps it, so it stays a zombie until the test kills sleep.
 */
async function makeZombie(): Promise<number> {
  const parent = spawn('sh', ['-c', 'exec 3<&0; (read line <&3) & echo $!; exec sleep 60 </dev/null'], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(parent);
  parent.stdout!.setEncoding('utf8');
  let text = '';
  for await (const chunk of parent.stdout!) {
    text += chunk;
    if (text.includes('\n')) break;
  }
  const pid = Number(text.trim());
  if (!(pid > 0)) throw new Error(`the shell printed no pid: ${text}`);
  parent.stdin!.end('\n');
  const state = () => {
    try {
      return /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))![1];
    } catch {
      return 'gone';
    }
  };
  const deadline = Date.now() + 30_000;
  while (state() !== 'Z') {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not become a zombie (state ${state()})`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return pid;
}
