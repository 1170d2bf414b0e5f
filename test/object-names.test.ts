/**
 * Never a bare address where an object is known: Debian's stripped nginx
 * with lua-nginx-module loaded, a request parked in ngx.sleep. Its timer's
 * handler is the module's static sleep handler, which no symbol names: it
 * prints as `ngx_http_lua_module.so+0xVADDR`, and the phase engine's
 * handlers of the stripped executable as `nginx+0xVADDR`. Each VADDR is
 * checked against the files themselves, with binutils: a function pointer
 * points at a function's first instruction, so VADDR is where one of the
 * file's .eh_frame FDEs starts (readelf), and the bytes the file holds
 * there (through its PT_LOAD, readelf -l) are the bytes the worker has at
 * the address (/proc/PID/mem). xsample live and on a core, gdb and lldb
 * live and on the core print the same text.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { DEBIAN_NGINX, startNginx, waitUntil } from './lib/nginx.ts';
import { xsample } from './lib/xsample.ts';

const LUA_MODULE = /^ngx_http_lua_module\.so\+0x([0-9a-f]+)$/;
const IN_OBJECT = /^([^+\s]+)\+0x([0-9a-f]+)$/;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-object-names-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;

/** Where the FDEs of a file's .eh_frame start (link-time addresses), as readelf reads them. */
async function fdeStarts(file: string): Promise<Set<bigint>> {
  const { stdout } = await execa('readelf', ['--debug-dump=frames', file], { maxBuffer: 256 * 1024 * 1024 });
  return new Set([...stdout.matchAll(/ FDE cie=\w+ pc=([0-9a-f]+)\.\./g)].map((m) => BigInt(`0x${m[1]}`)));
}

/** The PT_LOAD segments of a file, as readelf -l lists them. */
async function loads(file: string): Promise<{ offset: bigint; vaddr: bigint; filesz: bigint }[]> {
  const { stdout } = await execa('readelf', ['-lW', file]);
  return [...stdout.matchAll(/^\s*LOAD\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+0x[0-9a-f]+\s+0x([0-9a-f]+)/gm)].map((m) => ({ offset: BigInt(`0x${m[1]}`), vaddr: BigInt(`0x${m[2]}`), filesz: BigInt(`0x${m[3]}`) }));
}

