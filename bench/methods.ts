/**
 * The ways to walk walkee's list and sum a field, each timed around the walk
 * alone: the C floor, xsample (live and core), the generated extensions, and
 * what people use instead (gdb.Value, SBValue, ReadMemory, drgn).
 */
import { execa } from 'execa';
import path from 'node:path';
import { binPath, root, type Walkee } from '../test/lib/walkee.ts';

export const SIZES = [10_000, 100_000, 1_000_000];

export interface Target {
  w: Walkee;
  pid: number;
  head: number;
  sum: number;
  nodes: number;
  core: string;
}

interface Timing {
  sum: number;
  ns: number;
  rssMiB?: number;
}

export interface Method {
  key: string;
  label: string;
  /** Sizes it is run at (the slowest only where it finishes in reasonable time). */
  sizes: number[];
  runs?: number;
  live: boolean;
  run(t: Target): Promise<Timing>;
}

function benchLine(out: string, what: string): Timing {
  const line = out.split('\n').find((l) => l.startsWith('XWALK-BENCH '));
  if (!line) throw new Error(`${what} printed no result:\n${out.slice(-1500)}`);
  const r = JSON.parse(line.slice(12));
  return { sum: r.sum, ns: r.ns };
}

/** xsample's time for the view: the walk, and the reading again that checks it (unless --consistency off). */
async function xsampleRun(args: string[]): Promise<Timing> {
  const r = await execa(process.execPath, [path.join(root, 'dist/xsample.js'), ...args, '--struct', 'walkee_sum', '--json', '--verbose'], { reject: false });
  const m = / in ([\d.]+) ms(?:; read again in ([\d.]+) ms)?[:,].*peak RSS (\d+) MiB/.exec(r.stderr);
  if (!m || r.exitCode !== 0) throw new Error(`xsample failed: ${r.stderr}`);
  return { sum: JSON.parse(r.stdout).items[0].sum, ns: (Number(m[1]) + Number(m[2] ?? 0)) * 1e6, rssMiB: Number(m[3]) };
}

/** Samples each steady run takes; the first is left out (it compiles the view and makes the buffers). */
const STEADY_SAMPLES = 5;
const middle = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return (s[Math.floor((s.length - 1) / 2)] + s[Math.ceil((s.length - 1) / 2)]) / 2;
};

/** xsample sampling again and again, as record and top do: the median time of a sample after the first. */
async function xsampleSteadyRun(args: string[]): Promise<Timing> {
  const r = await execa(process.execPath, [path.join(root, 'dist/xsample.js'), ...args, '--struct', 'walkee_sum', '--json', '--verbose', '--count', String(STEADY_SAMPLES), '--interval', '1'], { reject: false });
  const times = [...r.stderr.matchAll(/ in ([\d.]+) ms(?:; read again in ([\d.]+) ms)?[:,]/g)].map((m) => Number(m[1]) + Number(m[2] ?? 0));
  if (r.exitCode !== 0 || times.length !== STEADY_SAMPLES) throw new Error(`xsample failed: ${r.stderr}`);
  const last = JSON.parse(r.stdout.trim().split('\n').pop()!);
  return { sum: last.items[0].sum, ns: middle(times.slice(1)) * 1e6 };
}

async function floorRun(t: Target, verify: boolean, again = false): Promise<Timing> {
  const r = await execa(paths.floor, [String(t.pid), '0x' + t.head.toString(16), '0', '8', ...(verify ? ['verify'] : []), ...(again ? ['again'] : [])]);
  const j = JSON.parse(r.stdout);
  return { sum: j.sum, ns: j.ns };
}

const gdbRun = async (t: Target, method: 'value' | 'ext') => {
  const source = method === 'ext' ? ['-ex', `source ${path.join(root, 'generated/walkee.py')}`] : [];
  const r = await execa('gdb', ['-batch', '-nx', '-p', String(t.pid), ...source, '-x', path.join(root, 'bench/gdb_walk.py')], { reject: false, env: { XWALK_BENCH: method, DEBUGINFOD_URLS: '' }, timeout: 600_000 });
  return benchLine(r.stdout, `gdb ${method}`);
};

