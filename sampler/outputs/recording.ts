/**
 * xsample record: sample a view at a rate, for a duration or until Ctrl-C,
 * and write what it adds up to. A stack-shaped view (stack:, weight:)
 * becomes a flame graph's input (folded, speedscope): per process, each
 * item's frames and weight, summed over the samples. Any view can be
 * summarised as JSON: per column, percentiles of its numbers and its most
 * frequent texts. Only complete samples count: a partial one (memory that
 * changed under it, a structure that could not be read) is left out and
 * counted, and the file and stderr say how many.
 *
 * The compiled view and the buffers are kept from sample to sample (the
 * sessions of sampling.ts); the target is never stopped.
 */
import { xwalkVersion } from '../../core/packs.ts';
import { UserError } from '../../core/errors.ts';
import { isGauge, type ViewIR, type Weighs } from '../../generators/ir.ts';
import { ColumnSummary } from './column-summary.ts';
import type { Int } from '../../core/exact.ts';
import type { Titled } from '../sampling/result-shape.ts';
import { toJson } from '../sampling/result-shape.ts';
import { TargetGone } from '../memory/memory.ts';
import { closeSessions, compileSessions, openSessions, type Print, type SampleOptions, sampleOnce, type Session, Tally, viewOf } from '../sampling/sampling.ts';
import { Interrupt } from '../sampling/interrupt.ts';
import { toSpeedscope } from './speedscope.ts';
import { toFlameSvg } from './flame-svg.ts';
import { checkOutput, writeOutput } from './output-file.ts';
import { toPprof } from './pprof.ts';
import { MAX_STACKS, StackCounts, toFolded } from './stack-counts.ts';
import { stacksOf } from './folded.ts';
import { InstantSampler } from '../bpf/instant-sampler.ts';
import { Progress } from './progress.ts';
import { bpfUnavailable } from '../bpf/addon.ts';

export const FORMATS = ['folded', 'speedscope', 'svg', 'pprof', 'json'] as const;
export type Format = (typeof FORMATS)[number];

export const INSTANT_MODES = ['auto', 'on', 'off'] as const;
export type InstantMode = (typeof INSTANT_MODES)[number];

export interface RecordOptions extends SampleOptions {
  rate: number;
  /** Sample a view with instant: by an eBPF capture at each perf sample (auto: where eBPF works). */
  instant?: InstantMode;
  /** Seconds; Infinity: until Ctrl-C. */
  duration: number;
  out: string | null;
  format: Format | null;
}

/** The format a file name asks for: x.speedscope.json, x.json, else folded; null when nothing says. */
export function formatOfFile(file: string | null): Format | null {
  if (!file) return null;
  if (/\.speedscope\.json$/i.test(file)) return 'speedscope';
  if (/\.json$/i.test(file)) return 'json';
  if (/\.svg$/i.test(file)) return 'svg';
  if (/\.(pb\.gz|pprof)$/i.test(file)) return 'pprof';
  if (/\.(folded|collapsed|txt)$/i.test(file)) return 'folded';
  return null;
}

/** What is recorded: one view, or the views of a flame graph (flamegraphs: in the schema), each with its sessions. */
interface Recorded {
  name: string;
  /** Stack-shaped: every part is (a view alone may be a table, recorded as json). */
  stacks: boolean;
  parts: { view: ViewIR; sessions: Session[] }[];
}

/** What the complete samples add up to so far: the stacks (averaged or added, as the weight is) and each view's columns. */
class Aggregate {
  readonly stacks: StackCounts;
  readonly columns = new Map<string, ColumnSummary>();

  constructor(readonly weighs: Weighs | null) {
    this.stacks = new StackCounts(weighs !== null && isGauge(weighs));
  }

  /** One complete sample of one process: every part's result. */
  sample(results: { view: ViewIR; r: Titled }[]): void {
    const paths: { frames: string[]; weight: Int }[] = [];
    for (const { view, r } of results) {
      let cols = this.columns.get(view.name);
      if (!cols) this.columns.set(view.name, (cols = new ColumnSummary()));
      for (const row of r.items) {
        if (view.stack) paths.push(...stacksOf(view.stack, row, r.pid));
        cols.add(row);
      }
    }
    if (this.weighs !== null) this.stacks.sample(String(results[0].r.pid), paths);
  }
}

