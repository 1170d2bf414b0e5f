/**
 * The differential fuzzer's fixed-seed slice (make fuzz runs more): a
 * random program, at -O0 and -O2, whose random columns xsample (live
 * and on a gcore), the gdb extension and the lldb-16 extension must answer
 * alike and as gdb evaluates each column's C twin on the stopped process;
 * and every kept regression case (test/fuzz/regressions/), whose answers
 * must also be the ones kept (at -O0 only, to keep the slice near a minute;
 * the random program runs at both).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { emitC, generateProgram } from './fuzz/gen-c.ts';
import { SchemaGen, schemaYaml, type LayoutJson } from './fuzz/gen-schema.ts';
import { build, runSchema } from './fuzz/pipeline.ts';
import { regressionNames, replay } from './fuzz/regressions.ts';

/* A slice that takes about a minute on a quiet 2-core machine: one program (both builds), each kept case at -O0. */
const SEEDS = [1001];
const COLUMNS = 40;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-fuzz-smoke-'));
t.teardown(() => fs.rmSync(work, { recursive: true, force: true }));

for (const seed of SEEDS) {
  t.test(`random program ${seed}: every back end answers every column as gdb does`, async (t) => {
    const p = generateProgram(seed);
    const b = await build(path.join(work, `p${seed}`), emitC(p), schemaYaml(p));
    const c = new SchemaGen(p, b.layout as LayoutJson, seed).generate(COLUMNS);
    t.ok(c.columns.length >= COLUMNS / 2, `${c.columns.length} columns generated`);
    const o = await runSchema(b, schemaYaml(p, c), c.columns);
    t.same(o.failures, [], 'every back end gave a row, and gdb its truth');
    t.equal(o.builds.length, 2, '-O0 and -O2');
    const expr = (col: string) => c.columns.find((x) => x.name === col)?.expr;
    t.same(
      o.disagreements.map((d) => `${d.opt} ${d.kind} ${d.column} ${expr(d.column)}: ${d.detail}`),
      [],
      'no disagreement (between back ends, with gdb, or of gdb with the values the program was given)',
    );
  });
}

for (const name of regressionNames()) {
  t.test(`regression ${name}: every back end gives gdb's answer, the one kept`, async (t) => {
    const r = await replay(name, path.join(work, `r-${name}`), ['-O0']);
    t.same(r.outcome.failures, [], 'every back end gave a row');
    t.same(r.outcome.disagreements.map((d) => `${d.opt} ${d.kind} ${d.column}: ${d.detail}`), [], 'no disagreement');
    t.same(r.wrong, [], 'the answers kept');
  });
}
