/**
 * Sampling: open the processes (a master stands for its workers) or the
 * core, pick each one's layout, and take one sample of a session: a fresh
 * snapshot walked by the view, kept when it held still, retried when not.
 * The commands (outputs/show.ts, top, record, serve, trace) schedule the
 * samples and print them; Ctrl-C between them is interrupt.ts.
 */
import type { PackIR, TExpr, ViewIR } from '../../generators/ir.ts';
import { checkPointerExpr } from '../../generators/schema.ts';
import { lowerValue, lowerView } from '../../generators/lower/lower.ts';
import { coreClock } from './clock.ts';
import { type ClockReading, liveClock } from './clock-reading.ts';
import type { Int } from '../../core/exact.ts';
import type { Titled } from './result-shape.ts';
import { resultShape } from './result-shape.ts';
import { hex, type MemorySource, UserError } from '../memory/memory.ts';
import type { RegisterSource } from '../memory/live-registers.ts';
import { objectsKey, type Selected, selectPack } from './pack-select.ts';
import { type CompiledView, compileProgram, compileView } from '../../printers/js.ts';
import { Slabs } from '../memory/slabs.ts';
import { workersOf } from './processes.ts';
import { type Change, type ChunkRead, type Range, Snapshot } from '../memory/snapshot.ts';
import { openCore, openLive, type Target } from '../memory/target.ts';
import { runView, touchesOf, valuesTrue, type ViewError, type ViewResult, walkSample, withoutChanged } from './view-run.ts';
import { WalkRuntime } from './walk-runtime.ts';

/** How a command reads: which processes (or core), with which pack, how memory is read and checked, and the bounds of a sample. */
export interface ReadOptions {
  pids?: number[];
  core?: string;
  exe?: string;
  addr?: string;
  maxNodes: number;
  /** What one sample may read in all, in bytes. */
  maxBytes: number;
  pack?: string;
  source?: 'pvr' | 'procmem';
  verbose: boolean;
  /** verify: a live answer is complete only if the memory it came from held still while it was read. */
  consistency: 'verify' | 'off';
  /** How many more times a sample is taken when its memory changed under it. */
  retries: number;
  /** The views (or flame graphs) the command names: the pack is loaded with only those (schema-cache.ts, forView). */
  wants?: string[];
}

/** The plain command's: one view, printed as text or JSON, once or every interval. */
export interface SampleOptions extends ReadOptions {
  view: string;
  json: boolean;
  interval: number;
  /** How many samples of each process; Infinity: until Ctrl-C. */
  count: number;
}

export type Print = (s: string) => void;

/** What a sample at the instant reads instead of the process: the kernel's capture laid on live memory, and the registers it captured (an InstantSampler). */
export interface InstantSource {
  readonly memory: MemorySource;
  readonly registerSource: RegisterSource;
}

/** One process (or the core) and what reads it. */
export interface Session {
  target: Target;
  sel: Selected;
  view: ViewIR;
  addr?: TExpr;
  /** The view compiled for this process's layout, and the runtime it runs on (given each sample's snapshot). */
  compiled?: { R: WalkRuntime; view: CompiledView; addr?: () => Int };
  first: Titled | null;
  last: Titled | null;
  gone: boolean;
  /** What its snapshots copy memory into, kept from sample to sample. */
  slabs: Slabs;
  /** Its readable mappings as the last sample listed them (none yet, or to be listed again). */
  ranges?: Range[];
  /** The chunks its last sample read: the next reads them first, in one batched read (Snapshot.prefetch). */
  plan?: ChunkRead[];
  /** Whether it said that the registers its walks ask for cannot be had. */
  registersWarned?: boolean;
  /** Sampled at the instant: its samples read the kernel's capture laid on live memory, with its registers (bpf/instant-sampler.ts). */
  instant?: InstantSource;
}

/** Closes the processes (or the core) sessions read, each once: several views of one process share it. */
export function closeSessions(sessions: Session[]): void {
  for (const t of new Set(sessions.map((s) => s.target))) t.close();
}

