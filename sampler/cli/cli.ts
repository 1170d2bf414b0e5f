/**
 * xsample: walk a live process's structures without stopping it, or a core.
 */
import { parseArgs } from 'node:util';
import { type PackIR, SchemaError } from '../../generators/ir.ts';
import { printableLines, versionLine } from '../../generators/schema.ts';
import { onUntrustedPack } from '../../core/packs.ts';
import { TargetGone, UserError } from '../memory/memory.ts';
import { onSymbolTableWarning } from '../memory/recovered-symbols.ts';
import { listPacks, loadPack, recoverStripped } from '../sampling/pack-select.ts';
import { type Format, FORMATS, INSTANT_MODES, type InstantMode, type RecordOptions, recordAll } from '../outputs/recording.ts';
import type { SampleOptions } from '../sampling/sampling.ts';
import { sampleAll } from '../outputs/show.ts';
import { type TopOptions, topAll } from '../outputs/top.ts';
import { type ServeOptions, serveAll } from '../outputs/serve.ts';
import { DEFAULT_LIMITS, WalkError } from '../memory/walk-error.ts';
import { type TraceOptions, traceAll } from '../outputs/trace.ts';
import { type CpuRecordOptions, DEFAULT_CPU_HZ, DEFAULT_STACK_BYTES, recordCpu } from '../fullstack/cpu-recording.ts';

