/**
 * The short-call workload of issue 20 and its ground truth. /lua/short and /lua/profile (one chunk,
 * test/lib/nginx.ts) call heavy(3n) then M.light(n) from rounds() in a loop: 3 units of work in one
 * function for 1 in the other, about 10 µs and 3 µs a call (n = 500 with the JIT on, 200 interpreted;
 * ?n= sets it). /lua/short runs until the file it names exists; /lua/profile runs the same loop for S
 * seconds (or until N samples) under LuaJIT's own profiler (jit.profile: a timer of the process's CPU
 * time asked for every 1 ms, which the kernel here gives about every 4 ms) and answers its counts. The
 * two never overlap: run together, LuaJIT's profiler changes what the VM does, and the bias a recording
 * shows with it (issue 20).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpGet, type Nginx, waitUntil } from './nginx.ts';
import { parseFolded, xsample } from './xsample.ts';

export interface Split {
  /** samples with heavy on the stack */
  heavy: number;
  /** samples with light on the stack (and not heavy) */
  light: number;
  /** heavy / (heavy + light), NaN without either */
  share: number;
}

export type Jit = 'on' | 'off';

const split = (heavy: number, light: number): Split => ({ heavy, light, share: heavy / (heavy + light) });

/** The lua_stacks frames of the two functions: `lua heavy (CHUNK:2)`, `lua light (CHUNK:3)` (M.light named by its field, as Lua does). */
const HEAVY = /^lua heavy \(.*:2\)$/;
const LIGHT = /^lua light \(.*:3\)$/;

/**
 * heavy's and light's samples in a folded recording of lua_stacks (`pid W;vm V;lua frame;... count`): a line
 * counts for heavy when its stack holds heavy, for light when it holds light; lines with neither (the main
 * chunk's own loop, io.open, a torn frame) are in neither.
 */
export function foldedSplit(folded: string): Split & { all: number } {
  let heavy = 0;
  let light = 0;
  let all = 0;
  for (const { frames, weight } of parseFolded(folded)) {
    all += weight;
    if (frames.some((f) => HEAVY.test(f))) heavy += weight;
    else if (frames.some((f) => LIGHT.test(f))) light += weight;
  }
  return { ...split(heavy, light), all };
}

export interface Recorded extends Split {
  /** the weight of every line recorded: samples that saw Lua run */
  all: number;
  /** samples taken, and those left out as partial, as xsample's last line says them, over every recording */
  taken: number;
  partial: number;
  /** xsample's exit codes and last lines, one a recording, and whether it sampled at the instant (eBPF) */
  runs: { code: number; said: string; instant: boolean }[];
}

/**
 * Records lua_stacks of the worker at `rate` Hz (default 100), `seconds` at a time (with xsample's default path, as a user
 * runs it), until `min` samples saw Lua run (a busy host takes fewer a second: the sampler yields to the
 * worker), at most 10 times; heavy's and light's samples over all of them.
 */
export async function recordedSplit(pid: number, opts: { out: string; seconds: number; min: number; rate?: number }): Promise<Recorded> {
  let heavy = 0;
  let light = 0;
  let all = 0;
  let taken = 0;
  let partial = 0;
  const runs: Recorded['runs'] = [];
  for (let i = 0; i < 10 && all < opts.min; i++) {
    const r = await xsample(['record', '--pid', String(pid), '--struct', 'lua_stacks', '--rate', String(opts.rate ?? 100), '--duration', String(opts.seconds), '--format', 'folded', '-o', opts.out]);
    const said = r.stderr.trim().split('\n').at(-1) ?? '';
    runs.push({ code: r.code, said, instant: !/not sampled at the instant/.test(r.stderr) });
    taken += Number(/: (\d+) samples? in/.exec(said)?.[1] ?? 0);
    partial += Number(/, (\d+) partial/.exec(said)?.[1] ?? 0);
    if (r.code !== 0 && r.code !== 3) break; // 3: some samples partial, left out; anything else: no recording
    const f = foldedSplit(fs.readFileSync(opts.out, 'utf8'));
    heavy += f.heavy;
    light += f.light;
    all += f.all;
  }
  return { ...split(heavy, light), all, taken, partial, runs };
}

export interface ShortCalls {
  jit: Jit;
  /** the handler's answer once it has stopped (a number) */
  stop(): Promise<string>;
}

const started = new Set<ShortCalls>();
let stopDir: string | undefined;

