/**
 * The Python printer of the loop IR (generators/lower/lir.ts): the same
 * functions js.ts makes for xsample, spelled as Python for the gdb
 * and lldb extensions. Nothing here decides what a walk means; it only
 * spells statements and expressions. Layout facts become locals bound once
 * per build by the factory around the functions (PyConsts); every string
 * goes through pyStr, and every name is one lower.ts made (checked to be a
 * plain identifier), so a schema can never write Python.
 *
 * The runtime's names start with an underscore (_rt, _m, _u64, _k1...),
 * which lower.ts never makes. A visitor, a statement in Python, is a
 * nested def written just before the statement that passes it; the
 * variables it assigns that are not its own are `nonlocal`, as a JS arrow
 * function assigns the variables around it.
 */
import type { LExpr, LFunc, LStmt } from '../generators/lower/lir.ts';
import type { Pointee } from '../generators/ir.ts';
import { type ConstAlgebra, type ConstLeaf, foldConst, surelyBelow63, unfolded } from '../generators/lower/fold.ts';
import { type Py, py, pyBool, pyJoin, pyStr } from './py-source.ts';

const KEYWORDS = new Set(
  'False None True and as assert async await break class continue def del elif else except finally for from global if import in is lambda nonlocal not or pass raise return try while with yield'.split(' '),
);

/** A name lower.ts made: an identifier that no Python keyword is and no runtime name can be. */
function name(n: string): Py {
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(n) || KEYWORDS.has(n)) throw new Error(`internal: ${JSON.stringify(n)} is not a name the loop IR makes`);
  return n as Py;
}

/** Layout facts as locals of a factory, bound once per build: `_k3 = L.off("ngx_pool_t", "d.next")`. */
export class PyConsts {
  private readonly byKey = new Map<string, { name: Py; init: Py }>();

  private add(key: string, init: Py): Py {
    let c = this.byKey.get(key);
    if (!c) {
      c = { name: py`_k${this.byKey.size + 1}`, init };
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
        return py`${p.size}`;
      case 'ptr':
        return py`8`;
      case 'void':
        return py`1`;
      case 'struct':
        return this.add(`size ${p.name}`, py`L.size(${pyStr(p.name)})`);
    }
  }

  align(struct: string): Py {
    return this.add(`align ${struct}`, py`L.align(${pyStr(struct)})`);
  }

  hasEnum(name: string): Py {
    return this.add(`has_enum ${name}`, py`L.has_enum(${pyStr(name)})`);
  }

  enumNames(name: string): Py {
    return this.add(`enum_names ${name}`, py`L.enum_names(${pyStr(name)})`);
  }

  globalSize(g: string): Py {
    return this.add(`gsize ${g}`, py`L.global_size(${pyStr(g)})`);
  }

  /** A constant expression of layout facts, computed once per build: `_k4 = (_k3 - 1)`. */
  expr(code: Py): Py {
    return this.add(`expr ${code}`, code);
  }

  /** Folding (fold.ts) spelled as these locals: a leaf is its binding, a sum one more binding; the walk's limits are not constants here. */
  readonly algebra: ConstAlgebra<Py> = {
    int: (v) => (v < 0n ? `(${v})` : `${v}`) as Py,
    leaf: (e: ConstLeaf) => {
      switch (e.k) {
        case 'off':
          return this.off(e.struct, e.field);
        case 'size':
          return this.size(e.of);
        case 'align':
          return this.align(e.struct);
        case 'hasEnum':
          return this.hasEnum(e.enum);
        case 'state':
          return null;
      }
    },
    arith: (op, a, b) => this.expr(py`(${a} ${ARITH[op]} ${b})`),
  };

  /** The binding lines, in creation order. */
  bindings(): Py[] {
    return [...this.byKey.values()].map((c) => py`${c.name} = ${c.init}`);
  }
}

