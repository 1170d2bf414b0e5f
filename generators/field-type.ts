/**
 * Field type declarations: `int`, `uint`, `fnptr`, `ptr T`, `ptr ptr T`,
 * a struct name (an embedded member), or an array member `T[N]` of a
 * scalar, a pointer or a struct (`char[24]`, `ptr node_t[64]`, `dictht[2]`).
 * T is a struct or one of the fixed-size scalars below, or void.
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

/** The most elements an array member may declare. */
export const MAX_ARRAY_COUNT = 1 << 24;

/** Parses a declaration; returns an error string for the caller to place. */
export function parseFieldType(text: string): FieldType | string {
  const arr = /^(.*?)\s*\[\s*(\d*)\s*\]$/.exec(text.trim());
  if (arr) return arrayType(arr[1], arr[2], text);
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

/** `T[N]`: the element is a scalar, a pointer (`ptr T`) or a struct. */
function arrayType(elemText: string, countText: string, text: string): FieldType | string {
  if (countText === '') return `'${text}' needs its number of elements: T[N] (a flexible array member cannot be declared; use ptr T and array())`;
  const count = Number(countText);
  if (!(count >= 1 && count <= MAX_ARRAY_COUNT)) return `'${text}': an array member has 1 to ${MAX_ARRAY_COUNT} elements`;
  const words = elemText.split(/\s+/).filter((w) => w !== '');
  if (words.length === 1 && isScalarName(words[0])) {
    if (words[0] === 'void') return `'${text}': void has no elements`;
    return { k: 'array', elem: pointeeByName(words[0]), count };
  }
  if (words.length === 1 && (words[0] === 'int' || words[0] === 'uint')) return `'${text}': write the element's size: i32[N], u64[N], char[N]`;
  const elem = parseFieldType(elemText);
  if (typeof elem === 'string') return elem;
  if (elem.k === 'ptr') return { k: 'array', elem: { k: 'ptr', to: elem.to }, count };
  if (elem.k === 'struct') return { k: 'array', elem: { k: 'struct', name: elem.name }, count };
  return `'${text}': an array's elements are a scalar (u8, char, i32...), ptr T or a struct`;
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
    case 'array':
      return `${pointeeName(t.elem)}[${t.count}]`;
  }
}
