/** Writes docs/BENCHMARKS.md and docs/benchmarks.svg from the results of bench/run.ts. */
import fs from 'node:fs';
import type { InstantResult, ProbeCost } from './instant.ts';
import { type FullstackResult, fullstackSection } from './fullstack.ts';
import { type SampleCost, sampleCostSection } from './sample-cost.ts';
import type { SampleFloor } from './sample-floor.ts';
import { type HeapResult, luaHeapSection } from './lua-heap.ts';
import path from 'node:path';
import { root } from '../test/lib/walkee.ts';
import type { Method } from './methods.ts';
import type { ColdResult, LoadResult, StallResult, WalkResult } from './run.ts';
import { median } from './report-log.ts';

export interface Results {
  env: Record<string, string>;
  runs: number;
  cold?: ColdResult[];
  walks: WalkResult[];
  stalls: StallResult[];
  load: LoadResult[];
  cost?: SampleCost[];
  floor?: SampleFloor;
  instant?: InstantResult[];
  probe?: ProbeCost;
  fullstack?: FullstackResult;
  heap?: HeapResult;
}

const fmt = (ns: number) => (ns >= 10_000 ? `${(ns / 1000).toFixed(0)} µs` : ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);
const x = (r: number) => `${r >= 10 ? r.toFixed(0) : r.toFixed(1)}×`;

function at(r: Results, method: string, nodes: number, layout: string): WalkResult | undefined {
  return r.walks.find((w) => w.method === method && w.nodes === nodes && w.layout === layout);
}

function walkTable(r: Results, methods: Method[], layout: string): string {
  const sizes = [...new Set(r.walks.map((w) => w.nodes))].sort((a, b) => a - b);
  const head = `| method | ${sizes.map((n) => `${n / 1000}k`).join(' | ')} | ×floor (1M) | vs gdb.Value (1M) |`;
  const rows = methods.map((m) => {
    const cells = sizes.map((n) => {
      const w = at(r, m.key, n, layout);
      return w ? fmt(w.nsPerNode) : '—';
    });
    const big = at(r, m.key, 1_000_000, layout);
    const floor = at(r, 'floor', 1_000_000, layout);
    const value = at(r, 'gdb_value', 1_000_000, layout);
    const vsFloor = big && floor ? x(big.nsPerNode / floor.nsPerNode) : '—';
    const speedup = big && value ? value.nsPerNode / big.nsPerNode : NaN;
    const vsValue = Number.isNaN(speedup) ? '—' : m.key === 'gdb_value' ? '1×' : speedup >= 1 ? `${x(speedup)} faster` : `${x(1 / speedup)} slower`;
    return `| ${m.label} | ${cells.join(' | ')} | ${vsFloor} | ${vsValue} |`;
  });
  return [head, `|---|${sizes.map(() => '---:').join('|')}|---:|---:|`, ...rows].join('\n');
}

interface Target {
  what: string;
  want: string;
  got: string;
  met: boolean;
}

