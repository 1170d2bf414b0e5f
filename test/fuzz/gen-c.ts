/**
 * A random C program whose data the fuzzer knows: structs, unions,
 * bitfields, nested, flexible and pointer arrays, typedef chains, enums,
 * a linked list, a binary tree, an intrusive circular list, globals and
 * statics of every integer width and signedness. Everything is a static
 * initialiser (address constants included), so -O0 and -O2 builds hold the
 * same bytes and nothing runs before the program says it is ready; then it
 * waits in pause() to be read live, gcore'd and attached.
 */
import { Random } from './random.ts';

export interface IntType {
  bytes: 1 | 2 | 4 | 8;
  signed: boolean;
}

export type Field =
  | { kind: 'int'; name: string; ty: IntType; bits?: number; enumName?: string }
  | { kind: 'arr'; name: string; ty: IntType; n: number }
  | { kind: 'ptr'; name: string; to: string }
  | { kind: 'ptrarr'; name: string; to: string; n: number }
  | { kind: 'sub'; name: string; struct: string; dotted: boolean }
  | { kind: 'cbuf'; name: string; n: number }
  | { kind: 'cptr'; name: string };

export interface Struct {
  tag: string;
  union: boolean;
  fields: Field[];
  /** typedef names, innermost first: typedef struct tag a; typedef a b; ... */
  typedefs: string[];
  /** The name the schema uses: the tag or one of the typedefs. */
  schemaName: string;
  /** A flexible array member after the fields (not declared in the schema). */
  flex?: IntType;
}

/** A pointer's target: an object, or a member of one (the link of an intrusive list). */
export interface Ref {
  obj: string;
  member?: string;
}

export type Val = bigint | bigint[] | Ref | null | (Ref | null)[] | Vals | Buffer;
export interface Vals {
  [field: string]: Val;
}

export interface Obj {
  name: string;
  struct: string;
  vals: Vals;
  isStatic: boolean;
  flexItems?: bigint[];
}

export interface Global {
  name: string;
  ty: IntType;
  /** an array global when set */
  n?: number;
  value: bigint | bigint[];
  isStatic: boolean;
}

export interface Program {
  seed: number;
  structs: Map<string, Struct>;
  objects: Obj[];
  globals: Global[];
  enums: { name: string; values: [string, bigint][] }[];
  root: string;
}

export const intName = (t: IntType) => `${t.signed ? 'i' : 'u'}${t.bytes * 8}`;
export const cInt = (t: IntType) => `${t.signed ? '' : 'u'}int${t.bytes * 8}_t`;
export const INT_TYPES: IntType[] = [1, 2, 4, 8].flatMap((bytes) => [false, true].map((signed) => ({ bytes: bytes as IntType['bytes'], signed })));

export function range(t: IntType, bits = t.bytes * 8): [bigint, bigint] {
  return t.signed ? [-(1n << BigInt(bits - 1)), (1n << BigInt(bits - 1)) - 1n] : [0n, (1n << BigInt(bits)) - 1n];
}

/** A value of the type: its limits, small numbers, or any pattern. */
export function valueOf(r: Random, t: IntType, bits?: number): bigint {
  const [lo, hi] = range(t, bits);
  const k = r.int(0, 9);
  if (k === 0) return lo;
  if (k === 1) return hi;
  if (k <= 5) {
    const v = BigInt(r.int(0, 40)) * (t.signed && r.chance(0.4) ? -1n : 1n);
    return v < lo ? lo : v > hi ? hi : v;
  }
  const width = BigInt(bits ?? t.bytes * 8);
  const u = r.u64() & ((1n << width) - 1n);
  return t.signed ? BigInt.asIntN(Number(width), u) : u;
}

export const structOf = (p: Program, name: string): Struct => {
  const s = p.structs.get(name);
  if (!s) throw new Error(`no struct ${name}`);
  return s;
};
export const objOf = (p: Program, name: string): Obj => {
  const o = p.objects.find((x) => x.name === name);
  if (!o) throw new Error(`no object ${name}`);
  return o;
};

/** The tags of the structs every program has. */
export const LNODE = 'fz_lnode';
export const TNODE = 'fz_tnode';
export const LINK = 'fz_link';
export const ITEM = 'fz_item';
export const STR = 'fz_str';
export const FLEX = 'fz_flex';
export const UNION = 'fz_un';
export const ROOT = 'fz_root_s';

