/**
 * One fuzz program through every back end: compiled with -g at -O0 and -O2,
 * its layouts read by xgen from its own DWARF, its gdb and lldb extensions
 * generated, all into a folder of the caller's (never the source tree);
 * then, per build, the view read by xsample live, xsample on a gcore, the
 * gdb extension and the lldb-16 extension, and each column's C twin
 * evaluated by gdb itself on the stopped process (truth.py).
 */
import { execa } from 'execa';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Twin } from './gen-schema.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const xgen = path.join(root, 'dist/xgen.js');
const xsample = path.join(root, 'dist/xsample.js');
const truthPy = path.join(root, 'test/fuzz/truth.py');

export const BACKENDS = ['xsample', 'core', 'gdb', 'lldb'] as const;
export type Backend = (typeof BACKENDS)[number];

/** A column's answer, one string: `i:DIGITS`, `s:TEXT`, `l:[...]`, `null`, `e:MESSAGE`. */
export type Answer = string;

export interface BuildResult {
  opt: string;
  answers: Record<Backend, Record<string, Answer>>;
  truth: Record<string, Record<string, unknown>>;
  /** What a back end said besides its answer, when it gave none. */
  failures: string[];
}

export interface Folder {
  dir: string;
  env: Record<string, string>;
}

export function folder(dir: string): Folder {
  fs.mkdirSync(path.join(dir, 'packs/fuzz'), { recursive: true });
  return { dir, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', XWALK_PACKS: path.join(dir, 'packs'), XDG_CACHE_HOME: path.join(dir, 'cache') } };
}

const run = (f: Folder, cmd: string, args: string[], timeout = 120_000) => execa(cmd, args, { env: f.env, extendEnv: false, reject: false, timeout, stdin: 'ignore' });

/** Compiles the program at -O0 and -O2; gives the binaries. */
export async function compile(f: Folder, source: string): Promise<string[]> {
  fs.writeFileSync(path.join(f.dir, 'prog.c'), source);
  const bins: string[] = [];
  for (const opt of ['-O0', '-O2']) {
    const bin = path.join(f.dir, `prog${opt}`);
    const r = await run(f, 'cc', ['-g', opt, '-w', '-o', bin, path.join(f.dir, 'prog.c')]);
    if (r.exitCode !== 0) throw new Error(`cc ${opt} failed: ${r.stderr}`);
    bins.push(bin);
  }
  return bins;
}

/** Writes the schema into the folder's pack and reads each build's layout; gives the first build's layout. */
export async function layouts(f: Folder, schema: string, bins: string[]): Promise<unknown> {
  fs.writeFileSync(path.join(f.dir, 'packs/fuzz/schema.yaml'), schema);
  let first: unknown = null;
  for (const bin of bins) {
    const r = await run(f, process.execPath, [xgen, 'layout', '--pack', 'fuzz', bin]);
    if (r.exitCode !== 0) throw new Error(`xgen layout ${bin}: ${r.stderr}`);
    const file = r.stdout.split(':')[0];
    first ??= JSON.parse(fs.readFileSync(file, 'utf8'));
  }
  return first;
}

/** The final schema, and both extensions generated from it. */
export async function extensions(f: Folder, schema: string): Promise<void> {
  fs.writeFileSync(path.join(f.dir, 'packs/fuzz/schema.yaml'), schema);
  for (const dbg of ['gdb', 'lldb']) {
    const r = await run(f, process.execPath, [xgen, dbg, '--pack', 'fuzz', '--out', path.join(f.dir, dbg === 'gdb' ? 'fuzz.py' : 'fuzz_lldb.py')]);
    if (r.exitCode !== 0) throw new Error(`xgen ${dbg}: ${r.stderr}`);
  }
}

/** JSON with every number kept as its digits (a 64-bit integer is not a double). */
export function parseExact(text: string): unknown {
  return JSON.parse(text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (m) => (m.startsWith('"') ? m : `"\\u0000${m}"`)));
}

