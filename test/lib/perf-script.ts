/**
 * perf's own DWARF unwinding as the ground truth for xsample record --cpu's C frames: `perf record
 * --call-graph dwarf` over a process, and its `perf script` text turned into folded stacks (root first),
 * with the names normalised so the two tools' stacks compare on the names both give.
 *
 * `perf script` prints a sample as a header line and one indented line a frame, innermost first:
 *     nginx 22246 24025.670332:   10101010 cpu-clock:ppp:
 *         7f9246a9dfe6 ngx_http_core_run_phases+0x26 (/usr/sbin/nginx)
 *         ffffffff81a0c0b5 do_syscall_64 ([kernel.kallsyms])
 * then a blank line. A frame perf could not name is `[unknown]`.
 */
import { execa } from 'execa';

export interface FoldedStack {
  frames: string[];
  weight: number;
}

export interface PerfFrame {
  name: string;
  /** the object perf names, as a basename: nginx, libc.so.6, [kernel.kallsyms] */
  object: string;
  kernel: boolean;
}

const FRAME = /^\s+([0-9a-f]+) (.*) \((.*)\)$/;

/** The samples of `perf script` text, each its frames root first. */
export function parsePerfScript(text: string): PerfFrame[][] {
  const out: PerfFrame[][] = [];
  let cur: PerfFrame[] | null = null;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur) out.push(cur.reverse());
      cur = null;
      continue;
    }
    const m = FRAME.exec(line);
    if (!m) {
      // A header: a sample starts.
      if (cur) out.push(cur.reverse());
      cur = [];
      continue;
    }
    if (!cur) continue;
    const object = m[3].split('/').at(-1)!;
    // perf adds +0xOFFSET when asked for symoff; the function is what is compared.
    const name = m[2].replace(/\+0x[0-9a-f]+$/, '');
    cur.push({ name, object, kernel: object === '[kernel.kallsyms]' || /^[0-9a-f]{16}$/.test(m[1]) && m[1].startsWith('ffff') });
  }
  if (cur) out.push(cur.reverse());
  return out;
}

/**
 * Records `seconds` of a process's CPU with perf's DWARF unwinding (user stack copies of stackBytes),
 * at hz, into file, and answers its samples. Runs alongside anything else sampling the process.
 */
export async function perfRecord(pid: number, opts: { hz: number; seconds: number; stackBytes: number; file: string }): Promise<PerfFrame[][]> {
  const rec = await execa('perf', ['record', '-q', '-o', opts.file, '--call-graph', `dwarf,${opts.stackBytes}`, '-F', String(opts.hz), '-p', String(pid), '--', 'sleep', String(opts.seconds)], { reject: false });
  if (rec.exitCode !== 0) throw new Error(`perf record failed (${rec.exitCode}): ${rec.stderr}`);
  const script = await execa('perf', ['script', '-i', opts.file, '-F', 'comm,tid,time,event,ip,sym,dso'], { reject: false, maxBuffer: 512 * 1024 * 1024 });
  if (script.exitCode !== 0) throw new Error(`perf script failed (${script.exitCode}): ${script.stderr.slice(0, 500)}`);
  return parsePerfScript(script.stdout);
}

/**
 * A frame name both tools can give, or null where one names what the other cannot: perf's `[unknown]`,
 * xsample's `object+0xOFFSET` and `[anon]` (a stripped function or compiled code); xsample's layer suffix
 * `_[k]` goes (perf says kernel by its object).
 */
export function comparableName(name: string): string | null {
  if (name === '[unknown]' || name === '[anon]' || /\+0x[0-9a-f]+$/.test(name)) return null;
  return name.replace(/_\[[klj]\]$/, '');
}