export async function recordAll(o: RecordOptions, print: Print, warn: Print): Promise<number> {
  // A file that cannot be written fails now, not after the whole duration.
  if (o.out) checkOutput(o.out);
  // A flame graph's name stands for its views; each process gets a session per view.
  const sessions = await openSessions(o, warn, (pack) => (pack.flamegraphs.get(o.view)?.views ?? [o.view]).map((n) => viewOf(pack, n)));
  try {
    const names = [...new Set(sessions.map((s) => s.view.name))];
    const parts = names.map((n) => ({ view: sessions.find((s) => s.view.name === n)!.view, sessions: sessions.filter((s) => s.view.name === n) }));
    const rec: Recorded = { name: o.view, stacks: parts.every((p) => p.view.stack !== null), parts };
    const format = o.format ?? formatOfFile(o.out) ?? (rec.stacks ? 'folded' : 'json');
    if (format !== 'json' && !rec.stacks) throw new UserError(`view ${o.view} is a table, not stack-shaped (no stack: in the schema): record it as json`);
    if (format === 'pprof' && !o.out && process.stdout.isTTY) throw new UserError('a pprof profile is gzipped binary: write it to a file with -o FILE (or pipe it)');
    compileSessions(o, sessions);
    return await recordLoop(o, format, rec, print, warn);
  } finally {
    closeSessions(sessions);
  }
}

/**
 * One tick: a sample of every part for each process. A process's sample counts only when every part of
 * it is complete; the tally sees one result per process (its first partial part, if any).
 */
function sampleTick(o: RecordOptions, rec: Recorded, agg: Aggregate, tally: Tally, warn: Print): void {
  const processes = rec.parts[0].sessions.length;
  for (let i = 0; i < processes; i++) {
    if (rec.parts[0].sessions[i].gone) continue;
    let results: { view: ViewIR; r: Titled }[];
    try {
      results = rec.parts.map((p) => ({ view: p.view, r: sampleOnce(o, p.sessions[i], warn).result }));
    } catch (err) {
      if (!(err instanceof TargetGone) || processes === 1) throw err;
      warn(`xsample: ${err.message}`);
      for (const p of rec.parts) p.sessions[i].gone = true;
      continue;
    }
    const partial = results.find((x) => x.r.partial);
    tally.add(partial?.r ?? results[0].r);
    if (!partial) agg.sample(results);
  }
  if (rec.parts[0].sessions.every((s) => s.gone)) throw new TargetGone('every process read has exited');
}

/** How a recording went: from when, and why it stopped early (the target exited, Ctrl-C), if it did. */
interface Run {
  start: number;
  stopped: string | null;
  /** Samples due on the schedule that were not taken. */
  behind: number;
  slowest: number;
  /** The kernel's costs of an instant recording. */
  instant?: { captures: number; nsPerRun: number | null };
}

