/**
 * The nginx views on a real worker, judged by what the test itself did to
 * nginx: K idle connections and K requests held in flight (request line
 * sent, headers unfinished) must show up as exactly those connections,
 * those requests with their uris and hosts, their read timers; the zones
 * and the listener of the config must appear with their sizes. Then the
 * same under load from wrk.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildNginx, DEFAULT_HEADER_TIMEOUT_MS, holdConnections, httpGet, nginxStatus, partialGet, startNginx, waitUntil } from './lib/nginx.ts';
import { xsample } from './lib/xsample.ts';

const K = 4;
type Row = Record<string, string | number | null>;

const BUILDS: [string, () => Promise<string>, boolean][] = [
  ['our -g build', () => buildNginx(), false],
  ['our v2debug build (other options, other offsets)', () => buildNginx('v2debug'), false],
  ["Debian's stripped nginx", async () => '/usr/sbin/nginx', true],
];

for (const [build, binaryOf, stripped] of BUILDS) t.test(`every view tells what the test did to nginx: ${build}`, async (t) => {
  const nginx = await startNginx({ binary: await binaryOf() });
  t.teardown(() => nginx.stop());
  const heldFrom = Date.now();
  const idle = await holdConnections(nginx.port, K);
  const inFlight = await holdConnections(nginx.port, K, { partialRequest: partialGet });
  t.teardown(async () => {
    await idle.close();
    await inFlight.close();
  });
  const status = await httpGet(nginx.port, '/status');
  t.match(status.body, new RegExp(`Active connections: ${2 * K + 1}`), 'nginx itself counts 2K + the status request');
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-cache-'));
  t.teardown(() => fs.rmSync(cacheDir, { recursive: true, force: true }));
  const emptyCache = { XDG_CACHE_HOME: cacheDir };
  const view = async (name: string): Promise<Row[]> => {
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', name, '--json', '--verbose'], { env: emptyCache });
    t.equal(r.code, 0, `${name}: ${r.stderr}`);
    t.equal(r.json.partial, false, `${name}: whole`);
    // A build with debug info: its committed layout by build-id, or its own DWARF (its build-id moves with the
    // machine's packages); a stripped one: by build-id, or a layout of the same release and module signature.
    const source = /layout (nginx 1\.22\.1 \(.*\))\)$/.exec(r.stderr.trim().split('\n').pop()!)?.[1] ?? r.stderr;
    const id = r.json.build_id.slice(0, 12);
    t.match(source, stripped ? new RegExp(`\\(${id}\\)$|same release and signature\\)$`) : new RegExp(`\\(${id}(, derived from DWARF)?\\)$`), `${name}: layout ${source}`);
    return r.json.items;
  };

  const [totals] = await view('ngx_connection_totals');
  t.equal(totals.clients, 2 * K, 'the clients are the 2K connections the test holds');
  t.equal(totals.connections, 256, 'worker_connections');
  t.equal((totals.free as number) + (totals.used as number), 256, 'free + used = all slots');

  const conns = await view('ngx_connections');
  t.equal(conns.length, 2 * K, 'one row per held connection');
  t.ok(conns.every((c) => c.remote === '127.0.0.1'), 'all from loopback');
  t.equal(new Set(conns.map((c) => c.fd)).size, 2 * K, 'distinct fds');
  t.equal(conns.filter((c) => c.requests === 1).length, K, 'K connections have their request');
  t.ok(conns.every((c) => (c.pool_used as number) > 0), 'each connection pool holds something');

  const reqs = await view('ngx_requests');
  t.same(reqs.map((r) => r.uri).sort(), Array.from({ length: K }, (_, i) => `/hold/${i}`), 'exactly the K requests in flight, by uri');
  for (const r of reqs) {
    const i = Number(String(r.uri).split('/')[2]);
    t.equal(r.host, `xw${i}.test`, `${r.uri}: its Host header`);
    t.equal(r.method, 'GET');
    t.ok((r.age_ms as number) >= 0 && (r.age_ms as number) < 60_000, `${r.uri}: age ${r.age_ms} ms`);
    t.ok(conns.some((c) => c.fd === r.fd && c.requests === 1), `${r.uri}: on a connection with a request`);
    t.ok((r.pool_used as number) > 0 && (r.pool_used as number) <= (r.pool_blocks as number) * 4096, `${r.uri}: its pool holds ${r.pool_used} bytes in ${r.pool_blocks} blocks`);
  }

  const timers = await view('ngx_timers');
  t.equal(timers.length, 2 * K, 'one read timer per held connection');
  t.same(timers.map((x) => x.key), [...timers.map((x) => x.key)].sort((a, b) => (a as number) - (b as number)), 'in expiry order');
  const handlers = new Map<unknown, number>();
  for (const x of timers) handlers.set(x.handler, (handlers.get(x.handler) ?? 0) + 1);
  t.same([...handlers.values()], [K, K], 'two handlers, K timers each: waiting for a request, waiting for the rest of the headers');
  if (stripped) t.ok([...handlers.keys()].every((h) => /^nginx\+0x[0-9a-f]+$/.test(String(h))), `static functions have no ELF symbol in a stripped binary: the executable's name and their address in it (${[...handlers.keys()].join(', ')})`);
  else {
    t.equal(handlers.get('ngx_http_wait_request_handler'), K, 'K wait for a request (client_header_timeout)');
    t.equal(handlers.get('ngx_http_process_request_headers'), K, 'K wait for the rest of their headers');
  }
  // Each was armed (client_header_timeout from its accept or its last bytes) after heldFrom, and nginx's clock lags ours by at most a second.
  const since = Date.now() - heldFrom;
  t.ok(timers.every((x) => (x.left_ms as number) <= DEFAULT_HEADER_TIMEOUT_MS && (x.left_ms as number) >= DEFAULT_HEADER_TIMEOUT_MS - since - 1000), `each expires client_header_timeout (${DEFAULT_HEADER_TIMEOUT_MS / 1000} s) after it was armed, less the ${since} ms since (${timers.map((x) => x.left_ms).join(', ')})`);
  t.same(timers.map((x) => x.fd).sort(), conns.map((c) => c.fd).sort(), 'the timers are those connections\'');

  const zones = await view('ngx_shm_zones');
  const byName = Object.fromEntries(zones.map((z) => [z.name, z]));
  t.equal(byName.xw_req?.size, 1024 * 1024, 'limit_req_zone xw_req:1m');
  t.equal(byName.xw_req?.owner, 'ngx_http_limit_req_module');
  t.equal(byName.xw_conn?.size, 2 * 1024 * 1024, 'limit_conn_zone xw_conn:2m');
  t.equal(byName.xw_conn?.owner, 'ngx_http_limit_conn_module');
  for (const z of zones) t.ok((z.free_pages as number) > 0 && (z.free_pages as number) < (z.size as number) / 4096, `${z.name}: ${z.free_pages} free slab pages`);

  t.same((await view('ngx_listening')).map(({ address, backlog }) => ({ address, backlog })), [{ address: `127.0.0.1:${nginx.port}`, backlog: 511 }], 'the one listener');
  t.ok((await view('ngx_open_files')).some((f) => f.name === nginx.errorLog), 'the error log is open');
  const phases = await view('ngx_phase_handlers');
  if (!stripped) {
    for (const h of ['ngx_http_limit_req_handler', 'ngx_http_limit_conn_handler', 'ngx_http_static_handler', 'ngx_http_index_handler']) {
      t.ok(phases.some((p) => p.handler === h), `phase handler ${h}`);
    }
  }
  const filters = await (async () => {
    const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'ngx_filters', '--json'], { env: emptyCache });
    return r.json;
  })();
  if (stripped) {
    t.equal(filters.partial, true, 'ngx_filters: a stripped binary cannot name its files\' statics');
    t.match(filters.errors[0].message, /has no \.symtab \(it is stripped\)/);
  } else {
    t.equal(filters.partial, false);
    const chain = (origin: string) => filters.items.filter((f: Row) => f.origin === origin).map((f: Row) => f.filter);
    const header = chain('header');
    const body = chain('body');
    t.equal(header[header.length - 1], 'ngx_http_header_filter', 'the header chain ends in the header writer');
    t.equal(body[body.length - 1], 'ngx_http_write_filter', 'the body chain ends in the write filter');
    t.ok(header.indexOf('ngx_http_gzip_header_filter') >= 0 && header.indexOf('ngx_http_gzip_header_filter') < header.indexOf('ngx_http_chunked_header_filter'), 'gzip runs before chunked');
    t.ok(body.includes('ngx_http_copy_filter') && body.includes('ngx_http_postpone_filter'), 'the core body filters');
  }
  const checkers = phases.map((p) => p.checker);
  t.ok(checkers.indexOf('ngx_http_core_access_phase') < checkers.indexOf('ngx_http_core_content_phase'), 'phases in run order (the checkers are exported)');
});

/** wrk's figures: requests served and the 99th percentile of latency (ms). */
function wrkFigures(out: string): { requests: number; p99Ms: number } {
  const requests = /(\d+) requests in/.exec(out);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)$/m.exec(out);
  if (!requests || !p99) throw new Error(`wrk printed no requests or 99% latency:\n${out}`);
  return { requests: Number(requests[1]), p99Ms: Number(p99[1]) * (p99[2] === 'us' ? 0.001 : p99[2] === 's' ? 1000 : 1) };
}