const USAGE = `usage: xsample --pid PID[,PID...] --struct VIEW [options]
       xsample --core FILE [--exe BINARY] --struct VIEW [options]
       xsample record --pid PID --struct VIEW [--rate HZ] [--duration S] [-o FILE] [--format F]
       xsample record --pid PID --cpu|--off-cpu [--rate HZ] [--duration S] [-o FILE] [--format F]
       xsample top --pid PID --struct VIEW [--sort COLUMN] [--interval MS] [--count K]
       xsample serve --pid PID [--struct VIEW]... [--listen HOST:PORT] [--interval MS]
       xsample trace --pid PID --probe NAME [--duration S] [--json]
       xsample --list [--pack NAME]

Walks the data structures of a running process without stopping it: memory is
read with process_vm_readv (or /proc/PID/mem), never ptrace, never SIGSTOP.
The same views work on a core file.

  --pid PID[,PID]    the processes to read; a server's master process (nginx's)
                     stands for its workers, each item says which pid it is from
  --core FILE        read a core dump instead; --exe names its executable when
                     the path recorded in the core is not right
  --struct VIEW      the view to print (xsample --list shows them), e.g. ngx_pool
  --addr EXPR        only the item at EXPR (an address, or an expression such as
                     ngx_cycle.pool) instead of every item the roots reach
  --json             print JSON: {view, pid, pack, release, build_id, items,
                     partial, errors}; one object per process and sample per line
  --interval MS      sample every MS milliseconds until Ctrl-C (or --count)
  --count K          sample K times (every --interval MS, default 1000), then
                     print how the figures moved
  --max-nodes N      most elements one walk may visit (default ${DEFAULT_LIMITS.maxNodes})
  --max-bytes N      most memory one sample may read, in bytes or with K, M, G
                     (default 512M); past it the sample is partial
  --consistency M    verify (default): an answer is complete only if the memory
                     it came from held still while it was read (read again and
                     compared); off: no such check, and the JSON says so
  --retries N        samples taken again when their memory changed under them,
                     before the answer is partial (default 3)
  --pack NAME        the pack to use (default: the one that knows the binary)
  --source KIND      pvr (process_vm_readv, default) or procmem (/proc/PID/mem)
  --no-fetch         do not recover the symbols of a stripped binary a pack
                     covers (xgen symbols --for FILE, run by itself otherwise:
                     a rebuild of its Debian source, verified); views that need
                     a global it does not export then fail
  --nice N           run at this nice level (default 19; 0 to keep yours), so the
                     target wins the CPU whenever both want it
  --verbose          print read statistics to stderr
  --version          xsample's version and its schema language's
  --help             this text

xsample record samples at a rate (--rate HZ, default 10, up to 1000) for
--duration S seconds or until Ctrl-C, and writes what the samples add up to
(to -o FILE, or to stdout): a stack-shaped view (one with stack: in its
schema) as a flame graph's input, any view as a summary of its columns.
  --format folded      frame;frame;frame weight lines (flamegraph.pl, inferno,
                       speedscope, Pyroscope read it); the default for stacks
  --format speedscope  speedscope's JSON file (https://www.speedscope.app)
  --format svg         a flame graph in one SVG file: readable as it is; in a
                       browser, click to zoom, Search, details under the pointer
  --format pprof       a gzipped pprof profile (go tool pprof, Pyroscope)
  --format json        per column: n, min, p50, p90, p99, max of its numbers,
                       or its most frequent texts; the default for tables
The format also follows -o's name: .folded, .speedscope.json, .svg, .pb.gz,
.pprof, .json.
  --instant MODE       auto (default): a view that names what the kernel reads
                       at the instant (instant: in its schema, as lua_stacks)
                       is sampled by an eBPF program at each perf sample of the
                       process's CPU time, so that short states weigh what
                       they last; on: that or an error; off: read memory at
                       --rate as other views are (biased toward long states)
Only
complete samples count (partial ones are left out and counted). On a terminal
it shows its progress; Ctrl-C writes what was gathered.

xsample record --cpu records whole stacks instead of a view: every thread of
the process, sampled by the kernel every 1/HZ s of its CPU time (--rate,
default ${DEFAULT_CPU_HZ}), each sample the thread's registers, a copy of its user stack
and the kernel's frames; user stacks are unwound here from each object's
.eh_frame (no frame pointers needed, stripped binaries too) and named from
its symbols (object+0xOFFSET where it has none). Where the pack knows an
interpreter (OpenResty's LuaJIT), its frames, read by eBPF at the same
instant, stand in for its own native frames: C, Lua and kernel frames in one
stack. --off-cpu records where threads wait instead: a sample at each
switch-out, weighing the µs until the thread runs again.
  --stack-bytes N      user stack copied per sample (default ${DEFAULT_STACK_BYTES}; at most
                       65528): deeper stacks end in [unwinding stopped: stack-cut]
  --no-lua             native frames only
  --min-block US       --off-cpu: leave out waits shorter than US µs (default 0)
Frames end in _[k] (kernel), _[l] (Lua, interpreted), _[j] (Lua, compiled
code), as flamegraph.pl colours them; the SVG colours them so.

xsample top shows a view as a live table, like py-spy top: every --interval
(default 1000 ms) a new sample, the items sorted by --sort COLUMN (largest
first; default: a stack-shaped view's weight, else the first number column),
each number with how it moved since the last refresh; new items are marked
and vanished ones counted. On a terminal it redraws in place; otherwise
each refresh is a block of text. Ctrl-C quits.

xsample serve answers Prometheus on http://HOST:PORT/metrics (default
127.0.0.1:9464): each number column of a view whose roots give one item
each (ngx_connection_totals) as a gauge xwalk_VIEW_COLUMN{pid,root}; of a
view of many items, their count (xwalk_VIEW_items{pid}) and each number
column summed and its largest (_max); a column in ms in seconds. Without --struct, every view of
the pack that applies to the process (one whose objects are not mapped, such as
the Lua views on a plain nginx, is not served, and stderr says so). A scrape
samples again only when the last sample is older than --interval (default
1000 ms); a view whose sample fails or is partial exports none of its figures,
but xwalk_view_up 0 and xwalk_view_errors_total, and the others are served.
It listens on loopback unless --listen names another address (then it warns).

xsample trace counts the calls of a function in the kernel: a probe of the
pack (probes: in its schema; xsample --list shows them) is printed as an eBPF
program and attached as a uprobe at the function's first instruction, in the
process only (a master stands for its workers: one program each; another
process running the same binary is not trapped). Each call evaluates the
probe's keys and values on the function's first argument and adds them up
per key: at the end (after --duration S, or at Ctrl-C) a table sorted by
count, each value's mean, min, max, and p50~/p99~ (the upper bound of its
log2 bucket), or JSON with --json. Calls a walk error or a read that faults
kept out are counted per reason; the end says them and the program's cost
per call in the kernel (it runs at every call: on a hot function, mind it).
Nothing stays attached after xsample exits (file descriptors only).
  --probe NAME         the probe (e.g. ngx_request_done)

Packs are found in the folders of XWALK_PACKS (separated by ':'), then among
the packs that come with xsample (each used only when root or you own it and
no one else may write it; else one line says why it is skipped); layouts derived from DWARF are cached in
$XDG_CACHE_HOME/xwalk (default ~/.cache/xwalk).

Ctrl-C stops sampling: what was gathered is printed, and the summary.
Exit status: 0 ok, 1 error, 2 bad usage, 3 partial result (in some sample a
structure could not be read consistently: the errors say where).`;