/**
 * Opens the processes asked for (a master stands for its workers) or the
 * core, picks each one's pack and layout once, and makes a session for each
 * view viewsOf names in that pack (oneView: the one --struct names), in
 * that order for each process; the sessions of a process share its target.
 */
export async function openSessions(o: ReadOptions, warn: Print, viewsOf: (pack: PackIR) => ViewIR[]): Promise<Session[]> {
  const byBuild = new Map<string | null, Selected>();
  const select = async (t: Target): Promise<Selected> => {
    const mapped = (which: (path: string) => boolean) => t.symbols.objects(which);
    let sel = byBuild.get(t.buildId);
    // The same executable, but maybe other builds of its objects (one worker loads a module, another does not).
    if (!sel || sel.objects !== objectsKey(sel.pack, mapped)) {
      sel = await selectPack(t.exe, t.exeName, t.buildId, { pack: o.pack, onDerive: (m) => warn(`xsample: ${m}`), mapped, wants: o.wants });
      byBuild.set(t.buildId, sel);
    }
    return sel;
  };
  const sessions: Session[] = [];
  const add = async (t: Target, sel?: Selected) => {
    try {
      sel ??= await select(t);
      const mine = viewsOf(sel.pack).map((view) => ({ target: t, sel: sel!, view, addr: o.addr ? checkPointerExpr(sel!.pack, view.of, o.addr) : undefined, first: null, last: null, gone: false, slabs: new Slabs() }));
      sessions.push(...mine);
    } catch (err) {
      t.close();
      throw err;
    }
  };
  try {
    if (o.core) {
      await add(openCore(o.core, o.exe));
      return sessions;
    }
    const seen = new Set<number>();
    for (const pid of o.pids!) {
      const t = openLive(pid, o.source);
      let sel: Selected;
      let pids: number[];
      try {
        sel = await select(t);
        pids = workersOf(pid, sel.pack);
      } catch (err) {
        t.close();
        throw err;
      }
      if (pids.length === 1 && pids[0] === pid) {
        if (!seen.has(pid)) await add(t, sel);
        else t.close();
        seen.add(pid);
        continue;
      }
      t.close();
      if (o.verbose) warn(`xsample: pid ${pid} is ${sel.pack.name}'s master process: reading its workers ${pids.join(', ')}`);
      for (const w of pids.filter((p) => !seen.has(p))) {
        seen.add(w);
        await add(openLive(w, o.source));
      }
    }
    return sessions;
  } catch (err) {
    closeSessions(sessions);
    throw err;
  }
}

/** The sessions' views of a command that reads one: the view (or its alias) named, in each process's pack. */
export const oneView =
  (name: string) =>
  (pack: PackIR): ViewIR[] => [viewOf(pack, name)];

export function viewOf(pack: PackIR, name: string): ViewIR {
  const graph = pack.flamegraphs.get(name);
  if (graph) throw new UserError(`${name} is a flame graph of the views ${graph.views.join(', ')}: record it (xsample record --struct ${name}), or look at one of them`);
  const view = pack.views.get(name);
  if (!view) throw new UserError(`pack ${pack.name} has no view '${name}' (views: ${[...pack.views.keys()].join(', ')})`);
  return view;
}

/**
 * One sample of one process. A live answer is kept only when the memory it
 * was computed from held still while it was read (Snapshot.changed()):
 * otherwise the sample is taken again, up to --retries more times, and then
 * it is partial, "changed while it was read". The process must be the same
 * one before and after (not exited, not replaced by exec or pid reuse).
 */
export function sampleOnce(o: ReadOptions, s: Session, warn: Print): { result: Titled; clock: ClockReading | null; valuesTrue: boolean } {
  let tries = 0;
  const cpu0 = o.verbose ? process.cpuUsage() : null;
  for (;;) {
    tries++;
    const read = readOnce(o, s);
    // Once, after the read: the same process as at open then was the one read (a pid reused, an exec, would have changed it).
    s.target.checkIdentity();
    warnRegisters(s, read.R, warn);
    if (read.r.errors.length > 0 && !read.fresh) {
      // A walk that failed on mappings listed by an earlier sample is taken again on fresh ones, and not counted.
      s.ranges = undefined;
      tries--;
      continue;
    }
    const held = heldStill(o, s, read);
    if (cpu0) warn(readLine(s, read, held, process.cpuUsage(cpu0)));
    if (held.change && tries <= o.retries) continue;
    const answer = answerOf(s, read, held, tries);
    return { result: resultOf(o, s, answer, read.R.clock), clock: read.R.clock, valuesTrue: valuesTrue(answer, read.r, held.verify, read.R.askedRegisters()) };
  }
}

