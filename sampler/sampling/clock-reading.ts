/**
 * What a sample's clock read: now_ms() and monotonic_ms() of a live process
 * (the sampler's own clocks), or of a core (the program's own time, read by
 * clock.ts coreClock). The walk runtime reads it; nothing here compiles.
 */
import type { ClockName } from '../../generators/ir.ts';
import { WalkError } from '../memory/walk-error.ts';

export interface ClockReading {
  source: 'live' | 'core';
  now_ms: number | bigint | null;
  monotonic_ms: number | bigint | null;
  /** On a core: what the program's time is (the schema's clock doc). */
  doc?: string;
  /** Why a clock has no value (null above). */
  why: Partial<Record<ClockName, string>>;
}

export function liveClock(): ClockReading {
  return { source: 'live', now_ms: Date.now(), monotonic_ms: Number(process.hrtime.bigint() / 1_000_000n), why: {} };
}

/** The value a clock builtin reads, or the walk error that says why there is none. */
export function clockValue(clock: ClockReading | null, name: ClockName): number | bigint {
  const v = clock?.[name];
  if (v === null || v === undefined) throw new WalkError('unavailable', clock?.why[name] ?? `${name}(): internal: no clock was read for this sample`);
  return v;
}

/** A time for people: UTC to the millisecond, or the number when it is no plausible time. The Python runtime prints the same. */
export function formatTime(ms: number | bigint | null): string {
  if (ms === null) return 'unreadable';
  if (!(ms >= 0 && ms < 253402300800000)) return `${ms} ms`;
  return new Date(Number(ms)).toISOString().replace('T', ' ').replace('Z', ' UTC');
}
