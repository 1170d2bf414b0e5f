/**
 * Loads a pack's schema.yaml and validates it into the IR. This is the one
 * gate from YAML to the back ends: every error names file:line:col.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { packDirs, trustedInPacks, xwalkVersion } from '../core/packs.ts';
import { readRegularFile } from '../core/regular-file.ts';
import { isMap, isScalar, isSeq, LineCounter, parseDocument, type Node, type Pair, type Scalar, type YAMLMap } from 'yaml';
import { ExprChecker } from './check-expr.ts';
import { ExprError, typeName, type WalkElsewhere } from './typed-expr.ts';
import { walkCost } from './lower/inline.ts';
import { isBuiltin } from './builtins.ts';
import { ExprSyntaxError, parseExpr, type Expr } from './expr-parse.ts';
import { FIELD_PATH, IDENT, isScalarName, isTypeKeyword, parseFieldType, pointeeByName } from './field-type.ts';
import { commandName, DEBUGGER_COMMANDS } from './debugger-commands.ts';
import type { KernelRefusals } from './kernel-refusals.ts';
import { compilePattern, PatternError } from '../core/pattern.ts';
import { CLOCK_NAMES, NATIVE_STACK_COLUMNS, readsClock, SchemaError, type BinaryPattern, type CheckIR, type ClockIR, type EnumIR, type PrinterIR, type ColumnIR, type GlobalIR, type PackIR, type Pos, type ProbeIR, type RootIR, type StructIR, type TExpr, type ViewIR, type WalkDefIR, WEIGHS, type Weighs } from './ir.ts';

/** The schema language version: every schema starts with `xwalk: 1`. */
export const SCHEMA_VERSION = 1;

/** What `xsample --version` and `xgen --version` print: the package's version and the schema language's. */
export const versionLine = (program: string): string => `${program} ${xwalkVersion()} (schema language ${SCHEMA_VERSION})`;

class Source {
  readonly lines = new LineCounter();
  constructor(
    readonly file: string,
    readonly text: string,
  ) {}

  pos(offset: number): Pos {
    const { line, col } = this.lines.linePos(offset);
    return { file: this.file, line, col };
  }

  at(node: Node | null | undefined): Pos {
    return this.pos(node?.range?.[0] ?? 0);
  }

  fail(node: Node | null | undefined, detail: string): never {
    throw new SchemaError(this.at(node), detail);
  }
}

export function loadSchema(file: string, kernel: KernelRefusals): PackIR {
  let text: string;
  try {
    text = readRegularFile(file);
  } catch (err) {
    throw new SchemaError({ file, line: 1, col: 1 }, `cannot read the schema: ${(err as Error).message}`);
  }
  return parseSchema(text, file, kernel);
}

/**
 * Only what identifies a pack's binary (binary.version and binary.signature),
 * without validating the rest: how xsample finds the one pack it needs
 * before it loads it whole, so that a broken or huge schema of another
 * pack costs next to nothing.
 */
