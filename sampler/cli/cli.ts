/**
 * xsample: walk a live process's structures without stopping it, or a core.
 * The first word names the command (record, top, serve, trace; none: the
 * plain one); each has its own parser (cli/<command>.ts) and returns a
 * tagged Command, which main runs.
 */
import { type PackIR, SchemaError } from '../../generators/ir.ts';
import { printableLines, versionLine } from '../../generators/schema.ts';
import { onUntrustedPack } from '../../core/packs.ts';
import { TargetGone, UserError } from '../memory/memory.ts';
import { onSymbolTableWarning } from '../memory/recovered-symbols.ts';
import { WalkError } from '../memory/walk-error.ts';
import { listPacks, loadPack, recoverStripped } from '../sampling/pack-select.ts';
import { sampleAll } from '../outputs/show.ts';
import { type Command, UsageError } from './options.ts';
import { parseRecord } from './record.ts';
import { parseServe } from './serve.ts';
import { parseShow } from './show.ts';
import { parseTop } from './top.ts';
import { parseTrace } from './trace.ts';
import { USAGE } from './usage.ts';

/** The command line parsed by its command's parser. */
export function parseCommand(argv: string[]): Command {
  switch (argv[0]) {
    case 'trace':
      return parseTrace(argv.slice(1));
    case 'record':
      return parseRecord(argv.slice(1));
    case 'top':
      return parseTop(argv.slice(1));
    case 'serve':
      return parseServe(argv.slice(1));
    default:
      return parseShow(argv);
  }
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

/** The live processes a command reads (none for a core, --list, help), the pack it was told to use, and the views it names. */
function targetsOf(c: Command): { pids: number[]; pack?: string; wants?: string[] } {
  switch (c.command) {
    case 'help':
    case 'version':
    case 'list':
      return { pids: [] };
    default:
      return { pids: c.options.pids ?? [], pack: c.options.pack, wants: 'wants' in c.options ? c.options.wants : undefined };
  }
}

async function run(c: Command, print: (s: string) => void, warn: (s: string) => void): Promise<number> {
  switch (c.command) {
    case 'help':
      print(USAGE);
      return 0;
    case 'version':
      print(versionLine('xsample'));
      return 0;
    case 'list':
      print(listViews(c.pack));
      return 0;
    case 'show':
      return await sampleAll(c.options, print, warn);
    case 'record':
      return await (await import('../outputs/recording.ts')).recordAll(c.options, print, warn);
    case 'record-cpu':
      return await (await import('../fullstack/cpu-recording.ts')).recordCpu(c.options, print, warn);
    case 'top':
      return await (await import('../outputs/top.ts')).topAll(c.options, print, warn);
    case 'serve':
      // Loaded only here: prom-client costs every other command its start-up.
      return await (await import('../outputs/serve.ts')).serveAll(c.options, warn);
    case 'trace':
      return await (await import('../outputs/trace.ts')).traceAll(c.options, print, warn);
  }
}

export async function main(argv: string[], print = (s: string): void => void process.stdout.write(`${s}\n`), warn = (s: string) => console.error(s)): Promise<number> {
  onUntrustedPack((m) => warn(`xsample: ${m}`));
  onSymbolTableWarning((m) => warn(`xsample: ${m}`));
  try {
    const { fetch, rest } = takeNoFetch(argv);
    const c = parseCommand(rest);
    const { pids, pack, wants } = targetsOf(c);
    if (pids.length > 0) await recoverStripped(pids, { fetch, pack, warn, wants });
    return await run(c, print, warn);
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
