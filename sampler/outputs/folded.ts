/**
 * A stack-shaped view's rows as flame-graph paths, and paths as the
 * collapsed ("folded") text every flame graph tool reads. The rules:
 *
 * - an item's frames: the process ("pid N", none without a process), then
 *   each frame column's value: origin bare, the others as "name value", a
 *   list column one frame per element, a value that could not be read as ?;
 * - its weight: the weight column's integer (1 without a weight column);
 *   with leaves, one path per leaf column, ending in its name, weighing its
 *   value; a path of weight 0 (or no integer) adds nothing and is left out;
 * - a path's text: its frames joined by ';', a ';' inside a frame as \x3b;
 *   the lines heaviest first, then by their text.
 *
 * The Python runtime states them once too (py-common/xwalk_output.py
 * frames_of, stacks_of, folded_path, folded_sorted); the golden cases of
 * test/fixtures/output-golden/ hold both to the same bytes.
 */
import type { ViewIR } from '../../generators/ir.ts';
import type { Int } from '../../core/exact.ts';
import type { Row } from '../sampling/view-run.ts';

export type StackShape = Pick<NonNullable<ViewIR['stack']>, 'frames' | 'weight' | 'leaves'>;

export interface WeighedPath {
  frames: string[];
  weight: Int;
}

/** One item of a stack-shaped view as frames: the process, then each frame column's value (a list gives one frame each). */
export function framesOf(stack: StackShape, row: Row, pid: number | null): string[] {
  const frames = pid === null ? [] : [`pid ${pid}`];
  for (const name of stack.frames) {
    const cell = row[name];
    if (name === 'origin') frames.push(String(cell));
    else for (const v of Array.isArray(cell) ? cell : [cell]) frames.push(`${name} ${v === null || v === undefined ? '?' : String(v)}`);
  }
  return frames;
}

const weightIn = (row: Row, column: string): Int => {
  const w = row[column];
  return typeof w === 'number' || typeof w === 'bigint' ? w : 0;
};

/** An item's paths: its frames with its weight (1 without one), or with leaves one path per leaf column, named after it. */
export function stacksOf(stack: StackShape, row: Row, pid: number | null): WeighedPath[] {
  const frames = framesOf(stack, row, pid);
  const { weight, leaves } = stack;
  if (leaves) return leaves.map((c) => ({ frames: [...frames, c], weight: weightIn(row, c) }));
  return [{ frames, weight: weight ? weightIn(row, weight) : 1 }];
}

/** A path as folded text: its frames joined by ';', a ';' inside a frame written \x3b. */
export const foldedPath = (frames: string[]): string => frames.map((f) => f.replace(/;/g, '\\x3b')).join(';');

/** The order of a flame graph's paths: heaviest first, then by their folded text. */
export function heaviestFirst(a: { weight: Int; text: string }, b: { weight: Int; text: string }): number {
  return a.weight > b.weight ? -1 : a.weight < b.weight ? 1 : a.text < b.text ? -1 : a.text > b.text ? 1 : 0;
}

/** Paths in the folded format: frame;frame;frame weight, one path a line, in the order given. */
export const foldedText = (paths: WeighedPath[]): string => paths.map((e) => `${foldedPath(e.frames)} ${e.weight}`).join('\n');
