/**
 * xsample record --cpu / --off-cpu: whole stacks of every thread of a
 * process, sampled by the kernel and never stopped. Each perf sample
 * carries the thread's user registers, a copy of its user stack and the
 * kernel's callchain (sampler/memory/perf/); user space unwinds the copy with the
 * objects' own frame descriptions (sampler/memory/unwind/). Where the process's pack
 * has a view that splices: native_stack (LuaJIT's lua_entries), the kernel
 * also runs that view's capture at the same instant, and the interpreter's
 * frames take the place of its own native frames (splice.ts).
 *
 * On-CPU: a sample every 1/rate s of a thread's CPU time, each weighing 1.
 * Off-CPU: a sample at each switch-out of a thread, weighing the time to
 * its next switch-in (µs), when at least --min-block.
 */
import { UserError } from '../../core/errors.ts';
import type { ViewIR } from '../../generators/ir.ts';
import { bpfUnavailable } from '../bpf/addon.ts';
import type { Capture } from '../bpf/capture.ts';
import { InstantSampler } from '../bpf/instant-sampler.ts';
import { toJson } from '../sampling/result-shape.ts';
import { TargetGone } from '../memory/memory.ts';
import { checkOutput, writeOutput } from '../outputs/output-file.ts';
import { type StackSample, type SwitchEvent, StackEvents } from '../memory/perf/stack-events.ts';
import { Progress } from '../outputs/progress.ts';
import { type Format, formatOfFile, renderStacks, type StackUnits } from '../outputs/recording.ts';
import { closeSessions, compileSessions, openSessions, type Print, type SampleOptions, sampleOnce, type Session } from '../sampling/sampling.ts';
import { Interrupt } from '../sampling/interrupt.ts';
import type { Row } from '../sampling/view-run.ts';
import { MAX_STACKS, StackCounts } from '../outputs/stack-counts.ts';
import { watchProcess } from '../memory/target.ts';
import { KernelSymbols } from '../memory/unwind/frame-names.ts';
import { ProcessObjects } from '../memory/unwind/objects.ts';
import { regsFromPerf } from '../memory/unwind/regs.ts';
import { Unwinder, type UnwindEnd } from '../memory/unwind/unwinder.ts';
import { type InterpreterState, interpreterState } from './interpreter.ts';
import { EntrySplicer, interpreterCode, stackNames } from './splice.ts';

export interface CpuRecordOptions extends SampleOptions {
  mode: 'cpu' | 'off-cpu';
  /** On-CPU samples a second of a thread's CPU time. */
  rate: number;
  duration: number;
  out: string | null;
  format: Format | null;
  /** Bytes of user stack each sample copies. */
  stackBytes: number;
  /** Splice an interpreter's frames in where the pack says how. */
  interpreted: boolean;
  /** Off-CPU: waits shorter than this (µs) are left out. */
  minBlockUs: number;
}

export const DEFAULT_STACK_BYTES = 16384;
export const DEFAULT_CPU_HZ = 99;

const DRAIN_MS = 50;
/** How often each process's threads are listed again, for threads started since. */
const RESCAN_MS = 1000;
/** A capture belongs to the sample of the same thread taken within this of it (the same overflow: µs apart). */
const MATCH_NS = 2_000_000n;

const UNITS: Record<CpuRecordOptions['mode'], StackUnits> = {
  cpu: { unit: 'samples', pprof: ['cpu', 'count'], speedscope: 'none', what: 'samples of CPU time, added up' },
  'off-cpu': { unit: 'µs', pprof: ['off-cpu', 'microseconds'], speedscope: 'microseconds', what: 'µs blocked, added up' },
};

