/**
 * Emits Python for the IR's typed expressions: the same semantics as
 * sampler/compile.ts, as Python source. Offsets and sizes are not known
 * here (they are per build): each one becomes a local bound once per
 * layout (`o3 = L.off("ngx_pool_t", "d.next")`), so the generated walks
 * run on local variables only.
 */
import type { Pointee, TExpr, Walk } from '../generators/ir.ts';
import { type Py, py, pyBool, pyInt, pyStr } from './py-source.ts';

export class PyConsts {
  private readonly byKey = new Map<string, { name: Py; init: Py }>();

  private add(key: string, init: Py): Py {
    let c = this.byKey.get(key);
    if (!c) {
      c = { name: py`k${this.byKey.size + 1}`, init };
      this.byKey.set(key, c);
    }
    return c.name;
  }

  off(struct: string, field: string): Py {
    return this.add(`off ${struct} ${field}`, py`L.off(${pyStr(struct)}, ${pyStr(field)})`);
  }

  /** Whether an integer field is a plain 8-byte word in this build (then one u64() reads it). */
  plainU64(struct: string, field: string): Py {
    return this.add(`plain ${struct} ${field}`, py`L.plain_u64(${pyStr(struct)}, ${pyStr(field)})`);
  }

  /** An integer field as (offset, size, bit, bits): bits is 0 unless it is a bitfield. */
  intField(struct: string, field: string): Py {
    return this.add(`int ${struct} ${field}`, py`L.int_field(${pyStr(struct)}, ${pyStr(field)})`);
  }

  size(p: Pointee): Py {
    switch (p.k) {
      case 'int':
        return pyInt(p.size);
      case 'ptr':
        return pyInt(8);
      case 'void':
        return pyInt(1);
      case 'struct':
        return this.add(`size ${p.name}`, py`L.size(${pyStr(p.name)})`);
    }
  }

  align(struct: string): Py {
    return this.add(`align ${struct}`, py`L.align(${pyStr(struct)})`);
  }

  globalSize(name: string): Py {
    return this.add(`gsize ${name}`, py`L.global_size(${pyStr(name)})`);
  }

  /** The binding lines, in creation order. */
  bindings(): Py[] {
    return [...this.byKey.values()].map((c) => py`${c.name} = ${c.init}`);
  }
}

/** Python names of the environment: slot 0 is the item (`s`), others are the `it`s. */
const slotName = (slot: number): Py => (slot === 0 ? py`s` : py`it${slot}`);

export class PyExprEmitter {
  constructor(readonly consts: PyConsts) {}

  expr(e: TExpr): Py {
    const k = this.consts;
    switch (e.op) {
      case 'num':
        return pyInt(e.value);
      case 'var':
        return slotName(e.slot);
      case 'global': {
        const addr = py`rt.sym_addr(${pyStr(e.name)})`;
        if (e.decl.k === 'struct') return addr;
        if (e.decl.k === 'int') return py`m.int(${addr}, ${k.globalSize(e.name)}, ${pyBool(e.decl.signed)})`;
        return py`u64(${addr})`;
      }
      case 'field': {
        const base = this.expr(e.base);
        if (e.ftype.k === 'struct') return py`(${base} + ${k.off(e.struct, e.field)})`;
        if (e.ftype.k === 'int') {
          const general = py`rt.field_int(${base}, ${k.intField(e.struct, e.field)}, ${pyBool(e.ftype.signed)})`;
          if (e.ftype.signed) return general;
          // Most unsigned fields are whole words: read them directly, the general path otherwise.
          return py`(u64(${base} + ${k.off(e.struct, e.field)}) if ${k.plainU64(e.struct, e.field)} else ${general})`;
        }
        return py`u64(${base} + ${k.off(e.struct, e.field)})`;
      }
      case 'addrof':
        return py`(${this.expr(e.base)} + ${k.off(e.struct, e.field)})`;
      case 'deref':
        return this.load(e.pointee, this.expr(e.arg));
      case 'index':
        return this.load(e.pointee, py`(${this.expr(e.base)} + ${this.expr(e.index)} * ${k.size(e.pointee)})`);
      case 'unary': {
        const a = this.expr(e.arg);
        if (e.o === '-') return py`(-${a})`;
        if (e.o === '!') return py`(0 if ${a} else 1)`;
        return py`rt.bitnot(${a})`;
      }
      case 'binary':
        return this.binary(e.o, this.expr(e.left), this.expr(e.right));
      case 'cond':
        return py`(${this.expr(e.then)} if ${this.expr(e.test)} else ${this.expr(e.else)})`;
      case 'sizeof':
        return k.size(e.of);
      case 'offsetof':
        return k.off(e.struct, e.field);
      case 'cast':
        return this.expr(e.arg);
      case 'str':
        return e.len === null ? py`rt.cstring(${this.expr(e.data)})` : py`rt.string(${this.expr(e.data)}, ${this.expr(e.len)})`;
      case 'chunk_size':
        return py`rt.chunk_size(${this.expr(e.arg)})`;
      case 'symbol':
        return py`rt.symbol(${this.expr(e.arg)})`;
      case 'file_static':
        return py`rt.file_static(${this.expr(e.fn)}, ${pyStr(e.name)})`;
      case 'clock':
        return py`rt.clock_value(${pyStr(e.which)})`;
      case 'walk':
        return this.walk(e.walk);
      case 'aggregate':
        return this.aggregate(e);
    }
  }