class UsageError extends Error {}

/** The range of each number option: outside it is bad usage, not a silent clamp. */
const RANGES = {
  '--pid': [1, 4_194_304], // PID_MAX_LIMIT
  '--interval': [1, 86_400_000], // a day
  '--count': [1, 1_000_000_000],
  '--max-nodes': [1, 1_000_000_000],
  '--nice': [0, 19],
  '--retries': [0, 100],
  '--rate': [1, 1000],
  '--duration': [1, 31_536_000], // a year
  '--stack-bytes': [8, 65528], // perf_event_attr.sample_stack_user: a u32 the kernel caps below 64 KiB, a multiple of 8
  '--min-block': [0, 3_600_000_000], // an hour, in µs
} as const;

function intOption(v: string | undefined, name: keyof typeof RANGES): number | undefined {
  if (v === undefined) return undefined;
  const [min, max] = RANGES[name];
  const n = /^\d+$/.test(v) ? Number(v) : NaN;
  if (!(n >= min && n <= max)) throw new UsageError(`${name} takes a whole number from ${min} to ${max}, not '${v}'`);
  return n;
}

const MiB = 1024 * 1024;
const UNITS: Record<string, number> = { '': 1, K: 1024, M: MiB, G: 1024 * MiB };

/** A size in bytes, or with a K, M or G suffix; from 1M to 64G. */
function byteOption(v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const m = /^(\d+)([KMG]?)(i?B)?$/i.exec(v);
  const n = m ? Number(m[1]) * UNITS[m[2].toUpperCase()] : NaN;
  if (!(n >= MiB && n <= 64 * 1024 * MiB)) throw new UsageError(`--max-bytes takes a size from 1M to 64G (bytes, or with K, M or G), not '${v}'`);
  return n;
}

function pidList(v: string | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  return [...new Set(v.split(',').map((p) => intOption(p.trim(), '--pid')!))];
}

/** parseArgs's 'argument is ambiguous' (--pid -1: a value that starts with a dash) said as what the option needs. */
function ambiguous(argv: string[], message: string): string | null {
  const m = /^Option '(-[\w-]+)' argument is ambiguous[\s\S]*use '(--[\w-]+)=/.exec(message);
  if (!m) return null;
  const i = argv.indexOf(m[1]);
  const value = i >= 0 && i + 1 < argv.length ? argv[i + 1] : '';
  return m[2] === '--pid' ? `--pid needs a process id, a positive integer, not '${value}'` : `${m[2]} needs a value, not the option-like '${value}' (write ${m[2]}=${value} if that is the value)`;
}

type Parsed = SampleOptions | RecordOptions | CpuRecordOptions | TopOptions | ServeOptions | { trace: TraceOptions } | { list: true; pack?: string } | 'help' | 'version';

/** xsample trace --pid PID --probe NAME [--duration S] [--json] [--verbose] [--pack NAME] [--max-nodes N]. */
export function parseTrace(argv: string[]): { trace: TraceOptions } | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        pid: { type: 'string', short: 'p' },
        probe: { type: 'string' },
        duration: { type: 'string' },
        json: { type: 'boolean' },
        verbose: { type: 'boolean', short: 'v' },
        pack: { type: 'string' },
        'max-nodes': { type: 'string' },
        nice: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(ambiguous(argv, (err as Error).message) ?? (err as Error).message.split('\n')[0]);
  }
  if (values.help) return 'help';
  intOption(values.nice, '--nice');
  const pids = pidList(values.pid);
  if (!pids) throw new UsageError('trace reads live processes: give --pid PID');
  if (!values.probe) throw new UsageError('which probe? --probe NAME (xsample --list shows them)');
  return {
    trace: {
      pids,
      probe: values.probe,
      duration: intOption(values.duration, '--duration') ?? Infinity,
      json: values.json ?? false,
      verbose: values.verbose ?? false,
      pack: values.pack,
      maxNodes: intOption(values['max-nodes'], '--max-nodes') ?? DEFAULT_LIMITS.maxNodes,
    },
  };
}

