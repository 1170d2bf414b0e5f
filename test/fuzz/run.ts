/**
 * make fuzz: random programs and schemas through every back end, compared
 * with gdb's own evaluation (docs/fuzz.md).
 *   FUZZ_SEED     the first program's seed (default 1); program i has seed FUZZ_SEED + i
 *   FUZZ_CASES    how many programs (default 20)
 *   FUZZ_SECONDS  stop starting programs after this long (default 600)
 *   FUZZ_COLUMNS  columns (expressions) per program (default 40)
 *   FUZZ_JOBS     programs run at once (default 2)
 *   FUZZ_DIR      the folder to work in (default: a new one under the system's temp folder)
 *   FUZZ_SAVE     1: shrink each disagreement and save it under test/fuzz/regressions/ (the only
 *                 write into the source tree; said on stderr)
 * Progress goes to stderr; the last line is the summary. Exit status 1 when
 * a back end disagreed.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { emitC, generateProgram } from './gen-c.ts';
import { SchemaGen, schemaYaml, type LayoutJson } from './gen-schema.ts';
import { build, real, runSchema } from './pipeline.ts';
import { save } from './regressions.ts';
import { shrink } from './shrink.ts';

const env = process.env;
const num = (name: string, dflt: number) => {
  const v = env[name] === undefined || env[name] === '' ? dflt : Number(env[name]);
  if (!Number.isInteger(v) || v < 0) {
    console.error(`fuzz: ${name} must be a whole number, not ${JSON.stringify(env[name])}`);
    process.exit(2);
  }
  return v;
};
const seed0 = num('FUZZ_SEED', 1);
const cases = num('FUZZ_CASES', 20);
const seconds = num('FUZZ_SECONDS', 600);
const ncols = num('FUZZ_COLUMNS', 40);
const jobs = Math.max(1, num('FUZZ_JOBS', 2));
const saving = env.FUZZ_SAVE === '1';
const work = env.FUZZ_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-fuzz-'));
fs.mkdirSync(work, { recursive: true });
const log = (s: string) => process.stderr.write(`${s}\n`);

const start = Date.now();
let programs = 0;
let columnCases = 0;
let comparisons = 0;
let disagreeing = 0;
let modelMisses = 0;
let failed = 0;
const found: string[] = [];
log(`fuzz: seeds ${seed0}..${seed0 + cases - 1}, ${ncols} columns each, at most ${seconds} s, in ${work}`);
let nextI = 0;
let maxSeed = seed0 - 1;
async function worker(): Promise<void> {
  for (;;) {
    const i = nextI++;
    if (i >= cases || (Date.now() - start) / 1000 >= seconds) return;
    await one(i);
  }
}
async function one(i: number): Promise<void> {
  const seed = seed0 + i;
  const t0 = Date.now();
  const dir = path.join(work, `p${seed}`);
  try {
    const p = generateProgram(seed);
    const source = emitC(p);
    const b = await build(dir, source, schemaYaml(p));
    const c = new SchemaGen(p, b.layout as LayoutJson, seed).generate(ncols);
    const o = await runSchema(b, schemaYaml(p, c), c.columns);
    programs++;
    maxSeed = Math.max(maxSeed, seed);
    columnCases += c.columns.length * o.builds.length;
    comparisons += c.columns.length * o.builds.length * 4;
    const bad = real(o.disagreements);
    const model = o.disagreements.filter((d) => d.kind === 'model');
    modelMisses += model.length;
    for (const f of o.failures) log(`  seed ${seed}: ${f}`);
    for (const d of [...bad, ...model]) log(`  seed ${seed} ${d.opt} ${d.kind} ${d.column}: ${c.columns.find((x) => x.name === d.column)?.expr}\n      ${d.detail}`);
    const cols = new Set(bad.map((d) => d.column));
    disagreeing += cols.size;
    log(`[${i + 1}/${cases}] seed ${seed}: ${c.columns.length} columns x ${o.builds.length} builds, ${cols.size} disagreeing${model.length ? `, ${model.length} model` : ''} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    if (bad.length && saving) {
      const target = bad[0];
      const s = await shrink(dir, p, c, b, target, log);
      const name = `seed${seed}-${target.column}`;
      const folder = save(name, emitC(s.program), schemaYaml(s.program, s.case), s.case.columns, s.outcome, seed, real(s.outcome.disagreements)[0] ?? target);
      log(`fuzz: saved a shrunk regression case into the source tree: ${path.relative(process.cwd(), folder)}`);
      found.push(name);
    }
    if (!bad.length && !env.FUZZ_KEEP) fs.rmSync(dir, { recursive: true, force: true });
  } catch (e) {
    log(`[${i + 1}/${cases}] seed ${seed}: the fuzzer failed: ${(e as Error).stack}`);
    failed++;
  }
}
await Promise.all(Array.from({ length: jobs }, worker));
const secs = ((Date.now() - start) / 1000).toFixed(0);
log(`fuzz: ${programs} programs (seeds ${seed0}..${maxSeed}), ${columnCases} expression cases (${comparisons} back-end answers compared with gdb), ${disagreeing} disagreements${found.length ? ` (saved: ${found.join(', ')})` : ''}, ${modelMisses} generator-model mismatches, ${failed} programs the pipeline could not run, ${secs} s`);
process.exit(disagreeing || failed ? 1 : 0);