const COMPARE: Record<string, Py> = { '==': py`==`, '!=': py`!=`, '<': py`<`, '<=': py`<=`, '>': py`>`, '>=': py`>=` };
const ARITH: Record<string, Py> = { '+': py`+`, '-': py`-`, '*': py`*` };
const RT: Record<string, Py> = { string: py`string`, cstring: py`cstring`, cstringn: py`cstringn`, symbol: py`symbol`, file_static: py`file_static`, global: py`global_addr`, clock: py`clock_value`, cat: py`cat`, register: py`register`, hex: py`hex_digits` };
const STATE: Record<string, Py> = { visited: py`_rt.visited`, maxNodes: py`_max_nodes`, maxTotal: py`_rt.max_total` };

/** What a function may take from the runtime before its body: each name and its binding. */
const PROLOGUE: [string, Py][] = [
  ['_m', py`_m = _rt.m`],
  ['_u64', py`_u64 = _m.u64`],
  ['_max_nodes', py`_max_nodes = _rt.max_nodes`],
];

/** Where an expression is printed: its indent, and the defs (visitors) that must come before its statement. */
interface Ctx {
  ind: string;
  pre: Py[];
}

/** Every function as Python lines at indent `ind` (inside a factory that bound `consts`). */
export function printPyFuncs(funcs: LFunc[], consts: PyConsts, ind: string): Py[] {
  const p = new PyPrinter(consts);
  return funcs.flatMap((f) => p.func(f, ind));
}

class PyPrinter {
  private visitors = 0;
  /** The runtime's names (PROLOGUE) the function being printed uses. */
  private uses = new Set<string>();

  constructor(private readonly k: PyConsts) {}

  func(f: LFunc, ind: string): Py[] {
    const params = [py`_rt`, ...f.params.map(name), ...(f.kind === 'seq' ? [py`visit`] : [])];
    const inner = ind + '    ';
    this.uses = new Set();
    const body = this.block(f.body, inner);
    // The runtime's names the body uses, bound once at its top (a local is faster than an attribute in a loop).
    const prologue = PROLOGUE.filter(([n]) => this.uses.has(n)).map(([, l]) => this.line(inner, l));
    return [py``, this.line(ind, py`def ${name(f.name)}(${pyJoin(params, ', ')}):`), ...prologue, ...body];
  }

  private block(ss: LStmt[], ind: string): Py[] {
    const out = ss.flatMap((s) => this.stmt(s, ind));
    return out.length ? out : [(ind + 'pass') as Py];
  }

  private line(ind: string, code: Py): Py {
    return (ind + code) as Py;
  }

  /** An 8-byte load through the memory's public u64 (bound as _u64, from _m). */
  private u64(addr: Py): Py {
    this.uses.add('_m').add('_u64');
    return py`_u64(${addr})`;
  }

  /** A load of another width or sign: _m.int(addr, size, signed). */
  private mInt(args: Py): Py {
    this.uses.add('_m');
    return py`_m.int(${args})`;
  }

  private stmt(s: LStmt, ind: string): Py[] {
    const c: Ctx = { ind, pre: [] };
    const head = this.head(s, c, ind);
    return [...c.pre, ...head];
  }

