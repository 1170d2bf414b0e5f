/**
 * xsample record --struct ngx_request_time on a real nginx worker, our
 * build and Debian's stripped one: K requests held in flight (request line
 * and Host sent, headers unfinished) are K stacks host;uri;read;write, each
 * weighing the number of samples that saw it: every complete sample, since
 * the requests stay in flight the whole time. The samples taken and those
 * the rate missed add up to rate x duration.
 */
import t from 'tap';
import { buildNginx, holdConnections, partialGet, startNginx } from './lib/nginx.ts';
import { xsample } from './lib/xsample.ts';

const K = 3;
const RATE = 50;
const SECONDS = 2;

/** How the read handler's frame reads: by name with a .symtab; stripped, a static function is only its address. */
const BUILDS: [string, () => Promise<string>, string][] = [
  ['our -g build', () => buildNginx(), 'ngx_http_process_request_headers'],
  ["Debian's stripped nginx", async () => '/usr/sbin/nginx', '0x[0-9a-f]+'],
];

for (const [build, binaryOf, readHandler] of BUILDS) {
  t.test(`held requests weigh the samples that saw them: ${build}`, async (t) => {
    const nginx = await startNginx({ binary: await binaryOf() });
    t.teardown(() => nginx.stop());
    const held = await holdConnections(nginx.port, K, { partialRequest: partialGet });
    t.teardown(() => held.close());

    const r = await xsample(['record', '--pid', String(nginx.workerPid), '--struct', 'ngx_request_time', '--rate', String(RATE), '--duration', String(SECONDS), '--format', 'json']);
    t.equal(r.code, 0, r.stderr);
    const meta = JSON.parse(r.stdout);
    t.equal(meta.samples + meta.missed, RATE * SECONDS, `${meta.samples} samples taken and ${meta.missed} missed: the ${RATE * SECONDS} due`);
    t.equal(meta.partial, 0);
    t.equal(meta.total_weight, K * meta.samples, 'every sample saw the K requests');

    const f = await xsample(['record', '--pid', String(nginx.workerPid), '--struct', 'ngx_request_time', '--rate', String(RATE), '--duration', String(SECONDS)]);
    t.equal(f.code, 0, f.stderr);
    const samples = Number(/^xsample: (\d+) samples? in /m.exec(f.stderr)?.[1]);
    const lines = f.stdout.trim().split('\n').sort();
    t.equal(lines.length, K, 'one stack per request');
    const handlers = new Set<string>();
    lines.forEach((line, i) => {
      // Reading its headers: the connection's read event waits in ngx_http_process_request_headers.
      const want = new RegExp(`^pid ${nginx.workerPid};host xw${i}\\.test;uri /hold/${i};read (${readHandler});write \\S+ (\\d+)$`);
      const m = want.exec(line);
      t.ok(m, `${line} is ${want}`);
      handlers.add(m?.[1] ?? '');
      t.equal(Number(m?.[2]), samples, 'weighs every sample');
    });
    t.equal(handlers.size, 1, 'every request waits in the same read handler');
  });
}