  /** A walk, or a single value where a walk is expected (a root). */
  seq(e: TExpr): Py {
    return e.op === 'walk' ? this.walk(e.walk) : py`(${this.expr(e)},)`;
  }

  private load(p: Pointee, addr: Py): Py {
    switch (p.k) {
      case 'struct':
        return addr;
      case 'ptr':
        return py`u64(${addr})`;
      case 'int':
        return py`m.int(${addr}, ${p.size}, ${pyBool(p.signed)})`;
      case 'void':
        throw new Error('internal: load of void');
    }
  }

  private binary(o: string, a: Py, b: Py): Py {
    switch (o) {
      case '+':
      case '-':
      case '*':
        return py`(${a} ${o === '+' ? py`+` : o === '-' ? py`-` : py`*`} ${b})`;
      case '/':
        return py`rt.div(${a}, ${b})`;
      case '%':
        return py`rt.mod(${a}, ${b})`;
      case '==':
      case '!=':
      case '<':
      case '<=':
      case '>':
      case '>=':
        return py`(1 if ${a} ${COMPARE[o]} ${b} else 0)`;
      case '&&':
        return py`(1 if (${a} and ${b}) else 0)`;
      case '||':
        return py`(1 if (${a} or ${b}) else 0)`;
      default:
        return py`rt.bitop(${pyStr(o)}, ${a}, ${b})`;
    }
  }

  private elemKind(p: Pointee): Py {
    if (p.k === 'struct') return py`"struct", 0, False`;
    if (p.k === 'ptr') return py`"ptr", 8, False`;
    if (p.k === 'int') return py`"int", ${p.size}, ${pyBool(p.signed)}`;
    throw new Error('internal: walk over void');
  }

  private walk(w: Walk): Py {
    const k = this.consts;
    switch (w.w) {
      case 'chain':
        return py`rt.chain(${this.expr(w.first)}, ${k.off(w.struct, w.next)}, ${k.align(w.struct)}, ${pyStr(`${w.struct}.${w.next} chain`)})`;
      case 'array':
        return py`rt.array(${this.expr(w.base)}, ${this.expr(w.count)}, ${k.size(w.elem)}, ${this.elemKind(w.elem)})`;
      case 'ngx_list': {
        const nelts = k.intField(w.partStruct, 'nelts');
        return py`rt.ngx_list(${this.expr(w.list)}, ${k.off(w.listStruct, 'part')}, ${k.off(w.partStruct, 'elts')}, ${nelts}[0], ${nelts}[1], ${k.off(w.partStruct, 'next')}, ${k.size(w.elem)}, ${this.elemKind(w.elem)})`;
      }
      case 'ngx_queue':
        return py`rt.ngx_queue(${this.expr(w.head)}, ${k.off(w.queueStruct, 'next')}, ${k.off(w.queueStruct, 'prev')}, ${k.off(w.struct, w.link)})`;
      case 'rbtree':
        return py`rt.rbtree(${this.expr(w.tree)}, ${k.off(w.treeStruct, 'root')}, ${k.off(w.treeStruct, 'sentinel')}, ${k.off(w.nodeStruct, 'left')}, ${k.off(w.nodeStruct, 'right')}, ${k.off(w.struct, w.node)})`;
      case 'each': {
        const it = slotName(w.slot);
        const seq = this.seq(w.seq);
        if (w.body.type.k === 'seq') return py`(v${w.slot} for ${it} in ${seq} for v${w.slot} in ${this.seq(w.body)})`;
        return py`(${this.expr(w.body)} for ${it} in ${seq})`;
      }
      case 'filter': {
        const it = slotName(w.slot);
        return py`(${it} for ${it} in ${this.seq(w.seq)} if ${this.expr(w.body)})`;
      }
      case 'take_while': {
        const it = slotName(w.slot);
        return py`rt.take_while(${this.seq(w.seq)}, lambda ${it}: ${this.expr(w.body)})`;
      }
      case 'range':
        return py`rt.range_(${this.expr(w.count)})`;
      case 'iterate':
        return py`rt.iterate(${this.expr(w.first)}, lambda ${slotName(w.slot)}: ${this.expr(w.next)})`;
      case 'one':
        return py`(${this.expr(w.value)},)`;
    }
  }

