/**
 * The built-in functions of the expression language: what each takes, its
 * usage line, and how it is checked into typed IR (the checker is `this`);
 * and the former built-ins, which became walks of a file of walks.
 */
import { exprSource, type Expr } from './expr-parse.ts';
import { fieldTypeName } from './field-type.ts';
import type { FieldType, Pointee, StructIR, TExpr, VType, Walk } from './ir.ts';
import { elementType, ExprError, fieldValueType, INT, SINT, structName, typeName, type CheckContext, type Scope, type WalkElsewhere } from './typed-expr.ts';

/**
 * Builtins the language had and has no longer (xwalk: 1 keeps its word: a
 * schema that called one is told what to write instead). Each became a walk
 * of a file of walks under the same name and arguments; `instead` writes the
 * call of today's builtins that does the same, from the call's own arguments.
 */
export const FORMER_BUILTINS: Record<string, { became: string; of: string; commit: string; date: string; args: number; instead(a: Expr[]): string }> = {
  ngx_array: { became: 'nginx/idioms.yaml', of: 'ngx_array_t', commit: '706cc0b', date: '2026-12-01', args: 2, instead: ([a, t]) => `array(cast(${memberText(a, 'elts')}, ${exprSource(t)}), ${memberText(a, 'nelts')})` },
  ngx_list: {
    became: 'nginx/idioms.yaml',
    of: 'ngx_list_t',
    commit: '706cc0b',
    date: '2026-12-01',
    args: 2,
    instead: ([l, t]) => `each(chain(&${memberText(l, 'part')}, next), array(cast(it.elts, ${exprSource(t)}), it.nelts))`,
  },
  ngx_queue: { became: 'nginx/idioms.yaml', of: 'ngx_queue_t', commit: '706cc0b', date: '2026-12-01', args: 3, instead: ([h, t, link]) => `dlist(${exprSource(h)}, ${exprSource(t)}, ${exprSource(link)})` },
  rbtree: {
    became: 'nginx/idioms.yaml',
    of: 'ngx_rbtree_t',
    commit: '706cc0b',
    date: '2026-12-01',
    args: 3,
    instead: ([tr, t, node]) => `each(bintree(${memberText(tr, 'root')}, left, right, ${memberText(tr, 'sentinel')}), container_of(it, ${exprSource(t)}, ${exprSource(node)}))`,
  },
};

/** `x.field` for a struct or a pointer to one (`&a.b` is written a.b: a member of either reads the same). */
function memberText(x: Expr, field: string): string {
  const base = x.kind === 'unary' && x.op === '&' && (x.arg.kind === 'name' || x.arg.kind === 'member') ? x.arg : x;
  const text = exprSource(base);
  return ['name', 'member', 'index', 'call'].includes(base.kind) ? `${text}.${field}` : `(${text}).${field}`;
}

/** Why a call of an unknown function fails, and what to write instead, when the language knows: a former builtin, a walk of a file not imported. */
export function unknownCallHint(e: { callee: string; args: Expr[] }, elsewhere: WalkElsewhere | undefined): string | null {
  const former = Object.hasOwn(FORMER_BUILTINS, e.callee) ? FORMER_BUILTINS[e.callee] : undefined;
  const file = elsewhere?.file ?? former?.became;
  const of = elsewhere?.of ?? former?.of;
  if (!file || !of) return null;
  const instead = former && e.args.length === former.args ? `, or use ${former.instead(e.args)}` : '';
  const was = former ? `${e.callee}() is no longer a builtin (since ${former.commit}, ${former.date}): ` : '';
  if (elsewhere?.imported) return `${was}${e.callee} is a walk of ${file} about ${of}, which this schema does not declare, so the import leaves it out: declare ${of} under types:${instead}`;
  return `${was}${e.callee} is a walk of ${file}: add imports: [${file}]${instead}`;
}

