/**
 * xsample: walk a live process's structures without stopping it, or a core.
 */
import { parseArgs } from 'node:util';
import { SchemaError, type PackIR } from '../generators/ir.ts';
import { checkPointerExpr } from '../generators/schema.ts';
import type { Runtime } from './compile.ts';
import { formatMoves, formatText, type Titled } from './format-text.ts';
import { TargetGone, UserError } from './memory.ts';
import { listPacks, loadPack, selectPack } from './pack-select.ts';
import { Snapshot } from './snapshot.ts';
import { openCore, openLive, type Target } from './target.ts';
import { runView } from './view-run.ts';
import { DEFAULT_LIMITS, WalkError } from './walk-error.ts';

const USAGE = `usage: xsample --pid PID --struct VIEW [options]
       xsample --core FILE [--exe BINARY] --struct VIEW [options]
       xsample --list [--pack NAME]

Walks the data structures of a running process without stopping it: memory is
read with process_vm_readv (or /proc/PID/mem), never ptrace, never SIGSTOP.
The same views work on a core file.

  --pid PID          the process to read (a worker, for nginx)
  --core FILE        read a core dump instead; --exe names its executable when
                     the path recorded in the core is not right
  --struct VIEW      the view to print (xsample --list shows them), e.g. ngx_pool
  --addr EXPR        only the item at EXPR (an address, or an expression such as
                     ngx_cycle.pool) instead of every item the roots reach
  --json             print JSON: {view, pid, pack, release, build_id, items,
                     partial, errors}; one object per line with --count
  --interval MS      with --count: sample every MS milliseconds (default 1000)
  --count K          sample K times and print how the figures moved
  --max-nodes N      most elements one walk may visit (default ${DEFAULT_LIMITS.maxNodes})
  --pack NAME        the pack to use (default: the one that knows the binary)
  --source KIND      pvr (process_vm_readv, default) or procmem (/proc/PID/mem)
  --nice N           run at this nice level (default 19; 0 to keep yours), so the
                     target wins the CPU whenever both want it
  --verbose          print read statistics to stderr
  --help             this text

Exit status: 0 ok, 1 error, 2 bad usage, 3 partial result (some structure could
not be read consistently: the errors say where).`;

class UsageError extends Error {}

interface Options {
  pid?: number;
  core?: string;
  exe?: string;
  view?: string;
  addr?: string;
  json: boolean;
  interval: number;
  count: number;
  maxNodes: number;
  pack?: string;
  source?: 'pvr' | 'procmem';
  verbose: boolean;
  list: boolean;
  nice: number;
}

