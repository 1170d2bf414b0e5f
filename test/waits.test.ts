/**
 * What each request waits on (issue 23): lua_requests names a coroutine's pending operation (a cosocket's
 * connect, send or receive, ngx.sleep, a semaphore, a light thread), its peer, the bytes sent and the time left
 * on its timer; ngx_requests names a proxy_pass upstream's peer and state. Each is checked against what the
 * test itself did (the listener it runs counts the bytes it got, and knows when; the timeouts are the test's own),
 * on Debian's nginx with lua-nginx-module and, for proxy_pass, on our -g build too; gdb and lldb say the same,
 * live and on a core.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { buildNginx, DEBIAN_NGINX, type Nginx, startNginx, waitUntil } from './lib/nginx.ts';
import { tcpPeersByFd } from './lib/proc-sockets.ts';
import { steady, xsample } from './lib/xsample.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-waits-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;

/** A proxy_pass to the port the request names, with a read timeout of 90 s (the default is 60). */
const PROXY_READ_TIMEOUT = 90_000;
const PROXY = `
        location = /proxy { proxy_pass http://127.0.0.1:$arg_port; proxy_read_timeout ${PROXY_READ_TIMEOUT / 1000}s; }
`;

/** A listener that accepts and never answers; it counts what each connection sent it, and when the last bytes came. */
async function silentPeer(t: Test) {
  const conns: { socket: net.Socket; bytes: number; lastAt: number }[] = [];
  const server = net.createServer((socket) => {
    const c = { socket, bytes: 0, lastAt: 0 };
    conns.push(c);
    socket.on('data', (d) => {
      c.bytes += d.length;
      c.lastAt = Date.now();
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const c of conns) c.socket.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, conns };
}

/** A request that runs until the test ends. */
function park(t: Test, nginx: Nginx, urlPath: string): number {
  const parked = new AbortController();
  t.teardown(() => parked.abort());
  const at = Date.now();
  void fetch(`http://127.0.0.1:${nginx.port}${urlPath}`, { signal: parked.signal }).catch(() => {});
  return at;
}

/** A view's rows, read while the test's clock is read just before and just after. */
async function sample(pid: number, view: string): Promise<{ rows: Row[]; before: number; after: number }> {
  const before = Date.now();
  const r = await xsample(['--pid', String(pid), '--struct', view, '--json']);
  const after = Date.now();
  return { rows: (r.json?.items ?? []) as Row[], before, after };
}

const allSteady = (rows: Row[]) => rows.map(steady);

/**
 * Whether `left` (ms) is within 1 s of the truth: a timer of `timeoutMs` armed between `armedFrom` and
 * `armedBy` (the test's clock), read between `before` and `after`.
 */
function near(t: Test, left: number, timeoutMs: number, armedFrom: number, armedBy: number, s: { before: number; after: number }, what: string) {
  const lo = armedFrom + timeoutMs - s.after;
  const hi = armedBy + timeoutMs - s.before;
  t.ok(left >= lo - 1000 && left <= hi + 1000, `${what}: ${left} ms left, the truth ${lo}..${hi} ms (a ${timeoutMs} ms timer armed at ${armedBy - armedFrom} ms from the request's start)`);
}

/** gdb and lldb on the live worker, then xsample, gdb and lldb on a core of it: each says the same rows. */
async function everyReader(t: Test, nginx: Nginx, view: string, exe: string, live: Row[]) {
  const cmd = `${view.replaceAll('_', '-')} --json`;
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', [cmd]);
  const l = await lldb({ pid: nginx.workerPid }, 'nginx', [cmd]);
  t.same(allSteady((g.json[0]?.items ?? []) as Row[]), allSteady(live), `gdb on the live worker: ${g.stderr.slice(-300)}`);
  t.same(allSteady((l.json[0]?.items ?? []) as Row[]), allSteady(live), `lldb on the live worker: ${l.stderr.slice(-300)}`);
  const prefix = path.join(dir, `core-${view}-${path.basename(exe)}`);
  await execa('gcore', ['-o', prefix, String(nginx.workerPid)], { stdio: 'ignore' });
  const core = `${prefix}.${nginx.workerPid}`;
  const fromCore = (await xsample(['--core', core, '--struct', view, '--json'])).json.items as Row[];
  t.same(allSteady(fromCore), allSteady(live), 'xsample on a core of the worker');
  const gc = await gdb({ core, exe }, 'nginx', [cmd]);
  const lc = await lldb({ core, exe }, 'nginx', [cmd]);
  // On a core the clock is nginx's own, frozen: the three readers of one core agree to the millisecond.
  const exact = (rows: Row[]) => rows.map(({ pid: _, ...rest }) => rest);
  t.same(exact((gc.json[0]?.items ?? []) as Row[]), exact(fromCore), `gdb on the core, to the ms: ${gc.stderr.slice(-300)}`);
  t.same(exact((lc.json[0]?.items ?? []) as Row[]), exact(fromCore), `lldb on the core, to the ms: ${lc.stderr.slice(-300)}`);
  fs.rmSync(core, { force: true });
  return fromCore;
}

t.test('lua_requests: a cosocket receive from a peer that never answers - the operation, the peer, the bytes sent, the time left; gdb and lldb agree, live and on a core', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const peer = await silentPeer(t);
  const timeout = 120_000;
  const start = park(t, nginx, `/lua/cosocket?port=${peer.port}&t=${timeout}`);
  await waitUntil('the peer got the 10 bytes the handler sends', async () => peer.conns[0]?.bytes === 10);
  let s = await sample(nginx.workerPid, 'lua_requests');
  await waitUntil('the request waits in its receive', async () => {
    s = await sample(nginx.workerPid, 'lua_requests');
    return s.rows[0]?.wait === 'cosocket receive';
  });
  const row = s.rows[0];
  t.equal(row.uri, '/lua/cosocket');
  t.equal(row.peer, `127.0.0.1:${peer.port}`, "the peer's address and port");
  t.equal(row.sent, peer.conns[0].bytes, `the bytes sent on the socket, as many as the peer got (${peer.conns[0].bytes})`);
  t.equal(row.buffered, 0, 'nothing received');
  near(t, Number(row.left_ms), timeout, start, peer.conns[0].lastAt, s, 'the read timeout');
  t.same(row.thread_wait, [], 'no light thread');

  const fromCore = await everyReader(t, nginx, 'lua_requests', DEBIAN_NGINX, s.rows);
  const coreLeft = Number(fromCore[0]?.left_ms);
  t.ok(coreLeft > 0 && coreLeft <= timeout, `on the core, the time left by nginx's own clock when it was dumped (${coreLeft} ms)`);

  // ngx_requests says the same wait in one line, beside its upstream's (none).
  const r = await sample(nginx.workerPid, 'ngx_requests');
  const req = r.rows.find((x) => x.addr === row.addr) ?? {};
  t.equal(req.waits_on, '', 'no upstream');
  const m = /^cosocket receive 127\.0\.0\.1:(\d+) sent (\d+) buffered 0 left (\d+)ms$/.exec(String(req.lua_waits_on));
  t.ok(m, `ngx_requests' lua_waits_on: ${req.lua_waits_on}`);
  t.same([Number(m?.[1]), Number(m?.[2])], [peer.port, peer.conns[0].bytes], 'its peer and the bytes sent');
  near(t, Number(m?.[3]), timeout, start, peer.conns[0].lastAt, r, "ngx_requests' time left");

  // The cosocket's connection: its peer, the kernel's for that fd, and the request whose Lua opened it.
  const c = await sample(nginx.workerPid, 'ngx_connections');
  const mine = c.rows.filter((x) => x.cosocket_request === row.addr);
  t.equal(mine.length, 1, `one connection is the request's cosocket: ${JSON.stringify(c.rows.map((x) => [x.fd, x.kind, x.cosocket_peer]))}`);
  t.equal(mine[0]?.cosocket_peer, `127.0.0.1:${peer.port}`, "the cosocket's peer");
  t.equal(tcpPeersByFd(nginx.workerPid).get(mine[0]?.fd as number)?.remote, `127.0.0.1:${peer.port}`, "the kernel's peer of that fd is the same");
  const timers = await sample(nginx.workerPid, 'ngx_timers');
  const readTimer = timers.rows.find((x) => x.fd === mine[0]?.fd);
  t.same([readTimer?.lua_request, readTimer?.lua_uri], [row.addr, row.uri], "the cosocket's read timer is the request's");
  t.ok(c.rows.filter((x) => x !== mine[0]).every((x) => x.cosocket_peer === '' && x.cosocket_request === '0x0'), `no other connection is a cosocket: ${JSON.stringify(c.rows.map((x) => [x.kind, x.cosocket_peer, x.cosocket_request]))}`);
  await everyReader(t, nginx, 'ngx_connections', DEBIAN_NGINX, c.rows);
});

/**
 * A listener whose accept queue is full (listen(0), filled by connections nobody accepts): Linux drops the SYNs of
 * any further connect, which stays pending. Run as a python3 process: node accepts every connection itself.
 */
async function fullListener(t: Test): Promise<number> {
  const code = [
    'import socket, sys',
    "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(0)",
    'fill = []',
    'for _ in range(3):',
    '    c = socket.socket(); c.setblocking(False)',
    "    try: c.connect(s.getsockname())",
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  const child = execa('python3', ['-c', code], { stdin: 'pipe', stdout: 'pipe', stderr: 'inherit', reject: false });
  t.teardown(() => {
    child.stdin?.end();
    child.kill();
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout?.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    void child.then((r) => reject(new Error(`the python3 listener exited: ${r.exitCode}`)));
  });
  return port;
}

t.test('lua_requests: a cosocket connect that stays pending - the operation, the peer, the connect timeout left', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const port = await fullListener(t);
  const timeout = 60_000;
  const start = park(t, nginx, `/lua/cosocket?port=${port}&ct=${timeout}`);
  let s = await sample(nginx.workerPid, 'lua_requests');
  await waitUntil('the request waits in its connect', async () => {
    s = await sample(nginx.workerPid, 'lua_requests');
    return s.rows[0]?.wait === 'cosocket connect';
  });
  const row = s.rows[0];
  t.equal(row.peer, `127.0.0.1:${port}`, "the peer's address and port");
  t.equal(row.sent, 0, 'nothing sent');
  near(t, Number(row.left_ms), timeout, start, s.before, s, 'the connect timeout');
});

t.test('lua_requests: a light thread waits on a socket while the entry coroutine waits for the thread', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const peer = await silentPeer(t);
  const timeout = 100_000;
  const start = park(t, nginx, `/lua/cosocket/thread?port=${peer.port}&t=${timeout}`);
  await waitUntil('the peer got the 17 bytes the thread sends', async () => peer.conns[0]?.bytes === 17);
  let s = await sample(nginx.workerPid, 'lua_requests');
  await waitUntil('the thread waits in its receive', async () => {
    s = await sample(nginx.workerPid, 'lua_requests');
    return (s.rows[0]?.thread_wait as string[] | undefined)?.[0] === 'cosocket receive';
  });
  const row = s.rows[0];
  t.equal(row.wait, 'thread wait', 'the entry coroutine waits in ngx.thread.wait');
  t.equal(row.peer, '', 'on no socket of its own');
  t.equal(row.left_ms, null, 'and no timer');
  t.same(row.thread_peer, [`127.0.0.1:${peer.port}`], "the thread's peer");
  t.same(row.thread_sent, [peer.conns[0].bytes], 'the bytes the thread sent, as many as the peer got');
  const m = /^cosocket receive 127\.0\.0\.1:(\d+) sent (\d+) buffered 0 left (\d+)ms$/.exec((row.thread_waits as string[])[0] ?? '');
  t.ok(m, `the thread's wait in one line: ${(row.thread_waits as string[])[0]}`);
  t.equal(Number(m?.[1]), peer.port);
  near(t, Number(m?.[3]), timeout, start, peer.conns[0].lastAt, s, "the thread's read timeout");
});

