/** xsample top --pid PID --struct VIEW [--sort COLUMN] [--interval MS] [--count K]: a view as a live table. */
import { checkView, type Command, parseTable, SHARED, sampleOptionsOf, sharedOf, STRUCT, UsageError } from './options.ts';

export function parseTop(argv: string[]): Command {
  const values = parseTable(argv, { ...SHARED, ...STRUCT, sort: { type: 'string' } });
  const s = sharedOf(values);
  if (s.early) return s.early;
  const o = sampleOptionsOf(values, s);
  checkView(o, s);
  if (o.core) throw new UsageError('a core does not change: top needs --pid (xsample --core FILE --struct VIEW prints it once)');
  if (values.json) throw new UsageError('top is a table for people: for JSON, xsample --interval MS --json');
  return { command: 'top', options: { ...o, interval: s.interval ?? 1000, count: s.count ?? Infinity, sort: values.sort ?? null } };
}
