/**
 * The sample's clock: what now_ms() and monotonic_ms() read. A live process
 * is read now, so they are the sampler's own clocks (CLOCK_REALTIME and
 * CLOCK_MONOTONIC), read once per sample. A core was dumped at some moment
 * it does not record: there they are the program's own idea of the time,
 * from the expressions of the schema's clock: section (nginx's cached
 * time), and results say so.
 */
import type { ClockIR, ClockName } from '../../generators/ir.ts';
import type { ClockReading } from './clock-reading.ts';
import { lowerValue } from '../../generators/lower/lower.ts';
import type { BoundLayout } from './bound-layout.ts';
import { compileProgram } from '../../printers/js.ts';
import { Fault } from '../memory/snapshot.ts';
import { WalkError } from '../memory/walk-error.ts';
import type { WalkRuntime } from './walk-runtime.ts';


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
