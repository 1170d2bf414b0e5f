/**
 * Type-checks parsed expressions against the schema's declarations and
 * produces typed IR. Every error is an ExprError at a character offset;
 * the schema loader turns it into file:line:col.
 */
import { exprSource, type Expr } from './expr-parse.ts';
import { FIELD_PATH, fieldTypeName, isScalarName, pointeeByName, pointeeName } from './field-type.ts';
import type { FieldType, GlobalIR, Pointee, StructIR, TExpr, VType, Walk, WalkDefIR } from './ir.ts';

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

export interface Scope {
  self: TExpr | null;
  its: number[]; // slots of the enclosing `it`s, innermost last
  /** Names bound by let() around the expression, and a view's let: names: what each stands for. */
  lets?: ReadonlyMap<string, TExpr>;
}

const INT: VType = { k: 'int', signed: false };
const MAX_INLINED = 20_000;
/** A named walk of at most this many parts is inlined where it is called (its loops fuse with the caller's); a larger one is a function. */
export const MAX_INLINE_WALK = 40;
const MAX_WALK_DEPTH = 16;
/** reach_path() names at most this many steps of a path: a longer one keeps its first and last, `…` between. */
const MAX_PATH_STEPS = 16;
/** A plain binary tree may be unbalanced (a sorted insert makes a list): deep, but not without end. */
const MAX_BINTREE_DEPTH = 100_000;
const SINT: VType = { k: 'int', signed: true };
/** What register() reads: the general registers of an x86-64 thread, as a core's NT_PRSTATUS and the debuggers name them. */
export const X86_64_REGISTERS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'];

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

/** The type of an element read from memory as `p` (array elements, derefs). */
function elementType(p: Pointee): VType {
  switch (p.k) {
    case 'int':
      return { k: 'int', signed: p.signed };
    case 'ptr':
      return { k: 'ptr', to: p.to };
    case 'struct':
      return { k: 'ref', name: p.name };
    case 'void':
      throw new Error('void has no elements');
  }
}

export class ExprChecker {
  private nextSlot: number;
  maxSlots: number;
  private readonly walkStack: string[] = [];

  constructor(
    readonly ctx: CheckContext,
    firstFreeSlot = 1,
  ) {
    this.nextSlot = firstFreeSlot;
    this.maxSlots = firstFreeSlot;
  }

  /** The expression being checked as a whole (a column's, a check's): min() and max() may only be that. */
  root: Expr | null = null;

  check(e: Expr, self: TExpr | null, lets?: ReadonlyMap<string, TExpr>): TExpr {
    this.root = e;
    this.size = 0;
    return this.expr(e, { self, its: [], lets });
  }

  /**
   * A name a let binds: not self, it or NULL, a builtin, a global or a name
   * already bound around it (one name, one meaning, in the whole expression).
   */
  letName(e: Expr, s: Scope, what: string): string {
    if (e.kind !== 'name') throw new ExprError(`${what} is a name, such as n or pool`, e.at);
    const n = e.name;
    const clash = ['self', 'it', 'NULL'].includes(n) ? 'what the language binds' : isBuiltin(n) ? 'a builtin' : this.ctx.globals.has(n) ? 'a global' : s.lets?.has(n) ? 'a name already bound here' : this.ctx.walkDef(n) ? 'a walk' : null;
    if (clash) throw new ExprError(`${what}: ${n} is ${clash}`, e.at);
    return n;
  }

  /** A fresh slot for a value of type t (an it, a let's name). */
  newSlot(t: VType): number {
    const slot = this.nextSlot++;
    this.maxSlots = Math.max(this.maxSlots, this.nextSlot);
    this.slotTypes.set(slot, t);
    return slot;
  }

  /** Nodes checked for the current expression, walks inlined: bounded, so nested calls cannot blow up. */
  private size = 0;