function targets(r: Results): Target[] {
  const out: Target[] = [];
  const ns = (m: string, l: string, n = 1_000_000) => at(r, m, n, l)?.nsPerNode ?? NaN;
  for (const l of ['contiguous', 'shuffled']) {
    // Like for like: xsample checks its answer by reading again (the default), and so does floor_verify.
    const ratio = ns('xsample', l) / ns('floor_verify', l);
    out.push({ what: `xsample vs the C floor, both checking, 1M ${l}`, want: '≤ 1.5×', got: x(ratio), met: ratio <= 1.5 });
    const off = ns('xsample_off', l) / ns('floor', l);
    out.push({ what: `xsample --consistency off vs the C floor, 1M ${l}`, want: '≤ 1.5×', got: x(off), met: off <= 1.5 });
    // Sample after sample (record, top): xsample's view and buffers kept, against the one-shot floor the
    // numbers above use and, like for like, against the floor's own sample after sample.
    const again = ns('xsample_again', l) / ns('floor_verify', l);
    out.push({ what: `xsample sample after sample vs the C floor, both checking, 1M ${l}`, want: '≤ 1.5×', got: x(again), met: again <= 1.5 });
    const againLike = ns('xsample_again', l) / ns('floor_verify_again', l);
    out.push({ what: `xsample vs the floor, both sample after sample and checking, 1M ${l}`, want: '≤ 1.2×', got: x(againLike), met: againLike <= 1.2 });
    const cost = ns('xsample', l) / ns('xsample_off', l) - 1;
    out.push({ what: `the check's cost in xsample, 1M ${l}`, want: 'reported', got: `+${(cost * 100).toFixed(0)}%`, met: true });
    const drgn = ns('drgn_objects', l) / ns('xsample', l);
    out.push({ what: `xsample vs drgn objects, 1M ${l}`, want: '≥ 10× faster', got: `${x(drgn)} faster`, met: drgn >= 10 });
    const gdb = ns('gdb_value', l) / ns('gdb_ext', l);
    out.push({ what: `gdb extension vs gdb.Value, 1M ${l}`, want: '≥ 5× faster', got: `${x(gdb)} faster`, met: gdb >= 5 });
    const lldb = ns('lldb_raw', l, 100_000) / ns('lldb_ext', l, 100_000);
    out.push({ what: `lldb extension vs ReadMemory per field, 100k ${l}`, want: '≥ 5× faster', got: `${x(lldb)} faster`, met: lldb >= 5 });
  }
  const s = r.stalls.find((x) => x.method === 'xsample');
  if (s) {
    out.push({ what: 'xsample: longest pause of the target (1M shuffled walk)', want: '≤ 2 ms', got: `${(s.maxGapUs / 1000).toFixed(2)} ms`, met: s.maxGapUs <= 2000 });
    out.push({ what: 'xsample: target progress during the walk vs unobserved', want: '≥ 0.95', got: s.progress.toFixed(2), met: s.progress >= 0.95 });
  }
  const cold = r.cold?.find((c) => c.what.includes('ngx_connection_totals'));
  if (cold) out.push({ what: 'one-shot xsample --pid W --struct ngx_connection_totals, wall', want: '< 0.2 s', got: `${(cold.ms / 1000).toFixed(3)} s`, met: cold.ms < 200 });
  const node = r.cold?.find((c) => c.what === 'node -e 0');
  if (cold && node) {
    const q = cold.ms / node.ms;
    out.push({ what: 'that one-shot vs node -e 0 on the same machine, wall', want: '≤ 1.8×', got: `${x(q)} (${cold.ms.toFixed(0)} vs ${node.ms.toFixed(0)} ms)`, met: q <= 1.8 });
  }
  const base = r.load.find((l) => l.condition === 'unsampled');
  const hz100 = r.load.find((l) => l.condition.includes('100 Hz'));
  if (base && hz100) {
    // Each round against the unsampled run of the same round: this host's speed moves between rounds more than the goals.
    const q = roundsMedian(hz100.p99sMs, base.p99sMs, (a, b) => a / b);
    out.push({ what: 'nginx p99 under 100 Hz sampling vs unsampled, each round against its own', want: '≤ 1.1×', got: `${x(q.median)} (rounds: ${q.each.map(x).join(', ')})`, met: q.median <= 1.1 });
    const lost = roundsMedian(hz100.requestsEach ?? [], base.requestsEach ?? [], (a, b) => 1 - a / b);
    const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
    out.push({ what: 'nginx requests lost under 100 Hz sampling vs unsampled, each round against its own', want: '≤ 1%', got: `${pct(lost.median)} (rounds: ${lost.each.map(pct).join(', ')})`, met: lost.median <= 0.01 });
  }
  return out;
}

/** f of each round's a and b (the conditions of one round ran within seconds of each other), and their median. */
function roundsMedian(a: number[], b: number[], f: (a: number, b: number) => number): { median: number; each: number[] } {
  const each = a.slice(0, b.length).map((v, i) => f(v, b[i]));
  return { median: median(each), each };
}

/** How xsample's samples under load fared: partial ones, and the items they found that changed while read. */
function loadPartial(load: LoadResult[]): string {
  const rows = load.filter((l) => l.partial !== undefined);
  if (rows.length === 0) return '';
  return `
Of xsample's samples, in all rounds (a partial one shows the items that held still whole, and leaves out what changed):

| condition | partial samples | items found | items that changed while read |
|---|---:|---:|---:|
${rows.map((l) => `| ${l.condition} | ${l.partial} | ${l.items} | ${l.itemsChanged} |`).join('\n')}
`;
}

