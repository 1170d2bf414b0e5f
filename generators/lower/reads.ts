/**
 * What a function of the loop IR reads of the layout: the structs and
 * globals its code (and every function it calls) names. A view's column
 * that names a struct or global of an object the process does not map (a
 * Lua column of ngx_requests on an nginx without lua-nginx-module) is left
 * out of that process's table, in every back end, by these names.
 */
import type { LExpr, LFunc, LStmt } from './lir.ts';
import type { Pointee } from '../ir.ts';

/** The functions fn calls, directly or not, itself included, and the layout names they read, in order. */
export function reachedFrom(funcs: LFunc[], entries: string[]): { funcs: Set<string>; names: string[] } {
  const byName = new Map(funcs.map((f) => [f.name, f]));
  const seen = new Set<string>();
  const names = new Set<string>();
  const todo = [...entries];
  while (todo.length > 0) {
    const name = todo.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const f = byName.get(name);
    if (!f) throw new Error(`internal: the loop IR calls ${name}, which it does not define`);
    for (const s of f.body) stmt(s, names, todo);
  }
  return { funcs: seen, names: [...names] };
}

/** The functions f calls itself (a call, a row's memo, a sample's shared value), by name, in order, once each. */
export function callees(f: LFunc): string[] {
  const calls: string[] = [];
  for (const s of f.body) stmt(s, new Set(), calls);
  return [...new Set(calls)];
}

function pointee(p: Pointee, names: Set<string>): void {
  if (p.k === 'struct') names.add(p.name);
  else if (p.k === 'ptr') pointee(p.to, names);
}

function expr(e: LExpr, names: Set<string>, calls: string[]): void {
  switch (e.k) {
    case 'off':
    case 'field':
      names.add(e.struct);
      if (e.k === 'field') expr(e.base, names, calls);
      return;
    case 'align':
      names.add(e.struct);
      return;
    case 'size':
      pointee(e.of, names);
      return;
    case 'gint':
      names.add(e.name);
      expr(e.addr, names, calls);
      return;
    case 'rt':
      if (e.fn === 'global' && e.args[0]?.k === 'str') names.add(e.args[0].v);
      for (const a of e.args) expr(a, names, calls);
      return;
    case 'enumName':
    case 'load':
      expr(e.k === 'load' ? e.addr : e.e, names, calls);
      return;
    case 'bin':
      expr(e.a, names, calls);
      expr(e.b, names, calls);
      return;
    case 'un':
      expr(e.a, names, calls);
      return;
    case 'cond':
      expr(e.c, names, calls);
      expr(e.a, names, calls);
      expr(e.b, names, calls);
      return;
    case 'memo':
    case 'shared':
    case 'call':
      calls.push(e.fn);
      for (const a of e.args) expr(a, names, calls);
      return;
    case 'visitor':
      for (const s of e.body) stmt(s, names, calls);
      return;
    case 'visit':
      expr(e.e, names, calls);
      return;
    case 'at':
      expr(e.i, names, calls);
      return;
    case 'mapGet':
      expr(e.key, names, calls);
      return;
    case 'item':
      expr(e.of, names, calls);
      return;
    case 'int':
    case 'str':
    case 'var':
    case 'none':
    case 'hasEnum':
    case 'depth':
    case 'pop':
    case 'state':
      return;
  }
}

function stmt(s: LStmt, names: Set<string>, calls: string[]): void {
  const block = (ss: LStmt[]) => ss.forEach((x) => stmt(x, names, calls));
  switch (s.k) {
    case 'let':
    case 'set':
    case 'push':
    case 'expr':
    case 'throw':
      expr(s.e, names, calls);
      return;
    case 'addVisited':
      expr(s.n, names, calls);
      return;
    case 'mapSet':
      expr(s.key, names, calls);
      expr(s.e, names, calls);
      return;
    case 'if':
      expr(s.c, names, calls);
      block(s.then);
      block(s.else);
      return;
    case 'loop':
      block(s.body);
      return;
    case 'return':
      if (s.e) expr(s.e, names, calls);
      return;
    case 'fail':
      for (const a of s.args) expr(a.e, names, calls);
      return;
    case 'try':
      block(s.body);
      block(s.finally);
      return;
    case 'catch':
      block(s.body);
      block(s.handler);
      return;
    case 'stack':
    case 'map':
    case 'break':
    case 'readsOf':
      return;
  }
}
