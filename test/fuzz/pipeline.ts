/**
 * One program and one schema through the whole pipeline: compile, layouts,
 * extensions, every back end on each build, and the comparison.
 */
import fs from 'node:fs';
import path from 'node:path';
import { compile, extensions, folder, layouts, runBuild, type BuildResult, type Folder } from './backends.ts';
import { compare, type Disagreement } from './compare.ts';
import type { Column } from './gen-schema.ts';

export interface Built {
  f: Folder;
  bins: string[];
  layout: unknown;
}

/** Compiles the program and reads its layouts (with a schema that declares its types). */
export async function build(dir: string, source: string, schema: string): Promise<Built> {
  fs.rmSync(dir, { recursive: true, force: true });
  const f = folder(dir);
  const bins = await compile(f, source);
  const layout = await layouts(f, schema, bins);
  return { f, bins, layout };
}

export interface Outcome {
  builds: BuildResult[];
  disagreements: Disagreement[];
  failures: string[];
}

/** The schema's extensions, and every back end on the builds asked for (-O0, -O2). */
export async function runSchema(b: Built, schema: string, columns: Column[], opts: { opts?: string[] } = {}): Promise<Outcome> {
  await extensions(b.f, schema);
  const builds: BuildResult[] = [];
  const twins = Object.fromEntries(columns.map((c) => [c.name, c.twin]));
  for (const bin of b.bins) {
    if (opts.opts && !opts.opts.includes(path.basename(bin).replace('prog', ''))) continue;
    builds.push(await runBuild(b.f, bin, columns.map((c) => c.name), twins));
  }
  return { builds, disagreements: compare(columns, builds), failures: builds.flatMap((x) => x.failures) };
}

/** Disagreements that are xwalk's (not the generator's own model against gdb). */
export const real = (ds: Disagreement[]) => ds.filter((d) => d.kind !== 'model');
