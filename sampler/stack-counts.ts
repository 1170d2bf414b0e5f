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

  add(frames: string[], weight: Int): void {
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

  /** Every path and its weight, heaviest first (then by frames, so the output is stable). */
  entries(): { frames: string[]; weight: Int }[] {
    return [...this.weights.values()].sort((a, b) => (a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : a.frames.join(';') < b.frames.join(';') ? -1 : 1));
  }

  total(): Int {
    let t: Int = 0;
    for (const e of this.weights.values()) t = add(t, e.weight);
    return t;
  }
}

/** The collapsed ("folded") format every flame graph tool reads: frame;frame;frame weight, one path a line. */
export function toFolded(counts: StackCounts): string {
  const frame = (f: string) => f.replace(/;/g, '\\x3b');
  return counts
    .entries()
    .map((e) => `${e.frames.map(frame).join(';')} ${e.weight}`)
    .join('\n');
}
