/**
 * xsample runs at a low priority (nice 19 unless --nice says otherwise), so
 * that on a busy host the target, not the sampler, gets the CPU. The
 * launcher (bin/xsample.ts) calls this before the sampler's bundle loads, so
 * all of xsample's own work already runs niced. Linux applies setpriority
 * to one thread, so every thread V8 started is lowered; threads started
 * later inherit the level of the thread that starts them.
 */
import fs from 'node:fs';
import os from 'node:os';

export function niceLevel(argv: string[]): number {
  const i = argv.findIndex((a) => a === '--nice' || a.startsWith('--nice='));
  const text = i < 0 ? '19' : argv[i].startsWith('--nice=') ? argv[i].slice(7) : argv[i + 1];
  const v = Number(text);
  return Number.isInteger(v) && v >= 0 && v <= 19 ? v : 19;
}

export function beNice(level: number): void {
  if (level === 0) return;
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      os.setPriority(Number(tid), Math.max(level, os.getPriority(Number(tid))));
    } catch {
      /* a thread that just ended */
    }
  }
}
