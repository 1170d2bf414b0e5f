/**
 * xsample trace: a probe of the pack (probes: in its schema) printed as an
 * eBPF program for each process's layout (printers/bpf/probe.ts)
 * and attached as a uprobe at the function's first instruction in that
 * process only (a master stands for its workers: one program each). The
 * kernel aggregates every call: user space reads the tables at the end
 * (after --duration S, or at Ctrl-C) and prints them sorted by count, with
 * each value's mean, min, max and p50/p99 from its log2 histogram, the
 * calls not counted per reason, and the program's cost per call.
 */
import type { PackIR, ProbeIR, ViewIR } from '../../generators/ir.ts';
import { lowerProbe, PROBE, PROBE_ERRORS, printProbe, type ProbeProgram, type TextKind } from '../../printers/bpf/probe.ts';
import { attachUprobe, type AttachedBpf } from '../bpf/loader.ts';
import { TargetGone, UserError } from '../memory/memory.ts';
import { toJson } from '../sampling/result-shape.ts';
import { escapeBytes } from '../sampling/walk-runtime.ts';
import { Progress } from './progress.ts';
import { closeSessions, openSessions, type Print, type SampleOptions, type Session } from '../sampling/sampling.ts';
import { Interrupt } from '../sampling/interrupt.ts';

export interface TraceOptions {
  pids: number[];
  probe: string;
  /** Seconds; Infinity: until Ctrl-C. */
  duration: number;
  json: boolean;
  verbose: boolean;
  pack?: string;
  maxNodes: number;
}

/** One key's figures, every CPU and process added up. */
export interface TraceRow {
  keys: Record<string, string | number | bigint>;
  count: number;
  values: Record<string, ValueStats>;
}

export interface ValueStats {
  sum: bigint;
  min: bigint;
  max: bigint;
  /** Calls per log2 bucket: 0 holds v <= 0, i holds 2^(i-1) <= v < 2^i. */
  hist: number[];
}

/** What a trace gathered. */
export interface TraceResult {
  probe: string;
  function: string;
  pids: number[];
  seconds: number;
  rows: TraceRow[];
  /** Calls the program ran for, and how long in all (BPF stats). */
  runs: number;
  runTimeNs: number;
  errors: Record<(typeof PROBE_ERRORS)[number], number>;
  stopped: string | null;
}

/** The kernel's bound of a walk in a probe: the verifier follows each step. */
const KERNEL_MAX_NODES = 64;
const POLL_MS = 200;

export function probeOf(pack: PackIR, name: string): ProbeIR {
  const p = pack.probes.get(name);
  if (!p) throw new UserError(`pack ${pack.name} has no probe '${name}' (probes: ${[...pack.probes.keys()].join(', ') || 'none'})`);
  return p;
}

/** A probe as the view openSessions picks a layout for (its keys and values as columns). */
const asView = (p: ProbeIR): ViewIR => ({ name: p.name, aliases: [], doc: p.doc, of: p.arg, roots: [], columns: [...p.keys, ...p.values], checks: [], instant: [], slots: 1, clock: false, stack: null, pos: p.pos });

interface Attached {
  session: Session;
  prog: ProbeProgram;
  bpf: AttachedBpf;
}

