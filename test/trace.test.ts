/**
 * xsample trace: a probe of the schema (probes:) run by the kernel at every
 * call of a function of a real nginx, ours and Debian's stripped one. The
 * ground truth is what the test sent and what the client received: exact
 * counts per uri and status, bytes_sent equal to the bytes the client read
 * on each connection (one request each, so nginx's connection->sent is all
 * of them). Another nginx running the same binary, sent requests at the same
 * time, is not counted; the program is gone when xsample is (Ctrl-C here).
 */
import { execa } from 'execa';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { bpfAddon, bpfUnavailable } from '../sampler/bpf/addon.ts';
import { buildNginx, DEBIAN_NGINX, startNginx, waitUntil } from './lib/nginx.ts';
import { DEBIAN_REDIS, startRedis } from './lib/redis.ts';
import { root } from './lib/walkee.ts';
import { xsampleBin } from './lib/xsample.ts';
import { parseTrace } from '../sampler/cli/trace.ts';
import { DEFAULT_LIMITS } from '../sampler/memory/walk-error.ts';

const xgen = path.join(root, 'dist/xgen.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-trace-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** One request on its own connection (Connection: close): the bytes the client received in all. */
function request(port: number, uri: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => s.write(`GET ${uri} HTTP/1.1\r\nHost: trace.test\r\nConnection: close\r\n\r\n`));
    let got = 0;
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', () => resolve(got));
    s.on('error', reject);
    s.setTimeout(10_000, () => s.destroy(new Error(`GET ${uri} timed out`)));
  });
}

/** xsample trace as a child, once it says its program is attached (--verbose): its id, and the child. */
async function startTrace(pid: number, probe = 'ngx_request_done') {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...(process.env.XWALK_PACKS ? { XWALK_PACKS: process.env.XWALK_PACKS } : {}) };
  const child = execa(process.execPath, [xsampleBin, 'trace', '--pid', String(pid), '--probe', probe, '--json', '--verbose'], { reject: false, env, extendEnv: false, stdin: 'ignore', buffer: { stderr: true } });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitUntil('xsample trace to attach its program', () => /tracing /.test(stderr) || child.exitCode !== null, 60_000);
  const id = /program id (\d+)/.exec(stderr);
  if (!id) throw new Error(`xsample trace did not attach: ${stderr}`);
  return { child, id: Number(id[1]), stderr: () => stderr };
}

t.test('xsample trace parses into a trace command', async (t) => {
  t.same(parseTrace(['--pid', '12', '--probe', 'ngx_request_done', '--duration', '5', '--json']), {
    command: 'trace',
    options: { pids: [12], probe: 'ngx_request_done', duration: 5, json: true, verbose: false, pack: undefined, maxNodes: DEFAULT_LIMITS.maxNodes },
  });
  const untilCtrlC = parseTrace(['--pid', '12', '--probe', 'p']);
  t.equal(untilCtrlC.command === 'trace' && untilCtrlC.options.duration, Infinity, 'until Ctrl-C without --duration');
  t.throws(() => parseTrace(['--pid', '12']), /which probe\? --probe NAME/);
  t.throws(() => parseTrace(['--probe', 'p']), /trace reads live processes: give --pid PID/);
  t.throws(() => parseTrace(['--pid', '12', '--probe', 'p', '--duration', '0']), /--duration takes a whole number from 1/);
  t.throws(() => parseTrace(['--pid', '12', '--probe', 'p', '--struct', 'x']), /--struct/);
});