async function recordLoop(o: RecordOptions, format: Format, rec: Recorded, print: Print, warn: Print): Promise<number> {
  const agg = new Aggregate(rec.stacks ? rec.parts[0].view.stack!.weighs : null);
  const tally = new Tally();
  const interrupt = new Interrupt();
  const startWall = Date.now();
  const progress = process.stderr.isTTY ? new Progress() : null;
  const instant = atInstant(o, rec, warn);
  let run: Run;
  try {
    run = instant ? await instantRun(o, rec, agg, tally, interrupt, progress, warn) : await scheduleRun(o, rec, agg, tally, interrupt, progress, warn);
  } finally {
    interrupt.dispose();
    progress?.done();
  }
  const { start, stopped, behind, slowest } = run;
  const period = 1000 / o.rate;
  const seconds = (performance.now() - start) / 1000;
  const sessions = rec.parts[0].sessions;
  const kept = tally.samples - tally.partial;
  if (stopped) warn(`xsample: ${stopped} after ${seconds.toFixed(1)} s; ${kept} sample${kept === 1 ? '' : 's'} kept`);
  if (stopped && tally.samples === 0) throw new TargetGone(`${stopped} before any sample: nothing to write`);
  if (behind > 0 && !instant) warn(`xsample: sampling fell behind the rate: ${behind} of the samples due at ${o.rate} Hz were not taken (the slowest took ${slowest.toFixed(1)} ms; the period is ${period.toFixed(1)} ms)`);
  if (agg.stacks.overflowed > 0) warn(`xsample: more than ${MAX_STACKS} distinct stacks: ${agg.stacks.overflowed} more are under "(other stacks)"`);
  const meta = {
    start_ms: startWall,
    view: rec.name,
    pack: sessions[0].sel.pack.name,
    pids: sessions.map((s) => s.target.pid),
    rate_hz: o.rate,
    // At the instant: o.rate samples a second of the process's CPU time, each read by the kernel as it happened.
    sampled: instant ? 'cpu-time, at the instant (eBPF)' : 'wall-time, read from memory',
    seconds: Number(seconds.toFixed(3)),
    samples: tally.samples,
    partial: tally.partial,
    missed: behind,
  };
  if (o.verbose && run.instant) warn(`xsample: the kernel's capture: ${run.instant.captures} runs, ${run.instant.nsPerRun === null ? '?' : (run.instant.nsPerRun / 1000).toFixed(1)} µs each`);
  // What each path starts with, below its process: for lua_stacks, the VM's state (JIT, interpreted, C, GC...).
  const split = rec.stacks ? agg.stacks.splitAt(sessions[0].target.pid === null ? 0 : 1) : [];
  const text = render(format, rec, agg, split.length ? { ...meta, split: Object.fromEntries(split.map((e) => [e.frame, e.weight])) } : meta);
  const summary = `${tally.summary(sessions.length, seconds)}${tally.partial ? ' (partial samples are left out)' : ''}`;
  if (split.length > 1) warn(`xsample: split: ${splitText(split, agg.stacks.total())}`);
  const units = agg.weighs && `; weights: ${UNITS[agg.weighs].what}`;
  if (o.out) {
    writeOutput(o.out, typeof text === 'string' ? text + '\n' : text);
    warn(`xsample: wrote ${o.out} (${format}): ${summary}${units ?? ''}`);
  } else {
    if (typeof text !== 'string') process.stdout.write(text);
    else print(text);
    warn(`xsample: ${summary}${units ?? ''}`);
  }
  return tally.finish(o.verbose, warn);
}

/** Samples on a wall-clock schedule: --rate a second, each a read of memory. */
async function scheduleRun(o: RecordOptions, rec: Recorded, agg: Aggregate, tally: Tally, interrupt: Interrupt, progress: Progress | null, warn: Print): Promise<Run> {
  const period = 1000 / o.rate;
  // The first sample is the schedule's sample 0, and the schedule starts when it is done: it pays for what
  // only the first one does (the symbol tables it is the first to look in, the first perf-event sample).
  let start = performance.now();
  let behind = 0;
  let slowest = 0;
  let stopped: string | null = null;
  try {
    sampleTick(o, rec, agg, tally, warn);
    start = Math.max(start, performance.now() - period);
    // Sample k is due at start + k * period, for every k below rate x duration; one that comes after the
    // next one is due is not taken, but counted as missed: taken + missed = rate x duration.
    const slots = o.duration === Infinity ? Infinity : Math.ceil(o.duration * o.rate - 1e-9);
    for (let i = 1; i < slots; i++) {
      let due = start + i * period;
      const now = performance.now();
      if (now > due + period) {
        const skip = Math.min(Math.floor((now - due) / period), slots - i);
        behind += skip;
        i += skip;
        if (i >= slots) break;
        due = start + i * period;
      }
      await interrupt.sleep(Math.max(0, due - performance.now()));
      if (interrupt.stopped) {
        stopped = 'stopped by Ctrl-C';
        break;
      }
      const t0 = performance.now();
      sampleTick(o, rec, agg, tally, warn);
      slowest = Math.max(slowest, performance.now() - t0);
      progress?.update(`${tally.samples} samples, ${tally.partial} partial${o.duration === Infinity ? ', Ctrl-C to stop' : ''}`);
    }
  } catch (err) {
    // The target exiting ends the recording, not what it gathered.
    if (!(err instanceof TargetGone)) throw err;
    stopped = err.message === 'every process read has exited' ? 'every process read exited' : 'the target exited';
  }
  return { start, stopped, behind, slowest };
}

/**
 * Whether this recording samples at the instant: one view with instant:, live processes, eBPF here, and
 * --instant not off. With --instant on, anything missing is an error; with auto, a line says why not.
 */