function parseOptions(argv: string[]): Parsed {
  if (argv[0] === 'trace') return parseTrace(argv.slice(1));
  const record = argv[0] === 'record';
  const top = argv[0] === 'top';
  const serve = argv[0] === 'serve';
  if (record || top || serve) argv = argv.slice(1);
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        ...(record
          ? ({
              rate: { type: 'string' },
              duration: { type: 'string' },
              output: { type: 'string', short: 'o' },
              format: { type: 'string' },
              instant: { type: 'string' },
              cpu: { type: 'boolean' },
              'off-cpu': { type: 'boolean' },
              'stack-bytes': { type: 'string' },
              'no-lua': { type: 'boolean' },
              'min-block': { type: 'string' },
            } as const)
          : {}),
        ...(top ? { sort: { type: 'string' } } as const : {}),
        pid: { type: 'string', short: 'p' },
        core: { type: 'string' },
        exe: { type: 'string' },
        struct: { type: 'string', short: 's' },
        view: { type: 'string' },
        addr: { type: 'string' },
        json: { type: 'boolean' },
        interval: { type: 'string' },
        count: { type: 'string' },
        'max-nodes': { type: 'string' },
        'max-bytes': { type: 'string' },
        pack: { type: 'string' },
        source: { type: 'string' },
        consistency: { type: 'string' },
        retries: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
        nice: { type: 'string' },
        list: { type: 'boolean' },
        version: { type: 'boolean', short: 'V' },
        help: { type: 'boolean', short: 'h' },
        ...(serve ? { listen: { type: 'string' }, struct: { type: 'string', short: 's', multiple: true } } as const : {}),
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError(ambiguous(argv, (err as Error).message) ?? (err as Error).message.split('\n')[0]);
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  intOption(values.nice, '--nice'); // applied by the launcher (bin/xsample.ts) before this loads; checked here
  if (values.list) return { list: true, pack: values.pack };
  const source = values.source;
  if (source !== undefined && source !== 'pvr' && source !== 'procmem') throw new UsageError(`--source is pvr or procmem, not '${source}'`);
  const consistency = values.consistency ?? 'verify';
  if (consistency !== 'verify' && consistency !== 'off') throw new UsageError(`--consistency is verify or off, not '${consistency}'`);
  const pids = pidList(values.pid);
  const interval = intOption(values.interval, '--interval');
  const count = intOption(values.count, '--count');
  if (serve) return serveOptions(values as typeof values & { listen?: string; struct?: string[] }, pids, source, consistency, intOption(values.interval, '--interval'));
  const o: SampleOptions = {
    pids,
    core: values.core,
    exe: values.exe,
    view: (values.struct as string | undefined) ?? values.view ?? '',
    addr: values.addr,
    json: values.json ?? false,
    interval: interval ?? 1000,
    // --interval alone samples until Ctrl-C.
    count: count ?? (interval !== undefined ? Infinity : 1),
    ...limitsAndReading(values, source, consistency),
  };
  if ((o.pids === undefined) === (o.core === undefined)) throw new UsageError('give one of --pid PID or --core FILE');
  if (record && ((values as { cpu?: boolean }).cpu !== undefined || (values as { 'off-cpu'?: boolean })['off-cpu'] !== undefined)) return cpuOptions(o, values, interval, count);
  if (o.exe && !o.core) throw new UsageError('--exe goes with --core');
  if (!o.view) throw new UsageError('which view? --struct VIEW (xsample --list shows them)');
  if (o.core && (o.count > 1 || interval !== undefined)) throw new UsageError('a core does not change: --count and --interval need --pid');
  if (top) {
    if (o.core) throw new UsageError('a core does not change: top needs --pid (xsample --core FILE --struct VIEW prints it once)');
    if (values.json) throw new UsageError('top is a table for people: for JSON, xsample --interval MS --json');
    return { ...o, interval: interval ?? 1000, count: count ?? Infinity, sort: (values as { sort?: string }).sort ?? null } satisfies TopOptions;
  }
  if (!record) return o;
  if (o.core) throw new UsageError('a core does not change: record needs --pid');
  if (interval !== undefined || count !== undefined || values.json) throw new UsageError('record samples at --rate for --duration, and writes one file: not --interval, --count or --json');
  const format = (values as { format?: string }).format;
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format is ${FORMATS.join(', ')}, not '${format}'`);
  const out = (values as { output?: string }).output ?? null;
  const instant = (values as { instant?: string }).instant ?? 'auto';
  if (!(INSTANT_MODES as readonly string[]).includes(instant)) throw new UsageError(`--instant is ${INSTANT_MODES.join(', ')}, not '${instant}'`);
  return {
    ...o,
    rate: intOption((values as { rate?: string }).rate, '--rate') ?? 10,
    duration: intOption((values as { duration?: string }).duration, '--duration') ?? Infinity,
    out: out === '-' ? null : out,
    format: (format as Format | undefined) ?? null,
    instant: instant as InstantMode,
  } satisfies RecordOptions;
}

/** record --cpu / --off-cpu: whole stacks, no view. */
function cpuOptions(o: SampleOptions, values: Record<string, unknown>, interval: number | undefined, count: number | undefined): CpuRecordOptions {
  const v = values as { cpu?: boolean; 'off-cpu'?: boolean; 'stack-bytes'?: string; 'no-lua'?: boolean; 'min-block'?: string; rate?: string; duration?: string; output?: string; format?: string; instant?: string; json?: boolean };
  if (v.cpu && v['off-cpu']) throw new UsageError('--cpu or --off-cpu, not both (record them one after the other)');
  if (o.core) throw new UsageError('a core has one stack per thread, not samples: record --cpu needs --pid');
  if (o.view) throw new UsageError(`--${v.cpu ? 'cpu' : 'off-cpu'} records whole stacks, not a view: leave out --struct`);
  if (interval !== undefined || count !== undefined || v.json) throw new UsageError('record samples at --rate for --duration, and writes one file: not --interval, --count or --json');
  if (v.instant !== undefined) throw new UsageError('--instant is for views; --cpu stacks are always taken at the instant');
  const format = v.format;
  if (format !== undefined && !(FORMATS as readonly string[]).includes(format)) throw new UsageError(`--format is ${FORMATS.join(', ')}, not '${format}'`);
  const stackBytes = intOption(v['stack-bytes'], '--stack-bytes') ?? DEFAULT_STACK_BYTES;
  if (stackBytes % 8 !== 0) throw new UsageError(`--stack-bytes takes a multiple of 8, not '${v['stack-bytes']}'`);
  const rate = intOption(v.rate, '--rate') ?? DEFAULT_CPU_HZ;
  if (v['off-cpu'] && v.rate !== undefined) throw new UsageError('--off-cpu takes a sample at every switch: --rate is for --cpu');
  if (v.cpu && v['min-block'] !== undefined) throw new UsageError('--min-block is for --off-cpu');
  const out = v.output ?? null;
  return {
    ...o,
    mode: v.cpu ? 'cpu' : 'off-cpu',
    rate,
    duration: intOption(v.duration, '--duration') ?? Infinity,
    out: out === '-' ? null : out,
    format: (format as Format | undefined) ?? null,
    stackBytes,
    interpreted: !v['no-lua'],
    minBlockUs: intOption(v['min-block'], '--min-block') ?? 0,
  };
}

type Common = { pack?: string; verbose?: boolean; retries?: string; 'max-nodes'?: string; 'max-bytes'?: string };

/** What every command takes alike: the bounds of a sample, how memory is read and checked, which pack. */
function limitsAndReading(values: Common, source: SampleOptions['source'], consistency: SampleOptions['consistency']) {
  return {
    maxNodes: intOption(values['max-nodes'], '--max-nodes') ?? DEFAULT_LIMITS.maxNodes,
    maxBytes: byteOption(values['max-bytes']) ?? 512 * MiB,
    pack: values.pack,
    source,
    verbose: values.verbose ?? false,
    consistency,
    retries: intOption(values.retries, '--retries') ?? 3,
  };
}

function serveOptions(values: Common & { listen?: string; struct?: string[]; core?: string; json?: boolean; count?: string; addr?: string }, pids: number[] | undefined, source: 'pvr' | 'procmem' | undefined, consistency: 'verify' | 'off', interval: number | undefined): ServeOptions {
  if (!pids) throw new UsageError('serve reads live processes: give --pid PID');
  if (values.core || values.json || values.count || values.addr) throw new UsageError('serve answers scrapes of live processes: not --core, --json, --count or --addr');
  const listen = values.listen ?? '127.0.0.1:9464';
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen takes HOST:PORT (127.0.0.1:9464, [::1]:9464), not '${listen}'`);
  return {
    pids,
    view: '',
    json: false,
    interval: interval ?? 1000,
    count: Infinity,
    ...limitsAndReading(values, source, consistency),
    views: values.struct ?? [],
    host: m[1] ?? m[2],
    port,
  };
}

