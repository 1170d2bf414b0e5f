/**
 * The eBPF loader (sampler/bpf/, the native addon xwalk_bpf) on real
 * processes, with programs assembled by hand here: what they record is
 * checked against the target's own truth or an independent read
 * (/proc/PID/mem, the commands walkee answered), never against itself.
 */
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bpfAddon, bpfUnavailable, VerifierRefused } from '../sampler/bpf/addon.ts';
import { AttachedBpf, attachClock, attachUprobe } from '../sampler/bpf/loader.ts';
import type { BpfProgram } from '../sampler/bpf/program.ts';
import { binPath, root, sleep, startWalkee } from './lib/walkee.ts';

/* ---- a tiny assembler: struct bpf_insn { u8 code; u8 dst:4, src:4; s16 off; s32 imm; } ---- */
type Insn = [code: number, dst: number, src: number, off: number, imm: number];
const R0 = 0, R1 = 1, R2 = 2, R3 = 3, R4 = 4, R10 = 10;
const HELPER = { map_lookup_elem: 1, get_current_pid_tgid: 14, probe_read_user: 112, ringbuf_output: 130 };
const mov = (dst: number, imm: number): Insn => [0xb7, dst, 0, 0, imm]; // BPF_ALU64 | BPF_MOV | BPF_K
const movReg = (dst: number, src: number): Insn => [0xbf, dst, src, 0, 0];
const add = (dst: number, imm: number): Insn => [0x07, dst, 0, 0, imm];
const stxDw = (dst: number, off: number, src: number): Insn => [0x7b, dst, src, off, 0];
const stxW = (dst: number, off: number, src: number): Insn => [0x63, dst, src, off, 0];
const atomicAddDw = (dst: number, off: number, src: number): Insn => [0xdb, dst, src, off, 0]; // BPF_STX | BPF_ATOMIC | BPF_DW, imm BPF_ADD
const jeqImm = (dst: number, imm: number, off: number): Insn => [0x15, dst, 0, off, imm];
const call = (helper: number): Insn => [0x85, 0, 0, 0, helper];
const exit: Insn = [0x95, 0, 0, 0, 0];
/** dst = a 64-bit immediate (two instructions). */
const ld64 = (dst: number, v: bigint): Insn[] => [
  [0x18, dst, 0, 0, Number(BigInt.asIntN(32, v & 0xffffffffn))],
  [0, 0, 0, 0, Number(BigInt.asIntN(32, v >> 32n))],
];
/** dst = a map's fd: a relocation for the loader. */
const MAP = Symbol('map');
type Line = Insn | { [MAP]: string; dst: number };
const ldMap = (dst: number, map: string): Line => ({ [MAP]: map, dst });

function assemble(lines: (Line | Insn[])[], maps: BpfProgram['maps']): BpfProgram {
  const insns: Insn[] = [];
  const relocs: BpfProgram['relocs'] = [];
  for (const l of lines) {
    if (MAP in l) {
      relocs.push({ insn: insns.length, map: l[MAP] });
      insns.push([0x18, l.dst, 0, 0, 0], [0, 0, 0, 0, 0]);
    } else if (Array.isArray(l[0])) insns.push(...(l as Insn[]));
    else insns.push(l as Insn);
  }
  const buf = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, dst, src, off, imm], i) => {
    buf.writeUInt8(code, i * 8);
    buf.writeUInt8((src << 4) | dst, i * 8 + 1);
    buf.writeInt16LE(off, i * 8 + 2);
    buf.writeInt32LE(imm, i * 8 + 4);
  });
  return { insns: buf, maps, relocs };
}

const RING = { name: 'events', type: 'ringbuf' as const, keySize: 0, valueSize: 0, maxEntries: 64 * 1024 };

/* bpf_ringbuf_output's flags: BPF_RB_NO_WAKEUP leaves the reader to come by on its own clock (a wake-up costs about 4 µs a record here). */
const BPF_RB_NO_WAKEUP = 1;