/** One process recorded: its events, unwinder, and the interpreter's capture where there is one. */
interface Recorded {
  pid: number;
  /** Whether the process recorded still runs (the same one, not a reuse of its pid), until it is closed. */
  running: { same: () => boolean; close: () => void };
  events: StackEvents;
  objects: ProcessObjects;
  unwinder: Unwinder;
  session: Session | null;
  capture: InstantSampler | null;
  /** Captures not yet matched with their sample, by thread. */
  pending: Map<number, Capture[]>;
  /** Off-CPU: each thread's last switch-out, waiting for its switch-in. */
  blocked: Map<number, Blocked>;
}

/** A thread off the CPU: its switch-out's sample, its interpreter as read while it waited and when that read ended, whether it was preempted. */
interface Blocked {
  sample: StackSample;
  state: InterpreterState | null;
  /** Why the interpreter read while it waited is not usable: counted once the wait is kept. */
  missed: string | null;
  readEnd: bigint;
  preempted: boolean;
}

/** What a recording saw: the figures --verbose and the JSON give. */
class Figures {
  samples = 0;
  /** Samples whose user stack unwound to its outermost frame. */
  outermost = 0;
  ends = new Map<UnwindEnd, number>();
  interpreted = 0;
  /** Samples whose capture could not be used (none matched, or partial), and why. */
  interpreterMissed = 0;
  readonly missedBecause = new Map<string, number>();
  unwindNs = 0n;
  /** Time spent walking the interpreter's captures. */
  walkNs = 0n;
  shortWaits = 0;
}

export async function recordCpu(o: CpuRecordOptions, print: Print, warn: Print): Promise<number> {
  if (o.out) checkOutput(o.out);
  const format = o.format ?? formatOfFile(o.out) ?? 'folded';
  if (format === 'pprof' && !o.out && process.stdout.isTTY) throw new UserError('a pprof profile is gzipped binary: write it to a file with -o FILE (or pipe it)');
  const { pids, sessions } = await processesOf(o, warn);
  const ksyms = loadKernelSymbols(warn);
  const procs: Recorded[] = [];
  const counts = new StackCounts(false);
  const figures = new Figures();
  const interrupt = new Interrupt();
  const progress = process.stderr.isTTY ? new Progress() : null;
  let stopped: string | null = null;
  const startWall = Date.now();
  let start = performance.now();
  try {
    for (const pid of pids) procs.push(openProcess(o, pid, sessions.find((s) => s.target.pid === pid) ?? null, warn));
    start = performance.now();
    const end = start + o.duration * 1000;
    let rescanned = start;
    for (;;) {
      const left = end - performance.now();
      await interrupt.sleep(Math.min(DRAIN_MS, Math.max(0, left)));
      for (const p of procs) take(o, p, counts, figures, ksyms, warn);
      if (performance.now() - rescanned >= RESCAN_MS) {
        rescanned = performance.now();
        for (const p of procs) addThreads(p);
      }
      progress?.update(`${figures.samples} samples${o.duration === Infinity ? ', Ctrl-C to stop' : ''}`);
      if (interrupt.stopped) {
        stopped = 'stopped by Ctrl-C';
        break;
      }
      if (left <= 0) break;
      if (procs.every((p) => !p.running.same())) {
        stopped = procs.length === 1 ? 'the target exited' : 'every process recorded exited';
        break;
      }
    }
  } finally {
    interrupt.dispose();
    progress?.done();
    for (const p of procs) {
      if (p.session) p.session.instant = undefined;
      p.capture?.close();
      p.events.close();
      p.running.close();
    }
    closeSessions(sessions);
  }
  // Threads still off the CPU at the end weigh the time they have waited so far.
  if (o.mode === 'off-cpu') for (const p of procs) flushBlocked(o, p, counts, figures, ksyms);
  const seconds = (performance.now() - start) / 1000;
  if (stopped) warn(`xsample: ${stopped} after ${seconds.toFixed(1)} s; ${figures.samples} sample${figures.samples === 1 ? '' : 's'} kept`);
  if (figures.samples === 0 && stopped && stopped !== 'stopped by Ctrl-C') throw new TargetGone(`${stopped} before any sample: nothing to write`);
  const lost = procs.reduce((n, p) => n + p.events.lost(), 0);
  if (lost > 0) warn(`xsample: the kernel dropped ${lost} sample${lost === 1 ? '' : 's'}: its ring was full (xsample fell behind)`);
  if (counts.overflowed > 0) warn(`xsample: more than ${MAX_STACKS} distinct stacks: ${counts.overflowed} more are under "(other stacks)"`);
  const units = UNITS[o.mode];
  const name = `${o.mode === 'cpu' ? 'on-CPU' : 'off-CPU'} stacks (pid ${pids.join(', ')})`;
  const of = o.mode === 'cpu' ? `${figures.samples} samples at ${o.rate} Hz of CPU time` : `µs blocked, ${figures.samples} waits`;
  const summary = summaryOf(o, figures, seconds);
  const text =
    format === 'json'
      ? toJson({
          mode: o.mode,
          pids,
          rate_hz: o.mode === 'cpu' ? o.rate : null,
          seconds: Number(seconds.toFixed(3)),
          samples: figures.samples,
          outermost: figures.outermost,
          interpreted: figures.interpreted,
          interpreter_missed: figures.interpreterMissed,
          lost,
          unit: units.unit,
          total_weight: counts.total(),
          stacks: counts.entries(),
        })
      : renderStacks(format, counts, name, of, units, { startMs: startWall, seconds, rateHz: o.mode === 'cpu' ? o.rate : 1000 });
  const perSample = (ns: bigint) => (figures.samples ? (Number(ns) / figures.samples / 1000).toFixed(1) : '?');
  if (o.verbose) warn(`xsample: unwinding: ${perSample(figures.unwindNs)} µs a sample, the interpreter's capture ${perSample(figures.walkNs)} µs; ends: ${[...figures.ends].map(([k, n]) => `${k} ${n}`).join(', ')}`);
  if (o.out) {
    writeOutput(o.out, typeof text === 'string' ? text + '\n' : text);
    warn(`xsample: wrote ${o.out} (${format}): ${summary}`);
  } else {
    if (typeof text !== 'string') process.stdout.write(text);
    else print(text);
    warn(`xsample: ${summary}`);
  }
  return 0;
}

