/**
 * Which processes hold what the views read. A server's master holds none
 * of it: its workers do. The pack's schema names both by the titles the
 * server gives them (binary.master, binary.worker, regexes over
 * /proc/PID/cmdline); a --pid of a master stands for its children that run
 * the same executable and carry a worker's title.
 */
import fs from 'node:fs';
import type { PackIR } from '../../generators/ir.ts';
import { UserError } from '../memory/memory.ts';

/** /proc/PID/cmdline with NULs as spaces ('' when it cannot be read: gone, a zombie, a kernel thread). */
export function cmdline(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '').replace(/\0/g, ' ');
  } catch {
    return '';
  }
}

/** The direct children of pid, from every thread's children list, or a scan of /proc/*\/stat. */
export function childPids(pid: number): number[] {
  const out = new Set<number>();
  try {
    for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
      const s = fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
      for (const c of s ? s.split(/\s+/) : []) out.add(Number(c));
    }
    return [...out].sort((a, b) => a - b);
  } catch {
    // no CONFIG_PROC_CHILDREN: scan for the parent pid
  }
  return allPids().filter((p) => parentPid(p) === pid);
}

function allPids(): number[] {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number)
    .sort((a, b) => a - b);
}

function parentPid(pid: number): number | null {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return null;
  }
}

/** The executable file's identity (device and inode), or null when /proc/PID/exe cannot be read. */
function exeIdentity(pid: number): string | null {
  try {
    const st = fs.statSync(`/proc/${pid}/exe`);
    return `${st.dev}:${st.ino}`;
  } catch {
    return null;
  }
}

export type Role = { kind: 'master'; workers: number[] } | { kind: 'process' };

const matches = (pattern: string, title: string) => new RegExp(pattern).test(title);

/**
 * What pid is to the pack: a master (with the workers to read instead), or
 * a process to read itself (a worker, a single-process server, anything
 * the schema does not call a master).
 */
export function roleOf(pid: number, pack: PackIR): Role {
  const p = pack.processes;
  if (!p || !matches(p.master, cmdline(pid))) return { kind: 'process' };
  const exe = exeIdentity(pid);
  const workers = childPids(pid).filter((c) => exeIdentity(c) === exe && (p.worker === null || matches(p.worker, cmdline(c))));
  return { kind: 'master', workers };
}

/** The workers of a master, or one clear error that names the processes that would do. */
export function workersOf(pid: number, pack: PackIR): number[] {
  const role = roleOf(pid, pack);
  if (role.kind === 'process') return [pid];
  if (role.workers.length > 0) return role.workers;
  const exe = exeIdentity(pid);
  const others = allPids().filter((o) => o !== pid && exeIdentity(o) === exe && roleOf(o, pack).kind === 'process');
  throw new UserError(
    `pid ${pid} is ${pack.name}'s master process ('${cmdline(pid)}'), which holds none of what the views read, and it has no workers now` +
      (others.length ? `; processes of the same executable that would: ${others.join(', ')}` : ''),
  );
}
