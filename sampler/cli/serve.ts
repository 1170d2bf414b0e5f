/** xsample serve --pid PID [--struct VIEW]... [--listen HOST:PORT] [--interval MS]: Prometheus metrics of views. */
import { type Command, parseTable, SHARED, sharedOf, UsageError } from './options.ts';

export function parseServe(argv: string[]): Command {
  const values = parseTable(argv, { ...SHARED, listen: { type: 'string' }, struct: { type: 'string', short: 's', multiple: true } });
  const s = sharedOf(values);
  if (s.early) return s.early;
  if (!s.pids) throw new UsageError('serve reads live processes: give --pid PID');
  if (values.core || values.json || values.count || values.addr) throw new UsageError('serve answers scrapes of live processes: not --core, --json, --count or --addr');
  const listen = values.listen ?? '127.0.0.1:9464';
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:\s]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen takes HOST:PORT (127.0.0.1:9464, [::1]:9464), not '${listen}'`);
  return {
    command: 'serve',
    options: { ...s.read(), interval: s.interval ?? 1000, views: values.struct ?? [], wants: values.struct?.length ? values.struct : undefined, host: m[1] ?? m[2], port },
  };
}
