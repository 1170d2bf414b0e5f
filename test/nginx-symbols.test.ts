/**
 * Debian's stripped nginx names its static functions: `xgen symbols --for
 * /usr/sbin/nginx` recovers a table (a debug nginx built from Debian's
 * nearest reachable source, configured as the executable says, matched
 * function by function unless it is a twin), and then xsample, gdb and lldb
 * name every phase handler of Debian's worker that our -g build names for
 * the same modules (ngx_http_realip_handler, not nginx+0x...). Each name is
 * checked against the file itself: a function of the file starts at the
 * table's address of the name (an FDE of its .eh_frame, readelf says).
 *
 * The debug nginx (a few minutes) is kept in build/symbols-cache between
 * runs; on a clean clone the test builds it there.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { SYMBOLS_BUILDS } from './lib/memcached.ts';
import { DEBIAN_NGINX, startNginx } from './lib/nginx.ts';
import { root } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

t.setTimeout(3_600_000);
const cache = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-nginx-symbols-'));
t.teardown(() => fs.rmSync(cache, { recursive: true, force: true }));
const env = { XDG_CACHE_HOME: cache };

type Row = Record<string, unknown>;
const handlerNames = (rows: Row[]) => rows.map((r) => String(r.handler));

async function fdeStarts(file: string): Promise<Set<number>> {
  const { stdout } = await execa('readelf', ['--debug-dump=frames', file], { maxBuffer: 256 * 1024 * 1024 });
  return new Set([...stdout.matchAll(/ FDE cie=\w+ pc=([0-9a-f]+)\.\./g)].map((m) => Number.parseInt(m[1], 16)));
}


t.test("Debian's nginx: xgen symbols recovers its statics, and every phase handler our -g build names is named in xsample, gdb and lldb", async (t) => {
  fs.mkdirSync(SYMBOLS_BUILDS, { recursive: true, mode: 0o700 });
  const made = await execa(process.execPath, [path.join(root, 'dist/xgen.js'), 'symbols', '--json', '--for', DEBIAN_NGINX], {
    env: { ...env, XWALK_SYMBOLS_BUILDS: SYMBOLS_BUILDS },
    reject: false,
    stderr: 'inherit',
  });
  t.equal(made.exitCode, 0, 'xgen symbols --for /usr/sbin/nginx succeeds');
  const report = JSON.parse(made.stdout) as { method: string; matched?: number; total?: number; where: string };
  t.ok(['rebuild', 'matched'].includes(report.method), `made by ${report.method}`);
  if (report.method === 'matched') t.ok(report.matched! / report.total! > 0.9, `most of the debug build's names placed: ${report.matched} of ${report.total}`);
  const table = JSON.parse(fs.readFileSync(report.where, 'utf8')) as { symbols: { name: string; value: number }[] };
  const addressOf = new Map(table.symbols.map((s) => [s.name, s.value]));

  const ours = await startNginx();
  t.teardown(() => ours.stop());
  const debian = await startNginx({ binary: DEBIAN_NGINX });
  t.teardown(() => debian.stop());
  const want = (await xsample(['--pid', String(ours.workerPid), '--struct', 'ngx_phase_handlers', '--json'])).json.items as Row[];
  const got = (await xsample(['--pid', String(debian.workerPid), '--struct', 'ngx_phase_handlers', '--json'], { env })).json.items as Row[];

  const named = new Set(handlerNames(got));
  t.same(
    handlerNames(got).filter((h) => /^(nginx\+)?0x/.test(h) || h.startsWith('nginx+')),
    [],
    `no handler of Debian's executable is an address: ${handlerNames(got).join(', ')}`,
  );
  for (const h of new Set(handlerNames(want))) t.ok(named.has(h), `${h}, named by our -g build, is named on Debian's too`);

  // Each name is where the worker points and where a function of the file starts.
  const fdes = await fdeStarts(DEBIAN_NGINX);
  for (const h of [...named].filter((n) => n !== 'NULL')) {
    const at = addressOf.get(h);
    t.ok(at !== undefined && fdes.has(at), `${h} is at 0x${at?.toString(16)} in the table, where a function of ${DEBIAN_NGINX} starts`);
  }

  const g = await gdb({ pid: debian.workerPid }, 'nginx', ['ngx-phase-handlers --json'], { env });
  const l = await lldb({ pid: debian.workerPid }, 'nginx', ['ngx-phase-handlers --json'], { env });
  t.same(g.json[0]?.items, got, `gdb names them alike: ${g.stderr.slice(-300)}`);
  t.same(l.json[0]?.items, got, `lldb names them alike: ${l.stderr.slice(-300)}`);
});
