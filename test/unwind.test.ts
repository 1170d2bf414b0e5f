/**
 * The DWARF CFI unwinder (sampler/unwind/) against gdb's own unwinding of
 * the same stopped state: a target is dumped with gcore, gdb walks the core
 * (it reads .eh_frame too, and libc's debug info when installed), and the
 * unwinder walks the core's registers and a copy of its stack, frame for
 * frame to the outermost. Then the CFI machinery alone, on hand-built bytes:
 * each DW_CFA op, DWARF expressions, and malformed tables that must give
 * "no CFI", never a throw or a hang.
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ElfFile } from '../core/elf.ts';
import { CoreSource } from '../sampler/memory/core-source.ts';
import { applyRow, Unwinder, type StackCopy, type Unwound } from '../sampler/memory/unwind/unwinder.ts';
import { DEBUG_BUILD_ID_DIR, ProcessObjects, type ObjectLookup, type UnwindObject } from '../sampler/memory/unwind/objects.ts';
import { CfiError, CfiTable, EhFrameHdr } from '../core/eh-frame.ts';
import { evalExpr, rowAt, RuleKind, type Row } from '../sampler/memory/unwind/cfi.ts';
import { regsFromNamed, regsFromPerf, RIP, RSP, unknownRegs, type Regs } from '../sampler/memory/unwind/regs.ts';
import { KernelSymbols, nativeFrameName } from '../sampler/memory/unwind/frame-names.ts';
import { gcore } from './lib/core-craft.ts';
import { build, programPath } from './lib/walkee.ts';
import { DEBIAN_NGINX, startNginx } from './lib/nginx.ts';

type TestContext = Parameters<Parameters<typeof t.test>[0]>[0];

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-unwind-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

const hex = (n: number) => `0x${n.toString(16)}`;

// ---------------------------------------------------------------- gdb's truth

interface GdbFrame {
  pc: number;
  name: string | null;
}

/** gdb's frames of a core, innermost first, to the outermost (past main and the entry point); tail-call frames gdb infers from debug info are not on the stack and are left out. */
async function gdbFrames(exe: string, core: string): Promise<{ frames: GdbFrame[]; entry: number; symbols: Map<number, string> }> {
  const script = path.join(dir, 'frames.py');
  fs.writeFileSync(
    script,
    [
      'import gdb',
      'f = gdb.newest_frame()',
      'while f is not None:',
      '    if f.type() != gdb.TAILCALL_FRAME:',
      '        print("FRAME %x %s" % (f.pc(), f.name()))',
      '    f = f.older()',
    ].join('\n'),
  );
  const r = await execa('gdb', ['-batch', '-nx', '-ex', 'set debuginfod enabled off', '-ex', 'set backtrace past-main on', '-ex', 'set backtrace past-entry on', exe, core, '-ex', `source ${script}`, '-ex', 'info files'], { env: { DEBUGINFOD_URLS: '' }, reject: false });
  const frames = [...r.stdout.matchAll(/^FRAME ([0-9a-f]+) (\S+)$/gm)].map((m) => ({ pc: parseInt(m[1], 16), name: m[2] === 'None' ? null : m[2] }));
  const entry = parseInt(/Entry point: 0x([0-9a-f]+)/.exec(r.stdout)?.[1] ?? 'NaN', 16);
  // `info symbol` for each caller's pc-1: the name gdb gives the function holding the call (from the file's own symbols).
  const asks = frames.flatMap((f, i) => ['-ex', `info symbol ${hex(i === 0 ? f.pc : f.pc - 1)}`]);
  const s = await execa('gdb', ['-batch', '-nx', '-ex', 'set debuginfod enabled off', exe, core, ...asks], { env: { DEBUGINFOD_URLS: '' }, reject: false });
  const answers = s.stdout.split('\n').filter((l) => / in section |^No symbol matches/.test(l));
  const symbols = new Map<number, string>();
  frames.forEach((f, i) => symbols.set(f.pc, answers[i] ?? '(no answer)'));
  return { frames, entry, symbols };
}

/** The unwinder over a core: the first thread's registers (NT_PRSTATUS) and 64 KiB of stack from its rsp. */
function unwindCore(corePath: string, objects?: (core: CoreSource) => ObjectLookup): { result: Unwound; core: CoreSource; stack: StackCopy; regs: Regs; unwinder: Unwinder } {
  const core = CoreSource.open(corePath);
  const regs = regsFromNamed(core.registers!);
  const bytes = Buffer.alloc(64 * 1024);
  const n = core.readInto(regs[RSP], bytes);
  const stack = { sp: regs[RSP], bytes: bytes.subarray(0, n) };
  const unwinder = new Unwinder(objects ? objects(core) : ProcessObjects.core(core));
  return { result: unwinder.unwind(regs, stack), core, stack, regs, unwinder };
}

const names = (u: Unwound) => u.frames.map((f) => nativeFrameName(f.object, f.pc, f.returnAddress ?? false));
const pcs = (frames: { pc: number }[]) => frames.map((f) => hex(f.pc));

/** Waits until the process is asleep in the kernel (state S): blocked where the test put it. */
async function asleep(pid: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'S') return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`process ${pid} never blocked`);
}

async function startUnwindee(mode: 'read' | 'signal' | 'clock', binary = programPath('unwindee')) {
  const child = spawn(binary, [mode], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  let out = '';
  const line = (want: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (out.includes(`${want}\n`) ? resolve() : undefined);
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        check();
      });
      child.once('exit', (code) => reject(new Error(`unwindee exited (${code}) before "${want}"`)));
      check();
    });
  await line(mode === 'signal' ? 'in-handler' : 'ready');
  if (mode !== 'clock') await asleep(child.pid!);
  return child;
}

