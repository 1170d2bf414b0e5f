/**
 * xsample record --pid PID --struct VIEW [--rate HZ] [--duration S] [-o FILE] [--format F] [--instant MODE]:
 * a view sampled at a rate, written as a flame graph's input or a summary of its columns; and
 * xsample record --pid PID --cpu|--off-cpu: whole stacks, no view.
 */
import { DEFAULT_CPU_HZ, DEFAULT_STACK_BYTES } from '../fullstack/cpu-recording.ts';
import { type Format, FORMATS, INSTANT_MODES, type InstantMode } from '../outputs/recording.ts';
import type { SampleOptions } from '../sampling/sampling.ts';
import { checkView, type Command, intOption, parseTable, type Read, SHARED, sampleOptionsOf, sharedOf, STRUCT, UsageError } from './options.ts';

const RECORD = {
  ...SHARED,
  ...STRUCT,
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
} as const;

type RecordValues = ReturnType<typeof parseTable<typeof RECORD>>;

export function parseRecord(argv: string[]): Command {
  const values = parseTable(argv, RECORD);
  const s = sharedOf(values);
  if (s.early) return s.early;
  const o = sampleOptionsOf(values, s);
  if (values.cpu !== undefined || values['off-cpu'] !== undefined) return cpuCommand(o, values, s);
  checkView(o, s);
  if (o.core) throw new UsageError('a core does not change: record needs --pid');
  if (s.interval !== undefined || s.count !== undefined || values.json) throw new UsageError('record samples at --rate for --duration, and writes one file: not --interval, --count or --json');
  const format = formatOf(values.format);
  const instant = values.instant ?? 'auto';
  if (!isInstantMode(instant)) throw new UsageError(`--instant is ${INSTANT_MODES.join(', ')}, not '${instant}'`);
  return {
    command: 'record',
    options: {
      ...o,
      rate: intOption(values.rate, '--rate') ?? 10,
      duration: intOption(values.duration, '--duration') ?? Infinity,
      out: outOf(values.output),
      format,
      instant,
    },
  };
}

/** record --cpu / --off-cpu: whole stacks, no view. */
function cpuCommand(o: SampleOptions, v: RecordValues, s: Read): Command {
  if (v.cpu && v['off-cpu']) throw new UsageError('--cpu or --off-cpu, not both (record them one after the other)');
  if (o.core) throw new UsageError('a core has one stack per thread, not samples: record --cpu needs --pid');
  if (o.view) throw new UsageError(`--${v.cpu ? 'cpu' : 'off-cpu'} records whole stacks, not a view: leave out --struct`);
  if (s.interval !== undefined || s.count !== undefined || v.json) throw new UsageError('record samples at --rate for --duration, and writes one file: not --interval, --count or --json');
  if (v.instant !== undefined) throw new UsageError('--instant is for views; --cpu stacks are always taken at the instant');
  const format = formatOf(v.format);
  const stackBytes = intOption(v['stack-bytes'], '--stack-bytes') ?? DEFAULT_STACK_BYTES;
  if (stackBytes % 8 !== 0) throw new UsageError(`--stack-bytes takes a multiple of 8, not '${v['stack-bytes']}'`);
  const rate = intOption(v.rate, '--rate') ?? DEFAULT_CPU_HZ;
  if (v['off-cpu'] && v.rate !== undefined) throw new UsageError('--off-cpu takes a sample at every switch: --rate is for --cpu');
  if (v.cpu && v['min-block'] !== undefined) throw new UsageError('--min-block is for --off-cpu');
  return {
    command: 'record-cpu',
    options: {
      ...o,
      mode: v.cpu ? 'cpu' : 'off-cpu',
      rate,
      duration: intOption(v.duration, '--duration') ?? Infinity,
      out: outOf(v.output),
      format,
      stackBytes,
      interpreted: !v['no-lua'],
      minBlockUs: intOption(v['min-block'], '--min-block') ?? 0,
    },
  };
}

const isFormat = (f: string): f is Format => (FORMATS as readonly string[]).includes(f);
const isInstantMode = (m: string): m is InstantMode => (INSTANT_MODES as readonly string[]).includes(m);

/** --format F: one of FORMATS, or null (then -o's name or the view's shape decides). */
function formatOf(format: string | undefined): Format | null {
  if (format === undefined) return null;
  if (!isFormat(format)) throw new UsageError(`--format is ${FORMATS.join(', ')}, not '${format}'`);
  return format;
}

/** -o FILE; none or -: stdout. */
const outOf = (out: string | undefined): string | null => (out === undefined || out === '-' ? null : out);