function summaryOf(o: CpuRecordOptions, f: Figures, seconds: number): string {
  const pct = (n: number) => (f.samples ? ((100 * n) / f.samples).toFixed(1) : '0.0');
  const parts = [`${f.samples} ${o.mode === 'cpu' ? 'samples' : 'waits'} in ${seconds.toFixed(1)} s`, `${pct(f.outermost)}% unwound to the outermost frame`];
  if (f.interpreted || f.interpreterMissed) {
    const why = [...f.missedBecause].sort((a, b) => b[1] - a[1]).slice(0, 2).map(([w, n]) => `${w}: ${n}`);
    parts.push(`${f.interpreted} with interpreter frames${f.interpreterMissed ? `, ${f.interpreterMissed} without (${why.join('; ')})` : ''}`);
  }
  if (f.shortWaits) parts.push(`${f.shortWaits} waits under ${o.minBlockUs} µs left out`);
  return parts.join('; ');
}

/**
 * The processes to record (a master stands for its workers, as its pack says) and, for each, the session of
 * its pack's view that splices: native_stack, where there is one and it can be read (on-CPU: with eBPF, at
 * the instant of each sample). A process no pack knows is recorded as it is, with native frames only.
 */
async function processesOf(o: CpuRecordOptions, warn: Print): Promise<{ pids: number[]; sessions: Session[] }> {
  let all: Session[];
  try {
    all = await openSessions(o, warn, (pack) => {
      const views = [...pack.views.values()];
      const one = views.find((v: ViewIR) => v.splices === 'native_stack') ?? views[0];
      return one ? [one] : [];
    });
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    if (o.verbose) warn(`xsample: native frames only: ${err.message}`);
    return { pids: o.pids!, sessions: [] };
  }
  const pids = all.length ? [...new Set(all.map((s) => s.target.pid!))] : o.pids!;
  const splicing = all.filter((s) => s.view.splices === 'native_stack');
  closeSessions(all.filter((s) => !splicing.includes(s)));
  const why = o.interpreted && o.mode === 'cpu' && splicing.length ? bpfUnavailable() : null;
  if (!o.interpreted || why !== null || splicing.length === 0) {
    if (why !== null) warn(`xsample: native frames only: the interpreter's frames are read at the instant of each sample, with eBPF, and ${why}`);
    closeSessions(splicing);
    return { pids, sessions: [] };
  }
  return { pids, sessions: splicing.filter((s) => compiles(o, s, warn)) };
}