// ---------------------------------------------------------------- against gdb

t.test('unwindee blocked in read (no -g, no frame pointers): every frame gdb finds, to _start', async (t) => {
  build('unwindee');
  const exe = programPath('unwindee');
  const elf = ElfFile.open(exe);
  t.equal(elf.section('.debug_info'), null, 'the target has no debug info');
  t.equal(elf.section('.debug_frame'), null, 'and no .debug_frame: .eh_frame alone');
  elf.close();
  const child = await startUnwindee('read');
  const corePath = await gcore(child.pid!, dir);
  const truth = await gdbFrames(exe, corePath);
  const { result, core } = unwindCore(corePath);
  t.teardown(() => core.close());
  t.ok(truth.frames.length >= 10, `gdb found the chain: ${truth.frames.map((f) => f.name).join(' ← ')}`);
  t.same(pcs(result.frames), pcs(truth.frames), 'the same pcs as gdb, frame for frame');
  t.equal(result.end, 'outermost', 'ends at the outermost frame (_start undefines the return address)');
  const ours = names(result);
  t.same(ours.slice(1, 8), ['chain_6', 'chain_5', 'chain_4', 'chain_3', 'chain_2', 'chain_1', 'main'], 'the chain, named from .symtab (chain_4 is static)');
  t.equal(ours[0], 'read', 'libc read, entered through the PLT, named from its .dynsym');
  t.equal(ours[ours.length - 1], '_start', 'the entry point');
  t.equal(result.frames[0].object?.name, 'libc.so.6', 'frame 0 is in libc');
  t.match(result.frames[0].object?.buildId, /^[0-9a-f]{40}$/, 'whose build-id is known');
  const libcId = result.frames[0].object!.buildId!;
  if (fs.existsSync(`${DEBUG_BUILD_ID_DIR}/${libcId.slice(0, 2)}/${libcId.slice(2)}.debug`)) {
    t.ok(ours.includes('__libc_start_call_main'), "libc's static __libc_start_call_main named from its separate debug file (libc6-dbg), as gdb names it");
  } else t.comment('no separate debug file for libc here: its static functions are libc.so.6+offset');

  // The same frames through the live process's own maps and map_files (as xsample record --cpu opens them).
  const live = unwindCore(corePath, () => ProcessObjects.live(child.pid!));
  t.teardown(() => live.core.close());
  t.same(pcs(live.result.frames), pcs(truth.frames), 'ProcessObjects.live gives the same frames');
  t.same(names(live.result), ours, 'and the same names');
});

t.test("unwindee interrupted by a signal: through glibc's signal trampoline (CFA by DWARF expression)", async (t) => {
  build('unwindee');
  const exe = programPath('unwindee');
  const child = await startUnwindee('signal');
  const corePath = await gcore(child.pid!, dir);
  const truth = await gdbFrames(exe, corePath);
  const { result, core } = unwindCore(corePath);
  t.teardown(() => core.close());
  t.same(pcs(result.frames), pcs(truth.frames), 'the same pcs as gdb, frame for frame');
  t.equal(result.end, 'outermost');
  const ours = names(result);
  const tramp = truth.frames.findIndex((f) => f.name === '__restore_rt');
  t.ok(tramp > 0, `gdb's frames hold the trampoline: ${truth.frames.map((f) => f.name).join(' ← ')}`);
  t.same(ours.slice(1, 3), ['handler_hop', 'on_alarm'], 'the handler');
  t.equal(ours[tramp + 1], 'chain_6', 'then the interrupted function');
  t.equal(result.frames[tramp + 1].returnAddress, false, 'whose pc is where it was interrupted, not a return address');
  t.ok(result.frames[tramp].object?.row(result.frames[tramp].pc - 1)?.signal, "the trampoline's CIE says signal frame ('S')");
});

t.test('unwindee in clock_gettime: through the vDSO (an ELF image in memory, no file), live and from a core', async (t) => {
  build('unwindee');
  const exe = programPath('unwindee');
  const child = await startUnwindee('clock');
  // gcore stops the loop wherever it is: cores are taken until one stops it inside the vDSO.
  for (let attempt = 1; ; attempt++) {
    const corePath = await gcore(child.pid!, dir);
    const { result, core } = unwindCore(corePath);
    t.teardown(() => core.close());
    if (result.frames[0].object?.name !== '[vdso]') {
      fs.rmSync(corePath);
      if (attempt < 30) continue;
      t.fail(`30 cores, none stopped in the vDSO: ${names(result).join(' ← ')}`);
      return;
    }
    const truth = await gdbFrames(exe, corePath);
    t.same(pcs(result.frames), pcs(truth.frames), `core ${attempt}: the same pcs as gdb, frame for frame`);
    t.equal(result.end, 'outermost');
    t.match(names(result)[0], /^(__vdso_\w+|\[vdso\]\+0x[0-9a-f]+)$/, `frame 0 in the vDSO: ${names(result)[0]} (its local helpers are in no .dynsym)`);
    t.ok(names(result).slice(0, 2).includes('__vdso_clock_gettime'), "__vdso_clock_gettime, named from the vDSO's .dynsym");
    t.ok(names(result).includes('chain_6') && names(result).includes('main'), names(result).join(' ← '));
    const live = unwindCore(corePath, () => ProcessObjects.live(child.pid!));
    t.teardown(() => live.core.close());
    t.same(pcs(live.result.frames), pcs(truth.frames), "ProcessObjects.live reads the vDSO from the process's memory: the same frames");
    return;
  }
});

