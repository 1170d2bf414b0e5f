/**
 * Regression cases: a shrunk failing case kept in test/fuzz/regressions/NAME/
 * as prog.c, schema.yaml and expect.json (each column's expression, its C
 * twin, and the answer gdb gave: the one every back end must give). The
 * smoke test replays every one on all four back ends.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { truthAnswer, type Disagreement } from './compare.ts';
import type { Column, Twin } from './gen-schema.ts';
import { build, real, runSchema, type Outcome } from './pipeline.ts';

export const regressionsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'regressions');

export interface Expectation {
  seed: number;
  found: string;
  columns: Record<string, { expr: string; twin: Twin; want: string | null }>;
}

/** Saves a shrunk case; gives its folder. `want` is gdb's answer, none for addresses (they move from run to run). */
export function save(name: string, source: string, schema: string, columns: Column[], outcome: Outcome, seed: number, found: Disagreement): string {
  const dir = path.join(regressionsDir, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'prog.c'), source);
  fs.writeFileSync(path.join(dir, 'schema.yaml'), schema);
  const truth = outcome.builds[0].truth;
  const exp: Expectation = {
    seed,
    found: `${found.kind} at ${found.opt}: ${found.detail}`,
    columns: Object.fromEntries(columns.map((c) => [c.name, { expr: c.expr, twin: c.twin, want: 'ptr' in c.twin ? null : truthAnswer(truth[c.name] as Record<string, unknown>) }])),
  };
  fs.writeFileSync(path.join(dir, 'expect.json'), JSON.stringify(exp, null, 1) + '\n');
  return dir;
}

export const regressionNames = (): string[] => (fs.existsSync(regressionsDir) ? fs.readdirSync(regressionsDir).filter((n) => fs.existsSync(path.join(regressionsDir, n, 'expect.json'))).sort() : []);

export interface Replay {
  outcome: Outcome;
  /** Columns whose answer (the back ends', all equal) is not the one kept. */
  wrong: string[];
}

/** Replays a kept case in a folder of the caller's, on the builds asked for (-O0, -O2; both by default). */
export async function replay(name: string, work: string, opts?: string[]): Promise<Replay> {
  const dir = path.join(regressionsDir, name);
  const exp = JSON.parse(fs.readFileSync(path.join(dir, 'expect.json'), 'utf8')) as Expectation;
  const schema = fs.readFileSync(path.join(dir, 'schema.yaml'), 'utf8');
  const b = await build(work, fs.readFileSync(path.join(dir, 'prog.c'), 'utf8'), schema);
  const columns: Column[] = Object.entries(exp.columns).map(([n, c]) => ({ name: n, expr: c.expr, twin: c.twin, expect: { unknown: true } }));
  const outcome = await runSchema(b, schema, columns, opts ? { opts } : {});
  const wrong: string[] = [];
  for (const bld of outcome.builds)
    for (const [n, c] of Object.entries(exp.columns)) {
      if (c.want === null) continue;
      const got = bld.answers.xsample[n];
      const ok = c.want === 'ERR' ? got?.startsWith('e:') : got === c.want;
      if (!ok) wrong.push(`${n} ${bld.opt}: ${JSON.stringify(got)}, kept ${JSON.stringify(c.want)} (${c.expr})`);
    }
  return { outcome: { ...outcome, disagreements: real(outcome.disagreements) }, wrong };
}