  private head(s: LStmt, c: Ctx, ind: string): Py[] {
    const L = (code: Py) => this.line(ind, code);
    const inner = ind + '    ';
    switch (s.k) {
      case 'let':
      case 'set':
        return [L(py`${name(s.name)} = ${this.expr(s.e, c)}`)];
      case 'addVisited':
        return [L(py`_rt.visited += ${this.expr(s.n, c)}`)];
      case 'readsOf':
        return []; // the debuggers read a stopped process: nothing changes under them
      case 'stack':
        return [L(py`${name(s.name)} = []`)];
      case 'push':
        return [L(py`${name(s.stack)}.append(${this.expr(s.e, c)})`)];
      case 'map':
        return [L(py`${name(s.name)} = {}`)];
      case 'mapSet':
        return [L(py`${name(s.map)}[${this.expr(s.key, c)}] = ${this.expr(s.e, c)}`)];
      case 'if': {
        const out = [L(py`if ${this.cond(s.c, c)}:`), ...this.block(s.then, inner)];
        if (s.else.length) out.push(L(py`else:`), ...this.block(s.else, inner));
        return out;
      }
      case 'loop':
        return [L(py`while True:`), ...this.block(s.body, inner)];
      case 'break':
        return [L(py`break`)];
      case 'return':
        return [L(s.e ? py`return ${this.expr(s.e, c)}` : py`return`)];
      case 'fail': {
        const args = s.args.map((a) => py`(${this.expr(a.e, c)}, ${pyStr(a.as)})`);
        return [L(py`raise _rt.fail(${pyStr(s.kind)}, ${pyStr(s.msg)}, [${pyJoin(args, ', ')}])`)];
      }
      case 'try':
        return [L(py`try:`), ...this.block(s.body, inner), L(py`finally:`), ...this.block(s.finally, inner)];
      case 'catch': {
        const err = name(s.err);
        const again = this.line(inner + '    ', py`raise`);
        return [L(py`try:`), ...this.block(s.body, inner), L(py`except Exception as ${err}:`), this.line(inner, py`if not _rt.is_failure(${err}):`), again, ...this.block(s.handler, inner)];
      }
      case 'throw':
        return [L(py`raise ${this.expr(s.e, c)}`)];
      case 'expr':
        return [L(this.expr(s.e, c))];
    }
  }

  /** An expression where only its truth matters: comparisons without the 1/0 around them. */
  private cond(e: LExpr, c: Ctx): Py {
    if (e.k === 'bin' && COMPARE[e.op]) return py`${this.expr(e.a, c)} ${COMPARE[e.op]} ${this.expr(e.b, c)}`;
    if (e.k === 'bin' && e.op === '&&') return py`(${this.cond(e.a, c)}) and (${this.cond(e.b, c)})`;
    if (e.k === 'bin' && e.op === '||') return py`(${this.cond(e.a, c)}) or (${this.cond(e.b, c)})`;
    if (e.k === 'un' && e.op === '!') return py`not (${this.cond(e.a, c)})`;
    return this.expr(e, c);
  }

  private expr(e0: LExpr, c: Ctx): Py {
    const k = this.k;
    const folded = foldConst(e0, k.algebra);
    if (folded !== null) return folded;
    const e = unfolded(e0);
    switch (e.k) {
      case 'str':
        return pyStr(e.v);
      case 'var':
        return name(e.name);
      case 'none':
        return py`None`;
      case 'load': {
        const a = this.expr(e.addr, c);
        return e.size === 8 && !e.signed ? this.u64(a) : this.mInt(py`${a}, ${e.size}, ${pyBool(e.signed)}`);
      }
      case 'field': {
        const base = this.expr(e.base, c);
        if (e.signed) return py`_rt.field_int(${base}, ${k.intField(e.struct, e.field)}, ${pyBool(e.signed)})`;
        // Most unsigned fields are whole words: read them directly, the general path otherwise. The base is
        // computed once, in the condition (Python evaluates it first): written in both branches, a chain of
        // field reads would double at every link.
        return py`(${this.u64(py`_b + ${k.off(e.struct, e.field)}`)} if ((_b := ${base}) is not None and ${k.plainU64(e.struct, e.field)}) else _rt.field_int(_b, ${k.intField(e.struct, e.field)}, False))`;
      }
      case 'gint':
        return this.mInt(py`${this.expr(e.addr, c)}, ${k.globalSize(e.name)}, ${pyBool(e.signed)}`);
      case 'depth':
        return py`len(${name(e.stack)})`;
      case 'pop':
        return py`${name(e.stack)}.pop()`;
      case 'at':
        return py`${name(e.stack)}[${this.expr(e.i, c)}]`;
      case 'mapGet':
        return py`${name(e.map)}.get(${this.expr(e.key, c)}, -1)`;
      case 'bin':
        return this.bin(e.op, e.a, e.b, c);
      case 'un':
        if (e.op === '-') return py`(-${this.expr(e.a, c)})`;
        if (e.op === '!') return py`(0 if ${this.cond(e.a, c)} else 1)`;
        return py`_rt.bitnot(${this.expr(e.a, c)})`;
      case 'cond':
        return py`(${this.expr(e.a, c)} if ${this.cond(e.c, c)} else ${this.expr(e.b, c)})`;
      case 'state':
        if (e.name === 'maxNodes') this.uses.add('_max_nodes');
        return STATE[e.name];
      case 'rt':
        return py`_rt.${RT[e.fn]}(${pyJoin(
          e.args.map((a) => this.expr(a, c)),
          ', ',
        )})`;
      case 'call':
        return py`${name(e.fn)}(${pyJoin(
          [py`_rt`, ...e.args.map((a) => this.expr(a, c))],
          ', ',
        )})`;
      case 'enumName': {
        const x = this.expr(e.e, c);
        return py`${this.k.enumNames(e.enum)}.get(${x}, str(${x}))`;
      }
      case 'memo':
        return py`_rt.memo(${pyJoin([pyStr(e.key), name(e.fn), ...e.args.map((a) => this.expr(a, c))], ', ')})`;
      case 'shared':
        return py`_rt.shared(${pyJoin([pyStr(e.key), name(e.fn), ...e.args.map((a) => this.expr(a, c))], ', ')})`;
      case 'visitor':
        return this.visitor(e, c);
      case 'visit':
        return py`visit(${this.expr(e.e, c)})`;
      case 'item':
        return py`${this.expr(e.of, c)}[${e.i}]`;
    }
  }