/** Whether the view compiles for the process: one of the pack without the interpreter (nginx without the Lua module) does not. */
function compiles(o: CpuRecordOptions, s: Session, warn: Print): boolean {
  try {
    compileSessions(o, [s]);
    return true;
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    if (o.verbose) warn(`xsample: pid ${s.target.pid}: native frames only: ${err.message}`);
    closeSessions([s]);
    return false;
  }
}

/**
 * On-CPU, the interpreter's capture runs beside each sample, at its instant. Off-CPU it does not: a thread
 * off the CPU does not change its interpreter's state, which is read while it still waits (offCpu). (On this
 * kernel a program on the context-switch event also stops the event for good once the thread forks.)
 */
function openProcess(o: CpuRecordOptions, pid: number, session: Session | null, warn: Print): Recorded {
  const running = watchProcess(pid);
  let events: StackEvents;
  try {
    // Opened stopped: the first sample is taken once the interpreter's capture is attached beside it.
    events = StackEvents.open(pid, { kind: o.mode === 'cpu' ? 'cpu' : 'switch', hz: o.rate, stackBytes: o.stackBytes, disabled: true });
  } catch (err) {
    running.close();
    throw err;
  }
  let capture: InstantSampler | null = null;
  try {
    if (session && o.mode === 'cpu') {
      const R = session.compiled!.R;
      capture = InstantSampler.attach(session, events.fds, (n) => R.global(n));
      // The session's walks read the capture in use, and its registers (sampling.ts sampleOnce).
      session.instant = capture;
    }
  } catch (err) {
    warn(`xsample: pid ${pid}: native frames only: the interpreter's capture did not load: ${(err as Error).message}`);
    capture = null;
  }
  if (!capture) events.enable();
  const objects = ProcessObjects.live(pid);
  return { pid, running, events, objects, unwinder: new Unwinder(objects), session, capture, pending: new Map(), blocked: new Map() };
}

/** Threads started since the last look get their events (and the interpreter's capture beside them). */
function addThreads(p: Recorded): void {
  const fresh = p.events.rescan();
  if (fresh.length === 0) return;
  if (p.capture) p.capture.attachTo(fresh);
  else p.events.enable(fresh);
}

function loadKernelSymbols(warn: Print): KernelSymbols | null {
  try {
    return KernelSymbols.load();
  } catch (err) {
    warn(`xsample: kernel frames are addresses: ${(err as Error).message}`);
    return null;
  }
}