export function loadBinarySection(file: string): Pick<PackIR, 'versionPattern' | 'signaturePattern'> {
  let text: string;
  try {
    text = readRegularFile(file);
  } catch (err) {
    throw new SchemaError({ file, line: 1, col: 1 }, `cannot read the schema: ${(err as Error).message}`);
  }
  const src: Source = new Source(file, text);
  if (text.length > MAX_SCHEMA) throw new SchemaError({ file, line: 1, col: 1 }, `a schema of ${Buffer.byteLength(text)} bytes is more than xgen reads (${MAX_SCHEMA / 1024 / 1024} MiB)`);
  const doc = parseDocument(text, { lineCounter: src.lines, uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) throw yamlError(src, doc.errors[0]);
  const root = doc.contents;
  const binary = isMap(root) ? root.items.find((i) => isScalar(i.key) && i.key.value === 'binary') : undefined;
  if (!binary) return { versionPattern: null, signaturePattern: null };
  const b = binarySection(src, binary as Pair);
  return { versionPattern: b.version, signaturePattern: b.signature };
}

export function parseSchema(text: string, file: string, kernel: KernelRefusals): PackIR {
  const src: Source = new Source(file, text);
  if (text.length > MAX_SCHEMA) throw new SchemaError({ file, line: 1, col: 1 }, `a schema of ${Buffer.byteLength(text)} bytes is more than xgen reads (${MAX_SCHEMA / 1024 / 1024} MiB)`);
  const { root, top } = topLevel(src, 'a schema', 'a schema is a YAML mapping with pack:, types:, views: ...', ['xwalk', 'pack', 'doc', 'imports', 'binary', 'objects', 'clock', 'types', 'enums', 'globals', 'walks', 'views', 'flamegraphs', 'probes', 'printers'], 'the schema');
  const name = identifier(src, top.get('pack'), root, 'pack');
  const pack: PackIR = {
    name,
    doc: optString(src, top.get('doc')),
    file,
    schemaHash: crypto.createHash('sha256').update(text).digest('hex'),
    imports: [],
    versionPattern: null,
    signaturePattern: null,
    processes: null,
    clock: null,
    objects: new Map(),
    structs: new Map(),
    globals: new Map(),
    enums: new Map(),
    walks: new Map(),
    views: new Map(),
    flamegraphs: new Map(),
    probes: new Map(),
    printers: [],
  };
  if (top.get('binary')) {
    const b = binarySection(src, top.get('binary')!);
    pack.versionPattern = b.version;
    pack.signaturePattern = b.signature;
    pack.processes = b.processes;
  }
  readObjects(src, top.get('objects'), pack);
  readTypes(src, top.get('types'), root, pack);
  readEnums(src, top.get('enums'), pack);
  readGlobals(src, top.get('globals'), pack);
  const walkNodes = readWalks(src, top.get('walks'), pack);
  const leftOut = new Map<string, WalkElsewhere>();
  for (const lib of readImports(src, top.get('imports'))) {
    pack.imports.push({ name: lib.name, file: lib.src.file, sha256: crypto.createHash('sha256').update(lib.src.text).digest('hex') });
    for (const [n, w] of readWalks(lib.src, lib.walks, pack, { optional: { file: lib.name, leftOut } })) {
      if (walkNodes.has(n)) walkNodes.get(n)!.src.fail(walkNodes.get(n)!.key, `walk ${n} is also defined in ${lib.src.file}, which this schema imports`);
      walkNodes.set(n, w);
    }
  }
  const ctx = checkContext(pack, walksElsewhere(file, leftOut));
  // Check each walk on its own once, so an error in it is reported where it is written; keep the result for calls.
  // A walk with parameters is checked where it is called, with what each call gives for them.
  for (const [n, w] of walkNodes) {
    const def = pack.walks.get(n)!;
    if (def.checked || def.params.length) continue;
    const body = checkExpr(w.src, new ExprChecker(ctx), w.node, def.ast, selfOf(def.of));
    def.checked ??= { body, ...walkCost(body) };
  }
  pack.clock = readClock(src, top.get('clock'), ctx);
  readViews(src, top.get('views'), root, pack, ctx, kernel);
  readFlamegraphs(src, top.get('flamegraphs'), pack);
  readProbes(src, top.get('probes'), pack, ctx, kernel);
  pack.printers = readPrinters(src, top.get('printers'), pack, ctx);
  return pack;
}

// ---- sections ----

function binarySection(src: Source, pair: Pair): { version: BinaryPattern | null; signature: BinaryPattern | null; processes: PackIR['processes'] } {
  const m = pair.value as Node;
  if (!isMap(m)) src.fail(m, "binary: is a mapping, e.g. version: 'nginx/(\\d+\\.\\d+\\.\\d+)'");
  const e = entries(src, m, ['version', 'signature', 'master', 'worker'], 'binary');
  const master = plainPattern(src, e.get('master'), 'binary.master');
  const worker = plainPattern(src, e.get('worker'), 'binary.worker');
  if (worker !== null && master === null) src.fail(e.get('worker')!.key as Node, "binary.worker goes with binary.master: a worker is a master's child");
  return {
    version: capturePattern(src, e.get('version'), 'binary.version', 'the release, e.g. (\\d+\\.\\d+\\.\\d+)'),
    signature: capturePattern(src, e.get('signature'), 'binary.signature', 'the build signature'),
    processes: master === null ? null : { master, worker },
  };
}

/** A regular expression matched against a process's title (/proc/PID/cmdline). */
function plainPattern(src: Source, pair: Pair | undefined, what: string): string | null {
  if (!pair) return null;
  const v = pair.value as Node;
  const pattern = string(src, v, what);
  try {
    new RegExp(pattern);
  } catch (err) {
    src.fail(v, `${what} is not a valid regular expression: ${(err as Error).message}`);
  }
  return pattern;
}

/** clock: what now_ms() and monotonic_ms() read on a core: expressions of globals, and a doc that says what they are. */
function readClock(src: Source, pair: Pair | undefined, ctx: Ctx): ClockIR | null {
  if (!pair) return null;
  const m = pair.value as Node;
  if (!isMap(m)) src.fail(m, "clock: maps now_ms and monotonic_ms to expressions of globals that give the program's own time on a core");
  const e = entries(src, m, ['doc', ...CLOCK_NAMES], 'clock');
  const checker = new ExprChecker(ctx, 1);
  const clock: ClockIR = { doc: optString(src, e.get('doc')), exprs: {}, slots: 1, pos: src.at(pair.key as Node) };
  for (const name of CLOCK_NAMES) {
    const p = e.get(name);
    if (!p) continue;
    const expr = checkExpr(src, checker, p.value as Node, parse(src, p.value as Node), null);
    if (expr.type.k !== 'int') src.fail(p.value as Node, `clock ${name} must be a number of milliseconds, but this is ${typeName(expr.type)}`);
    if (readsClock(expr)) src.fail(p.value as Node, `clock ${name} is what ${name}() reads on a core: it cannot read the clock itself`);
    clock.exprs[name] = expr;
  }
  if (Object.keys(clock.exprs).length === 0) src.fail(m, 'clock: needs now_ms:, monotonic_ms: or both');
  if (!clock.doc) src.fail(m, "clock: needs doc: what the program's time is (the output says it on a core)");
  clock.slots = checker.maxSlots;
  return clock;
}

/** A pattern (the subset pattern.ts runs in linear time) with exactly one capture group, found in the binary's .rodata. */
function capturePattern(src: Source, pair: Pair | undefined, what: string, capture: string): BinaryPattern | null {
  if (!pair) return null;
  const v = pair.value as Node;
  const text = string(src, v, what);
  try {
    return { text, program: compilePattern(text) };
  } catch (err) {
    if (!(err instanceof PatternError)) throw err;
    const quoted = isScalar(v) && (v.type === 'QUOTE_SINGLE' || v.type === 'QUOTE_DOUBLE') ? 1 : 0;
    const hint = /capture group: the text/.test(err.message) ? ` (${capture})` : '';
    throw new SchemaError(src.pos((v.range?.[0] ?? 0) + quoted + err.at), `${what}: ${err.message}${hint}`);
  }
}

function readTypes(src: Source, pair: Pair | undefined, root: Node, pack: PackIR): void {
  if (!pair) src.fail(root, 'the schema has no types: section');
  const types = [...namedEntries(src, pair, 'types: maps C type names to their fields', 'a type name')];
  // Declare every name first, so fields may point to types declared later.
  for (const { key, name: n } of types) {
    if (isTypeKeyword(n)) src.fail(key, `'${n}' is a built-in type name (int, uint, fnptr, ptr and the scalars u8 ... i64, char, u_char, void); a struct needs another name`);
    pack.structs.set(n, { name: n, doc: '', fields: new Map(), pos: src.at(key) });
  }
  for (const { item, name } of types) {
    const st = pack.structs.get(name)!;
    const body = item.value as Node;
    if (!isMap(body)) src.fail(body ?? (item.key as Node), `type ${st.name}: expected doc: and fields:`);
    const e = entries(src, body, ['doc', 'object', 'fields'], `type ${st.name}`);
    st.doc = optString(src, e.get('doc'));
    const object = objectOf(src, e.get('object'), pack, `type ${st.name}`);
    if (object) st.object = object;
    const fields = e.get('fields')?.value as Node | undefined;
    if (!fields || !isMap(fields)) src.fail(fields ?? body, `type ${st.name} needs fields: (C member name: type)`);
    for (const f of fields.items) readField(src, f, st, pack);
  }
}

function readField(src: Source, f: Pair, st: StructIR, pack: PackIR): void {
  const key = f.key as Node;
  const path = String(scalarValue(key));
  if (!FIELD_PATH.test(path)) src.fail(key, `'${path}' is not a C member name (dotted for nested members, e.g. d.last)`);
  const decl = string(src, f.value as Node, `the type of ${st.name}.${path}`);
  const type = parseFieldType(decl);
  if (typeof type === 'string') src.fail(f.value as Node, type);
  const named = type.k === 'struct' ? type.name : type.k === 'ptr' ? innermost(type.to) : type.k === 'array' ? innermost(type.elem) : null;
  if (named && !pack.structs.has(named)) src.fail(f.value as Node, `unknown type '${named}' (declare it under types:, or use ptr void)`);
  for (const other of st.fields.keys()) {
    if (other.startsWith(path + '.') || path.startsWith(other + '.')) src.fail(key, `${st.name}.${path} overlaps ${st.name}.${other}: declare leaf members only`);
  }
  st.fields.set(path, { name: path, type, pos: src.at(key) });
}

function innermost(p: import('./ir.ts').Pointee): string | null {
  if (p.k === 'ptr') return innermost(p.to);
  return p.k === 'struct' ? p.name : null;
}

/** enums: NAME: {doc:, object:} (or NAME: {}): enums whose enumerators each build's layout carries, for enum_name(). */
function readEnums(src: Source, pair: Pair | undefined, pack: PackIR): void {
  if (!pair) return;
  for (const { item, key, name: n } of namedEntries(src, pair, 'enums: maps C enum names (a typedef or an enum tag) to {doc:} or {}, e.g. ngx_http_state_e: {}', 'an enum name')) {
    if (pack.structs.has(n)) src.fail(key, `enum ${n} has the name of a type of types:`);
    const body = item.value as Node | null;
    const e = body === null || (isScalar(body) && body.value === null) ? new Map<string, Pair>() : isMap(body) ? entries(src, body, ['doc', 'object'], `enum ${n}`) : src.fail(body, `enum ${n}: expected {} or {doc:, object:}`);
    const object = objectOf(src, e.get('object'), pack, `enum ${n}`);
    pack.enums.set(n, { name: n, doc: optString(src, e.get('doc')), ...(object ? { object } : {}), pos: src.at(key) } satisfies EnumIR);
  }
}

function readGlobals(src: Source, pair: Pair | undefined, pack: PackIR): void {
  if (!pair) return;
  for (const { item, key, name: n } of namedEntries(src, pair, 'globals: maps global variable names to their types', 'a global name')) {
    if (n === 'self' || n === 'it' || n === 'NULL') src.fail(key, `a global cannot be named '${n}': expressions read that name as their own`);
    // name: TYPE, or name: {type: TYPE, object: NAME} for a global another object defines; optional: WHY for one a build may lack
    const body = item.value as Node;
    const e = isMap(body) ? entries(src, body, ['type', 'object', 'optional'], `global ${n}`) : null;
    const typeNode = e ? (e.get('type')?.value as Node | undefined) : body;
    if (e && !typeNode) src.fail(body, `global ${n} needs type:`);
    const type = parseFieldType(string(src, typeNode!, `the type of global ${n}`));
    if (typeof type === 'string') src.fail(typeNode!, type);
    const object = e ? objectOf(src, e.get('object'), pack, `global ${n}`) : null;
    const named = type.k === 'struct' ? type.name : type.k === 'ptr' ? innermost(type.to) : type.k === 'array' ? innermost(type.elem) : null;
    if (named && !pack.structs.has(named)) src.fail(item.value as Node, `unknown type '${named}'`);
    const optional = e?.get('optional') ? string(src, e.get('optional')!.value as Node, `optional: of global ${n} (when a build lacks it)`) : null;
    pack.globals.set(n, { name: n, type, ...(object ? { object } : {}), ...(optional ? { optional } : {}), pos: src.at(key) } satisfies GlobalIR);
  }
}

/** A file's name as a process maps it: no folder, nothing a pattern would read specially. */
const OBJECT_FILE = /^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,127}$/;

