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
import fs from 'node:fs';
import { xwalkVersion } from '../core/packs.ts';
import { UserError } from '../core/errors.ts';
import type { ViewIR } from '../generators/ir.ts';
import { ColumnSummary } from './column-summary.ts';
import type { Int } from './exact.ts';
import type { Titled } from './format-text.ts';
import { toJson } from './json-out.ts';
import { TargetGone } from './memory.ts';
import { Interrupt, openSessions, type Print, type SampleOptions, sampleOnce, type Session, Tally } from './sampling.ts';
import { toSpeedscope } from './speedscope.ts';
import { toFlameSvg } from './flame-svg.ts';
import { toPprof } from './pprof.ts';
import { MAX_STACKS, StackCounts, toFolded } from './stack-counts.ts';
import type { Row } from './view-run.ts';

export const FORMATS = ['folded', 'speedscope', 'svg', 'pprof', 'json'] as const;
export type Format = (typeof FORMATS)[number];

export interface RecordOptions extends SampleOptions {
  rate: number;
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

/** One item of a stack-shaped view as frames: the process, then each frame column's value (a list gives one frame each). */
function framesOf(view: ViewIR, row: Row, pid: number | null): string[] {
  const frames = pid === null ? [] : [`pid ${pid}`];
  for (const name of view.stack!.frames) {
    const cell = row[name];
    if (name === 'origin') frames.push(String(cell));
    else for (const v of Array.isArray(cell) ? cell : [cell]) frames.push(`${name} ${v === null || v === undefined ? '?' : String(v)}`);
  }
  return frames;
}

function weightOf(view: ViewIR, row: Row): Int {
  if (!view.stack!.weight) return 1;
  const w = row[view.stack!.weight];
  return typeof w === 'number' || typeof w === 'bigint' ? w : 0;
}

/** What the samples add up to so far. */
class Aggregate {
  readonly stacks = new StackCounts();
  readonly columns = new ColumnSummary();
  samples = 0;

  constructor(readonly view: ViewIR) {}

