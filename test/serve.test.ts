/**
 * xsample serve: its /metrics on a live walkee, checked against walkee's
 * own truth (its bookkeeping of its list and pools), and by promtool; a scrape within
 * --interval of the last sample does not walk again; then a real
 * Prometheus (Debian's) scraping it on a live nginx, asked through its
 * query API for the worker's client connections, which the test holds.
 */
import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import t, { type Test } from 'tap';
import { loadSchema } from '../printers/checked-schema.ts';
import { notServedLines } from '../sampler/outputs/serve.ts';
import { buildNginx, DEBIAN_NGINX, freePort, holdConnections, startNginx, waitUntil } from './lib/nginx.ts';
import { startRedis } from './lib/redis.ts';
import { root, startWalkee } from './lib/walkee.ts';
import { xsample, xsampleBin } from './lib/xsample.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-serve-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** xsample serve as a child (on 127.0.0.1, a free port, unless args say --listen), its address once it says where it listens, and its stderr so far. */
async function serve(args: string[]): Promise<{ child: ResultPromise; url: string; stderr: string[] }> {
  const listen = args.includes('--listen') ? [] : ['--listen', '127.0.0.1:0'];
  const child = execa(process.execPath, [xsampleBin, 'serve', ...listen, ...args], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
  const seen: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      seen.push(l);
      const m = /at (http:\/\/[^ ]+:\d+\/metrics); Ctrl-C to stop$/.exec(l);
      if (m) resolve(m[1]);
    });
    void child.then(() => reject(new Error(`xsample serve ended: ${seen.join('\n')}`)));
  });
  return { child, url, stderr: seen };
}

/** The value of one series of an exposition, by name and labels. */
function value(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

t.test('walkee: the gauges are what walkee and the views say, promtool accepts them, a walk at most once an interval', async (t) => {
  const w = await startWalkee(['--nodes', '7', '--pools', '3']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const truth = await w.ask('truth');
  // walkee's own bookkeeping of its pools, kept while it built them: not a walk of the same memory.
  const pools = truth.pools as { used: number; free: number; large_bytes: number }[];
  const { child, url } = await serve(['--pid', pid, '--struct', 'walkee_list', '--struct', 'ngx_pool', '--interval', '600000']);
  t.teardown(() => child.kill('SIGKILL'));
  const first = await (await fetch(url)).text();
  t.equal(value(first, 'xwalk_walkee_list_count_value', `pid="${pid}",root="walkee"`), truth.list.count, 'one-row view: a gauge per number column, labelled by root (count ends in _value)');
  t.equal(value(first, 'xwalk_walkee_list_sum_value', `pid="${pid}",root="walkee"`), truth.list.sum);
  t.equal(value(first, 'xwalk_ngx_pool_items', `pid="${pid}"`), 3, 'a view of many items: how many');
  t.equal(value(first, 'xwalk_ngx_pool_used', `pid="${pid}"`), pools.reduce((a, p) => a + p.used, 0), 'and each number column summed, never one series per item');
  t.equal(value(first, 'xwalk_ngx_pool_used_max', `pid="${pid}"`), Math.max(...pools.map((p) => p.used)), 'and the largest');
  t.equal(value(first, 'xwalk_ngx_pool_free', `pid="${pid}"`), pools.reduce((a, p) => a + p.free, 0), 'free, summed');
  t.equal(value(first, 'xwalk_ngx_pool_large_bytes', `pid="${pid}"`), pools.reduce((a, p) => a + p.large_bytes, 0), 'large allocations, summed');
  t.notMatch(first, /xwalk_ngx_pool_used\{[^}]*addr/, 'no per-pool series');
  t.equal(value(first, 'xwalk_ngx_pool_item_used_count', `pid="${pid}"`), 3, 'a histogram of the items: the sample added each pool once');
  t.equal(value(first, 'xwalk_ngx_pool_item_used_sum', `pid="${pid}"`), pools.reduce((a, p) => a + p.used, 0));
  const bounds = [...first.matchAll(new RegExp(`^xwalk_ngx_pool_item_used_bucket\\{le="([^"]+)",pid="${pid}"\\} (\\d+)$`, 'gm'))];
  t.ok(bounds.length > 2, 'with buckets');
  for (const [, le, n] of bounds) t.equal(Number(n), pools.filter((p) => le === '+Inf' || p.used <= Number(le)).length, `bucket le=${le}: the pools that used at most that`);
  t.equal(value(first, 'xwalk_sample_partial', `view="ngx_pool",pid="${pid}"`), 0);
  const check = await execa('promtool', ['check', 'metrics'], { input: first, reject: false });
  t.equal(check.exitCode, 0, `promtool check metrics: ${check.stdout}${check.stderr}`);
  const second = await (await fetch(url)).text();
  t.equal(value(second, 'xwalk_samples_total', 'view="ngx_pool"'), 1, 'a scrape within --interval of the last sample does not walk again');
  t.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);
  child.kill('SIGINT');
  t.equal((await child).exitCode, 0, 'Ctrl-C stops it, exit 0');
});

t.test('a real Prometheus scrapes it on a live nginx and answers, through its query API, the clients the test holds', async (t) => {
  const K = 3;
  const nginx = await startNginx({ binary: await buildNginx() });
  t.teardown(() => nginx.stop());
  const held = await holdConnections(nginx.port, K);
  t.teardown(() => held.close());
  const { child, url } = await serve(['--pid', String(nginx.masterPid), '--struct', 'ngx_connection_totals', '--interval', '200']);
  t.teardown(() => child.kill('SIGKILL'));
  const target = new URL(url).host;
  const promPort = await freePort();
  const dir = path.join(tmp, 'prometheus');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'prometheus.yml'), `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: xwalk\n    static_configs:\n      - targets: ['${target}']\n`);
  const prom = execa('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${promPort}`], { reject: false, stdin: 'ignore' });
  t.teardown(async () => {
    prom.kill('SIGTERM');
    await prom;
  });
  const query = `http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent('xwalk_ngx_connection_totals_clients')}`;
  let answer: { metric: Record<string, string>; value: [number, string] }[] = [];
  await waitUntil('Prometheus has scraped xsample serve', async () => {
    try {
      const r = (await (await fetch(query)).json()) as { status: string; data: { result: typeof answer } };
      answer = r.data?.result ?? [];
      return answer.length > 0;
    } catch {
      return false; // not listening yet
    }
  }, 60_000);
  t.equal(answer.length, nginx.workerPids.length, 'one series per worker');
  const mine = answer.find((a) => a.metric.pid === String(nginx.workerPid));
  t.ok(mine, `the worker's series, labelled pid=${nginx.workerPid}: ${JSON.stringify(answer)}`);
  t.equal(Number(mine?.value[1]), K, 'the K clients the test holds, as Prometheus answers it');
  t.equal(mine?.metric.job, 'xwalk');
});

