/**
 * The perf stack-sample source (sampler/perf/stack-events.ts, the native
 * addon xwalk_perf_stacks) on a real process, test-targets/stack-burner.c:
 * what the kernel sampled is checked against what the target knows (the
 * function it burns in, its stack's bounds, its threads' CPU time from
 * schedstat), against the time the test itself kept a thread blocked, and
 * against an independent read of the same stack (process_vm_readv).
 */
import t, { type Test } from 'tap';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { ElfFile, STT_FUNC } from '../core/elf.ts';
import { loadPvrAddon, PvrSource } from '../sampler/memory/live-source.ts';
import { findMapping, loadBias, readProcMaps } from '../sampler/memory/proc-maps.ts';
import { StackEvents, stackEventsUnavailable, type StackSample, type SwitchEvent } from '../sampler/memory/perf/stack-events.ts';

const PAGE = 4096;
const PIPE_READ = /^(anon_|fifo_)?pipe_read$/;
const SOURCE = path.join(import.meta.dirname, '..', 'test-targets', 'stack-burner.c');

const unavailable = stackEventsUnavailable() ?? (process.getuid?.() !== 0 ? 'kernel callchains need root' : null);
if (unavailable) t.pass('perf stack samples', { skip: `not here: ${unavailable}` });
else tests();

