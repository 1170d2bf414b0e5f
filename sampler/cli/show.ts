/** xsample --pid PID[,PID...] --struct VIEW / xsample --core FILE --struct VIEW: the plain command, and --list, --help, --version. */
import { checkView, type Command, parseTable, SHARED, sampleOptionsOf, sharedOf, STRUCT } from './options.ts';

export function parseShow(argv: string[]): Command {
  const values = parseTable(argv, { ...SHARED, ...STRUCT });
  const s = sharedOf(values);
  if (s.early) return s.early;
  const o = sampleOptionsOf(values, s);
  checkView(o, s);
  return { command: 'show', options: o };
}
