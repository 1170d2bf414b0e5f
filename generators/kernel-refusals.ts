/**
 * What the kernel cannot run, as the eBPF printer says (printers/bpf/refusals.ts): a
 * probe's keys and values and a view's instant: expressions are checked when a schema
 * is loaded, so one the printer would refuse is refused at its file:line:col. The
 * check sits below the printers and cannot ask them itself: whoever loads a schema
 * hands it in (printers/checked-schema.ts).
 */
import type { ProbeIR, ViewIR } from './ir.ts';

export interface KernelRefusals {
  /** Why the kernel cannot run each key and each value of a probe (null where it can), in their order. */
  probe(p: ProbeIR): { keys: (string | null)[]; values: (string | null)[] };
  /** Why the kernel cannot read each instant: expression of a view at a perf sample (null where it can), in their order. */
  instant(view: ViewIR): (string | null)[];
}