/** objects: the shared objects with layouts of their own, by name: each with the file it is mapped from. */
function readObjects(src: Source, pair: Pair | undefined, pack: PackIR): void {
  if (!pair) return;
  for (const { item, key, name: n } of namedEntries(src, pair, 'objects: maps names to the shared objects the program maps, e.g. luajit: {file: libluajit-5.1.so.2}', 'an object name')) {
    const body = item.value as Node;
    if (!isMap(body)) src.fail(body ?? key, `object ${n}: expected file: (the name it is mapped by) and doc:`);
    const e = entries(src, body, ['doc', 'file'], `object ${n}`);
    const fileNode = e.get('file')?.value as Node | undefined;
    if (!fileNode) src.fail(body, `object ${n} needs file: (the name it is mapped by, e.g. libluajit-5.1.so.2)`);
    const file = string(src, fileNode, `object ${n}'s file`);
    if (!OBJECT_FILE.test(file)) src.fail(fileNode, `object ${n}'s file is a file name without a folder (letters, digits and . _ + -), not '${file}'`);
    pack.objects.set(n, { name: n, doc: optString(src, e.get('doc')), file, pos: src.at(key) });
  }
}

/** object: NAME on a type or a global: one of the schema's objects. */
function objectOf(src: Source, pair: Pair | undefined, pack: PackIR, what: string): string | null {
  if (!pair) return null;
  const n = string(src, pair.value as Node, `${what}'s object`);
  if (!pack.objects.has(n)) src.fail(pair.value as Node, `${what}: unknown object '${n}' (${pack.objects.size ? `objects: ${[...pack.objects.keys()].join(', ')}` : 'the schema has no objects: section'})`);
  return n;
}

/** What expressions of this pack may refer to. */
export function checkContext(pack: PackIR, walkElsewhere?: Ctx['walkElsewhere']): Ctx {
  const checking = new Set<string>();
  const ctx: Ctx = {
    structs: pack.structs,
    globals: pack.globals,
    enums: pack.enums,
    walkElsewhere,
    walkDef: (n: string) => {
      const def = pack.walks.get(n);
      if (!def) return undefined;
      const checked = () => {
        if (def.checked) return def.checked;
        // A walk that reaches itself is reported by the checker of the call (its walk stack).
        if (checking.has(n)) return { body: { op: 'num', value: 0, type: { k: 'int', signed: false } } as TExpr, size: 0, selfUses: 0 };
        checking.add(n);
        try {
          const body = new ExprChecker(ctx).check(def.ast, selfOf(def.of));
          def.checked = { body, ...walkCost(body) };
          return def.checked;
        } finally {
          checking.delete(n);
        }
      };
      return { def, ast: def.ast, checked };
    },
  };
  return ctx;
}

/**
 * Checks an expression given outside the schema (xsample --addr) as a
 * pointer to `struct`; a bare number is taken as its address.
 */
export function checkPointerExpr(pack: PackIR, struct: string, text: string): TExpr {
  let ast: Expr;
  try {
    ast = parseExpr(text);
  } catch (err) {
    if (err instanceof ExprSyntaxError) throw new SchemaError({ file: '--addr', line: 1, col: err.at + 1 }, err.message);
    throw err;
  }
  const checker = new ExprChecker(checkContext(pack), 1);
  try {
    const e = checker.check(ast, null);
    const to = { k: 'struct', name: struct } as const;
    if (e.type.k === 'int' || (e.type.k === 'ptr' && e.type.to.k === 'void')) return { op: 'cast', arg: e, type: { k: 'ptr', to } };
    checker.expectStruct(e, struct, 0, `--addr`);
    return e;
  } catch (err) {
    if (err instanceof ExprError) throw new SchemaError({ file: '--addr', line: 1, col: err.at + 1 }, err.message);
    throw err;
  }
}

interface WalkSource {
  src: Source;
  key: Node;
  node: Node;
}

/**
 * The walks of a walks: section, into pack.walks. optional: the section is
 * a library's (imports:), and a walk about a type this schema does not
 * declare is left out rather than refused.
 */
function readWalks(src: Source, pair: Pair | undefined, pack: PackIR, o: { optional?: { file: string; leftOut: Map<string, WalkElsewhere> } } = {}): Map<string, WalkSource> {
  const asts = new Map<string, WalkSource>();
  if (!pair) return asts;
  for (const { item, key, name: n } of namedEntries(src, pair, 'walks: maps walk names to { of:, yields: }', 'a walk name')) {
    if (pack.globals.has(n)) src.fail(key, `walk ${n} has the name of a global`);
    if (isBuiltin(n)) src.fail(key, `walk ${n} has the name of a builtin function, which calls would reach instead`);
    const body = item.value as Node;
    if (!isMap(body)) src.fail(body ?? key, `walk ${n}: expected of: and yields:`);
    const e = entries(src, body, ['doc', 'of', 'params', 'yields'], `walk ${n}`);
    const ofName = e.get('of') ? String(scalarValue(e.get('of')!.value as Node)) : '';
    if (o.optional && e.get('of') && !isScalarName(ofName) && !pack.structs.has(ofName)) {
      o.optional.leftOut.set(n, { file: o.optional.file, of: ofName, imported: true });
      continue;
    }
    const of = walkOfRef(src, e.get('of'), body, pack, `walk ${n}`);
    const params = walkParams(src, e.get('params'), n, pack);
    const y = e.get('yields');
    if (!y) src.fail(body, `walk ${n} needs yields: (an expression of self)`);
    asts.set(n, { src, key, node: y.value as Node });
    const ast = parse(src, y.value as Node);
    pack.walks.set(n, { name: n, doc: optString(src, e.get('doc')), of, params, ast, text: exprText(y.value as Scalar), pos: src.at(key) } satisfies WalkDefIR);
  }
  return asts;
}

