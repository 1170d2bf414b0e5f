/**
 * The walk-logic cases (test/walk-logic.test.ts) written down as data, for
 * the eBPF printer's test (test/bpf-printer.test.ts): when XWALK_WALK_CASES
 * names a file, walk-logic.test.ts appends each evaluation there (the
 * lowered program, self, the limits, the fake memory and the symbols) after
 * a first line with its schema and hand-made layout, one JSON a line.
 */
import fs from 'node:fs';
import type { LayoutFile } from '../../generators/layout.ts';
import type { LProgram } from '../../generators/lower/lir.ts';
import type { MemoryDump } from './fake-process.ts';

export const CASES_ENV = 'XWALK_WALK_CASES';

export interface WalkCase {
  text: string;
  kind: 'value' | 'seq';
  prog: LProgram;
  self: number;
  limits: { maxNodes: number; maxTotal: number };
  /** name, address, size, ELF symbol type. */
  symbols: [string, number, number, number][];
  memory: MemoryDump;
}

export interface WalkCases {
  schema: string;
  layout: LayoutFile;
  cases: WalkCase[];
}

/** The file to record into, or null when walk-logic runs as itself. */
export const recording = (): string | null => process.env[CASES_ENV] || null;

// The loop IR's integers are bigints: written {"$int": "decimal"}.
const replacer = (_: string, v: unknown): unknown => (typeof v === 'bigint' ? { $int: v.toString() } : v);
const reviver = (_: string, v: unknown): unknown => (v !== null && typeof v === 'object' && '$int' in v ? BigInt((v as { $int: string }).$int) : v);

let started = false;

/** Appends a case (the schema and layout first, once). */
export function recordCase(file: string, schema: string, layout: LayoutFile, c: WalkCase): void {
  if (!started) {
    fs.writeFileSync(file, JSON.stringify({ schema, layout }) + '\n');
    started = true;
  }
  fs.appendFileSync(file, JSON.stringify(c, replacer) + '\n');
}

export function readCases(file: string): WalkCases {
  const [head, ...lines] = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  const { schema, layout } = JSON.parse(head) as { schema: string; layout: LayoutFile };
  return { schema, layout, cases: lines.map((l) => JSON.parse(l, reviver) as WalkCase) };
}
