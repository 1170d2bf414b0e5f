/**
 * The Python printer under test: a program of the loop IR printed as
 * Python (templates/print-py.ts) and run by plain python3 with the
 * extensions' runtime over the same fake memory (test/lib/py_walk.py).
 * No debugger: the walk semantics of the gdb and lldb extensions, alone.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { LayoutFile } from '../../generators/layout.ts';
import type { LProgram } from '../../generators/lower/lir.ts';
import type { Int } from '../../sampler/exact.ts';
import { PyConsts, printPyFuncs } from '../../templates/print-py.ts';
import type { FakeMemory } from './fake-memory.ts';

/** A value as both sides report it: an integer (decimal), a string, or none. */
export type Encoded = ['i', string] | ['s', string] | ['n'];

export interface PyAnswer {
  value?: Encoded;
  elems?: Encoded[];
  error?: { type: 'WalkError' | 'Fault'; kind: string | null; message: string };
  visited: string;
}

export interface PyWorld {
  mem: FakeMemory;
  symbols: [string, number, number][];
  layout: LayoutFile;
}

const HARNESS = path.join(import.meta.dirname, 'py_walk.py');

export function encode(v: unknown): Encoded {
  if (v === null || v === undefined) return ['n'];
  if (typeof v === 'string') return ['s', v];
  return ['i', String(v)];
}

/** The program as a Python factory `program(L)`, as the extensions bind one per layout. */
export function pySource(p: LProgram): string {
  const consts = new PyConsts();
  const funcs = printPyFuncs(p.funcs, consts, '    ');
  return ['def program(L):', ...consts.bindings().map((b) => `    ${b}`), ...funcs, `    return ${p.entry}`, ''].join('\n');
}

export function pyRun(p: LProgram, kind: 'value' | 'seq', w: PyWorld, o: { maxNodes: number; maxTotal: number; visited: Int; self: Int }): PyAnswer {
  const { regions, holes } = w.mem.dump();
  const req = {
    source: pySource(p),
    kind,
    regions,
    holes,
    symbols: w.symbols,
    layout: w.layout,
    max_nodes: String(o.maxNodes),
    max_total: String(o.maxTotal),
    visited: String(o.visited),
    self: String(o.self),
  };
  const r = spawnSync('python3', [HARNESS], { input: JSON.stringify(req), encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`python3 py_walk.py failed (${r.status}): ${r.stderr}\n${req.source}`);
  return JSON.parse(r.stdout) as PyAnswer;
}