/** Writes bpf_get_current_pid_tgid() (8 bytes) to the ring buffer, waking no one. */
const pidTgidProgram = assemble(
  [
    call(HELPER.get_current_pid_tgid),
    stxDw(R10, -8, R0),
    ldMap(R1, 'events'),
    movReg(R2, R10),
    add(R2, -8),
    mov(R3, 8),
    mov(R4, BPF_RB_NO_WAKEUP),
    call(HELPER.ringbuf_output),
    mov(R0, 0),
    exit,
  ],
  [RING],
);

/** Reads 16 bytes at addr of the current process with bpf_probe_read_user: record = its return, pid_tgid, the bytes (the reader is woken). */
const readUserProgram = (addr: bigint): BpfProgram =>
  assemble(
    [
      call(HELPER.get_current_pid_tgid),
      stxDw(R10, -24, R0),
      movReg(R1, R10),
      add(R1, -16),
      mov(R2, 16),
      ld64(R3, addr),
      call(HELPER.probe_read_user),
      stxDw(R10, -32, R0),
      ldMap(R1, 'events'),
      movReg(R2, R10),
      add(R2, -32),
      mov(R3, 32),
      mov(R4, 0),
      call(HELPER.ringbuf_output),
      mov(R0, 0),
      exit,
    ],
    [RING],
  );

/** Adds 1 to the u64 at key 0 of the array map hits. */
const countProgram = assemble(
  [
    mov(R1, 0),
    stxW(R10, -4, R1),
    ldMap(R1, 'hits'),
    movReg(R2, R10),
    add(R2, -4),
    call(HELPER.map_lookup_elem),
    jeqImm(R0, 0, 2),
    mov(R1, 1),
    atomicAddDw(R0, 0, R1),
    mov(R0, 0),
    exit,
  ],
  [{ name: 'hits', type: 'array', keySize: 4, valueSize: 8, maxEntries: 1 }],
);

const trivialProgram = assemble([mov(R0, 0), exit], []);

/* ---- processes ---- */

/** A child that spins on the CPU until killed. */
function busyChild(): ChildProcess {
  return spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
}

async function killChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const gone = new Promise((res) => c.once('exit', res));
  c.kill('SIGKILL');
  await gone;
}

/** Drains ring buffer records until there are at least n, or deadlineMs passes. */
function collect(a: AttachedBpf, n: number, deadlineMs = 10_000): Buffer[] {
  const out: Buffer[] = [];
  const end = Date.now() + deadlineMs;
  while (out.length < n && Date.now() < end) {
    a.wait(50);
    out.push(...a.drain());
  }
  return out;
}

/** Waits until cond() holds, or deadlineMs passes; its last answer. */
async function until(cond: () => boolean, deadlineMs = 10_000): Promise<boolean> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    if (cond()) return true;
    if (Date.now() > end) return false;
    await sleep(20);
  }
}

function readProcMem(pid: number, addr: number, len: number): Buffer {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const b = Buffer.alloc(len);
    t.equal(fs.readSync(fd, b, 0, len, addr), len, `read ${len} bytes at 0x${addr.toString(16)} through /proc/${pid}/mem`);
    return b;
  } finally {
    fs.closeSync(fd);
  }
}