/** reach_path() names at most this many steps of a path: a longer one keeps its first and last, `…` between. */
const MAX_PATH_STEPS = 16;
/** A plain binary tree may be unbalanced (a sorted insert makes a list): deep, but not without end. */
const MAX_BINTREE_DEPTH = 100_000;
/** What register() reads: the general registers of an x86-64 thread, as a core's NT_PRSTATUS and the debuggers name them. */
export const X86_64_REGISTERS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'];

const isPtr = (t: FieldType) => t.k === 'ptr';
const isInt = (t: FieldType) => t.k === 'int';

type Call = Extract<Expr, { kind: 'call' }>;

/** What a built-in's check uses of the checker (ExprChecker is one). */
export interface BuiltinChecker {
  readonly ctx: CheckContext;
  /** The expression being checked as a whole: min() and max() may only be that. */
  root: Expr | null;
  expr(e: Expr, s: Scope): TExpr;
  numeric(t: TExpr, at: number, what: string): TExpr;
  letName(e: Expr, s: Scope, what: string): string;
  newSlot(t: VType): number;
  structArg(e: Expr, what: string): StructIR;
  pointeeArg(e: Expr, what: string): Pointee;
  fieldArg(e: Expr, st: StructIR, what: string): { path: string; type: FieldType };
  requireFields(st: string, fields: Record<string, (t: FieldType) => boolean>, at: number, idiom: string): StructIR;
  seqArg(e: Expr, s: Scope, what: string): TExpr;
  bodyWithIt(seq: TExpr, body: Expr, s: Scope): { slot: number; body: TExpr };
}

export interface Builtin {
  min: number;
  max: number;
  usage: string;
  check(this: BuiltinChecker, e: Call, s: Scope): TExpr;
}

const walk = (w: Walk, elem: VType): TExpr => ({ op: 'walk', walk: w, type: { k: 'seq', elem } });

function aggregate(fn: 'count' | 'sum' | 'min' | 'max' | 'all' | 'any', needsBody: boolean): Builtin {
  return {
    min: needsBody ? 2 : 1,
    max: 2,
    usage: needsBody ? `${fn}(walk, expression of it)` : `${fn}(walk) or ${fn}(walk, condition on it)`,
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, `the first argument of ${fn}()`);
      if (e.args.length === 1) return { op: 'aggregate', fn, seq, slot: 0, body: null, type: INT };
      if ((fn === 'min' || fn === 'max') && e !== this.root) {
        throw new ExprError(`${fn}() can only be a whole column: over an empty walk it has no value (the column is then null)`, e.at);
      }
      const { slot, body } = this.bodyWithIt(seq, e.args[1], s);
      if (!['int', 'ptr', 'ref', 'fnptr'].includes(body.type.k)) throw new ExprError(`${fn}() needs a number for each element, but this is ${typeName(body.type)}`, e.args[1].at);
      const signed = body.type.k === 'int' && body.type.signed;
      return { op: 'aggregate', fn, seq, slot, body, type: { k: 'int', signed } };
    },
  };
}

/** ntohs(x), ntohl(x): the low 2 or 4 bytes of x, from network byte order (big-endian) to the host's (x86-64: little-endian). */
function byteOrder(fn: 'ntohs' | 'ntohl', size: 2 | 4): Builtin {
  return {
    min: 1,
    max: 1,
    usage: `${fn}(x): the low ${size * 8} bits of x with their bytes swapped (network to host byte order on x86-64)`,
    check(e, s) {
      const x = this.expr(e.args[0], s);
      if (x.type.k !== 'int') throw new ExprError(`${fn}() needs an integer, but this is ${typeName(x.type)}`, e.args[0].at);
      return { op: 'bswap', size, arg: x, type: INT };
    },
  };
}

