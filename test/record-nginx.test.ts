/**
 * xsample record --struct ngx_request_time on a real nginx worker, our
 * build and Debian's stripped one: K requests held in flight (request line
 * and Host sent, headers unfinished) are K stacks host;uri;read;write, each
 * weighing the number of samples that saw it: every complete sample, since
 * the requests stay in flight the whole time. The samples taken and those
 * the rate missed add up to rate x duration. ngx_memory (each pool as its
 * blocks and large allocations, each zone as its pages) weighs what gdb reads
 * by C names on a core of our -g build.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { buildNginx, holdConnections, partialGet, startNginx } from './lib/nginx.ts';
import { parseFolded, xsample } from './lib/xsample.ts';

const K = 3;
const RATE = 50;
const SECONDS = 2;

/** How the read handler's frame reads: by name with a .symtab; stripped, a static function is the executable's name and its address in the file. */
const BUILDS: [string, () => Promise<string>, string][] = [
  ['our -g build', () => buildNginx(), 'ngx_http_process_request_headers'],
  ["Debian's stripped nginx", async () => '/usr/sbin/nginx', 'nginx\\+0x[0-9a-f]+'],
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

/**
 * ngx_memory read by gdb on a core of our -g build, by C names, as the schema defines it (packs/nginx/schema.yaml:
 * ngx_memory_*): each pool's blocks, (char *) p->d.end - (char *) p over its d.next chain, and its large
 * allocations, the glibc chunk size of each non-NULL alloc (the word below it, flags masked off); under the cycle,
 * each client connection (fd != -1, neither accept nor channel) by remote address, each request (c->data signed
 * "HTTP") by method and uri; each shared memory zone by name, its pages free (pfree) and the rest of its size used.
 * Written as the stacks of a folded file, without the process frame, each leaf with its weight.
 */
const GDB_NGX_MEMORY = String.raw`
import gdb, json
char_p = gdb.lookup_type('char').pointer()
size_p = gdb.lookup_type('size_t').pointer()
u32_p = gdb.lookup_type('uint32_t').pointer()
req_p = gdb.lookup_type('ngx_http_request_t').pointer()
zone_p = gdb.lookup_type('ngx_shm_zone_t').pointer()
slab_p = gdb.lookup_type('ngx_slab_pool_t').pointer()
inferior = gdb.selected_inferior()
def text(s):
    # An ngx_str_t's bytes (Value.string(length=) hangs on some of them in a core).
    return bytes(inferior.read_memory(int(s['data']), int(s['len']))).decode('latin-1') if int(s['len']) else ''
stacks = {}
def pool(frames, p):
    blocks = 0
    b = p
    while int(b) != 0:
        blocks += int(b['d']['end'].cast(char_p) - b.cast(char_p))
        b = b['d']['next']
    large = 0
    l = p['large']
    while int(l) != 0:
        if int(l['alloc']) != 0:
            large += int((l['alloc'].cast(char_p) - 8).cast(size_p).dereference()) & ~7
        l = l['next']
    at = ';'.join(frames + ['pool %s' % hex(int(p))])
    stacks[at + ';blocks_bytes'] = blocks
    stacks[at + ';large_bytes'] = large
cycle = gdb.parse_and_eval('ngx_cycle')
pool(['cycle'], cycle['pool'])
for i in range(int(cycle['connection_n'])):
    c = cycle['connections'][i]
    if int(c['fd']) == -1:
        continue
    ev = c['read'].dereference()
    if int(ev['accept']) == 0 and int(ev['channel']) == 0:
        pool(['connection', 'remote ' + text(c['addr_text'])], c['pool'])
    if int(c['data']) != 0 and int(c['data'].cast(u32_p).dereference()) == 0x50545448:
        r = c['data'].cast(req_p)
        pool(['request', 'method ' + text(r['method_name']), 'uri ' + text(r['uri'])], r['pool'])
part = gdb.parse_and_eval('&ngx_cycle->shared_memory.part')
while int(part) != 0:
    elts = part['elts'].cast(zone_p)
    for i in range(int(part['nelts'])):
        shm = elts[i]['shm']
        free = int(shm['addr'].cast(slab_p)['pfree']) * 4096 if int(shm['addr']) != 0 else 0
        stacks['zone;name %s;used_bytes' % text(shm['name'])] = int(shm['size']) - free
        stacks['zone;name %s;free_bytes' % text(shm['name'])] = free
    part = part['next']
print('XWALK-JSON ' + json.dumps(stacks))
`;

/** GDB_NGX_MEMORY's stacks, by gdb on a gcore of the worker, with the binary that has its DWARF. */
async function gdbNgxMemory(binary: string, pid: number): Promise<Map<string, number>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-ngx-memory-core-'));
  try {
    await execa('gcore', ['-o', path.join(dir, 'core'), String(pid)], { stdio: 'ignore' });
    fs.writeFileSync(path.join(dir, 'memory.py'), GDB_NGX_MEMORY);
    const r = await execa('gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', binary, path.join(dir, `core.${pid}`), '-x', path.join(dir, 'memory.py')], { reject: false, env: { DEBUGINFOD_URLS: '' }, timeout: 120_000 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('XWALK-JSON '));
    if (!line) throw new Error(`gdb gave no answer: ${r.stderr}`);
    return new Map(Object.entries(JSON.parse(line.slice(11)) as Record<string, number>));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

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
    t.notMatch(r.stderr, /instant/, 'a view with nothing for the kernel to read at the instant is read from memory, and no line says otherwise');
    const on = await xsample(['record', '--pid', pid, '--struct', 'ngx_memory', '--rate', '5', '--duration', '1', '--instant', 'on']);
    t.same([on.code, on.stderr.trim()], [1, 'xsample: --instant on: view ngx_memory names nothing the kernel reads at the instant (no instant: in its schema)'], 'asked for, that is one clear line');
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
    if (build === 'our -g build') {
      // An independent read: gdb, by C names, on a core of the same idle worker.
      const truth = await gdbNgxMemory(nginx.binary, nginx.workerPid);
      const nonzero = (m: Map<string, number>) => [...m].filter(([, w]) => w !== 0).sort(([a], [b]) => a.localeCompare(b));
      const recorded = new Map(stacks.map((s) => [s.frames.slice(1).join(';'), s.weight]));
      t.ok(truth.size >= 2 * (1 + 4 + 2), `gdb read the cycle's pool, 4 connections', 2 requests' and the zones (${truth.size} stacks)`);
      t.same(nonzero(recorded), nonzero(truth), 'every stack of the recording weighs what gdb reads by C names on a core, and no other stack');
    }
    const plain = await xsample(['--pid', pid, '--struct', 'ngx_memory']);
    t.equal(plain.code, 1);
    t.match(plain.stderr, /ngx_memory is a flame graph of the views ngx_memory_cycle, ngx_memory_connections, ngx_memory_requests, ngx_memory_zones: record it/);
  });
}
