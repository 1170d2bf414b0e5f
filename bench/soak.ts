/**
 * make soak: minutes of sampling a target that never holds still (churn:
 * a cache whose entries move and whose memory is reused millions of times
 * a second, a list rebuilt in fresh mappings), every view, checked
 * (--consistency verify, the default) and not (off). For each: how many
 * samples were taken, complete, partial, and complete but wrong (against
 * churn's invariants, true at every instant); and item by item, how many
 * were shown whole, and how many showed a value that is wrong (a value a
 * sample leaves null is not shown). The promise: none wrong when checked.
 * Writes bench/soak.json.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { root, startWalkee } from '../test/lib/walkee.ts';

const MINUTES = Number(process.env.XWALK_SOAK_MINUTES ?? 2);
const VIEWS = ['churn_table', 'churn_lru', 'churn_list', 'churn_entries'];
const MODES = ['verify', 'off'];
/** Rounds of churn with no rest, and with rests (some walks fall in a rest). */
const RESTS_US = [0, 5000, 30_000];
const log = (s: string) => process.stderr.write(`soak: ${s}\n`);

type Truth = { entries: number; list_len: number; list_sum: number };

type Item = Record<string, number | null>;

/** Whether every value an item shows is one the structure held at some instant (a null one is not shown). */
function right(view: string, item: Item, t: Truth): boolean {
  if (view === 'churn_list') return (item.count === null || item.count === t.list_len) && (item.sum === null || item.sum === t.list_sum);
  if (view === 'churn_entries') return item.same !== 0; // an entry and its shadow agree but while it moves
  return item.entries === null || item.entries === t.entries || item.entries === t.entries - 1;
}

const whole = (item: Item): boolean => Object.values(item).every((v) => v !== null);

interface Row {
  view: string;
  mode: string;
  restUs: number;
  samples: number;
  complete: number;
  partial: number;
  wrong: number;
  items: number;
  items_whole: number;
  items_wrong: number;
  moves: number;
}

async function main(): Promise<void> {
  const slot = (MINUTES * 60_000) / (VIEWS.length * MODES.length * RESTS_US.length);
  const rows: Row[] = [];
  // A folder of its own: a name in /tmp another user could have made a link at first.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-soak-'));
  // Gone however the soak ends: a sample file is up to 100 MB.
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  for (const restUs of RESTS_US) {
    const w = await startWalkee([], 'churn');
    try {
      const truth: Truth = await w.ask('truth');
      await w.ask(`churn on ${restUs}`);
      for (const view of VIEWS) {
        for (const mode of MODES) {
          const before = (await w.ask('truth')).ops;
          // Into a file: churn_entries' samples of 2000 items each outgrow what a pipe's buffer in memory may hold.
          const out = path.join(dir, `${view}-${mode}.jsonl`);
          // Stopped as a user stops it, with Ctrl-C: it keeps what it gathered (a timeout would tear its output down).
          // Its own file descriptor, written by xsample itself: nothing between it and the file is left to flush.
          const fd = fs.openSync(out, 'w');
          const child = spawn(process.execPath, [path.join(root, 'dist/xsample.js'), '--pid', String(w.child.pid), '--struct', view, '--json', '--interval', '1', '--consistency', mode], { stdio: ['ignore', fd, 'ignore'] });
          const timer = setTimeout(() => child.kill('SIGINT'), slot);
          await new Promise((resolve) => child.once('exit', resolve));
          clearTimeout(timer);
          fs.closeSync(fd);
          const docs = fs.readFileSync(out, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
          fs.rmSync(out);
          const complete = docs.filter((d) => !d.partial);
          const items: Item[] = docs.flatMap((d) => d.items);
          const row = {
            view,
            mode,
            restUs,
            samples: docs.length,
            complete: complete.length,
            partial: docs.length - complete.length,
            wrong: complete.filter((d) => !d.items.every((i: Item) => right(view, i, truth))).length,
            items: items.length,
            items_whole: items.filter(whole).length,
            items_wrong: items.filter((i) => !right(view, i, truth)).length,
            moves: (await w.ask('truth')).ops - before,
          };
          rows.push(row);
          log(`${view} ${mode} rest ${restUs} us: ${row.samples} samples, ${row.complete} complete, ${row.partial} partial, ${row.wrong} wrong; items ${row.items}, ${row.items_whole} whole, ${row.items_wrong} wrong (${row.moves} moves meanwhile)`);
        }
      }
    } finally {
      await w.kill();
    }
  }
  fs.writeFileSync(path.join(root, 'bench/soak.json'), JSON.stringify({ date: new Date().toISOString().slice(0, 10), minutes: MINUTES, rows }, null, 1) + '\n');
  const bad = rows.filter((r) => r.mode === 'verify' && (r.wrong > 0 || r.items_wrong > 0));
  log(bad.length ? `WRONG ANSWERS MARKED COMPLETE while checking: ${bad.map((r) => r.view).join(', ')}` : 'checked: no complete answer was wrong');
  process.exitCode = bad.length ? 1 : 0;
}

await main();
