/**
 * The schema's expression language: C-like, small, and total.
 *
 *   expr   := cond
 *   cond   := or ('?' expr ':' expr)?
 *   or     := and ('||' and)*          and := bitor ('&&' bitor)*
 *   bitor  := bitxor ('|' bitxor)*     bitxor := bitand ('^' bitand)*
 *   bitand := eq ('&' eq)*             eq  := rel (('=='|'!=') rel)*
 *   rel    := shift (('<'|'<='|'>'|'>=') shift)*
 *   shift  := add (('<<'|'>>') add)*   add := mul (('+'|'-') mul)*
 *   mul    := unary (('*'|'/'|'%') unary)*
 *   unary  := ('-'|'!'|'~'|'*'|'&') unary | postfix
 *   postfix:= primary ('.' name | '->' name | '[' expr ']')*
 *   primary:= number | "text" | name | name '(' args ')' | '(' expr ')'
 *
 * Offsets in nodes are character offsets into the expression text, so
 * errors can name file:line:col.
 */

export type Expr =
  | { kind: 'num'; value: number; at: number }
  | { kind: 'text'; value: string; at: number }
  | { kind: 'name'; name: string; at: number }
  | { kind: 'member'; base: Expr; name: string; at: number }
  | { kind: 'index'; base: Expr; index: Expr; at: number }
  | { kind: 'unary'; op: string; arg: Expr; at: number }
  | { kind: 'binary'; op: string; left: Expr; right: Expr; at: number }
  | { kind: 'cond'; test: Expr; then: Expr; else: Expr; at: number }
  | { kind: 'call'; callee: string; args: Expr[]; at: number };

export class ExprSyntaxError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

interface Token {
  t: 'num' | 'text' | 'name' | 'op' | 'end';
  v: string;
  at: number;
}

const OPS = ['->', '<<', '>>', '<=', '>=', '==', '!=', '&&', '||', '+', '-', '*', '/', '%', '<', '>', '!', '~', '&', '|', '^', '?', ':', '.', '(', ')', '[', ']', ','];

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const num = /^(0x[0-9a-fA-F]+|[0-9]+)/.exec(src.slice(i));
    if (num) {
      if (/^[A-Za-z_]/.test(src.slice(i + num[0].length))) throw new ExprSyntaxError(`bad number '${src.slice(i).split(/[^\w]/)[0]}'`, i);
      out.push({ t: 'num', v: num[0], at: i });
      i += num[0].length;
      continue;
    }
    if (c === '"') {
      const text = /^"([\x20-\x21\x23-\x5b\x5d-\x7e]*)"/.exec(src.slice(i));
      if (!text) throw new ExprSyntaxError('a text is written in double quotes, of printable characters other than " and \\', i);
      if (text[1].length > MAX_TEXT) throw new ExprSyntaxError(`a text of more than ${MAX_TEXT} characters`, i);
      out.push({ t: 'text', v: text[1], at: i });
      i += text[0].length;
      continue;
    }
    const name = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
    if (name) {
      out.push({ t: 'name', v: name[0], at: i });
      i += name[0].length;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new ExprSyntaxError(`unexpected character ${JSON.stringify(c)}`, i);
    out.push({ t: 'op', v: op, at: i });
    i += op.length;
  }
  out.push({ t: 'end', v: '', at: src.length });
  return out;
}

/** A text in an expression is a label of ours (a separator, a name for a number), never data: short. */
const MAX_TEXT = 256;

const BINARY_LEVELS: string[][] = [
  ['||'],
  ['&&'],
  ['|'],
  ['^'],
  ['&'],
  ['==', '!='],
  ['<', '<=', '>', '>='],
  ['<<', '>>'],
  ['+', '-'],
  ['*', '/', '%'],
];

const MAX_DEPTH = 64;
/** Bounds on an expression, so that checking and compiling it never exhausts the stack or the time. */
const MAX_TOKENS = 2000;
const MAX_TREE_DEPTH = 128;

export function parseExpr(src: string): Expr {
  const toks = tokenize(src);
  if (toks.length > MAX_TOKENS) throw new ExprSyntaxError(`expression too long: more than ${MAX_TOKENS} tokens (write a walk in walks:)`, toks[MAX_TOKENS].at);
  const e = parseTokens(toks);
  checkTreeDepth(e);
  return e;
}

/** Chains (a + b + c ..., a.b.c ...) are parsed by loops but make deep trees: each level is a check and a compile call. */
function checkTreeDepth(root: Expr): void {
  const stack: [Expr, number][] = [[root, 1]];
  while (stack.length > 0) {
    const [e, d] = stack.pop()!;
    if (d > MAX_TREE_DEPTH) throw new ExprSyntaxError(`expression nested too deeply (more than ${MAX_TREE_DEPTH} levels)`, e.at);
    for (const child of Object.values(e)) {
      if (Array.isArray(child)) for (const c of child) stack.push([c as Expr, d + 1]);
      else if (child && typeof child === 'object' && 'kind' in child) stack.push([child as Expr, d + 1]);
    }
  }
}