/** filter(), take_while(): the elements of a walk kept by a condition on it (take_while stops at the first it fails). */
function conditionWalk(fn: 'filter' | 'take_while', usage: string): Builtin {
  return {
    min: 2,
    max: 2,
    usage,
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, `the first argument of ${fn}()`);
      const { slot, body } = this.bodyWithIt(seq, e.args[1], s);
      if (!['int', 'ptr', 'ref', 'fnptr'].includes(body.type.k)) throw new ExprError(`${fn}() needs a condition, but this is ${typeName(body.type)}`, e.args[1].at);
      return walk({ w: fn, seq, slot, body }, (seq.type as { elem: VType }).elem);
    },
  };
}

/** dlist(): head, element type, link field[, next, prev]. */
function dlistOf(this: BuiltinChecker, e: Call, s: Scope): TExpr {
  const name = 'dlist';
  const head = this.expr(e.args[0], s);
  const q = structName(head);
  if (!q) throw new ExprError(`${name}() needs a list head (a struct with next and prev links), but this is ${typeName(head.type)}`, e.args[0].at);
  const qir = this.ctx.structs.get(q)!;
  const next = e.args.length === 5 ? this.fieldArg(e.args[3], qir, 'the next field').path : 'next';
  const prev = e.args.length === 5 ? this.fieldArg(e.args[4], qir, 'the prev field').path : 'prev';
  const selfPtr = (t: FieldType) => t.k === 'ptr' && t.to.k === 'struct' && t.to.name === q;
  this.requireFields(q, { [next]: selfPtr, [prev]: selfPtr }, e.at, `${name}()`);
  const st = this.structArg(e.args[1], 'the element type');
  const link = this.fieldArg(e.args[2], st, 'the link field');
  if (link.type.k !== 'struct' || link.type.name !== q) throw new ExprError(`${st.name}.${link.path} must be a ${q}, but it is ${fieldTypeName(link.type)}`, e.args[2].at);
  return walk({ w: 'dlist', name, head, linkStruct: q, next, prev, container: { struct: st.name, field: link.path } }, { k: 'ref', name: st.name });
}

/** A plain binary tree from its root node: NULL children, or a sentinel node as the 4th argument. */
function bintreeOf(order: 'in' | 'pre'): Builtin {
  const fn = order === 'in' ? 'bintree' : 'bintree_preorder';
  return {
    min: 3,
    max: 4,
    usage: `${fn}(root, left_field, right_field[, sentinel]): the nodes of a binary tree ${order === 'in' ? 'in order (left, node, right)' : 'root first (node, left, right)'}; leaves are NULL, or the sentinel`,
    check(e, s) {
      const root = this.expr(e.args[0], s);
      const n = root.type.k === 'ptr' && root.type.to.k === 'struct' ? root.type.to.name : null;
      if (!n) throw new ExprError(`${fn}() starts from a pointer to a node struct, but this is ${typeName(root.type)}`, e.args[0].at);
      const nir = this.ctx.structs.get(n)!;
      const side = (arg: Expr, what: string): string => {
        const f = this.fieldArg(arg, nir, what);
        if (f.type.k !== 'ptr' || f.type.to.k !== 'struct' || f.type.to.name !== n) throw new ExprError(`${fn}() follows fields of type ptr ${n}, but ${n}.${f.path} is ${fieldTypeName(f.type)}`, arg.at);
        return f.path;
      };
      const left = side(e.args[1], 'the left field');
      const right = side(e.args[2], 'the right field');
      const sentinel = e.args.length === 4 ? this.numeric(this.expr(e.args[3], s), e.args[3].at, 'the sentinel') : null;
      return walk({ w: 'bintree', name: fn, at: root, root, nodeStruct: n, left, right, order, sentinel, maxDepth: MAX_BINTREE_DEPTH, container: null }, root.type);
    },
  };
}

