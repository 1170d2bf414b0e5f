/**
 * A failing case made small: first the columns (delta debugging, the
 * failing column always kept: a sharing bug needs its neighbours, so they
 * go only when the failure stays without them), then the program (the
 * globals, root fields and structs no remaining expression names).
 */
import { ROOT, structOf, type Field, type Program, type Struct } from './gen-c.ts';
import { emitC } from './gen-c.ts';
import { schemaYaml, type Case, type Column } from './gen-schema.ts';
import type { Disagreement } from './compare.ts';
import { build, real, runSchema, type Built, type Outcome } from './pipeline.ts';

export interface Shrunk {
  program: Program;
  case: Case;
  built: Built;
  outcome: Outcome;
}

const caseOf = (c: Case, columns: Column[]): Case => ({ columns, walks: c.walks.filter((w) => columns.some((col) => col.expr.includes(`${w.name}(`))) });

/** Whether the target column still disagrees (other than with the generator's own model). */
const still = (o: Outcome, target: Disagreement) => real(o.disagreements).some((d) => d.column === target.column);

export async function shrink(dir: string, p: Program, c: Case, built: Built, target: Disagreement, log: (s: string) => void): Promise<Shrunk> {
  const opts = { opts: [target.opt] };
  const tryCols = async (cols: Column[]) => {
    const o = await runSchema(built, schemaYaml(p, caseOf(c, cols)), cols, opts);
    return still(o, target) ? o : null;
  };
  const keep = c.columns.find((x) => x.name === target.column)!;
  let others = c.columns.filter((x) => x !== keep);
  let last: Outcome | null = await tryCols([keep]);
  if (last) others = [];
  // ddmin over the other columns.
  let n = 2;
  while (others.length > 0 && !last) {
    const size = Math.ceil(others.length / n);
    let reduced = false;
    for (let i = 0; i < others.length; i += size) {
      const rest = [...others.slice(0, i), ...others.slice(i + size)];
      const o = await tryCols([...rest, keep]);
      if (o) {
        others = rest;
        last = rest.length === 0 ? o : null;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (size === 1) break;
      n = Math.min(n * 2, others.length);
    }
  }
  let cols = [...others, keep];
  log(`shrink: ${c.columns.length} -> ${cols.length} columns`);
  let sc = caseOf(c, cols);
  let outcome = last ?? (await runSchema(built, schemaYaml(p, sc), cols, opts));

  // The program: what the remaining expressions do not name.
  const smaller = prune(p, [...cols.map((x) => `${x.expr} ${JSON.stringify(x.twin)}`), ...sc.walks.map((w) => w.yields)].join(' '));
  const b2 = await build(`${dir}-small`, emitC(smaller), schemaYaml(smaller));
  const o2 = await runSchema(b2, schemaYaml(smaller, sc), cols, opts);
  if (still(o2, target)) {
    log(`shrink: program ${emitC(p).length} -> ${emitC(smaller).length} bytes of C`);
    return { program: smaller, case: sc, built: b2, outcome: o2 };
  }
  return { program: p, case: sc, built, outcome };
}

const named = (text: string, name: string) => new RegExp(`\\b${name}\\b`).test(text);

/** The program without the globals, root fields and structs that the text does not name. */
export function prune(p: Program, text: string): Program {
  const root = structOf(p, ROOT);
  const rootFields = root.fields.filter((f) => named(text, f.name) || f.name === 'parr');
  // Structs reachable from what is left, and the fixed ones.
  const need = new Set<string>([ROOT]);
  const reach = (fields: Field[]) => {
    for (const f of fields) {
      const to = f.kind === 'sub' ? f.struct : f.kind === 'ptr' || f.kind === 'ptrarr' ? f.to : null;
      if (to && !need.has(to)) {
        need.add(to);
        reach(structOf(p, to).fields);
      }
    }
  };
  reach(rootFields);
  for (const s of p.structs.values()) if (!s.tag.match(/^fz_s\d+$/)) need.add(s.tag);
  for (const s of p.structs.values()) if (named(text, s.schemaName)) need.add(s.tag);
  for (const s of [...need]) reach(structOf(p, s).fields);
  const structs = new Map<string, Struct>();
  for (const [tag, s] of p.structs) {
    if (!need.has(tag)) continue;
    const fields = tag === ROOT ? rootFields : s.fields;
    structs.set(tag, { ...s, fields });
  }
  return {
    ...p,
    structs,
    objects: p.objects.filter((o) => need.has(o.struct)),
    globals: p.globals.filter((g) => named(text, g.name)),
  };
}
