/**
 * One schema, three back ends, one answer: on the same live target and on
 * the same core (gcore), every view's --json from the generated gdb
 * extension, the generated lldb extension and xsample (live and --core)
 * is identical, byte for byte, on walkee and on nginx.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { objectsRead, readsClock, type ViewIR } from '../generators/ir.ts';
import { loadSchema } from '../printers/checked-schema.ts';
import { ElfFile } from '../core/elf.ts';
import { commandNames } from '../printers/python-extension.ts';
import { gdb, lldb, type Where } from './lib/debuggers.ts';
import { holdConnections, nginxBinary, partialGet, startNginx } from './lib/nginx.ts';
import { binPath, root, startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

/** The pack's views of the program's own types: those that read an object's (OpenResty's Lua) are compared in lua.test.ts, on a worker that maps it. */
function views(pack: string): { view: string; command: string }[] {
  const ir = loadSchema(path.join(root, 'packs', pack, 'schema.yaml'));
  // A view whose items are the program's own: its columns of an object the process does not map are left out alike.
  const own = (v: ViewIR) => !ir.structs.get(v.of)?.object && objectsRead([v.roots, v.checks], ir).size === 0;
  return [...ir.views.values()].filter(own).map((v) => ({ view: v.name, command: commandNames(v)[0] }));
}

async function xsampleAll(pack: string, where: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const { view } of views(pack)) {
    const r = await xsample([...where, '--struct', view, '--json']);
    out.push(r.stdout.trim());
  }
  return out;
}

/**
 * What reads the sample's clock: the "clock" of the result and every column
 * whose expression reads now_ms() or monotonic_ms(). On a live process each
 * back end reads the clock at its own moment, so these differ by the time
 * between the reads; on a core the clock is the program's own, the same
 * for every back end: there they are compared too.
 */
function clockColumns(pack: string): Record<string, string[]> {
  const ir = loadSchema(path.join(root, 'packs', pack, 'schema.yaml'));
  return Object.fromEntries([...ir.views.values()].map((v) => [v.name, v.columns.filter((c) => readsClock(c.expr)).map((c) => c.name)]));
}
const CLOCK_COLUMNS: Record<string, string[]> = { ...clockColumns('walkee'), ...clockColumns('nginx') };

function withoutClock(json: string): string {
  const r = JSON.parse(json);
  if (r.clock) r.clock = '(clock)';
  for (const c of CLOCK_COLUMNS[r.view] ?? []) for (const item of r.items) item[c] = '(clock)';
  return JSON.stringify(r);
}

/** On a stripped binary, file_static() has no .symtab to read: these views are partial there, and say why. */
const NEEDS_SYMTAB = new Set(['ngx_filters']);

async function compare(t: Test, pack: string, where: Where, xsampleWhere: string[], what: string, stripped = false) {
  const vs = views(pack);
  const commands = vs.map((v) => `${v.command} --json`);
  const want = await xsampleAll(pack, xsampleWhere);
  const g = await gdb(where, pack, commands);
  const l = await lldb(where, pack, commands);
  const live = 'pid' in where;
  const same = live ? withoutClock : (s: string) => s;
  t.equal(g.json.length, vs.length, `gdb answered every view (${what}) ${g.stderr.slice(-300)}`);
  t.equal(l.json.length, vs.length, `lldb answered every view (${what}) ${l.stderr.slice(-300)}`);
  vs.forEach((v, i) => {
    const expected = JSON.parse(want[i]);
    if (stripped && NEEDS_SYMTAB.has(v.view)) t.match(expected.errors[0]?.message, /has no \.symtab/, `${v.view}: partial on a stripped binary, and says why (${what})`);
    else t.equal(expected.partial, false, `${v.view}: xsample read it whole (${what})`);
    t.equal(same(JSON.stringify(g.json[i])), same(want[i]), `${v.view}: gdb == xsample (${what})`);
    t.equal(same(JSON.stringify(l.json[i])), same(want[i]), `${v.view}: lldb == xsample (${what})`);
  });
  return want.map(withoutClock);
}

/** The same text as xsample: the block of lines a command printed, found by its title. */
async function compareText(t: Test, pack: string, where: Where, xsampleWhere: string[], view: string, command: string) {
  const want = (await xsample([...xsampleWhere, '--struct', view])).stdout.trimEnd();
  const lines = want.split('\n').length;
  const block = (out: string) => {
    const all = out.split('\n');
    const start = all.findIndex((l) => l.startsWith(`${view}: `));
    return all.slice(start, start + lines).join('\n');
  };
  t.equal(block((await gdb(where, pack, [command])).stdout), want, `${view}: gdb prints xsample's text`);
  t.equal(block((await lldb(where, pack, [command])).stdout), want, `${view}: lldb prints xsample's text`);
}

async function takeCore(t: Test, pid: number): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-parity-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await execa('gcore', ['-o', path.join(dir, 'core'), String(pid)], { stdio: 'ignore' });
  return path.join(dir, `core.${pid}`);
}

