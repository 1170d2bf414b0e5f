/**
 * Time as the sampler sees it. nginx's cached clock stops while a worker
 * sleeps in epoll_wait or is stuck, so the views read the sample's own
 * clock: a request held for 3 s is 3 s old in xsample, gdb and lldb, on our
 * build and on Debian's stripped nginx; a stopped worker's lag grows and
 * its timers fall overdue. On a core "now" is nginx's cached time, and the
 * output says so.
 *
 * Every figure is bounded by the test's own clock readings around what it
 * did: t0 before it connected, t1 once nginx counted the request, and the
 * moments just before and after each read.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { gdb, lldb } from './lib/debuggers.ts';
import { buildNginx, DEFAULT_HEADER_TIMEOUT_MS, holdConnections, nginxStatus, partialGet, startNginx, waitUntil } from './lib/nginx.ts';
import { xsample } from './lib/xsample.ts';

const HOLD_MS = 3000;
/** ms: nginx truncates its clock to the millisecond, and so does the test's. */
const SLACK = 3;

type Row = Record<string, number | string | null>;

/** Reads a figure between two readings of the test's own clock. */
async function between<T>(read: () => Promise<T>): Promise<{ value: T; before: number; after: number }> {
  const before = Date.now();
  const value = await read();
  return { value, before, after: Date.now() };
}

/** A request that nginx started between t0 and t1 is, at a read between before and after, this old. */
function checkAge(t: Test, what: string, age: number, t0: number, t1: number, r: { before: number; after: number }) {
  const lo = r.before - t1 - SLACK;
  const hi = r.after - t0 + SLACK;
  t.ok(age >= lo && age <= hi, `${what}: ${age} ms, between ${lo} and ${hi}`);
}

const BUILDS: [string, () => Promise<string>][] = [
  ['our -g build', () => buildNginx()],
  ["Debian's stripped nginx", async () => '/usr/sbin/nginx'],
];

for (const [build, binaryOf] of BUILDS) {
  t.test(`a request held for 3 s is 3 s old, and an idle worker's lag grows with no timer overdue: ${build}`, async (t) => {
    const nginx = await startNginx({ binary: await binaryOf() });
    t.teardown(() => nginx.stop());
    const t0 = Date.now();
    const held = await holdConnections(nginx.port, 1, { partialRequest: partialGet });
    t.teardown(() => held.close());
    const t1 = Date.now();
    await waitUntil(`${HOLD_MS} ms have passed`, () => Date.now() - t1 >= HOLD_MS);
    const pid = String(nginx.workerPid);

    // Nothing wakes the worker from here until a debugger attaches: its cached clock stands still.
    const worker = await between(() => xsample(['--pid', pid, '--struct', 'ngx_worker', '--json']));
    t.equal(worker.value.code, 0, worker.value.stderr);
    const w = worker.value.json.items[0] as Row;
    checkAge(t, 'ngx_worker lag_ms: since the worker last woke (to read the request)', w.lag_ms as number, t0, t1, worker);
    t.ok((w.lag_ms as number) >= HOLD_MS - SLACK, `the lag is at least the ${HOLD_MS} ms the request was held`);
    t.same([w.requests, w.timers, w.overdue_timers], [1, 1, 0], 'one request, its timer, nothing overdue: the worker sleeps until its timer is due');
    t.equal(worker.value.json.clock.source, 'live');
    t.ok(Math.abs(worker.value.json.clock.now_ms - worker.after) <= worker.after - worker.before + SLACK, 'now_ms is the time of the read');

    const requests = await between(() => xsample(['--pid', pid, '--struct', 'ngx_requests', '--json']));
    t.equal(requests.value.code, 0, requests.value.stderr);
    const age = requests.value.json.items[0].age_ms as number;
    checkAge(t, 'xsample: the request is as old as it was held', age, t0, t1, requests);
    t.ok(age >= HOLD_MS - SLACK, `at least ${HOLD_MS} ms: ${age}`);

    const timers = await between(() => xsample(['--pid', pid, '--struct', 'ngx_timers', '--json']));
    const left = timers.value.json.items[0].left_ms as number;
    // The test nginx's own client_header_timeout: this test does not set one.
    const lo = DEFAULT_HEADER_TIMEOUT_MS - (timers.after - t0) - SLACK;
    const hi = DEFAULT_HEADER_TIMEOUT_MS - (timers.before - t1) + SLACK;
    t.ok(left >= lo && left <= hi, `ngx_timers: the header timeout has ${left} ms left, between ${lo} and ${hi}`);

    for (const [name, run] of [
      ['gdb', () => gdb({ pid: nginx.workerPid }, 'nginx', ['ngx-requests --json'])],
      ['lldb', () => lldb({ pid: nginx.workerPid }, 'nginx', ['ngx-requests --json'])],
    ] as const) {
      const r = await between(run);
      const items = r.value.json[0]?.items as Row[] | undefined;
      t.equal(items?.length, 1, `${name}: the request${items?.length === 1 ? '' : ` (${r.value.stderr.slice(-300)})`}`);
      checkAge(t, `${name}: the same age, by its own clock`, items?.[0].age_ms as number, t0, t1, r);
    }
  });
}