/** One read of a sample: the view walked once over a fresh snapshot, with the clock it asks for. */
interface OneRead {
  /** Whether the mappings it read through were listed for it (not kept from an earlier sample). */
  fresh: boolean;
  ranges: Range[];
  snap: Snapshot;
  R: WalkRuntime;
  compiled: CompiledView;
  r: ViewResult;
  /** What each read tag loaded (view-run.ts withoutChanged). */
  loads: Record<string, number>;
  ms: number;
}

/**
 * Walks the session's view once: over the mappings the last sample listed (/proc/PID/maps is read again
 * when a walk fails, so a mapping made or removed since costs a retry, never a wrong answer), through a
 * fresh snapshot on the session's slabs, with the view compiled once and the clock read when it asks.
 */
function readOnce(o: ReadOptions, s: Session): OneRead {
  const fresh = s.ranges === undefined;
  const ranges = (s.ranges ??= s.target.ranges());
  // The previous sample of this process is done with its snapshot: its slabs serve this one.
  s.slabs.reset();
  const snap = new Snapshot(s.instant?.memory ?? s.target.source, ranges, o.maxBytes, s.slabs);
  const { R, view: compiled, addr } = (s.compiled ??= compileSession(o, s, snap));
  R.reset(snap, null);
  if (s.instant) R.registers = s.instant.registerSource;
  const t0 = performance.now();
  const live = s.target.kind === 'live' && !s.instant;
  const { r, loads } = walkSample(compiled, addr, R, { plan: live ? s.plan : undefined, readClock: s.view.clock ? () => clockOf(s, R) : undefined, checked: live && o.consistency === 'verify' });
  if (live) s.plan = snap.plan();
  return { fresh, ranges, snap, R, compiled, r, loads, ms: performance.now() - t0 };
}

/** What now_ms() and monotonic_ms() read in this sample: the sampler's clocks live, the program's own in a core. */
function clockOf(s: Session, R: WalkRuntime): ClockReading {
  const { target, sel } = s;
  return target.kind === 'live' ? liveClock() : coreClock(sel.pack.name, sel.pack.clock, sel.layout, R);
}

/** Says once per session that the registers its walks ask for read as 0 (no perf registers here). */
function warnRegisters(s: Session, R: WalkRuntime, warn: Print): void {
  if (s.instant || !s.target.registers.unavailable || !R.askedRegisters() || s.registersWarned) return;
  s.registersWarned = true;
  warn(`xsample: ${s.view.name}: registers read as 0: ${s.target.registers.unavailable}`);
}

/** Whether a live read held still (--consistency verify): its words, its registers and, when a walk failed, the mappings. */
interface Held {
  verify: boolean;
  changed: Change | null;
  remapped: boolean;
  /** What changed while it was read, in words, or null. */
  change: string | null;
  ms: number;
}

function heldStill(o: ReadOptions, s: Session, read: OneRead): Held {
  const verify = s.target.kind === 'live' && o.consistency === 'verify';
  if (!verify) return { verify, changed: null, remapped: false, change: null, ms: 0 };
  const t1 = performance.now();
  const moved = read.R.registersMoved();
  const changed = read.snap.changed();
  // A fault may be a read of a mapping made since the sample listed them (a table the target moved).
  const remapped = read.r.errors.length > 0 && !sameRanges(read.ranges, s.target.ranges());
  const change = changeOf(changed, remapped) ?? (moved && `the registers it used (${moved})`);
  return { verify, changed, remapped, change, ms: performance.now() - t1 };
}

