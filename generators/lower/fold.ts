/**
 * Constant folding of the loop IR, once for every printer: which
 * sub-expressions are known once the layout is (integers and layout facts
 * joined by + - *), what they are worth, and which are surely in
 * [0, 2^63) whatever the build (a mask any printer may apply with its
 * plain 64-bit `and`).
 *
 * The JavaScript and eBPF printers know the layout when they print: they
 * fold to numbers (layoutValues). The Python printer prints one file for
 * every build: it folds to names bound once per build when the extension
 * loads (printers/py.ts PyConsts), through the same foldConst with its
 * own spelling of the leaves. Sums are exact: a printer with fixed-width
 * registers (eBPF) wraps the value it is given.
 */
import type { Pointee } from '../ir.ts';
import type { LExpr } from './lir.ts';

/** A leaf of a constant expression: a layout fact, or one of the walk's limits. */
export type ConstLeaf = Extract<LExpr, { k: 'off' | 'size' | 'align' | 'hasEnum' | 'state' }>;

/** How a printer spells a constant expression: its integers, its leaves (null: not known here), its + - *. */
export interface ConstAlgebra<T> {
  int(v: bigint): T;
  leaf(e: ConstLeaf): T | null;
  arith(op: '+' | '-' | '*', a: T, b: T): T;
}

/** e, when it is made of integers, layout facts and the limits the algebra knows, joined by + - *; else null. */
export function foldConst<T>(e: LExpr, alg: ConstAlgebra<T>): T | null {
  switch (e.k) {
    case 'int':
      return alg.int(e.v);
    case 'off':
    case 'size':
    case 'align':
    case 'hasEnum':
    case 'state':
      return alg.leaf(e);
    case 'bin': {
      if (e.op !== '+' && e.op !== '-' && e.op !== '*') return null;
      const a = foldConst(e.a, alg);
      const b = a === null ? null : foldConst(e.b, alg);
      return a === null || b === null ? null : alg.arith(e.op, a, b);
    }
    default:
      return null;
  }
}

/** An expression that is no integer and no layout fact: what a printer's switch sees once folding took those. */
export type Unfolded = Exclude<LExpr, { k: 'int' | 'off' | 'size' | 'align' | 'hasEnum' }>;

/** e, which foldConst did not fold: never an integer or a layout fact, which it always folds. */
export function unfolded(e: LExpr): Unfolded {
  if (e.k === 'int' || e.k === 'off' || e.k === 'size' || e.k === 'align' || e.k === 'hasEnum') throw new Error(`internal: constant ${e.k} not folded`);
  return e;
}

/**
 * The layout facts of one build (sampler/sampling/bound-layout.ts has them per build): what folding reads
 * (offsets, sizes, alignments, enums), and what a printer resolves besides (a field's width, a global's size).
 */
export interface LayoutFacts {
  field(struct: string, path: string): { offset: number; size: number; bit?: number; bits?: number };
  sizeOf(p: Pointee): number;
  align(struct: string): number;
  hasEnum(name: string): boolean;
  global(name: string): { size: number };
}

/** Folding to exact values with one build's layout, and the walk's limits where the printer knows them. */
export function layoutValues(L: LayoutFacts, limits?: { maxNodes: number; maxTotal: number }): ConstAlgebra<bigint> {
  return {
    int: (v) => v,
    leaf: (e) => {
      switch (e.k) {
        case 'off':
          return BigInt(L.field(e.struct, e.field).offset);
        case 'size':
          return BigInt(L.sizeOf(e.of));
        case 'align':
          // What a pointer to the struct must be a multiple of: its alignment, at most 8 (lir.ts).
          return BigInt(Math.min(L.align(e.struct), 8));
        case 'hasEnum':
          return L.hasEnum(e.enum) ? 1n : 0n;
        case 'state':
          return !limits || e.name === 'visited' ? null : BigInt(limits[e.name]);
      }
    },
    arith: (op, a, b) => (op === '+' ? a + b : op === '-' ? a - b : a * b),
  };
}

/** Surely in [0, 2^63) in every build: a non-negative integer below 2^63, an offset, a size, an alignment, an alignment less one. */
export function surelyBelow63(e: LExpr): boolean {
  if (e.k === 'int') return e.v >= 0n && e.v < 1n << 63n;
  if (e.k === 'off' || e.k === 'size' || e.k === 'align') return true;
  return e.k === 'bin' && e.op === '-' && e.a.k === 'align' && e.b.k === 'int' && e.b.v === 1n;
}