function listViews(packName?: string): string {
  const names = packName ? [packName] : listPacks();
  const out: string[] = [];
  for (const n of names) {
    let pack: PackIR;
    try {
      pack = loadPack(n);
    } catch (err) {
      // A broken pack is listed as broken; the others still are.
      if (packName || !(err instanceof SchemaError || err instanceof UserError)) throw err;
      out.push(`${n}: cannot be loaded: ${err.message}`);
      continue;
    }
    out.push(`${pack.name}: ${pack.doc}`);
    for (const v of pack.views.values()) out.push(`  ${v.name.padEnd(22)} ${v.doc}`);
    for (const f of pack.flamegraphs.values()) out.push(`  ${f.name.padEnd(22)} (a flame graph of ${f.views.join(', ')}: xsample record) ${f.doc}`);
    for (const p of pack.probes.values()) out.push(`  ${p.name.padEnd(22)} (a probe at ${p.object ? `${p.object}:` : ''}${p.function}(): xsample trace) ${p.doc}`);
  }
  return out.join('\n');
}

/**
 * --no-fetch, taken out before the command's own options are parsed (as --nice is read by the launcher): it is
 * the same for every command that reads a process.
 */
export function takeNoFetch(argv: string[]): { fetch: boolean; rest: string[] } {
  const rest = argv.filter((a) => a !== '--no-fetch');
  return { fetch: rest.length === argv.length, rest };
}