/** --verbose: what one read cost, and whether it held still. */
function readLine(s: Session, read: OneRead, held: Held, cpu: NodeJS.CpuUsage): string {
  const { R, snap } = read;
  const rss = (process.resourceUsage().maxRSS / 1024).toFixed(0);
  const checked = held.verify ? `; read again in ${held.ms.toFixed(1)} ms: ${held.change ? `changed while read (${held.change})` : 'held still'}` : '';
  return `xsample: ${s.view.name}: ${R.visited} elements, ${snap.stats.reads} read${snap.stats.reads === 1 ? '' : 's'}, ${snap.stats.pages} pages, ${(snap.stats.bytes / 1024).toFixed(0)} KiB in ${read.ms.toFixed(1)} ms${checked}, peak RSS ${rss} MiB, ${cpu.user + cpu.system} µs of CPU since the sample began (${cpu.system} in the kernel) (${s.target.source.description}; layout ${s.sel.layout.source})`;
}

/** The answer a read gives once no retry is left: without the items and values that read what changed, and saying so first. */
function answerOf(s: Session, read: OneRead, held: Held, tries: number): ViewResult {
  let r = read.r;
  // What read what changed is not shown, and its error says why first: it was read while it changed.
  if (held.changed || held.remapped) {
    const at = held.changed?.at;
    // Too many words changed to list: every row counts as having read them.
    const touches = at ? touchesOf(read.compiled, s.compiled!.addr, read.R, at, read.r.items.length) : undefined;
    r = withoutChanged(read.compiled, r, { tags: held.changed?.tags ?? 0, touches }, read.loads, read.snap.sharedBy, held.remapped);
  }
  // The root cause first: what a walk of memory that moved said (a torn read failing a check) follows from it.
  if (held.change) r = { ...r, partial: true, errors: [{ message: `changed while it was read, ${tries} time${tries === 1 ? '' : 's'} (the last time: ${held.change}): retry, or raise --retries` }, ...r.errors] };
  return r;
}

/** A sample's result: who was read (pid, pack, release, build), the clock it read, its rows and its problems. */
function resultOf(o: ReadOptions, s: Session, r: ViewResult, clock: ClockReading | null): Titled {
  const { target, sel, view } = s;
  return resultShape({
    view: view.name,
    pid: target.pid,
    pack: sel.pack.name,
    release: sel.release,
    build_id: target.buildId,
    consistency: target.kind === 'live' && o.consistency === 'off' ? 'off' : null,
    clock,
    items: r.items.map((row) => ({ pid: target.pid, ...row })),
    changed: r.changed,
    errors: r.errors,
  });
}

/** Compiles each session's view now, so that a schedule's first sample costs what the others do. */
export function compileSessions(o: ReadOptions, sessions: Session[]): void {
  for (const s of sessions) s.compiled ??= compileSession(o, s, new Snapshot(s.target.source, [], o.maxBytes, s.slabs));
}

/** The session's view lowered and compiled once for its layout; later samples only give it their snapshot. */
function compileSession(o: ReadOptions, s: Session, snap: Snapshot): NonNullable<Session['compiled']> {
  const R = new WalkRuntime(snap, s.target.symbols, { maxNodes: o.maxNodes, maxTotal: o.maxNodes * 10 });
  R.registers = s.target.registers;
  const view = compileView(lowerView(s.view), s.sel.layout, R);
  const addrOf = s.addr ? compileProgram(lowerValue(s.addr), s.sel.layout, R) : null;
  return { R, view, addr: addrOf ? () => addrOf(0) as Int : undefined };
}

/**
 * What changed under a sample, or null: the lines its answer came from, or,
 * when a walk failed, the mappings (a fault at an address mapped since the
 * snapshot listed them is a sign of change, not of corruption).
 */
function changeOf(c: Change | null, remapped: boolean): string | null {
  if (c) return `${c.words} of the words it used, the first at ${hex(c.addr)}${remapped ? ', and the mappings' : ''}`;
  return remapped ? 'the mappings' : null;
}

const sameRanges = (a: Range[], b: Range[]): boolean => a.length === b.length && a.every((r, i) => r.start === b[i].start && r.end === b[i].end);

