/**
 * What a recording of a stack-shaped view adds up: each distinct path of
 * frames (outermost first) and the sum of the weights it was seen with.
 * Bounded: past MAX_STACKS distinct paths, further new ones are added
 * under one "(other stacks)" frame, and overflowed says how many.
 */
import { add, type Int } from './exact.ts';

export const MAX_STACKS = 100_000;
export const OTHER_STACKS = '(other stacks)';

export class StackCounts {
  private readonly weights = new Map<string, { frames: string[]; weight: Int }>();
  /** Distinct paths that did not fit (their weight is under OTHER_STACKS). */
  overflowed = 0;

  /** A path of weight 0 adds nothing, and is left out (as flame graph tools leave it out). */
  add(frames: string[], weight: Int): void {
    if (weight === 0 || weight === 0n) return;
    let key = frames.join('\0');
    let seen = this.weights.get(key);
    if (!seen && this.weights.size >= MAX_STACKS) {
      this.overflowed++;
      key = OTHER_STACKS;
      seen = this.weights.get(key);
      if (!seen) this.weights.set(key, (seen = { frames: [OTHER_STACKS], weight: 0 }));
    }
    if (seen) seen.weight = add(seen.weight, weight);
    else this.weights.set(key, { frames, weight });
  }

  /** Every path and its weight, heaviest first, then by its folded text (as the Python runtime's folded_lines orders them). */
  entries(): { frames: string[]; weight: Int }[] {
    const text = new Map([...this.weights.values()].map((e) => [e, foldedPath(e.frames)]));
    return [...this.weights.values()].sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : text.get(a)! < text.get(b)! ? -1 : 1));
  }

  /** The weight under each frame at depth `at` of the paths (at 1: the one below the process's), heaviest first. */
  splitAt(at: number): { frame: string; weight: Int }[] {
    const by = new Map<string, Int>();
    for (const e of this.weights.values()) if (e.frames.length > at) by.set(e.frames[at], add(by.get(e.frames[at]) ?? 0, e.weight));
    return [...by].map(([frame, weight]) => ({ frame, weight })).sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : a.frame < b.frame ? -1 : 1));
  }

  total(): Int {
    let t: Int = 0;
    for (const e of this.weights.values()) t = add(t, e.weight);
    return t;
  }
}

/** A path as folded text: its frames joined by ';', a ';' inside a frame written \x3b. */
const foldedPath = (frames: string[]): string => frames.map((f) => f.replace(/;/g, '\\x3b')).join(';');

/** The collapsed ("folded") format every flame graph tool reads: frame;frame;frame weight, one path a line. */
export function toFolded(counts: StackCounts): string {
  return counts
    .entries()
    .map((e) => `${foldedPath(e.frames)} ${e.weight}`)
    .join('\n');
}
