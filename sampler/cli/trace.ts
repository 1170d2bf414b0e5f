/** xsample trace --pid PID --probe NAME [--duration S] [--json] [--verbose] [--pack NAME] [--max-nodes N]: a probe's calls counted in the kernel. */
import { DEFAULT_LIMITS } from '../memory/walk-error.ts';
import { type Command, intOption, parseTable, pidList, SHARED, UsageError } from './options.ts';

export function parseTrace(argv: string[]): Command {
  const values = parseTable(argv, {
    pid: SHARED.pid,
    probe: { type: 'string' },
    duration: { type: 'string' },
    json: SHARED.json,
    verbose: SHARED.verbose,
    pack: SHARED.pack,
    'max-nodes': SHARED['max-nodes'],
    nice: SHARED.nice,
    help: SHARED.help,
  });
  if (values.help) return { command: 'help' };
  intOption(values.nice, '--nice');
  const pids = pidList(values.pid);
  if (!pids) throw new UsageError('trace reads live processes: give --pid PID');
  if (!values.probe) throw new UsageError('which probe? --probe NAME (xsample --list shows them)');
  return {
    command: 'trace',
    options: {
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