const lldbRun = async (t: Target, method: 'sbvalue' | 'raw' | 'ext') => {
  const ext = method === 'ext' ? ['-o', `command script import ${path.join(root, 'generated/walkee_lldb.py')}`] : [];
  const r = await execa('lldb-16', ['-b', '--no-lldbinit', '-p', String(t.pid), ...ext, '-o', `command script import ${path.join(root, 'bench/lldb_walk.py')}`], { reject: false, env: { XWALK_BENCH: method }, timeout: 1_200_000 });
  return benchLine(r.stdout, `lldb ${method}`);
};

const drgnRun = async (t: Target, method: 'objects' | 'raw') => {
  const r = await execa('/usr/bin/python3', [path.join(root, 'bench/drgn_walk.py'), String(t.pid), method], { reject: false, timeout: 600_000 });
  return benchLine(r.stdout + r.stderr, `drgn ${method}`);
};

/** Where bench/floor.c was compiled to (set by the caller). */
export const paths = { floor: '' };

export const METHODS: Method[] = [
  { key: 'floor', label: 'C page-cache walker (process_vm_readv): the floor', sizes: SIZES, live: true, run: (t) => floorRun(t, false) },
  { key: 'floor_verify', label: 'the floor, reading every chunk again to check it', sizes: SIZES, live: true, run: (t) => floorRun(t, true) },
  { key: 'floor_again', label: 'the floor, sample after sample (its buffers kept, memory read again)', sizes: SIZES, live: true, run: (t) => floorRun(t, false, true) },
  { key: 'floor_verify_again', label: 'the floor, sample after sample, reading every chunk again to check it', sizes: SIZES, live: true, run: (t) => floorRun(t, true, true) },
  { key: 'xsample', label: 'xsample (live, checked: --consistency verify)', sizes: SIZES, live: true, run: (t) => xsampleRun(['--pid', String(t.pid)]) },
  { key: 'xsample_off', label: 'xsample (live, --consistency off)', sizes: SIZES, live: true, run: (t) => xsampleRun(['--pid', String(t.pid), '--consistency', 'off']) },
  { key: 'xsample_again', label: 'xsample sample after sample (checked; record, top: view and buffers kept)', sizes: SIZES, live: true, run: (t) => xsampleSteadyRun(['--pid', String(t.pid)]) },
  { key: 'xsample_again_off', label: 'xsample sample after sample, --consistency off', sizes: SIZES, live: true, run: (t) => xsampleSteadyRun(['--pid', String(t.pid), '--consistency', 'off']) },
  { key: 'xsample_core', label: 'xsample --core', sizes: SIZES, live: false, run: (t) => xsampleRun(['--core', t.core, '--exe', binPath]) },
  { key: 'gdb_ext', label: 'generated gdb extension', sizes: SIZES, live: true, run: (t) => gdbRun(t, 'ext') },
  { key: 'lldb_ext', label: 'generated lldb extension', sizes: SIZES, live: true, run: (t) => lldbRun(t, 'ext') },
  { key: 'gdb_value', label: 'gdb Python, gdb.Value', sizes: SIZES, live: true, run: (t) => gdbRun(t, 'value') },
  { key: 'lldb_raw', label: 'lldb Python, process.ReadMemory per field', sizes: SIZES, live: true, run: (t) => lldbRun(t, 'raw') },
  { key: 'lldb_sbvalue', label: 'lldb Python, SBValue', sizes: [10_000], runs: 1, live: true, run: (t) => lldbRun(t, 'sbvalue') },
  { key: 'drgn_objects', label: 'drgn 0.0.22, objects', sizes: SIZES, live: true, run: (t) => drgnRun(t, 'objects') },
  { key: 'drgn_raw', label: 'drgn 0.0.22, prog.read', sizes: SIZES, live: true, run: (t) => drgnRun(t, 'raw') },
];