/** params: [T, link]: the names a walk's body uses for the types and fields each call gives. */
function walkParams(src: Source, pair: Pair | undefined, walk: string, pack: PackIR): string[] {
  if (!pair) return [];
  const s = pair.value as Node;
  if (!isSeq(s)) src.fail(s, `walk ${walk}: params: is a list of names, e.g. [T, link]`);
  const out: string[] = [];
  for (const item of s.items as Node[]) {
    const v = scalarValue(item);
    if (typeof v !== 'string' || !IDENT.test(v)) src.fail(item, `walk ${walk}: a parameter is a C identifier, not ${JSON.stringify(v ?? null)}`);
    if (v === 'self' || v === 'it' || isBuiltin(v) || pack.globals.has(v)) src.fail(item, `walk ${walk}: the parameter ${v} has the name of ${v === 'self' || v === 'it' ? 'what the body binds' : isBuiltin(v) ? 'a builtin' : 'a global'}`);
    if (out.includes(v)) src.fail(item, `walk ${walk}: the parameter ${v} is listed twice`);
    out.push(v);
  }
  return out;
}

/** Largest file of walks imports: reads. */
const MAX_IMPORT = 1024 * 1024;

/**
 * A schema's or a file of walks' YAML: parsed, its keys unique, a mapping of
 * the keys allowed, starting with xwalk: and the language version.
 */
function topLevel(src: Source, kind: string, notAMap: string, allowed: string[], what: string): { root: YAMLMap; top: Map<string, Pair> } {
  // The yaml package's own duplicate-key check costs time quadratic in a map's size: ours is linear.
  const doc = parseDocument(src.text, { lineCounter: src.lines, uniqueKeys: false, prettyErrors: false });
  if (doc.errors.length > 0) throw yamlError(src, doc.errors[0]);
  checkUniqueKeys(src, doc.contents);
  const root = doc.contents;
  if (!isMap(root)) src.fail(root, notAMap);
  const top = entries(src, root, allowed, what);
  const version = top.get('xwalk');
  if (!version || scalarValue(version.value as Node) !== SCHEMA_VERSION) src.fail((version?.value as Node) ?? root, `${kind} starts with 'xwalk: ${SCHEMA_VERSION}' (the schema language version)`);
  return { root, top };
}

/**
 * Where a walk the schema cannot call is defined: a walk an import left out
 * (its type is not declared), else one of a file of walks in a folder of
 * packs (looked for only when a call fails, once).
 */
function walksElsewhere(schemaFile: string, leftOut: Map<string, WalkElsewhere>): (name: string) => WalkElsewhere | undefined {
  let known: Map<string, WalkElsewhere> | null = null;
  return (name) => {
    if (leftOut.has(name)) return leftOut.get(name);
    known ??= knownWalkFiles(schemaFile);
    return known.get(name);
  };
}

/** The walks of every file of walks (PACK/FILE.yaml, not a schema) in the folders imports look in: name -> file and type. */
function knownWalkFiles(schemaFile: string): Map<string, WalkElsewhere> {
  const out = new Map<string, WalkElsewhere>();
  let folders: string[];
  try {
    folders = importFolders(schemaFile);
  } catch {
    return out;
  }
  for (const dir of folders) {
    let packs: string[];
    try {
      packs = fs.readdirSync(dir).sort();
    } catch {
      continue;
    }
    for (const p of packs) {
      let files: string[];
      try {
        files = fs.readdirSync(path.join(dir, p)).sort();
      } catch {
        continue;
      }
      for (const f of files) {
        const name = `${p}/${f}`;
        if (f === 'schema.yaml' || !IMPORT.test(name)) continue;
        try {
          const text = readRegularFile(path.join(dir, name));
          if (text.length > MAX_IMPORT) continue;
          const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
          const walks = doc.errors.length === 0 && isMap(doc.contents) ? doc.contents.get('walks', true) : null;
          if (!isMap(walks)) continue;
          for (const item of walks.items) {
            const n = scalarValue(item.key as Node);
            const of = isMap(item.value) ? scalarValue(item.value.get('of', true) as Node) : null;
            if (typeof n === 'string' && typeof of === 'string' && !out.has(n)) out.set(n, { file: name, of, imported: false });
          }
        } catch {
          // A file that cannot be read is not one the message can name.
        }
      }
    }
  }
  return out;
}

/** The folders an import is looked for in: the folder of packs that holds this schema's, then XWALK_PACKS and the built-in packs. */
function importFolders(schemaFile: string): string[] {
  return [...new Set([path.dirname(path.dirname(path.resolve(schemaFile))), ...packDirs()])];
}

/** An import names a file of a pack folder: PACK/FILE.yaml. */
const IMPORT = /^[A-Za-z0-9_][A-Za-z0-9_.-]*\/[A-Za-z0-9_][A-Za-z0-9_.-]*\.yaml$/;

/**
 * imports: [nginx/idioms.yaml]: files of walks (xwalk:, doc:, walks:
 * only), each PACK/FILE.yaml, found as packs are: in the folder of packs
 * that holds this schema's, then along XWALK_PACKS and the built-in packs.
 * So a schema copied elsewhere still finds nginx's. An imported file
 * imports nothing itself.
 */
function readImports(src: Source, pair: Pair | undefined): { name: string; src: Source; walks: Pair | undefined }[] {
  if (!pair) return [];
  const s = pair.value as Node;
  if (!isSeq(s)) src.fail(s, 'imports: is a list of files of walks, each PACK/FILE.yaml, e.g. [nginx/idioms.yaml]');
  const out: { name: string; src: Source; walks: Pair | undefined }[] = [];
  for (const item of s.items as Node[]) {
    const name = scalarValue(item);
    if (typeof name !== 'string' || !IMPORT.test(name) || name.includes('..')) src.fail(item, `an import names a file of walks in a pack's folder, PACK/FILE.yaml (nginx/idioms.yaml), not ${JSON.stringify(name ?? null)}`);
    const folders = importFolders(src.file);
    const file = folders.map((d) => path.join(d, name)).find((f) => fs.existsSync(f) && trustedInPacks(path.dirname(path.dirname(f)), f));
    if (!file) src.fail(item, `cannot import ${name}: no such file in ${folders.join(', ')}`);
    let text: string;
    try {
      text = readRegularFile(file);
    } catch (err) {
      src.fail(item, `cannot import ${name}: ${(err as Error).message}`);
    }
    if (text.length > MAX_IMPORT) src.fail(item, `cannot import ${name}: more than ${MAX_IMPORT / 1024 / 1024} MiB`);
    const lib: Source = new Source(file, text);
    const { top } = topLevel(lib, 'a file of walks', 'a file of walks is a YAML mapping with xwalk:, doc: and walks:', ['xwalk', 'doc', 'walks'], 'a file of walks');
    out.push({ name, src: lib, walks: top.get('walks') });
  }
  return out;
}

type Ctx = ConstructorParameters<typeof ExprChecker>[0];