/** The roots (a walk, or one root) and the children walk of it that reach(), reach_path() and reach_parent() share. */
function reachArgs(this: BuiltinChecker, e: Call, s: Scope, fn: string): { roots: TExpr; slot: number; children: TExpr; elem: VType } {
  const r0 = this.expr(e.args[0], s);
  const roots = r0.type.k === 'seq' ? r0 : walk({ w: 'one', value: this.numeric(r0, e.args[0].at, `the root of ${fn}()`) }, r0.type);
  const elem = (roots.type as { elem: VType }).elem;
  if (!['int', 'ptr', 'ref'].includes(elem.k)) throw new ExprError(`${fn}() walks from addresses, but the roots are ${typeName(elem)}`, e.args[0].at);
  const node: TExpr = { op: 'num', value: 0, type: { k: 'seq', elem } };
  const { slot, body: children } = this.bodyWithIt(node, e.args[1], s);
  if (children.type.k !== 'seq') throw new ExprError(`${fn}() needs a walk of the children of it, but this is ${typeName(children.type)}`, e.args[1].at);
  return { roots, slot, children, elem };
}

/** True for the names of builtin functions (a walk of that name could never be called). */
export function isBuiltin(name: string): boolean {
  return Object.hasOwn(BUILTINS, name);
}