function atInstant(o: RecordOptions, rec: Recorded, warn: Print): boolean {
  const mode = o.instant ?? 'auto';
  if (mode === 'off') return false;
  const view = rec.parts[0].view;
  const why =
    rec.parts.length > 1 || view.instant.length === 0
      ? `view ${rec.name} names nothing the kernel reads at the instant (no instant: in its schema)`
      : rec.parts[0].sessions.some((s) => s.target.kind !== 'live')
        ? 'a core is not sampled at instants'
        : bpfUnavailable();
  if (why === null) return true;
  if (mode === 'on') throw new UserError(`--instant on: ${why}`);
  if (view.instant.length > 0) warn(`xsample: ${view.name}: not sampled at the instant (${why}): reading memory at ${o.rate} Hz instead, which over-weights states that last long`);
  return false;
}

/**
 * Samples at the instant: the kernel runs the view's capture at each perf sample of a process's CPU time
 * (--rate a second of it); each capture is then walked by the view here. A capture the kernel had to cut
 * short (more words than it holds, no registers) is partial.
 */
async function instantRun(o: RecordOptions, rec: Recorded, agg: Aggregate, tally: Tally, interrupt: Interrupt, progress: Progress | null, warn: Print): Promise<Run> {
  const sessions = rec.parts[0].sessions;
  const samplers: InstantSampler[] = [];
  let start = performance.now();
  let stopped: string | null = null;
  let costs: Run['instant'];
  let dropped = 0;
  try {
    for (const s of sessions) {
      const R = s.compiled!.R;
      const sampler = InstantSampler.open(s, o.rate, (n) => R.global(n));
      s.instant = sampler;
      samplers.push(sampler);
    }
    // The recording starts once every capture runs (the verifier takes a while over a long walk).
    start = performance.now();
    const end = start + o.duration * 1000;
    for (;;) {
      const left = end - performance.now();
      await interrupt.sleep(Math.min(DRAIN_MS, Math.max(0, left)));
      for (const sampler of samplers) takeCaptures(o, rec, sampler, agg, tally, warn);
      progress?.update(`${tally.samples} samples, ${tally.partial} partial${o.duration === Infinity ? ', Ctrl-C to stop' : ''}`);
      if (interrupt.stopped) {
        stopped = 'stopped by Ctrl-C';
        break;
      }
      if (left <= 0) break;
      // No capture comes from a process that exited: ask each whether it is still the one it was.
      for (const s of sessions.filter((x) => !x.gone)) {
        try {
          s.target.checkIdentity();
        } catch (err) {
          if (!(err instanceof TargetGone) || sessions.length === 1) throw err;
          warn(`xsample: ${err.message}`);
          s.gone = true;
        }
      }
      if (sessions.every((s) => s.gone)) throw new TargetGone('every process read has exited');
    }
  } catch (err) {
    if (!(err instanceof TargetGone)) throw err;
    stopped = err.message === 'every process read has exited' ? 'every process read exited' : 'the target exited';
  } finally {
    const runs = samplers.map((x) => x.costs());
    dropped = samplers.reduce((n, x) => n + x.dropped(), 0);
    for (const x of samplers) x.close();
    for (const s of sessions) s.instant = undefined;
    const count = runs.reduce((n, c) => n + c.runCount, 0);
    const ns = runs.reduce((n, c) => n + c.runTimeNs, 0);
    costs = { captures: count, nsPerRun: count ? ns / count : null };
  }
  if (dropped > 0) warn(`xsample: ${dropped} capture${dropped === 1 ? ' was' : 's were'} dropped: the kernel's ring buffer was full (xsample fell behind the target)`);
  return { start, stopped, behind: dropped, slowest: 0, instant: costs };
}

/** How often the ring buffer is emptied and its captures walked. */
const DRAIN_MS = 50;

/**
 * Walks each capture the kernel wrote for a process since the last time, as one sample each. A capture of
 * the same words as one walked before (and the same values of the registers that walk asked for) has its
 * answer: the rest of what the walk read is memory that does not change (a hot loop's stack, sampled again
 * and again, is walked once).
 */
function takeCaptures(o: RecordOptions, rec: Recorded, sampler: InstantSampler, agg: Aggregate, tally: Tally, warn: Print): void {
  const s = sampler.session;
  if (s.gone) return;
  let walked = 0;
  const captures = sampler.drain();
  for (const c of captures) {
    let r: Titled;
    try {
      const w = sampler.walk(o, c, warn);
      r = w.result;
      if (w.walked) walked++;
    } catch (err) {
      if (!(err instanceof TargetGone) || rec.parts[0].sessions.length === 1) throw err;
      warn(`xsample: ${err.message}`);
      s.gone = true;
      return;
    }
    tally.add(r);
    if (!r.partial) agg.sample([{ view: s.view, r }]);
  }
  if (o.verbose && captures.length) warn(`xsample: ${s.view.name}: ${captures.length} captures, ${walked} walked, ${captures.length - walked} the same words as one walked before`);
}

