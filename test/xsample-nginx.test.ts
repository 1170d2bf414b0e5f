/**
 * xsample on a real nginx worker: the cycle pool and the pools of the
 * connections and requests the test holds open equal an independent read
 * by gdb (gdb.Value over nginx's own DWARF) of the same idle worker; a core
 * of that worker gives the same answer again.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { holdConnections, partialGet, startNginx } from './lib/nginx.ts';
import { figures, xsample } from './lib/xsample.ts';

const IDLE = 4;
const IN_FLIGHT = 3;

/** gdb walks the same pools with gdb.Value: nginx's types, gdb's reads; none of ours. */
const gdbPools = String.raw`
import gdb, json
inf = gdb.selected_inferior()
def chunk_size(p):
    return int.from_bytes(bytes(inf.read_memory(int(p) - 8, 8)), 'little') & ~7
def pool(p, origin):
    r = dict(pid=inf.pid, origin=origin, addr=hex(int(p)), blocks=0, used=0, free=0, failed=0, large_count=0, large_bytes=0, cleanups=0)
    b = p
    while int(b) != 0:
        r['blocks'] += 1
        r['used'] += int(b['d']['last']) - int(b)
        r['free'] += int(b['d']['end']) - int(b['d']['last'])
        r['failed'] += int(b['d']['failed'])
        b = b['d']['next']
    l = p['large']
    while int(l) != 0:
        if int(l['alloc']) != 0:
            r['large_count'] += 1
            r['large_bytes'] += chunk_size(l['alloc'])
        l = l['next']
    c = p['cleanup']
    while int(c) != 0:
        r['cleanups'] += 1
        c = c['next']
    return r
cycle = gdb.parse_and_eval('ngx_cycle')
out = [pool(cycle['pool'], 'cycle')]
conns = cycle['connections']
reqs = []
u32 = gdb.lookup_type('uint32_t').pointer()
req_t = gdb.lookup_type('ngx_http_request_t').pointer()
for i in range(int(cycle['connection_n'])):
    c = conns[i]
    if int(c['fd']) == -1:
        continue
    if int(c['pool']) != 0:
        out.append(pool(c['pool'], 'connection'))
    if int(c['data']) != 0 and int(c['data'].cast(u32).dereference()) == 0x50545448:
        reqs.append(pool(c['data'].cast(req_t)['pool'], 'request'))
# Each pool once, under the first root that reaches it (the channel connection shares the cycle pool).
seen = set()
unique = []
for r in out + reqs:
    if r['addr'] not in seen:
        seen.add(r['addr'])
        unique.append(r)
print('XWALK-JSON ' + json.dumps(unique))
`;

async function gdbRead(pid: number): Promise<Record<string, unknown>[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-gdb-'));
  try {
    const script = path.join(dir, 'pools.py');
    fs.writeFileSync(script, gdbPools);
    const r = await execa('gdb', ['-batch', '-nx', '-p', String(pid), '-x', script], { reject: false, env: { DEBUGINFOD_URLS: '' }, timeout: 60_000 });
    const line = r.stdout.split('\n').find((l) => l.startsWith('XWALK-JSON '));
    if (!line) throw new Error(`gdb gave no answer: ${r.stderr}`);
    return JSON.parse(line.slice(11));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const byAddr = (rows: Record<string, unknown>[]) => [...rows].sort((a, b) => String(a.addr).localeCompare(String(b.addr)));

t.test('ngx_pool on a live nginx worker equals gdb, and so does its core', async (t) => {
  const nginx = await startNginx();
  t.teardown(() => nginx.stop());
  const idle = await holdConnections(nginx.port, IDLE);
  const inFlight = await holdConnections(nginx.port, IN_FLIGHT, { partialRequest: partialGet });
  t.teardown(async () => {
    await idle.close();
    await inFlight.close();
  });
  const pid = String(nginx.workerPid);

  const emptyCache = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-cache-'));
  t.teardown(() => fs.rmSync(emptyCache, { recursive: true, force: true }));
  const live = await xsample(['--pid', pid, '--struct', 'ngx_pool', '--json', '--verbose'], { env: { XDG_CACHE_HOME: emptyCache } });
  t.equal(live.code, 0, live.stderr);
  // Our build's build-id moves with the machine's package versions (openssl's headers, say): it is served by
  // the layout committed for this very build-id, or by its own DWARF; never by a look-alike's release + signature.
  const id12 = live.json.build_id.slice(0, 12);
  t.match(live.stderr.trim().split('\n').pop(), new RegExp(`^xsample: ngx_pool: .*layout nginx 1\\.22\\.1 \\(${id12}(, derived from DWARF)?\\)\\)$`), 'served by its build-id or its own DWARF');
  t.equal(live.json.pack, 'nginx');
  t.equal(live.json.release, '1.22.1');
  t.equal(live.json.partial, false);
  const origins = (o: string) => live.json.items.filter((i: { origin: string }) => i.origin === o).length;
  t.equal(origins('cycle'), 1, 'one cycle pool');
  t.equal(origins('connection'), IDLE + IN_FLIGHT, 'a pool per connection the test holds');
  t.equal(origins('request'), IN_FLIGHT, 'a pool per request in flight');

  const gdb = await gdbRead(nginx.workerPid);
  t.same(byAddr(live.json.items), byAddr(gdb), 'every pool, figure for figure, as gdb reads it');

  const cycle = await xsample(['--pid', pid, '--struct', 'ngx_cycle_pool', '--json']);
  t.same(cycle.json.items, [gdb[0]], 'ngx_cycle_pool is the cycle pool');

  const one = await xsample(['--pid', pid, '--struct', 'ngx_pool', '--addr', 'ngx_cycle.pool', '--json']);
  t.same(one.json.items.map(figures), [figures(gdb[0])], '--addr with an expression');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-core-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await execa('gcore', ['-o', path.join(dir, 'core'), pid], { stdio: 'ignore' });
  const core = await xsample(['--core', path.join(dir, `core.${pid}`), '--exe', nginx.binary, '--struct', 'ngx_pool', '--json']);
  t.equal(core.code, 0, core.stderr);
  t.same(byAddr(core.json.items), byAddr(gdb), 'the core says the same');
  t.equal(core.json.build_id, live.json.build_id);
});