/** Everything the kernel wrote for one process since the last time. */
function take(o: CpuRecordOptions, p: Recorded, counts: StackCounts, figures: Figures, ksyms: KernelSymbols | null, warn: Print): void {
  // Samples first: a sample's capture is written before it, so every sample drained has its capture in the ring.
  const { samples, switches } = p.events.drain();
  if (p.capture) {
    for (const c of p.capture.drain()) {
      let q = p.pending.get(c.tid);
      if (!q) p.pending.set(c.tid, (q = []));
      q.push(c);
    }
  }
  if (o.mode === 'cpu') {
    for (const s of samples) counts.sample(`pid ${p.pid}`, [{ frames: [`pid ${p.pid}`, ...framesOf(p, s, interpreterAt(o, p, s, figures, warn), figures, ksyms)], weight: 1 }]);
  } else {
    offCpu(o, p, samples, switches, counts, figures, ksyms, warn);
  }
  // Captures that found no sample (its ring dropped it) are not kept past a drain or two.
  for (const [tid, q] of p.pending) if (q.length > 64) p.pending.set(tid, q.slice(-16));
}

/**
 * A switch-out's stack waits for the thread's switch-in: the time between is what it weighs. A thread
 * switched out while still runnable (preempted) waited for a CPU, not for an event: its stack ends so.
 */
function offCpu(o: CpuRecordOptions, p: Recorded, samples: StackSample[], switches: SwitchEvent[], counts: StackCounts, figures: Figures, ksyms: KernelSymbols | null, warn: Print): void {
  const events: { t: bigint; s?: StackSample; w?: SwitchEvent }[] = [...samples.map((s) => ({ t: s.time, s })), ...switches.map((w) => ({ t: w.time, w }))];
  // Stable: a switch's sample stays before its switch-out record of the same time.
  events.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : 0));
  const lastIn = new Map<number, bigint>();
  for (const w of switches) if (!w.out && w.time > (lastIn.get(w.tid) ?? -1n)) lastIn.set(w.tid, w.time);
  for (const { t, s, w } of events) {
    if (s) {
      // Still off the CPU (no switch-in drained after it): its interpreter is as it was at the switch.
      const waiting = (lastIn.get(s.tid) ?? -1n) < t;
      const read = waiting ? interpreterNow(o, p, figures, warn) : { state: null, missed: null };
      p.blocked.set(s.tid, { sample: s, ...read, readEnd: monotonicNs(), preempted: false });
      continue;
    }
    const out = p.blocked.get(w!.tid);
    if (!out) continue;
    if (w!.out) {
      out.preempted ||= w!.preempt;
      continue;
    }
    p.blocked.delete(w!.tid);
    endWait(o, p, out, t, counts, figures, ksyms);
  }
}

/** A wait's stack and weight; the interpreter's frames only if they were read before the wait ended. */
function endWait(o: CpuRecordOptions, p: Recorded, out: Blocked, end: bigint, counts: StackCounts, figures: Figures, ksyms: KernelSymbols | null): void {
  const us = Number((end - out.sample.time) / 1000n);
  // A wait too short to keep is never unwound: on a busy worker most waits are.
  if (us < o.minBlockUs) {
    figures.shortWaits++;
    return;
  }
  let state = out.state;
  if (out.missed) missedState(figures, out.missed);
  if (state && out.readEnd > end) {
    state = null;
    missedState(figures, 'the wait ended before the interpreter was read');
  }
  const frames = framesOf(p, out.sample, state, figures, ksyms);
  if (out.preempted) frames.push(PREEMPTED);
  counts.sample(`pid ${p.pid}`, [{ frames: [`pid ${p.pid}`, ...frames], weight: us }]);
}

/** The last frame of a wait for a CPU (the thread was preempted, still runnable). */
export const PREEMPTED = '[preempted: runnable, waiting for a CPU]';

function flushBlocked(o: CpuRecordOptions, p: Recorded, counts: StackCounts, figures: Figures, ksyms: KernelSymbols | null): void {
  const now = monotonicNs();
  for (const out of p.blocked.values()) endWait(o, p, out, now, counts, figures, ksyms);
  p.blocked.clear();
}