/** Each first frame's share of the weight, heaviest first: "vm JIT 75.1%, vm C 24.9%". */
function splitText(split: { frame: string; weight: Int }[], total: Int): string {
  const shown = split.slice(0, 8).map((e) => `${e.frame} ${((Number(e.weight) / Number(total)) * 100).toFixed(1)}%`);
  return shown.join(', ') + (split.length > 8 ? `, and ${split.length - 8} more` : '');
}

/**
 * How each format names a weight of a kind (the schema's weighs:): the unit a frame's figure is in, pprof's
 * sample type (inuse_space in bytes, as Go's heap profiles; samples counted), speedscope's unit.
 */
/** How each format names a weight: the unit a frame's figure is in, pprof's sample type and unit, speedscope's unit. */
export interface StackUnits {
  unit: string;
  pprof: [string, string];
  speedscope: 'bytes' | 'none' | 'microseconds';
  what: string;
}

/** A view's weights (weighs:): bytes as Go's heap profiles (inuse_space), items, samples counted. */
const UNITS: Record<Weighs, StackUnits> = {
  bytes: { unit: 'bytes', pprof: ['inuse_space', 'bytes'], speedscope: 'bytes', what: 'bytes held, the mean over the samples' },
  items: { unit: 'items', pprof: ['inuse_objects', 'count'], speedscope: 'none', what: 'items held, the mean over the samples' },
  samples: { unit: 'samples', pprof: ['samples', 'count'], speedscope: 'none', what: 'samples, added up' },
};

/** Stacks as a flame graph's file: name is the recording's, of says what the weights are of (the SVG's title, pprof's comment). */
export function renderStacks(
  format: Exclude<Format, 'json'>,
  counts: StackCounts,
  name: string,
  of: string,
  units: StackUnits,
  when: { startMs: number; seconds: number; rateHz: number },
): string | Buffer {
  switch (format) {
    case 'folded':
      return toFolded(counts);
    case 'speedscope':
      return toSpeedscope(counts, name, `xsample ${xwalkVersion()}`, units.speedscope);
    case 'svg':
      return toFlameSvg(counts, `${name}, ${of}`, units.unit, counts.total());
    case 'pprof':
      return toPprof(counts, {
        type: units.pprof[0],
        unit: units.pprof[1],
        startMs: when.startMs,
        durationMs: when.seconds * 1000,
        periodMs: 1000 / when.rateHz,
        comment: `${name}: ${of}, written by xsample ${xwalkVersion()}`,
      });
  }
}

function render(format: Format, rec: Recorded, agg: Aggregate, meta: Record<string, unknown>): string | Buffer {
  const name = `${meta.view} (${meta.pack}, pid ${(meta.pids as (number | null)[]).join(', ')})`;
  const units = agg.weighs && UNITS[agg.weighs];
  const of = `${meta.samples} sample${meta.samples === 1 ? '' : 's'} at ${meta.rate_hz} Hz`;
  if (format !== 'json') {
    return renderStacks(format, agg.stacks, name, agg.stacks.gauge ? `the mean of ${of}` : of, units!, {
      startMs: meta.start_ms as number,
      seconds: meta.seconds as number,
      rateHz: meta.rate_hz as number,
    });
  }
  const { start_ms: _, ...rest } = meta;
  const summaryOf = (view: string) => agg.columns.get(view) ?? new ColumnSummary();
  const columns =
    rec.parts.length === 1
      ? { items: summaryOf(rec.parts[0].view.name).items, columns: summaryOf(rec.parts[0].view.name).summary() }
      : { parts: Object.fromEntries(rec.parts.map(({ view }) => [view.name, { items: summaryOf(view.name).items, columns: summaryOf(view.name).summary() }])) };
  // A gauge's stacks with their min, mean, max and last; a counter's with their sum.
  const stacks = !rec.stacks ? {} : { weighs: agg.weighs, unit: units!.unit, total_weight: agg.stacks.total(), stacks: agg.stacks.gauge ? agg.stacks.stats() : agg.stacks.entries() };
  return toJson({ ...rest, ...columns, ...stacks });
}