function svg(r: Results, methods: Method[]): string {
  const bars = methods.flatMap((m) =>
    ['contiguous', 'shuffled'].map((l) => ({ m, l, w: at(r, m.key, 1_000_000, l) ?? at(r, m.key, 10_000, l) })),
  );
  const rowH = 18;
  const left = 330;
  const width = 960;
  const plot = width - left - 110;
  const top = 40;
  const height = top + bars.length * rowH + 40;
  const lo = Math.log10(10);
  const hi = Math.log10(Math.max(...bars.map((b) => b.w?.nsPerNode ?? 1)) * 1.5);
  const xpos = (ns: number) => left + ((Math.log10(ns) - lo) / (hi - lo)) * plot;
  const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="20" font-size="14" font-weight="bold">ns per node, walking and summing a linked list of 1M nodes (log scale; SBValue at 10k)</text>`,
  ];
  for (let d = 1; d <= 6; d++) {
    const v = 10 ** d;
    if (Math.log10(v) > hi) break;
    parts.push(`<line x1="${xpos(v)}" x2="${xpos(v)}" y1="${top - 6}" y2="${height - 30}" stroke="#ddd"/>`, `<text x="${xpos(v)}" y="${height - 14}" text-anchor="middle" fill="#555">${fmt(v)}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    if (b.l === 'contiguous') parts.push(`<text x="${left - 8}" y="${y + rowH}" text-anchor="end">${esc(b.m.label)}</text>`);
    if (!b.w) return;
    const color = b.m.key.startsWith('xsample') || b.m.key.endsWith('_ext') ? (b.l === 'contiguous' ? '#2a7ab0' : '#1b4f72') : b.m.key === 'floor' ? (b.l === 'contiguous' ? '#7d7d7d' : '#4d4d4d') : b.l === 'contiguous' ? '#e59866' : '#ba4a00';
    parts.push(`<rect x="${left}" y="${y + 2}" width="${Math.max(1, xpos(b.w.nsPerNode) - left)}" height="${rowH - 4}" fill="${color}"/>`, `<text x="${xpos(b.w.nsPerNode) + 4}" y="${y + rowH - 5}" fill="#333">${fmt(b.w.nsPerNode)} ${b.l === 'contiguous' ? 'contig.' : 'shuffled'}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** lua_stacks under short calls: its split at the instant and by reading memory against jit.profile's, and the kernel's cost. */
function instantSection(r: Results): string {
  if (!r.instant?.length) return '';
  const p = r.probe;
  const probe = !p
    ? ''
    : `
## A probe: what each traced call costs

\`xsample trace --probe ngx_request_done\` on our nginx (a uprobe at ngx_http_free_request, once a request):
${p.requests} sequential keep-alive requests a round, untraced and traced taking turns: the worker's CPU time a
request (its /proc/PID/schedstat, the traps included), medians of the rounds.

| worker CPU a request, untraced | traced | added by the probe | the program alone (kernel stats) | calls counted |
|---:|---:|---:|---:|---:|
| ${p.plainUs.toFixed(1)} µs | ${p.tracedUs.toFixed(1)} µs | ${p.addedUs.toFixed(1)} µs | ${p.programUs.toFixed(2)} µs | ${p.counted} |
`;
  return `
## A CPU profile under short calls: at the instant (eBPF) and by reading memory

\`lua_stacks\` recorded at 100 Hz for 5 s under the short-call workload of test/lib/lua-split.ts
(heavy about 10 µs a call, light about 3 µs, 3 units of work to 1), then LuaJIT's own profiler
(\`jit.profile\`) in the same worker just after: heavy's share of the samples in each. At the instant,
the kernel runs the view's capture at each perf sample of the worker's CPU time
([tracing.md](tracing.md)); its cost is the kernel's own run-time statistics.

| JIT | sampled | heavy's share | jit.profile's | apart | samples (partial) | kernel, a capture |
|---|---|---:|---:|---:|---:|---:|
${r.instant.map((i) => `| ${i.jit} | ${i.mode === 'on' ? 'at the instant' : 'reading memory'} | ${i.share.toFixed(3)} | ${i.truth.toFixed(3)} | ${Math.abs(i.share - i.truth).toFixed(3)} | ${i.samples} (${i.partial}) | ${i.captureUs === null ? '' : `${i.captureUs} µs`} |`).join('\n')}
${probe}`;
}

export function writeReport(r: Results, methods: Method[]): void {
  const rss = at(r, 'xsample', 1_000_000, 'shuffled')?.rssMiB;
  const md = `# Benchmarks

Measured by \`make bench\` (bench/run.ts) on ${r.env.date}: ${r.env.cpus}, Linux ${r.env.kernel},
Node ${r.env.node}, gdb ${r.env.gdb}, lldb ${r.env.lldb}, drgn ${r.env.drgn}, wrk ${r.env.wrk}.
Every figure is the median of ${r.runs} runs (SBValue: one) taken in the same run, on the
same target; every walk is checked against the sum walkee computed itself, so
no method is timed on a wrong answer. Raw numbers: [bench/results.json](../bench/results.json).
One part can be measured again alone, rewriting that part of both: \`XWALK_BENCH_COST_ONLY=1 make bench\`
(or \`WALKS\` (the walks, their stalls and cold start), \`COLD\` (cold start alone), \`LOAD\`, \`INSTANT\`, \`FULLSTACK\`, \`HEAP\` in its place); \`XWALK_BENCH_REPORT_ONLY=1\` rewrites this page.

![ns per node](benchmarks.svg)

## Walking a linked list of N nodes and summing a field

The target is walkee (test-targets/walkee.c), a list of 24-byte nodes. Times
are of the walk alone (attaching, loading symbols and starting the
interpreter are not counted): xsample's in-process time of the view
(\`xsample --verbose\`), the debuggers' Python time around the walk, drgn's
around its loop, the C floor's around its loop. A whole one-shot xsample
command costs what [cold start](#cold-start-a-one-shot-command-start-to-exit)
says on top, once per command. By default xsample
checks each answer by reading again what it was computed from (a live
answer is complete only if that memory held still): its time includes the
check, and "the floor, reading every chunk again" does the same in C;
\`--consistency off\` and the plain floor leave it out.

A one-shot command walks once, in a fresh process: its JavaScript starts
interpreted and is compiled while it runs, and every buffer it reads into
is new memory. Sampling again and again (\`--count\`, \`--interval\`, and the
recordings built on them) keeps the compiled view and the buffers: "sample
after sample" rows are the median of samples 2 to 5 of one command, and the
floor's are the same (four more walks, its chunks read again into the
buffers it has).

### Contiguous (nodes in address order)

${walkTable(r, methods, 'contiguous')}

### Shuffled (nodes in a random order over 24 MB)

${walkTable(r, methods, 'shuffled')}

xsample's peak RSS on the 1M shuffled walk: ${rss ?? '?'} MiB (the page cache holds the 24 MB it read).

## The numbers to reach

| what | target | measured | |
|---|---|---|---|
${targets(r)
  .map((t) => `| ${t.what} | ${t.want} | ${t.got} | ${t.met ? 'met' : '**missed**'} |`)
  .join('\n')}

## Cold start: a one-shot command, start to exit

What a user at a shell waits for: the whole command, Node's start, the
pack (its checked IR cached after the first run), the layout (cached or
committed), the sample and the output; median of ${r.cold?.[0]?.runs.length ?? '?'} runs after one to fill
the caches, the commands taking turns round after round (this host's speed
drifts over seconds).

| command | wall | runs |
|---|---:|---|
${(r.cold ?? []).map((c) => `| \`${c.what}\` | ${c.ms.toFixed(0)} ms | ${c.runs.map((m) => m.toFixed(0)).join(', ')} |`).join('\n')}

