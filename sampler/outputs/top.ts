/**
 * xsample top: a view as a live table, like py-spy top. Every --interval
 * it takes a sample of each process, sorts the items by a column (--sort,
 * largest first) and shows each number with how it moved since the last
 * refresh (+3, -120); a counter (counters: of the view, totals that count
 * up, as nginx's requests) is followed by its rate per second between the
 * last two samples, by the sampler's clock (requests/s). On a terminal the table is redrawn in place, as many
 * rows as fit; otherwise each refresh is printed as a block of plain text.
 * The target is never stopped; Ctrl-C quits.
 */
import type { ViewIR } from '../../generators/ir.ts';
import { UserError } from '../../core/errors.ts';
import { isInt, sub } from '../../core/exact.ts';
import { aligned, cellText } from './text-table.ts';
import type { Titled } from '../sampling/result-shape.ts';
import { TargetGone } from '../memory/memory.ts';
import { closeSessions, compileSessions, oneView, openSessions, type Print, type SampleOptions, sampleOnce, type Session, Tally } from '../sampling/sampling.ts';
import { Interrupt } from '../sampling/interrupt.ts';
import type { Row } from '../sampling/view-run.ts';

export interface TopOptions extends SampleOptions {
  sort: string | null;
}


/** What identifies an item from one refresh to the next: its process and address (or root and place). */
const keyOf = (row: Row, i: number): string => `${row.pid ?? ''}:${row.addr ?? `${row.origin}#${i}`}`;

/** The column to sort by: the one asked for, else the weight of a stack-shaped view, else the first number column. */
export function sortColumn(view: ViewIR, asked: string | null): string | null {
  const names = ['origin', ...view.columns.map((c) => c.name)];
  if (asked !== null) {
    if (!names.includes(asked)) throw new UserError(`view ${view.name} has no column ${asked} to sort by (columns: ${names.join(', ')})`);
    return asked;
  }
  return view.stack?.weight ?? view.columns.find((c) => c.expr.type.k === 'int')?.name ?? null;
}

/** Largest first for numbers, then by text; items without a value last. */
function compare(col: string | null) {
  return (a: Row, b: Row): number => {
    if (col === null) return 0;
    const x = a[col];
    const y = b[col];
    if (isInt(x) && isInt(y)) return x > y ? -1 : x < y ? 1 : 0;
    if (x === null || x === undefined) return y === null || y === undefined ? 0 : 1;
    if (y === null || y === undefined) return -1;
    return String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0;
  };
}

/** What a counter column's rate is called: requests -> requests/s. */
export const rateColumn = (column: string): string => `${column}/s`;

/**
 * Each counter column (counters: of the view: totals that count up) followed by its rate, per second by the
 * sampler's clock: the move since the same item's last sample over the seconds between the two samples
 * (`at`, ms); null for an item not seen before, or when a counter went down (the program started again).
 * `last` keeps each item's counters and time for the next call.
 */
export function withRates(rows: Row[], counters: string[], at: number, last: Map<string, { row: Row; at: number }>): Row[] {
  if (counters.length === 0) return rows;
  return rows.map((r, i) => {
    const k = keyOf(r, i);
    const prev = last.get(k);
    last.set(k, { row: r, at });
    const out: Row = {};
    for (const [c, v] of Object.entries(r)) {
      out[c] = v;
      if (!counters.includes(c)) continue;
      const before = prev?.row[c];
      const seconds = prev ? (at - prev.at) / 1000 : 0;
      const d = isInt(v) && isInt(before) && seconds > 0 ? Number(sub(v, before)) : null;
      out[rateColumn(c)] = d !== null && d >= 0 ? (d / seconds).toFixed(1) : null;
    }
    return out;
  });
}

/** A number and how it moved since the last refresh; new items say so once. */
function cell(v: Row[string], before: Row[string] | undefined, seen: boolean): string {
  if (!isInt(v) || !seen || !isInt(before)) return cellText(v);
  const d = sub(v, before);
  return d === 0 || d === 0n ? cellText(v) : `${cellText(v)} (${d > 0 ? '+' : ''}${d})`;
}

/**
 * The table of one refresh: the rows sorted, each number with its move since `before` (the rows of the last
 * refresh by key), an item not there before marked new. Returns the lines, and the rows by key for the next one.
 */
