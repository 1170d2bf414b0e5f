/**
 * walkee, the C test target: its ground truth must be exactly right, since
 * the sampler's tests are judged against it.  Two kinds of check:
 *  - internal: the truth agrees with the formulas walkee builds from
 *    (recomputed here) and with itself (used + free = blocks * pool size);
 *  - independent: gdb attaches and walks the structures with a Python script,
 *    and what it reads must equal the truth, bookkept while building.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { binPath, build, root, sleep, Walkee, type Json } from './lib/walkee.ts';

/*
 * The independent reader: gdb's Python walks everything from `walkee` with
 * gdb.Value, following the pointers in the target's memory.
 */
const gdbScript = String.raw`
import gdb, json, os

inf = gdb.selected_inferior()
root = gdb.parse_and_eval('walkee')

def u64(addr):
    return int.from_bytes(bytes(inf.read_memory(addr, 8)), 'little')

def walk_list():
    node = root['list']
    seen = {}
    count = total = 0
    r = {'end': 'null'}
    while int(node) != 0:
        a = int(node)
        if a in seen:
            r = {'end': 'cycle', 'back_to': seen[a]}
            break
        try:
            v = int(node['value'])
            nxt = node['next']
        except gdb.MemoryError:
            r = {'end': 'bad', 'addr': hex(a)}
            break
        seen[a] = count
        count += 1
        total += v
        node = nxt
    r.update(count=count, sum=total, head=hex(int(root['list'])))
    return r

def walk_pool(p):
    r = dict(addr=hex(int(p)), blocks=0, used=0, free=0, failed=0,
             large_count=0, large_bytes=0, cleanups=0, cycle=False,
             current_index=None, handlers_ok=True)
    b = p
    seen = set()
    while int(b) != 0:
        if int(b) in seen:
            r['cycle'] = True
            break
        seen.add(int(b))
        d = b['d']
        if int(b) == int(p['current']):
            r['current_index'] = r['blocks']
        r['blocks'] += 1
        r['used'] += int(d['last']) - int(b)
        r['free'] += int(d['end']) - int(d['last'])
        r['failed'] += int(d['failed'])
        b = d['next']
    l = p['large']
    while int(l) != 0:
        a = int(l['alloc'])
        if a:
            r['large_count'] += 1
            r['large_bytes'] += u64(a - 8) & ~7    # glibc chunk size
        l = l['next']
    c = p['cleanup']
    while int(c) != 0:
        r['cleanups'] += 1
        r['handlers_ok'] &= 'walkee_cleanup_handler' in str(c['handler'])
        c = c['next']
    return r

def walk_array():
    a = root['array']
    elts = a['elts'].cast(gdb.lookup_type('walkee_elt_t').pointer())
    n = int(a['nelts'])
    w = ids = 0
    for i in range(n):
        w += int(elts[i]['weight'])
        ids += int(elts[i]['id'])
    return dict(count=n, weight_sum=w, id_sum=ids, nalloc_ok=int(a['nalloc']) >= n)

def walk_kvs():
    l = root['kvs']
    kvp = gdb.lookup_type('walkee_kv_t').pointer()
    part = l['part'].address
    count = parts = kb = vb = 0
    names_ok = True
    last = None
    while int(part) != 0:
        parts += 1
        last = int(part)
        elts = part['elts'].cast(kvp)
        for i in range(int(part['nelts'])):
            k = elts[i]['key']
            v = elts[i]['value']
            ks = bytes(inf.read_memory(int(k['data']), int(k['len']))).decode()
            vs = bytes(inf.read_memory(int(v['data']), int(v['len']))).decode()
            names_ok &= ks == 'k%d' % count and vs == 'value-%d' % count
            kb += len(ks)
            vb += len(vs)
            count += 1
        part = part['next']
    return dict(count=count, parts=parts, key_bytes=kb, value_bytes=vb,
                names_ok=names_ok, last_ok=last == int(l['last']))

def walk_jobs():
    jt = gdb.lookup_type('walkee_job_t')
    off = [f for f in jt.fields() if f.name == 'link'][0].bitpos // 8
    head = root['jobs'].address
    q = root['jobs']['next']
    prev = int(head)
    r = dict(count=0, cost_sum=0, first_id=None, last_id=None, prev_ok=True,
             end='head', link_offset=off)
    while int(q) != int(head):
        try:
            r['prev_ok'] &= int(q['prev']) == prev
            job = gdb.Value(int(q) - off).cast(jt.pointer()).dereference()   # container-of
            jid = int(job['id'])
            cost = int(job['cost'])
            nxt = q['next']
        except gdb.MemoryError:
            r['end'] = 'bad'
            break
        if r['first_id'] is None:
            r['first_id'] = jid
        r['last_id'] = jid
        r['count'] += 1
        r['cost_sum'] += cost
        prev = int(q)
        q = nxt
    return r

def walk_timers():
    t = root['timers']
    s = int(t['sentinel'])
    keys = []
    ok = True
    def black_height(n, parent):
        nonlocal ok
        if int(n) == s:
            return 1
        ok &= int(n['parent']) == parent
        lh = black_height(n['left'], int(n))
        keys.append(int(n['key']))
        rh = black_height(n['right'], int(n))
        red = int(n['color']) == 1
        if red:
            ok &= int(n['left']['color']) == 0 and int(n['right']['color']) == 0
        ok &= lh == rh
        return lh + (0 if red else 1)
    rt = t['root']
    if int(rt) != s:
        ok &= int(rt['color']) == 0
    black_height(rt, 0)
    ok &= all(keys[i] < keys[i + 1] for i in range(len(keys) - 1))
    h = 0
    for k in keys:
        h = (h * 1000003 + k) % (1 << 31)
    return dict(count=len(keys), key_sum=sum(keys),
                min_key=min(keys) if keys else None,
                max_key=max(keys) if keys else None, inorder_hash=h, rb_ok=ok,
                sentinel_ok=s == int(root['timer_sentinel'].address)
                            and int(root['timer_sentinel']['color']) == 0,
                insert=str(t['insert']))

mode = os.environ.get('WALKEE_GDB_MODE', 'full')
out = {'list': walk_list()}
if mode == 'full':
    out['pools'] = [walk_pool(root['pools'][i]) for i in range(int(root['npools']))]
    out['array'] = walk_array()
    out['kvs'] = walk_kvs()
    out['jobs'] = walk_jobs()
    out['timers'] = walk_timers()
    out['name'] = bytes(inf.read_memory(int(root['name']['data']),
                                        int(root['name']['len']))).decode()
elif mode == 'corrupt':
    out['pool0'] = walk_pool(root['pools'][0])
    out['jobs'] = walk_jobs()
print('WALKEE-GDB ' + json.dumps(out))
`;

