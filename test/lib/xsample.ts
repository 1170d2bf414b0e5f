/** Runs the built xsample (dist/xsample.js) as a user would, and reads its answer. */
import { execa } from 'execa';
import { join } from 'node:path';
import { root } from './walkee.ts';

export const xsampleBin = join(root, 'dist/xsample.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

export async function xsample(args: string[], opts: { env?: Record<string, string>; timeout?: number; prefix?: string[] } = {}): Promise<Run> {
  const cmd = [...(opts.prefix ?? []), process.execPath, xsampleBin, ...args];
  // A user's environment, not the test runner's (tap instruments child node processes through it).
  // XWALK_PACKS passes through: make test names the layouts it probed for the builds installed here.
  const packs = process.env.XWALK_PACKS ? { XWALK_PACKS: process.env.XWALK_PACKS } : {};
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root', ...packs, ...opts.env };
  const r = await execa(cmd[0], cmd.slice(1), { reject: false, env, extendEnv: false, timeout: opts.timeout ?? 120_000, stdin: 'ignore' });
  let json = null;
  if (args.includes('--json') && r.stdout.trim().startsWith('{')) {
    const lines = r.stdout.trim().split('\n');
    json = lines.length === 1 ? JSON.parse(lines[0]) : lines.map((l) => JSON.parse(l));
  }
  return { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

/** Every row without the columns that only name where it was found (the process, the root). */
export const figures = (row: Record<string, unknown>): Record<string, unknown> => {
  const { pid: _pid, origin: _origin, ...rest } = row;
  return rest;
};

/**
 * A row without what moves with the sample's clock (age_ms, left_ms, the "left Nms" of a wait's text) or names the
 * process: what readers at different instants (xsample, then gdb, then lldb) must agree on.
 */
export const steady = (row: Record<string, unknown>): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  const fix = (x: unknown) => (typeof x === 'string' ? x.replace(/ left -?\d+ms/, ' left ?ms') : x);
  for (const [k, v] of Object.entries(row)) {
    if (k === 'pid' || k === 'age_ms' || k === 'left_ms') continue;
    out[k] = Array.isArray(v) ? v.map(fix) : fix(v);
  }
  return out;
};

/** The lines of a folded recording (`frame;frame;... weight`) as their frames and weight, in file order. */
export const parseFolded = (text: string): { frames: string[]; weight: number }[] =>
  text
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const at = l.lastIndexOf(' ');
      return { frames: l.slice(0, at).split(';'), weight: Number(l.slice(at + 1)) };
    });