t.test('.debug_frame: the same chain built with -g and no unwind tables', async (t) => {
  const exe = path.join(dir, 'unwindee-debug-frame');
  await execa('cc', ['-g', '-O2', '-fomit-frame-pointer', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables', '-o', exe, path.join(path.dirname(programPath('unwindee')), '..', 'unwindee.c')]);
  const elf = ElfFile.open(exe);
  const text = elf.symbols().find((s) => s.name === 'chain_4')!;
  const eh = new CfiTable('eh', elf.sectionBytes(elf.section('.eh_frame')!), elf.section('.eh_frame')!.addr);
  t.equal(eh.find(text.value), null, '.eh_frame has no FDE for chain_4');
  t.ok(elf.section('.debug_frame'), 'the binary has .debug_frame');
  elf.close();
  const child = await startUnwindee('read', exe);
  const corePath = await gcore(child.pid!, dir);
  const truth = await gdbFrames(exe, corePath);
  const { result, core } = unwindCore(corePath);
  t.teardown(() => core.close());
  t.same(pcs(result.frames), pcs(truth.frames), 'the same pcs as gdb, frame for frame');
  t.same(names(result).slice(1, 8), ['chain_6', 'chain_5', 'chain_4', 'chain_3', 'chain_2', 'chain_1', 'main']);
});

const dynamic = new Map<string, Set<string>>();
/** The function names a file's own .symtab and .dynsym hold. */
function dynamicNames(file: string): Set<string> {
  if (!dynamic.has(file)) {
    const elf = ElfFile.open(file);
    dynamic.set(file, new Set(elf.symbols().map((s) => s.name)));
    elf.close();
  }
  return dynamic.get(file)!;
}

/** Checks nginx frame names against gdb's `info symbol` and its load address (the entry point it reports). */
function checkNginxNames(t: TestContext, result: Unwound, truth: Awaited<ReturnType<typeof gdbFrames>>): void {
  const nginxBias = truth.entry - ElfFile.open(DEBIAN_NGINX).entry;
  let named = 0;
  let unnamed = 0;
  result.frames.forEach((f, i) => {
    const name = nativeFrameName(f.object, f.pc, i > 0);
    const gdbSays = truth.symbols.get(f.pc) ?? '';
    const gdbName = / in section /.test(gdbSays) ? gdbSays.split(' ')[0] : null;
    if (f.object?.path === DEBIAN_NGINX) {
      if (gdbName) {
        named++;
        t.equal(name, gdbName, `${hex(f.pc)}: named from .dynsym as gdb names it`);
      } else {
        unnamed++;
        t.equal(name, `nginx+${hex(f.pc - nginxBias)}`, `${hex(f.pc)}: no symbol (gdb: ${gdbSays}): nginx+offset, the offset from gdb's load address`);
      }
    } else if (gdbName && f.object) {
      // gdb may read a library's separate debug info (libc6-dbg) and name its static functions; we read the file's own symbols.
      const own = /\+0x[0-9a-f]+$/.test(name) ? null : name;
      if (own) t.equal(own, gdbName.replace(/@.*$/, ''), `${hex(f.pc)} in ${f.object.name}: named as gdb names it`);
      else t.notOk(dynamicNames(f.object.path).has(gdbName), `${hex(f.pc)} in ${f.object.name}: ${name}, and its file has no symbol ${gdbName}`);
    }
  });
  t.ok(named >= 3 && unnamed >= 2, `nginx frames: ${named} named (ngx_…), ${unnamed} by offset (static functions)`);
  t.ok(names(result).some((n) => /^ngx_/.test(n)), 'ngx_ names');
}

t.test("Debian's stripped nginx: an idle worker in epoll_wait, and one blocked in a Lua handler", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const pid = nginx.workerPid;
  await asleep(pid);
  const idle = await gcore(pid, dir);
  const truth = await gdbFrames(DEBIAN_NGINX, idle);
  const { result, core } = unwindCore(idle);
  t.teardown(() => core.close());
  t.same(pcs(result.frames), pcs(truth.frames), 'idle worker: the same pcs as gdb, frame for frame');
  t.equal(result.end, 'outermost');
  t.equal(names(result)[0], 'epoll_wait');
  t.ok(names(result).includes('ngx_process_events_and_timers') && names(result).includes('main') && names(result).includes('__libc_start_main'), names(result).join(' ← '));
  checkNginxNames(t, result, truth);

  // A request whose Lua handler runs os.execute: the worker waits in wait4, under libluajit's VM and the lua module.
  const fifo = path.join(dir, 'blocked.fifo');
  await execa('mkfifo', [fifo]);
  const done = fetch(`http://127.0.0.1:${nginx.port}/lua/blocked?fifo=${fifo}`).then((r) => r.text());
  const inWait = async () => {
    for (let i = 0; i < 2000; i++) {
      if (/^wait4|do_wait/.test(fs.readFileSync(`/proc/${pid}/wchan`, 'latin1')) || fs.readFileSync(`/proc/${pid}/syscall`, 'latin1').startsWith('61 ')) return;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('the worker never waited for its child');
  };
  await inWait();
  const deep = await gcore(pid, dir);
  fs.writeFileSync(fifo, 'x');
  t.equal((await done).trim(), 'done', 'the request finished after the core was taken');
  const deepTruth = await gdbFrames(DEBIAN_NGINX, deep);
  const d = unwindCore(deep);
  t.teardown(() => d.core.close());
  t.same(pcs(d.result.frames), pcs(deepTruth.frames), `Lua handler: the same ${deepTruth.frames.length} pcs as gdb, frame for frame`);
  t.equal(d.result.end, 'outermost');
  t.ok(d.result.frames.some((f) => f.object?.name.startsWith('libluajit')), 'through libluajit');
  t.ok(names(d.result).includes('ngx_http_lua_run_thread'), 'and the lua module, named from its .dynsym');
  checkNginxNames(t, d.result, deepTruth);

  // Speed: µs per unwound sample of this stack, the parsed tables and rows cached (as in a profile).
  const N = 2000;
  for (let i = 0; i < 500; i++) d.unwinder.unwind(d.regs, d.stack);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < N; i++) d.unwinder.unwind(d.regs, d.stack);
  const us = Number(process.hrtime.bigint() - t0) / 1000 / N;
  t.comment(`unwinding the ${d.result.frames.length}-frame Lua-handler stack: ${us.toFixed(2)} µs a sample (cached rows)`);
  t.ok(us < 1000, 'under a millisecond a sample');
});

// ---------------------------------------------------------------- CFI on hand-built bytes

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = ((n % 128) + 128) % 128;
    n = Math.floor(n / 128);
    const done = (n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0);
    out.push(done ? b : b | 0x80);
    if (done) return out;
  }
};
const u32le = (n: number) => [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
const u64le = (n: number) => [...u32le(n % 0x100000000), ...u32le(Math.floor(n / 0x100000000))];

/** CIE initial state of x86-64 gcc: CFA = rsp + 8, return address at CFA − 8. */
const CIE_INITIAL = [0x0c, 7, 8, 0x90, 1];

/**
 * An .eh_frame: one CIE ("zR", absolute 8-byte FDE addresses, code align 1, data align −8, ra 16) and FDEs;
 * each FDE covers [start, start+len) with the given instructions.
 */
function ehFrame(fdes: { start: number; len: number; insns: number[] }[], cieInsns = CIE_INITIAL, terminate = true, aug = { str: 'zR', data: [0x00], fdeData: [] as number[] }): Buffer {
  const cieBody = [...u32le(0), 1, ...Buffer.from(`${aug.str}\0`), ...uleb(1), ...sleb(-8), ...uleb(16), ...uleb(aug.data.length), ...aug.data, ...cieInsns];
  const out: number[] = [...u32le(cieBody.length), ...cieBody];
  for (const f of fdes) {
    const here = out.length;
    const body = [...u32le(here + 4), ...u64le(f.start), ...u64le(f.len), ...uleb(aug.fdeData.length), ...aug.fdeData, ...f.insns];
    out.push(...u32le(body.length), ...body);
  }
  if (terminate) out.push(...u32le(0));
  return Buffer.from(out);
}

const TEXT = 0x1000;
function rowFor(insns: number[], pc: number): Row | null {
  const table = new CfiTable('eh', ehFrame([{ start: TEXT, len: 0x100, insns }]), 0x9000);
  const fde = table.find(pc);
  try {
    return fde ? rowAt(table, fde, pc) : null;
  } catch (err) {
    if (err instanceof CfiError) return null;
    throw err;
  }
}
const rule = (row: Row | null, reg: number) => row?.rules[reg];

t.test('each DW_CFA op, at the pcs around its advance', async (t) => {
  t.equal(rowFor([], TEXT)?.cfaOffset, 8, "the CIE's initial instructions");
  t.equal(rowFor([0x44, 0x0e, 16], TEXT + 3)?.cfaOffset, 8, 'DW_CFA_advance_loc: before it');
  t.equal(rowFor([0x44, 0x0e, 16], TEXT + 4)?.cfaOffset, 16, 'and from it on');
  t.equal(rowFor([0x02, 0x20, 0x0e, 16], TEXT + 0x20)?.cfaOffset, 16, 'DW_CFA_advance_loc1');
  t.equal(rowFor([0x02, 0x20, 0x0e, 16], TEXT + 0x1f)?.cfaOffset, 8, 'DW_CFA_advance_loc1: before it');
  t.equal(rowFor([0x03, 0x40, 0x00, 0x0e, 16], TEXT + 0x40)?.cfaOffset, 16, 'DW_CFA_advance_loc2');
  t.equal(rowFor([0x04, 0x50, 0, 0, 0, 0x0e, 16], TEXT + 0x4f)?.cfaOffset, 8, 'DW_CFA_advance_loc4: before it');
  t.equal(rowFor([0x04, 0x50, 0, 0, 0, 0x0e, 16], TEXT + 0x50)?.cfaOffset, 16, 'DW_CFA_advance_loc4');
  t.equal(rowFor([0x01, ...u64le(TEXT + 0x30), 0x0e, 16], TEXT + 0x30)?.cfaOffset, 16, 'DW_CFA_set_loc');
  t.equal(rowFor([0x01, ...u64le(TEXT + 0x30), 0x0e, 16], TEXT + 0x2f)?.cfaOffset, 8, 'DW_CFA_set_loc: before it');
  // In .eh_frame the operand is encoded as the FDE's addresses are: here pcrel sdata4, relative to the operand itself.
  const pcrel = (insnsAt: (fdeStart: number) => number[]) => {
    const EH = 0x9000;
    const cie = [...u32le(0), 1, ...Buffer.from('zR\0'), ...uleb(1), ...sleb(-8), ...uleb(16), ...uleb(1), 0x1b, ...CIE_INITIAL];
    const fdeAt = 4 + cie.length;
    // FDE: length, CIE pointer, start (pcrel sdata4 at fdeAt+8), range (sdata4), aug length 0, instructions
    const body = (insns: number[]) => [...u32le(fdeAt + 4), ...u32le((TEXT - (EH + fdeAt + 8)) >>> 0), ...u32le(0x100), 0, ...insns];
    const insns = insnsAt(EH + fdeAt + 4 + body([]).length + 1);
    return new CfiTable('eh', Buffer.from([...u32le(cie.length), ...cie, ...u32le(body(insns).length), ...body(insns), ...u32le(0)]), EH);
  };
  const setLoc = pcrel((operandAt) => [0x01, ...u32le((TEXT + 0x30 - operandAt) >>> 0), 0x0e, 16]);
  t.equal(rowAt(setLoc, setLoc.find(TEXT + 0x30)!, TEXT + 0x30).cfaOffset, 16, 'DW_CFA_set_loc in .eh_frame, pcrel: from it on');
  t.equal(rowAt(setLoc, setLoc.find(TEXT + 0x2f)!, TEXT + 0x2f).cfaOffset, 8, 'and before it');
  t.same(rule(rowFor([0x83, 2], TEXT), 3), { kind: RuleKind.Offset, n: -16 }, 'DW_CFA_offset: rbx at CFA−16');
  t.equal(rule(rowFor([0x83, 2, 0x41, 0xc3], TEXT + 1), 3), undefined, 'DW_CFA_restore: back to the CIE rule (none)');
  t.same(rule(rowFor([0x05, 3, 3], TEXT), 3), { kind: RuleKind.Offset, n: -24 }, 'DW_CFA_offset_extended');
  t.same(rule(rowFor([0x90, 3, 0x41, 0x06, 16], TEXT + 1), 16), { kind: RuleKind.Offset, n: -8 }, 'DW_CFA_restore_extended: ra back to CFA−8');
  t.same(rule(rowFor([0x07, 16], TEXT), 16), { kind: RuleKind.Undefined, n: 0 }, 'DW_CFA_undefined');
  t.same(rule(rowFor([0x08, 3], TEXT), 3), { kind: RuleKind.SameValue, n: 0 }, 'DW_CFA_same_value');
  t.same(rule(rowFor([0x09, 3, 12], TEXT), 3), { kind: RuleKind.Register, n: 12 }, 'DW_CFA_register: rbx in r12');
  const state = [0x41, 0x0a, 0x0e, 32, 0x83, 2, 0x41, 0x0b];
  t.equal(rowFor(state, TEXT + 1)?.cfaOffset, 32, 'DW_CFA_remember_state, then a change');
  t.equal(rowFor(state, TEXT + 2)?.cfaOffset, 8, 'DW_CFA_restore_state: the CFA back');
  t.equal(rule(rowFor(state, TEXT + 2), 3), undefined, 'and the register rules');
  t.match(rowFor([0x0c, 6, 16], TEXT), { cfaReg: 6, cfaOffset: 16 }, 'DW_CFA_def_cfa');
  t.match(rowFor([0x0d, 6], TEXT), { cfaReg: 6, cfaOffset: 8 }, 'DW_CFA_def_cfa_register');
  t.match(rowFor([0x12, 6, ...sleb(-2)], TEXT), { cfaReg: 6, cfaOffset: 16 }, 'DW_CFA_def_cfa_sf (factored by −8)');
  t.match(rowFor([0x13, ...sleb(-3)], TEXT), { cfaReg: 7, cfaOffset: 24 }, 'DW_CFA_def_cfa_offset_sf');
  t.same(rule(rowFor([0x11, 3, ...sleb(2)], TEXT), 3), { kind: RuleKind.Offset, n: -16 }, 'DW_CFA_offset_extended_sf');
  t.same(rule(rowFor([0x14, 3, 2], TEXT), 3), { kind: RuleKind.ValOffset, n: -16 }, 'DW_CFA_val_offset');
  t.same(rule(rowFor([0x15, 3, ...sleb(-2)], TEXT), 3), { kind: RuleKind.ValOffset, n: 16 }, 'DW_CFA_val_offset_sf');
  t.same(rule(rowFor([0x2f, 3, 2], TEXT), 3), { kind: RuleKind.Offset, n: 16 }, 'DW_CFA_GNU_negative_offset_extended');
  t.equal(rowFor([0x2e, 16, 0x0e, 24], TEXT)?.cfaOffset, 24, 'DW_CFA_GNU_args_size: skipped');
  t.equal(rowFor([0x00, 0x00, 0x0e, 24], TEXT)?.cfaOffset, 24, 'DW_CFA_nop');
  t.same([...(rowFor([0x0f, 2, 0x77, 8], TEXT)?.cfaExpr ?? [])], [0x77, 8], 'DW_CFA_def_cfa_expression');
  t.match(rule(rowFor([0x10, 3, 2, 0x77, 8], TEXT), 3), { kind: RuleKind.Expression }, 'DW_CFA_expression');
  t.match(rule(rowFor([0x16, 3, 2, 0x77, 8], TEXT), 3), { kind: RuleKind.ValExpression }, 'DW_CFA_val_expression');
  t.equal(rowFor([0x3f], TEXT), null, 'an op no DWARF defines: no row');
  // glibc's functions with cleanups: "zPLR", the personality pointer indirect|pcrel|sdata4 (0x9b), an LSDA in each FDE.
  const zplr = new CfiTable('eh', ehFrame([{ start: TEXT, len: 0x100, insns: [0x44, 0x0e, 48] }], CIE_INITIAL, true, { str: 'zPLR', data: [0x9b, 1, 2, 3, 4, 0x1b, 0x00], fdeData: [9, 9, 9, 9] }), 0x9000);
  t.equal(rowAt(zplr, zplr.find(TEXT + 4)!, TEXT + 4).cfaOffset, 48, 'a "zPLR" CIE with an indirect personality pointer, an FDE with LSDA data');
  t.equal(rowFor([0x0b], TEXT), null, 'restore_state with nothing remembered: no row');
  t.equal(rowFor([0x0f, 9, 0x77], TEXT), null, 'an expression longer than the program: no row');
});

/** Registers with rsp and rip set. */
function regsAt(sp: number, pc: number, more: Record<number, number> = {}): Regs {
  const r = unknownRegs();
  r[RSP] = sp;
  r[RIP] = pc;
  for (const [k, v] of Object.entries(more)) r[Number(k)] = v;
  return r;
}

/** A stack copy at sp holding 8-byte words. */
const stackOf = (sp: number, words: number[]): StackCopy => ({ sp, bytes: Buffer.from(words.flatMap(u64le)) });

t.test('DWARF expressions: the x86-64 PLT rule, a signal frame, the stack machine', async (t) => {
  // .plt entries: CFA = rsp + 8 + ((rip & 15) >= 11 ? 8 : 0), as binutils writes it for lazy PLTs.
  const plt = [0x77, 8, 0x80, 0, 0x3f, 0x1a, 0x3b, 0x2a, 0x33, 0x24, 0x22];
  const ctx = (regs: Regs) => ({ reg: (n: number) => regs[n], read: () => null });
  t.equal(evalExpr(Uint8Array.from(plt), ctx(regsAt(0x7000, 0x1030))), 0x7008n, 'PLT entry before its push: rsp+8');
  t.equal(evalExpr(Uint8Array.from(plt), ctx(regsAt(0x7000, 0x103b))), 0x7010n, 'after the push: rsp+16');
  // The real thing: Debian's nginx .plt (entry 0x23030: jmp *GOT at +0, push at +6, jmp PLT0 at +11).
  const nginx = new ProcessObjects(() => ({ files: [{ path: DEBIAN_NGINX, ranges: [{ start: 0x1000, end: 0x200000 }], open: () => ({ elf: ElfFile.open(DEBIAN_NGINX), bias: 0 }) }], executable: [{ start: 0x1000, end: 0x200000 }] }));
  const pltSection = ElfFile.open(DEBIAN_NGINX).section('.plt')!;
  const entry = pltSection.addr + 0x10;
  for (const [at, cfa] of [[0, 8], [6, 8], [11, 16]]) {
    const row = nginx.objectAt(entry + at)!.row(entry + at)!;
    const regs = applyRow(row, regsAt(0x7000, entry + at), stackOf(0x7000, [0x1234, 0x2345, 0x3456]));
    t.equal((regs as Regs)[RSP], 0x7000 + cfa, `nginx .plt entry +${at}: caller's rsp = rsp+${cfa}`);
  }

  // glibc's __restore_rt: CFA = *(rsp + 160) (uc_mcontext.rsp), rip = *(rsp + 168), rbx at rsp + 128.
  const sig = [0x0f, 4, 0x77, ...sleb(160), 0x06, 0x10, 16, 3, 0x77, ...sleb(168), 0x10, 3, 3, 0x77, ...sleb(128)];
  const sigTable = new CfiTable('eh', ehFrame([{ start: TEXT, len: 0x10, insns: sig }]), 0x9000);
  const sigRow = rowAt(sigTable, sigTable.find(TEXT)!, TEXT);
  const words = new Array(24).fill(0);
  words[160 / 8] = 0x7100;
  words[168 / 8] = 0x1234;
  words[128 / 8] = 0xbb;
  const caller = applyRow(sigRow, regsAt(0x7000, TEXT), stackOf(0x7000, words)) as Regs;
  t.same([caller[RSP], caller[RIP], caller[3]], [0x7100, 0x1234, 0xbb], 'CFA, rip and rbx from the saved context');
  t.equal(applyRow(sigRow, regsAt(0x7000, TEXT), stackOf(0x7000, words.slice(0, 20))), 'stack-cut', 'the context past the stack copy: stack-cut');

  const ops = (...b: number[]) => evalExpr(Uint8Array.from(b), ctx(regsAt(0x7000, 0)));
  t.equal(ops(0x08, 200, 0x09, 0xff, 0x22), 199n, 'const1u + const1s(-1)');
  t.equal(ops(0x10, ...uleb(1000), 0x11, ...sleb(-10), 0x1e), BigInt.asUintN(64, -10000n), 'constu × consts wraps to 64 bits');
  t.equal(ops(0x31, 0x32, 0x16, 0x1c), 1n, 'swap then minus');
  t.equal(ops(0x35, 0x12, 0x22), 10n, 'dup, plus');
  t.equal(ops(0x31, 0x32, 0x33, 0x17, 0x13, 0x13), 3n, 'rot, drop');
  t.equal(ops(0x31, 0x32, 0x14, 0x22, 0x22), 4n, 'over');
  t.equal(ops(0x31, 0x32, 0x15, 1, 0x22, 0x22), 4n, 'pick');
  t.equal(ops(0x31, 0x1f, 0x19), 1n, 'neg, abs');
  t.equal(ops(0x3f, 0x33, 0x25), 1n, 'shr');
  t.equal(ops(0x31, 0x1f, 0x31, 0x26), BigInt.asUintN(64, -1n), 'shra keeps the sign');
  t.equal(ops(0x3f, 0x32, 0x1b, 0x3f, 0x32, 0x1d, 0x22), 8n, 'div and mod');
  t.equal(ops(0x3c, 0x35, 0x27, 0x3c, 0x21, 0x20, 0x20), 0xdn, 'xor, or, not');
  t.equal(ops(0x30, 0x23, ...uleb(300)), 300n, 'plus_uconst');
  t.equal(ops(0x31, 0x28, 2, 0, 0x35, 0x2f, 0x36), 6n, 'bra taken skips lit5, then lit6');
  t.equal(ops(0x30, 0x28, 1, 0, 0x35), 5n, 'bra not taken');
  t.equal(ops(0x92, 7, ...sleb(-16)), 0x6ff0n, 'bregx');
  t.throws(() => ops(0x2f, 0xfd, 0xff), 'skip −3: a loop, stopped');
  t.throws(() => ops(0x22), 'an empty stack');
  t.throws(() => ops(0x30, 0x30, 0x1b), 'division by zero');
  t.throws(() => ops(0x30, 0x06), 'deref of memory the copy does not hold');
  t.throws(() => ops(0xe0), 'an op it does not know');
});

/** A process of one fake object covering [TEXT, TEXT+0x1000) with the given table. */
function fakeProcess(table: CfiTable | null): ObjectLookup {
  const object: UnwindObject = {
    path: '/fake/obj',
    name: 'obj',
    buildId: null,
    bias: 0,
    row: (pc) => {
      const fde = table?.find(pc);
      return fde ? rowAt(table!, fde, pc) : null;
    },
    symbol: () => null,
  };
  const inText = (pc: number) => pc >= TEXT && pc < TEXT + 0x1000;
  return { objectAt: (pc) => (inText(pc) ? object : null), isExecutable: (pc) => inText(pc) || (pc >= 0x5000 && pc < 0x5100), refresh: () => {} };
}

t.test('the frame loop ends, and says why', async (t) => {
  // Every function: CFA = rsp + 8, return address at CFA − 8 (the CIE's rule).
  const plain = new CfiTable('eh', ehFrame([{ start: TEXT, len: 0x1000, insns: [] }]), 0x9000);
  const u = new Unwinder(fakeProcess(plain));
  const SP = 0x7000;
  const chain = u.unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, [TEXT + 0x20, TEXT + 0x30, 0]));
  t.same(pcs(chain.frames), pcs([{ pc: TEXT + 0x10 }, { pc: TEXT + 0x20 }, { pc: TEXT + 0x30 }]), 'three frames');
  t.same(chain.frames.map((f) => f.sp), [SP, SP + 8, SP + 16], 'each caller at the CFA');
  t.equal(chain.end, 'outermost', 'a return address of 0 is the outermost frame');
  t.equal(u.unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, [TEXT + 0x20])).end, 'stack-cut', 'a read past the copy');
  t.equal(u.unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, [0x4000])).end, 'bad-return-address', 'a return address in no executable mapping');
  t.equal(u.unwind(regsAt(SP, 0x2_0000), stackOf(SP, [])).end, 'unmapped', 'a pc in no mapping');
  const anon = u.unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, [0x5010]));
  t.same([anon.frames.length, anon.end, anon.frames[1].object], [2, 'no-cfi', null], 'executable but no object (JIT code): the frame, then no-cfi');
  const deep = u.unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, new Array(300).fill(TEXT + 0x40)));
  t.same([deep.frames.length, deep.end], [128, 'max-depth'], 'depth bounded at 128 by default');
  t.equal(new Unwinder(fakeProcess(plain), { maxDepth: 5 }).unwind(regsAt(SP, TEXT), stackOf(SP, new Array(20).fill(TEXT + 0x40))).frames.length, 5, 'maxDepth');
  // CFA = rsp (no growth): the caller would sit where the callee does.
  const flat = new CfiTable('eh', ehFrame([{ start: TEXT, len: 0x1000, insns: [0x0c, 7, 0, 0x90, 0] }]), 0x9000);
  t.equal(new Unwinder(fakeProcess(flat)).unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, [TEXT + 0x20])).end, 'no-progress', 'a CFA that does not grow');
  const undef = new CfiTable('eh', ehFrame([{ start: TEXT, len: 0x1000, insns: [0x07, 16] }]), 0x9000);
  t.equal(new Unwinder(fakeProcess(undef)).unwind(regsAt(SP, TEXT), stackOf(SP, [TEXT])).end, 'outermost', 'DW_CFA_undefined rip: the outermost frame');
  t.equal(new Unwinder(fakeProcess(null)).unwind(regsAt(SP, TEXT), stackOf(SP, [])).end, 'no-cfi', 'an object without CFI');
  // A return address that is the last byte of an FDE's range belongs to the next function: looked up as pc−1.
  const split = new CfiTable('eh', ehFrame([{ start: TEXT, len: 0x20, insns: [] }, { start: TEXT + 0x20, len: 0x20, insns: [0x0e, 16] }]), 0x9000);
  const edge = new Unwinder(fakeProcess(split)).unwind(regsAt(SP, TEXT + 0x28), stackOf(SP, [0, TEXT + 0x20, 0, TEXT + 0x30, 0, 0, 0]));
  t.same([edge.frames.length, edge.frames[1]?.pc, edge.end], [2, TEXT + 0x20, 'outermost'], "a return address at the next function's start: the caller's CFI (pc−1)");
  // Hooks: the LuaJIT rule resumes from registers of its own, or stops.
  const hooked = u.unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, [TEXT + 0x20, TEXT + 0x30, 0, 0, 0]), {
    override: (f, depth) => (depth === 0 ? regsAt(f.sp + 24, TEXT + 0x30) : undefined),
  });
  t.same(pcs(hooked.frames), pcs([{ pc: TEXT + 0x10 }, { pc: TEXT + 0x30 }]), 'override: continue from the registers it gives');
  t.same(u.unwind(regsAt(SP, TEXT + 0x10), stackOf(SP, [TEXT + 0x20, 0]), { override: (_f, d) => (d === 1 ? null : undefined) }).frames.length, 2, 'override null: stop');
  const step = u.step(chain.frames[0], stackOf(SP, [TEXT + 0x20, 0]));
  t.equal((step as Regs)[RIP], TEXT + 0x20, 'step() alone: the caller');
});