const why = bpfUnavailable();
if (why !== null) {
  t.pass('the eBPF loader', { skip: `eBPF is not available here: ${why}` });
} else {
  t.test('a perf_event program on a busy process records its own pid and tids, none of another busy process', async (t) => {
    const target = busyChild();
    const other = busyChild();
    t.teardown(() => Promise.all([killChild(target), killChild(other)]));
    const a = attachClock(pidTgidProgram, target.pid!, 997, { stats: true, name: 'xw_test_pid' });
    t.teardown(() => a.detach());
    t.ok(a.events.length >= 1, `a clock on each of the target's ${a.events.length} threads`);
    const records = collect(a, 50);
    t.ok(records.length >= 50, `records arrive (${records.length})`);
    const tasks = new Set(fs.readdirSync(`/proc/${target.pid}/task`).map(Number));
    const pids = new Set(records.map((r) => Number(r.readBigUInt64LE(0) >> 32n)));
    const tids = new Set(records.map((r) => Number(r.readBigUInt64LE(0) & 0xffffffffn)));
    t.same([...pids], [target.pid], 'every record is of the target process');
    t.ok([...tids].every((tid) => tasks.has(tid)), `every tid is one of the target's threads (${[...tids].join(', ')})`);
    t.notOk(pids.has(other.pid!), 'none of the other busy process');
    t.ok(records.every((r) => r.length === 8), 'each record is the 8 bytes written');
    const c = a.costs();
    t.ok(c.runCount >= records.length, `run count ${c.runCount} covers the records`);
    t.comment(`perf_event program (pid_tgid + ringbuf_output, no wake-up): ${c.nsPerRun?.toFixed(0)} ns a run over ${c.runCount} runs, ${c.jitedLen} bytes JITed`);
  });

  t.test('bpf_probe_read_user at the perf sample reads what /proc/PID/mem reads at the same address', async (t) => {
    const w = await startWalkee(['--pools', '2']);
    t.teardown(() => w.kill());
    const truth = await w.ask('truth');
    // The second pool's header (d.last, d.end): the mutator thread allocates from a pool of its own, never this one.
    const addr = Number(truth.pools[1].addr);
    t.same(await w.ask('mutate on'), { ok: true }, 'walkee keeps a thread busy');
    const a = attachClock(readUserProgram(BigInt(addr)), w.child.pid!, 997, { name: 'xw_test_read' });
    t.teardown(() => a.detach());
    const records = collect(a, 20);
    a.detach();
    t.ok(records.length >= 20, `records arrive (${records.length})`);
    const independent = readProcMem(w.child.pid!, addr, 16);
    t.ok(records.every((r) => r.readBigInt64LE(0) === 0n), 'every read succeeded (returned 0)');
    t.ok(records.every((r) => Number(r.readBigUInt64LE(8) >> 32n) === w.child.pid), 'in the target');
    const seen = new Set(records.map((r) => r.subarray(16, 32).toString('hex')));
    t.same([...seen], [independent.toString('hex')], `the 16 bytes at ${truth.pools[1].addr} match /proc/PID/mem`);
    t.not(independent.readBigUInt64LE(0), 0n, 'and they are not zero (a pool block has a d.last)');
  });

  t.test('a uprobe counts exactly the calls of one process; another process running the same binary is not counted', async (t) => {
    const w1 = await startWalkee(['--nodes', '10']);
    const w2 = await startWalkee(['--nodes', '10']);
    t.teardown(() => Promise.all([w1.kill(), w2.kill()]));
    // link_list() runs once at start-up and once for each `repair` (test-targets/walkee.c).
    const a = attachUprobe(countProgram, w1.child.pid!, binPath, 'link_list', { stats: true, name: 'xw_test_count' });
    t.teardown(() => a.detach());
    const hits = () => a.lookup('hits', Buffer.alloc(4))!.readBigUInt64LE(0);
    t.equal(hits(), 0n, 'no hit before a call');
    const calls = 25;
    const answers = [];
    for (let i = 0; i < calls; i++) answers.push(await w1.ask('repair'));
    t.ok(answers.every((x) => x.ok === true), `walkee answered ok to ${calls} repairs`);
    for (let i = 0; i < 10; i++) await w2.ask('repair');
    t.equal(hits(), BigInt(calls), `${calls} hits for the ${calls} repairs walkee answered`);
    for (let i = 0; i < 7; i++) await w2.ask('repair');
    t.equal(hits(), BigInt(calls), 'the other walkee, same binary, 17 calls: not counted');
    const c = a.costs();
    t.equal(c.runCount, calls, 'the kernel ran the program once per call');
    t.comment(`uprobe program (map lookup + atomic add): ${c.nsPerRun?.toFixed(0)} ns a run (the trap itself not included)`);
    t.throws(() => attachUprobe(countProgram, w1.child.pid!, binPath, 'no_such_function'), /defines no function no_such_function/, 'a missing symbol is one clear line');
    t.throws(() => attachUprobe(countProgram, w1.child.pid!, process.execPath, 'main'), /does not map/, 'a binary the process does not map is refused');
  });

  t.test('a uprobe on a non-PIE executable lands on the function (its file offset is not its address)', async (t) => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bpf-nopie-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const exe = path.join(dir, 'walkee-nopie');
    const cc = spawnSync('cc', ['-g', '-O2', '-pthread', '-no-pie', '-fno-pie', '-o', exe, path.join(root, 'test-targets/walkee.c')], { encoding: 'utf8' });
    t.equal(cc.status, 0, `built walkee with -no-pie ${cc.stderr}`);
    const w = await startWalkee(['--nodes', '10'], 'walkee', exe);
    t.teardown(() => w.kill());
    const a = attachUprobe(countProgram, w.child.pid!, exe, 'link_list', { name: 'xw_test_nopie' });
    t.teardown(() => a.detach());
    for (let i = 0; i < 3; i++) await w.ask('repair');
    t.equal(a.lookup('hits', Buffer.alloc(4))!.readBigUInt64LE(0), 3n, '3 repairs, 3 hits');
  });

  t.test('map calls: a hash map updated, iterated and deleted from; buffers of the wrong size are refused', async (t) => {
    const addon = bpfAddon();
    const fd = addon.mapCreate('hash', 4, 8, 16, 'xw_test_hash');
    t.teardown(() => addon.close(fd));
    const key = (k: number) => Buffer.from(Uint32Array.of(k).buffer);
    for (const k of [3, 5, 9]) addon.mapUpdate(fd, key(k), Buffer.from(BigUint64Array.of(BigInt(k * 100)).buffer));
    const seen: number[] = [];
    let at: Buffer | null = null;
    for (;;) {
      const next = Buffer.alloc(4);
      if (!addon.mapNextKey(fd, at, next)) break;
      seen.push(next.readUInt32LE(0));
      at = next;
    }
    t.same(seen.sort(), [3, 5, 9], 'mapNextKey visits every key once');
    const v = Buffer.alloc(8);
    t.ok(addon.mapLookup(fd, key(5), v), 'key 5 is there');
    t.equal(v.readBigUInt64LE(0), 500n, 'with its value');
    t.ok(addon.mapDelete(fd, key(5)), 'deleted');
    t.notOk(addon.mapLookup(fd, key(5), v), 'and gone');
    t.notOk(addon.mapDelete(fd, key(5)), 'a second delete finds nothing');
    t.throws(() => addon.mapLookup(fd, key(3), Buffer.alloc(4)), /value 8 bytes; given 4 and 4/, 'a value buffer too short for the kernel to fill is refused');
    const pc = addon.mapCreate('percpu_array', 4, 4, 1);
    t.teardown(() => addon.close(pc));
    const cpus = addon.possibleCpus();
    t.ok(addon.mapLookup(pc, key(0), Buffer.alloc(8 * cpus)), `a per-CPU value is 8 bytes (4 rounded up) for each of ${cpus} possible CPUs`);
    t.throws(() => addon.mapLookup(pc, key(0), Buffer.alloc(4)), RangeError, 'one CPU\'s worth is refused');
  });

  t.test('a user without BPF gets one clear line', async (t) => {
    // The loader's check, bundled with the addon beside it into a folder nobody may read, run as nobody
    // (perf_event and kprobe programs need CAP_BPF and CAP_PERFMON, whatever unprivileged_bpf_disabled says).
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bpf-nobody-'));
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const entry = path.join(dir, 'entry.ts');
    fs.writeFileSync(entry, `import { bpfAddon } from ${JSON.stringify(path.join(root, 'sampler/bpf/addon.ts'))};\ntry { bpfAddon(); console.log('available'); } catch (e) { console.log(e.name + ': ' + e.message); }\n`);
    const esbuild = spawnSync('npx', ['esbuild', entry, '--bundle', '--platform=node', '--format=esm', '--log-level=warning', `--outfile=${path.join(dir, 'check.mjs')}`], { cwd: root, encoding: 'utf8' });
    t.equal(esbuild.status, 0, `bundled ${esbuild.stderr}`);
    fs.mkdirSync(path.join(dir, 'native/build/Release'), { recursive: true });
    fs.copyFileSync(path.join(root, 'sampler/native/build/Release/xwalk_bpf.node'), path.join(dir, 'native/build/Release/xwalk_bpf.node'));
    for (const p of ['', 'native', 'native/build', 'native/build/Release', 'native/build/Release/xwalk_bpf.node', 'check.mjs']) fs.chmodSync(path.join(dir, p), 0o755);
    // A user's environment (env -i): tap puts into every child node's NODE_OPTIONS modules of this checkout,
    // which nobody may not read (a fresh clone under mktemp -d is 0700).
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-i', 'PATH=/usr/bin:/bin', process.execPath, path.join(dir, 'check.mjs')], { encoding: 'utf8' });
    t.equal(r.status, 0, `ran as nobody ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    t.equal(lines.length, 1, 'one line');
    t.match(lines[0], /^UserError: eBPF is not available: bpf\(BPF_PROG_LOAD\): Operation not permitted \(needs root or CAP_BPF\+CAP_PERFMON\)$/, lines[0]);
  });

  t.test('a refused program gives one line with the verifier reason, and its log', async (t) => {
    const cases: [string, BpfProgram, RegExp][] = [
      ['reading r2 uninitialised', assemble([movReg(R0, R2), exit], []), /R2 !read_ok/],
      ['writing past the 512-byte stack', assemble([mov(R1, 0), stxDw(R10, -520, R1), mov(R0, 0), exit], []), /invalid write to stack R10 off=-520 size=8/],
    ];
    for (const [what, prog, reason] of cases) {
      const err = t.throws(() => attachClock(prog, process.pid, 10)) as VerifierRefused;
      t.ok(err instanceof VerifierRefused, `${what}: a VerifierRefused`);
      t.match(err.message, reason, `${what}: ${err.message}`);
      t.match(err.message, /^the BPF verifier refused the program: .* \(at \d+: \(/, 'names the instruction');
      t.notOk(err.message.includes('\n'), 'one line');
      t.match(err.log, reason, 'the log has the reason');
      t.ok(err.log.split('\n').length >= 2 && err.log.split('\n').length <= 40, 'and at most 40 lines');
    }
  });

  t.test('everything is detached after detach() and after the attaching process is killed', async (t) => {
    const addon = bpfAddon();
    const target = busyChild();
    t.teardown(() => killChild(target));
    const a = attachClock(trivialProgram, target.pid!, 997, { stats: true, name: 'xw_test_triv' });
    const id = a.id();
    t.ok(addon.progIds().includes(id), `program ${id} is loaded`);
    t.ok(await until(() => a.costs().runCount >= 200), 'and runs');
    const c = a.costs();
    t.comment(`trivial perf_event program (r0 = 0): ${c.nsPerRun?.toFixed(0)} ns a run over ${c.runCount} runs`);
    a.detach();
    t.ok(await until(() => !addon.progIds().includes(id)), `program ${id} is gone after detach()`);

    // A process of its own attaches a uprobe and is killed: the kernel closes its fds, and the program goes.
    const w = await startWalkee(['--nodes', '10']);
    t.teardown(() => w.kill());
    const prog = JSON.stringify({ ...countProgram, insns: countProgram.insns.toString('base64') });
    const script = `
      import { attachUprobe } from './sampler/bpf/loader.ts';
      const p = ${prog};
      const a = attachUprobe({ ...p, insns: Buffer.from(p.insns, 'base64') }, ${w.child.pid}, ${JSON.stringify(binPath)}, 'link_list', { name: 'xw_test_kill' });
      console.log(JSON.stringify({ id: a.id() }));
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--import=tsx', '--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const line = await new Promise<string>((res, rej) => {
      child.stdout!.once('data', (d) => res(String(d)));
      child.once('exit', () => rej(new Error(`the attaching process exited: ${stderr}`)));
    });
    const childId = JSON.parse(line).id as number;
    t.ok(addon.progIds().includes(childId), `the other process's program ${childId} is loaded`);
    await killChild(child);
    t.ok(await until(() => !addon.progIds().includes(childId)), `program ${childId} is gone after kill -9 of the process that attached it`);
    t.same(await w.ask('repair'), { ok: true }, 'and the target runs the probed function on, untrapped');
  });
}
