/**
 * Whether a layout file is one: every size, offset and bit position a
 * number in its range, every field inside its struct. A layout is data that
 * becomes addresses; one checked nowhere else (a committed file edited by
 * hand, a cache entry) must not turn into bogus reads or internal errors.
 */
import type { FieldType, PackIR } from './ir.ts';
import { LAYOUT_FORMAT, type LayoutFile } from './layout-file.ts';

const MAX_SIZE = 2 ** 31;
const MAX_ENUMERATORS = 65536;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isInt = (v: unknown, min: number, max: number): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const isText = (v: unknown, max = 4096): v is string => typeof v === 'string' && v.length <= max && !/[\x00-\x1f\x7f]/.test(v);

/** The first thing wrong with l as a layout, or null when it is a valid one. */
export function layoutProblem(l: unknown): string | null {
  if (!isObj(l)) return 'not a JSON object';
  if (l.xwalk_layout !== LAYOUT_FORMAT) return `xwalk_layout is ${JSON.stringify(l.xwalk_layout)}, not ${LAYOUT_FORMAT}`;
  for (const k of ['pack', 'release', 'binary', 'producer']) if (!isText(l[k])) return `${k} is not a line of text`;
  if (typeof l.build_id !== 'string' || !/^[0-9a-f]{2,128}$/.test(l.build_id)) return 'build_id is not a hex string';
  if (l.signature !== undefined && !isText(l.signature)) return 'signature is not a line of text';
  if (l.object !== undefined && (typeof l.object !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(l.object))) return 'object is not a name';
  if (!isObj(l.types)) return 'types is not an object';
  for (const [name, t] of Object.entries(l.types)) {
    const where = `types.${name}`;
    if (!isObj(t)) return `${where} is not an object`;
    if (!isInt(t.size, 0, MAX_SIZE)) return `${where}.size is not a size`;
    if (!isInt(t.align, 1, 4096) || (t.align & (t.align - 1)) !== 0) return `${where}.align is not a power of two up to 4096`;
    if (!isObj(t.fields)) return `${where}.fields is not an object`;
    for (const [field, f] of Object.entries(t.fields)) {
      const problem = fieldProblem(f, t.size);
      if (problem) return `${where}.fields.${field}${problem}`;
    }
  }
  if (!isObj(l.globals)) return 'globals is not an object';
  for (const [name, g] of Object.entries(l.globals)) {
    if (!isObj(g) || !isInt(g.size, 1, MAX_SIZE)) return `globals.${name}.size is not a size`;
    if (g.signed !== undefined && typeof g.signed !== 'boolean') return `globals.${name}.signed is not true or false`;
  }
  if (l.enums !== undefined) {
    if (!isObj(l.enums)) return 'enums is not an object';
    for (const [name, e] of Object.entries(l.enums)) {
      if (!isObj(e) || Object.keys(e).length > MAX_ENUMERATORS) return `enums.${name} is not an object of at most ${MAX_ENUMERATORS} enumerators`;
      for (const [n, v] of Object.entries(e)) {
        if (!/^[A-Za-z_][A-Za-z0-9_]{0,255}$/.test(n)) return `enums.${name} has an enumerator that is not a C identifier`;
        if (!isInt(v, -(2 ** 53), 2 ** 53)) return `enums.${name}.${n} is not an integer`;
      }
    }
  }
  return null;
}

function fieldProblem(f: unknown, structSize: number): string | null {
  if (!isObj(f)) return ' is not an object';
  if (!isInt(f.size, 1, MAX_SIZE)) return '.size is not a size';
  if (f.signed !== undefined && typeof f.signed !== 'boolean') return '.signed is not true or false';
  // A bitfield is read from the bytes its bits cover, which may end before its type's size would
  // (uint32_t f:11 after two bytes of a 4-byte struct): those bytes must be inside the struct.
  let bytes = f.size;
  if (f.bits !== undefined) {
    if (!isInt(f.bits, 1, 64)) return '.bits is not 1 to 64';
    const bit = f.bit ?? 0;
    if (!isInt(bit, 0, 63) || bit + f.bits > f.size * 8) return '.bit and .bits do not fit its bytes';
    bytes = Math.ceil((bit + f.bits) / 8);
  } else if (f.bit !== undefined) return '.bit without .bits';
  if (!isInt(f.offset, 0, structSize - bytes)) return `.offset ${JSON.stringify(f.offset)} does not leave its ${bytes} bytes inside the struct (${structSize})`;
  return null;
}

/** l, checked: the LayoutFile, or an Error naming where it came from and what is wrong. */
export function checkedLayout(l: unknown, from: string): LayoutFile {
  const problem = layoutProblem(l);
  if (problem) throw new Error(`${from}: not a valid layout: ${problem}`);
  return l as LayoutFile;
}

/** The sizes a value of this declared type may have, or null when any size will do (a struct, an array). */
function sizesOf(t: FieldType): number[] | null {
  switch (t.k) {
    case 'int':
      return [1, 2, 4, 8];
    case 'ptr':
    case 'fnptr':
      return [8];
    default:
      return null;
  }
}

/**
 * The first thing the pack reads through l that l cannot give: an integer
 * field or global whose size is not 1, 2, 4 or 8 bytes, a pointer that is
 * not 8. A valid layout of the wrong kind (a cache entry written by hand)
 * is refused here, not met mid-walk as an internal error.
 */
export function layoutMisfit(pack: PackIR, l: LayoutFile): string | null {
  for (const st of pack.structs.values()) {
    const t = l.types[st.name];
    if (!t) continue; // what is missing, BoundLayout.bind says
    for (const f of st.fields.values()) {
      const lf = t.fields[f.name];
      const sizes = sizesOf(f.type);
      if (!lf || lf.bits !== undefined || !sizes || sizes.includes(lf.size)) continue;
      return `types.${st.name}.fields.${f.name}.size is ${lf.size}, but the schema reads it as ${f.type.k === 'int' ? 'an integer (1, 2, 4 or 8 bytes)' : 'a pointer (8 bytes)'}`;
    }
  }
  for (const g of pack.globals.values()) {
    const lg = l.globals[g.name];
    const sizes = sizesOf(g.type);
    if (lg && sizes && !sizes.includes(lg.size)) return `globals.${g.name}.size is ${lg.size}, but the schema reads it as ${g.type.k === 'int' ? 'an integer (1, 2, 4 or 8 bytes)' : 'a pointer (8 bytes)'}`;
  }
  return null;
}