export function generateProgram(seed: number): Program {
  const r = new Random(seed);
  const structs = new Map<string, Struct>();
  const objects: Obj[] = [];
  const add = (s: Omit<Struct, 'schemaName'>) => {
    const names = [s.tag, ...s.typedefs];
    structs.set(s.tag, { ...s, schemaName: s.typedefs.length && r.chance(0.7) ? r.pick(s.typedefs) : names[0] });
  };
  const typedefChain = (tag: string) => (r.chance(0.3) ? [] : r.chance(0.5) ? [`${tag}_t`] : [`${tag}_a`, `${tag}_t`]);
  const int = () => r.pick(INT_TYPES);
  let objN = 0;
  const newObj = (struct: string, vals: Vals, extra: Partial<Obj> = {}): Obj => {
    const o = { name: `fz_o${objN++}`, struct, vals, isStatic: r.chance(0.7), ...extra };
    objects.push(o);
    return o;
  };

  const enums = [
    { name: 'fz_color', values: [['FZ_RED', -2n], ['FZ_GREEN', 5n], ['FZ_BLUE', 1000n]] as [string, bigint][] },
    { name: 'fz_mode', values: [['FZ_OFF', 0n], ['FZ_ON', 3n], ['FZ_MAX', 4000000000n]] as [string, bigint][] },
  ];

  add({ tag: STR, union: false, typedefs: typedefChain(STR), fields: [{ kind: 'int', name: 'len', ty: { bytes: 8, signed: false } }, { kind: 'cptr', name: 'data' }] });
  const lv = int();
  add({ tag: LNODE, union: false, typedefs: typedefChain(LNODE), fields: [{ kind: 'int', name: 'v', ty: lv }, { kind: 'int', name: 'w', ty: int() }, { kind: 'ptr', name: 'next', to: LNODE }] });
  add({ tag: TNODE, union: false, typedefs: typedefChain(TNODE), fields: [{ kind: 'ptr', name: 'left', to: TNODE }, { kind: 'int', name: 'key', ty: int() }, { kind: 'ptr', name: 'right', to: TNODE }] });
  add({ tag: LINK, union: false, typedefs: typedefChain(LINK), fields: [{ kind: 'ptr', name: 'next', to: LINK }, { kind: 'ptr', name: 'prev', to: LINK }] });
  add({ tag: ITEM, union: false, typedefs: typedefChain(ITEM), fields: [{ kind: 'int', name: 'v', ty: int() }, { kind: 'sub', name: 'link', struct: LINK, dotted: false }, { kind: 'int', name: 'u', ty: int() }] });
  add({ tag: FLEX, union: false, typedefs: typedefChain(FLEX), fields: [{ kind: 'int', name: 'n', ty: { bytes: 8, signed: false } }, { kind: 'int', name: 'tag', ty: { bytes: 8, signed: true } }], flex: int() });
  add({
    tag: UNION,
    union: true,
    typedefs: typedefChain(UNION),
    fields: [
      { kind: 'int', name: 'a', ty: { bytes: 8, signed: false } },
      { kind: 'int', name: 'b', ty: { bytes: 2, signed: true } },
      { kind: 'int', name: 'c', ty: { bytes: 1, signed: false } },
      { kind: 'int', name: 'd', ty: { bytes: 4, signed: true } },
    ],
  });

  // Random structs, each maybe embedding or pointing at an earlier one.
  const randoms: string[] = [];
  for (let i = 0, n = r.int(1, 3); i < n; i++) {
    const tag = `fz_s${i}`;
    const fields: Field[] = [];
    for (let j = 0, m = r.int(1, 5); j < m; j++) {
      const k = r.int(0, 9);
      const name = `f${j}`;
      if (k <= 4) {
        const ty = int();
        const bits = ty.bytes >= 2 && r.chance(0.3) ? r.int(1, ty.bytes * 8 - 1) : undefined;
        fields.push({ kind: 'int', name, ty, ...(bits ? { bits } : {}) });
      } else if (k <= 6) fields.push({ kind: 'arr', name, ty: int(), n: r.int(1, 6) });
      else if (k === 7 && randoms.length) fields.push({ kind: 'sub', name, struct: r.pick(randoms), dotted: r.chance(0.5) });
      else if (k === 8) fields.push({ kind: 'ptr', name, to: r.chance(0.5) && randoms.length ? r.pick(randoms) : tag });
      else fields.push({ kind: 'cbuf', name, n: r.int(2, 12) });
    }
    add({ tag, union: false, typedefs: typedefChain(tag), fields });
    randoms.push(tag);
  }

  // The root: every kind of field at least once.
  const rootFields: Field[] = [];
  let fn = 0;
  type Unnamed = Field extends infer F ? (F extends Field ? Omit<F, 'name'> & { name?: string } : never) : never;
  const rf = (f: Unnamed) => rootFields.push({ ...f, name: f.name ?? `r${fn++}` } as Field);
  for (const ty of INT_TYPES) if (r.chance(0.7)) rf({ kind: 'int', ty });
  for (let i = 0, n = r.int(1, 3); i < n; i++) {
    const ty = r.pick(INT_TYPES.filter((t) => t.bytes >= 2));
    rf({ kind: 'int', ty, bits: r.int(1, ty.bytes * 8 - 1) });
  }
  rf({ kind: 'int', name: 'color', ty: { bytes: 4, signed: true }, enumName: 'fz_color' });
  rf({ kind: 'int', name: 'mode', ty: { bytes: 4, signed: false }, enumName: 'fz_mode' });
  for (let i = 0; i < 3; i++) rf({ kind: 'int', name: `idx${i}`, ty: r.pick(INT_TYPES.filter((t) => t.bytes <= 4)) });
  for (let i = 0, n = r.int(1, 3); i < n; i++) rf({ kind: 'arr', ty: int(), n: r.pick([2, 4, 8]) });
  for (const s of randoms) if (r.chance(0.7)) rf({ kind: 'sub', struct: s, dotted: r.chance(0.5) });
  rf({ kind: 'sub', name: 'un', struct: UNION, dotted: false });
  for (const s of randoms) if (r.chance(0.7)) rf({ kind: 'ptr', to: s });
  rf({ kind: 'ptrarr', name: 'parr', to: r.pick(randoms), n: r.int(1, 4) });
  rf({ kind: 'ptr', name: 'head', to: LNODE });
  rf({ kind: 'ptr', name: 'tree', to: TNODE });
  rf({ kind: 'sub', name: 'dhead', struct: LINK, dotted: false });
  rf({ kind: 'sub', name: 's', struct: STR, dotted: false });
  rf({ kind: 'cbuf', name: 'name', n: r.int(2, 16) });
  rf({ kind: 'cptr', name: 'cp' });
  rf({ kind: 'ptr', name: 'fx', to: FLEX });
  // Shuffle, so that offsets and padding differ from program to program.
  for (let i = rootFields.length - 1; i > 0; i--) {
    const j = r.int(0, i);
    [rootFields[i], rootFields[j]] = [rootFields[j], rootFields[i]];
  }
  add({ tag: ROOT, union: false, typedefs: [`fz_root_a`, `fz_root_t`], fields: rootFields });
  structs.get(ROOT)!.schemaName = 'fz_root_t';
  const p: Program = { seed, structs, objects, globals: [], enums, root: 'fz_root' };

  const text = (): Buffer => {
    const alphabet = ['a', 'b', 'z', ' ', '\\', '"', '\n', '\xc3', '\xa9', '\x7f', '~'];
    return Buffer.from(Array.from({ length: r.int(0, 14) }, () => (r.chance(0.7) ? String.fromCharCode(r.int(0x61, 0x7a)) : r.pick(alphabet))).join(''), 'latin1');
  };
  const randomObjs = new Map<string, Obj[]>();
  const pointAt = (to: string): Ref | null => {
    const os = randomObjs.get(to) ?? [];
    return os.length && r.chance(0.8) ? { obj: r.pick(os).name } : null;
  };
  // Values of a struct's fields; pointers to random structs are filled once every object exists.
  const fill = (s: Struct): Vals => {
    const v: Vals = {};
    for (const f of s.fields) {
      if (f.kind === 'int') v[f.name] = f.enumName ? r.pick(enums.find((e) => e.name === f.enumName)!.values)[1] : valueOf(r, f.ty, f.bits);
      else if (f.kind === 'arr') v[f.name] = Array.from({ length: f.n }, () => valueOf(r, f.ty));
      else if (f.kind === 'sub') v[f.name] = f.struct === UNION ? { a: r.u64() } : fill(structOf(p, f.struct));
      else if (f.kind === 'cbuf') {
        const t = text();
        v[f.name] = t.subarray(0, f.n);
      } else if (f.kind === 'cptr') v[f.name] = r.chance(0.85) ? text() : null;
      else if (f.kind === 'ptr') v[f.name] = null;
      else if (f.kind === 'ptrarr') v[f.name] = Array.from({ length: f.n }, () => null);
    }
    return v;
  };
  for (const s of randoms) randomObjs.set(s, Array.from({ length: r.int(1, 3) }, () => newObj(s, fill(structOf(p, s)))));
  const linkPointers = (o: Obj, s: Struct) => {
    for (const f of s.fields) {
      if (f.kind === 'ptr' && randomObjs.has(f.to)) o.vals[f.name] = pointAt(f.to);
      if (f.kind === 'ptrarr') o.vals[f.name] = Array.from({ length: f.n }, () => pointAt(f.to));
    }
  };
  for (const os of randomObjs.values()) for (const o of os) linkPointers(o, structOf(p, o.struct));

  const root = newObj(ROOT, fill(structOf(p, ROOT)), { name: 'fz_root', isStatic: false });
  objN--;
  linkPointers(root, structOf(p, ROOT));
  // Indexes: mostly in range of the arrays they will index, sometimes just past them.
  for (let i = 0; i < 3; i++) root.vals[`idx${i}`] = BigInt(r.chance(0.1) ? r.pick([4, 8, 9]) : r.int(0, 3));
  // A list of 0 to 5 nodes.
  let next: Ref | null = null;
  for (let i = r.int(0, 5); i > 0; i--) next = { obj: newObj(LNODE, { ...fill(structOf(p, LNODE)), next }).name };
  root.vals.head = next;
  // A binary tree of 0 to 7 nodes, of random shape.
  const tree = (n: number): Ref | null => {
    if (n === 0) return null;
    const left = r.int(0, n - 1);
    const l = tree(left);
    const o = newObj(TNODE, { ...fill(structOf(p, TNODE)), left: l, right: null });
    o.vals.right = tree(n - 1 - left);
    return { obj: o.name };
  };
  root.vals.tree = tree(r.int(0, 7));
  // A circular intrusive list whose head is the root's dhead.
  const items = Array.from({ length: r.int(0, 4) }, () => newObj(ITEM, fill(structOf(p, ITEM))));
  const links: Ref[] = [{ obj: 'fz_root', member: 'dhead' }, ...items.map((o) => ({ obj: o.name, member: 'link' }))];
  const linkVals = (i: number): Vals => ({ next: links[(i + 1) % links.length], prev: links[(i + links.length - 1) % links.length] });
  root.vals.dhead = linkVals(0);
  items.forEach((o, i) => (o.vals.link = linkVals(i + 1)));
  const fs = structOf(p, FLEX);
  const flexItems = Array.from({ length: r.int(0, 5) }, () => valueOf(r, fs.flex!));
  const fx = newObj(FLEX, { n: BigInt(flexItems.length), tag: valueOf(r, { bytes: 8, signed: true }) }, { flexItems });
  root.vals.fx = r.chance(0.9) ? { obj: fx.name } : null;
  const sText = text();
  root.vals.s = { len: BigInt(sText.length), data: sText };

  // Globals and statics of every width and signedness; arrays of one length and several element sizes.
  let gn = 0;
  for (const ty of INT_TYPES) for (let i = r.int(0, 2); i > 0; i--) p.globals.push({ name: `g_${intName(ty)}_${gn++}`, ty, value: valueOf(r, ty), isStatic: r.chance(0.5) });
  const len = r.pick([4, 8]);
  const first = int();
  for (let i = 0, n = r.int(2, 4); i < n; i++) {
    // The first two: one length, two element sizes.
    const ty = i === 0 ? first : i === 1 ? r.pick(INT_TYPES.filter((t) => t.bytes !== first.bytes)) : int();
    const n2 = i < 2 || r.chance(0.6) ? len : r.pick([2, 3, 5]);
    p.globals.push({ name: `ga_${i}`, ty, n: n2, value: Array.from({ length: n2 }, () => valueOf(r, ty)), isStatic: r.chance(0.5) });
  }
  return p;
}

