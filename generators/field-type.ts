/**
 * Field type declarations: `int`, `uint`, `fnptr`, `ptr T`, `ptr ptr T`,
 * or a struct name (an embedded member). T is a struct or one of the
 * fixed-size scalars below, or void.
 */
import type { FieldType, Pointee } from './ir.ts';

const SCALARS: Record<string, Pointee> = {
  void: { k: 'void' },
  u8: { k: 'int', size: 1, signed: false },
  u16: { k: 'int', size: 2, signed: false },
  u32: { k: 'int', size: 4, signed: false },
  u64: { k: 'int', size: 8, signed: false },
  i8: { k: 'int', size: 1, signed: true },
  i16: { k: 'int', size: 2, signed: true },
  i32: { k: 'int', size: 4, signed: true },
  i64: { k: 'int', size: 8, signed: true },
  char: { k: 'int', size: 1, signed: true },
  u_char: { k: 'int', size: 1, signed: false },
};

export const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const FIELD_PATH = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

/** Names a declared type may not take: they already mean something in a field type. */
export function isTypeKeyword(name: string): boolean {
  return name === 'int' || name === 'uint' || name === 'fnptr' || name === 'ptr' || isScalarName(name);
}

export function isScalarName(name: string): boolean {
  return Object.hasOwn(SCALARS, name);
}

/** A pointee by name; struct names are checked by the caller against the schema. */
export function pointeeByName(name: string): Pointee {
  return Object.hasOwn(SCALARS, name) ? SCALARS[name] : { k: 'struct', name };
}

/** Parses a declaration; returns an error string for the caller to place. */
export function parseFieldType(text: string): FieldType | string {
  const words = text.trim().split(/\s+/);
  if (words.length === 1) {
    const w = words[0];
    if (w === 'int') return { k: 'int', signed: true };
    if (w === 'uint') return { k: 'int', signed: false };
    if (w === 'fnptr') return { k: 'fnptr' };
    if (w === 'ptr') return "'ptr' needs the type it points to: ptr T (ptr void when unknown)";
    if (isScalarName(w)) return `'${w}' needs a pointer: write 'ptr ${w}', or use int/uint for an integer field`;
    if (!IDENT.test(w)) return `'${w}' is not a type name`;
    return { k: 'struct', name: w };
  }
  if (words[0] !== 'ptr') return `cannot read type '${text}': expected int, uint, fnptr, ptr T or a struct name`;
  let to: Pointee | null = null;
  const last = words[words.length - 1];
  if (!IDENT.test(last)) return `'${last}' is not a type name`;
  to = pointeeByName(last);
  for (let i = words.length - 2; i >= 1; i--) {
    if (words[i] !== 'ptr') return `cannot read type '${text}'`;
    to = { k: 'ptr', to };
  }
  return { k: 'ptr', to };
}

export function pointeeName(p: Pointee): string {
  switch (p.k) {
    case 'void':
      return 'void';
    case 'int':
      return `${p.signed ? 'i' : 'u'}${p.size * 8}`;
    case 'struct':
      return p.name;
    case 'ptr':
      return `ptr ${pointeeName(p.to)}`;
  }
}

export function fieldTypeName(t: FieldType): string {
  switch (t.k) {
    case 'int':
      return t.signed ? 'int' : 'uint';
    case 'fnptr':
      return 'fnptr';
    case 'struct':
      return t.name;
    case 'ptr':
      return `ptr ${pointeeName(t.to)}`;
  }
}
