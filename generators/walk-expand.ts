/**
 * Walk expansion: a named walk's body with its parameters replaced by the
 * names a call gives for them, before it is checked where it is called.
 */
import type { Expr } from './expr-parse.ts';
import type { WalkDefIR } from './ir.ts';
import { ExprError } from './typed-expr.ts';

/**
 * A walk's body with its parameters replaced by what a call gives for them:
 * names (a type, a field, dotted if nested), never values, so nothing the
 * caller writes is evaluated where the body binds self or it.
 */
export function withParams(def: WalkDefIR, ast: Expr, args: Expr[]): Expr {
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

/** The dotted member path an expression names (a, a.b), or null when it is not one. */
export function memberPath(e: Expr): string | null {
  if (e.kind === 'name') return e.name;
  if (e.kind === 'member') {
    const base = memberPath(e.base);
    return base === null ? null : `${base}.${e.name}`;
  }
  return null;
}