const cLit = (v: bigint, t: IntType): string => {
  if (t.signed) {
    if (v === -(1n << 63n)) return '(-9223372036854775807L - 1)';
    return v < 0n ? `(${v}L)` : `${v}L`;
  }
  return `${v}UL`;
};

const cStr = (b: Buffer): string => '"' + [...b].map((c) => `\\${c.toString(8).padStart(3, '0')}`).join('') + '"';

const typeRef = (s: Struct) => `${s.union ? 'union' : 'struct'} ${s.tag}`;
/** The C name of the type the schema names: its tag, or its typedef. */
const schemaRef = (s: Struct) => (s.schemaName === s.tag ? typeRef(s) : s.schemaName);

/** The C source of a program. */
export function emitC(p: Program): string {
  const out: string[] = [`/* fuzz program, seed ${p.seed} (test/fuzz/gen-c.ts) */`, '#include <stdint.h>', '#include <stdio.h>', '#include <unistd.h>', ''];
  for (const e of p.enums) out.push(`enum ${e.name} { ${e.values.map(([n, v]) => `${n} = ${v}`).join(', ')} };`);
  // Declare every tag first, then the typedef chains, then bodies in dependency order (embedded members first).
  for (const s of p.structs.values()) out.push(`${typeRef(s)};`);
  for (const s of p.structs.values()) s.typedefs.forEach((t, i) => out.push(`typedef ${i === 0 ? typeRef(s) : s.typedefs[i - 1]} ${t};`));
  const done = new Set<string>();
  const body = (s: Struct) => {
    if (done.has(s.tag)) return;
    done.add(s.tag);
    for (const f of s.fields) if (f.kind === 'sub') body(structOf(p, f.struct));
    const lines = s.fields.map((f) => {
      const ref = (tag: string) => typeRef(structOf(p, tag));
      switch (f.kind) {
        case 'int':
          return f.enumName ? `enum ${f.enumName} ${f.name};` : `${cInt(f.ty)} ${f.name}${f.bits ? ` : ${f.bits}` : ''};`;
        case 'arr':
          return `${cInt(f.ty)} ${f.name}[${f.n}];`;
        case 'ptr':
          return `${ref(f.to)} *${f.name};`;
        case 'ptrarr':
          return `${ref(f.to)} *${f.name}[${f.n}];`;
        case 'sub':
          return `${ref(f.struct)} ${f.name};`;
        case 'cbuf':
          return `char ${f.name}[${f.n}];`;
        case 'cptr':
          return `char *${f.name};`;
      }
    });
    if (s.flex) lines.push(`${cInt(s.flex)} items[];`);
    out.push(`${typeRef(s)} {`, ...lines.map((l) => `  ${l}`), '};');
  };
  for (const s of p.structs.values()) body(s);
  out.push('');
  const attr = '__attribute__((used))';
  // Every typedef used once (an unused one has no DWARF), objects declared with the schema's name of their type.
  for (const st of p.structs.values()) for (const t of [st.tag, ...st.typedefs]) out.push(`static ${attr} ${t === st.tag ? typeRef(st) : t} *fz_use_${t};`);
  for (const o of p.objects) out.push(`${o.isStatic ? 'static ' : ''}${schemaRef(structOf(p, o.struct))} ${o.name};`);
  let strN = 0;
  const strings: string[] = [];
  const ref = (x: Ref | null) => (x ? `&${x.obj}${x.member ? `.${x.member}` : ''}` : '0');
  const init = (s: Struct, v: Vals): string => {
    if (s.union) return `{ .a = ${v.a}UL }`;
    const parts = s.fields.map((f) => {
      const x = v[f.name];
      switch (f.kind) {
        case 'int':
          return `.${f.name} = ${cLit(x as bigint, f.ty)}`;
        case 'arr':
          return `.${f.name} = { ${(x as bigint[]).map((e) => cLit(e, f.ty)).join(', ')} }`;
        case 'ptr':
          return `.${f.name} = ${ref(x as Ref | null)}`;
        case 'ptrarr':
          return `.${f.name} = { ${(x as (Ref | null)[]).map(ref).join(', ')} }`;
        case 'sub':
          return `.${f.name} = ${init(structOf(p, f.struct), x as Vals)}`;
        case 'cbuf':
          return `.${f.name} = ${cStr(x as Buffer)}`;
        case 'cptr': {
          if (x === null) return `.${f.name} = 0`;
          const name = `fz_text${strN++}`;
          strings.push(`static char ${name}[] = ${cStr(x as Buffer)};`);
          return `.${f.name} = ${name}`;
        }
      }
    });
    return `{ ${parts.join(', ')} }`;
  };
  const defs = p.objects.map((o) => {
    let i = init(structOf(p, o.struct), o.vals);
    if (o.flexItems) i = i.replace(/ }$/, `, .items = { ${o.flexItems.map((e) => cLit(e, structOf(p, FLEX).flex!)).join(', ')} } }`);
    return `${o.isStatic ? 'static ' : ''}${attr} ${schemaRef(structOf(p, o.struct))} ${o.name} = ${i};`;
  });
  out.push(...strings, ...defs);
  for (const g of p.globals) {
    const v = Array.isArray(g.value) ? `{ ${g.value.map((e) => cLit(e, g.ty)).join(', ')} }` : cLit(g.value, g.ty);
    out.push(`${g.isStatic ? 'static ' : ''}${attr} ${cInt(g.ty)} ${g.name}${g.n ? `[${g.n}]` : ''} = ${v};`);
  }
  out.push('', 'int main(void) {', '  printf("ready %d\\n", (int) getpid());', '  fflush(stdout);', '  for (;;) pause();', '}', '');
  return out.join('\n');
}
