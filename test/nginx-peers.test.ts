/**
 * Every connection has its peer, every timer its owner, every request its query string, and nginx's own
 * counters give rates - judged by what the test did and by truths that share nothing with the pack: a
 * proxy_pass to an upstream server of the test's own that reads the request and never answers holds the
 * request in flight; the kernel (/proc/PID/net/tcp) says each of the worker's sockets' peers; the upstream
 * server says from which port nginx came; stub_status counts the requests the test sent. On our two builds
 * and on Debian's nginx, xsample live and on a core, gdb and lldb agreeing.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import { createInterface } from 'node:readline';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb, type Where } from './lib/debuggers.ts';
import { buildNginx, freePort, httpGet, startNginx, waitUntil } from './lib/nginx.ts';
import { tcpPeersByFd } from './lib/proc-sockets.ts';
import { steady, xsample, xsampleBin } from './lib/xsample.ts';
import type { LayoutFile } from '../generators/layout.ts';
import { lowerView } from '../generators/lower/lower.ts';
import { loadSchema } from '../printers/checked-schema.ts';
import { BoundLayout } from '../sampler/sampling/bound-layout.ts';
import { compileView } from '../printers/js.ts';
import { runView } from '../sampler/sampling/view-run.ts';
import { Snapshot } from '../sampler/memory/snapshot.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import { FakeMemory } from './lib/fake-memory.ts';
import { root } from './lib/walkee.ts';

type Row = Record<string, string | number | null>;

/** A TCP server that accepts, reads what comes, and never answers: an upstream that holds its requests. */
async function silentUpstream(): Promise<{ port: number; requests: { from: number; text: string }[]; close(): Promise<void> }> {
  const port = await freePort();
  const requests: { from: number; text: string }[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    const seen = { from: s.remotePort ?? 0, text: '' };
    s.on('data', (b) => {
      if (seen.text === '') requests.push(seen);
      seen.text += b.toString('latin1');
    });
    s.on('error', () => { /* nginx resets it at shutdown */ });
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** stub_status's counters, the second truth of ngx_status. */
async function stubStatus(port: number): Promise<{ active: number; accepted: number; handled: number; requests: number }> {
  const body = (await httpGet(port, '/status')).body;
  const m = /^Active connections: (\d+)\s*\nserver accepts handled requests\n\s*(\d+) (\d+) (\d+)/.exec(body);
  if (!m) throw new Error(`not a stub_status answer: ${body}`);
  return { active: Number(m[1]), accepted: Number(m[2]), handled: Number(m[3]), requests: Number(m[4]) };
}

const LONG_ARGS = Array.from({ length: 300 }, (_, i) => `k${i}=v${i}`).join('&'); // 2 280 bytes, more than the 1 024 shown
const ARGS = 'x=1&y=two%20words&z';

const BUILDS: [string, () => Promise<string>][] = [
  ['our -g build', () => buildNginx()],
  ['our v2debug build', () => buildNginx('v2debug')],
  ["Debian's stripped nginx", async () => '/usr/sbin/nginx'],
];

for (const [build, binaryOf] of BUILDS) t.test(`peers, owners, query strings and counters: ${build}`, async (t) => {
  const upstream = await silentUpstream();
  t.teardown(() => upstream.close());
  const locations = `
        location /up/ {
            proxy_pass http://127.0.0.1:${upstream.port};
            proxy_read_timeout 600s;
        }`;
  const nginx = await startNginx({ binary: await binaryOf(), locations });
  t.teardown(() => nginx.stop());
  const pid = nginx.workerPid;
  const view = async (name: string, where: string[] = ['--pid', String(pid)]): Promise<{ items: Row[]; json: Record<string, unknown> }> => {
    const r = await xsample([...where, '--struct', name, '--json']);
    t.equal(r.code, 0, `${name}: ${r.stderr}`);
    t.equal(r.json?.partial, false, `${name}: whole ${JSON.stringify(r.json?.errors ?? r.stderr)}`);
    return { items: r.json?.items ?? [], json: r.json };
  };

  // ---- rates: N requests between two samples of ngx_status move its counters by exactly N
  const N = 7;
  const s0 = await stubStatus(nginx.port);
  const [before] = (await view('ngx_status')).items;
  t.equal(before.requests, s0.requests, 'ngx_status counts the requests stub_status counted (its own answer included)');
  t.equal(before.accepted, s0.accepted, 'and the connections accepted');
  for (let i = 0; i < N; i++) await httpGet(nginx.port, '/');
  const [after] = (await view('ngx_status')).items;
  t.equal((after.requests as number) - (before.requests as number), N, `${N} requests sent: requests moved by ${N}`);
  t.equal((after.accepted as number) - (before.accepted as number), N, `${N} connections (no keep-alive): accepted moved by ${N}`);
  t.equal((after.handled as number) - (before.handled as number), N, 'and handled');
  const s1 = await stubStatus(nginx.port);
  t.equal(s1.requests, (after.requests as number) + 1, 'stub_status, asked after, counts one more: its own request');
  t.equal(s1.accepted, (after.accepted as number) + 1, 'and its own connection');

  // ---- two requests held by the upstream: one with a query string, one with a long one
  const sentAt = Date.now();
  const held = [httpGet(nginx.port, `/up/a?${ARGS}`, { timeoutMs: 0 }), httpGet(nginx.port, `/up/b?${LONG_ARGS}`, { timeoutMs: 0 })];
  for (const h of held) h.catch(() => { /* ended by nginx's shutdown */ });
  await waitUntil('the upstream has read both requests', () => upstream.requests.filter((r) => r.text.includes('\r\n\r\n')).length === 2);

  const kernel = tcpPeersByFd(pid);
  const conns = (await view('ngx_connections')).items;
  const up = conns.filter((c) => c.kind === 'upstream');
  t.equal(up.length, 2, 'two upstream connections');
  for (const c of up) {
    t.equal(c.peer, `127.0.0.1:${upstream.port}`, `fd ${c.fd}: the upstream's address and port`);
    t.equal(c.peer, kernel.get(c.fd as number)?.remote, `fd ${c.fd}: the kernel's peer of that fd`);
    const local = kernel.get(c.fd as number)?.local ?? '';
    t.ok(upstream.requests.some((r) => local === `127.0.0.1:${r.from}`), `fd ${c.fd}: the upstream saw nginx come from ${local}`);
  }
  t.same(up.map((c) => c.uri).sort(), ['/up/a', '/up/b'], 'each upstream connection names its request\'s uri');
  const clients = conns.filter((c) => c.kind === 'client');
  t.equal(clients.length, 2, 'the two clients');
  for (const c of clients) t.equal(c.peer, kernel.get(c.fd as number)?.remote, `client fd ${c.fd}: the kernel's peer`);
  for (const c of up) t.ok(clients.some((k) => k.request === c.request && k.uri === c.uri), `${c.uri}: its client connection serves the same request`);
  t.equal(conns.length, 4, 'nothing else');

  const reqs = (await view('ngx_requests')).items;
  t.same(reqs.map((r) => r.uri).sort(), ['/up/a', '/up/b'], 'each request once (not again for its upstream connection)');
  const byUri = Object.fromEntries(reqs.map((r) => [r.uri, r]));
  t.equal(byUri['/up/a'].args, ARGS, 'the query string, as sent');
  t.equal(byUri['/up/b'].args, `${LONG_ARGS.slice(0, 1024)}...`, 'a long one cut at 1024 bytes, marked');
  for (const c of up) t.equal(c.request, byUri[c.uri as string].addr, `${c.uri}: the upstream connection's request is the request`);

  const timers = (await view('ngx_timers')).items;
  for (const c of up) {
    const mine = timers.filter((x) => x.fd === c.fd);
    t.equal(mine.length, 1, `${c.uri}: its upstream connection's read timer (proxy_read_timeout)`);
    t.equal(mine[0]?.owner, `upstream 127.0.0.1:${upstream.port}`, `${c.uri}: the timer's owner`);
    t.equal(mine[0]?.uri, c.uri, `${c.uri}: the timer's request`);
    const left = mine[0]?.left_ms as number;
    t.ok(left <= 600_000 && left >= 600_000 - (Date.now() - sentAt) - 1000, `${c.uri}: ${left} ms left of proxy_read_timeout's 600 s, ${Date.now() - sentAt} ms after the request`);
  }
  for (const x of timers) if (x.fd === -1) t.equal(x.owner, 'unknown', `timer ${x.addr}: not a connection's, its owner unknown`);

  // ---- every back end: gdb and lldb on the live worker, xsample on its core and the debuggers too
  const VIEWS = ['ngx_connections', 'ngx_requests', 'ngx_timers', 'ngx_status'];
  const commands = VIEWS.map((v) => `${v.replaceAll('_', '-')} --json`);
  const live = await Promise.all(VIEWS.map(async (v) => (await xsample(['--pid', String(pid), '--struct', v, '--json'])).json));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-peers-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await execa('gcore', ['-o', path.join(dir, 'core'), String(pid)], { stdio: 'ignore' });
  const core = path.join(dir, `core.${pid}`);
  const onCore = await Promise.all(VIEWS.map(async (v) => (await view(v, ['--core', core, '--exe', nginx.binary])).json));
  // what moves with the clock between two reads (age_ms, left_ms, a wait's " left N ms") set aside
  const rows = (j: Record<string, unknown>, _v: string) => (j.items as Row[]).map((r) => steady(r));
  VIEWS.forEach((v, i) => t.same(rows(onCore[i], v), rows(live[i], v), `${v}: the core says what the live worker said`));
  const wheres: [string, Where][] = [['live', { pid }], ['core', { core, exe: nginx.binary }]];
  for (const [what, where] of wheres) {
    const want = what === 'live' ? live : onCore;
    const g = await gdb(where, 'nginx', commands);
    const l = await lldb(where, 'nginx', commands);
    VIEWS.forEach((v, i) => {
      t.same(g.json[i] && rows(g.json[i], v), rows(want[i], v), `${v}: gdb says what xsample says (${what}) ${g.stderr.slice(-300)}`);
      t.same(l.json[i] && rows(l.json[i], v), rows(want[i], v), `${v}: lldb says what xsample says (${what}) ${l.stderr.slice(-300)}`);
    });
  }
});

/** The value of one series of an exposition, by name and labels. */
const series = (text: string, name: string, labels: string): number | undefined => {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
};

for (const [build, binaryOf] of [BUILDS[0], BUILDS[2]]) t.test(`top shows nginx's counters per second, serve as Prometheus counters: ${build}`, async (t) => {
  const nginx = await startNginx({ binary: await binaryOf() });
  t.teardown(() => nginx.stop());
  const pid = String(nginx.workerPid);
  const N = 9;

  // top: N requests between its two refreshes move requests by exactly N, and its rate is N over the seconds between them
  const top = execa(process.execPath, [xsampleBin, 'top', '--pid', pid, '--struct', 'ngx_status', '--count', '2', '--interval', '1500'], { reject: false, stdin: 'ignore' });
  const lines: string[] = [];
  const firstShown = new Promise<number>((resolve) => {
    createInterface({ input: top.stdout! }).on('line', (l) => {
      lines.push(l);
      if (/^cycle\s/.test(l) && lines.filter((x) => /^cycle\s/.test(x)).length === 1) resolve(performance.now());
    });
  });
  const shownAt = await firstShown;
  for (let i = 0; i < N; i++) await httpGet(nginx.port, '/');
  const r = await top;
  const elapsed = (performance.now() - shownAt) / 1000;
  t.equal(r.exitCode, 0, r.stderr);
  const [head, cols, ...rest] = lines.join('\n').trim().split('\n\n')[1].split('\n');
  t.match(head, /^xsample top: ngx_status \(nginx 1\.22\.1, pid \d+\): 1 item, refresh 2/);
  const names = cols.replace('↓', '').trim().split(/\s{2,}/);
  t.same(names.slice(0, 7), ['ORIGIN', 'ACCEPTED', 'ACCEPTED/S', 'HANDLED', 'HANDLED/S', 'REQUESTS', 'REQUESTS/S'], 'each counter followed by its rate');
  const cells = rest[0].trim().split(/\s{2,}/);
  const at = (c: string) => cells[names.indexOf(c)];
  t.match(at('REQUESTS'), new RegExp(`^\\d+ \\(\\+${N}\\)$`), `${N} requests between the refreshes: ${at('REQUESTS')}`);
  t.match(at('ACCEPTED'), new RegExp(`^\\d+ \\(\\+${N}\\)$`), `and ${N} connections`);
  const rate = Number(at('REQUESTS/S'));
  t.ok(rate >= N / elapsed - 0.05 && rate <= N / 1.5 + 0.05, `the rate, ${rate}/s, is ${N} over the time between the samples (at least the 1.5 s interval, at most the ${elapsed.toFixed(2)} s the test saw)`);

  // serve: a counter of nginx's own total, which moves by exactly the requests sent between two scrapes
  const child = execa(process.execPath, [xsampleBin, 'serve', '--listen', '127.0.0.1:0', '--pid', pid, '--struct', 'ngx_status', '--interval', '100'], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
  t.teardown(() => child.kill('SIGKILL'));
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      const m = /at (http:\/\/[^ ]+:\d+\/metrics); Ctrl-C to stop$/.exec(l);
      if (m) resolve(m[1]);
    });
    void child.then(() => reject(new Error('xsample serve ended')));
  });
  const labels = `pid="${pid}",root="cycle"`;
  const scrape = async () => (await fetch(url)).text();
  const one = await scrape();
  t.match(one, /^# TYPE xwalk_ngx_status_requests_total counter$/m, 'requests is a counter');
  t.match(one, /^# TYPE xwalk_ngx_status_active gauge$/m, 'active a gauge');
  const s0 = await stubStatus(nginx.port);
  let text = '';
  await waitUntil('serve has sampled again', async () => {
    text = await scrape();
    return series(text, 'xwalk_ngx_status_requests_total', labels) === s0.requests;
  });
  for (let i = 0; i < N; i++) await httpGet(nginx.port, '/');
  await waitUntil('serve has sampled after the requests', async () => {
    text = await scrape();
    return series(text, 'xwalk_ngx_status_requests_total', labels) !== s0.requests;
  });
  t.equal(series(text, 'xwalk_ngx_status_requests_total', labels), s0.requests + N, `${N} requests after stub_status answered ${s0.requests}: the counter says ${s0.requests} + ${N}`);
  t.equal(series(text, 'xwalk_ngx_status_accepted_total', labels), s0.accepted + N, 'and accepted');
  const check = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
  t.notMatch(check.stdout + check.stderr, /error/i, `promtool reads it ${check.stdout}${check.stderr}`);
});

t.test("a timer nginx's structures do not tie to a connection is unknown, never a wrong owner: Lua's ngx.sleep on Debian's nginx", async (t) => {
  const nginx = await startNginx({ binary: '/usr/sbin/nginx', lua: true });
  t.teardown(() => nginx.stop());
  const sentAt = Date.now();
  const sleeping = httpGet(nginx.port, '/lua/sleep?s=300', { timeoutMs: 0 });
  sleeping.catch(() => { /* ended by nginx's shutdown */ });
  // one worker, one event at a time: when stub_status answers with 2 writing, the sleeping request has run into ngx.sleep
  await waitUntil('nginx writes the sleeping request and the status request', async () => /Writing: 2 /.test((await httpGet(nginx.port, '/status')).body));
  const pid = String(nginx.workerPid);
  const r = await xsample(['--pid', pid, '--struct', 'ngx_timers', '--json']);
  t.equal(r.json?.partial, false, r.stderr);
  const timers: Row[] = r.json?.items ?? [];
  const since = Date.now() - sentAt;
  const sleep = timers.filter((x) => (x.left_ms as number) >= 300_000 - since - 1000 && (x.left_ms as number) <= 300_000);
  t.equal(sleep.length, 1, `the 300 s sleep's timer, ${since} ms after the request: ${JSON.stringify(timers)}`);
  t.same({ fd: sleep[0]?.fd, owner: sleep[0]?.owner, request: sleep[0]?.request, uri: sleep[0]?.uri }, { fd: -1, owner: 'unknown', request: '0x0', uri: '' }, 'its event is a coroutine context\'s, not a connection\'s: unknown');
  const conns = (await xsample(['--pid', pid, '--struct', 'ngx_connections', '--json'])).json?.items as Row[];
  const client = conns.filter((c) => c.uri === '/lua/sleep');
  t.equal(client.length, 1, 'the sleeping request\'s connection');
  t.equal(client[0]?.kind, 'client');
  t.equal(client[0]?.peer, tcpPeersByFd(nginx.workerPid).get(client[0]?.fd as number)?.remote, 'its peer, the kernel\'s');
});

t.test('a build without stub_status: its layout has no ngx_stat_*, ngx_status is partial and says why, every other view compiles', async (t) => {
  const pack = loadSchema(path.join(root, 'packs/nginx/schema.yaml'));
  const file = JSON.parse(fs.readFileSync(path.join(root, 'packs/nginx/1.22.1/7ddc1f5e464093ec04624ef3b61e1a673338861a.json'), 'utf8')) as LayoutFile;
  for (const g of Object.keys(file.globals)) if (g.startsWith('ngx_stat_')) delete file.globals[g];
  const layout = BoundLayout.bind(pack, file, 'a layout without the counters');
  const snap = new Snapshot(new FakeMemory(), []);
  // no symbol either: the build has no ngx_stat_accepted
  const R = new WalkRuntime(snap, new SymbolTable([], 0), { maxNodes: 1000, maxTotal: 10000 });
  const r = runView(compileView(lowerView(pack.views.get('ngx_status')!), layout, R));
  t.same(r.items, [], 'no row');
  t.same(r.errors.map((e) => e.message), ['the symbol ngx_stat_accepted is not in the binary\'s symbol tables'], 'partial, and why');
  for (const v of pack.views.values()) {
    if (v.name.startsWith('lua_')) continue;
    t.doesNotThrow(() => compileView(lowerView(v), layout, R), `${v.name} compiles`);
  }
  const lacking = { ...file, globals: Object.fromEntries(Object.entries(file.globals).filter(([g]) => g !== 'ngx_cycle')) };
  t.throws(() => BoundLayout.bind(pack, lacking, 'a layout without ngx_cycle'), /lacks ngx_cycle: the schema changed/, 'a global not optional is still required');
});