export function topTable(rows: Row[], before: Map<string, Row> | null, sortBy: string | null): { lines: string[]; byKey: Map<string, Row> } {
  const keyed = rows.map((r, i) => ({ r, k: keyOf(r, i) }));
  const byKey = new Map(keyed.map(({ r, k }) => [k, r]));
  keyed.sort((a, b) => compare(sortBy)(a.r, b.r));
  if (keyed.length === 0) return { lines: [], byKey };
  const cols = Object.keys(keyed[0].r);
  const table = keyed.map(({ r, k }) => {
    const old = before?.get(k);
    const cells = cols.map((c) => cell(r[c], old?.[c], old !== undefined));
    return before && !old ? [...cells, 'new'] : [...cells, ''];
  });
  const head = [...cols.map((c) => (c === sortBy ? `${c.toUpperCase()}↓` : c.toUpperCase())), ''];
  // a rate (withRates: text with one decimal) is a number too
  const numeric = cols.map((c) => keyed.every(({ r }) => isInt(r[c]) || r[c] === null || (c.endsWith('/s') && typeof r[c] === 'string')));
  return { lines: aligned(head, table, numeric), byKey };
}

export async function topAll(o: TopOptions, print: Print, warn: Print): Promise<number> {
  const sessions = await openSessions(o, warn, oneView(o.view));
  try {
    // Compiled before the first refresh, as record does: every refresh then costs what the others do.
    compileSessions(o, sessions);
    const view = sessions[0].view;
    return await topLoop(o, view, sortColumn(view, o.sort), sessions, print, warn);
  } finally {
    closeSessions(sessions);
  }
}

async function topLoop(o: TopOptions, view: ViewIR, sortBy: string | null, sessions: Session[], print: Print, warn: Print): Promise<number> {
  const tty = process.stdout.isTTY === true;
  const interrupt = new Interrupt();
  const tally = new Tally();
  const start = performance.now();
  let before: Map<string, Row> | null = null;
  const counted = new Map<string, { row: Row; at: number }>();
  try {
    for (let i = 0; i < o.count; i++) {
      if (i > 0) await interrupt.sleep(o.interval);
      if (interrupt.stopped) break;
      const rows: Row[] = [];
      const problems: string[] = [];
      let release = '';
      for (const s of sessions.filter((x) => !x.gone)) {
        let result: Titled;
        try {
          ({ result } = sampleOnce(o, s, warn));
        } catch (err) {
          if (!(err instanceof TargetGone) || sessions.length === 1) throw err;
          warn(`xsample: ${err.message}`);
          s.gone = true;
          continue;
        }
        // the sampler's clock at the sample: a counter's rate is its move over the time between two samples
        const at = performance.now();
        tally.add(result);
        release = `${result.pack} ${result.release}`;
        const items = withRates(result.items, view.counters ?? [], at, counted);
        rows.push(...items.map((r) => (sessions.length > 1 ? r : dropPid(r))));
        if (result.partial) problems.push(`pid ${result.pid}: partial: ${result.errors[0].message}`);
      }
      if (sessions.every((s) => s.gone)) throw new TargetGone('every process read has exited');
      const t = (performance.now() - start) / 1000;
      const { lines, byKey } = topTable(rows, before, sortBy);
      const pids = sessions.filter((s) => !s.gone).map((s) => s.target.pid);
      const head = `xsample top: ${view.name} (${release}, pid ${pids.join(', ')}): ${rows.length} item${rows.length === 1 ? '' : 's'}, refresh ${i + 1} at ${t.toFixed(1)} s${sortBy ? `, by ${sortBy}` : ''}${before ? `, moves since ${(o.interval / 1000).toFixed(1)} s ago` : ''}`;
      const gone = before ? [...before.keys()].filter((k) => !byKey.has(k)).length : 0;
      const out = [head, ...problems, ...(gone ? [`${gone} item${gone === 1 ? '' : 's'} gone since the last refresh`] : []), ...lines];
      if (tty) {
        const room = Math.max(3, (process.stdout.rows ?? 40) - 2);
        const shown = out.length > room ? [...out.slice(0, room - 1), `... ${out.length - room + 1} more rows`] : out;
        process.stdout.write(`\x1b[H\x1b[2J${shown.join('\n')}\nCtrl-C to quit\n`);
      } else print(`${out.join('\n')}\n`);
      before = byKey;
    }
  } finally {
    interrupt.dispose();
  }
  warn(`xsample: ${tally.summary(sessions.length, (performance.now() - start) / 1000)}`);
  return tally.finish(o.verbose, warn);
}

/** With one process, the pid is in the title, not in every row. */
function dropPid(r: Row): Row {
  const { pid: _, ...rest } = r;
  return rest;
}