  expr(e: Expr, s: Scope): TExpr {
    if (++this.size > MAX_INLINED) throw new ExprError(`expression too large once its walks are inlined (more than ${MAX_INLINED} parts): call fewer walks inside walks`, e.at);
    switch (e.kind) {
      case 'num':
        return { op: 'num', value: e.value, type: INT };
      case 'text':
        return { op: 'text', value: e.value, type: { k: 'str' } };
      case 'name':
        return this.name(e.name, e.at, s);
      case 'member':
        return this.member(this.expr(e.base, s), e.name, e.at);
      case 'index':
        return this.index(e, s);
      case 'unary':
        return this.unary(e.op, this.expr(e.arg, s), e.at);
      case 'binary':
        return this.binary(e.op, this.expr(e.left, s), this.expr(e.right, s), e.at);
      case 'cond':
        return this.cond(e, s);
      case 'call':
        return this.call(e, s);
    }
  }

  private name(name: string, at: number, s: Scope): TExpr {
    if (name === 'self') {
      if (!s.self) throw new ExprError("'self' has no meaning here", at);
      return s.self;
    }
    if (name === 'it') {
      if (s.its.length === 0) throw new ExprError("'it' is only bound inside each(), filter(), count(), sum(), min(), max(), all() and any()", at);
      const slot = s.its[s.its.length - 1];
      return { op: 'var', slot, type: this.slotTypes.get(slot)! };
    }
    if (name === 'NULL') return { op: 'num', value: 0, type: INT };
    const bound = s.lets?.get(name);
    if (bound) return bound;
    const g = this.ctx.globals.get(name);
    if (g) return { op: 'global', name, decl: g.type, type: fieldValueType(g.type) };
    const known = [...this.ctx.globals.keys()];
    throw new ExprError(`unknown name '${name}' (use self, it, NULL${known.length ? ' or a global: ' + known.join(', ') : ''})`, at);
  }

  private readonly slotTypes = new Map<number, VType>();

  private structOf(base: TExpr): { struct: StructIR; prefix: string; root: TExpr } | null {
    const t = base.type;
    if (t.k === 'path') return { struct: this.ctx.structs.get(t.struct)!, prefix: t.path + '.', root: t.base };
    const name = t.k === 'ref' ? t.name : t.k === 'ptr' && t.to.k === 'struct' ? t.to.name : null;
    if (!name) return null;
    return { struct: this.ctx.structs.get(name)!, prefix: '', root: base };
  }

  private member(base: TExpr, name: string, at: number): TExpr {
    const of = this.structOf(base);
    if (!of) throw new ExprError(`'.${name}' needs a struct, but this is ${typeName(base.type)}`, at);
    const path = of.prefix + name;
    const field = of.struct.fields.get(path);
    if (field) {
      return { op: 'field', base: of.root, struct: of.struct.name, field: path, ftype: field.type, type: fieldValueType(field.type) };
    }
    if ([...of.struct.fields.keys()].some((f) => f.startsWith(path + '.'))) {
      return { op: 'num', value: 0, type: { k: 'path', struct: of.struct.name, path, base: of.root } };
    }
    const names = [...of.struct.fields.keys()].join(', ');
    throw new ExprError(`${of.struct.name} has no field '${path}' in the schema (declared: ${names})`, at);
  }

  private index(e: Extract<Expr, { kind: 'index' }>, s: Scope): TExpr {
    const base = this.expr(e.base, s);
    const index = this.numeric(this.expr(e.index, s), e.at, 'an index');
    if (base.type.k === 'array') {
      // An array member: its elements are inside the struct, so an index past them is a corrupt walk, not a read elsewhere.
      const what = base.op === 'field' ? `${base.struct}.${base.field}` : base.op === 'global' ? base.name : 'the array';
      const t = base.type;
      if (index.op === 'num' && index.value >= t.count) throw new ExprError(`index ${index.value} is past the end of ${what} (${t.count} elements)`, e.at);
      return { op: 'index', base, pointee: t.elem, index, bound: { count: t.count, what }, type: elementType(t.elem) };
    }
    if (base.type.k !== 'ptr' || base.type.to.k === 'void') throw new ExprError(`'[]' needs a typed pointer, but this is ${typeName(base.type)}`, e.at);
    return { op: 'index', base, pointee: base.type.to, index, type: elementType(base.type.to) };
  }