/** Off-CPU: the interpreter read from memory now, while its thread waits; null when none runs or it was not read whole. */
function interpreterNow(o: CpuRecordOptions, p: Recorded, figures: Figures, warn: Print): { state: InterpreterState | null; missed: string | null } {
  if (!p.session) return { state: null, missed: null };
  const w0 = process.hrtime.bigint();
  try {
    const r = sampleOnce(walkOptions(o), p.session, warn).result;
    if (r.partial) return { state: null, missed: r.errors[0]?.message ?? 'partial' };
    return { state: stateOf(r.items[0]), missed: null };
  } catch (err) {
    if (err instanceof TargetGone) return { state: null, missed: null };
    throw err;
  } finally {
    figures.walkNs += process.hrtime.bigint() - w0;
  }
}

/** CLOCK_MONOTONIC, the clock of the samples (node's hrtime reads it). */
const monotonicNs = (): bigint => process.hrtime.bigint();

/** One sample's frames, outermost first: the unwound native frames, the interpreter's spliced in where state says. */
function framesOf(p: Recorded, s: StackSample, state: InterpreterState | null, figures: Figures, ksyms: KernelSymbols | null): string[] {
  figures.samples++;
  if (state) figures.interpreted++;
  const t0 = process.hrtime.bigint();
  const regs = regsFromPerf(s.regs);
  const stack = { sp: s.sp, bytes: s.stack };
  const splicer = state ? new EntrySplicer(state, p.unwinder, interpreterCode(p.objects, state.vmPc), stack) : null;
  let unwound = p.unwinder.unwind(regs, stack, splicer?.hooks());
  if (unwound.end === 'unmapped') {
    // A pc in no mapping known: an object loaded since (dlopen); the maps are read again once.
    p.objects.refresh();
    unwound = p.unwinder.unwind(regs, stack, splicer?.hooks());
  }
  figures.unwindNs += process.hrtime.bigint() - t0;
  figures.ends.set(unwound.end, (figures.ends.get(unwound.end) ?? 0) + 1);
  if (unwound.end === 'outermost') figures.outermost++;
  return stackNames(unwound, splicer, s.kernel, ksyms);
}

/** The interpreter's state at the sample's instant, from the capture the kernel took with it; null when none runs or none is usable. */
function interpreterAt(o: CpuRecordOptions, p: Recorded, s: StackSample, figures: Figures, warn: Print): InterpreterState | null {
  if (!p.capture) return null;
  const w0 = process.hrtime.bigint();
  try {
    return captured(o, p, s, figures, warn);
  } finally {
    figures.walkNs += process.hrtime.bigint() - w0;
  }
}

function captured(o: CpuRecordOptions, p: Recorded, s: StackSample, figures: Figures, warn: Print): InterpreterState | null {
  const capture = p.capture!;
  const q = p.pending.get(s.tid);
  if (!q) return missedState(figures, NO_CAPTURE);
  // The capture ran in the same overflow as the sample, just before it.
  const i = q.findIndex((c) => c.timeNs <= s.time + MATCH_NS && s.time - c.timeNs <= MATCH_NS);
  if (i < 0) return missedState(figures, NO_CAPTURE);
  const c = q[i];
  q.splice(0, i + 1);
  let r;
  try {
    r = capture.walk(walkOptions(o), c, warn).result;
  } catch (err) {
    if (err instanceof TargetGone) return null;
    throw err;
  }
  if (r.partial) return missedState(figures, r.errors[0]?.message ?? 'partial');
  return stateOf(r.items[0]);
}

function stateOf(row: Row | undefined): InterpreterState | null {
  return row ? interpreterState(row) : null;
}

/** The capture's walk reports nothing per sample: the recording's summary says what it saw. */
const walkOptions = (o: CpuRecordOptions): CpuRecordOptions => (o.verbose ? { ...o, verbose: false } : o);

const NO_CAPTURE = 'no capture of the instant (the kernel dropped it)';

function missedState(figures: Figures, why: string): null {
  figures.interpreterMissed++;
  figures.missedBecause.set(why, (figures.missedBecause.get(why) ?? 0) + 1);
  return null;
}