  add(r: Titled): void {
    this.samples++;
    for (const row of r.items) {
      if (this.view.stack) this.stacks.add(framesOf(this.view, row, r.pid), weightOf(this.view, row));
      this.columns.add(row);
    }
  }
}

export async function recordAll(o: RecordOptions, print: Print, warn: Print): Promise<number> {
  const sessions = await openSessions(o, warn);
  try {
    const view = sessions[0].view;
    const format = o.format ?? formatOfFile(o.out) ?? (view.stack ? 'folded' : 'json');
    if (format !== 'json' && !view.stack) throw new UserError(`view ${view.name} is a table, not stack-shaped (no stack: in the schema): record it as json`);
    if (format === 'pprof' && !o.out && process.stdout.isTTY) throw new UserError('a pprof profile is gzipped binary: write it to a file with -o FILE (or pipe it)');
    return await recordLoop(o, format, sessions, print, warn);
  } finally {
    for (const s of sessions) s.target.close();
  }
}

async function recordLoop(o: RecordOptions, format: Format, sessions: Session[], print: Print, warn: Print): Promise<number> {
  const view = sessions[0].view;
  const agg = new Aggregate(view);
  const tally = new Tally();
  const interrupt = new Interrupt();
  const period = 1000 / o.rate;
  const start = performance.now();
  const startWall = Date.now();
  const end = start + o.duration * 1000;
  const progress = process.stderr.isTTY ? new Progress() : null;
  let behind = 0;
  let slowest = 0;
  try {
    for (let i = 0; ; i++) {
      // Sample k is due at start + k * period; one that comes after the next is due was missed.
      let due = start + i * period;
      const now = performance.now();
      if (now > due + period) {
        const skip = Math.floor((now - due) / period);
        behind += skip;
        i += skip;
        due = start + i * period;
      }
      if (due >= end) break;
      await interrupt.sleep(Math.max(0, due - performance.now()));
      if (interrupt.stopped) break;
      const t0 = performance.now();
      for (const s of sessions.filter((x) => !x.gone)) {
        let result: Titled;
        try {
          ({ result } = sampleOnce(o, s, warn));
        } catch (err) {
          if (!(err instanceof TargetGone) || sessions.length === 1) throw err;
          warn(`xsample: ${err.message}`);
          s.gone = true;
          continue;
        }
        tally.add(result);
        if (!result.partial) agg.add(result);
      }
      slowest = Math.max(slowest, performance.now() - t0);
      if (sessions.every((s) => s.gone)) throw new TargetGone('every process read has exited');
      progress?.update(`${tally.samples} samples, ${tally.partial} partial${o.duration === Infinity ? ', Ctrl-C to stop' : ''}`);
    }
  } finally {
    interrupt.dispose();
    progress?.done();
  }
  const seconds = (performance.now() - start) / 1000;
  if (behind > 0) warn(`xsample: sampling fell behind the rate: ${behind} of the samples due at ${o.rate} Hz were not taken (the slowest took ${slowest.toFixed(1)} ms; the period is ${period.toFixed(1)} ms)`);
  if (agg.stacks.overflowed > 0) warn(`xsample: more than ${MAX_STACKS} distinct stacks: ${agg.stacks.overflowed} more are under "(other stacks)"`);
  const meta = { start_ms: startWall, view: view.name, pack: sessions[0].sel.pack.name, pids: sessions.map((s) => s.target.pid), rate_hz: o.rate, seconds: Number(seconds.toFixed(3)), samples: tally.samples, partial: tally.partial, missed: behind };
  const text = render(format, agg, meta);
  if (o.out) {
    fs.writeFileSync(o.out, typeof text === 'string' ? text + '\n' : text);
    warn(`xsample: wrote ${o.out} (${format}): ${tally.summary(sessions.length, seconds)}${tally.partial ? ' (partial samples are left out)' : ''}`);
  } else if (typeof text !== 'string') {
    process.stdout.write(text);
    warn(`xsample: ${tally.summary(sessions.length, seconds)}${tally.partial ? ' (partial samples are left out)' : ''}`);
  } else {
    print(text);
    warn(`xsample: ${tally.summary(sessions.length, seconds)}${tally.partial ? ' (partial samples are left out)' : ''}`);
  }
  return tally.partial > 0 ? 3 : 0;
}

function render(format: Format, agg: Aggregate, meta: Record<string, unknown>): string | Buffer {
  const name = `${meta.view} (${meta.pack}, pid ${(meta.pids as (number | null)[]).join(', ')})`;
  switch (format) {
    case 'folded':
      return toFolded(agg.stacks);
    case 'speedscope':
      return toSpeedscope(agg.stacks, name, `xsample ${xwalkVersion()}`);
    case 'svg':
      // A weight column names what is weighed (bytes); without one, an item weighs 1 in each sample that saw it.
      return toFlameSvg(agg.stacks, `${name}, ${meta.samples} samples at ${meta.rate_hz} Hz`, agg.view.stack!.weight ?? 'samples', agg.stacks.total());
    case 'pprof': {
      const weight = agg.view.stack!.weight;
      return toPprof(agg.stacks, {
        type: weight ?? 'samples',
        unit: weight && /(^|_)bytes$/.test(weight) ? 'bytes' : 'count',
        startMs: meta.start_ms as number,
        durationMs: (meta.seconds as number) * 1000,
        periodMs: 1000 / (meta.rate_hz as number),
        comment: `${name}: ${meta.samples} samples at ${meta.rate_hz} Hz, written by xsample ${xwalkVersion()}`,
      });
    }
    case 'json': {
      const { start_ms: _, ...rest } = meta;
      return toJson({ ...rest, items: agg.columns.items, columns: agg.columns.summary(), ...(agg.view.stack ? { total_weight: agg.stacks.total() } : {}) });
    }
  }
}

/** One line of progress on a terminal, rewritten in place at most every half second. */
class Progress {
  private last = 0;
  private shown = false;

  update(text: string): void {
    const now = performance.now();
    if (now - this.last < 500) return;
    this.last = now;
    this.shown = true;
    process.stderr.write(`\r\x1b[Kxsample: ${text}`);
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}