  numeric(t: TExpr, at: number, what: string): TExpr {
    const k = t.type.k;
    if (k === 'int' || k === 'ptr' || k === 'fnptr' || k === 'ref') return t;
    throw new ExprError(`${what} must be a number or pointer, but this is ${typeName(t.type)}`, at);
  }

  private unary(op: string, arg: TExpr, at: number): TExpr {
    switch (op) {
      case '*': {
        if (arg.type.k !== 'ptr' || arg.type.to.k === 'void') throw new ExprError(`'*' needs a typed pointer, but this is ${typeName(arg.type)}`, at);
        return { op: 'deref', arg, pointee: arg.type.to, type: elementType(arg.type.to) };
      }
      case '&': {
        if (arg.op === 'field') {
          const f = arg.ftype;
          const to: Pointee = f.k === 'struct' ? { k: 'struct', name: f.name } : f.k === 'ptr' ? { k: 'ptr', to: f.to } : f.k === 'array' ? f.elem : { k: 'void' };
          return { op: 'addrof', base: arg.base, struct: arg.struct, field: arg.field, type: { k: 'ptr', to } };
        }
        if (arg.type.k === 'ref') return { op: 'cast', arg, type: { k: 'ptr', to: { k: 'struct', name: arg.type.name } } };
        if (arg.op === 'index') return { ...arg, address: true, type: { k: 'ptr', to: arg.pointee } };
        throw new ExprError("'&' needs a field, an element or a struct", at);
      }
      case '!':
        return { op: 'unary', o: '!', arg: this.numeric(arg, at, "the operand of '!'"), type: INT };
      default:
        if (arg.type.k !== 'int') throw new ExprError(`'${op}' needs an integer, but this is ${typeName(arg.type)}`, at);
        return { op: 'unary', o: op, arg, type: op === '-' ? SINT : arg.type };
    }
  }

  private binary(op: string, left: TExpr, right: TExpr, at: number): TExpr {
    this.numeric(left, at, `the left side of '${op}'`);
    this.numeric(right, at, `the right side of '${op}'`);
    const lk = left.type.k;
    const rk = right.type.k;
    const isAddr = (k: string) => k === 'ptr' || k === 'ref' || k === 'fnptr';
    if (['==', '!=', '<', '<=', '>', '>=', '&&', '||'].includes(op)) return { op: 'binary', o: op, left, right, type: INT };
    if (op === '-' && isAddr(lk) && isAddr(rk)) return { op: 'binary', o: op, left, right, type: SINT };
    if ((op === '+' || op === '-') && lk === 'ptr' && rk === 'int') return { op: 'binary', o: op, left, right, type: left.type };
    if (isAddr(lk) || isAddr(rk)) {
      if (['&', '%'].includes(op)) return { op: 'binary', o: op, left, right, type: INT };
      throw new ExprError(`'${op}' between ${typeName(left.type)} and ${typeName(right.type)}: pointer arithmetic is ptr ± int (in bytes) and ptr - ptr`, at);
    }
    const signed = (left.type as { signed: boolean }).signed || (right.type as { signed: boolean }).signed || op === '-';
    return { op: 'binary', o: op, left, right, type: { k: 'int', signed } };
  }

  private cond(e: Extract<Expr, { kind: 'cond' }>, s: Scope): TExpr {
    const test = this.numeric(this.expr(e.test, s), e.at, 'a condition');
    const then = this.expr(e.then, s);
    const els = this.expr(e.else, s);
    const same = then.type.k === els.type.k || (then.type.k !== 'str' && els.type.k !== 'str' && then.type.k !== 'seq' && els.type.k !== 'seq');
    if (!same || then.type.k === 'seq' || then.type.k === 'path') throw new ExprError(`both branches of '?:' must be values of one kind, not ${typeName(then.type)} and ${typeName(els.type)}`, e.at);
    return { op: 'cond', test, then, else: els, type: then.type.k === 'int' && els.type.k !== 'int' ? els.type : then.type };
  }

