/**
 * make bench, the Lua heap part (issue 22): what the heap views cost on a heap of about a million objects
 * (Debian's nginx with the Lua module, a module's memo of URIs filled by requests, as test/lua-retention.test.ts
 * plants it): wall time, elements visited and xsample's peak RSS of one sample of lua_objects, lua_tables (its
 * held_by walks the heap once), lua_references (recorded, one sample) and lua_held_by of the memo; and gdb's
 * lua-objects on the same worker (Python, the process stopped meanwhile).
 */
import { execa } from 'execa';
import path from 'node:path';
import { gdb } from '../test/lib/debuggers.ts';
import { writeShop } from '../test/lib/lua-shop.ts';
import { DEBIAN_NGINX, startNginx } from '../test/lib/nginx.ts';
import { xsampleBin } from '../test/lib/xsample.ts';
import { log, median } from './report-log.ts';

export interface HeapRun {
  what: string;
  seconds: number[];
  elements: number;
  rssMiB: number;
  complete: boolean;
}

export interface HeapResult {
  objects: number;
  gcBytes: number;
  runs: HeapRun[];
  gdbSeconds: number | null;
}


/** One xsample run under /usr/bin/time: its wall time, --verbose's elements, its peak RSS, whether complete. */
async function timed(args: string[]): Promise<{ seconds: number; elements: number; rssMiB: number; complete: boolean }> {
  const t0 = performance.now();
  const r = await execa('/usr/bin/time', ['-f', 'rss %M', process.execPath, xsampleBin, ...args, '--verbose'], { reject: false, all: false });
  const seconds = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0 && r.exitCode !== 3) throw new Error(`xsample ${args.join(' ')} failed: ${r.stderr.slice(-500)}`);
  return {
    seconds,
    elements: Number(/: (\d+) elements/.exec(r.stderr)?.[1] ?? NaN),
    rssMiB: Number(/rss (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1024,
    complete: r.exitCode === 0,
  };
}

export async function luaHeap(work: string, rounds = 3): Promise<HeapResult> {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  try {
    writeShop(nginx.dir);
    const get = async (p: string) => (await (await fetch(`http://127.0.0.1:${nginx.port}${p}`)).text()).trim();
    // 500000 URIs, each a key and a page: a million strings in one table, and the requests' own garbage collected.
    for (let i = 0; i < 10; i++) await get(`/lua/retain/leak?from=b${i}&n=50000`);
    const memo = await get('/lua/retain/leak?from=last&n=1');
    const gcBytes = Number(await get('/lua/retain/quiet'));
    const pid = String(nginx.workerPid);
    const counts = JSON.parse((await execa(process.execPath, [xsampleBin, '--pid', pid, '--struct', 'lua_objects', '--json'])).stdout).items[0];
    const objects = ['strings', 'tables', 'functions', 'protos', 'threads', 'upvalues', 'userdata', 'cdata', 'traces'].reduce((n, k) => n + Number(counts[k] ?? 0), 0);
    log(`lua heap: ${objects} objects, ${gcBytes} bytes (collectgarbage)`);
    const addr = /0x[0-9a-f]+/.exec(memo)?.[0] ?? '0';
    const cases: [string, string[]][] = [
      ['lua_objects', ['--pid', pid, '--struct', 'lua_objects']],
      ['lua_tables (held_by: a reach a sample)', ['--pid', pid, '--struct', 'lua_tables']],
      ['lua_held_by --addr (the memo)', ['--pid', pid, '--struct', 'lua_held_by', '--addr', addr]],
      ['lua_references (record, 1 sample)', ['record', '--pid', pid, '--struct', 'lua_references', '--rate', '1', '--duration', '1', '-o', path.join(work, 'refs.folded')]],
    ];
    const runs: HeapRun[] = [];
    for (const [what, args] of cases) {
      const one: HeapRun = { what, seconds: [], elements: 0, rssMiB: 0, complete: true };
      for (let i = 0; i < rounds; i++) {
        const r = await timed(args);
        one.seconds.push(r.seconds);
        one.elements = r.elements;
        one.rssMiB = Math.max(one.rssMiB, r.rssMiB);
        one.complete &&= r.complete;
      }
      log(`lua heap: ${what}: ${median(one.seconds).toFixed(2)} s, ${one.elements} elements, ${one.rssMiB.toFixed(0)} MiB`);
      runs.push(one);
    }
    let gdbSeconds: number | null = null;
    try {
      const t0 = performance.now();
      const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-objects --json']);
      gdbSeconds = g.json[0]?.items ? (performance.now() - t0) / 1000 : null;
    } catch (err) {
      log(`lua heap: gdb lua-objects failed: ${(err as Error).message.slice(0, 200)}`);
    }
    return { objects, gcBytes, runs, gdbSeconds };
  } finally {
    await nginx.stop();
  }
}

export function luaHeapSection(r: HeapResult | undefined): string {
  if (!r) return '';
  return `
## Lua heap views on a million objects

Debian's nginx with the Lua module; a module's memo of 500000 URIs filled by requests (each a key and a page:
${r.objects} objects in all, ${(r.gcBytes / 1e6).toFixed(1)} MB by \`collectgarbage("count")\`), the collector
stopped after a full cycle so that every run reads the same heap. Wall time of one xsample run (its start
included; the median of ${r.runs[0]?.seconds.length ?? 0}), the elements its walks visited (\`--verbose\`) and its
peak RSS. The goal of issue 22: a heap view of a 1M-object heap in 2 s or less.

| view | wall time (median) | each run | elements | peak RSS | complete |
|---|---:|---|---:|---:|---|
${r.runs.map((x) => `| ${x.what} | ${median(x.seconds).toFixed(2)} s | ${x.seconds.map((s) => s.toFixed(2)).join(', ')} | ${x.elements} | ${x.rssMiB.toFixed(0)} MiB | ${x.complete ? 'yes' : 'no'} |`).join('\n')}

gdb's \`lua-objects\` (the generated Python extension, the worker stopped while it reads) on the same heap:
${r.gdbSeconds === null ? 'did not finish' : `${r.gdbSeconds.toFixed(1)} s`}.
`;
}
