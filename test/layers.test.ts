/**
 * The rooms and their layers (issue 25): every .ts file of core/,
 * generators/, printers/, sampler/ and bin/
 * imports only from its own layer or a lower one, the sampler's rooms only
 * from their own room or a lower one, and no file reaches itself through
 * its imports (no import circle). A failure names the file and the import.
 * test/ and bench/ may import anything.
 */
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { root } from './lib/walkee.ts';

/** Lowest first: a layer imports from its own and those before it. */
const LAYERS = ['core', 'generators', 'printers', 'sampler', 'bin'] as const;
const LAYER_OF: Record<string, (typeof LAYERS)[number]> = { core: 'core', generators: 'generators', printers: 'printers', sampler: 'sampler', bin: 'bin' };

/**
 * The sampler's rooms, lowest first: memory sources (live, core, snapshot, maps, symbols, unwind, perf
 * stacks); the sampling loop (identity, consistency, retries, clock, the view runner, pack choice);
 * bpf/ (sampling at the instant: the kernel's capture, loaded and read back); outputs (the commands'
 * writers: text, JSON, folded, SVG, speedscope, pprof, Prometheus, top, trace); fullstack/ (CPU
 * recordings that splice native and interpreter stacks, over bpf, unwind and the outputs); the CLI.
 */
const ROOMS = ['memory', 'sampling', 'bpf', 'outputs', 'fullstack', 'cli'] as const;

/** Every .ts file under the layers' folders, relative to the root, / separated. */
function sources(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
      const rel = `${dir}/${e.name}`;
      if (e.isDirectory()) {
        if (e.name !== 'node_modules' && e.name !== 'build') walk(rel);
      } else if (e.name.endsWith('.ts')) out.push(rel);
    }
  };
  for (const dir of Object.keys(LAYER_OF)) if (fs.existsSync(path.join(root, dir))) walk(dir);
  return out.sort();
}

/** What a file imports of the tree: static imports and exports (types too, as they tie the rooms as much) and import('...'). */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(path.join(root, file), 'utf8').replace(/^\s*\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
  const specs = [...text.matchAll(/(?:^|[;\n])\s*(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/g), ...text.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1]);
  return specs.filter((s) => s.startsWith('.')).map((s) => path.posix.normalize(path.posix.join(path.posix.dirname(file), s)));
}

const layerOf = (file: string): number => LAYERS.indexOf(LAYER_OF[file.split('/')[0]]);

/** A sampler file's room, or null when it sits in none. */
function roomOf(file: string): number | null {
  const parts = file.split('/');
  if (parts[0] !== 'sampler') return null;
  if (parts.length === 2) return -1;
  return ROOMS.indexOf(parts[1] as (typeof ROOMS)[number]);
}

/** The import circles of a graph: its strongly connected parts of more than one file, or of one that imports itself (Tarjan). */
function circles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const part: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      part.push(w);
    } while (w !== v);
    if (part.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(part.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

const files = sources();
const graph = new Map(files.map((f) => [f, importsOf(f)]));

t.test('the layers hold the files they should', async (t) => {
  t.ok(files.length > 100, `${files.length} files read`);
  t.ok(graph.get('sampler/sampling/sampling.ts')?.includes('sampler/memory/snapshot.ts'), 'imports are read: sampling imports the snapshot');
  const roomless = files.filter((f) => roomOf(f) === -1);
  t.same(roomless, [], 'every sampler file sits in a room (memory, sampling, bpf, outputs, fullstack, cli)');
});

/** The imports of a graph that go to a higher layer, or to a higher room of the sampler. */
function upward(graph: Map<string, string[]>): string[] {
  const wrong: string[] = [];
  for (const [file, imports] of graph) {
    for (const to of imports) {
      if (!(to.split('/')[0] in LAYER_OF)) continue;
      if (layerOf(to) > layerOf(file)) wrong.push(`${file} imports ${to}: ${LAYERS[layerOf(file)]}/ is below ${LAYERS[layerOf(to)]}/`);
      const [a, b] = [roomOf(file), roomOf(to)];
      if (a !== null && b !== null && a >= 0 && b > a) wrong.push(`${file} imports ${to}: sampler/${ROOMS[a]}/ is below sampler/${ROOMS[b]}/`);
    }
  }
  return wrong;
}

t.test('no file imports from a higher layer, or from a higher room of the sampler', async (t) => {
  t.same(upward(graph), [], 'layers: core < generators < printers < sampler (memory < sampling < bpf < outputs < fullstack < cli) < bin');
});

t.test('no import circle', async (t) => {
  t.same(circles(graph).map((c) => c.join(' -> ')), [], 'no file reaches itself through its imports');
});

t.test('the check finds a circle and an upward import when there is one', async (t) => {
  const g = new Map([
    ['a.ts', ['b.ts']],
    ['b.ts', ['c.ts']],
    ['c.ts', ['a.ts']],
    ['d.ts', ['d.ts']],
    ['e.ts', ['a.ts']],
  ]);
  t.same(circles(g), [['a.ts', 'b.ts', 'c.ts'], ['d.ts']], 'a three-file circle and a file importing itself');
  const up = new Map([
    ['core/a.ts', ['generators/b.ts']],
    ['sampler/memory/x.ts', ['sampler/outputs/y.ts']],
    ['sampler/outputs/y.ts', ['sampler/memory/x.ts', 'core/a.ts']],
  ]);
  t.same(upward(up), ['core/a.ts imports generators/b.ts: core/ is below generators/', 'sampler/memory/x.ts imports sampler/outputs/y.ts: sampler/memory/ is below sampler/outputs/'], 'an upward import and one to a higher room are named; downward ones pass');
  t.ok(layerOf('core/elf.ts') < layerOf('generators/ir.ts') && layerOf('generators/ir.ts') < layerOf('printers/js.ts') && layerOf('printers/js.ts') < layerOf('sampler/sampling/sampling.ts'), 'printers/ is layer 3, between generators/ and sampler/');
  t.ok((roomOf('sampler/memory/snapshot.ts') ?? -1) < (roomOf('sampler/outputs/top.ts') ?? -1), 'memory/ is below outputs/');
});