function parseTokens(toks: Token[]): Expr {
  let pos = 0;
  let depth = 0;
  const peek = () => toks[pos];
  const isOp = (v: string) => peek().t === 'op' && peek().v === v;
  const expect = (v: string) => {
    if (!isOp(v)) throw new ExprSyntaxError(`expected '${v}' but found ${describe(peek())}`, peek().at);
    pos++;
  };

  function expr(): Expr {
    if (++depth > MAX_DEPTH) throw new ExprSyntaxError('expression nested too deeply', peek().at);
    const e = cond();
    depth--;
    return e;
  }

  function cond(): Expr {
    const test = binary(0);
    if (!isOp('?')) return test;
    const at = peek().at;
    pos++;
    const then = expr();
    expect(':');
    return { kind: 'cond', test, then, else: expr(), at };
  }

  function binary(level: number): Expr {
    if (level === BINARY_LEVELS.length) return unary();
    let left = binary(level + 1);
    while (peek().t === 'op' && BINARY_LEVELS[level].includes(peek().v)) {
      const { v: op, at } = toks[pos++];
      left = { kind: 'binary', op, left, right: binary(level + 1), at };
    }
    return left;
  }

  function unary(): Expr {
    const tok = peek();
    if (tok.t === 'op' && ['-', '!', '~', '*', '&'].includes(tok.v)) {
      pos++;
      if (++depth > MAX_DEPTH) throw new ExprSyntaxError('expression nested too deeply', tok.at);
      const arg = unary();
      depth--;
      return { kind: 'unary', op: tok.v, arg, at: tok.at };
    }
    return postfix();
  }

  function postfix(): Expr {
    let e = primary();
    for (;;) {
      const tok = peek();
      if (tok.t === 'op' && (tok.v === '.' || tok.v === '->')) {
        pos++;
        const name = peek();
        if (name.t !== 'name') throw new ExprSyntaxError(`expected a field name after '${tok.v}' but found ${describe(name)}`, name.at);
        pos++;
        e = { kind: 'member', base: e, name: name.v, at: name.at };
      } else if (tok.t === 'op' && tok.v === '[') {
        pos++;
        const index = expr();
        expect(']');
        e = { kind: 'index', base: e, index, at: tok.at };
      } else {
        return e;
      }
    }
  }

  function primary(): Expr {
    const tok = peek();
    if (tok.t === 'num') {
      pos++;
      const value = Number(tok.v);
      if (!Number.isSafeInteger(value)) throw new ExprSyntaxError(`number ${tok.v} is too large (limit 2^53)`, tok.at);
      return { kind: 'num', value, at: tok.at };
    }
    if (tok.t === 'text') {
      pos++;
      return { kind: 'text', value: tok.v, at: tok.at };
    }
    if (tok.t === 'name') {
      pos++;
      if (!isOp('(')) return { kind: 'name', name: tok.v, at: tok.at };
      pos++;
      const args: Expr[] = [];
      if (!isOp(')')) {
        args.push(expr());
        while (isOp(',')) {
          pos++;
          args.push(expr());
        }
      }
      expect(')');
      return { kind: 'call', callee: tok.v, args, at: tok.at };
    }
    if (isOp('(')) {
      pos++;
      const e = expr();
      expect(')');
      return e;
    }
    throw new ExprSyntaxError(`expected a value but found ${describe(tok)}`, tok.at);
  }

  const e = expr();
  if (peek().t !== 'end') throw new ExprSyntaxError(`unexpected ${describe(peek())} after the expression`, peek().at);
  return e;
}

function describe(tok: Token): string {
  return tok.t === 'end' ? 'the end of the expression' : `'${tok.v}'`;
}

/**
 * An expression written back as text (for a message that shows the call to
 * write instead): operands that are not atoms are put in parentheses.
 */
export function exprSource(e: Expr): string {
  const atom = (x: Expr): string => (['num', 'text', 'name', 'member', 'index', 'call'].includes(x.kind) ? exprSource(x) : `(${exprSource(x)})`);
  switch (e.kind) {
    case 'num':
      return String(e.value);
    case 'text':
      return JSON.stringify(e.value);
    case 'name':
      return e.name;
    case 'member':
      return `${atom(e.base)}.${e.name}`;
    case 'index':
      return `${atom(e.base)}[${exprSource(e.index)}]`;
    case 'unary':
      return `${e.op}${atom(e.arg)}`;
    case 'binary':
      return `${atom(e.left)} ${e.op} ${atom(e.right)}`;
    case 'cond':
      return `${atom(e.test)} ? ${atom(e.then)} : ${atom(e.else)}`;
    case 'call':
      return `${e.callee}(${e.args.map(exprSource).join(', ')})`;
  }
}