function readViews(src: Source, pair: Pair | undefined, root: Node, pack: PackIR, ctx: Ctx, kernel: KernelRefusals): void {
  if (!pair) src.fail(root, 'the schema has no views: section');
  const aliases = new Set<string>();
  for (const { item, key, name: n } of namedEntries(src, pair, 'views: maps view names to { of:, roots:, columns: }', 'a view name')) {
    if (aliases.has(n)) src.fail(key, `${n} is already an alias of another view`);
    notADebuggerCommand(src, key, n);
    const body = item.value as Node;
    if (!isMap(body)) src.fail(body ?? key, `view ${n}: expected of:, roots: and columns:`);
    const e = entries(src, body, ['doc', 'aliases', 'of', 'let', 'roots', 'columns', 'checks', 'instant', 'splices', 'stack', 'weight', 'weighs', 'counters'], `view ${n}`);
    // A view is about a struct, or about function pointers (of: fnptr), such as a filter chain.
    const ofNode = e.get('of');
    const of = ofNode && scalarValue(ofNode.value as Node) === 'fnptr' ? 'fnptr' : structRef(src, ofNode, body, pack, `view ${n}`);
    const checker = new ExprChecker(ctx, 1);
    const self = selfOf(of);
    const view: ViewIR = { name: n, aliases: readAliases(src, e.get('aliases'), pack, n, aliases), doc: optString(src, e.get('doc')), of, roots: [], columns: [], checks: [], instant: [], slots: 1, clock: false, stack: null, pos: src.at(key) };
    view.roots = readRoots(src, e.get('roots'), body, view, checker);
    const lets = readLets(src, e.get('let'), view, checker, self);
    view.columns = readColumns(src, e.get('columns'), body, view, checker, self, lets);
    view.checks = readChecks(src, e.get('checks'), view, checker, self, lets);
    view.instant = readInstant(src, e.get('instant'), view, checker, self, lets, kernel);
    view.splices = readSplices(src, e.get('splices'), view);
    const counters = readCounters(src, e.get('counters'), view);
    if (counters) view.counters = counters;
    view.stack = readStack(src, e.get('stack'), e.get('weight'), e.get('weighs'), view);
    view.slots = checker.maxSlots;
    view.clock = readsClock([view.roots, view.columns, view.checks]);
    pack.views.set(n, view);
  }
}

/**
 * probes: name -> { doc:, function:, object:, arg:, keys:, values: }: a view the kernel evaluates when a
 * function is called (xsample trace). self is the first argument, a pointer to arg. A key is an integer
 * or a text read from memory (str(), cstr(), a char[N] member); a value is an integer. Whatever the
 * kernel cannot run (text built from parts, symbol names, the clock) is refused here, where it is written.
 */
function readProbes(src: Source, pair: Pair | undefined, pack: PackIR, ctx: Ctx, kernel: KernelRefusals): void {
  if (!pair) return;
  for (const { item, key, name: n } of namedEntries(src, pair, 'probes: maps a name to { function:, arg:, keys:, values: }', 'a probe name')) {
    if (pack.probes.has(n)) src.fail(key, `probe ${n} is defined twice`);
    const body = item.value as Node;
    if (!isMap(body)) src.fail(body ?? key, `probe ${n}: expected function:, arg:, keys: and values:`);
    const e = entries(src, body, ['doc', 'function', 'object', 'arg', 'keys', 'values'], `probe ${n}`);
    const fn = e.get('function');
    if (!fn) src.fail(body, `probe ${n} needs function: (the symbol of the function whose calls it counts)`);
    const fname = string(src, fn.value as Node, `probe ${n} function:`);
    if (!IDENT.test(fname)) src.fail(fn.value as Node, `probe ${n}: function: is a symbol (a C identifier), not ${JSON.stringify(fname)}`);
    const objPair = e.get('object');
    const object = objPair ? string(src, objPair.value as Node, `probe ${n} object:`) : undefined;
    if (object !== undefined && !pack.objects.has(object)) src.fail(objPair!.value as Node, `probe ${n}: unknown object '${object}' (objects: ${[...pack.objects.keys()].join(', ') || 'none'})`);
    const argPair = e.get('arg');
    if (!argPair) src.fail(body, `probe ${n} needs arg: (the type the function's first argument points at: self)`);
    const arg = string(src, argPair.value as Node, `probe ${n} arg:`);
    if (!pack.structs.has(arg)) src.fail(argPair.value as Node, `unknown type '${arg}' (declared: ${[...pack.structs.keys()].join(', ')})`);
    const checker = new ExprChecker(ctx, 1);
    const self = selfOf(arg);
    const columns = (what: 'keys' | 'values'): { cols: ColumnIR[]; nodes: Node[] } => {
      const p = e.get(what);
      if (!p) {
        if (what === 'values') return { cols: [], nodes: [] };
        src.fail(body, `probe ${n} needs keys: (name: expression of self, what the calls are counted by)`);
      }
      const cm = p.value as Node;
      if (!isMap(cm)) src.fail(cm, `probe ${n}: ${what}: maps a name to an expression of self`);
      const nodes: Node[] = [];
      const cols = cm.items.map((it) => {
        const k = it.key as Node;
        const name = identifier(src, it, k, `a name of ${what}:`);
        const node = it.value as Node;
        const expr = columnValue(checkExpr(src, checker, node, parse(src, node), self));
        const t = expr.type;
        if (what === 'values' && t.k !== 'int') src.fail(node, `probe ${n}: value ${name} must be an integer (the kernel adds it up), but it is ${typeName(t)}`);
        if (what === 'keys' && t.k === 'str' && expr.op !== 'str') src.fail(node, `probe ${n}: key ${name} is text built in user space (${expr.op}), which the kernel does not build: a text key is read from memory, str() or cstr()`);
        if (what === 'keys' && t.k !== 'int' && t.k !== 'str' && t.k !== 'ptr') src.fail(node, `probe ${n}: key ${name} must be an integer or a text read from memory, but it is ${typeName(t)}`);
        nodes.push(node);
        return { name, expr, pos: src.at(k) };
      });
      return { cols, nodes };
    };
    const keys = columns('keys');
    const values = columns('values');
    const probe: ProbeIR = { name: n, doc: optString(src, e.get('doc')), function: fname, ...(object !== undefined ? { object } : {}), arg, keys: keys.cols, values: values.cols, pos: src.at(key) };
    const why = kernel.probe(probe);
    keys.nodes.forEach((node, i) => {
      if (why.keys[i]) src.fail(node, `probe ${n}: key ${probe.keys[i].name}: the kernel cannot run this: ${why.keys[i]}`);
    });
    values.nodes.forEach((node, i) => {
      if (why.values[i]) src.fail(node, `probe ${n}: value ${probe.values[i].name}: the kernel cannot run this: ${why.values[i]}`);
    });
    pack.probes.set(n, probe);
  }
}

/** flamegraphs: name -> { doc:, views: [stack-shaped views] }: several views recorded as one flame graph. */
function readFlamegraphs(src: Source, pair: Pair | undefined, pack: PackIR): void {
  if (!pair) return;
  for (const { item, key, name: n } of namedEntries(src, pair, 'flamegraphs: maps a name to { doc:, views: [stack-shaped views] }', 'a flame graph name')) {
    if (pack.views.has(n)) src.fail(key, `flame graph ${n} has the name of a view`);
    notADebuggerCommand(src, key, n);
    const body = item.value as Node;
    if (!isMap(body)) src.fail(body ?? key, `flame graph ${n}: expected doc: and views:`);
    const e = entries(src, body, ['doc', 'views'], `flame graph ${n}`);
    const list = e.get('views')?.value as Node | undefined;
    if (!list || !isSeq(list) || list.items.length === 0) src.fail(list ?? body, `flame graph ${n}: views: lists the stack-shaped views it is made of`);
    let first: ViewIR | null = null;
    const views = (list.items as Node[]).map((node) => {
      const v = scalarValue(node);
      const view = typeof v === 'string' ? pack.views.get(v) : undefined;
      if (!view) src.fail(node, `flame graph ${n}: ${JSON.stringify(v ?? null)} is not a view (views: ${[...pack.views.keys()].join(', ')})`);
      if (!view.stack) src.fail(node, `flame graph ${n}: view ${view.name} is a table, not stack-shaped (no stack:)`);
      // One flame graph adds up one kind of weight: bytes held are averaged, samples add.
      if (first && first.stack!.weighs !== view.stack.weighs) src.fail(node, `flame graph ${n}: view ${view.name} weighs ${view.stack.weighs}, but ${first.name} weighs ${first.stack!.weighs}: the views of a flame graph weigh one kind (weighs: in a view says which)`);
      first ??= view;
      return view.name;
    });
    pack.flamegraphs.set(n, { name: n, doc: optString(src, e.get('doc')), views, pos: src.at(key) });
  }
}