function tests(): void {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-perf-stacks-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const BINARY = path.join(dir, 'stack-burner');
  execFileSync('cc', ['-g', '-O2', '-Wall', '-Wextra', '-pthread', '-o', BINARY, SOURCE], { stdio: ['ignore', 'ignore', 'inherit'] });

  /** stack-burner, spoken to one line at a time through a FIFO (a pipe: its reader blocks in pipe_read). */
  class Burner {
    private readonly lines: string[] = [];
    private waiting: ((line: string | null) => void) | null = null;
    private pending = '';
    private ended = false;
    private fifo = -1;
    /** process.hrtime (CLOCK_MONOTONIC) when the last line arrived. */
    lastLineAt = 0n;

    private constructor(
      readonly child: ChildProcess,
      readonly fifoPath: string,
    ) {
      child.stdout!.setEncoding('utf8');
      child.stdout!.on('data', (s: string) => {
        const at = process.hrtime.bigint();
        this.pending += s;
        for (let nl = this.pending.indexOf('\n'); nl >= 0; nl = this.pending.indexOf('\n')) {
          const line = this.pending.slice(0, nl);
          this.pending = this.pending.slice(nl + 1);
          this.lastLineAt = at;
          if (this.waiting) {
            const w = this.waiting;
            this.waiting = null;
            w(line);
          } else this.lines.push(line);
        }
      });
      child.on('close', () => {
        this.ended = true;
        this.waiting?.(null);
      });
    }

    private static count = 0;

    static async start(): Promise<Burner> {
      const fifoPath = path.join(dir, `commands-${Burner.count++}`);
      execFileSync('mkfifo', [fifoPath]);
      const b = new Burner(spawn(BINARY, [fifoPath], { stdio: ['ignore', 'pipe', 'inherit'] }), fifoPath);
      // Non-blocking, so a target that never opens its end fails the wait instead of hanging the test.
      b.fifo = await until('stack-burner to open its FIFO', () => {
        try {
          return fs.openSync(fifoPath, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENXIO' && !b.ended) return null;
          throw err;
        }
      });
      return b;
    }

    get pid(): number {
      return this.child.pid!;
    }

    /** Sends a command; its answer and the monotonic time it was sent at. */
    async ask(command: string): Promise<{ answer: string; sentAt: bigint }> {
      const sentAt = process.hrtime.bigint();
      fs.writeSync(this.fifo, command + '\n');
      const answer = this.lines.length ? this.lines.shift()! : this.ended ? null : await new Promise<string | null>((r) => (this.waiting = r));
      if (answer === null) throw new Error(`stack-burner ${this.pid} ended at "${command}"`);
      return { answer, sentAt };
    }

    async close(): Promise<void> {
      if (this.fifo >= 0) fs.closeSync(this.fifo);
      this.fifo = -1;
      if (!this.ended) await new Promise((r) => this.child.once('close', r));
      fs.rmSync(this.fifoPath, { force: true });
    }
  }

  /** A thread's time on the CPU in ns (the first field of its schedstat). */
  function cpuNs(pid: number, tid: number): number {
    return Number(fs.readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  }

  /** Waits (checking every 10 ms) until check() gives a value, or fails saying what it waited for. */
  async function until<T>(what: string, check: () => T | null | undefined, ms = 60_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = check();
      if (v !== null && v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** The kernel's text symbols from /proc/kallsyms (a test's own reader, independent of sampler/unwind/). */
  class Kallsyms {
    private readonly addrs: bigint[] = [];
    private readonly names: string[] = [];

    constructor() {
      const rows: [bigint, string][] = [];
      for (const line of fs.readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
        const [addr, type, name] = line.split(/\s+/);
        if (name && /^[tTwW]$/.test(type)) rows.push([BigInt(`0x${addr}`), name]);
      }
      rows.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
      for (const [a, n] of rows) {
        this.addrs.push(a);
        this.names.push(n);
      }
    }

    get readable(): boolean {
      return this.addrs.length > 0 && this.addrs[this.addrs.length - 1] !== 0n;
    }

    /** The function holding addr (the last symbol at or below it). */
    name(addr: bigint): string {
      let lo = 0;
      let hi = this.addrs.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (this.addrs[mid] <= addr) {
          found = mid;
          lo = mid + 1;
        } else hi = mid - 1;
      }
      return found < 0 ? '?' : this.names[found];
    }
  }

  /** Collects drained samples and switches of one thread until `enough` says so. */
  async function collect(ev: StackEvents, tid: number, enough: (s: StackSample[], w: SwitchEvent[]) => boolean, what: string) {
    const samples: StackSample[] = [];
    const switches: SwitchEvent[] = [];
    await until(what, () => {
      const d = ev.drain();
      samples.push(...d.samples.filter((s) => s.tid === tid));
      switches.push(...d.switches.filter((s) => s.tid === tid));
      return enough(samples, switches) || null;
    });
    return { samples, switches };
  }

  /** Whether the page at addr is in memory (/proc/PID/pagemap's present bit): the kernel copies a stack at the instant without faulting pages in. */
  function resident(pid: number, addr: number): boolean {
    const fd = fs.openSync(`/proc/${pid}/pagemap`, 'r');
    try {
      const entry = Buffer.alloc(8);
      fs.readSync(fd, entry, 0, 8, Math.floor(addr / PAGE) * 8);
      return entry.readBigUInt64LE() >> 63n === 1n;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * The copy is as long as asked, or it ends where the kernel could not read on at the instant: the end of the
   * stack's mapping with nothing readable after it, or a page not resident (the kernel does not fault pages in then;
   * the main thread's stack has such pages between its frames and the strings at its top, from the random offset).
   */
  function checkStackLength(tt: Test, pid: number, s: StackSample, asked: number, label: string): void {
    const maps = readProcMaps(pid);
    const m = findMapping(maps, s.sp);
    if (!m) {
      tt.fail(`${label}: sp 0x${s.sp.toString(16)} is in no mapping`);
      return;
    }
    if (s.stack.length === asked) {
      tt.notOk(s.stackCut, `${label}: a full copy is not cut`);
      return;
    }
    tt.ok(s.stackCut, `${label}: a copy of ${s.stack.length} bytes < ${asked} is marked cut`);
    const end = s.sp + s.stack.length;
    const next = findMapping(maps, end);
    const atMappingEnd = end === m.end && (next === null || !next.perms.startsWith('r'));
    const atAbsentPage = end % PAGE === 0 && end < m.end && !resident(pid, end);
    tt.ok(atMappingEnd || atAbsentPage, `${label}: the cut copy ends at 0x${end.toString(16)}, the end of ${m.path || 'its mapping'} or a page not resident`);
  }

  t.test('cpu: samples of the burning thread arrive at the rate asked, in xw_burn, with its stack', async (tt) => {
    const b = await Burner.start();
    tt.teardown(() => b.close());
    const [, tidText, loText, hiText] = (await b.ask('burn')).answer.split(' ');
    const tid = Number(tidText);
    const stackLo = parseInt(loText, 16);
    const stackHi = parseInt(hiText, 16);
    const HZ = 99;
    const STACK = 8192;

    const cpu0 = cpuNs(b.pid, tid);
    const ev = StackEvents.open(b.pid, { kind: 'cpu', hz: HZ, stackBytes: STACK });
    tt.teardown(() => ev.close());
    tt.same(ev.tids.sort((x, y) => x - y), [b.pid, tid].sort((x, y) => x - y), 'one event on each thread of the target');
    tt.equal(ev.fds.length, 2, 'an fd a thread (for an eBPF attach)');

    const { samples } = await collect(ev, tid, (s) => s.length >= 150, '150 samples of the burner');
    const cpu1 = cpuNs(b.pid, tid);
    for (const s of ev.drain().samples) if (s.tid === tid) samples.push(s);
    const expected = ((cpu1 - cpu0) / 1e9) * HZ;
    // The clock fires on the thread's own CPU time: 10.1 ms of it a sample. A period cut short at a switch-out
    // resumes at the next switch-in, so the count sits just under expected; sampling's own cost adds a little CPU.
    tt.ok(
      samples.length >= expected * 0.85 && samples.length <= expected * 1.05 + 2,
      `${samples.length} samples for ${((cpu1 - cpu0) / 1e6).toFixed(0)} ms of CPU at ${HZ} Hz (${expected.toFixed(1)} expected, -15%..+5%)`,
    );
    tt.equal(ev.lost(), 0, 'none lost');
    tt.equal(ev.corrupt(), 0, 'no record skipped as corrupt');

    const elf = ElfFile.open(BINARY);
    const burn = elf.symbols().find((s) => s.name === 'xw_burn' && s.type === STT_FUNC);
    if (!burn) throw new Error('xw_burn is not in the symbols of stack-burner');
    const maps = readProcMaps(b.pid);
    const bias = loadBias(maps, BINARY, elf);
    const text = maps.find((m) => m.path === BINARY && m.perms.includes('x'));
    tt.ok(text, 'the burner has a text mapping');
    let inText = 0;
    let inBurn = 0;
    let inStack = 0;
    let monotonic = true;
    for (const [i, s] of samples.entries()) {
      if (s.pid !== b.pid) tt.fail(`sample ${i}: pid ${s.pid}, not ${b.pid}`);
      if (text && s.ip >= text.start && s.ip < text.end) inText++;
      if (s.ip >= bias + burn.value && s.ip < bias + burn.value + burn.size) inBurn++;
      if (s.sp >= stackLo && s.sp < stackHi) inStack++;
      if (i > 0 && s.time < samples[i - 1].time) monotonic = false;
    }
    tt.equal(inText, samples.length, "every sample's ip is in the burner's text mapping");
    tt.equal(inBurn, samples.length, 'every sample is in xw_burn (the only code the thread runs)');
    tt.equal(inStack, samples.length, "every sample's sp is in the thread's stack (pthread_getattr_np)");
    tt.ok(monotonic, 'samples come in time order');
    const first = samples[0];
    tt.ok(first.regs.length === 17 && Number(first.regs[7]) === first.sp && Number(first.regs[8]) === first.ip, 'regs in mask order: rsp 7, rip 8');
    const now = process.hrtime.bigint();
    tt.ok(first.time > now - 120_000_000_000n && first.time <= now, "times are CLOCK_MONOTONIC (this process's hrtime)");
    for (const s of samples.slice(0, 20)) checkStackLength(tt, b.pid, s, STACK, `sample at ${s.time}`);

    // wait(): a small ring (8 pages, woken at half: 2 samples of 8 KiB) wakes its reader. (Whether an emptied ring
    // wakes is the kernel's: poll() reports a wake-up since the last poll, drained or not; not asserted.)
    ev.close();
    const small = StackEvents.open(b.pid, { kind: 'cpu', hz: 999, stackBytes: STACK, ringPages: 8 });
    tt.teardown(() => small.close());
    tt.ok(small.wait(30_000), 'wait() returns when a ring is half full');
    tt.ok(small.drain().samples.filter((s) => s.tid === tid).length >= 2, 'and the ring holds the samples that woke it');
  });

  t.test('switch: a thread blocked in read() and in nanosleep(), its kernel path and the time it was blocked', async (tt) => {
    const kallsyms = new Kallsyms();
    if (!kallsyms.readable) {
      tt.pass('/proc/kallsyms', { skip: 'it shows no addresses here' });
      return;
    }
    const b = await Burner.start();
    tt.teardown(() => b.close());
    const tid = b.pid; // the main thread reads the commands
    await b.ask('ping');
    const STACK = 16384;
    const ev = StackEvents.open(b.pid, { kind: 'switch', stackBytes: STACK });
    tt.teardown(() => ev.close());
    const pvr = new PvrSource(b.pid, loadPvrAddon()!);
    const all = { samples: [] as StackSample[], switches: [] as SwitchEvent[] };
    const take = (got: { samples: StackSample[]; switches: SwitchEvent[] }) => {
      all.samples.push(...got.samples);
      all.switches.push(...got.switches);
    };

    // 1. read() on the pipe, for a time the test keeps and measures itself.
    const BLOCK_MS = 300;
    const { sentAt: pingAt } = await b.ask('ping');
    const answeredAt = b.lastLineAt;
    const mine = () => ({ samples: all.samples.filter((s) => s.tid === tid), switches: all.switches.filter((w) => w.tid === tid) });
    // The target answers, then blocks in read() again: until its switch-out is seen, it may not have.
    const readOut = await until('the main thread to block in read()', () => {
      take(ev.drain());
      const last = mine().switches.at(-1);
      return last && last.out && !last.preempt && last.time > pingAt ? last : null;
    });
    // Its switch-out sample, taken while it is still blocked: its stack is the one it is blocked with.
    const blockedRead = mine().samples.at(-1)!;
    tt.ok(blockedRead.time > pingAt && blockedRead.time <= readOut.time, 'the switch-out sample comes with the switch-out record');
    const again = Buffer.alloc(blockedRead.stack.length);
    tt.equal(pvr.readInto(blockedRead.sp, again), again.length, 'process_vm_readv reads the same range');
    tt.ok(blockedRead.stack.equals(again), `the ${blockedRead.stack.length} stack bytes of the sample are those process_vm_readv reads after`);
    checkStackLength(tt, b.pid, blockedRead, STACK, 'the main thread blocked in read()');
    tt.equal(findMapping(readProcMaps(b.pid), blockedRead.sp)?.path, '[stack]', "the main thread's sp is in [stack]");
    const readPath = blockedRead.kernel.map((a) => kallsyms.name(a));
    // pipe_read; since Linux 6.16 anon_pipe_read, under fifo_pipe_read for a FIFO.
    tt.ok(readPath.some((n) => PIPE_READ.test(n)), `the kernel callchain holds pipe_read: ${readPath.slice(0, 12).join(' < ')}`);
    tt.ok(readPath.some((n) => n.includes('schedule')), 'and the scheduler it left the CPU through');

    await new Promise((r) => setTimeout(r, BLOCK_MS)); // the block the test controls (measured below, not assumed)
    const { sentAt: wokenAt } = await b.ask('ping');

    // 2. nanosleep for a time the target is told. Its wake-up was recorded before it answered.
    const SLEEP_MS = 250;
    const { sentAt: sleepAskedAt } = await b.ask(`sleep ${SLEEP_MS}`);
    take(ev.drain());
    const { samples, switches } = mine();
    const lastOut = switches.filter((w) => w.out).at(-1)!;

    // Each switch-out is followed by a switch-in of the same thread, but the last (it is blocked now).
    let paired = true;
    for (let i = 1; i < switches.length; i++) if (switches[i].out === switches[i - 1].out) paired = false;
    tt.ok(paired, `switch-outs and switch-ins alternate (${switches.length} records)`);
    tt.equal(
      samples.filter((s) => s.time <= lastOut.time).length,
      switches.filter((w) => w.out).length,
      'a sample for every switch-out',
    );
    tt.equal(ev.lost(), 0, 'none lost');

    const blockOf = (out: SwitchEvent) => switches.find((w) => !w.out && w.time > out.time);
    // The read(): from its switch-out to the switch-in after it.
    const readIn = blockOf(readOut)!;
    tt.ok(readIn && readIn.time >= wokenAt, 'nothing woke the reader before the test wrote');
    const measured = Number(wokenAt - answeredAt) / 1e6;
    const blocked = Number(readIn.time - readOut.time) / 1e6;
    tt.ok(Math.abs(blocked - measured) <= measured * 0.1, `blocked in read() ${blocked.toFixed(1)} ms, the test kept it ${measured.toFixed(1)} ms (10%)`);
    tt.notOk(readOut.preempt, 'a block, not a preemption');

    // The nanosleep: the longest block after the sleep was asked.
    const sleeps = switches
      .filter((w) => w.out && w.time > sleepAskedAt)
      .map((w) => ({ out: w, in: blockOf(w) }))
      .filter((p) => p.in)
      .sort((x, y) => Number(y.in!.time - y.out.time - (x.in!.time - x.out.time)));
    const sleep = sleeps[0];
    tt.ok(sleep, 'a block after the sleep was asked');
    const slept = Number(sleep.in!.time - sleep.out.time) / 1e6;
    tt.ok(Math.abs(slept - SLEEP_MS) <= SLEEP_MS * 0.1, `blocked in nanosleep ${slept.toFixed(1)} ms for ${SLEEP_MS} ms asked (10%)`);
    const sleepSample = samples.find((s) => s.time <= sleep.out.time && s.time >= sleepAskedAt && !samples.some((o) => o.time > s.time && o.time <= sleep.out.time));
    tt.ok(sleepSample, 'the switch-out sample of that block');
    const sleepPath = (sleepSample?.kernel ?? []).map((a) => kallsyms.name(a));
    tt.ok(
      sleepPath.includes('do_nanosleep') || sleepPath.includes('hrtimer_nanosleep'),
      `its kernel callchain holds do_nanosleep / hrtimer_nanosleep: ${sleepPath.slice(0, 12).join(' < ')}`,
    );
    tt.notOk(sleepPath.some((n) => PIPE_READ.test(n)), 'and not pipe_read (the paths are told apart)');
  });

  t.test('errors: one clear line', async (tt) => {
    const pidMax = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    // pid_max itself is never given out.
    tt.throws(() => StackEvents.open(pidMax, { kind: 'cpu', stackBytes: 8192 }), { message: `process ${pidMax} exited (or does not exist)` });
    const err = (() => {
      try {
        StackEvents.open(process.pid, { kind: 'cpu', stackBytes: 1000 + 4 });
      } catch (e) {
        return e as Error;
      }
      return null;
    })();
    tt.match(err?.message, /^the stack copy must be a multiple of 8 bytes from 8 to 65528, not 1004$/, 'a stack size the kernel refuses is said before asking it');
    tt.equal(err?.name, 'UserError');
  });

  t.test('rescan() gives the events of the threads started since, also where one has the fd of a thread that exited', async (tt) => {
    const events = StackEvents.open(process.pid, { kind: 'cpu', hz: 1, stackBytes: 8, disabled: true });
    tt.teardown(() => events.close());
    const started = async (): Promise<Worker> => {
      const w = new Worker('require("node:worker_threads").parentPort.on("message", () => {})', { eval: true });
      await new Promise<void>((resolve) => w.once('online', () => resolve()));
      return w;
    };
    const newTids = (before: number[]) => events.tids.filter((tid) => !before.includes(tid));
    const a = await started();
    let before = events.tids;
    const firstFds = events.rescan();
    tt.ok(newTids(before).length >= 1 && firstFds.length === newTids(before).length, `a worker's thread: ${firstFds.length} event(s) added`);
    await a.terminate();
    const b = await started();
    before = events.tids;
    const fds = events.rescan();
    const added = newTids(before);
    tt.ok(added.length >= 1, `the second worker's thread is sampled: ${JSON.stringify(added)}`);
    tt.equal(fds.length, added.length, `one fd a thread added (${JSON.stringify(fds)}; the exited thread's were ${JSON.stringify(firstFds)})`);
    tt.same(new Set(fds), new Set(events.fds.slice(-fds.length)), 'the fds of the events just opened');
    await b.terminate();
  });

}