export const BUILTINS: Record<string, Builtin> = {
  let: {
    min: 3,
    max: 3,
    usage: 'let(name, value, expression of name): the value computed once, named in the expression',
    check(e, s) {
      const name = this.letName(e.args[0], s, 'the first argument of let()');
      const value = this.expr(e.args[1], s);
      if (value.type.k === 'seq' || value.type.k === 'path') {
        throw new ExprError(`let() names a value, but this is ${typeName(value.type)}: name what is taken of it (count, sum, nth...), or write the walk in walks:`, e.args[1].at);
      }
      const slot = this.newSlot(value.type);
      const lets = new Map(s.lets ?? []);
      lets.set(name, { op: 'var', slot, type: value.type });
      const body = this.expr(e.args[2], { ...s, lets });
      return { op: 'let', slot, value, body, type: body.type };
    },
  },
  after: {
    min: 1,
    max: 1,
    usage: "after(p): the bytes right after the struct p points to, as a pointer to u8 (C's (u_char *) (p + 1))",
    check(e, s) {
      const p = this.expr(e.args[0], s);
      const st = structName(p);
      if (!st) throw new ExprError(`after() needs a pointer to a struct, but this is ${typeName(p.type)}`, e.args[0].at);
      const bytes: VType = { k: 'ptr', to: { k: 'int', size: 1, signed: false } };
      return { op: 'binary', o: '+', left: { op: 'cast', arg: p, type: bytes }, right: { op: 'sizeof', of: { k: 'struct', name: st }, type: INT }, type: bytes };
    },
  },
  ntohs: byteOrder('ntohs', 2),
  ntohl: byteOrder('ntohl', 4),
  enum_name: {
    min: 2,
    max: 2,
    usage: "enum_name(value, E): the name of value's enumerator of enum E (declared in enums:), from the build's DWARF, or the value in decimal when none has it",
    check(e, s) {
      const x = this.expr(e.args[0], s);
      if (x.type.k !== 'int') throw new ExprError(`enum_name() needs an integer, but this is ${typeName(x.type)}`, e.args[0].at);
      const a = e.args[1];
      const known = [...(this.ctx.enums?.keys() ?? [])];
      if (a.kind !== 'name' || !this.ctx.enums?.has(a.name)) {
        throw new ExprError(`the second argument of enum_name() is an enum the schema declares in enums: (${known.length ? known.join(', ') : 'it declares none'})`, a.at);
      }
      return { op: 'enum_name', enumName: a.name, arg: x, type: { k: 'str' } };
    },
  },
  sockaddr_str: {
    min: 1,
    max: 1,
    usage: 'sockaddr_str(p): a struct sockaddr as text: ip:port (AF_INET), [ip6]:port (AF_INET6, RFC 5952), else family N; NULL for a NULL pointer',
    check(e, s) {
      const p = this.expr(e.args[0], s);
      if (p.type.k !== 'ptr' && p.type.k !== 'ref') throw new ExprError(`sockaddr_str() needs a pointer to a struct sockaddr, but this is ${typeName(p.type)}`, e.args[0].at);
      return { op: 'sockaddr', arg: p, type: { k: 'str' } };
    },
  },
  register: {
    min: 1,
    max: 1,
    usage: `register(name): a register of the target's first thread (${X86_64_REGISTERS.join(', ')}), or 0 where it is not known`,
    check(e) {
      const a = e.args[0];
      if (a.kind !== 'name' || !X86_64_REGISTERS.includes(a.name)) throw new ExprError(`register() takes the name of an x86-64 register (${X86_64_REGISTERS.join(', ')})`, a.at);
      return { op: 'register', name: a.name, type: { k: 'int', signed: false } };
    },
  },
  sizeof: {
    min: 1,
    max: 1,
    usage: 'sizeof(type)',
    check(e) {
      const of = this.pointeeArg(e.args[0], 'the argument of sizeof()');
      if (of.k === 'void') throw new ExprError('sizeof(void) has no meaning', e.at);
      return { op: 'sizeof', of, type: INT };
    },
  },
  offsetof: {
    min: 2,
    max: 2,
    usage: 'offsetof(type, field)',
    check(e) {
      const st = this.structArg(e.args[0], 'the first argument of offsetof()');
      const f = this.fieldArg(e.args[1], st, 'the second argument of offsetof()');
      return { op: 'offsetof', struct: st.name, field: f.path, type: INT };
    },
  },
  cast: {
    min: 2,
    max: 2,
    usage: 'cast(expression, type): a pointer to type',
    check(e, s) {
      const arg = this.expr(e.args[0], s);
      if (!['int', 'ptr', 'ref', 'fnptr'].includes(arg.type.k)) throw new ExprError(`cannot cast ${typeName(arg.type)} to a pointer`, e.args[0].at);
      return { op: 'cast', arg, type: { k: 'ptr', to: this.pointeeArg(e.args[1], 'the second argument of cast()') } };
    },
  },
  str: {
    min: 1,
    max: 2,
    usage: 'str(s) for a struct with data and len fields, or str(pointer, length)',
    check(e, s) {
      const a = this.expr(e.args[0], s);
      if (e.args.length === 2) {
        if (a.type.k !== 'ptr') throw new ExprError(`str(pointer, length) needs a pointer, but this is ${typeName(a.type)}`, e.args[0].at);
        const len = this.expr(e.args[1], s);
        if (len.type.k !== 'int') throw new ExprError(`the length must be an integer, but it is ${typeName(len.type)}`, e.args[1].at);
        return { op: 'str', data: a, len, type: { k: 'str' } };
      }
      if (a.type.k === 'array') {
        if (a.type.elem.k !== 'int' || a.type.elem.size !== 1) throw new ExprError(`str() of an array needs bytes (char[N], u8[N]), but this is ${typeName(a.type)}`, e.args[0].at);
        return { op: 'str', data: a, len: null, within: a.type.count, type: { k: 'str' } };
      }
      const st = structName(a);
      if (!st) throw new ExprError(`str() needs a struct with data and len fields, a char[N] or (pointer, length), but this is ${typeName(a.type)}`, e.args[0].at);
      const sir = this.requireFields(st, { data: isPtr, len: isInt }, e.at, 'str()');
      const field = (name: string, ftype: FieldType): TExpr => ({ op: 'field', base: a, struct: st, field: name, ftype, type: fieldValueType(ftype) });
      return { op: 'str', data: field('data', sir.fields.get('data')!.type), len: field('len', sir.fields.get('len')!.type), type: { k: 'str' } };
    },
  },
  cat: {
    min: 1,
    max: 16,
    usage: 'cat(a, b, ...): texts and integers (in decimal) joined into one text',
    check(e, s) {
      const args = e.args.map((x) => {
        const a = this.expr(x, s);
        if (a.type.k !== 'str' && a.type.k !== 'int') throw new ExprError(`cat() joins texts and integers, but this is ${typeName(a.type)}`, x.at);
        return a;
      });
      return { op: 'cat', args, type: { k: 'str' } };
    },
  },
  cstr: {
    min: 1,
    max: 1,
    usage: 'cstr(pointer): a NUL-terminated string',
    check(e, s) {
      const a = this.expr(e.args[0], s);
      if (a.type.k !== 'ptr') throw new ExprError(`cstr() needs a pointer, but this is ${typeName(a.type)}`, e.args[0].at);
      return { op: 'str', data: a, len: null, type: { k: 'str' } };
    },
  },
  now_ms: {
    min: 0,
    max: 0,
    usage: "now_ms(): the sample's time, ms since the epoch (CLOCK_REALTIME), read once per sample; on a core, the program's own (the schema's clock:)",
    check() {
      return { op: 'clock', which: 'now_ms', type: SINT };
    },
  },
  monotonic_ms: {
    min: 0,
    max: 0,
    usage: "monotonic_ms(): the sample's CLOCK_MONOTONIC in ms, read once per sample; on a core, the program's own (the schema's clock:)",
    check() {
      return { op: 'clock', which: 'monotonic_ms', type: SINT };
    },
  },
  glibc_chunk_size: {
    min: 1,
    max: 1,
    usage: 'glibc_chunk_size(pointer returned by malloc)',
    check(e, s) {
      const a = this.expr(e.args[0], s);
      if (a.type.k !== 'ptr') throw new ExprError(`glibc_chunk_size() needs a pointer, but this is ${typeName(a.type)}`, e.args[0].at);
      return { op: 'chunk_size', arg: a, type: INT };
    },
  },
  symbol: {
    min: 1,
    max: 1,
    usage: 'symbol(function pointer): its name from the ELF symbol tables',
    check(e, s) {
      const a = this.numeric(this.expr(e.args[0], s), e.args[0].at, 'the argument of symbol()');
      return { op: 'symbol', arg: a, type: { k: 'str' } };
    },
  },
  file_static: {
    min: 2,
    max: 2,
    usage: 'file_static(function, name): the address of the static variable `name` of the C file that defines function (from .symtab), or NULL',
    check(e, s) {
      const fn = this.numeric(this.expr(e.args[0], s), e.args[0].at, 'the function');
      if (e.args[1].kind !== 'name') throw new ExprError('the second argument of file_static() is the C name of a static variable', e.args[1].at);
      return { op: 'file_static', fn, name: e.args[1].name, type: { k: 'ptr', to: { k: 'void' } } };
    },
  },
  iterate: {
    min: 2,
    max: 2,
    usage: 'iterate(first, next): first, then next of it, and so on until NULL (a chain through any expression)',
    check(e, s) {
      const first = this.numeric(this.expr(e.args[0], s), e.args[0].at, 'the first element');
      const seq: TExpr = { op: 'num', value: 0, type: { k: 'seq', elem: first.type } };
      const { slot, body } = this.bodyWithIt(seq, e.args[1], s);
      if (!['int', 'ptr', 'fnptr'].includes(body.type.k)) throw new ExprError(`iterate() needs the next element, a number or a pointer, but this is ${typeName(body.type)}`, e.args[1].at);
      return walk({ w: 'iterate', first, slot, next: body }, first.type);
    },
  },
  chain: {
    min: 2,
    max: 2,
    usage: 'chain(first, next_field): follow a pointer field until NULL',
    check(e, s) {
      const first = this.expr(e.args[0], s);
      const st = first.type.k === 'ptr' && first.type.to.k === 'struct' ? first.type.to.name : null;
      if (!st) throw new ExprError(`chain() starts from a struct pointer, but this is ${typeName(first.type)}`, e.args[0].at);
      const next = this.fieldArg(e.args[1], this.ctx.structs.get(st)!, 'the second argument of chain()');
      if (next.type.k !== 'ptr' || next.type.to.k !== 'struct' || next.type.to.name !== st) throw new ExprError(`chain() follows a field of type ptr ${st}, but ${st}.${next.path} is ${fieldTypeName(next.type)}`, e.args[1].at);
      return walk({ w: 'chain', first, struct: st, next: next.path }, { k: 'ptr', to: { k: 'struct', name: st } });
    },
  },
  array: {
    min: 1,
    max: 2,
    usage: 'array(base_pointer, count), or array(member) for an array member T[N]',
    check(e, s) {
      const base = this.expr(e.args[0], s);
      if (e.args.length === 1) {
        if (base.type.k !== 'array') throw new ExprError(`array() with one argument needs an array member (T[N]), but this is ${typeName(base.type)}: give the count too, array(pointer, count)`, e.args[0].at);
        const count: TExpr = { op: 'num', value: base.type.count, type: INT };
        return walk({ w: 'array', base, count, elem: base.type.elem }, elementType(base.type.elem));
      }
      if (base.type.k === 'array') throw new ExprError(`${typeName(base.type)} has its own count: array(member)`, e.args[1].at);
      if (base.type.k !== 'ptr' || base.type.to.k === 'void') throw new ExprError(`array() needs a typed pointer (use cast(p, T)), but this is ${typeName(base.type)}`, e.args[0].at);
      const count = this.expr(e.args[1], s);
      if (count.type.k !== 'int') throw new ExprError(`the count must be an integer, but it is ${typeName(count.type)}`, e.args[1].at);
      return walk({ w: 'array', base, count, elem: base.type.to }, elementType(base.type.to));
    },
  },
  dlist: {
    min: 3,
    max: 5,
    usage: 'dlist(head, element_type, link_field[, next, prev]): a circular doubly linked list whose head is its sentinel (ngx_queue_t, list_head), the elements by container-of',
    check(e, s) {
      if (e.args.length === 4) throw new ExprError('dlist() takes the names of both link fields, next and prev, or neither', e.at);
      return dlistOf.call(this, e, s);
    },
  },
  bintree: bintreeOf('in'),
  bintree_preorder: bintreeOf('pre'),
  take: {
    min: 2,
    max: 2,
    usage: 'take(walk, n): the first n elements of a walk',
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, 'the first argument of take()');
      const count = this.expr(e.args[1], s);
      if (count.type.k !== 'int') throw new ExprError(`take() needs a number of elements, but this is ${typeName(count.type)}`, e.args[1].at);
      return walk({ w: 'take', seq, count }, (seq.type as { elem: VType }).elem);
    },
  },
  reversed: {
    min: 1,
    max: 1,
    usage: 'reversed(walk): its elements, last first',
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, 'the argument of reversed()');
      return walk({ w: 'reversed', seq }, (seq.type as { elem: VType }).elem);
    },
  },
  nth: {
    min: 2,
    max: 2,
    usage: 'nth(walk, k): element k of a walk, from 0 (a walk with fewer is an error of the column)',
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, 'the first argument of nth()');
      const index = this.expr(e.args[1], s);
      if (index.type.k !== 'int') throw new ExprError(`nth() needs an index, but this is ${typeName(index.type)}`, e.args[1].at);
      return { op: 'nth', seq, index, type: (seq.type as { elem: VType }).elem };
    },
  },
  container_of: {
    min: 3,
    max: 3,
    usage: 'container_of(pointer, type, field): the struct whose field the pointer points to',
    check(e, s) {
      const p = this.numeric(this.expr(e.args[0], s), e.args[0].at, 'the pointer');
      const st = this.structArg(e.args[1], 'the second argument of container_of()');
      const f = this.fieldArg(e.args[2], st, 'the third argument of container_of()');
      const off: TExpr = { op: 'offsetof', struct: st.name, field: f.path, type: INT };
      return { op: 'binary', o: '-', left: p, right: off, type: { k: 'ptr', to: { k: 'struct', name: st.name } } };
    },
  },
  range: {
    min: 1,
    max: 1,
    usage: 'range(count): the integers 0 .. count-1',
    check(e, s) {
      const count = this.expr(e.args[0], s);
      if (count.type.k !== 'int') throw new ExprError(`range() needs an integer, but this is ${typeName(count.type)}`, e.args[0].at);
      return walk({ w: 'range', count }, INT);
    },
  },
  each: {
    min: 2,
    max: 2,
    usage: 'each(walk, expression of it): map (a walk as the expression flattens)',
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, 'the first argument of each()');
      const { slot, body } = this.bodyWithIt(seq, e.args[1], s);
      if (body.type.k === 'path') throw new ExprError('each() needs a value, not part of a field name', e.args[1].at);
      const elem = body.type.k === 'seq' ? body.type.elem : body.type;
      return walk({ w: 'each', seq, slot, body }, elem);
    },
  },
  filter: conditionWalk('filter', 'filter(walk, condition on it)'),
  take_while: conditionWalk('take_while', 'take_while(walk, condition on it): the elements up to the first where the condition fails'),
  reach: {
    min: 2,
    max: 2,
    usage: 'reach(roots, children of it): every node reached from the roots (a walk, or one) by the edges children gives each, once, breadth first',
    check(e, s) {
      const { roots, slot, children, elem } = reachArgs.call(this, e, s, 'reach');
      return walk({ w: 'reach', roots, slot, children }, elem);
    },
  },
  reach_parent: {
    min: 3,
    max: 3,
    usage: 'reach_parent(roots, children of it, node): the node through which reach() first reached node; NULL for a root or a node not reached',
    check(e, s) {
      const { roots, slot, children, elem } = reachArgs.call(this, e, s, 'reach_parent');
      const node = this.numeric(this.expr(e.args[2], s), e.args[2].at, 'the node of reach_parent()');
      return { op: 'reach_parent', roots, slot, children, node, type: elem };
    },
  },
  reach_path: {
    min: 4,
    max: 4,
    usage:
      'reach_path(roots, children of it, target, name of it, from and edge): the first path (breadth first) from a root to target, as the name of each step, root first; from is the step\'s parent (0 for a root), edge its index among the parent\'s children',
    check(e, s) {
      const { roots, slot, children, elem } = reachArgs.call(this, e, s, 'reach_path');
      const target = this.numeric(this.expr(e.args[2], s), e.args[2].at, 'the target of reach_path()');
      const fromSlot = this.newSlot(elem);
      const edgeSlot = this.newSlot(INT);
      const lets = new Map(s.lets ?? []);
      lets.set('from', { op: 'var', slot: fromSlot, type: elem });
      lets.set('edge', { op: 'var', slot: edgeSlot, type: INT });
      const node: TExpr = { op: 'num', value: 0, type: { k: 'seq', elem } };
      const { slot: nameSlot, body: name } = this.bodyWithIt(node, e.args[3], { ...s, lets });
      if (name.type.k !== 'str') throw new ExprError(`reach_path() names each step with text, but this is ${typeName(name.type)}`, e.args[3].at);
      return walk({ w: 'reach_path', roots, slot, children, target, nameSlot, fromSlot, edgeSlot, name, maxSteps: MAX_PATH_STEPS }, { k: 'str' });
    },
  },
  count: aggregate('count', false),
  sum: aggregate('sum', true),
  min: aggregate('min', true),
  max: aggregate('max', true),
  all: aggregate('all', true),
  any: aggregate('any', true),
};
