/**
 * The sample's clock: what now_ms() and monotonic_ms() read. A live process
 * is read now, so they are the sampler's own clocks (CLOCK_REALTIME and
 * CLOCK_MONOTONIC), read once per sample. A core was dumped at some moment
 * it does not record: there they are the program's own idea of the time,
 * from the expressions of the schema's clock: section (nginx's cached
 * time), and results say so.
 */
import type { ClockIR, ClockName } from '../generators/ir.ts';
import { lowerValue } from '../generators/lower/lower.ts';
import type { BoundLayout } from './bound-layout.ts';
import { compileProgram } from '../printers/js.ts';
import { Fault } from './snapshot.ts';
import { WalkError } from './walk-error.ts';
import type { WalkRuntime } from './walk-runtime.ts';

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

/** The program's clock in a core, read through the same snapshot the view reads (R's). */
export function coreClock(packName: string, clock: ClockIR | null, layout: BoundLayout, R: WalkRuntime): ClockReading {
  const r: ClockReading = { source: 'core', now_ms: null, monotonic_ms: null, why: {} };
  if (!clock) {
    r.why = { now_ms: noClock(packName, 'now_ms'), monotonic_ms: noClock(packName, 'monotonic_ms') };
    return r;
  }
  r.doc = clock.doc;
  for (const name of ['now_ms', 'monotonic_ms'] as const) {
    const e = clock.exprs[name];
    if (!e) {
      r.why[name] = noClock(packName, name);
      continue;
    }
    try {
      r[name] = compileProgram(lowerValue(e), layout, R)(0);
    } catch (err) {
      if (!(err instanceof Fault || err instanceof WalkError)) throw err;
      r.why[name] = `${name}() on a core is ${clock.doc}, which could not be read: ${err.message}`;
    }
  }
  return r;
}

function noClock(packName: string, name: ClockName): string {
  return `${name}(): a core keeps no clock, and pack ${packName} does not say where the program keeps its time (clock: in its schema)`;
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