/**
 * stack: [origin, col, ...] and weight: col: a view whose items are paths
 * of frames (the columns' values, outermost first) with a weight (a numeric
 * column; 1 without weight:). weighs: says what the weight is (bytes, items,
 * samples); without it, weightKind decides.
 */
function readStack(src: Source, stack: Pair | undefined, weight: Pair | undefined, weighs: Pair | undefined, view: ViewIR): ViewIR['stack'] {
  if (!stack) {
    if (weight) src.fail(weight.key as Node, `view ${view.name}: weight: goes with stack: (the frames it weighs)`);
    if (weighs) src.fail(weighs.key as Node, `view ${view.name}: weighs: goes with stack: (what its weight is)`);
    return null;
  }
  const s = stack.value as Node;
  if (!isSeq(s) || s.items.length === 0) src.fail(s, `view ${view.name}: stack: lists the columns whose values are an item's frames, outermost first, e.g. [origin, name]`);
  const column = (node: Node, what: string): string => {
    const v = scalarValue(node);
    if (typeof v !== 'string' || (v !== 'origin' && !view.columns.some((c) => c.name === v))) {
      src.fail(node, `view ${view.name}: ${what} ${JSON.stringify(v ?? null)} is not one of its columns (${['origin', ...view.columns.map((c) => c.name)].join(', ')})`);
    }
    return v;
  };
  const frames = (s.items as Node[]).map((item) => column(item, 'the frame'));
  const declared = (): Weighs | null => {
    if (!weighs) return null;
    const v = scalarValue(weighs.value as Node);
    if (typeof v !== 'string' || !(WEIGHS as readonly string[]).includes(v)) src.fail(weighs.value as Node, `view ${view.name}: weighs: is one of ${WEIGHS.join(', ')} (bytes and items held are averaged over a recording's samples, samples add up), not ${JSON.stringify(v ?? null)}`);
    return v as Weighs;
  };
  if (!weight) return { frames, weight: null, leaves: null, weighs: declared() ?? weightKind([]) };
  const numberColumn = (node: Node): string => {
    const w = column(node, 'the weight');
    const type = view.columns.find((c) => c.name === w)?.expr.type;
    if (type?.k !== 'int') src.fail(node, `view ${view.name}: the weight must be a number column, but ${w} is ${type ? typeName(type) : 'the root label'}`);
    return w;
  };
  const w = weight.value as Node;
  // weight: [a, b]: one path per column, each ending in its name (the blocks and the large allocations of a pool).
  if (isSeq(w)) {
    if (w.items.length === 0) src.fail(w, `view ${view.name}: weight: [] names no column`);
    const leaves = (w.items as Node[]).map(numberColumn);
    return { frames, weight: null, leaves, weighs: declared() ?? weightKind(leaves) };
  }
  const one = numberColumn(w);
  return { frames, weight: one, leaves: null, weighs: declared() ?? weightKind([one]) };
}

/** A column whose name says it counts bytes (bytes, large_bytes, used_bytes). */
const IN_BYTES = /(^|_)bytes$/;

/**
 * What a weight is when weighs: does not say: bytes held when every weight column's name says bytes
 * (bytes, blocks_bytes); otherwise samples, which add up (an item without a weight weighs 1 in each
 * sample; a weight such as lua_stacks' running is 1 in a sample that caught it running).
 */
export const weightKind = (columns: string[]): Weighs => (columns.length > 0 && columns.every((c) => IN_BYTES.test(c)) ? 'bytes' : 'samples');

/** aliases: every alias taken so far (a Set, so that checking a name costs the same however many views come before). */
function readAliases(src: Source, pair: Pair | undefined, pack: PackIR, view: string, aliases: Set<string>): string[] {
  if (!pair) return [];
  const s = pair.value as Node;
  if (!isSeq(s)) src.fail(s, `view ${view}: aliases: is a list of other names for its command`);
  return s.items.map((item) => {
    const node = item as Node;
    const v = scalarValue(node);
    if (typeof v !== 'string' || !IDENT.test(v)) src.fail(node, `an alias must be a C identifier, not ${JSON.stringify(v ?? null)}`);
    if (v === view || pack.views.has(v) || aliases.has(v)) src.fail(node, `${v} already names a view or an alias`);
    notADebuggerCommand(src, node, v);
    aliases.add(v);
    return v;
  });
}

function readRoots(src: Source, pair: Pair | undefined, body: Node, view: ViewIR, checker: ExprChecker): RootIR[] {
  if (!pair) return [];
  return Array.from(namedEntries(src, pair, `view ${view.name}: roots: maps a label to an expression that yields ${view.of} pointers`, 'a root label'), ({ item, key, name: label }) => {
    const expr = checkExpr(src, checker, item.value as Node, parse(src, item.value as Node), null);
    const elem = expr.type.k === 'seq' ? expr.type.elem : expr.type;
    const points = elem.k === 'ref' ? elem.name : elem.k === 'ptr' && elem.to.k === 'struct' ? elem.to.name : elem.k === 'fnptr' ? 'fnptr' : null;
    if (points !== view.of) src.fail(item.value as Node, `root ${label} of view ${view.name} must yield ${view.of === 'fnptr' ? 'function pointers' : `${view.of} pointers`}, but it yields ${typeName(elem)}`);
    return { label, expr, pos: src.at(key) };
  });
}

/**
 * let: names values of self that the view's columns and checks use: each
 * an expression of self (and of the names before it), computed at most
 * once per row however many columns use it, and only when one does.
 */
function readLets(src: Source, pair: Pair | undefined, view: ViewIR, checker: ExprChecker, self: TExpr): ReadonlyMap<string, TExpr> {
  const lets = new Map<string, TExpr>();
  if (!pair) return lets;
  for (const { item, key, name } of namedEntries(src, pair, `view ${view.name}: let: maps a name to an expression of self, e.g. pool: self.pool`, 'a name of let:')) {
    try {
      checker.letName({ kind: 'name', name, at: 0 }, { self, its: [], lets }, `view ${view.name}: let:`);
    } catch (err) {
      if (err instanceof ExprError) src.fail(key, err.message);
      throw err;
    }
    const value = checkExpr(src, checker, item.value as Node, parse(src, item.value as Node), self, lets);
    if (value.type.k === 'seq' || value.type.k === 'path') {
      src.fail(item.value as Node, `view ${view.name}: let: ${name} names a value, but this is ${typeName(value.type)}: name what is taken of it (count, sum, nth...), or write the walk in walks:`);
    }
    lets.set(name, { op: 'rowlet', name, value, self, type: value.type });
  }
  return lets;
}

