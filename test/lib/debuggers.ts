/** Runs the generated extensions in real gdb and lldb-16, in batch mode, and reads their output. */
import { execa } from 'execa';
import path from 'node:path';
import { root } from './walkee.ts';

export type Where = { pid: number } | { core: string; exe: string };

export interface DebuggerRun {
  stdout: string;
  stderr: string;
  /** The JSON documents printed, in order (lines that start with '{'). */
  json: Record<string, unknown>[];
}

function jsonLines(text: string): Record<string, unknown>[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l));
}

export const extension = (pack: string, dbg: 'gdb' | 'lldb') => path.join(root, 'generated', dbg === 'gdb' ? `${pack}.py` : `${pack}_lldb.py`);

export async function gdb(where: Where, pack: string, commands: string[]): Promise<DebuggerRun> {
  const target = 'pid' in where ? ['-p', String(where.pid)] : [where.exe, where.core];
  const ex = [`source ${extension(pack, 'gdb')}`, ...commands].flatMap((c) => ['-ex', c]);
  const r = await execa('gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', ...target, ...ex], { reject: false, timeout: 120_000, env: { DEBUGINFOD_URLS: '' } });
  return { stdout: r.stdout, stderr: r.stderr, json: jsonLines(r.stdout) };
}

/**
 * lldb stops running -o commands at the first one that fails (a user at the
 * prompt just goes on): with keepGoing, each command is issued through
 * SBDebugger.HandleCommand, as the prompt would, so later ones still run.
 */
export async function lldb(where: Where, pack: string, commands: string[], opts: { keepGoing?: boolean } = {}): Promise<DebuggerRun> {
  const target = 'pid' in where ? ['-p', String(where.pid)] : ['--core', where.core, where.exe];
  const issue = (c: string) => (opts.keepGoing ? `script lldb.debugger.HandleCommand(${JSON.stringify(c)})` : c);
  const o = [`command script import ${extension(pack, 'lldb')}`, ...commands.map(issue)].flatMap((c) => ['-o', c]);
  const r = await execa('lldb-16', ['-b', '--no-lldbinit', ...target, ...o], { reject: false, timeout: 120_000 });
  return { stdout: r.stdout, stderr: r.stderr, json: jsonLines(r.stdout) };
}