const why = bpfUnavailable();
if (why !== null) {
  t.pass('xsample trace', { skip: `eBPF is not available here: ${why}` });
} else {
  for (const [name, binary] of [
    ['our nginx', () => buildNginx()],
    ["Debian's stripped nginx", async () => DEBIAN_NGINX],
  ] as const) {
    t.test(`trace ngx_request_done on ${name}: every request counted by uri and status, bytes as the client got them, another nginx untouched`, async (t) => {
      const bin = await binary();
      const nginx = await startNginx({ binary: bin });
      t.teardown(() => nginx.stop());
      const other = await startNginx({ binary: bin });
      t.teardown(() => other.stop());
      fs.writeFileSync(path.join(nginx.dir, 'html', 'a'), 'the body of /a\n');
      fs.writeFileSync(path.join(other.dir, 'html', 'a'), 'the body of /a\n');

      const trace = await startTrace(nginx.masterPid);
      const got = { a: new Set<number>(), missing: new Set<number>() };
      // The other nginx serves the same requests meanwhile: none of its calls may count.
      const others = Promise.all(Array.from({ length: 13 }, () => request(other.port, '/a')));
      for (let i = 0; i < 37; i++) got.a.add(await request(nginx.port, '/a'));
      for (let i = 0; i < 11; i++) got.missing.add(await request(nginx.port, '/missing'));
      await others;
      // Each response was read to its end after nginx freed the request (it closes the connection after).
      trace.child.kill('SIGINT');
      const r = await trace.child;
      t.equal(r.exitCode, 0, `exit status 0 (stderr: ${trace.stderr()})`);
      const out = JSON.parse(r.stdout);
      const rows = out.rows.map((x: Record<string, unknown>) => ({ host: x.host, uri: x.uri, status: x.status, count: x.count }));
      t.same(rows, [
        { host: 'trace.test', uri: '/a', status: 200, count: 37 },
        { host: 'trace.test', uri: '/missing', status: 404, count: 11 },
      ]);
      t.same(out.pids, [nginx.workerPid], "the master's worker, not the other nginx's");
      t.equal(got.a.size, 1, 'every /a response had the same size');
      t.equal(got.missing.size, 1, 'every 404 had the same size');
      const [a, missing] = out.rows;
      t.same([a.bytes_sent.min, a.bytes_sent.max, a.bytes_sent.sum], [[...got.a][0], [...got.a][0], 37 * [...got.a][0]], 'bytes_sent: what the client received for /a');
      t.same([missing.bytes_sent.min, missing.bytes_sent.max], [[...got.missing][0], [...got.missing][0]], 'bytes_sent: what the client received for the 404');
      t.ok(a.request_time_ms.min >= 0 && a.request_time_ms.max < 10_000, `request_time_ms within reason (${a.request_time_ms.min}..${a.request_time_ms.max})`);
      t.same(out.errors, { 'walk error': 0, 'read fault': 0, 'walk too deep': 0, 'table full': 0 });
      t.ok(out.runs >= 48 && out.ns_per_call > 0, `the cost per call is measured (${out.ns_per_call} ns over ${out.runs} runs)`);
      t.match(trace.stderr(), /48 calls counted in [\d.]+ s; \d+ runs, [\d.]+ µs a call in the kernel; stopped by Ctrl-C/);
      t.notOk(bpfAddon().progIds().includes(trace.id), `program ${trace.id} is gone once xsample is`);
    });
  }
}

if (why === null) {
  t.test("trace redis_commands on Debian's redis: each command counted by name, with its argc", async (t) => {
    const redis = await startRedis({ binary: DEBIAN_REDIS });
    t.teardown(() => redis.stop());
    const trace = await startTrace(redis.pid, 'redis_commands');
    const c = await redis.connect();
    for (let i = 0; i < 23; i++) await c.send('SET', `k${i}`, 'v');
    for (let i = 0; i < 7; i++) await c.send('GET', `k${i}`);
    await c.send('CLIENT', 'SETNAME', 'tracer');
    c.close();
    trace.child.kill('SIGINT');
    const r = await trace.child;
    t.equal(r.exitCode, 0, `exit status 0 (stderr: ${trace.stderr()})`);
    const rows = JSON.parse(r.stdout).rows.map((x: { command: string; count: number; argc: { min: number; max: number } }) => [x.command, x.count, x.argc.min, x.argc.max]);
    // The test's connection is the only client: what it sent is all redis ran.
    t.same(rows, [
      ['set', 23, 3, 3],
      ['get', 7, 2, 2],
      ['client|setname', 1, 3, 3],
    ]);
  });
}

t.test('xgen check refuses a probe the kernel cannot run, at its file:line:col', async (t) => {
  const schema = path.join(tmp, 'refused.yaml');
  fs.writeFileSync(
    schema,
    `xwalk: 1
pack: t
types:
  req_t:
    fields:
      status: uint
      name: ptr char
views:
  reqs:
    of: req_t
    columns:
      status: self.status
probes:
  done:
    function: req_done
    arg: req_t
    keys:
      status: self.status
      at: self.status + now_ms()
`,
  );
  const r = await execa(process.execPath, [xgen, 'check', '--schema', schema], { reject: false });
  t.not(r.exitCode, 0);
  t.match(r.stderr, `${schema}:19:11: probe done: key at: the kernel cannot run this: clock() builds text or asks user space (the clock)`);
  fs.writeFileSync(schema, fs.readFileSync(schema, 'utf8').replace('      at: self.status + now_ms()\n', '      who: cstr(self.name)\n    values:\n      n: symbol(self.name)\n'));
  const v = await execa(process.execPath, [xgen, 'check', '--schema', schema], { reject: false });
  t.not(v.exitCode, 0);
  t.match(v.stderr, `${schema}:21:10: probe done: value n must be an integer (the kernel adds it up), but it is`);
});
