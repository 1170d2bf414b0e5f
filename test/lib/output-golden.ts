/**
 * The output layer's golden cases (test/fixtures/output-golden/*.json),
 * read for the TypeScript side (test/output-golden.test.ts) and turned into
 * what sampler/outputs/ takes; test/py/test_output_golden.py reads the same
 * files for the Python runtime. Rows are [column, value] pairs (their order
 * is the columns'); an integer past 2^53 is {"$int": "decimal"}.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ViewError, Row } from '../../sampler/sampling/view-run.ts';
import type { StackShape } from '../../sampler/outputs/folded.ts';
import { root } from './walkee.ts';

export const GOLDEN_DIR = path.join(root, 'test/fixtures/output-golden');

const reviver = (_: string, v: unknown): unknown => (v !== null && typeof v === 'object' && '$int' in v ? BigInt((v as { $int: string }).$int) : v);

export function readGolden<T>(name: string): { about: string; cases: T[] } {
  return JSON.parse(fs.readFileSync(path.join(GOLDEN_DIR, name), 'utf8'), reviver) as { about: string; cases: T[] };
}

export const rowOf = (pairs: [string, unknown][]): Row => Object.fromEntries(pairs) as Row;

export interface ResultCase {
  name: string;
  result: {
    view: string;
    pid: number | null;
    pack: string;
    release: string;
    build_id: string | null;
    consistency?: 'off';
    clock?: { source: 'live' | 'core'; now_ms: number | bigint | null; monotonic_ms: number | bigint | null; doc?: string | null };
    items: [string, unknown][][];
    errors: ViewError[];
  };
  text: string;
  json: string;
}

export interface FoldedCase {
  name: string;
  pid: number | null;
  parts: { stack: StackShape; rows: [string, unknown][][] }[];
  folded: string;
}