t.test('a partial sample: that view exports none of its figures, xwalk_view_up 0 and its errors counted; the other views are served', async (t) => {
  const w = await startWalkee(['--nodes', '50', '--pools', '2']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const truth = await w.ask('truth');
  const { child, url } = await serve(['--pid', pid, '--struct', 'walkee_list', '--struct', 'ngx_pool', '--interval', '1']);
  t.teardown(() => child.kill('SIGKILL'));
  const whole = await (await fetch(url)).text();
  t.equal(value(whole, 'xwalk_view_up', `view="walkee_list",pid="${pid}"`), 1, 'whole: up');
  t.equal(value(whole, 'xwalk_walkee_list_count_value', `pid="${pid}",root="walkee"`), truth.list.count);
  t.same(await w.ask('corrupt cycle'), { ok: true });
  const broken = await fetch(url);
  t.equal(broken.status, 200, 'the scrape still answers');
  const text = await broken.text();
  t.equal(value(text, 'xwalk_view_up', `view="walkee_list",pid="${pid}"`), 0, 'the partial view: up 0');
  t.equal(value(text, 'xwalk_sample_partial', `view="walkee_list",pid="${pid}"`), 1, 'and partial');
  t.equal(value(text, 'xwalk_view_errors_total', `view="walkee_list",pid="${pid}"`), 1, 'one sample without figures, counted');
  t.notMatch(text, /^xwalk_walkee_list_(count|sum)_value\{/m, 'none of its figures: never a wrong one');
  t.equal(value(text, 'xwalk_view_up', `view="ngx_pool",pid="${pid}"`), 1, 'the other view: up');
  t.equal(value(text, 'xwalk_ngx_pool_items', `pid="${pid}"`), truth.pools.length, 'and its figures, as walkee counts its pools');
  t.same(await w.ask('repair'), { ok: true });
  const again = await (await fetch(url)).text();
  t.equal(value(again, 'xwalk_view_up', `view="walkee_list",pid="${pid}"`), 1, 'repaired: up again');
  t.equal(value(again, 'xwalk_walkee_list_count_value', `pid="${pid}",root="walkee"`), truth.list.count);
  t.equal(value(again, 'xwalk_view_errors_total', `view="walkee_list",pid="${pid}"`), 1, 'the error count stays');
});

t.test('under churn, a partial sample of a view of one item a root exports the values it read whole, and only those', async (t) => {
  const w = await startWalkee(['--buckets', '77'], 'churn');
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const { child, url } = await serve(['--pid', pid, '--struct', 'churn_shape', '--interval', '1', '--retries', '0']);
  t.teardown(() => child.kill('SIGKILL'));
  t.same(await w.ask('churn on'), { ok: true });
  const scrapes = { partial: 0, exported: 0 };
  const wrong: string[] = [];
  await waitUntil('a partial sample that exports what it read whole', async () => {
    const text = await (await fetch(url)).text();
    const partial = value(text, 'xwalk_sample_partial', `view="churn_shape",pid="${pid}"`) === 1;
    const nbuckets = value(text, 'xwalk_churn_shape_nbuckets', `pid="${pid}",root="churn"`);
    if (nbuckets !== undefined && nbuckets !== 77) wrong.push(`nbuckets ${nbuckets}`);
    if (partial && /^xwalk_churn_shape_lru\{/m.test(text)) wrong.push("a partial sample's LRU length, walked while it changed");
    if (partial) scrapes.partial++;
    if (partial && nbuckets === 77) scrapes.exported++;
    return scrapes.exported > 0;
  }, 120_000);
  t.same(wrong, [], `no wrong figure in any scrape (${scrapes.partial} partial)`);
  t.equal(scrapes.exported, 1, "a partial sample's bucket count, which churn never changes (--buckets 77), is exported");
});

t.test('serve listens on loopback unless --listen names another address, and then warns', async (t) => {
  const w = await startWalkee(['--nodes', '3']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const mine = await serve(['--pid', pid, '--struct', 'walkee_list']);
  t.teardown(() => mine.child.kill('SIGKILL'));
  t.notOk(mine.stderr.some((l) => /warning/.test(l)), 'loopback: no warning');
  const port = await freePort();
  const open = await serve(['--pid', pid, '--struct', 'walkee_list', '--listen', `0.0.0.0:${port}`]);
  t.teardown(() => open.child.kill('SIGKILL'));
  t.match(open.stderr.join('\n'), `xsample: warning: listening on 0.0.0.0, not loopback: whoever can reach this address can read the metrics of pid ${pid}`);
  t.equal(open.url, `http://0.0.0.0:${port}/metrics`, 'and says where');
  t.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
  const help = await xsample(['--help']);
  t.match(help.stdout, /default\s+127\.0\.0\.1:9464/, 'the default is loopback');
});

t.test('the views not served: one line a process, each cause once after its views, processes with the same views and causes on one line', async (t) => {
  const lua = (n: string) => `${n} cannot be read: ngx_http_lua_module.so is not mapped in this process`;
  const jit = (n: string) => `${n} cannot be read: libluajit-5.1.so.2 is not mapped in this process`;
  t.same(
    notServedLines([
      { view: 'lua_vm', pid: 7, why: lua('ngx_http_lua_main_conf_t') },
      { view: 'lua_stacks', pid: 7, why: jit('lua_State') },
      { view: 'lua_requests', pid: 7, why: lua('ngx_http_lua_module') },
      { view: 'lua_vm', pid: 8, why: lua('ngx_http_lua_main_conf_t') },
      { view: 'lua_stacks', pid: 8, why: jit('lua_State') },
      { view: 'lua_requests', pid: 8, why: lua('ngx_http_lua_module') },
      { view: 'odd', pid: 9, why: 'something else went wrong: here' },
    ]),
    [
      'xsample: not served for pid 7, 8: lua_vm, lua_requests (ngx_http_lua_module.so is not mapped in this process); lua_stacks (libluajit-5.1.so.2 is not mapped in this process)',
      'xsample: not served for pid 9: odd (something else went wrong: here)',
    ],
  );
  t.same(notServedLines([]), [], 'every view served: nothing said');
});

/**
 * Every view of the pack, no --struct: the server answers 200, with the views that apply to the process; those that
 * cannot are said once on stderr, in one line naming them and the cause (notServed: the worker, the cause).
 */
async function serveEverything(t: Test, pid: number, expect: { series: string; labels: string; equals?: number }[], notServed: { pid: number; causes: string[] } | null) {
  const { child, url, stderr } = await serve(['--pid', String(pid)]);
  t.teardown(() => child.kill('SIGKILL'));
  const r = await fetch(url);
  t.equal(r.status, 200, 'HTTP 200');
  const text = await r.text();
  for (const e of expect) {
    const v = value(text, e.series, e.labels);
    if (e.equals === undefined) t.ok(v !== undefined, `${e.series}{${e.labels}} is there (${v})`);
    else t.equal(v, e.equals, `${e.series}{${e.labels}}`);
  }
  const said = stderr.filter((l) => /not served/.test(l));
  if (notServed) {
    t.equal(said.length, 1, `one line names every view not served, and why: ${said.join(' | ')}`);
    const m = new RegExp(`^xsample: not served for pid ${notServed.pid}: (.+)$`).exec(said[0] ?? '');
    t.ok(m, `for the worker: ${said[0]}`);
    // Each cause once, after the views it keeps from being served: "v1, v2 (cause); v3 (cause)".
    const parts = (m?.[1] ?? '').split('; ').map((p) => /^(\w+(?:, \w+)*) \((.+)\)$/.exec(p));
    t.ok(parts.every((p) => p !== null), `views, then their cause: ${m?.[1]}`);
    t.same(parts.map((p) => p?.[2]).sort(), [...notServed.causes].sort(), 'the causes, each once');
    const views = parts.flatMap((p) => p?.[1].split(', ') ?? []);
    t.ok(views.length > 1, `${views.length} views`);
    // Every view of the pack's schema either exports xwalk_view_up for the worker or is named in that line, never both.
    const up = [...text.matchAll(new RegExp(`^xwalk_view_up\\{view="(\\w+)",pid="${notServed.pid}"\\} `, 'gm'))].map((x) => x[1]);
    t.same(views.filter((v) => up.includes(v)), [], 'a view not served exports nothing');
    const pack = stderr.map((l) => / of (\w+) for pid /.exec(l)?.[1]).find((x) => x !== undefined)!;
    t.same([...views, ...up].sort(), [...loadSchema(path.join(root, 'packs', pack, 'schema.yaml')).views.keys()].sort(), `with the views served, every view of ${pack}'s schema`);
  } else t.same(said, [], 'every view applies');
  const check = await execa('promtool', ['check', 'metrics'], { input: text, reject: false });
  t.notMatch(check.stdout + check.stderr, /error/i, 'promtool reads it');
  return text;
}

for (const [name, binary, lua] of [
  ['our nginx (no Lua)', () => buildNginx(), false],
  ["Debian's nginx (no Lua)", async () => DEBIAN_NGINX, false],
  ["Debian's nginx with lua-nginx-module", async () => DEBIAN_NGINX, true],
] as const) {
  t.test(`serve on ${name}, every view: HTTP 200 and nginx's metrics`, async (t) => {
    const nginx = await startNginx({ binary: await binary(), lua });
    t.teardown(() => nginx.stop());
    const held = await holdConnections(nginx.port, 2);
    t.teardown(() => held.close());
    const w = String(nginx.workerPid);
    const text = await serveEverything(
      t,
      nginx.masterPid,
      [
        { series: 'xwalk_ngx_connection_totals_clients', labels: `pid="${w}",root="cycle"`, equals: 2 },
        { series: 'xwalk_view_up', labels: `view="ngx_pool",pid="${w}"`, equals: 1 },
        { series: 'xwalk_ngx_pool_items', labels: `pid="${w}"` },
        ...(lua ? [{ series: 'xwalk_view_up', labels: `view="lua_vm",pid="${w}"`, equals: 1 }] : []),
      ],
      lua ? null : { pid: nginx.workerPid, causes: ['ngx_http_lua_module.so is not mapped in this process', 'libluajit-5.1.so.2 is not mapped in this process'] },
    );
    if (!lua) {
      t.notMatch(text, /view="lua_/, 'no Lua view is served for it');
      t.notMatch(fs.readFileSync(`/proc/${nginx.workerPid}/maps`, 'utf8'), /ngx_http_lua_module\.so|libluajit/, 'and the worker has mapped neither ngx_http_lua_module.so nor libluajit, as its /proc/PID/maps says');
    }
  });
}

t.test('serve on redis, every view: HTTP 200 and its metrics', async (t) => {
  const redis = await startRedis();
  t.teardown(() => redis.stop());
  await serveEverything(t, redis.pid, [{ series: 'xwalk_view_up', labels: `view="redis_clients",pid="${redis.pid}"`, equals: 1 }, { series: 'xwalk_redis_clients_items', labels: `pid="${redis.pid}"` }], null);
});