export async function traceAll(o: TraceOptions, print: Print, warn: Print): Promise<number> {
  const so: SampleOptions = { pids: o.pids, view: o.probe, json: o.json, interval: 1000, count: 1, maxNodes: o.maxNodes, maxBytes: 512 << 20, pack: o.pack, verbose: o.verbose, consistency: 'verify', retries: 0 };
  const sessions = await openSessions(so, warn, (pack) => [asView(probeOf(pack, o.probe))]);
  const attached: Attached[] = [];
  const interrupt = new Interrupt();
  const progress = process.stderr.isTTY && !o.json ? new Progress() : null;
  let result: TraceResult | undefined;
  try {
    const probe = probeOf(sessions[0].sel.pack, o.probe);
    for (const s of sessions) {
      const x = attach(s, probeOf(s.sel.pack, o.probe), o);
      attached.push(x);
      if (o.verbose) warn(`xsample: pid ${s.target.pid}: program id ${x.bpf.id()} (${x.prog.insns.length / 8} instructions) at ${probe.function}, layout ${s.sel.layout.source}`);
    }
    const start = performance.now();
    const end = start + o.duration * 1000;
    let stopped: string | null = null;
    // Up front, what each call now costs the target: on a hot function that is what a user weighs first.
    warn(`xsample: tracing ${probe.function} in ${sessions.map((s) => s.target.pid).join(', ')}${o.duration === Infinity ? '; Ctrl-C to stop' : ` for ${o.duration} s`}: each call now traps into the kernel (about ${TRAP_US} µs of its CPU, make bench measured on a 2-core VM) and runs the ${attached[0].prog.insns.length / 8}-instruction program; a function called ${Math.round(10_000 / TRAP_US)} times a second gives 1% of a CPU to it`);
    for (;;) {
      const left = end - performance.now();
      if (left <= 0) break;
      await interrupt.sleep(Math.min(POLL_MS, left));
      if (interrupt.stopped) {
        stopped = 'stopped by Ctrl-C';
        break;
      }
      for (const x of attached.filter((a) => !a.session.gone)) {
        try {
          x.session.target.checkIdentity();
        } catch (err) {
          if (!(err instanceof TargetGone)) throw err;
          if (attached.length > 1) warn(`xsample: ${err.message}`);
          x.session.gone = true;
        }
      }
      if (attached.every((a) => a.session.gone)) {
        stopped = attached.length > 1 ? 'every process traced exited' : 'the target exited';
        break;
      }
      progress?.update(`${calls(attached)} calls${o.duration === Infinity ? ', Ctrl-C to stop' : ''}`);
    }
    progress?.done();
    result = gather(probe, attached, (performance.now() - start) / 1000, stopped);
  } finally {
    for (const x of attached) x.bpf.detach();
    interrupt.dispose();
    closeSessions(sessions);
  }
  const counted = result.rows.reduce((n, r) => n + r.count, 0);
  const failed = Object.values(result.errors).reduce((n, k) => n + k, 0);
  if (o.json) print(toJson(traceJson(result)));
  else print(formatTrace(result));
  const perCall = result.runs ? `${(result.runTimeNs / result.runs / 1000).toFixed(2)} µs a call in the kernel` : 'no call';
  const errs = Object.entries(result.errors).filter(([, n]) => n > 0).map(([why, n]) => `${n} ${why}`);
  warn(`xsample: ${counted} calls counted${failed ? `, ${failed} not (${errs.join(', ')})` : ''} in ${result.seconds.toFixed(1)} s; ${result.runs} runs, ${perCall}${result.stopped ? `; ${result.stopped}` : ''}`);
  return failed > 0 ? 3 : 0;
}

/** What a traced call costs the target, trap and program, as make bench measured it (docs/BENCHMARKS.md): about 5 µs on a quiet 2-core VM (20 under load). */
const TRAP_US = 5;

/** The probe printed for the session's layout and attached at its function in that process only. */
function attach(s: Session, probe: ProbeIR, o: TraceOptions): Attached {
  const pid = s.target.pid!;
  const prog = printProbe(lowerProbe(probe), s.sel.layout, {
    tgid: pid,
    maxNodes: Math.min(o.maxNodes, KERNEL_MAX_NODES),
    maxTotal: Math.min(o.maxNodes, KERNEL_MAX_NODES) * 10,
    global: (n) => BigInt(s.target.symbols.address(n) ?? -1),
  });
  const binary = probe.object ? objectPath(s, probe.object) : `/proc/${pid}/exe`;
  const bpf = attachUprobe(prog, pid, binary, probe.function, { stats: true, name: 'xwalk_probe' });
  return { session: s, prog, bpf };
}