t.test('malformed CFI: no-cfi for that object, never a throw or a hang', async (t) => {
  const good = ehFrame([{ start: TEXT, len: 0x100, insns: [0x44, 0x0e, 16] }]);
  const u = (buf: Buffer) => new Unwinder(fakeProcess(new CfiTable('eh', buf, 0x9000))).unwind(regsAt(0x7000, TEXT + 8), stackOf(0x7000, [0, 0, 0]));
  t.equal(u(good).end, 'outermost', 'the table intact');
  const cieLen = good.readUInt32LE(0) + 4;
  t.equal(u(good.subarray(0, cieLen + 20)).end, 'no-cfi', 'an FDE cut short');
  const long = Buffer.from(good);
  long.writeUInt32LE(0x7fffffff, cieLen);
  t.equal(u(long).end, 'no-cfi', "an FDE's length past the section");
  const nowhere = Buffer.from(good);
  nowhere.writeUInt32LE(0xfffffff0, cieLen + 4);
  t.equal(u(nowhere).end, 'no-cfi', 'a CIE pointer to before the section');
  const two = ehFrame([{ start: TEXT, len: 0x100, insns: [] }, { start: TEXT + 0x200, len: 0x100, insns: [] }]);
  const second = cieLen + two.readUInt32LE(cieLen) + 4;
  two.writeUInt32LE(second + 4 - cieLen, second + 4); // the second FDE's CIE pointer names the first FDE
  t.equal(new CfiTable('eh', two, 0x9000).find(TEXT + 0x210), null, 'a CIE pointer to an FDE');
  const loop = ehFrame([{ start: TEXT, len: 0x100, insns: [0x0f, 3, 0x2f, 0xfd, 0xff] }]);
  t.equal(u(loop).end, 'no-cfi', 'a CFA expression that loops: stopped');

  // .eh_frame_hdr: the binary search table finds the same FDEs; a table pointing outside the section finds none.
  const buf = ehFrame([{ start: TEXT, len: 0x100, insns: [] }, { start: TEXT + 0x100, len: 0x100, insns: [0x0e, 16] }]);
  const EH = 0x9000;
  const HDR = 0x8000;
  const fdeAt = [cieLen, cieLen + buf.readUInt32LE(cieLen) + 4];
  const hdrBytes = (fdeOffsets: number[]) => {
    const b = Buffer.alloc(12 + 8 * 2);
    b.set([1, 0x1b, 0x03, 0x3b]);
    b.writeInt32LE(EH - (HDR + 4), 4);
    b.writeUInt32LE(2, 8);
    [TEXT, TEXT + 0x100].forEach((start, i) => {
      b.writeInt32LE(start - HDR, 12 + i * 8);
      b.writeInt32LE(EH + fdeOffsets[i] - HDR, 16 + i * 8);
    });
    return b;
  };
  const hdr = EhFrameHdr.parse(hdrBytes(fdeAt), HDR)!;
  t.equal(hdr.ehFrameAddr, EH, ".eh_frame_hdr's eh_frame_ptr (pcrel sdata4)");
  const withHdr = new CfiTable('eh', buf, EH, hdr);
  t.equal(rowAt(withHdr, withHdr.find(TEXT + 0x180)!, TEXT + 0x180).cfaOffset, 16, 'the search table finds the second FDE');
  t.equal(withHdr.find(TEXT + 0x300), null, 'and nothing past the last');
  t.equal(new CfiTable('eh', buf, EH, EhFrameHdr.parse(hdrBytes([fdeAt[0], 0x7fff0]), HDR)).find(TEXT + 0x180), null, 'a table entry past the section: none');

  // Random bytes: every lookup returns (a row or null) and the whole sweep is quick.
  let seed = 21;
  const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const t0 = Date.now();
  const threw: string[] = [];
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(good);
    for (let k = 0; k < 1 + Math.floor(rand() * 6); k++) b[Math.floor(rand() * b.length)] = Math.floor(rand() * 256);
    const junk = Buffer.from(Array.from({ length: 64 }, () => Math.floor(rand() * 256)));
    try {
      u(b);
      new CfiTable('debug', junk, 0).find(TEXT);
      new CfiTable('eh', junk, 0).find(TEXT);
    } catch (err) {
      threw.push(`${b.toString('hex')}: ${err}`);
    }
  }
  t.same(threw, [], '300 mutated tables and 600 of random bytes: no throw');
  t.ok(Date.now() - t0 < 10_000, `in ${Date.now() - t0} ms`);
});