t.test('walkee: gdb, lldb and xsample agree, live and on a core', async (t) => {
  const w = await startWalkee(['--nodes', '20000', '--layout', 'shuffled', '--pools', '5']);
  t.teardown(() => w.kill());
  const pid = w.child.pid!;
  const live = await compare(t, 'walkee', { pid }, ['--pid', String(pid)], 'live');
  await compareText(t, 'walkee', { pid }, ['--pid', String(pid)], 'ngx_pool', 'ngx-pools');
  await compareText(t, 'walkee', { pid }, ['--pid', String(pid)], 'walkee_timers', 'walkee-timers');
  const core = await takeCore(t, pid);
  const post = await compare(t, 'walkee', { core, exe: binPath }, ['--core', core, '--exe', binPath], 'core');
  t.same(post, live, 'the core says what the live process said');
});

t.test('nginx: gdb, lldb and xsample agree on a worker, live and on a core', async (t) => {
  const nginx = await startNginx();
  t.teardown(() => nginx.stop());
  const idle = await holdConnections(nginx.port, 3);
  const inFlight = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(async () => {
    await idle.close();
    await inFlight.close();
  });
  const pid = nginx.workerPid;
  const live = await compare(t, 'nginx', { pid }, ['--pid', String(pid)], 'live');
  t.equal(JSON.parse(live[0]).items.length, 1 + 3 + 2 + 2, 'cycle, 5 connection and 2 request pools');
  const core = await takeCore(t, pid);
  const post = await compare(t, 'nginx', { core, exe: nginx.binary }, ['--core', core, '--exe', nginx.binary], 'core');
  t.same(post, live, 'the core says what the live worker said');
});

t.test('a stripped nginx: no debug info, a committed layout (by build-id, or release + signature), the same answers', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-stripped-nginx-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const stripped = path.join(dir, 'nginx');
  await execa('strip', ['-o', stripped, nginxBinary()]);
  const nginx = await startNginx({ binary: stripped });
  t.teardown(() => nginx.stop());
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const pid = nginx.workerPid;
  const live = await compare(t, 'nginx', { pid }, ['--pid', String(pid)], 'stripped, live', true);
  t.equal(JSON.parse(live[0]).items.length, 1 + 2 + 2, 'cycle, 2 connection and 2 request pools');
  await compareText(t, 'nginx', { pid }, ['--pid', String(pid)], 'ngx_pool', 'ngx-pools');
  const core = await takeCore(t, pid);
  await compare(t, 'nginx', { core, exe: stripped }, ['--core', core, '--exe', stripped], 'stripped, core', true);
});

t.test("Debian's packaged nginx: stripped, its layout from a probe built against nginx-dev; the same answers", async (t) => {
  const nginx = await startNginx({ binary: '/usr/sbin/nginx' });
  t.teardown(() => nginx.stop());
  const idle = await holdConnections(nginx.port, 1);
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(async () => {
    await idle.close();
    await held.close();
  });
  const pid = nginx.workerPid;
  const live = await compare(t, 'nginx', { pid }, ['--pid', String(pid)], 'debian, live', true);
  const requests = JSON.parse(live[views('nginx').findIndex((v) => v.view === 'ngx_requests')]);
  t.same(requests.items.map((r: { uri: string }) => r.uri).sort(), ['/hold/0', '/hold/1'], 'the requests in flight, read with the probe\'s layout');
  t.equal(requests.build_id, ElfFile.open('/usr/sbin/nginx').buildId(), "Debian's build, as its ELF note says");
  const core = await takeCore(t, pid);
  const post = await compare(t, 'nginx', { core, exe: '/usr/sbin/nginx' }, ['--core', core, '--exe', '/usr/sbin/nginx'], 'debian, core', true);
  t.same(post, live, 'the core says what the live worker said');
});

t.test('corrupt structures: the same partial answers from every back end, live and on a core', async (t) => {
  const w = await startWalkee(['--nodes', '1000', '--pools', '2', '--jobs', '10']);
  t.teardown(() => w.kill());
  for (const c of ['badptr', 'pool-cycle', 'queue']) t.same(await w.ask(`corrupt ${c}`), { ok: true });
  const pid = w.child.pid!;
  const vs = [
    { view: 'walkee_list', command: 'walkee-list' },
    { view: 'ngx_pool', command: 'ngx-pool' },
    { view: 'walkee_jobs', command: 'walkee-jobs' },
  ];
  const check = async (where: Where, xw: string[], what: string) => {
    const want = await Promise.all(vs.map(async (v) => (await xsample([...xw, '--struct', v.view, '--json'])).stdout.trim()));
    const g = await gdb(where, 'walkee', vs.map((v) => `${v.command} --json`));
    const l = await lldb(where, 'walkee', vs.map((v) => `${v.command} --json`));
    vs.forEach((v, i) => {
      t.equal(JSON.parse(want[i]).partial, true, `${v.view}: partial (${what})`);
      t.equal(JSON.stringify(g.json[i]), want[i], `${v.view}: gdb == xsample (${what})`);
      t.equal(JSON.stringify(l.json[i]), want[i], `${v.view}: lldb == xsample (${what})`);
    });
  };
  await check({ pid }, ['--pid', String(pid)], 'live');
  const core = await takeCore(t, pid);
  await check({ core, exe: binPath }, ['--core', core, '--exe', binPath], 'core');
});