/**
 * Starts /lua/short on the worker (one long request), and resolves once a sample of lua_stacks shows it in
 * heavy or light, in JIT code with the JIT on (the loops are compiled), in the interpreter with it off.
 */
export async function startShortCalls(nginx: Nginx, opts: { jit: Jit; n?: number }): Promise<ShortCalls> {
  stopDir ??= fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-short-'));
  const stopFile = fs.mkdtempSync(path.join(stopDir, `${opts.jit}-`)) + '/stop';
  // No timeout (fetch gives up after 300 s without headers): on a busy host the recordings may take that long.
  const answer = httpGet(nginx.port, `/lua/short?until=${stopFile}&jit=${opts.jit}${opts.n ? `&n=${opts.n}` : ''}`, { timeoutMs: 0 }).then((r) => r.body);
  answer.catch(() => {}); // read by stop(); a worker gone away must not be an unhandled rejection meanwhile
  const calls: ShortCalls = {
    jit: opts.jit,
    stop: async () => {
      started.delete(calls);
      fs.writeFileSync(stopFile, '');
      return answer;
    },
  };
  started.add(calls);
  const vm = opts.jit === 'on' ? 'JIT' : 'interpreted';
  let last: unknown;
  try {
    // xsample starts slowly on a busy host: a minute for a few reads.
    await waitUntil(`the short calls run in ${vm} code`, async () => {
      const r = await xsample(['--pid', String(nginx.workerPid), '--struct', 'lua_stacks', '--json']);
      const row = (r.json?.items as { vm?: string; lua?: string[] }[] | undefined)?.[0];
      last = row ?? r.stderr;
      return row?.vm === vm && (row.lua ?? []).some((f) => HEAVY.test(`lua ${f}`) || LIGHT.test(`lua ${f}`));
    }, 60_000);
  } catch (e) {
    await calls.stop().catch(() => {});
    throw new Error(`${(e as Error).message}; the last sample: ${JSON.stringify(last)}`);
  }
  return calls;
}

/**
 * Stops every workload started and not stopped yet, and removes the stop files: a test's teardown (a failed
 * assertion must not leave the worker busy).
 */
export async function stopShortCalls(): Promise<void> {
  await Promise.allSettled([...started].map((c) => c.stop()));
  if (stopDir && started.size === 0) {
    fs.rmSync(stopDir, { recursive: true, force: true });
    stopDir = undefined;
  }
}

export interface JitProfile extends Split {
  /** what jit.status() said during the run */
  jit: Jit;
  /** samples per function as jit.profile's dumpstack('f') names the youngest frame */
  functions: Record<string, number>;
  /** samples per VM state as jit.profile gives them: N (JIT code), I (interpreted), C, G, J */
  vmstates: Record<string, number>;
  /** heavy+light rounds run, and light's iterations a call (heavy's are 3 times as many) */
  rounds: number;
  n: number;
}

/**
 * jit.profile's split of the same loop, run in the worker for `seconds`, or until it took `samples` (a busy
 * host gives the worker less CPU, and the profiler's timer counts CPU time). Run it after the recording,
 * never during it: the workload request must have ended (its stop() resolved).
 */
export async function jitProfileSplit(nginx: Nginx, opts: { seconds: number; samples?: number; jit: Jit; n?: number }): Promise<JitProfile> {
  const more = `${opts.samples ? `&samples=${opts.samples}` : ''}${opts.n ? `&n=${opts.n}` : ''}`;
  const r = await httpGet(nginx.port, `/lua/profile?seconds=${opts.seconds}&jit=${opts.jit}${more}`, { timeoutMs: 0 });
  const text = r.body;
  if (r.status !== 200) throw new Error(`/lua/profile answered ${r.status}: ${text.slice(0, 300)}`);
  const functions: Record<string, number> = {};
  const vmstates: Record<string, number> = {};
  const one: Record<string, string> = {};
  for (const line of text.trim().split('\n')) {
    const [kind, name, count] = line.split(' ');
    if (kind === 'function') functions[name] = Number(count);
    else if (kind === 'vmstate') vmstates[name] = Number(count);
    else one[kind] = name;
  }
  return {
    ...split(functions.heavy ?? 0, functions.light ?? 0),
    jit: one.jit as Jit,
    functions,
    vmstates,
    rounds: Number(one.rounds),
    n: Number(one.n),
  };
}