t.test('a stopped worker: its lag grows and its timers fall overdue; once it runs again, they fire', async (t) => {
  // A header timeout long enough that a loaded machine's xsample calls (each up to about a second) find the
  // request before nginx times it out.
  const HEADER_TIMEOUT_MS = 10000;
  const nginx = await startNginx({ clientHeaderTimeout: `${HEADER_TIMEOUT_MS / 1000}s` });
  t.teardown(() => nginx.stop());
  const held = await holdConnections(nginx.port, 1, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const worker = nginx.workerPid;
  // The stub_status request holdConnections polled with may not be freed yet (its response is out, its request
  // not finalized): stop the worker only once the held request is the only one in it.
  await waitUntil('the worker holds the one request alone', async () => (await xsample(['--pid', String(worker), '--struct', 'ngx_worker', '--json'])).json?.items?.[0]?.requests === 1);
  const t1 = Date.now();
  // A worker that does not run its event loop, as one stuck in a long computation would not.
  process.kill(worker, 'SIGSTOP');
  const resume = () => {
    try {
      process.kill(worker, 'SIGCONT');
    } catch {
      /* gone */
    }
  };
  t.teardown(resume);
  await waitUntil('the header timeout is past', () => Date.now() - t1 >= HEADER_TIMEOUT_MS + 500);

  const stuck = await between(() => xsample(['--pid', String(worker), '--struct', 'ngx_worker', '--json']));
  t.equal(stuck.value.code, 0, stuck.value.stderr);
  const w = stuck.value.json.items[0] as Row;
  t.same([w.requests, w.timers, w.overdue_timers], [1, 1, 1], 'the request is still there, its timer overdue');
  t.ok((w.lag_ms as number) >= stuck.before - t1 - SLACK, `lag ${w.lag_ms} ms: at least since the request was read`);
  const timers = await between(() => xsample(['--pid', String(worker), '--struct', 'ngx_timers', '--json']));
  const left = timers.value.json.items[0].left_ms as number;
  t.ok(left <= HEADER_TIMEOUT_MS - (timers.before - t1) + SLACK && left < 0, `the timer was due ${-left} ms ago`);

  resume();
  await waitUntil('nginx has timed the request out', async () => (await nginxStatus(nginx.port)).reading === 0);
  const after = await xsample(['--pid', String(worker), '--struct', 'ngx_worker', '--json']);
  const a = after.json.items[0] as Row;
  t.same([a.requests, a.overdue_timers], [0, 0], 'running again, it timed the request out: nothing in flight, nothing overdue');
});

t.test("on a core, now is nginx's cached time at the dump, and the output says so", async (t) => {
  const nginx = await startNginx();
  t.teardown(() => nginx.stop());
  const t0 = Date.now();
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-time-core-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await execa('gcore', ['-o', path.join(dir, 'core'), String(nginx.workerPid)], { stdio: 'ignore' });
  const tCore = Date.now();
  const core = path.join(dir, `core.${nginx.workerPid}`);
  const json = await xsample(['--core', core, '--struct', 'ngx_worker', '--json']);
  t.equal(json.code, 0, json.stderr);
  const clock = json.json.clock;
  t.equal(clock.source, 'core');
  t.ok(clock.now_ms >= t0 - SLACK && clock.now_ms <= tCore + SLACK, `now is a moment of the worker's life: ${clock.now_ms - t0} ms after the test began`);
  t.equal(json.json.items[0].lag_ms, 0, "nginx's cached time against itself: no lag");
  const text = await xsample(['--core', core, '--struct', 'ngx_requests']);
  const lines = text.stdout.split('\n');
  t.match(lines[1], /^now: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC = nginx's cached time \(ngx_cached_time\) when the core was dumped \(a core keeps no clock of its own\)$/, 'the text says what now is');
  const reqs = await xsample(['--core', core, '--struct', 'ngx_requests', '--json']);
  t.same((reqs.json.items as Row[]).map((r) => r.uri).sort(), ['/hold/0', '/hold/1'], 'the core holds the two requests the test left half-sent, and no other');
  for (const r of reqs.json.items as Row[]) t.ok((r.age_ms as number) >= 0 && (r.age_ms as number) <= tCore - t0 + SLACK, `${r.uri}: ${r.age_ms} ms old at the dump`);
  const live = await xsample(['--pid', String(nginx.workerPid), '--struct', 'ngx_requests']);
  t.notMatch(live.stdout, /^now: /m, 'a live read says nothing of the kind: now is now');
});