/** The bytes the file holds at link-time address vaddr, through its PT_LOADs. */
function fileBytesAt(file: string, segments: { offset: bigint; vaddr: bigint; filesz: bigint }[], vaddr: bigint, n: number): Buffer | null {
  const seg = segments.find((s) => s.vaddr <= vaddr && vaddr + BigInt(n) <= s.vaddr + s.filesz);
  if (!seg) return null;
  const fd = fs.openSync(file, 'r');
  try {
    const out = Buffer.alloc(n);
    fs.readSync(fd, out, 0, n, Number(seg.offset + (vaddr - seg.vaddr)));
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

/** Where the kernel mapped the file's first page (the mapping of file offset 0), from /proc/PID/maps. */
function firstPage(pid: number, file: string): bigint {
  const line = fs
    .readFileSync(`/proc/${pid}/maps`, 'utf8')
    .split('\n')
    .find((l) => l.endsWith(` ${file}`) && l.split(/\s+/)[2] === '00000000');
  if (!line) throw new Error(`${file} is not mapped at offset 0 in ${pid}`);
  return BigInt(`0x${line.split('-')[0]}`);
}

function memAt(pid: number, addr: bigint, n: number): Buffer {
  const fd = fs.openSync(`/proc/${pid}/mem`, 'r');
  try {
    const out = Buffer.alloc(n);
    fs.readSync(fd, out, 0, n, addr);
    return out;
  } finally {
    fs.closeSync(fd);
  }
}

const noPid = (rows: Row[]) => rows.map(({ pid: _, ...rest }) => rest);
const handlers = (rows: Row[]) => rows.map((r) => r.handler);

t.test("a handler in Debian's stripped lua-nginx-module prints as ngx_http_lua_module.so+0xVADDR, a true address in that file, the same in xsample, gdb and lldb, live and on a core", async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const parked = new AbortController();
  t.teardown(() => parked.abort());
  void fetch(`http://127.0.0.1:${nginx.port}/lua/sleep?s=120`, { signal: parked.signal }).catch(() => {});
  const pid = nginx.workerPid;
  let timers: Row[] = [];
  await waitUntil('the request sleeps on a timer of the Lua module', async () => {
    timers = (await xsample(['--pid', String(pid), '--struct', 'ngx_timers', '--json'])).json.items as Row[];
    return timers.some((r) => LUA_MODULE.test(String(r.handler)));
  });
  const sleep = timers.find((r) => LUA_MODULE.test(String(r.handler)))!;
  t.notOk(
    timers.some((r) => /^0x/.test(String(r.handler))),
    `no timer's handler is a bare address: ${handlers(timers).join(', ')}`,
  );

  // The module the worker maps, read through the worker (the path may name another file by now: not in a test).
  const module = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').match(/ (\/\S*\/ngx_http_lua_module\.so)$/m)?.[1];
  t.ok(module, 'the worker maps lua-nginx-module');
  const vaddr = BigInt(`0x${LUA_MODULE.exec(String(sleep.handler))![1]}`);
  t.ok((await fdeStarts(module!)).has(vaddr), `0x${vaddr.toString(16)} is where a function of ${module} starts (an FDE of its .eh_frame begins there, readelf says)`);
  const segments = await loads(module!);
  const bias = firstPage(pid, module!) - (segments[0].vaddr - (segments[0].vaddr % 4096n));
  const inFile = fileBytesAt(module!, segments, vaddr, 32);
  t.ok(inFile, 'the file holds bytes at that address');
  t.same(memAt(pid, bias + vaddr, 32), inFile, "and they are the worker's bytes at the address the module was loaded at plus 0x" + vaddr.toString(16));

  const phases = (await xsample(['--pid', String(pid), '--struct', 'ngx_phase_handlers', '--json'])).json.items as Row[];
  const exeFdes = await fdeStarts(DEBIAN_NGINX);
  const exeSegments = await loads(DEBIAN_NGINX);
  const exeBias = firstPage(pid, DEBIAN_NGINX) - (exeSegments[0].vaddr - (exeSegments[0].vaddr % 4096n));
  const unnamed = phases.map((r) => String(r.handler)).filter((h) => h.startsWith('nginx+'));
  t.ok(unnamed.length > 0, `the stripped executable's static phase handlers: ${handlers(phases).join(', ')}`);
  t.notOk(
    phases.some((r) => /^0x/.test(String(r.handler)) || /^0x/.test(String(r.checker))),
    'no phase handler or checker is a bare address',
  );
  for (const h of new Set(unnamed)) {
    const a = BigInt(`0x${IN_OBJECT.exec(h)![2]}`);
    t.ok(exeFdes.has(a), `${h}: a function of ${DEBIAN_NGINX} starts there`);
    t.same(memAt(pid, exeBias + a, 16), fileBytesAt(DEBIAN_NGINX, exeSegments, a, 16), `${h}: the file's bytes there are the worker's`);
  }

  // The worker is idle but for its sleeping request: the phase engine and the timer's handler hold still.
  const g = await gdb({ pid }, 'nginx', ['ngx-phase-handlers --json', 'ngx-timers --json']);
  const l = await lldb({ pid }, 'nginx', ['ngx-phase-handlers --json', 'ngx-timers --json']);
  t.same(g.json[0]?.items, phases, `gdb on the live worker names the phase handlers alike: ${g.stderr.slice(-300)}`);
  t.same(l.json[0]?.items, phases, `lldb on the live worker too: ${l.stderr.slice(-300)}`);
  t.same(handlers((g.json[1]?.items ?? []) as Row[]), handlers(timers), 'gdb names the timers’ handlers alike');
  t.same(handlers((l.json[1]?.items ?? []) as Row[]), handlers(timers), 'lldb too');

  const prefix = path.join(dir, 'core');
  await execa('gcore', ['-o', prefix, String(pid)], { stdio: 'ignore' });
  const core = `${prefix}.${pid}`;
  const corePhases = (await xsample(['--core', core, '--struct', 'ngx_phase_handlers', '--json'])).json.items as Row[];
  const coreTimers = (await xsample(['--core', core, '--struct', 'ngx_timers', '--json'])).json.items as Row[];
  t.same(noPid(corePhases), noPid(phases), 'xsample on a core of the worker');
  t.same(handlers(coreTimers), handlers(timers), "and the timer's handler");
  for (const [name, run] of [
    ['gdb', gdb],
    ['lldb', lldb],
  ] as const) {
    const c = await run({ core, exe: DEBIAN_NGINX }, 'nginx', ['ngx-phase-handlers --json', 'ngx-timers --json']);
    t.same(noPid((c.json[0]?.items ?? []) as Row[]), noPid(phases), `${name} on the core: ${c.stderr.slice(-300)}`);
    t.same(handlers((c.json[1]?.items ?? []) as Row[]), handlers(timers), `${name} on the core: the timer's handler`);
  }
});
