/**
 * What a recording of a stack-shaped view adds up: each distinct path of
 * frames (outermost first) and its weight over the samples, as the view's
 * weight says (ViewIR stack.weighs):
 *
 * - a counter (samples of time) adds: a path's weight is the sum of the
 *   weights it was seen with;
 * - a gauge (bytes or items held) is averaged: a path's weight is its mean
 *   over the samples of its process (a sample that did not see it counts
 *   0), and each path keeps its min, max and last.
 *
 * A sample of one process is given whole (sample()): the items of one
 * sample that share a path add up within it (two pools of one request).
 * Bounded: past MAX_STACKS distinct paths, further new ones are added
 * under one "(other stacks)" frame, and overflowed says how many.
 */
import { add, type Int } from '../../core/exact.ts';
import { foldedPath, foldedText, heaviestFirst } from './folded.ts';

export const MAX_STACKS = 100_000;
export const OTHER_STACKS = '(other stacks)';

interface Path {
  frames: string[];
  /** The process whose samples it is averaged over. */
  proc: string;
  sum: Int;
  /** Gauge only: the least and most it weighed in a sample that saw it, how many saw it, and the last one's index. */
  min: Int;
  max: Int;
  seen: number;
  lastSample: number;
  last: Int;
}

/** A gauge path's figures over its process's samples: the JSON of a recording gives them per stack. */
export interface GaugeStats {
  frames: string[];
  min: Int;
  mean: number;
  max: Int;
  last: Int;
}

export class StackCounts {
  private readonly paths = new Map<string, Path>();
  /** Gauge: how many samples of each process were given. */
  private readonly samples = new Map<string, number>();
  /** Distinct paths that did not fit (their weight is under OTHER_STACKS). */
  overflowed = 0;

  /** gauge: averaged over samples (bytes held); else a counter (samples add). */
  constructor(readonly gauge = false) {}

  /**
   * One complete sample of one process (proc names it): its items' paths and weights. A path of weight 0
   * adds nothing to a counter, and is left out (as flame graph tools leave it out).
   */
  sample(proc: string, items: Iterable<{ frames: string[]; weight: Int }>): void {
    const index = (this.samples.get(proc) ?? 0) + 1;
    this.samples.set(proc, index);
    const mine = new Map<string, { frames: string[]; weight: Int }>();
    for (const item of items) {
      let { frames } = item;
      const { weight } = item;
      if (weight === 0 || weight === 0n) continue;
      let key = frames.join('\0');
      if (!this.paths.has(key) && !mine.has(key) && this.paths.size + mine.size >= MAX_STACKS) {
        this.overflowed++;
        key = `${OTHER_STACKS}\0${proc}`;
        frames = [OTHER_STACKS];
      }
      const seen = mine.get(key);
      if (seen) seen.weight = add(seen.weight, weight);
      else mine.set(key, { frames, weight });
    }
    for (const [key, { frames, weight }] of mine) {
      const p = this.paths.get(key);
      if (!p) {
        this.paths.set(key, { frames, proc, sum: weight, min: weight, max: weight, seen: 1, lastSample: index, last: weight });
        continue;
      }
      p.sum = add(p.sum, weight);
      if (weight < p.min) p.min = weight;
      if (weight > p.max) p.max = weight;
      p.seen++;
      p.lastSample = index;
      p.last = weight;
    }
  }

  /** A path's weight: its sum (counter), or its mean over its process's samples, to the nearest whole (gauge). */
  private weightOf(p: Path): Int {
    if (!this.gauge) return p.sum;
    const n = this.samples.get(p.proc)!;
    if (typeof p.sum === 'number') return Math.round(p.sum / n);
    return (p.sum * 2n + BigInt(n)) / (2n * BigInt(n));
  }

  /** Every path and its weight, heaviest first, then by its folded text (as the Python runtime's folded_lines orders them). */
  entries(): { frames: string[]; weight: Int }[] {
    const all = [...this.paths.values()].map((p) => ({ frames: p.frames, weight: this.weightOf(p), text: foldedPath(p.frames) }));
    all.sort(heaviestFirst);
    return all.map(({ frames, weight }) => ({ frames, weight }));
  }

  /** Gauge: each path's min, mean, max and last over its process's samples (a sample that did not see it weighs 0), heaviest first. */
  stats(): GaugeStats[] {
    return [...this.paths.values()]
      .map((p) => {
        const n = this.samples.get(p.proc)!;
        return { frames: p.frames, min: p.seen < n ? 0 : p.min, mean: Number((Number(p.sum) / n).toFixed(3)), max: p.max, last: p.lastSample === n ? p.last : 0 };
      })
      .sort((a, b) => b.mean - a.mean || (foldedPath(a.frames) < foldedPath(b.frames) ? -1 : 1));
  }

  /** The weight under each frame at depth `at` of the paths (at 1: the one below the process's), heaviest first. */
  splitAt(at: number): { frame: string; weight: Int }[] {
    const by = new Map<string, Int>();
    for (const e of this.entries()) if (e.frames.length > at) by.set(e.frames[at], add(by.get(e.frames[at]) ?? 0, e.weight));
    return [...by].map(([frame, weight]) => ({ frame, weight })).sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : a.frame < b.frame ? -1 : 1));
  }

  total(): Int {
    let t: Int = 0;
    for (const e of this.entries()) t = add(t, e.weight);
    return t;
  }
}

/** The collapsed ("folded") format every flame graph tool reads (sampler/outputs/folded.ts). */
export const toFolded = (counts: StackCounts): string => foldedText(counts.entries());
