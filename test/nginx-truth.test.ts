/**
 * nginx columns that parity alone cannot vouch for (every back end prints
 * the one lowered walk, so a wrong offset or a wrong walk is wrong in all of
 * them alike), checked against reads that share nothing with the pack:
 * the kernel's own account (/proc/PID/fd, ss's listening sockets and their
 * backlog) for the live worker, and gdb evaluating nginx's C expressions by
 * name (gdb.Value, the -g build's DWARF) on a gcore of it, which xsample
 * reads too: listening sockets, open files, shared memory zones and their
 * free slab pages, pools, the phase engine.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildNginx, holdConnections, httpGet, partialGet, startNginx } from './lib/nginx.ts';
import { xsample } from './lib/xsample.ts';

type Row = Record<string, unknown>;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-nginx-truth-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** gdb's own reading of the worker's structures, by their C names; the pools at XWALK_POOLS (from xsample) read by gdb too. */
const GDB_TRUTH = String.raw`
import json, os
import gdb

def ev(e):
    return gdb.parse_and_eval(e)

def text(s):
    n = int(s['len'])
    return gdb.selected_inferior().read_memory(int(s['data']), n).tobytes().decode('latin-1') if n else ''

def ngx_list(lst, type_name):
    """ngx_list_t's parts (ngx_list.h), as nginx walks them: part, then part->next."""
    t = gdb.lookup_type(type_name).pointer()
    part = lst['part']
    while True:
        elts = part['elts'].cast(t)
        for i in range(int(part['nelts'])):
            yield elts[i]
        if int(part['next']) == 0:
            return
        part = part['next'].dereference()

def fn(p):
    if int(p) == 0:
        return 'NULL'
    b = gdb.block_for_pc(int(p))
    return b.function.name if b is not None and b.function is not None else hex(int(p))

cycle = ev('ngx_cycle')
out = {'pagesize': int(ev('ngx_pagesize')), 'cycle_pool': hex(int(cycle['pool']))}
ls = cycle['listening']
arr = ls['elts'].cast(gdb.lookup_type('ngx_listening_t').pointer())
out['listening'] = [{'addr': hex(int(arr[i].address)), 'address': text(arr[i]['addr_text']), 'fd': int(arr[i]['fd']), 'backlog': int(arr[i]['backlog'])} for i in range(int(ls['nelts']))]
out['open_files'] = [{'addr': hex(int(f.address)), 'fd': int(f['fd']), 'name': text(f['name'])} for f in ngx_list(cycle['open_files'], 'ngx_open_file_t')]
slab = gdb.lookup_type('ngx_slab_pool_t').pointer()
out['zones'] = [{'addr': hex(int(z.address)), 'name': text(z['shm']['name']), 'size': int(z['shm']['size']),
                 'pfree': int(z['shm']['addr'].cast(slab)['pfree']) if int(z['shm']['addr']) else 0}
                for z in ngx_list(cycle['shared_memory'], 'ngx_shm_zone_t')]
cmcf = ev('(ngx_http_core_main_conf_t *) ((ngx_http_conf_ctx_t *) ngx_cycle->conf_ctx[ngx_http_module.index])->main_conf[ngx_http_core_module.ctx_index]')
h = cmcf['phase_engine']['handlers']
phases = []
while int(h['checker']) != 0:
    phases.append({'addr': hex(int(h)), 'checker': fn(h['checker']), 'handler': fn(h['handler']), 'next': int(h['next'])})
    h = h + 1
out['phases'] = phases
conns = cycle['connections']
out['connections'] = [{'fd': int(conns[i]['fd']), 'pool': hex(int(conns[i]['pool'])), 'accept': int(conns[i]['read']['accept']), 'channel': int(conns[i]['read']['channel'])} for i in range(int(cycle['connection_n'])) if int(conns[i]['fd']) != -1]
out['connection_pools'] = [hex(a) for a in sorted(int(conns[i]['pool']) for i in range(int(cycle['connection_n'])) if int(conns[i]['fd']) != -1 and int(conns[i]['pool']) != 0)]
pool_t = gdb.lookup_type('ngx_pool_t').pointer()
pools = {}
for addr in json.loads(os.environ['XWALK_POOLS']):
    p = gdb.Value(addr).cast(pool_t)
    q, r = p, {'blocks': 0, 'used': 0, 'free': 0, 'failed': 0, 'large_count': 0, 'cleanups': 0}
    while int(q) != 0:
        r['blocks'] += 1
        r['used'] += int(q['d']['last']) - int(q)
        r['free'] += int(q['d']['end']) - int(q['d']['last'])
        r['failed'] += int(q['d']['failed'])
        q = q['d']['next']
    l = p['large']
    while int(l) != 0:
        r['large_count'] += 1
        l = l['next']
    c = p['cleanup']
    while int(c) != 0:
        r['cleanups'] += 1
        c = c['next']
    pools[hex(addr)] = r
out['pools'] = pools
print('XWALK-TRUTH ' + json.dumps(out))
`;