  // ---- calls: builtins and named walks ----

  private call(e: Extract<Expr, { kind: 'call' }>, s: Scope): TExpr {
    const builtin = isBuiltin(e.callee) ? BUILTINS[e.callee] : undefined;
    if (builtin) {
      if (e.args.length < builtin.min || e.args.length > builtin.max) {
        const n = builtin.min === builtin.max ? `${builtin.min}` : `${builtin.min} to ${builtin.max}`;
        throw new ExprError(`${e.callee}() takes ${n} argument${builtin.max === 1 ? '' : 's'}: ${builtin.usage}`, e.at);
      }
      return builtin.check.call(this, e, s);
    }
    const w = this.ctx.walkDef(e.callee);
    if (w) return this.callWalk(e, s, w);
    const hint = unknownCallHint(e, this.ctx.walkElsewhere?.(e.callee));
    if (hint) throw new ExprError(hint, e.at);
    throw new ExprError(`unknown function '${e.callee}' (builtins: ${Object.keys(BUILTINS).join(', ')}; or a walk from the schema's walks:)`, e.at);
  }

  private callWalk(e: Extract<Expr, { kind: 'call' }>, s: Scope, w: NonNullable<ReturnType<CheckContext['walkDef']>>): TExpr {
    const { def } = w;
    const want = 1 + def.params.length;
    if (e.args.length !== want) throw new ExprError(`walk ${def.name}() takes ${want === 1 ? 'one argument' : `${want} arguments`}: a pointer to ${def.of}${def.params.map((p) => `, ${p}`).join('')}`, e.at);
    const arg = this.expr(e.args[0], s);
    if (isScalarName(def.of)) this.expectScalarPointer(arg, def.of, e.args[0].at, `the argument of ${def.name}()`);
    else this.expectStruct(arg, def.of, e.args[0].at, `the argument of ${def.name}()`);
    if (this.walkStack.includes(def.name)) throw new ExprError(`walk ${def.name} calls itself (${[...this.walkStack, def.name].join(' → ')})`, e.at);
    if (this.walkStack.length >= MAX_WALK_DEPTH) throw new ExprError(`walks call walks more than ${MAX_WALK_DEPTH} deep (${[...this.walkStack, def.name].join(' → ')})`, e.at);
    const ast = def.params.length ? withParams(def, w.ast, e.args.slice(1)) : w.ast;
    this.walkStack.push(def.name);
    try {
      if (def.params.length === 0) {
        const checked = w.checked();
        // Inlined, a walk evaluates its argument wherever self appears: a walk of a value that would evaluate a
        // costly argument more than once is called, with the argument evaluated once (a walk of a sequence stays
        // inlined, so that its loop fuses with the caller's).
        const again = checked.body.type.k !== 'seq' && checked.selfUses > 1 && !cheapArgument(arg);
        if (checked.size > MAX_INLINE_WALK || again) return { op: 'call', walk: def.name, arg, body: checked.body, type: checked.body.type };
      }
      return this.expr(ast, { self: arg, its: [] });
    } catch (err) {
      if (err instanceof ExprError) throw new ExprError(`in walk ${def.name}: ${err.message}`, e.at);
      throw err;
    } finally {
      this.walkStack.pop();
    }
  }

  expectStruct(t: TExpr, name: string, at: number, what: string): void {
    const got = t.type.k === 'ref' ? t.type.name : t.type.k === 'ptr' && t.type.to.k === 'struct' ? t.type.to.name : null;
    if (got !== name) throw new ExprError(`${what} must point to ${name}, but it is ${typeName(t.type)}`, at);
  }

  /** A pointer to integers of the scalar's size (u8 and char alike: bytes are bytes). */
  expectScalarPointer(t: TExpr, name: string, at: number, what: string): void {
    const want = pointeeByName(name);
    const ok = t.type.k === 'ptr' && t.type.to.k === 'int' && want.k === 'int' && t.type.to.size === want.size;
    if (!ok) throw new ExprError(`${what} must point to ${name}, but it is ${typeName(t.type)}`, at);
  }