function readColumns(src: Source, pair: Pair | undefined, body: Node, view: ViewIR, checker: ExprChecker, self: TExpr, lets: ReadonlyMap<string, TExpr>): ColumnIR[] {
  if (!pair) src.fail(body, `view ${view.name} needs columns: (name: expression of self)`);
  return Array.from(namedEntries(src, pair, `view ${view.name}: columns: maps a column name to an expression of self`, 'a column name'), ({ item, key, name }) => {
    if (name === 'origin') src.fail(key, "'origin' is reserved: every row already says which root reached it");
    if (name === 'pid') src.fail(key, "'pid' is reserved: every row already says which process it was read from");
    const expr = columnValue(checkExpr(src, checker, item.value as Node, parse(src, item.value as Node), self, lets));
    if (expr.type.k === 'path') src.fail(item.value as Node, `column ${name} must be a value, but it is ${typeName(expr.type)}`);
    return { name, expr, pos: src.at(key) };
  });
}

/**
 * What a column shows of its expression: an array member of bytes
 * (char[N]) is its text, another array member the list of its elements,
 * and a walk the list of what it yields.
 */
export function columnValue(e: TExpr): TExpr {
  if (e.type.k !== 'array') return e;
  const t = e.type;
  if (t.elem.k === 'int' && t.elem.size === 1) return { op: 'str', data: e, len: null, within: t.count, type: { k: 'str' } };
  const elem: TExpr['type'] = t.elem.k === 'struct' ? { k: 'ref', name: t.elem.name } : t.elem.k === 'ptr' ? { k: 'ptr', to: t.elem.to } : t.elem.k === 'int' ? { k: 'int', signed: t.elem.signed } : { k: 'int', signed: false };
  return { op: 'walk', walk: { w: 'array', base: e, count: { op: 'num', value: t.count, type: { k: 'int', signed: false } }, elem: t.elem }, type: { k: 'seq', elem } };
}

function readChecks(src: Source, pair: Pair | undefined, view: ViewIR, checker: ExprChecker, self: TExpr, lets: ReadonlyMap<string, TExpr>): CheckIR[] {
  if (!pair) return [];
  const s = pair.value as Node;
  if (!isSeq(s)) src.fail(s, `view ${view.name}: checks: is a list of { expr:, message: }`);
  return s.items.map((item) => {
    const node = item as Node;
    if (!isMap(node)) src.fail(node, 'a check is { expr: condition, message: text }');
    const e = entries(src, node, ['expr', 'message'], 'a check');
    const ex = e.get('expr');
    if (!ex) src.fail(node, 'a check needs expr:');
    const expr = checkExpr(src, checker, ex.value as Node, parse(src, ex.value as Node), self, lets);
    if (expr.type.k !== 'int') src.fail(ex.value as Node, `a check must be a condition, but this is ${typeName(expr.type)}`);
    return { expr, message: optString(src, e.get('message')) || 'check failed', pos: src.at(node) };
  });
}

/**
 * splices: native_stack: the view's row says, at a perf sample, which native frames of the thread are an
 * interpreter's entries and the frames that stand for them (xsample record --cpu, sampler/fullstack/).
 * It needs the columns that say so.
 */
function readSplices(src: Source, pair: Pair | undefined, view: ViewIR): ViewIR['splices'] {
  if (!pair) return undefined;
  const v = pair.value as Node;
  if (scalarValue(v) !== 'native_stack') src.fail(v ?? (pair.key as Node), `view ${view.name}: splices: says what the view's rows splice into: native_stack`);
  const missing = NATIVE_STACK_COLUMNS.filter((c) => !view.columns.some((x) => x.name === c));
  if (missing.length) src.fail(v, `view ${view.name}: splices: native_stack needs the columns ${missing.join(', ')}`);
  if (view.instant.length === 0) src.fail(v, `view ${view.name}: splices: native_stack needs instant: (what the kernel reads at the sample)`);
  return 'native_stack';
}

/** counters: the number columns that count up (a program's totals since it started): per second in top, Prometheus counters in serve. */
function readCounters(src: Source, pair: Pair | undefined, view: ViewIR): string[] | undefined {
  if (!pair) return undefined;
  const s = pair.value as Node;
  if (!isSeq(s)) src.fail(s ?? (pair.key as Node), `view ${view.name}: counters: is a list of its number columns that count up`);
  return s.items.map((item) => {
    const name = scalarValue(item as Node);
    const col = view.columns.find((c) => c.name === name);
    if (!col || col.expr.type.k !== 'int') src.fail(item as Node, `view ${view.name}: counters: ${JSON.stringify(name ?? null)} is not one of its number columns (${view.columns.filter((c) => c.expr.type.k === 'int').map((c) => c.name).join(', ')})`);
    return col.name;
  });
}

/** instant: a list of expressions of self the kernel reads at a perf sample; refused here when the kernel cannot run one. */
function readInstant(src: Source, pair: Pair | undefined, view: ViewIR, checker: ExprChecker, self: TExpr, lets: ReadonlyMap<string, TExpr>, kernel: KernelRefusals): ViewIR['instant'] {
  if (!pair) return [];
  const s = pair.value as Node;
  if (!isSeq(s)) src.fail(s, `view ${view.name}: instant: is a list of expressions of self (what the kernel reads at a sample)`);
  const instant = s.items.map((item) => {
    const node = item as Node;
    return { expr: columnValue(checkExpr(src, checker, node, parse(src, node), self, lets)), pos: src.at(node) };
  });
  kernel.instant({ ...view, instant }).forEach((why, i) => {
    if (why) src.fail(s.items[i] as Node, `view ${view.name}: instant: the kernel cannot run this: ${why}`);
  });
  return instant;
}

function readPrinters(src: Source, pair: Pair | undefined, pack: PackIR, ctx: Ctx): PrinterIR[] {
  if (!pair) return [];
  return Array.from(namedEntries(src, pair, 'printers: maps a type name to how debuggers show it (string:, view: or children:)', 'a type name'), ({ item, key, name: type }) => {
    if (!pack.structs.has(type)) src.fail(key, `unknown type '${type}' (declared: ${[...pack.structs.keys()].join(', ')})`);
    const body = item.value as Node;
    if (!isMap(body) || body.items.length !== 1) src.fail(body ?? key, `printer ${type}: give one of string: EXPR, view: VIEW or children: WALK`);
    const e = entries(src, body, ['string', 'view', 'children'], `printer ${type}`);
    const pos = src.at(key);
    const view = e.get('view');
    if (view) {
      const name = string(src, view.value as Node, 'view');
      const v = pack.views.get(name);
      if (!v) src.fail(view.value as Node, `unknown view '${name}' (views: ${[...pack.views.keys()].join(', ')})`);
      if (v.of !== type) src.fail(view.value as Node, `view ${name} is about ${v.of}, not ${type}`);
      return { type, kind: 'view', view: name, pos };
    }
    const [kind, p] = e.get('string') ? (['string', e.get('string')!] as const) : (['children', e.get('children')!] as const);
    const checker = new ExprChecker(ctx, 1);
    const expr = checkExpr(src, checker, p.value as Node, parse(src, p.value as Node), selfOf(type));
    if (kind === 'string' && expr.type.k !== 'str' && expr.type.k !== 'int') src.fail(p.value as Node, `a string printer needs a string or a number, but this is ${typeName(expr.type)}`);
    if (kind === 'children') {
      const elem = expr.type.k === 'seq' ? expr.type.elem : null;
      if (!elem || !['int', 'ptr', 'ref', 'fnptr'].includes(elem.k)) src.fail(p.value as Node, `children needs a walk of numbers or pointers, but this is ${typeName(expr.type)}`);
    }
    return { type, kind, expr, slots: checker.maxSlots, pos };
  });
}

