/**
 * The plain command (xsample --pid P --struct V, or --core): samples each
 * session once, or every --interval ms --count times (until Ctrl-C), and
 * prints each result as it comes, as text or JSON; a run of many ends with
 * how the figures moved and a summary on stderr. The exit status is the
 * worst over every sample.
 */
import { formatMoves } from './moves.ts';
import { formatText } from './text-table.ts';
import type { Titled } from '../sampling/result-shape.ts';
import { toJson } from '../sampling/result-shape.ts';
import { TargetGone } from '../memory/memory.ts';
import type { ClockReading } from '../sampling/clock-reading.ts';
import { Interrupt } from '../sampling/interrupt.ts';
import { closeSessions, describeError, oneView, openSessions, type Print, type SampleOptions, sampleOnce, type Session, Tally } from '../sampling/sampling.ts';

export async function sampleAll(o: SampleOptions, print: Print, warn: Print): Promise<number> {
  const sessions = await openSessions(o, warn, oneView(o.view));
  try {
    return await sampleLoop(o, sessions, print, warn);
  } finally {
    closeSessions(sessions);
  }
}

async function sampleLoop(o: SampleOptions, sessions: Session[], print: Print, warn: Print): Promise<number> {
  const many = o.count > 1;
  const interrupt = many ? new Interrupt() : null;
  const tally = new Tally();
  const start = Date.now();
  if (o.count === Infinity && process.stderr.isTTY) warn(`xsample: sampling every ${o.interval} ms; Ctrl-C to stop`);
  try {
    for (let i = 0; i < o.count; i++) {
      if (i > 0) await interrupt!.sleep(o.interval);
      if (interrupt?.stopped) break;
      for (const s of sessions.filter((x) => !x.gone)) {
        let result: Titled;
        let clock: ClockReading | null;
        try {
          ({ result, clock } = sampleOnce(o, s, warn));
        } catch (err) {
          // One of several processes exiting (a worker replaced on reload) ends its part only.
          if (!(err instanceof TargetGone) || sessions.length === 1) throw err;
          warn(`xsample: ${err.message}`);
          s.gone = true;
          continue;
        }
        const t = Date.now() - start;
        if (o.json) print(many ? withFields(toJson(result), i, t) : toJson(result));
        else print((many ? `-- sample ${i + 1}${o.count === Infinity ? '' : `/${o.count}`} at ${(t / 1000).toFixed(1)} s\n` : '') + formatText(result, clock));
        s.first ??= result;
        s.last = result;
        tally.add(result);
      }
      if (sessions.every((s) => s.gone)) throw new TargetGone('every process read has exited');
    }
  } finally {
    interrupt?.dispose();
  }
  const seconds = (Date.now() - start) / 1000;
  if (many && !o.json) {
    for (const s of sessions.filter((x) => x.first)) print((sessions.length > 1 ? `pid ${s.target.pid} ` : '') + formatMoves(s.first!.items, s.last!.items, seconds));
  }
  if (many) warn(`xsample: ${tally.summary(sessions.length, seconds)}`);
  else if (tally.partial > 0) warn(`xsample: partial result: ${describeError(tally.firstError!)}${tally.errors > 1 ? ` (and ${tally.errors - 1} more)` : ''}`);
  return tally.finish(o.verbose, warn);
}

/** A sample's JSON object with its number and time last: added to the text, not by copying the result into a new object each sample. */
const withFields = (json: string, sample: number, tMs: number): string => `${json.slice(0, -1)},"sample":${sample},"t_ms":${tMs}}`;
