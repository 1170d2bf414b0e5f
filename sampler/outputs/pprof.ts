/**
 * A recording's stacks as a pprof profile (profile.proto, gzipped), what
 * `go tool pprof` and Pyroscope read: one sample type, as the view's weight
 * is (inuse_space in bytes for bytes held, averaged over the samples, as Go's
 * heap profiles; samples counted for time), one function and one location
 * per distinct frame, and one sample per distinct path (locations leaf
 * first) with its weight. Encoded by pprof-format, Datadog's implementation
 * of profile.proto.
 */
import { createRequire } from 'node:module';
import { Function as PFunction, Line, Location, Profile, Sample, StringTable, ValueType } from 'pprof-format';
import type { StackCounts } from './stack-counts.ts';

/** node:zlib, loaded by the first profile written: an import at the top of the bundle would cost every command its start-up. */
const zlib = (): typeof import('node:zlib') => createRequire(import.meta.url)('node:zlib') as typeof import('node:zlib');

export interface PprofMeta {
  /** What a sample's value is (inuse_space, samples) and in what unit (bytes, count). */
  type: string;
  unit: string;
  startMs: number;
  durationMs: number;
  /** The sampling period, in ms (1000 / rate). */
  periodMs: number;
  comment: string;
}

export function toPprof(counts: StackCounts, meta: PprofMeta): Buffer {
  const strings = new StringTable();
  const locations = new Map<string, number>();
  const functions: PFunction[] = [];
  const locs: Location[] = [];
  const locationOf = (frame: string): number => {
    let id = locations.get(frame);
    if (id === undefined) {
      id = locs.length + 1;
      locations.set(frame, id);
      functions.push(new PFunction({ id, name: strings.dedup(frame), systemName: strings.dedup(frame) }));
      locs.push(new Location({ id, line: [new Line({ functionId: id })] }));
    }
    return id;
  };
  const samples = counts.entries().map((e) => new Sample({ locationId: [...e.frames].reverse().map(locationOf), value: [e.weight] }));
  const type = new ValueType({ type: strings.dedup(meta.type), unit: strings.dedup(meta.unit) });
  const profile = new Profile({
    sampleType: [type],
    sample: samples,
    location: locs,
    function: functions,
    stringTable: strings,
    timeNanos: BigInt(Math.round(meta.startMs)) * 1_000_000n,
    durationNanos: BigInt(Math.round(meta.durationMs)) * 1_000_000n,
    periodType: new ValueType({ type: strings.dedup('wall'), unit: strings.dedup('nanoseconds') }),
    period: BigInt(Math.round(meta.periodMs * 1_000_000)),
    comment: [strings.dedup(meta.comment)],
  });
  return zlib().gzipSync(profile.encode());
}