t.test('lua_requests: a request in ngx.sleep and one waiting on a semaphore - the time left on each timer', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  const sleepStart = park(t, nginx, '/lua/sleep?s=50');
  const semaStart = park(t, nginx, '/lua/semaphore?s=40');
  let s = await sample(nginx.workerPid, 'lua_requests');
  await waitUntil('both requests wait', async () => {
    s = await sample(nginx.workerPid, 'lua_requests');
    return s.rows.length === 2 && s.rows.every((r) => r.wait !== 'none');
  });
  const sleeping = s.rows.find((r) => r.uri === '/lua/sleep') ?? {};
  const waiting = s.rows.find((r) => r.uri === '/lua/semaphore') ?? {};
  t.equal(sleeping.wait, 'sleep');
  t.equal(waiting.wait, 'semaphore');
  // Each timer was armed after the request was sent and before this sample began.
  near(t, Number(sleeping.left_ms), 50_000, sleepStart, s.before, s, 'ngx.sleep(50)');
  near(t, Number(waiting.left_ms), 40_000, semaStart, s.before, s, "the semaphore's wait(40)");
  for (const r of [sleeping, waiting]) t.same([r.peer, r.sent], ['', 0], 'no socket');
  const g = await gdb({ pid: nginx.workerPid }, 'nginx', ['lua-requests --json']);
  t.same(allSteady((g.json[0]?.items ?? []) as Row[]), allSteady(s.rows), `gdb says the same: ${g.stderr.slice(-300)}`);

  // ngx_timers names the request each of the two timers is for (the coroutine's own sleep event, checked back).
  const timers = await sample(nginx.workerPid, 'ngx_timers');
  for (const r of [sleeping, waiting]) {
    const mine = timers.rows.filter((x) => x.lua_request === r.addr);
    t.equal(mine.length, 1, `one timer is ${r.uri}'s: ${JSON.stringify(timers.rows.map((x) => [x.left_ms, x.owner, x.lua_request, x.lua_uri]))}`);
    t.equal(mine[0]?.lua_uri, r.uri, 'with its uri');
    t.equal(mine[0]?.owner, 'unknown', 'no connection owns it');
    t.ok(Math.abs(Number(mine[0]?.left_ms) - Number(r.left_ms)) <= timers.after - s.before + 1000, `its time left as lua_requests' (${mine[0]?.left_ms} vs ${r.left_ms} ms)`);
  }
  const gt = await gdb({ pid: nginx.workerPid }, 'nginx', ['ngx-timers --json']);
  t.same(allSteady((gt.json[0]?.items ?? []) as Row[]), allSteady(timers.rows), `gdb's ngx-timers says the same: ${gt.stderr.slice(-300)}`);
});

