/**
 * Sampling: open the processes (a master stands for its workers) or the
 * core, pick each one's layout, then take one sample or many (every
 * --interval, --count times or until Ctrl-C). A sample of one process is a
 * fresh snapshot walked by the view; results are printed as they come, and
 * a run of many ends with how the figures moved and a summary on stderr.
 * The exit status is the worst over every sample.
 */
import type { PackIR, TExpr, ViewIR } from '../generators/ir.ts';
import { checkPointerExpr } from '../generators/schema.ts';
import { lowerValue, lowerView } from '../generators/lower/lower.ts';
import { type ClockReading, coreClock, liveClock } from './clock.ts';
import type { Int } from './exact.ts';
import { formatMoves, formatText, type Titled } from './format-text.ts';
import { hex, TargetGone, UserError } from './memory.ts';
import { objectsKey, type Selected, selectPack } from './pack-select.ts';
import { type CompiledView, compileProgram, compileView } from '../printers/js.ts';
import { Slabs } from './slabs.ts';
import { workersOf } from './processes.ts';
import { toJson } from './json-out.ts';
import { type Change, type Range, Snapshot } from './snapshot.ts';
import { openCore, openLive, type Target } from './target.ts';
import { runView, type ViewError, withoutChanged } from './view-run.ts';
import { WalkRuntime } from './walk-runtime.ts';
import type { InstantSampler } from './bpf/instant-sampler.ts';

export interface SampleOptions {
  pids?: number[];
  core?: string;
  exe?: string;
  view: string;
  addr?: string;
  json: boolean;
  interval: number;
  /** How many samples of each process; Infinity: until Ctrl-C. */
  count: number;
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
}

export type Print = (s: string) => void;

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
  /** Whether it said that the registers its walks ask for cannot be had. */
  registersWarned?: boolean;
  /** Sampled at the instant: its samples read the kernel's capture laid on live memory, with its registers. */
  instant?: InstantSampler;
}

export async function sampleAll(o: SampleOptions, print: Print, warn: Print): Promise<number> {
  const sessions = await openSessions(o, warn);
  try {
    return await sampleLoop(o, sessions, print, warn);
  } finally {
    closeSessions(sessions);
  }
}

/** Closes the processes (or the core) sessions read, each once: several views of one process share it. */
export function closeSessions(sessions: Session[]): void {
  for (const t of new Set(sessions.map((s) => s.target))) t.close();
}

/**
 * Opens the processes asked for (a master stands for its workers) or the
 * core, picks each one's pack and layout once, and makes a session for each
 * view viewsOf names in that pack (by default the one --struct names), in
 * that order for each process; the sessions of a process share its target.
 */