/** A view's problem in one line: where (root, item, column), then what. */
export const describeError = (e: ViewError): string => {
  const where = [e.root && `root ${e.root}`, e.item, e.column].filter(Boolean).join(' ');
  return where ? `${where}: ${e.message}` : e.message;
};

/** How many samples were taken and were partial, and why (the first problem of each, by kind). */
export class Tally {
  samples = 0;
  partial = 0;
  errors = 0;
  firstError: ViewError | null = null;
  private readonly reasons = new Map<string, { text: string; n: number }>();
  /** xsample's CPU time when the first sample was counted: what the samples after it cost is measured from there. */
  private afterFirst: NodeJS.CpuUsage | null = null;
  /**
   * xsample's CPU time when the count of samples last reached a power of two, and the time before: the samples since
   * the earlier of the two that is not the last, at most the last half, are those of a sampler warmed up (V8
   * compiles what runs each sample over its first thousand or so).
   */
  private readonly doublings: { samples: number; cpu: NodeJS.CpuUsage }[] = [];

  add(r: Titled): void {
    this.samples++;
    this.afterFirst ??= process.cpuUsage();
    if (this.samples >= 2 && (this.samples & (this.samples - 1)) === 0) {
      this.doublings.splice(0, this.doublings.length - 1);
      this.doublings.push({ samples: this.samples, cpu: process.cpuUsage() });
    }
    if (!r.partial) return;
    this.partial++;
    this.errors += r.errors.length;
    const e = r.errors[0];
    this.firstError ??= e;
    // Problems of one kind at other addresses, or with other counts, are one reason.
    const key = `${e.root ?? ''} ${e.column ?? ''} ${e.message.replace(/0x[0-9a-f]+|\d+/g, '#')}`;
    const seen = this.reasons.get(key);
    if (seen) seen.n++;
    else this.reasons.set(key, { text: describeError(e), n: 1 });
  }

  /**
   * --verbose's last line: the CPU time xsample took for the samples after the first (the first also compiles the
   * view and makes the buffers), user and system, in all and a sample; null before a second sample.
   */
  cost(): string | null {
    if (this.afterFirst === null || this.samples < 2) return null;
    const d = process.cpuUsage(this.afterFirst);
    const n = this.samples - 1;
    return `xsample's own CPU for the ${n} sample${n === 1 ? '' : 's'} after the first: ${((d.user + d.system) / 1000).toFixed(0)} ms (${(d.system / 1000).toFixed(0)} in the kernel), ${((d.user + d.system) / n).toFixed(0)} µs a sample${this.lastHalf()}`;
  }

  /** The CPU a sample of the last samples since a doubling (at most the last half), once there are 4. */
  private lastHalf(): string {
    const from = this.doublings.filter((m) => m.samples < this.samples).at(-1);
    if (!from || this.samples < 4) return '';
    const d = process.cpuUsage(from.cpu);
    const n = this.samples - from.samples;
    return `; the last ${n}: ${((d.user + d.system) / n).toFixed(0)} µs a sample`;
  }

  /** A command's last words: with --verbose, its own CPU for the samples after the first (cost); then its exit code, 3 when a sample was partial. */
  finish(verbose: boolean, warn: Print): number {
    const cost = verbose ? this.cost() : null;
    if (cost) warn(`xsample: ${cost}`);
    return this.partial > 0 ? 3 : 0;
  }

  summary(processes: number, seconds: number): string {
    const head = `${this.samples} sample${this.samples === 1 ? '' : 's'}${processes > 1 ? ` of ${processes} processes` : ''} in ${seconds.toFixed(1)} s`;
    if (this.partial === 0) return `${head}, none partial`;
    const kinds = [...this.reasons.values()].sort((a, b) => b.n - a.n);
    const why = kinds.slice(0, 3).map((k) => `${k.text} (${k.n} sample${k.n === 1 ? '' : 's'})`);
    if (kinds.length > 3) why.push(`and ${kinds.length - 3} other kinds`);
    return `${head}, ${this.partial} partial: ${why.join('; ')}`;
  }
}
