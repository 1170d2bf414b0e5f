/**
 * The output layer, once in each language and held to one set of golden
 * cases (test/fixtures/output-golden/): xsample's writers
 * (sampler/outputs/) and its layout choice (generators/layout-choice.ts)
 * give exactly what is written there, and so does the
 * Python runtime's py-common/xwalk_output.py and xwalk_choice.py (test/py/test_output_golden.py,
 * which test/python-units.test.ts runs with the other Python tests).
 */
import t from 'tap';
import { resultShape, toJson } from '../sampler/sampling/result-shape.ts';
import { formatText } from '../sampler/outputs/text-table.ts';
import { stacksOf } from '../sampler/outputs/folded.ts';
import { StackCounts, toFolded } from '../sampler/outputs/stack-counts.ts';
import { type FoldedCase, readGolden, type ResultCase, rowOf } from './lib/output-golden.ts';
import { chooseLayout, type LayoutCandidate, type LayoutChoice, type ProcessFacts } from '../generators/layout-choice.ts';

t.test('results: text and JSON, byte for byte', async (t) => {
  const { cases } = readGolden<ResultCase>('results.json');
  t.ok(cases.length >= 8, 'the cases are there');
  for (const c of cases) {
    const { clock, items, ...rest } = c.result;
    const r = resultShape({ ...rest, clock: clock ?? null, items: items.map(rowOf) });
    t.equal(formatText(r, clock ? { ...clock, doc: clock.doc ?? undefined } : null), c.text, `text: ${c.name}`);
    t.equal(toJson(r), c.json, `json: ${c.name}`);
  }
});

t.test('folded: one sample of a stack-shaped view, or of a flame graph, byte for byte', async (t) => {
  const { cases } = readGolden<FoldedCase>('folded.json');
  t.ok(cases.length >= 5, 'the cases are there');
  for (const c of cases) {
    const counts = new StackCounts();
    counts.sample(String(c.pid), c.parts.flatMap((p) => p.rows.map(rowOf).flatMap((row) => stacksOf(p.stack, row, c.pid))));
    t.equal(toFolded(counts), c.folded, c.name);
  }
});

t.test('the layout choice: layouts and what a reader found out give one choice, or one refusal line', async (t) => {
  const { cases } = readGolden<{ name: string; layouts: LayoutCandidate[]; facts: ProcessFacts; expect: LayoutChoice }>('layout-choice.json');
  t.ok(cases.length >= 10, 'the cases are there');
  for (const c of cases) t.same(chooseLayout(c.layouts, c.facts), c.expect, c.name);
});
