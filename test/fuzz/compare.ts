/**
 * What counts as a disagreement: the four back ends must give the same
 * answer (the same value, or the same error message), and that answer
 * must be gdb's (an error where gdb's twin fails or the schema language
 * says the expression has no value). The generator's own expectation is
 * checked too: when gdb disagrees with it, the generator (or gdb) is
 * wrong, not xwalk, and it is reported apart ("model").
 */
import { BACKENDS, type Answer, type BuildResult } from './backends.ts';
import type { Column, Expect } from './gen-schema.ts';

export interface Disagreement {
  column: string;
  opt: string;
  kind: 'backends' | 'truth' | 'model' | 'missing';
  detail: string;
}

/** gdb's answer in the form of the back ends', or ERR (any error) / SHAPE (memory not as written). */
export function truthAnswer(t: Record<string, unknown> | undefined): Answer {
  if (!t) return 'MISSING';
  if ('int' in t) return `i:${t.int}`;
  if ('text' in t) return `s:${t.text}`;
  if ('list' in t) return `l:[${(t.list as string[]).join(',')}]`;
  if ('null' in t) return 'null';
  if ('shape' in t) return `SHAPE ${t.shape}`;
  return 'ERR';
}

const expectAnswer = (e: Expect): Answer | null => ('int' in e ? `i:${e.int}` : 'text' in e ? `s:${e.text}` : 'list' in e ? `l:[${e.list.join(',')}]` : 'null' in e ? 'null' : 'error' in e ? 'ERR' : null);

export function compare(columns: Column[], builds: BuildResult[]): Disagreement[] {
  const out: Disagreement[] = [];
  for (const b of builds) {
    for (const col of columns) {
      const got = BACKENDS.map((k) => b.answers[k][col.name]);
      if (got.some((g) => g === undefined)) {
        if (got.some((g) => g !== undefined)) out.push({ column: col.name, opt: b.opt, kind: 'missing', detail: BACKENDS.map((k, i) => `${k}=${got[i]}`).join(' ') });
        continue;
      }
      const truth = truthAnswer(b.truth[col.name]);
      const ok = (a: Answer) => (truth === 'ERR' ? a.startsWith('e:') : a === truth);
      if (new Set(got).size > 1) out.push({ column: col.name, opt: b.opt, kind: 'backends', detail: `${BACKENDS.map((k, i) => `${k}=${JSON.stringify(got[i])}`).join(' ')} gdb-truth=${JSON.stringify(truth)}` });
      else if (!truth.startsWith('SHAPE') && !ok(got[0])) out.push({ column: col.name, opt: b.opt, kind: 'truth', detail: `all back ends ${JSON.stringify(got[0])}, gdb ${JSON.stringify(truth)} (${JSON.stringify(b.truth[col.name])})` });
      const want = expectAnswer(col.expect);
      if (want !== null && want !== truth && !(want === 'ERR' && truth === 'ERR')) out.push({ column: col.name, opt: b.opt, kind: 'model', detail: `generator expected ${JSON.stringify(want)}, gdb ${JSON.stringify(truth)} (${JSON.stringify(b.truth[col.name])})` });
    }
  }
  return out;
}