/** The file of the pack's object (objects:) that the process maps. */
function objectPath(s: Session, object: string): string {
  const file = s.sel.pack.objects.get(object)!.file;
  const mapped = s.target.symbols.objects((p) => {
    const base = p.slice(p.lastIndexOf('/') + 1);
    return base === file || base.startsWith(`${file}.`);
  });
  if (mapped.length === 0) throw new UserError(`process ${s.target.pid} maps no ${file} (the object ${object} of pack ${s.sel.pack.name})`);
  return mapped[0].path;
}

function calls(attached: Attached[]): number {
  let n = 0;
  for (const x of attached) for (const [, v] of x.bpf.entries('table')) for (const cpu of split(v, x.prog.valueSize)) n += Number(cpu.readBigUInt64LE(0));
  return n;
}

/** A per-CPU map value as each CPU's (8-byte aligned strides). */
function split(all: Buffer, size: number): Buffer[] {
  const stride = (size + 7) & ~7;
  return Array.from({ length: all.length / stride }, (_, i) => all.subarray(i * stride, i * stride + size));
}

/** Every process's table and errors, added up per key (as shown: two texts cut alike are one key). */
function gather(probe: ProbeIR, attached: Attached[], seconds: number, stopped: string | null): TraceResult {
  const rows = new Map<string, TraceRow>();
  const errors = Object.fromEntries(PROBE_ERRORS.map((e) => [e, 0])) as TraceResult['errors'];
  let runs = 0;
  let runTimeNs = 0;
  for (const { prog, bpf } of attached) {
    const c = bpf.costs();
    runs += c.runCount;
    runTimeNs += c.runTimeNs;
    PROBE_ERRORS.forEach((why, i) => {
      const key = Buffer.alloc(4);
      key.writeUInt32LE(i);
      for (const v of bpf.perCpu('errors', key) ?? []) errors[why] += Number(v.readBigUInt64LE(0));
    });
    for (const [k, all] of bpf.entries('table')) {
      const keys = decodeKeys(prog, k);
      const id = JSON.stringify(keys, (_, x) => (typeof x === 'bigint' ? `${x}n` : x));
      let row = rows.get(id);
      if (!row) {
        row = { keys, count: 0, values: Object.fromEntries(prog.values.map((v) => [v.name, { sum: 0n, min: 0n, max: 0n, hist: new Array(PROBE.buckets).fill(0) }])) };
        rows.set(id, row);
      }
      for (const cpu of split(all, prog.valueSize)) {
        const n = Number(cpu.readBigUInt64LE(0));
        if (n === 0) continue;
        const had = row.count;
        row.count += n;
        for (const v of prog.values) {
          const s = row.values[v.name];
          s.sum += cpu.readBigInt64LE(v.offset);
          const min = cpu.readBigInt64LE(v.offset + 8);
          const max = cpu.readBigInt64LE(v.offset + 16);
          s.min = had === 0 || min < s.min ? min : s.min;
          s.max = had === 0 || max > s.max ? max : s.max;
          for (let b = 0; b < PROBE.buckets; b++) s.hist[b] += Number(cpu.readBigUInt64LE(v.offset + 24 + b * 8));
        }
      }
      if (row.count === 0) rows.delete(id);
    }
  }
  const sorted = [...rows.values()].sort((a, b) => b.count - a.count);
  return { probe: probe.name, function: probe.function, pids: attached.map((x) => x.session.target.pid!), seconds, rows: sorted, runs, runTimeNs, errors, stopped };
}

/** A key buffer's keys: integers as they are (signed 64-bit), texts escaped, "..." where the kernel cut one. */
export function decodeKeys(prog: Pick<ProbeProgram, 'keys'>, k: Buffer): TraceRow['keys'] {
  const out: TraceRow['keys'] = {};
  for (const key of prog.keys) {
    if (!key.text) {
      const v = k.readBigInt64LE(key.offset);
      out[key.name] = v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      continue;
    }
    out[key.name] = decodeText(key.text, k.readBigUInt64LE(key.offset), k.subarray(key.offset + PROBE.textHeader, key.offset + PROBE.textHeader + PROBE.textData));
  }
  return out;
}