/** The live processes a parsed command reads (none for a core, --list, help). */
function pidsOf(o: Parsed): number[] {
  if (typeof o !== 'object' || 'list' in o) return [];
  if ('trace' in o) return o.trace.pids;
  return o.pids ?? [];
}

export async function main(argv: string[], print = (s: string) => console.log(s), warn = (s: string) => console.error(s)): Promise<number> {
  onUntrustedPack((m) => warn(`xsample: ${m}`));
  onSymbolTableWarning((m) => warn(`xsample: ${m}`));
  try {
    const { fetch, rest } = takeNoFetch(argv);
    const o = parseOptions(rest);
    const pids = pidsOf(o);
    if (pids.length > 0) await recoverStripped(pids, { fetch, pack: typeof o === 'object' && 'trace' in o ? o.trace.pack : (o as { pack?: string }).pack, warn });
    if (o === 'help') {
      print(USAGE);
      return 0;
    }
    if (o === 'version') {
      print(versionLine('xsample'));
      return 0;
    }
    if ('list' in o) {
      print(listViews(o.pack));
      return 0;
    }
    if ('trace' in o) return await traceAll(o.trace, print, warn);
    if ('mode' in o) return await recordCpu(o, print, warn);
    if ('rate' in o) return await recordAll(o, print, warn);
    if ('sort' in o) return await topAll(o, print, warn);
    if ('views' in o) return await serveAll(o, warn);
    return await sampleAll(o, print, warn);
  } catch (err) {
    if (err instanceof UsageError) {
      warn(`xsample: ${err.message}\n(xsample --help for usage)`);
      return 2;
    }
    if (err instanceof UserError || err instanceof TargetGone || err instanceof SchemaError || err instanceof WalkError) {
      warn(`xsample: ${printableLines(err.message)}`);
      return 1;
    }
    if (process.env.XWALK_DEBUG) throw err;
    warn(`xsample: internal error: ${(err as Error).message} (set XWALK_DEBUG=1 for a stack trace, and please report it)`);
    return 1;
  }
}