for (const build of ['debian', 'ours'] as const) {
  t.test(`ngx_requests on ${build === 'debian' ? "Debian's nginx" : 'our -g build'}: proxy_pass to a slow upstream - its peer, its state, the bytes sent, the time left`, async (t) => {
    const binary = build === 'debian' ? DEBIAN_NGINX : await buildNginx();
    const nginx = await startNginx({ binary, locations: PROXY });
    t.teardown(() => nginx.stop());
    const upstream = await silentPeer(t);
    const start = park(t, nginx, `/proxy?port=${upstream.port}`);
    await waitUntil('the upstream got the whole proxied request', async () => upstream.conns[0]?.bytes > 0 && upstream.conns[0].socket.bytesRead > 0);
    let s = await sample(nginx.workerPid, 'ngx_requests');
    const re = (state: string) => new RegExp(`^upstream ${state} 127\\.0\\.0\\.1:${upstream.port} sent (\\d+) left (\\d+)ms$`);
    await waitUntil('the request waits for the header', async () => {
      s = await sample(nginx.workerPid, 'ngx_requests');
      return re('waiting for the header').test(String(s.rows[0]?.waits_on));
    });
    const m = re('waiting for the header').exec(String(s.rows[0].waits_on))!;
    t.equal(Number(m[1]), upstream.conns[0].bytes, `the bytes sent to the upstream, as many as it got (${upstream.conns[0].bytes})`);
    near(t, Number(m[2]), PROXY_READ_TIMEOUT, start, upstream.conns[0].lastAt, s, 'proxy_read_timeout');

    // The header and part of the body: nginx reads the body now, its read timer armed again.
    upstream.conns[0].socket.write('HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nxwalk');
    const wrote = Date.now();
    await waitUntil('the request reads the body', async () => {
      s = await sample(nginx.workerPid, 'ngx_requests');
      return re('reading the body').test(String(s.rows[0]?.waits_on));
    });
    near(t, Number(re('reading the body').exec(String(s.rows[0].waits_on))![2]), PROXY_READ_TIMEOUT, wrote, s.before, s, 'proxy_read_timeout, armed again');
    // No lua-nginx-module in this nginx: the columns that read its structures are left out, and the rest is whole.
    const whole = await xsample(['--pid', String(nginx.workerPid), '--struct', 'ngx_requests', '--json']);
    t.equal(whole.json?.partial, false, `complete without the Lua module: ${whole.stderr.slice(-300)}`);
    t.notOk(Object.hasOwn(s.rows[0], 'lua_waits_on'), 'no lua_waits_on column');
    const conns = await sample(nginx.workerPid, 'ngx_connections');
    t.ok(conns.rows.length > 0 && conns.rows.every((x) => !Object.hasOwn(x, 'cosocket_peer') && !Object.hasOwn(x, 'cosocket_request')), 'ngx_connections: no cosocket columns');
    const timers = await sample(nginx.workerPid, 'ngx_timers');
    t.ok(timers.rows.length > 0 && timers.rows.every((x) => !Object.hasOwn(x, 'lua_request') && !Object.hasOwn(x, 'lua_uri')), 'ngx_timers: no Lua columns');
    await everyReader(t, nginx, 'ngx_requests', binary, s.rows);
  });
}