/** The worker's fds: fd number to what /proc/PID/fd/N links to. */
function fds(pid: number): Map<number, string> {
  return new Map(fs.readdirSync(`/proc/${pid}/fd`).map((n) => [Number(n), fs.readlinkSync(`/proc/${pid}/fd/${n}`)]));
}

/** Listening TCP sockets on port, from ss: inode and backlog (a listening socket's Send-Q is its backlog). */
async function listeners(port: number): Promise<{ inode: number; backlog: number }[]> {
  const r = await execa('ss', ['-ltnHe', 'sport', '=', `:${port}`]);
  return r.stdout.split('\n').filter(Boolean).map((l) => {
    const f = l.trim().split(/\s+/);
    return { backlog: Number(f[2]), inode: Number(/ino:(\d+)/.exec(l)![1]) };
  });
}

t.test('the -g nginx: listening sockets, open files, zones, pools and phases, against the kernel and gdb by name', async (t) => {
  const binary = await buildNginx();
  const nginx = await startNginx({ binary });
  t.teardown(() => nginx.stop());
  // Requests through both zones (limit_req, limit_conn) put nodes in their slab pools; two held requests keep pools.
  for (let i = 0; i < 5; i++) await httpGet(nginx.port, '/');
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const worker = nginx.workerPid;

  // The kernel: each listening fd is a socket ss lists listening on the port, with that backlog; each open file's fd is that file.
  const live = async (view: string) => {
    const r = await xsample(['--pid', String(worker), '--struct', view, '--json']);
    t.equal(r.code, 0, `${view}: ${r.stderr}`);
    return r.json.items as Row[];
  };
  const listening = await live('ngx_listening');
  const sockets = await listeners(nginx.port);
  const fdsNow = fds(worker);
  t.equal(listening.length, sockets.length, `as many listening sockets as ss lists on port ${nginx.port} (${sockets.length})`);
  for (const l of listening) {
    const inode = Number(/^socket:\[(\d+)\]$/.exec(fdsNow.get(Number(l.fd)) ?? '')?.[1]);
    const s = sockets.find((x) => x.inode === inode);
    t.ok(s, `${l.address}: fd ${l.fd} is the worker's socket ${inode}, listening on the port`);
    t.equal(l.backlog, s?.backlog, `${l.address}: backlog ${l.backlog}, as ss says`);
    t.equal(l.address, `127.0.0.1:${nginx.port}`, 'its address');
  }
  const files = await live('ngx_open_files');
  const logs = new Set([...fdsNow.values()].filter((target) => target.endsWith('.log')));
  t.ok(logs.size > 0, `the worker holds ${logs.size} log files open`);
  for (const f of files.filter((x) => Number(x.fd) >= 0)) t.equal(fdsNow.get(Number(f.fd)), f.name, `open file ${f.name}: fd ${f.fd} is that file`);
  t.same(new Set(files.map((f) => f.name)), logs, "the open files are the worker's open log files (its stderr, fd 2, is one of them too)");

  // gdb by name on a gcore; xsample on the same core.
  const prefix = path.join(dir, 'core');
  await execa('gcore', ['-o', prefix, String(worker)], { stdio: 'ignore' });
  const core = `${prefix}.${worker}`;
  const onCore = async (view: string) => {
    const r = await xsample(['--core', core, '--struct', view, '--json']);
    t.equal(r.code, 0, `${view} on the core: ${r.stderr}`);
    return (r.json.items as Row[]).map(({ pid: _, ...rest }) => rest);
  };
  const pools = await onCore('ngx_pool');
  const script = path.join(dir, 'truth.py');
  fs.writeFileSync(script, GDB_TRUTH);
  const g = await execa('gdb', ['-batch', '-nx', '-iex', 'set auto-load off', binary, core, '-x', script], {
    reject: false,
    env: { XWALK_POOLS: JSON.stringify(pools.map((p) => Number(p.addr))), DEBUGINFOD_URLS: '' },
  });
  const line = g.stdout.split('\n').find((l) => l.startsWith('XWALK-TRUTH '));
  t.ok(line, `gdb read the core by name: ${g.stderr.slice(-300)}`);
  if (!line) return;
  const truth = JSON.parse(line.slice('XWALK-TRUTH '.length));

  t.same((await onCore('ngx_listening')).map((l) => [l.addr, l.address, l.fd, l.backlog]), truth.listening.map((l: Row) => [l.addr, l.address, l.fd, l.backlog]), `ngx_listening: ${truth.listening.length}, as gdb reads ngx_cycle->listening`);
  t.same((await onCore('ngx_open_files')).map((f) => [f.addr, f.fd, f.name]), truth.open_files.map((f: Row) => [f.addr, f.fd, f.name]), `ngx_open_files: ${truth.open_files.length}, as gdb walks ngx_cycle->open_files`);

  t.equal(truth.zones.length, 2, 'gdb: the two zones of the configuration');
  t.same((await onCore('ngx_shm_zones')).map((z) => [z.addr, z.name, z.size, z.free_pages]), truth.zones.map((z: Row) => [z.addr, z.name, z.size, z.pfree]), 'ngx_shm_zones: name, size and free slab pages, as gdb reads each zone\'s ngx_slab_pool_t');
  t.same(
    (await onCore('ngx_memory_zones')).map((z) => [z.name, z.free_bytes, z.used_bytes]),
    truth.zones.map((z: Row) => [z.name, Number(z.pfree) * truth.pagesize, Number(z.size) - Number(z.pfree) * truth.pagesize]),
    `ngx_memory_zones: free and used bytes, as gdb's pfree × ngx_pagesize (${truth.pagesize})`,
  );

  t.ok(pools.some((p) => p.addr === truth.cycle_pool && p.origin === 'cycle'), 'the cycle pool, at ngx_cycle->pool');
  // The master's channel connection borrows the cycle's pool (ngx_add_channel_event): listed once, as the cycle's.
  t.same(
    pools.filter((p) => p.origin === 'connection').map((p) => String(p.addr)).sort((a, b) => Number(a) - Number(b)),
    truth.connection_pools.filter((a: string) => a !== truth.cycle_pool),
    `a pool for each connection in use, as gdb finds them in ngx_cycle->connections (the cycle's once): ${JSON.stringify(truth.connections)}`,
  );
  t.ok(pools.filter((p) => p.origin === 'request').length >= 2, 'the held requests\' pools');
  for (const p of pools) {
    const want = truth.pools[String(p.addr)];
    t.same({ blocks: p.blocks, used: p.used, free: p.free, failed: p.failed, large_count: p.large_count, cleanups: p.cleanups }, want, `${p.origin} pool ${p.addr}: as gdb walks its blocks, large allocations and cleanups`);
  }

  const phases = await onCore('ngx_phase_handlers');
  t.ok(truth.phases.length > 5, `gdb: ${truth.phases.length} phase handlers`);
  t.same(phases.map((p) => [p.addr, p.checker, p.handler, p.next]), truth.phases.map((p: Row) => [p.addr, p.checker, p.handler, p.next]), 'ngx_phase_handlers: each checker and handler, as gdb names them from the DWARF');
});