## What the target feels: its own loop during a 1M shuffled walk

walkee's ticker thread wakes every ~200 µs and records the gap since its
previous round. For each method: the longest gap and the 99th percentile
while the method ran (from its start to its exit, attach included), and the
target's progress (rounds per second) relative to an unobserved second just
before.

| method | longest pause | p99 gap | progress vs unobserved | method's wall time |
|---|---:|---:|---:|---:|
| *(unobserved: the longest pause of the quiet second before each method, at most)* | ${(Math.max(...r.stalls.map((s) => s.quietMaxGapUs)) / 1000).toFixed(2)} ms | | 1.00 | |
${r.stalls.map((s) => `| ${methods.find((m) => m.key === s.method)?.label ?? s.method} | ${(s.maxGapUs / 1000).toFixed(2)} ms | ${(s.p99GapUs / 1000).toFixed(2)} ms | ${s.progress.toFixed(2)} | ${(s.wallMs / 1000).toFixed(2)} s |`).join('\n')}

## nginx under load while it is sampled

wrk (2 threads, 32 connections, 5 s) against our nginx 1.22.1 on loopback,
with 4 requests held in flight, while \`ngx_requests\` is sampled. The
worker is pinned to one CPU and wrk to the other; the sampler goes where the
kernel puts it. Each sampler is in its steady state: started, and past its
first sample, before wrk starts. The conditions take turns, ${r.load[0]?.p99sMs?.length ?? 0} rounds; the
medians of the rounds are shown, and each round's p99 to show the spread.

| condition | p50 | p99 | each round's p99 (ms) | requests served | each round's requests | samples taken |
|---|---:|---:|---|---:|---|---:|
${r.load.map((l) => `| ${l.condition} | ${l.p50Ms.toFixed(3)} ms | ${l.p99Ms.toFixed(3)} ms | ${(l.p99sMs ?? []).map((v) => v.toFixed(2)).join(', ')} | ${l.requests} | ${(l.requestsEach ?? []).join(', ')} | ${l.samples} |`).join('\n')}
${loadPartial(r.load)}`;
  fs.writeFileSync(path.join(root, 'docs/BENCHMARKS.md'), md + sampleCostSection(r.cost, r.floor) + instantSection(r) + fullstackSection(r.fullstack) + luaHeapSection(r.heap));
  fs.writeFileSync(path.join(root, 'docs/benchmarks.svg'), svg(r, methods));
}
