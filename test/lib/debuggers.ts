/** Runs the generated extensions in real gdb and lldb-16, in batch mode, and reads their output. */
import { execa } from 'execa';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
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

const fileName = (pack: string, dbg: 'gdb' | 'lldb') => (dbg === 'gdb' ? `${pack}.py` : `${pack}_lldb.py`);

/** Folders of XWALK_PACKS that add layouts to the pack (make test names the one of the builds installed here that no committed layout covers). */
const addedLayouts = (pack: string): boolean =>
  (process.env.XWALK_PACKS ?? '')
    .split(':')
    .filter((d) => d !== '')
    .some((d) => fs.existsSync(path.join(d, pack)) && fs.readdirSync(path.join(d, pack)).length > 0);

let generatedHere: string | null = null;

/**
 * The extension the debuggers load: the committed one, or, where XWALK_PACKS
 * adds layouts to the pack, one xgen writes now with them too (the committed
 * ones are checked against xgen by generated.test.ts), into a folder of this
 * test process, never into generated/.
 */
export function extension(pack: string, dbg: 'gdb' | 'lldb'): string {
  if (!addedLayouts(pack)) return path.join(root, 'generated', fileName(pack, dbg));
  if (!generatedHere) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-ext-'));
    process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    generatedHere = dir;
  }
  const file = path.join(generatedHere, fileName(pack, dbg));
  if (!fs.existsSync(file)) execFileSync(process.execPath, [path.join(root, 'dist/xgen.js'), dbg, '--pack', pack, '--out', file], { stdio: ['ignore', 'ignore', 'inherit'] });
  return file;
}

/** opts.extension: the file to load, in place of the pack's (extension()); opts.env: variables added to the debugger's environment. */
export async function gdb(where: Where, pack: string, commands: string[], opts: { extension?: string; env?: Record<string, string> } = {}): Promise<DebuggerRun> {
  const target = 'pid' in where ? ['-p', String(where.pid)] : [where.exe, where.core];
  const ex = [`source ${opts.extension ?? extension(pack, 'gdb')}`, ...commands].flatMap((c) => ['-ex', c]);
  const r = await execa('gdb', ['-batch', '-nx', '-iex', 'set debuginfod enabled off', ...target, ...ex], { reject: false, timeout: 120_000, env: { ...opts.env, DEBUGINFOD_URLS: '' } });
  return { stdout: r.stdout, stderr: r.stderr, json: jsonLines(r.stdout) };
}

/**
 * lldb stops running -o commands at the first one that fails (a user at the
 * prompt just goes on): with keepGoing, each command is issued through
 * SBDebugger.HandleCommand, as the prompt would, so later ones still run.
 */
export async function lldb(where: Where, pack: string, commands: string[], opts: { keepGoing?: boolean; extension?: string; env?: Record<string, string> } = {}): Promise<DebuggerRun> {
  const target = 'pid' in where ? ['-p', String(where.pid)] : ['--core', where.core, where.exe];
  const issue = (c: string) => (opts.keepGoing ? `script lldb.debugger.HandleCommand(${JSON.stringify(c)})` : c);
  const o = [`command script import ${opts.extension ?? extension(pack, 'lldb')}`, ...commands.map(issue)].flatMap((c) => ['-o', c]);
  const r = await execa('lldb-16', ['-b', '--no-lldbinit', ...target, ...o], { reject: false, timeout: 120_000, env: opts.env });
  return { stdout: r.stdout, stderr: r.stderr, json: jsonLines(r.stdout) };
}