/**
 * A stall is judged against the same worker under the same load in the same run, unsampled: three
 * runs of wrk without the sampler and two with it, taking turns. A sampler that stalls the worker
 * does so in every run, the host's noise (a p99 of 500 ms has been seen unsampled, with a load of 12
 * on 2 CPUs) seldom in two: the better sampled run must serve at least THROUGHPUT_SHARE of the
 * unsampled runs' median requests, with a p99 at most P99_FACTOR × their median p99 + P99_SLACK_MS.
 * A sampler that stopped the worker 50 ms per sample (every 100 ms) would halve the requests and put
 * the p99 near 50 ms. The kernel's view of the worker is polled too: it is never in a stopped state.
 */
const THROUGHPUT_SHARE = 0.6;
const P99_FACTOR = 2;
const P99_SLACK_MS = 10;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

t.test('under load from wrk, sampling ngx_requests never fails or stalls the worker', async (t) => {
  const nginx = await startNginx();
  t.teardown(() => nginx.stop());
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const worker = nginx.workerPid;
  const wrk = () => execa('wrk', ['-t1', '-c16', '-d3s', '--latency', `http://127.0.0.1:${nginx.port}/`], { reject: false });
  const unsampled: { requests: number; p99Ms: number }[] = [];
  const sampled: { requests: number; p99Ms: number }[] = [];
  const states = { polls: 0, stopped: 0 };
  for (let round = 0; round < 2; round++) {
    unsampled.push(wrkFigures((await wrk()).stdout));
    const load = wrk();
    await waitUntil("wrk's 16 connections are open", async () => (await nginxStatus(nginx.port)).active >= 2 + 16);
    const poll = setInterval(() => {
      const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${worker}/status`, 'utf8'))![1];
      states.polls++;
      if (state === 'T' || state === 't') states.stopped++;
    }, 1);
    // 25 samples 100 ms apart: the sampler reads through most of wrk's 3 s.
    const r = await xsample(['--pid', String(worker), '--struct', 'ngx_requests', '--interval', '100', '--count', '25', '--json']);
    clearInterval(poll);
    sampled.push(wrkFigures((await load).stdout));
    t.ok(r.code === 0 || r.code === 3, `whole or partial answers, never an error (exit ${r.code} ${r.stderr})`);
    t.equal(r.json.length, 25, 'every sample printed');
    for (const s of r.json) {
      t.ok(s.items.filter((i: Row) => String(i.uri).startsWith('/hold/')).length === 2 || s.partial, 'the held requests are seen in every whole sample');
      for (const i of s.items as Row[]) t.ok(i.uri === null || typeof i.uri === 'string', 'no garbage: a string or null');
    }
  }
  unsampled.push(wrkFigures((await wrk()).stdout));
  t.ok(states.polls > 100, `the worker's state was polled ${states.polls} times while sampled`);
  t.equal(states.stopped, 0, 'never in a stopped state');
  const usualRequests = median(unsampled.map((u) => u.requests));
  const bestRequests = Math.max(...sampled.map((s) => s.requests));
  t.ok(
    bestRequests >= usualRequests * THROUGHPUT_SHARE,
    `wrk was served throughout: ${sampled.map((s) => s.requests).join(' and ')} requests in 3 s while sampled, against ${unsampled.map((u) => u.requests).join(', ')} unsampled (at least ${THROUGHPUT_SHARE} × their median ${usualRequests})`,
  );
  const usualP99 = median(unsampled.map((u) => u.p99Ms));
  const bound = usualP99 * P99_FACTOR + P99_SLACK_MS;
  t.ok(
    Math.min(...sampled.map((s) => s.p99Ms)) <= bound,
    `the p99 latency while sampled, ${sampled.map((s) => s.p99Ms).join(' and ')} ms, against ${unsampled.map((u) => u.p99Ms).join(', ')} ms unsampled: the better under ${bound.toFixed(2)} ms (${P99_FACTOR} × their median + ${P99_SLACK_MS})`,
  );
});
