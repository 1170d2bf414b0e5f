/**
 * make soak: minutes of sampling a target that never holds still (churn:
 * a cache whose entries move and whose memory is reused millions of times
 * a second, a list rebuilt in fresh mappings), every view, checked
 * (--consistency verify, the default) and not (off). For each: how many
 * samples were taken, complete, partial, and complete but wrong (against
 * churn's invariants, true at every instant). The promise: none wrong
 * when checked. Writes bench/soak.json.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import { root, startWalkee } from '../test/lib/walkee.ts';

const MINUTES = Number(process.env.XWALK_SOAK_MINUTES ?? 2);
const VIEWS = ['churn_table', 'churn_lru', 'churn_list'];
const MODES = ['verify', 'off'];
/** Rounds of churn with no rest, and with rests (some walks fall in a rest). */
const RESTS_US = [0, 5000, 30_000];
const log = (s: string) => process.stderr.write(`soak: ${s}\n`);

type Truth = { entries: number; list_len: number; list_sum: number };

function right(view: string, item: Record<string, number | null>, t: Truth): boolean {
  if (view === 'churn_list') return item.count === t.list_len && item.sum === t.list_sum;
  return item.entries === t.entries || item.entries === t.entries - 1;
}

interface Row {
  view: string;
  mode: string;
  restUs: number;
  samples: number;
  complete: number;
  partial: number;
  wrong: number;
  moves: number;
}

async function main(): Promise<void> {
  const slot = (MINUTES * 60_000) / (VIEWS.length * MODES.length * RESTS_US.length);
  const rows: Row[] = [];
  for (const restUs of RESTS_US) {
    const w = await startWalkee([], 'churn');
    try {
      const truth: Truth = await w.ask('truth');
      await w.ask(`churn on ${restUs}`);
      for (const view of VIEWS) {
        for (const mode of MODES) {
          const before = (await w.ask('truth')).ops;
          const r = await execa(process.execPath, [path.join(root, 'dist/xsample.js'), '--pid', String(w.child.pid), '--struct', view, '--json', '--interval', '1', '--consistency', mode], { reject: false, timeout: slot, killSignal: 'SIGINT' });
          const docs = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
          const complete = docs.filter((d) => !d.partial);
          const row = { view, mode, restUs, samples: docs.length, complete: complete.length, partial: docs.length - complete.length, wrong: complete.filter((d) => !right(view, d.items[0], truth)).length, moves: (await w.ask('truth')).ops - before };
          rows.push(row);
          log(`${view} ${mode} rest ${restUs} us: ${row.samples} samples, ${row.complete} complete, ${row.partial} partial, ${row.wrong} wrong (${row.moves} moves meanwhile)`);
        }
      }
    } finally {
      await w.kill();
    }
  }
  fs.writeFileSync(path.join(root, 'bench/soak.json'), JSON.stringify({ date: new Date().toISOString().slice(0, 10), minutes: MINUTES, rows }, null, 1) + '\n');
  const bad = rows.filter((r) => r.mode === 'verify' && r.wrong > 0);
  log(bad.length ? `WRONG ANSWERS MARKED COMPLETE while checking: ${bad.map((r) => r.view).join(', ')}` : 'checked: no complete answer was wrong');
  process.exitCode = bad.length ? 1 : 0;
}

await main();
