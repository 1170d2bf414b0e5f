/**
 * What every xsample command parses alike: the option table they share,
 * number and size options with their ranges, pid lists, parseArgs's errors
 * said as what the option needs, and the command a parser returns (one
 * tagged union: main switches on command, never on which fields exist).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { CpuRecordOptions } from '../fullstack/cpu-recording.ts';
import { DEFAULT_LIMITS } from '../memory/walk-error.ts';
import type { RecordOptions } from '../outputs/recording.ts';
import type { ServeOptions } from '../outputs/serve.ts';
import type { TopOptions } from '../outputs/top.ts';
import type { TraceOptions } from '../outputs/trace.ts';
import type { ReadOptions, SampleOptions } from '../sampling/sampling.ts';

/** A parsed command line: what to run, with its own options. */
export type Command =
  | { command: 'help' }
  | { command: 'version' }
  | { command: 'list'; pack?: string }
  | { command: 'show'; options: SampleOptions }
  | { command: 'record'; options: RecordOptions }
  | { command: 'record-cpu'; options: CpuRecordOptions }
  | { command: 'top'; options: TopOptions }
  | { command: 'serve'; options: ServeOptions }
  | { command: 'trace'; options: TraceOptions };

/** Bad usage: exit status 2, and a pointer to --help. */
export class UsageError extends Error {}

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

export function intOption(v: string | undefined, name: keyof typeof RANGES): number | undefined {
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

export function pidList(v: string | undefined): number[] | undefined {
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

/** argv parsed against a command's option table: options only, no positionals; an error is bad usage. */
export function parseTable<const O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new UsageError(ambiguous(argv, (err as Error).message) ?? (err as Error).message.split('\n')[0]);
  }
}

/** The options the plain command, record, top and serve all take (serve's --struct is repeated; the others add theirs). */
export const SHARED = {
  pid: { type: 'string', short: 'p' },
  core: { type: 'string' },
  exe: { type: 'string' },
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
} as const;

/** --struct VIEW, once: the view a command reads. */
export const STRUCT = { struct: { type: 'string', short: 's' } } as const;

/** What SHARED parses into. */
export type SharedValues = ReturnType<typeof parseTable<typeof SHARED>>;

/** The shared options read once, in the order their errors are said; or the command --help, --version or --list stands for. */
export type Shared = { early: Command } | Read;

/** The shared options, checked: the number options the commands use apart, and read() for what they use alike. */
export interface Read {
  early: null;
  pids?: number[];
  interval?: number;
  count?: number;
  read: () => ReadOptions;
}

export function sharedOf(values: SharedValues): Shared {
  if (values.help) return { early: { command: 'help' } };
  if (values.version) return { early: { command: 'version' } };
  intOption(values.nice, '--nice'); // applied by the launcher (bin/xsample.ts) before this loads; checked here
  if (values.list) return { early: { command: 'list', pack: values.pack } };
  const source = values.source;
  if (source !== undefined && source !== 'pvr' && source !== 'procmem') throw new UsageError(`--source is pvr or procmem, not '${source}'`);
  const consistency = values.consistency ?? 'verify';
  if (consistency !== 'verify' && consistency !== 'off') throw new UsageError(`--consistency is verify or off, not '${consistency}'`);
  const pids = pidList(values.pid);
  const interval = intOption(values.interval, '--interval');
  const count = intOption(values.count, '--count');
  /** What every command takes alike: the bounds of a sample, how memory is read and checked, which pack. */
  const read = (): ReadOptions => ({
    pids,
    core: values.core,
    exe: values.exe,
    addr: values.addr,
    maxNodes: intOption(values['max-nodes'], '--max-nodes') ?? DEFAULT_LIMITS.maxNodes,
    maxBytes: byteOption(values['max-bytes']) ?? 512 * MiB,
    pack: values.pack,
    source,
    verbose: values.verbose ?? false,
    consistency,
    retries: intOption(values.retries, '--retries') ?? 3,
  });
  return { early: null, pids, interval, count, read };
}

/**
 * The plain command's options (also where top and record start): one view, once or every --interval; then
 * one of --pid or --core.
 */
export function sampleOptionsOf(values: SharedValues & { struct?: string }, s: Read): SampleOptions {
  const view = values.struct ?? values.view ?? '';
  const o: SampleOptions = {
    ...s.read(),
    view,
    wants: view ? [view] : undefined,
    json: values.json ?? false,
    interval: s.interval ?? 1000,
    // --interval alone samples until Ctrl-C.
    count: s.count ?? (s.interval !== undefined ? Infinity : 1),
  };
  if ((o.pids === undefined) === (o.core === undefined)) throw new UsageError('give one of --pid PID or --core FILE');
  return o;
}

/** What a command that reads one view needs: the view, --exe only with --core, and a core sampled once. */
export function checkView(o: SampleOptions, s: Read): void {
  if (o.exe && !o.core) throw new UsageError('--exe goes with --core');
  if (!o.view) throw new UsageError('which view? --struct VIEW (xsample --list shows them)');
  if (o.core && (o.count > 1 || s.interval !== undefined)) throw new UsageError('a core does not change: --count and --interval need --pid');
}