function answerOf(v: unknown, error: string | undefined): Answer {
  if (error !== undefined) return `e:${error}`;
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'string') return v.startsWith('\u0000') ? `i:${v.slice(1)}` : `s:${v}`;
  if (Array.isArray(v)) return `l:[${v.map((x) => answerOf(x, undefined).replace(/^i:/, '')).join(',')}]`;
  return `?:${JSON.stringify(v)}`;
}

/** The view's one row, column by column, from a --json document. */
function answersOf(doc: unknown, columns: string[]): Record<string, Answer> | null {
  const d = doc as { items?: Record<string, unknown>[]; errors?: { column?: string; message: string }[] } | null;
  if (!d?.items || d.items.length !== 1) return null;
  const out: Record<string, Answer> = {};
  for (const c of columns) out[c] = answerOf(d.items[0][c], d.errors?.find((e) => e.column === c)?.message);
  return out;
}

const jsonLine = (text: string) => {
  const l = text.split('\n').find((x) => x.startsWith('{'));
  return l ? parseExact(l) : null;
};

/** Starts a build, waits for its ready line; gives its pid and a way to end it. */
async function start(bin: string): Promise<{ pid: number; kill: () => void }> {
  const child = spawn(bin, [], { stdio: ['ignore', 'pipe', 'ignore'] });
  const line = await new Promise<string | null>((res) => {
    createInterface({ input: child.stdout! }).once('line', res);
    child.once('exit', () => res(null));
  });
  if (!line?.startsWith('ready')) throw new Error(`${bin} did not start`);
  return { pid: child.pid!, kill: () => child.kill('SIGKILL') };
}

/** Every back end and gdb's truth, on one build. */
export async function runBuild(f: Folder, bin: string, columns: string[], twins: Record<string, Twin>): Promise<BuildResult> {
  const opt = path.basename(bin).replace('prog', '');
  const failures: string[] = [];
  const proc = await start(bin);
  try {
    const twinsFile = path.join(f.dir, 'twins.json');
    const truthFile = path.join(f.dir, `truth${opt}.json`);
    const core = path.join(f.dir, `core${opt}`);
    fs.writeFileSync(twinsFile, JSON.stringify(twins));
    fs.rmSync(truthFile, { force: true });
    const live = run(f, process.execPath, [xsample, '--pid', String(proc.pid), '--struct', 'fz', '--json']);
    const g = await run(f, 'gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', '-p', String(proc.pid), '-ex', `source ${path.join(f.dir, 'fuzz.py')}`, '-ex', 'fz --json', '-ex', `python import sys; sys.argv = ['truth', ${JSON.stringify(twinsFile)}, ${JSON.stringify(truthFile)}]; exec(open(${JSON.stringify(truthPy)}).read())`, '-ex', `gcore ${core}`]);
    const l = run(f, 'lldb-16', ['-b', '--no-lldbinit', '-p', String(proc.pid), '-o', `command script import ${path.join(f.dir, 'fuzz_lldb.py')}`, '-o', 'fz --json']);
    const c = run(f, process.execPath, [xsample, '--core', core, '--exe', bin, '--struct', 'fz', '--json']);
    const outs = { xsample: await live, core: await c, gdb: g, lldb: await l };
    const answers = {} as Record<Backend, Record<string, Answer>>;
    for (const b of BACKENDS) {
      const a = answersOf(jsonLine(outs[b].stdout), columns);
      if (!a) failures.push(`${b} ${opt} gave no row: ${(outs[b].stderr || outs[b].stdout).slice(-600)}`);
      answers[b] = a ?? {};
    }
    const truth = fs.existsSync(truthFile) ? JSON.parse(fs.readFileSync(truthFile, 'utf8')) : {};
    if (!fs.existsSync(truthFile)) failures.push(`truth ${opt}: ${g.stderr.slice(-600)}`);
    fs.rmSync(core, { force: true });
    return { opt, answers, truth, failures };
  } finally {
    proc.kill();
  }
}