  /** A struct named by a bare identifier argument. */
  structArg(e: Expr, what: string): StructIR {
    if (e.kind !== 'name') throw new ExprError(`${what} must be a type name`, e.at);
    const st = this.ctx.structs.get(e.name);
    if (!st) throw new ExprError(`unknown type '${e.name}' (declared: ${[...this.ctx.structs.keys()].join(', ')})`, e.at);
    return st;
  }

  /** A pointee named by a bare identifier argument: a struct or a scalar. */
  pointeeArg(e: Expr, what: string): Pointee {
    if (e.kind === 'name' && isScalarName(e.name)) return pointeeByName(e.name);
    return { k: 'struct', name: this.structArg(e, what).name };
  }

  /** A member path argument such as `d.next`, checked against a struct. */
  fieldArg(e: Expr, st: StructIR, what: string): { path: string; type: FieldType } {
    const path = memberPath(e);
    if (!path || !FIELD_PATH.test(path)) throw new ExprError(`${what} must be a field name such as d.next`, e.at);
    const f = st.fields.get(path);
    if (!f) throw new ExprError(`${st.name} has no field '${path}' in the schema (declared: ${[...st.fields.keys()].join(', ')})`, e.at);
    return { path, type: f.type };
  }

  /** A struct that the schema must declare with certain fields for a C idiom. */
  requireFields(st: string, fields: Record<string, (t: FieldType) => boolean>, at: number, idiom: string): StructIR {
    const s = this.ctx.structs.get(st)!;
    for (const [name, ok] of Object.entries(fields)) {
      const f = s.fields.get(name);
      if (!f || !ok(f.type)) throw new ExprError(`${idiom} needs ${st} to declare field '${name}'${f ? ` of another type (it is ${fieldTypeName(f.type)})` : ''}`, at);
    }
    return s;
  }

  seqArg(e: Expr, s: Scope, what: string): TExpr {
    const t = this.expr(e, s);
    if (t.type.k !== 'seq') throw new ExprError(`${what} must be a walk (chain, array, dlist, bintree, each, filter, take, a named walk...), but this is ${typeName(t.type)}`, e.at);
    return t;
  }

  /** Checks `body` with a fresh slot bound to `it` (the elements of seq). */
  bodyWithIt(seq: TExpr, body: Expr, s: Scope): { slot: number; body: TExpr } {
    // Slots are never reused: a walk's driver may still hold its own while a sibling body runs.
    const slot = this.newSlot((seq.type as { elem: VType }).elem);
    return { slot, body: this.expr(body, { ...s, its: [...s.its, slot] }) };
  }

}

/** What a walk's checked body costs where it is inlined: its parts, and how often it evaluates self. */
export interface WalkCost {
  /** The parts of the body (a called walk counts as its argument and one). */
  size: number;
  /** Where self (slot 0) appears: an inlined call evaluates its argument at each. */
  selfUses: number;
}

export function walkCost(e: TExpr): WalkCost {
  const cost = { size: 0, selfUses: 0 };
  const visit = (x: unknown): void => {
    if (x === null || typeof x !== 'object') return;
    const o = x as Record<string, unknown>;
    if (o.op === 'call') {
      cost.size++;
      visit(o.arg);
      return;
    }
    if ('op' in o) cost.size++;
    if (o.op === 'var' && o.slot === 0) cost.selfUses++;
    for (const [k, val] of Object.entries(o)) if (k !== 'type' && typeof val === 'object') visit(val);
  };
  visit(e);
  return cost;
}

/** An argument as cheap to evaluate again as to pass: a variable (self, it) or a number. */
const cheapArgument = (e: TExpr): boolean => e.op === 'var' || e.op === 'num';

/**
 * A walk's body with its parameters replaced by what a call gives for them:
 * names (a type, a field, dotted if nested), never values, so nothing the
 * caller writes is evaluated where the body binds self or it.
 */
