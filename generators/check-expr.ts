/**
 * Type-checks parsed expressions against the schema's declarations and
 * produces typed IR. Every error is an ExprError at a character offset;
 * the schema loader turns it into file:line:col.
 */
import type { Expr } from './expr-parse.ts';
import { FIELD_PATH, fieldTypeName, isScalarName, pointeeByName } from './field-type.ts';
import type { FieldType, Pointee, StructIR, TExpr, VType } from './ir.ts';
import { BUILTINS, isBuiltin, unknownCallHint } from './builtins.ts';
import { elementType, ExprError, fieldValueType, INT, SINT, structName, typeName, type CheckContext, type Scope } from './typed-expr.ts';
import { walkCall } from './lower/inline.ts';
import { memberPath, withParams } from './walk-expand.ts';

const MAX_INLINED = 20_000;
const MAX_WALK_DEPTH = 16;

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
    const name = structName(base);
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
        // Lowering's rule (lower/inline.ts): called, or inlined here with self bound to the argument.
        const call = walkCall(def.name, arg, w.checked());
        if (call) return call;
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
    const got = structName(t);
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
