/**
 * What the type checker (check-expr.ts) and the built-ins (builtins.ts)
 * share: the error at a character offset, what an expression may refer to,
 * its scope, and the names of value types.
 */
import type { Expr } from './expr-parse.ts';
import { pointeeName } from './field-type.ts';
import type { FieldType, GlobalIR, Pointee, StructIR, TExpr, VType, WalkDefIR } from './ir.ts';
import type { WalkCost } from './lower/inline.ts';

export class ExprError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

/** What an expression may refer to. */
export interface CheckContext {
  structs: Map<string, StructIR>;
  globals: Map<string, GlobalIR>;
  /** The enums the schema names (enums:); absent: none. */
  enums?: Map<string, unknown>;
  /**
   * Named walks. checked() is the body checked on its own, once (self is
   * slot 0), with its size: a small body is inlined at each call, with self
   * bound to the argument; a large one is called.
   */
  walkDef(name: string): { def: WalkDefIR; ast: Expr; checked(): { body: TExpr } & WalkCost } | undefined;
  /**
   * A walk of that name in a known file of walks (an import's, or one of a
   * folder of packs) that this schema cannot call: not imported, or
   * imported and left out because the schema does not declare its type.
   */
  walkElsewhere?(name: string): WalkElsewhere | undefined;
}

export interface WalkElsewhere {
  /** As an import names it: nginx/idioms.yaml. */
  file: string;
  /** The type of its self. */
  of: string;
  /** The schema imports the file, and the walk was left out: it does not declare `of`. */
  imported: boolean;
}

export interface Scope {
  self: TExpr | null;
  its: number[]; // slots of the enclosing `it`s, innermost last
  /** Names bound by let() around the expression, and a view's let: names: what each stands for. */
  lets?: ReadonlyMap<string, TExpr>;
}

export const INT: VType = { k: 'int', signed: false };
export const SINT: VType = { k: 'int', signed: true };

export function typeName(t: VType): string {
  switch (t.k) {
    case 'int':
      return t.signed ? 'int' : 'uint';
    case 'ptr':
      return `ptr ${pointeeName(t.to)}`;
    case 'fnptr':
      return 'fnptr';
    case 'ref':
      return t.name;
    case 'str':
      return 'string';
    case 'seq':
      return `sequence of ${typeName(t.elem)}`;
    case 'path':
      return `part of ${t.struct}.${t.path}`;
    case 'array':
      return `${pointeeName(t.elem)}[${t.count}]`;
  }
}

export function fieldValueType(f: FieldType): VType {
  switch (f.k) {
    case 'int':
      return { k: 'int', signed: f.signed };
    case 'ptr':
      return { k: 'ptr', to: f.to };
    case 'fnptr':
      return { k: 'fnptr' };
    case 'struct':
      return { k: 'ref', name: f.name };
    case 'array':
      return { k: 'array', elem: f.elem, count: f.count };
  }
}

/** The type of an element read from memory as `p` (array elements, derefs): what a field of that type reads as. */
export function elementType(p: Pointee): VType {
  if (p.k === 'void') throw new Error('void has no elements');
  return fieldValueType(p);
}

/** The struct a value is or points to (a ref, a ptr to a struct), or null. */
export function structName(t: TExpr): string | null {
  return t.type.k === 'ref' ? t.type.name : t.type.k === 'ptr' && t.type.to.k === 'struct' ? t.type.to.name : null;
}
