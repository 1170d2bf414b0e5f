/**
 * xsample record --struct ngx_request_time on a real nginx worker, our
 * build and Debian's stripped one: K requests held in flight (request line
 * and Host sent, headers unfinished) are K stacks host;uri;read;write, each
 * weighing the number of samples that saw it: every complete sample, since
 * the requests stay in flight the whole time. The samples taken and those
 * the rate missed add up to rate x duration.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
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

/** The folded lines of a recording as { frames, weight }. */
const parseFolded = (text: string) =>
  text
    .trim()
    .split('\n')
    .map((l) => {
      const at = l.lastIndexOf(' ');
      return { frames: l.slice(0, at).split(';'), weight: Number(l.slice(at + 1)) };
    });

for (const [build, binaryOf] of BUILDS) {
  t.test(`ngx_memory at 5 Hz for 1 s: under each pool its used + free + large bytes, as ngx_pool says; the zones by name: ${build}`, async (t) => {
    const nginx = await startNginx({ binary: await binaryOf() });
    t.teardown(() => nginx.stop());
    const idle = await holdConnections(nginx.port, 2);
    const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
    t.teardown(async () => {
      await idle.close();
      await held.close();
    });
    const pid = String(nginx.workerPid);
    // 5 samples over 1 s of an idle worker: bytes held are a gauge, so each pool weighs its bytes (their mean), not 5 times them.
    const r = await xsample(['record', '--pid', pid, '--struct', 'ngx_memory', '--rate', '5', '--duration', '1']);
    t.equal(r.code, 0, r.stderr);
    t.match(r.stderr, /^xsample: 5 samples in .*; weights: bytes held, the mean over the samples$/m);
    const stacks = parseFolded(r.stdout);
    const pools = (await xsample(['--pid', pid, '--struct', 'ngx_pool', '--json'])).json.items as { origin: string; addr: string; used: number; free: number; large_bytes: number }[];
    const underPool = new Map<string, { owner: string; bytes: number; leaves: Set<string> }>();
    for (const s of stacks.filter((x) => x.frames.some((f) => f.startsWith('pool ')))) {
      t.equal(s.frames[0], `pid ${pid}`, 'the worker first');
      const addr = s.frames.find((f) => f.startsWith('pool '))!.slice(5);
      const seen = underPool.get(addr) ?? { owner: s.frames[1], bytes: 0, leaves: new Set<string>() };
      seen.bytes += s.weight;
      seen.leaves.add(s.frames[s.frames.length - 1]);
      underPool.set(addr, seen);
    }
    t.same([...underPool.keys()].sort(), pools.map((p) => p.addr).sort(), 'the pools ngx_pool finds, each once');
    for (const p of pools) {
      const mine = underPool.get(p.addr);
      t.equal(mine?.bytes, p.used + p.free + p.large_bytes, `${p.origin} pool ${p.addr}: used + free + large_bytes`);
      t.equal(mine?.owner, p.origin, 'under its owner: cycle, connection or request');
      t.ok(mine && [...mine.leaves].every((l) => l === 'blocks_bytes' || l === 'large_bytes'), 'ending in its blocks or its large allocations');
    }
    const requests = stacks.filter((s) => s.frames[1] === 'request');
    t.same([...new Set(requests.map((s) => `${s.frames[2]};${s.frames[3]}`))].sort(), ['method GET;uri /hold/0', 'method GET;uri /hold/1'], 'each request by method and uri');
    t.ok(stacks.filter((s) => s.frames[1] === 'connection').every((s) => s.frames[2] === 'remote 127.0.0.1'), 'each connection by remote address');
    const zones = (await xsample(['--pid', pid, '--struct', 'ngx_shm_zones', '--json'])).json.items as { name: string; size: number; free_pages: number }[];
    t.ok(zones.length > 0, 'the test config has zones');
    for (const z of zones) {
      const mine = stacks.filter((s) => s.frames[1] === 'zone' && s.frames[2] === `name ${z.name}`);
      t.equal(mine.reduce((a, s) => a + s.weight, 0), z.size, `zone ${z.name}: its size, pages used and free`);
      t.equal(mine.find((s) => s.frames[3] === 'free_bytes')?.weight ?? 0, z.free_pages * 4096, `zone ${z.name}: its free pages`);
    }
    // gdb and lldb: the flame graph's command writes the same stacks, from the same idle worker.
    for (const [name, run] of [
      ['gdb', gdb],
      ['lldb', lldb],
    ] as const) {
      const out = path.join(os.tmpdir(), `xwalk-ngx-memory-${name}-${pid}.folded`);
      t.teardown(() => fs.rmSync(out, { force: true }));
      const d = await run({ pid: nginx.workerPid }, 'nginx', [`ngx-memory --folded ${out}`]);
      t.match(d.stdout, `wrote ${out}: ${stacks.length} stacks`, `${name}: ${d.stderr.slice(-300)}`);
      t.equal(fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : '', `${r.stdout.trim()}\n`, `${name}: the stacks xsample record wrote`);
    }
    const plain = await xsample(['--pid', pid, '--struct', 'ngx_memory']);
    t.equal(plain.code, 1);
    t.match(plain.stderr, /ngx_memory is a flame graph of the views ngx_memory_cycle, ngx_memory_connections, ngx_memory_requests, ngx_memory_zones: record it/);
  });
}
