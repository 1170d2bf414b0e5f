/**
 * xsample serve: its /metrics on a live walkee, checked against walkee's
 * own truth and the ngx_pool view, and by promtool; a scrape within
 * --interval of the last sample does not walk again; then a real
 * Prometheus (Debian's) scraping it on a live nginx, asked through its
 * query API for the worker's client connections, which the test holds.
 */
import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { buildNginx, freePort, holdConnections, startNginx, waitUntil } from './lib/nginx.ts';
import { startWalkee } from './lib/walkee.ts';
import { xsample, xsampleBin } from './lib/xsample.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-serve-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** xsample serve as a child, and its address once it says where it listens. */
async function serve(args: string[]): Promise<{ child: ResultPromise; url: string }> {
  const child = execa(process.execPath, [xsampleBin, 'serve', '--listen', '127.0.0.1:0', ...args], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
  const url = await new Promise<string>((resolve, reject) => {
    const seen: string[] = [];
    createInterface({ input: child.stderr! }).on('line', (l) => {
      seen.push(l);
      const m = /at (http:\/\/127\.0\.0\.1:\d+\/metrics); Ctrl-C to stop$/.exec(l);
      if (m) resolve(m[1]);
    });
    void child.then(() => reject(new Error(`xsample serve ended: ${seen.join('\n')}`)));
  });
  return { child, url };
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
  const pools = (await xsample(['--pid', pid, '--struct', 'ngx_pool', '--json'])).json.items as Record<string, number>[];
  const { child, url } = await serve(['--pid', pid, '--struct', 'walkee_list', '--struct', 'ngx_pool', '--interval', '600000']);
  t.teardown(() => child.kill('SIGKILL'));
  const first = await (await fetch(url)).text();
  t.equal(value(first, 'xwalk_walkee_list_count_value', `pid="${pid}",root="walkee"`), truth.list.count, 'one-row view: a gauge per number column, labelled by root (count ends in _value)');
  t.equal(value(first, 'xwalk_walkee_list_sum_value', `pid="${pid}",root="walkee"`), truth.list.sum);
  t.equal(value(first, 'xwalk_ngx_pool_items', `pid="${pid}"`), 3, 'a view of many items: how many');
  t.equal(value(first, 'xwalk_ngx_pool_used', `pid="${pid}"`), pools.reduce((a, p) => a + p.used, 0), 'and each number column summed, never one series per item');
  t.equal(value(first, 'xwalk_ngx_pool_used_max', `pid="${pid}"`), Math.max(...pools.map((p) => p.used)), 'and the largest');
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