function decodeText(kind: TextKind, len: bigint, data: Buffer): string {
  const max = PROBE.textRead;
  if (kind === 'string') {
    const shown = len > BigInt(max) ? max : Number(len);
    return escapeBytes(data.subarray(0, shown)) + (len > BigInt(max) ? '...' : '');
  }
  if (kind === 'cstring') {
    // what bpf_probe_read_user_str returned: the bytes and the NUL, at most cstrRead
    const got = Number(len);
    const cut = got >= PROBE.cstrRead;
    return escapeBytes(data.subarray(0, cut ? max : Math.max(0, got - 1))) + (cut ? '...' : '');
  }
  const bytes = data.subarray(0, Math.min(Number(len), max));
  const nul = bytes.indexOf(0);
  return escapeBytes(nul < 0 ? bytes : bytes.subarray(0, nul)) + (nul < 0 && len > BigInt(max) ? '...' : '');
}

/** The value below which a share q of the calls fell: the upper bound of its log2 bucket, within min and max. */
export function quantile(s: ValueStats, count: number, q: number): bigint {
  const want = Math.max(1, Math.ceil(q * count));
  let seen = 0;
  for (let b = 0; b < s.hist.length; b++) {
    seen += s.hist[b];
    if (seen >= want) {
      const upper = b === 0 ? 0n : (1n << BigInt(b)) - 1n;
      return upper < s.min ? s.min : upper > s.max ? s.max : upper;
    }
  }
  return s.max;
}

const mean = (s: ValueStats, count: number): number => Number(s.sum) / count;

function traceJson(r: TraceResult): object {
  return {
    probe: r.probe,
    function: r.function,
    pids: r.pids,
    seconds: Number(r.seconds.toFixed(3)),
    calls: r.rows.reduce((n, x) => n + x.count, 0),
    errors: r.errors,
    runs: r.runs,
    ns_per_call: r.runs ? Math.round(r.runTimeNs / r.runs) : null,
    ...(r.stopped ? { stopped: r.stopped } : {}),
    rows: r.rows.map((row) => ({
      ...row.keys,
      count: row.count,
      ...Object.fromEntries(
        Object.entries(row.values).map(([name, s]) => [
          name,
          { sum: s.sum, mean: Number(mean(s, row.count).toFixed(3)), min: s.min, max: s.max, p50: quantile(s, row.count, 0.5), p99: quantile(s, row.count, 0.99), log2_hist: s.hist.flatMap((n, b) => (n ? [[b, n]] : [])) },
        ]),
      ),
    })),
  };
}

/** The table: keys, count, and per value mean, min, max, p50 and p99 (p50/p99 from the log2 histogram: a bucket's upper bound). */
export function formatTrace(r: TraceResult): string {
  const first = r.rows[0];
  const keyNames = first ? Object.keys(first.keys) : [];
  const valueNames = first ? Object.keys(first.values) : [];
  const head = [...keyNames, 'count', ...valueNames.flatMap((v) => [`${v} mean`, 'min', 'max', 'p50~', 'p99~'])];
  const lines = r.rows.map((row) => [
    ...keyNames.map((k) => String(row.keys[k])),
    String(row.count),
    ...valueNames.flatMap((v) => {
      const s = row.values[v];
      return [mean(s, row.count).toFixed(1), String(s.min), String(s.max), String(quantile(s, row.count, 0.5)), String(quantile(s, row.count, 0.99))];
    }),
  ]);
  if (lines.length === 0) return `${r.probe}: no call of ${r.function} counted in ${r.seconds.toFixed(1)} s`;
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const numeric = head.map((_, i) => i >= keyNames.length || lines.every((l) => /^-?\d+(\.\d+)?$/.test(l[i])));
  const fmt = (cells: string[]) => cells.map((c, i) => (numeric[i] ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [fmt(head), ...lines.map(fmt)].join('\n');
}