const haveGdb = spawnSync('gdb', ['--version']).status === 0;

/** Attaches gdb to pid (stopping it meanwhile), runs the script, returns its JSON. */
const gdbWalk = (pid: number, scriptPath: string, mode: 'full' | 'list' | 'corrupt'): Promise<Json> =>
  new Promise((res, rej) => {
    const gdb = spawn('gdb', ['-batch', '-nx', '-p', String(pid), '-x', scriptPath], {
      env: { ...process.env, WALKEE_GDB_MODE: mode, DEBUGINFOD_URLS: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    gdb.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    gdb.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
    const timer = setTimeout(() => gdb.kill('SIGKILL'), 20_000);
    gdb.on('close', code => {
      clearTimeout(timer);
      const line = out.split('\n').find(l => l.startsWith('WALKEE-GDB '));
      if (line) res(JSON.parse(line.slice('WALKEE-GDB '.length)));
      else rej(new Error(`gdb (exit ${code}) printed no result:\n${out}\n${err}`));
    });
  });

const pick = (o: Json, keys: string[]): Json => Object.fromEntries(keys.map(k => [k, o[k]]));

t.before(build);

t.test('bad options exit 2, --help exits 0', async t => {
  for (const args of [['--layout', 'diagonal'], ['--nodes', '-3'], ['--bogus'], ['--pool-size', '100'], ['stray']]) {
    const r = spawnSync(binPath, args, { encoding: 'utf8', input: '' });
    t.equal(r.status, 2, `${args.join(' ')} exits 2`);
    t.equal(r.stdout, '', `${args.join(' ')} prints nothing on stdout`);
    t.match(r.stderr, /^walkee: /, `${args.join(' ')} explains on stderr`);
  }
  const help = spawnSync(binPath, ['--help'], { encoding: 'utf8', input: '' });
  t.equal(help.status, 0);
  t.match(help.stdout, /usage: walkee/);
});

t.test('EOF on stdin exits 0', async t => {
  const w = new Walkee(['--nodes', '10']);
  t.teardown(() => w.kill());
  t.equal((await w.next()).ready, true);
  w.child.stdin.end();
  t.same(await w.exited, { code: 0, signal: null });
});

t.test('truth, checked against the formulas and against gdb', async t => {
  const N = 5000, P = 3, M = 100, K = 50, J = 20, T = 30, poolSize = 1024;
  const w = new Walkee([
    '--nodes', `${N}`, '--layout', 'shuffled', '--seed', '7', '--pools', `${P}`,
    '--pool-size', `${poolSize}`, '--array', `${M}`, '--kvs', `${K}`, '--jobs', `${J}`, '--timers', `${T}`,
  ]);
  const dir = mkdtempSync(join(tmpdir(), 'walkee-test-'));
  const script = join(dir, 'walk.py');
  writeFileSync(script, gdbScript);
  t.teardown(async () => {
    await w.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  const ready = await w.next();
  t.same(ready, { ready: true, pid: w.child.pid }, 'ready line with its pid');

  const truth = await w.ask('truth');
  const range = (n: number) => Array.from({ length: n }, (_, i) => i);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  t.equal(truth.list.count, N, 'list count');
  t.equal(truth.list.sum, sum(range(N).map(i => i * 7 + 3)), 'list sum');
  t.match(truth.list.head, /^0x[0-9a-f]+$/, 'list head address');

  t.equal(truth.pools.length, P, 'one entry per pool');
  for (const [i, p] of truth.pools.entries()) {
    t.match(p.addr, /^0x[0-9a-f]+$/, `pool ${i} address`);
    t.ok(p.blocks >= 1, `pool ${i} has blocks`);
    t.equal(p.used + p.free, p.blocks * poolSize, `pool ${i}: used + free = blocks * pool size`);
  }
  t.ok(truth.pools.some((p: Json) => p.blocks > 1), 'some pool has several blocks');
  t.ok(truth.pools.some((p: Json) => p.large_count === 0), 'some pool has no larges');
  t.ok(truth.pools.some((p: Json) => p.large_count > 0), 'some pool has larges');
  t.ok(truth.pools.some((p: Json) => p.cleanups === 0), 'some pool has no cleanups');
  t.ok(truth.pools.some((p: Json) => p.cleanups > 0), 'some pool has cleanups');

  t.same(truth.array, {
    count: M,
    weight_sum: sum(range(M).map(i => (i * 31 + 17) % 1000)),
    id_sum: sum(range(M)),
  }, 'array');
  t.same(truth.kvs, {
    count: K,
    parts: Math.ceil(K / 8),
    key_bytes: sum(range(K).map(i => `k${i}`.length)),
    value_bytes: sum(range(K).map(i => `value-${i}`.length)),
  }, 'kvs');
  t.same(truth.jobs, {
    count: J,
    cost_sum: sum(range(J).map(i => ((i * 37 + 11) % 101) + 1)),
    first_id: 0,
    last_id: J - 1,
  }, 'jobs');
  t.equal(truth.timers.count, T, 'timers count');
  t.ok(truth.timers.min_key < truth.timers.max_key, 'timer keys spread');
  t.ok(truth.timers.key_sum >= T * truth.timers.min_key && truth.timers.key_sum <= T * truth.timers.max_key,
    'timer key sum within bounds');
  t.ok(truth.timers.max_key < 2 ** 31 && truth.timers.inorder_hash < 2 ** 31, 'keys and hash < 2^31');
  t.equal(truth.name, 'walkee');

  t.same(await w.ask('truth'), truth, 'truth is stable');
  const first = await w.ask('gaps');
  t.ok(first.iterations > 0, 'the ticker ticks');

  if (!haveGdb) {
    t.pass('independent read by gdb', { skip: 'gdb is not installed' });
  } else {
    const g = await gdbWalk(w.child.pid!, script, 'full');
    t.same(g.list, { end: 'null', count: N, sum: truth.list.sum, head: truth.list.head }, 'gdb: list');
    const poolKeys = ['addr', 'blocks', 'used', 'free', 'failed', 'large_count', 'large_bytes', 'cleanups'];
    for (const [i, p] of g.pools.entries()) {
      t.same(pick(p, poolKeys), truth.pools[i], `gdb: pool ${i}`);
      t.equal(p.cycle, false, `gdb: pool ${i} chain ends`);
      t.not(p.current_index, null, `gdb: pool ${i} current is in its chain`);
      t.ok(p.handlers_ok, `gdb: pool ${i} cleanup handlers point at walkee_cleanup_handler`);
    }
    t.ok(g.pools.some((p: Json) => p.current_index > 0), 'gdb: some pool\'s current moved on (failed > 4)');
    t.same(g.array, { ...truth.array, nalloc_ok: true }, 'gdb: array');
    t.same(g.kvs, { ...truth.kvs, names_ok: true, last_ok: true }, 'gdb: kvs');
    t.same(g.jobs, { ...truth.jobs, prev_ok: true, end: 'head', link_offset: 8 }, 'gdb: jobs (container-of)');
    t.same(pick(g.timers, ['count', 'key_sum', 'min_key', 'max_key', 'inorder_hash']), truth.timers, 'gdb: timers');
    t.ok(g.timers.rb_ok, 'gdb: timers form a valid red-black tree');
    t.ok(g.timers.sentinel_ok, 'gdb: the sentinel is walkee.timer_sentinel, black');
    t.match(g.timers.insert, /ngx_rbtree_insert_timer_value/, 'gdb: insert function');
    t.equal(g.name, 'walkee', 'gdb: name');

    const stopped = await w.ask('gaps');
    t.ok(stopped.iterations > 0, 'gaps: iterations');
    t.ok(stopped.max_gap_us >= 1000, `gaps: gdb's stop shows as a gap (${stopped.max_gap_us} us)`);
    t.ok(stopped.max_held_us >= 1000, `gaps: and as time held off, neither running nor waiting for a CPU (${stopped.max_held_us} us)`);
    t.ok(stopped.max_held_us <= stopped.max_gap_us, 'gaps: held off <= the gap');
    t.ok(stopped.p99_gap_us <= stopped.max_gap_us, 'gaps: p99 <= max');
    t.ok(stopped.elapsed_us > 0, 'gaps: elapsed');

    // The mutator swaps values: links stay, the sum is restored once it stops.
    t.same(await w.ask('mutate on'), { ok: true });
    await sleep(200);
    const moving = await gdbWalk(w.child.pid!, script, 'list');
    t.equal(moving.list.count, N, 'gdb while mutating: the links are stable');
    t.equal(moving.list.end, 'null');
    t.same(await w.ask('mutate off'), { ok: true });
    const still = await gdbWalk(w.child.pid!, script, 'list');
    t.equal(still.list.sum, truth.list.sum, 'gdb after mutate off: sum preserved');
    t.same(await w.ask('truth'), truth, 'truth unchanged by the mutator');

    // Corruptions, as seen from outside.
    for (const c of ['cycle', 'pool-cycle', 'queue']) t.same(await w.ask(`corrupt ${c}`), { ok: true }, c);
    const bad = await gdbWalk(w.child.pid!, script, 'corrupt');
    t.same(pick(bad.list, ['end', 'back_to', 'count']), { end: 'cycle', back_to: Math.floor(N / 2), count: N },
      'gdb: the last node points back to the middle one');
    t.equal(bad.pool0.cycle, true, 'gdb: pool 0 chain loops');
    t.equal(bad.pool0.blocks, truth.pools[0].blocks, 'gdb: ... after its last block');
    t.same(pick(bad.jobs, ['end', 'count']), { end: 'bad', count: Math.floor(J / 2) + 1 },
      'gdb: the middle job has a bad next');
    t.same(await w.ask('repair'), { ok: true });
    t.same(await w.ask('corrupt badptr'), { ok: true });
    const badptr = await gdbWalk(w.child.pid!, script, 'list');
    t.same(pick(badptr.list, ['end', 'addr', 'count']), { end: 'bad', addr: '0x10', count: Math.floor(N / 2) + 1 },
      'gdb: the middle node points at 0x10');
    t.same(await w.ask('repair'), { ok: true });
    t.same(await gdbWalk(w.child.pid!, script, 'full'), g, 'gdb: repaired, all as before');
  }

  t.same(await w.ask('corrupt cycle'), { ok: true }, 'corrupt cycle');
  t.same(await w.ask('repair'), { ok: true }, 'repair');
  t.same(await w.ask('no such thing'), { error: 'unknown command: no such thing' });
  t.same(await w.ask('quit'), { ok: true }, 'quit');
  t.same(await w.exited, { code: 0, signal: null }, 'exits 0');
});