function withParams(def: WalkDefIR, ast: Expr, args: Expr[]): Expr {
  const given = new Map<string, Expr>();
  def.params.forEach((p, i) => {
    const path = memberPath(args[i]);
    if (path === null || /^(self|it)(\.|$)/.test(path)) throw new ExprError(`walk ${def.name}(): ${p} is a name (a type, or a field such as d.next), not a value`, args[i].at);
    given.set(p, args[i]);
  });
  const sub = (e: Expr): Expr => {
    switch (e.kind) {
      case 'name':
        return given.get(e.name) ?? e;
      case 'num':
      case 'text':
        return e;
      case 'member': {
        // self.F with F given list.next reads self.list.next: the member the call names, not one named F.
        const field = given.get(e.name);
        return field ? afterDot(sub(e.base), field, e.at) : { ...e, base: sub(e.base) };
      }
      case 'index':
        return { ...e, base: sub(e.base), index: sub(e.index) };
      case 'unary':
        return { ...e, arg: sub(e.arg) };
      case 'binary':
        return { ...e, left: sub(e.left), right: sub(e.right) };
      case 'cond':
        return { ...e, test: sub(e.test), then: sub(e.then), else: sub(e.else) };
      case 'call':
        return { ...e, args: e.args.map(sub) };
    }
  };
  return sub(ast);
}

/** base.a.b for the member path a.b a call gave (a name, or members of names), at the place the body wrote it. */
function afterDot(base: Expr, path: Expr, at: number): Expr {
  if (path.kind === 'name') return { kind: 'member', base, name: path.name, at };
  if (path.kind === 'member') return { kind: 'member', base: afterDot(base, path.base, at), name: path.name, at };
  return path;
}

function memberPath(e: Expr): string | null {
  if (e.kind === 'name') return e.name;
  if (e.kind === 'member') {
    const base = memberPath(e.base);
    return base === null ? null : `${base}.${e.name}`;
  }
  return null;
}

const isPtr = (t: FieldType) => t.k === 'ptr';
const isInt = (t: FieldType) => t.k === 'int';

type Call = Extract<Expr, { kind: 'call' }>;

interface Builtin {
  min: number;
  max: number;
  usage: string;
  check(this: ExprChecker, e: Call, s: Scope): TExpr;
}

const walk = (w: Walk, elem: VType): TExpr => ({ op: 'walk', walk: w, type: { k: 'seq', elem } });

function structName(t: TExpr): string | null {
  return t.type.k === 'ref' ? t.type.name : t.type.k === 'ptr' && t.type.to.k === 'struct' ? t.type.to.name : null;
}

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

/** dlist(): head, element type, link field[, next, prev]. */
function dlistOf(this: ExprChecker, e: Call, s: Scope): TExpr {
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
function reachArgs(this: ExprChecker, e: Call, s: Scope, fn: string): { roots: TExpr; slot: number; children: TExpr; elem: VType } {
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

const BUILTINS: Record<string, Builtin> = {
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
  filter: {
    min: 2,
    max: 2,
    usage: 'filter(walk, condition on it)',
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, 'the first argument of filter()');
      const { slot, body } = this.bodyWithIt(seq, e.args[1], s);
      if (!['int', 'ptr', 'ref', 'fnptr'].includes(body.type.k)) throw new ExprError(`filter() needs a condition, but this is ${typeName(body.type)}`, e.args[1].at);
      return walk({ w: 'filter', seq, slot, body }, (seq.type as { elem: VType }).elem);
    },
  },
  take_while: {
    min: 2,
    max: 2,
    usage: 'take_while(walk, condition on it): the elements up to the first where the condition fails',
    check(e, s) {
      const seq = this.seqArg(e.args[0], s, 'the first argument of take_while()');
      const { slot, body } = this.bodyWithIt(seq, e.args[1], s);
      if (!['int', 'ptr', 'ref', 'fnptr'].includes(body.type.k)) throw new ExprError(`take_while() needs a condition, but this is ${typeName(body.type)}`, e.args[1].at);
      return walk({ w: 'take_while', seq, slot, body }, (seq.type as { elem: VType }).elem);
    },
  },
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