t.test('registers from a perf sample, kernel names', async (t) => {
  const sample = BigUint64Array.from(Array.from({ length: 17 }, (_, i) => BigInt(i + 1)));
  const r = regsFromPerf(sample);
  // perf order ax bx cx dx si di bp sp ip r8..r15 → DWARF rax rdx rcx rbx rsi rdi rbp rsp r8..r15 rip
  t.same([...r], [1, 4, 3, 2, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 9], 'perf_regs.c REG_MASK order to DWARF numbers');
  const withFlags = BigUint64Array.from(Array.from({ length: 18 }, (_, i) => BigInt(i + 1)));
  t.equal(regsFromPerf(withFlags)[8], 11, 'with flags in the mask (18 values) r8 comes after it');
  t.equal(regsFromPerf(withFlags)[RIP], 9, 'and rip before it');
  const k = KernelSymbols.parse('ffffffff81000000 T _stext\nffffffff81000100 t do_one\nffffffff81000200 T do_two\t[mod]\nffffffff81000300 D some_data\nffffffff81000400 T _etext\n');
  t.equal(k.name(0xffffffff81000150n), 'do_one', 'the function holding an address');
  t.equal(k.name(0xffffffff81000201n), 'do_two', 'a module function, its [module] left out');
  t.equal(k.name(0xffffffff81000350n), 'do_two', 'data symbols are not functions');
  t.equal(k.name(0x1000n), '[kernel]+0x1000', 'below every symbol');
  t.equal(KernelSymbols.parse('0000000000000000 T _stext\n').name(0xffffffff81000150n), '[kernel]+0xffffffff81000150', 'kallsyms without addresses (no CAP_SYSLOG)');
  t.equal(nativeFrameName(null, 0x5000, true), '[anon]', 'no object');
});
