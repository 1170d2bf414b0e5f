/**
 * What the eBPF printer refuses, asked of a schema as it is loaded (generators/kernel-refusals.ts):
 * each probe key and value, and each instant: expression, printed alone against a layout of
 * shapes only, so the answer is the schema's, not one build's.
 */
import type { KernelRefusals } from '../../generators/kernel-refusals.ts';
import { lowerView } from '../../generators/lower/lower.ts';
import { captureRefusal, SHAPE_ONLY } from './print.ts';
import { lowerProbe, probeRefusal } from './probe.ts';

export const KERNEL_REFUSALS: KernelRefusals = {
  probe(p) {
    const lowered = lowerProbe(p);
    return {
      keys: p.keys.map((_, i) => probeRefusal(lowered, { key: i })),
      values: p.values.map((_, i) => probeRefusal(lowered, { value: i })),
    };
  },
  instant(view) {
    const lowered = lowerView(view, true);
    return lowered.instant.map((fn) => captureRefusal(lowered, [fn], SHAPE_ONLY));
  },
};