  private bin(op: string, a: LExpr, b: LExpr, c: Ctx): Py {
    if (COMPARE[op] || op === '&&' || op === '||') return py`(1 if ${this.cond({ k: 'bin', op: op as '==', a, b }, c)} else 0)`;
    const x = this.expr(a, c);
    const y = this.expr(b, c);
    if (ARITH[op]) return py`(${x} ${ARITH[op]} ${y})`;
    // A mask that is a small non-negative constant: Python's own & gives the 64-bit answer.
    if (op === '&' && surelyBelow63(b)) return py`(${x} & ${y})`;
    if (op === '/') return py`_rt.div(${x}, ${y})`;
    if (op === '%') return py`_rt.mod(${x}, ${y})`;
    return py`_rt.bitop(${pyStr(op)}, ${x}, ${y})`;
  }

  /** A visitor: a def written before the statement that passes it. */
  private visitor(e: Extract<LExpr, { k: 'visitor' }>, c: Ctx): Py {
    const fn = py`_visit${++this.visitors}`;
    const inner = c.ind + '    ';
    const outer = [...assigned(e.body)].filter((n) => n !== e.param && !declared(e.body).has(n));
    c.pre.push(
      this.line(c.ind, py`def ${fn}(${name(e.param)}):`),
      ...(outer.length ? [this.line(inner, py`nonlocal ${pyJoin(outer.map(name), ', ')}`)] : []),
      ...this.block(e.body, inner),
    );
    return fn;
  }
}


/** The variables statements assign with `set` (not inside nested visitors: they declare their own). */
function assigned(ss: LStmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(ss, (s) => {
    if (s.k === 'set') out.add(s.name);
  });
  return out;
}

/** The variables statements declare (`let`, a stack): the visitor's own. */
function declared(ss: LStmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(ss, (s) => {
    if (s.k === 'let' || s.k === 'stack' || s.k === 'map') out.add(s.name);
  });
  return out;
}

function walkStmts(ss: LStmt[], f: (s: LStmt) => void): void {
  for (const s of ss) {
    f(s);
    if (s.k === 'if') {
      walkStmts(s.then, f);
      walkStmts(s.else, f);
    } else if (s.k === 'loop') walkStmts(s.body, f);
    else if (s.k === 'try') {
      walkStmts(s.body, f);
      walkStmts(s.finally, f);
    } else if (s.k === 'catch') {
      walkStmts(s.body, f);
      walkStmts(s.handler, f);
    }
  }
}