function intOption(v: string | undefined, name: string, min: number): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${name} needs a whole number${min > 0 ? ` ≥ ${min}` : ''}, not '${v}'`);
  return Number(v);
}

function parseOptions(argv: string[]): Options | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
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
        pack: { type: 'string' },
        source: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
        nice: { type: 'string' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message.split("\n")[0]);
  }
  if (values.help) return 'help';
  const source = values.source;
  if (source !== undefined && source !== 'pvr' && source !== 'procmem') throw new UsageError(`--source is pvr or procmem, not '${source}'`);
  const o: Options = {
    pid: intOption(values.pid, '--pid', 1),
    core: values.core,
    exe: values.exe,
    view: values.struct ?? values.view,
    addr: values.addr,
    json: values.json ?? false,
    interval: intOption(values.interval, '--interval', 1) ?? 1000,
    count: intOption(values.count, '--count', 1) ?? 1,
    maxNodes: intOption(values['max-nodes'], '--max-nodes', 1) ?? DEFAULT_LIMITS.maxNodes,
    pack: values.pack,
    source,
    verbose: values.verbose ?? false,
    list: values.list ?? false,
    nice: intOption(values.nice, '--nice', 0) ?? 19, // applied at start-up by nice-now.ts; checked here
  };
  if (o.nice > 19) throw new UsageError(`--nice goes from 0 to 19, not ${o.nice}`);
  if (o.list) return o;
  if ((o.pid === undefined) === (o.core === undefined)) throw new UsageError('give one of --pid PID or --core FILE');
  if (o.exe && !o.core) throw new UsageError('--exe goes with --core');
  if (!o.view) throw new UsageError('which view? --struct VIEW (xsample --list shows them)');
  if (o.core && o.count > 1) throw new UsageError('a core does not change: --count needs --pid');
  return o;
}

function listViews(packName?: string): string {
  const names = packName ? [packName] : listPacks();
  const out: string[] = [];
  for (const n of names) {
    const pack = loadPack(n);
    out.push(`${pack.name}: ${pack.doc}`);
    for (const v of pack.views.values()) out.push(`  ${v.name.padEnd(22)} ${v.doc}`);
  }
  return out.join('\n');
}

function viewOf(pack: PackIR, name: string) {
  const view = pack.views.get(name);
  if (!view) throw new UserError(`pack ${pack.name} has no view '${name}' (views: ${[...pack.views.keys()].join(', ')})`);
  return view;
}

async function sample(o: Options, print: (s: string) => void, warn: (s: string) => void): Promise<number> {
  const target: Target = o.core ? openCore(o.core, o.exe) : openLive(o.pid!, o.source);
  try {
    const sel = await selectPack(target.exe, target.exeName, target.buildId, { pack: o.pack, onDerive: (m) => warn(`xsample: ${m}`) });
    const view = viewOf(sel.pack, o.view!);
    const addr = o.addr ? checkPointerExpr(sel.pack, view.of, o.addr) : undefined;
    const limits = { maxNodes: o.maxNodes, maxTotal: o.maxNodes * 10 };
    let first: Titled | null = null;
    let last: Titled | null = null;
    const start = Date.now();
    for (let i = 0; i < o.count; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, o.interval));
      const snap = new Snapshot(target.source, target.ranges());
      const rt: Runtime = { snap, layout: sel.layout, symbols: target.symbols, limits, visited: 0 };
      const t0 = performance.now();
      const r = runView(view, rt, addr);
      const ms = performance.now() - t0;
      const result: Titled = { view: view.name, pid: target.pid, pack: sel.pack.name, release: sel.release, build_id: target.buildId, ...r };
      if (o.verbose) {
        const rss = (process.resourceUsage().maxRSS / 1024).toFixed(0);
        warn(`xsample: ${view.name}: ${rt.visited} elements, ${snap.stats.reads} reads, ${snap.stats.pages} pages, ${(snap.stats.bytes / 1024).toFixed(0)} KiB in ${ms.toFixed(1)} ms, peak RSS ${rss} MiB (${target.source.description}; layout ${sel.layout.source})`);
      }
      if (o.json) print(JSON.stringify(o.count > 1 ? { ...result, sample: i, t_ms: Date.now() - start } : result));
      else print((o.count > 1 ? `-- sample ${i + 1}/${o.count} at ${((Date.now() - start) / 1000).toFixed(1)} s\n` : '') + formatText(result));
      first ??= result;
      last = result;
    }
    if (o.count > 1 && !o.json) print(formatMoves(first!.items, last!.items, (Date.now() - start) / 1000));
    if (last!.partial) {
      const e = last!.errors[0];
      warn(`xsample: partial result: ${[e.root && `root ${e.root}`, e.item, e.column].filter(Boolean).join(' ')}: ${e.message}${last!.errors.length > 1 ? ` (and ${last!.errors.length - 1} more)` : ''}`);
      return 3;
    }
    return 0;
  } finally {
    target.close();
  }
}

export async function main(argv: string[], print = (s: string) => console.log(s), warn = (s: string) => console.error(s)): Promise<number> {
  try {
    const o = parseOptions(argv);
    if (o === 'help') {
      print(USAGE);
      return 0;
    }
    if (o.list) {
      print(listViews(o.pack));
      return 0;
    }
    return await sample(o, print, warn);
  } catch (err) {
    if (err instanceof UsageError) {
      warn(`xsample: ${err.message}\n(xsample --help for usage)`);
      return 2;
    }
    if (err instanceof UserError || err instanceof TargetGone || err instanceof SchemaError || err instanceof WalkError) {
      warn(`xsample: ${err.message}`);
      return 1;
    }
    if (process.env.XWALK_DEBUG) throw err;
    warn(`xsample: internal error: ${(err as Error).message} (set XWALK_DEBUG=1 for a stack trace, and please report it)`);
    return 1;
  }
}
