/**
 * The Python printer under test: a program of the loop IR printed as
 * Python (printers/py.ts) and run by plain python3 with the
 * extensions' runtime over the same fake memory (test/lib/py_walk.py).
 * No debugger: the walk semantics of the gdb and lldb extensions, alone.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { LayoutFile } from '../../generators/layout.ts';
import type { LProgram } from '../../generators/lower/lir.ts';
import type { Int } from '../../core/exact.ts';
import { FunctionPool } from '../../generators/lower/share.ts';
import { packFunctionsSource } from '../../printers/python-extension.ts';
import type { FakeMemory } from './fake-memory.ts';

/** A value as both sides report it: an integer (decimal), a string, or none. */
export type Encoded = ['i', string] | ['s', string] | ['n'] | ['l', Encoded[]];

export interface PyAnswer {
  value?: Encoded;
  elems?: Encoded[];
  error?: { type: 'WalkError' | 'Fault'; kind: string | null; message: string };
  visited: string;
}

export interface PyWorld {
  mem: FakeMemory;
  symbols: [string, number, number][];
  /** Objects mapped: (file name, start, end, load bias). */
  objects?: [string, number, number, number][];
  layout: LayoutFile;
}

const HARNESS = path.join(import.meta.dirname, 'py_walk.py');

export function encode(v: unknown): Encoded {
  if (v === null || v === undefined) return ['n'];
  if (typeof v === 'string') return ['s', v];
  if (Array.isArray(v)) return ['l', v.map(encode)];
  return ['i', String(v)];
}

/**
 * The program as the extensions print it: its functions pooled (generators/lower/share.ts) and made per layout by
 * pack_functions, and a factory `program(L)` that asks for its entry, as a view's factory does.
 */
export function pySource(p: LProgram): string {
  const pool = new FunctionPool();
  const entry = pool.add(p.funcs).get(p.entry)!;
  return [packFunctionsSource(pool), '', '', 'def program(L):', `    return pack_functions(L, ["${entry}"])["${entry}"]`, ''].join('\n');
}

export function pyRun(p: LProgram, kind: 'value' | 'seq', w: PyWorld, o: { maxNodes: number; maxTotal: number; visited: Int; self: Int }): PyAnswer {
  const { regions, holes } = w.mem.dump();
  const req = {
    source: pySource(p),
    kind,
    regions,
    holes,
    symbols: w.symbols,
    objects: w.objects ?? [],
    layout: w.layout,
    max_nodes: String(o.maxNodes),
    max_total: String(o.maxTotal),
    visited: String(o.visited),
    self: String(o.self),
  };
  return JSON.parse(server().ask(JSON.stringify(req))) as PyAnswer;
}

/**
 * One python3 for every request of a test file (starting one costs more
 * than most requests): requests and answers go one per line through two
 * FIFOs, read and written synchronously, as the tests' evaluations are.
 */
class PyServer {
  private readonly out: number;
  private readonly in: number;
  private pending = '';

  constructor() {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-py-walk-'));
    const req = path.join(dir, 'requests');
    const ans = path.join(dir, 'answers');
    execFileSync('mkfifo', [req, ans]);
    const child = spawn('python3', [HARNESS, req, ans], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.unref();
    // The same order as python3's: requests first, then answers (each open waits for the other end).
    this.out = fs.openSync(req, 'w');
    this.in = fs.openSync(ans, 'r');
    fs.rmSync(dir, { recursive: true, force: true });
    process.on('exit', () => fs.closeSync(this.out));
  }

  ask(line: string): string {
    fs.writeSync(this.out, line + '\n');
    const buf = Buffer.alloc(1 << 16);
    for (;;) {
      const nl = this.pending.indexOf('\n');
      if (nl >= 0) {
        const answer = this.pending.slice(0, nl);
        this.pending = this.pending.slice(nl + 1);
        return answer;
      }
      const n = fs.readSync(this.in, buf);
      if (n === 0) throw new Error('python3 py_walk.py ended (see its stderr above)');
      this.pending += buf.toString('utf8', 0, n);
    }
  }
}

let running: PyServer | null = null;
const server = (): PyServer => (running ??= new PyServer());
