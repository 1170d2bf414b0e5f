/**
 * What the full-stack recordings' tests and bench share: xsample record --cpu / --off-cpu run as a user
 * runs it, busy Lua handlers started and stopped on Debian's nginx, and conditions read from /proc (a
 * thread's CPU time, where it sleeps, whether a recorder has its perf events open) instead of sleeps.
 */
import { execa, type ResultPromise } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { childPids, httpGet, type Nginx, waitUntil } from './nginx.ts';
import { parseFolded, xsampleBin } from './xsample.ts';

export interface Stack {
  frames: string[];
  weight: number;
}

/** A folded recording's stacks without the `pid N` root xsample puts first. */
export const foldedStacks = (text: string): Stack[] => parseFolded(text).map((s) => ({ frames: s.frames[0]?.startsWith('pid ') ? s.frames.slice(1) : s.frames, weight: s.weight }));

export const totalWeight = (xs: Stack[]): number => xs.reduce((a, s) => a + s.weight, 0);

/** A stack the unwinder could not finish starts with `[unwinding stopped: WHY]`. */
export const stopped = (s: Stack): boolean => s.frames[0]?.startsWith('[unwinding stopped') ?? false;

/** The share of the weight in stacks that unwound to their outermost frame. */
export const outermostShare = (xs: Stack[]): number => totalWeight(xs.filter((s) => !stopped(s))) / totalWeight(xs);

/** xsample's last summary line: `xsample: wrote F (fmt): N samples in S s; P% unwound to the outermost frame; ...`. */
export function summaryOf(stderr: string): { samples: number; outermostPct: number; line: string } {
  const line = stderr.split('\n').filter((l) => /unwound to the outermost frame/.test(l)).at(-1) ?? '';
  return { samples: Number(/: (\d+) (?:samples|waits) in/.exec(line)?.[1] ?? NaN), outermostPct: Number(/([\d.]+)% unwound/.exec(line)?.[1] ?? NaN), line };
}

/** `unwinding: X µs a sample` of --verbose. */
export const unwindUsOf = (stderr: string): number => Number(/unwinding: ([\d.]+) µs a sample/.exec(stderr)?.[1] ?? NaN);