// ---- helpers ----

/** The first YAML error, as one line at its place (the yaml package reports deep nesting as a stack overflow). */
function yamlError(src: Source, err: { pos: [number, number]; message: string }): SchemaError {
  const message = /Maximum call stack/.test(err.message) ? 'nested too deeply' : err.message.split('\n')[0];
  return new SchemaError(src.pos(err.pos[0]), `YAML: ${message}`);
}

/** A view's or alias's debugger command must not be one gdb or lldb has of its own. */
function notADebuggerCommand(src: Source, node: Node, name: string): void {
  const command = commandName(name);
  if (DEBUGGER_COMMANDS.has(command)) src.fail(node, `'${name}' would be the command '${command}', which gdb or lldb already has: choose another name (a prefix such as ${name.split('_')[0]}_ helps)`);
}

/** A schema is written by hand: 4 MiB is far more than one needs, and bounds what loading one may cost. */
const MAX_SCHEMA = 4 * 1024 * 1024;

/** Every mapping's keys are distinct (as YAML requires), checked with a set per mapping. */
function checkUniqueKeys(src: Source, root: unknown): void {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      for (const item of node.items) {
        const key = item.key as Node;
        const k = isScalar(key) ? key.value : key;
        if (seen.has(k)) src.fail(key, 'YAML: Map keys must be unique');
        seen.add(k);
        stack.push(item.value);
      }
    } else if (isSeq(node)) stack.push(...node.items);
  }
}

function selfOf(struct: string): TExpr {
  if (struct === 'fnptr') return { op: 'var', slot: 0, type: { k: 'fnptr' } };
  return { op: 'var', slot: 0, type: { k: 'ptr', to: pointeeByName(struct) } };
}

function entries(src: Source, m: YAMLMap, allowed: string[], what: string): Map<string, Pair> {
  const out = new Map<string, Pair>();
  for (const item of m.items) {
    const key = item.key as Node;
    const k = isScalar(key) ? String(key.value) : '';
    if (!allowed.includes(k)) src.fail(key, `unknown key '${k}' in ${what} (expected one of: ${allowed.join(', ')})`);
    out.set(k, item as Pair);
  }
  return out;
}

function scalarValue(n: Node | null | undefined): unknown {
  return n && isScalar(n) ? (n as Scalar).value : undefined;
}

function string(src: Source, n: Node | null | undefined, what: string): string {
  const v = scalarValue(n);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && n) return String(v);
  src.fail(n, `${what} must be a string`);
}

/** A doc or a message: prose from the schema that reaches terminals, so no control character survives it. */
function optString(src: Source, pair: Pair | undefined): string {
  return pair ? printable(string(src, pair.value as Node, 'doc')) : '';
}

const UNPRINTABLE = /[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

/**
 * Line breaks become spaces; every other control character (C0, DEL, C1: terminal escapes) becomes
 * \xNN, and the characters that reorder or hide text on a terminal (bidi controls such as U+202E,
 * line and paragraph separators) become \uNNNN. The Python runtime's printable() is the same.
 */
/** Each line of text printable(): a message for stderr, whatever a schema or a file put in it. */
export const printableLines = (text: string): string => text.split('\n').map(printable).join('\n');

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    if (c === '\n' || c === '\r' || c === '\t') return ' ';
    const n = c.charCodeAt(0);
    return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
  });
}


/**
 * The entries of a section that maps names to something (types:, views:,
 * a view's columns:...), in order: the section must be a mapping (else
 * hint), each key a C identifier (what names it). Lazy, so that an entry's
 * name is checked when the reader reaches it and the first error in the
 * file is still the one reported.
 */
function* namedEntries(src: Source, section: Pair, hint: string, what: string): Generator<{ item: Pair; key: Node; name: string }> {
  const m = section.value as Node;
  if (!isMap(m)) src.fail(m, hint);
  for (const item of m.items) {
    const key = item.key as Node;
    yield { item, key, name: identifier(src, item, key, what) };
  }
}

function identifier(src: Source, pair: Pair | undefined, where: Node, what: string): string {
  const node = pair ? ((pair.key && pair.key !== where ? pair.value : pair.key) as Node) : where;
  if (!pair) src.fail(where, `missing ${what}`);
  const v = scalarValue(node);
  if (typeof v !== 'string' || !IDENT.test(v)) src.fail(node, `${what} must be a C identifier (letters, digits, _), not ${JSON.stringify(v ?? null)}`);
  return v;
}

function structRef(src: Source, pair: Pair | undefined, body: Node, pack: PackIR, what: string): string {
  if (!pair) src.fail(body, `${what} needs of: (the C type it is about)`);
  const n = string(src, pair.value as Node, `${what} of:`);
  if (!pack.structs.has(n)) src.fail(pair.value as Node, `unknown type '${n}' (declared: ${[...pack.structs.keys()].join(', ')})`);
  return n;
}

/** A walk's of: a struct, or a scalar (u8 ... i64, char): a walk of bytes such as a length-prefixed string's. */
function walkOfRef(src: Source, pair: Pair | undefined, body: Node, pack: PackIR, what: string): string {
  const n = pair ? string(src, pair.value as Node, `${what} of:`) : '';
  if (n !== 'void' && isScalarName(n)) return n;
  return structRef(src, pair, body, pack, what);
}

/** An expression as written: a YAML number keeps its text (YAML would read 0x10 as 16). */
function exprText(node: Scalar): string {
  return typeof node.value === 'string' ? node.value : (node.source ?? String(node.value));
}

/**
 * The file offset of character `at` of an expression scalar. YAML folds a
 * multi-line scalar (plain, quoted or block) by changing only blanks, so
 * the expression's non-blank characters appear in the file in the same
 * order: the n-th one of the text is the n-th one of the scalar's source.
 * (Quote escapes break the count, but the expression language has no
 * quotes or backslashes: an error comes at or before the first of them.)
 */
function exprOffset(src: Source, node: Scalar, at: number): number {
  const text = exprText(node);
  let skip = 0;
  for (let i = 0; i < Math.min(at, text.length); i++) if (!/\s/.test(text[i])) skip++;
  const [start, end] = node.range ?? [0, 0];
  let i = start;
  if (node.type === 'BLOCK_FOLDED' || node.type === 'BLOCK_LITERAL') i = src.text.indexOf('\n', start) + 1; // past the header (>-, |)
  else if (node.type === 'QUOTE_SINGLE' || node.type === 'QUOTE_DOUBLE') i++;
  let after = i;
  for (; i < end; i++) {
    if (/\s/.test(src.text[i])) continue;
    if (skip === 0) return i;
    skip--;
    after = i + 1;
  }
  return after;
}

function parse(src: Source, node: Node | null | undefined): Expr {
  if (!node || !isScalar(node) || (typeof node.value !== 'string' && typeof node.value !== 'number')) src.fail(node, 'expected an expression');
  try {
    return parseExpr(exprText(node));
  } catch (err) {
    if (err instanceof ExprSyntaxError) throw new SchemaError(src.pos(exprOffset(src, node, err.at)), err.message);
    throw err;
  }
}

function checkExpr(src: Source, checker: ExprChecker, node: Node, ast: Expr, self: TExpr | null, lets?: ReadonlyMap<string, TExpr>): TExpr {
  try {
    return checker.check(ast, self, lets);
  } catch (err) {
    if (err instanceof ExprError) throw new SchemaError(src.pos(exprOffset(src, node as Scalar, err.at)), err.message);
    throw err;
  }
}
