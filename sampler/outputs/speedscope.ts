/**
 * A recording as a speedscope file (https://www.speedscope.app/file-format-schema.json):
 * one sampled profile whose samples are the distinct paths of frames and
 * whose weights are their weights (summed, or averaged for bytes held).
 */
import type { StackCounts } from './stack-counts.ts';

/** unit: speedscope's name of what a weight is (bytes, microseconds, or none for counts and samples). */
export function toSpeedscope(counts: StackCounts, name: string, exporter: string, unit: 'bytes' | 'none' | 'microseconds'): string {
  const index = new Map<string, number>();
  const frames: { name: string }[] = [];
  const idOf = (f: string): number => {
    let i = index.get(f);
    if (i === undefined) {
      index.set(f, (i = frames.length));
      frames.push({ name: f });
    }
    return i;
  };
  const entries = counts.entries();
  const samples = entries.map((e) => e.frames.map(idOf));
  // speedscope's weights are JSON numbers: exact up to 2^53, which bytes and sample counts stay below.
  const weights = entries.map((e) => Number(e.weight));
  const total = weights.reduce((a, b) => a + b, 0);
  return JSON.stringify({
    $schema: 'https://www.speedscope.app/file-format-schema.json',
    shared: { frames },
    profiles: [{ type: 'sampled', name, unit, startValue: 0, endValue: total, samples, weights }],
    name,
    activeProfileIndex: 0,
    exporter,
  });
}