/** A thread's CPU time (user + system), in clock ticks. */
export function cpuTicks(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

export const TICKS_PER_S = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64

/** Waits until the process has burned `seconds` more CPU time than now. */
export async function waitForCpu(pid: number, seconds: number, what: string, ms = 60_000): Promise<void> {
  const from = cpuTicks(pid);
  await waitUntil(`${what}: ${seconds} s of CPU time of ${pid}`, () => cpuTicks(pid) - from >= seconds * TICKS_PER_S, ms);
}

/** The kernel function a thread sleeps in (/proc/PID/wchan), '' when it runs. */
export const wchan = (pid: number): string => {
  try {
    return fs.readFileSync(`/proc/${pid}/wchan`, 'utf8').trim();
  } catch {
    return '';
  }
};

/** How many perf events a process holds open (anon_inode:[perf_event]). */
export function perfEventFds(pid: number): number {
  let n = 0;
  let fds: string[] = [];
  try {
    fds = fs.readdirSync(`/proc/${pid}/fd`);
  } catch {
    return 0;
  }
  for (const fd of fds) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:[perf_event]') n++;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

export interface Recorder {
  pid: number;
  child: ResultPromise;
  /** Resolves once its perf events are open and it waits in its loop (the events are enabled before it first waits). */
  attached(): Promise<void>;
}

/**
 * How the tests run xsample record: --nice 0, for they check what the stacks say, not xsample's manners. At its
 * default nice 19, on 2 CPUs that a burning worker and another test file keep busy, xsample gets about 1% of one
 * and a 4 s recording (its setup: the verifier, the kernel's symbols, the objects' tables) takes minutes.
 */
export const RECORD = ['record', '--nice', '0'];

/** xsample record run in the background (a user's environment), for a test that acts while it records. */
export function startRecord(args: string[]): Recorder {
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...(process.env.XWALK_PACKS ? { XWALK_PACKS: process.env.XWALK_PACKS } : {}) };
  const child = execa(process.execPath, [xsampleBin, ...RECORD, ...args], { reject: false, env, extendEnv: false, stdin: 'ignore' });
  const pid = child.pid!;
  return {
    pid,
    child,
    attached: () =>
      // The events are opened and enabled in one synchronous step; once node waits for its next drain, they run.
      waitUntil(`xsample ${pid} to open its perf events and wait`, () => {
        if (child.exitCode !== null) throw new Error(`xsample ended before recording: ${child.exitCode}`);
        return perfEventFds(pid) > 0 && /^(do_epoll_wait|ep_poll)$/.test(wchan(pid));
      }, 60_000),
  };
}

const stopDirs: string[] = [];

/** A busy Lua handler (/lua/burn: heavy(3M) then M.light(1M) in a loop), JIT on or off, until stop(). */
export async function startBurn(nginx: Nginx, jit: 'on' | 'off'): Promise<{ stop: () => Promise<string> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-burn-'));
  stopDirs.push(dir);
  const file = path.join(dir, 'stop');
  const answer = httpGet(nginx.port, `/lua/burn?until=${file}${jit === 'off' ? '&jit=off' : ''}`, { timeoutMs: 0 }).then((r) => r.body);
  answer.catch(() => {});
  await waitForCpu(nginx.workerPid, 0.3, `/lua/burn (JIT ${jit}) running`);
  let stopping: Promise<string> | undefined;
  return {
    // Once: a test's teardown may stop it again.
    stop: () =>
      (stopping ??= (async () => {
        fs.writeFileSync(file, '');
        const body = await answer;
        stopDirs.splice(stopDirs.indexOf(dir), 1);
        fs.rmSync(dir, { recursive: true, force: true });
        return body;
      })()),
  };
}

/** Stops every burn a failed test left running (its stop file), for a teardown. */
export function stopAllBurns(): void {
  for (const dir of stopDirs.splice(0)) {
    try {
      fs.writeFileSync(path.join(dir, 'stop'), '');
    } catch {
      /* stopped already */
    }
  }
}

/** wrk against nginx for `seconds` (one thread, 8 connections); its requests served. */
export async function wrk(port: number, seconds: number, urlPath = '/', pinCpu?: number): Promise<{ requests: number; stdout: string }> {
  const argv = ['wrk', '-t1', '-c8', `-d${seconds}s`, `http://127.0.0.1:${port}${urlPath}`];
  const r = await (pinCpu === undefined ? execa(argv[0], argv.slice(1), { reject: false }) : execa('taskset', ['-c', String(pinCpu), ...argv], { reject: false }));
  return { requests: Number(/(\d+) requests in/.exec(r.stdout)?.[1] ?? 0), stdout: r.stdout };
}

/**
 * The test configuration limits `/` to 100 requests a second (limit_req): under wrk nearly every answer is
 * a 503. For a load of static files, this takes the limits out of the nginx's own nginx.conf and reloads it
 * (SIGHUP); resolves with the new worker once the old one has gone.
 */
export async function serveStaticUnlimited(nginx: Nginx): Promise<number> {
  const conf = path.join(nginx.dir, 'nginx.conf');
  const text = fs.readFileSync(conf, 'utf8');
  const unlimited = text.replace(/^\s*limit_(req|conn) [^;]*;\n/gm, '');
  if (unlimited === text) throw new Error(`no limit_req or limit_conn in ${conf}`);
  fs.writeFileSync(conf, unlimited);
  const old = nginx.workerPid;
  process.kill(nginx.masterPid, 'SIGHUP');
  let worker = 0;
  await waitUntil('nginx reloads with a new worker', () => {
    const now = childPids(nginx.masterPid).filter((p) => p !== old && !fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('cache'));
    if (fs.existsSync(`/proc/${old}`) || now.length !== 1) return false;
    worker = now[0];
    return true;
  }, 30_000);
  const r = await httpGet(nginx.port, '/');
  if (r.status !== 200) throw new Error(`/ answers ${r.status} after the reload`);
  nginx.workerPid = worker;
  nginx.workerPids = [worker];
  return worker;
}

/** Starts /lua/blocked on a FIFO; resolves once the worker waits for its child (wait4: do_wait), with the time seen. */
export async function blockWorker(nginx: Nginx, fifo: string): Promise<{ since: number; answer: Promise<string> }> {
  await execa('mkfifo', [fifo]);
  const answer = httpGet(nginx.port, `/lua/blocked?fifo=${fifo}`, { timeoutMs: 0 }).then((r) => r.body);
  answer.catch(() => {});
  let since = 0;
  await waitUntil('the worker waits in wait4 for head', () => {
    if (wchan(nginx.workerPid) !== 'do_wait') return false;
    since = performance.now();
    return true;
  });
  return { since, answer };
}