export async function openSessions(o: SampleOptions, warn: Print, viewsOf: (pack: PackIR) => ViewIR[] = (pack) => [viewOf(pack, o.view)]): Promise<Session[]> {
  const byBuild = new Map<string | null, Selected>();
  const select = async (t: Target): Promise<Selected> => {
    const mapped = (which: (path: string) => boolean) => t.symbols.objects(which);
    let sel = byBuild.get(t.buildId);
    // The same executable, but maybe other builds of its objects (one worker loads a module, another does not).
    if (!sel || sel.objects !== objectsKey(sel.pack, mapped)) {
      sel = await selectPack(t.exe, t.exeName, t.buildId, { pack: o.pack, onDerive: (m) => warn(`xsample: ${m}`), mapped });
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

export function viewOf(pack: PackIR, name: string): ViewIR {
  const graph = pack.flamegraphs.get(name);
  if (graph) throw new UserError(`${name} is a flame graph of the views ${graph.views.join(', ')}: record it (xsample record --struct ${name}), or look at one of them`);
  const view = pack.views.get(name);
  if (!view) throw new UserError(`pack ${pack.name} has no view '${name}' (views: ${[...pack.views.keys()].join(', ')})`);
  return view;
}

/** Ctrl-C between samples: stop, keep what was gathered. A second Ctrl-C leaves at once. */
export class Interrupt {
  stopped = false;
  private wake: (() => void) | null = null;
  private readonly onSigint = () => {
    if (this.stopped) process.exit(130);
    this.stopped = true;
    this.wake?.();
  };

  constructor() {
    process.on('SIGINT', this.onSigint);
  }

  /** Waits ms, or less when interrupted. */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  dispose(): void {
    process.off('SIGINT', this.onSigint);
  }
}

async function sampleLoop(o: SampleOptions, sessions: Session[], print: Print, warn: Print): Promise<number> {
  const many = o.count > 1;
  const interrupt = many ? new Interrupt() : null;
  const tally = new Tally();
  const start = Date.now();
  if (o.count === Infinity && process.stderr.isTTY) warn(`xsample: sampling every ${o.interval} ms; Ctrl-C to stop`);
  try {
    for (let i = 0; i < o.count; i++) {
      if (i > 0) await interrupt!.sleep(o.interval);
      if (interrupt?.stopped) break;
      for (const s of sessions.filter((x) => !x.gone)) {
        let result: Titled;
        let clock: ClockReading | null;
        try {
          ({ result, clock } = sampleOnce(o, s, warn));
        } catch (err) {
          // One of several processes exiting (a worker replaced on reload) ends its part only.
          if (!(err instanceof TargetGone) || sessions.length === 1) throw err;
          warn(`xsample: ${err.message}`);
          s.gone = true;
          continue;
        }
        const t = Date.now() - start;
        if (o.json) print(toJson(many ? { ...result, sample: i, t_ms: t } : result));
        else print((many ? `-- sample ${i + 1}${o.count === Infinity ? '' : `/${o.count}`} at ${(t / 1000).toFixed(1)} s\n` : '') + formatText(result, clock));
        s.first ??= result;
        s.last = result;
        tally.add(result);
      }
      if (sessions.every((s) => s.gone)) throw new TargetGone('every process read has exited');
    }
  } finally {
    interrupt?.dispose();
  }
  const seconds = (Date.now() - start) / 1000;
  if (many && !o.json) {
    for (const s of sessions.filter((x) => x.first)) print((sessions.length > 1 ? `pid ${s.target.pid} ` : '') + formatMoves(s.first!.items, s.last!.items, seconds));
  }
  if (many) warn(`xsample: ${tally.summary(sessions.length, seconds)}`);
  else if (tally.partial > 0) warn(`xsample: partial result: ${describe(tally.firstError!)}${tally.errors > 1 ? ` (and ${tally.errors - 1} more)` : ''}`);
  return tally.partial > 0 ? 3 : 0;
}

/**
 * One sample of one process. A live answer is kept only when the memory it
 * was computed from held still while it was read (Snapshot.changed()):
 * otherwise the sample is taken again, up to --retries more times, and then
 * it is partial, "changed while it was read". The process must be the same
 * one before and after (not exited, not replaced by exec or pid reuse).
 */
export function sampleOnce(o: SampleOptions, s: Session, warn: Print): { result: Titled; clock: ClockReading | null } {
  const { target, sel, view } = s;
  const verify = target.kind === 'live' && o.consistency === 'verify';
  let tries = 0;
  for (;;) {
    tries++;
    target.checkIdentity();
    // The mappings the last sample listed serve the next one: /proc/PID/maps is read again when a walk
    // fails (below), so a mapping made or removed since costs a retry, never a wrong answer.
    const fresh = s.ranges === undefined;
    const ranges = (s.ranges ??= target.ranges());
    // The previous sample of this process is done with its snapshot: its slabs serve this one.
    s.slabs.reset();
    const snap = new Snapshot(s.instant?.memory ?? target.source, ranges, o.maxBytes, s.slabs);
    const { R, view: compiled, addr } = (s.compiled ??= compileSession(o, s, snap));
    R.reset(snap, null);
    if (s.instant) R.registers = s.instant.registerSource;
    if (view.clock) R.clock = target.kind === 'live' ? liveClock() : coreClock(sel.pack.name, sel.pack.clock, sel.layout, R);
    const t0 = performance.now();
    const loads: Record<string, number> = {};
    let r = runView(compiled, addr, snap, loads);
    const ms = performance.now() - t0;
    target.checkIdentity();
    if (!s.instant && target.registers.unavailable && R.askedRegisters() && !s.registersWarned) {
      s.registersWarned = true;
      warn(`xsample: ${view.name}: registers read as 0: ${target.registers.unavailable}`);
    }
    if (r.errors.length > 0 && !fresh) {
      s.ranges = undefined;
      tries--;
      continue;
    }
    const t1 = performance.now();
    const moved = verify ? R.registersMoved() : null;
    const changed = verify ? snap.changed() : null;
    // A fault may be a read of a mapping made since the sample listed them (a table the target moved).
    const remapped = verify && r.errors.length > 0 && !sameRanges(ranges, target.ranges());
    const change = verify ? (changeOf(changed, remapped) ?? (moved && `the registers it used (${moved})`)) : null;
    if (o.verbose) {
      const rss = (process.resourceUsage().maxRSS / 1024).toFixed(0);
      const checked = verify ? `; read again in ${(performance.now() - t1).toFixed(1)} ms: ${change ? `changed while read (${change})` : 'held still'}` : '';
      warn(`xsample: ${view.name}: ${R.visited} elements, ${snap.stats.reads} reads, ${snap.stats.pages} pages, ${(snap.stats.bytes / 1024).toFixed(0)} KiB in ${ms.toFixed(1)} ms${checked}, peak RSS ${rss} MiB (${target.source.description}; layout ${sel.layout.source})`);
    }
    if (change && tries <= o.retries) continue;
    // A column that read what changed is not shown, and its error says why first: it was read while it changed.
    if (changed || remapped) r = withoutChanged(compiled, r, changed?.tags ?? 0, loads, snap.sharedBy, remapped);
    // The root cause first: what a walk of memory that moved said (a torn read failing a check) follows from it.
    if (change) r.errors.unshift({ message: `changed while it was read, ${tries} time${tries === 1 ? '' : 's'} (the last time: ${change}): retry, or raise --retries` });
    const clock = R.clock;
    const result: Titled = {
      view: view.name,
      pid: target.pid,
      pack: sel.pack.name,
      release: sel.release,
      build_id: target.buildId,
      ...(target.kind === 'live' && o.consistency === 'off' ? { consistency: 'off' as const } : {}),
      ...(clock ? { clock: { source: clock.source, now_ms: clock.now_ms, monotonic_ms: clock.monotonic_ms } } : {}),
      items: r.items.map((row) => ({ pid: target.pid, ...row })),
      partial: r.errors.length > 0,
      errors: r.errors,
    };
    return { result, clock };
  }
}

/** Compiles each session's view now, so that a schedule's first sample costs what the others do. */
export function compileSessions(o: SampleOptions, sessions: Session[]): void {
  for (const s of sessions) s.compiled ??= compileSession(o, s, new Snapshot(s.target.source, [], o.maxBytes, s.slabs));
}

/** The session's view lowered and compiled once for its layout; later samples only give it their snapshot. */
function compileSession(o: SampleOptions, s: Session, snap: Snapshot): NonNullable<Session['compiled']> {
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

const describe = (e: ViewError): string => {
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

  add(r: Titled): void {
    this.samples++;
    if (!r.partial) return;
    this.partial++;
    this.errors += r.errors.length;
    const e = r.errors[0];
    this.firstError ??= e;
    // Problems of one kind at other addresses, or with other counts, are one reason.
    const key = `${e.root ?? ''} ${e.column ?? ''} ${e.message.replace(/0x[0-9a-f]+|\d+/g, '#')}`;
    const seen = this.reasons.get(key);
    if (seen) seen.n++;
    else this.reasons.set(key, { text: describe(e), n: 1 });
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