  /**
   * An aggregate over a chain, written as a loop instead of generators: the
   * hot case (a list, a pool's blocks) runs with no generator frame and the
   * next pointer read inline. Same order, bounds, errors and budget as
   * rt.chain(). Returns the statements of a function body, or null when e is
   * not such an aggregate.
   */
  chainAggregateLoop(e: TExpr): Py[] | null {
    if (e.op !== 'aggregate' || e.seq.op !== 'walk' || e.seq.walk.w !== 'chain') return null;
    const w = e.seq.walk;
    const k = this.consts;
    const it = slotName(e.slot);
    const body = e.body ? this.expr(e.body) : null;
    const what = pyStr(`${w.struct}.${w.next} chain`);
    const init: Record<typeof e.fn, Py> = { count: py`0`, sum: py`0`, min: py`None`, max: py`None`, all: py`1`, any: py`0` };
    const read = e.fn === 'sum' && e.body ? this.inlineFieldRead(e.body, e.slot) : null;
    const step: Record<typeof e.fn, Py[]> = {
      count: body ? [py`if ${body}:`, py`    acc += 1`] : [py`acc += 1`],
      sum: read ? [...read, py`acc += v`] : [py`acc += ${body!}`],
      min: [py`v = ${body!}`, py`if acc is None or v < acc:`, py`    acc = v`],
      max: [py`v = ${body!}`, py`if acc is None or v > acc:`, py`    acc = v`],
      all: [py`if not ${body!}:`, py`    acc = 0`, py`    break`],
      any: [py`if ${body!}:`, py`    acc = 1`, py`    break`],
    };
    // The loop variable is the `it` of the body itself: no copy per element.
    return [
      py`qc = m.qchunks`,
      py`${it} = ${this.expr(w.first)}`,
      py`mask = ${k.align(w.struct)} - 1`,
      py`limit = rt.max_nodes`,
      py`n = 0`,
      py`tortoise, power = ${it}, 1`,
      py`acc = ${init[e.fn]}`,
      py`try:`,
      py`    while ${it}:`,
      py`        if ${it} & mask:`,
      py`            raise rt.misaligned(${what}, ${it})`,
      py`        n += 1`,
      py`        if n > limit:`,
      py`            raise rt._too_many(${what})`,
      ...step[e.fn].map((l) => py`        ${l}`),
      py`        a = ${it} + ${k.off(w.struct, w.next)}`,
      py`        q = None if a & 7 else qc.get(a >> 16)`,
      py`        ${it} = q[(a & 65535) >> 3] if q is not None else u64(a)`,
      py`        if ${it} == tortoise and ${it}:`,
      py`            raise rt.cycle(${what}, ${it}, n)`,
      py`        if n == power:`,
      py`            tortoise, power = ${it}, power * 2`,
      py`finally:`,
      py`    rt._spend(n)`,
      py`return acc`,
    ];
  }

  /**
   * `it.f` for a whole-word field, read without a call when its chunk is
   * cached (as the chain's next pointer is): sets v. null for other bodies.
   */
  private inlineFieldRead(body: TExpr, slot: number): Py[] | null {
    if (body.op !== 'field' || body.base.op !== 'var' || body.base.slot !== slot) return null;
    if (body.ftype.k !== 'ptr' && body.ftype.k !== 'fnptr' && !(body.ftype.k === 'int' && !body.ftype.signed)) return null;
    const k = this.consts;
    const whole = body.ftype.k === 'int' ? k.plainU64(body.struct, body.field) : py`True`;
    return [
      py`b = ${slotName(slot)} + ${k.off(body.struct, body.field)}`,
      py`q = qc.get(b >> 16) if ${whole} and not b & 7 else None`,
      py`v = q[(b & 65535) >> 3] if q is not None else ${this.expr(body)}`,
    ];
  }

  private aggregate(e: Extract<TExpr, { op: 'aggregate' }>): Py {
    const seq = this.seq(e.seq);
    const it = slotName(e.slot);
    if (!e.body) return py`rt.count(${seq})`;
    const body = this.expr(e.body);
    switch (e.fn) {
      case 'count':
        return py`rt.count(1 for ${it} in ${seq} if ${body})`;
      case 'sum':
        return py`sum(${body} for ${it} in ${seq})`;
      case 'min':
        return py`rt.min_(${body} for ${it} in ${seq})`;
      case 'max':
        return py`rt.max_(${body} for ${it} in ${seq})`;
      case 'all':
        return py`(1 if all(${body} for ${it} in ${seq}) else 0)`;
      case 'any':
        return py`(1 if any(${body} for ${it} in ${seq}) else 0)`;
    }
  }
}

const COMPARE: Record<string, Py> = { '==': py`==`, '!=': py`!=`, '<': py`<`, '<=': py`<=`, '>': py`>`, '>=': py`>=` };
