/**
 * The schema is validated once, by generators/schema.ts, and every error
 * names file:line:col. Each bad case below edits one place of a small
 * valid schema; the expected line and column were counted by hand on the
 * edited text (for an expression: the column of the offending token).
 */
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TExpr } from '../generators/ir.ts';
import { SchemaError } from '../generators/ir.ts';
import { checkPointerExpr, weightKind } from '../generators/schema.ts';
import { loadSchema, parseSchema } from '../printers/checked-schema.ts';

const root = join(fileURLToPath(import.meta.url), '../..');

// Line numbers, for counting positions:
//  1 xwalk / 6 node_t.next / 7 node_t.value / 12 root_t.list / 14 root_t.nodes
//  17 global root / 19 walk nodes / 21 its yields / 23 view list / 26 root r
//  28 column count / 29 column sum
const BASE = `xwalk: 1
pack: t
types:
  node_t:
    fields:
      next: ptr node_t
      value: uint
      d.last: ptr u_char
      d.end: ptr u_char
  root_t:
    fields:
      list: ptr node_t
      n: int
      nodes: ptr ptr node_t
      head: node_t
globals:
  root: root_t
walks:
  nodes:
    of: root_t
    yields: chain(self.list, next)
views:
  lst:
    of: root_t
    roots:
      r: '&root'
    columns:
      count: count(nodes(self))
      sum: sum(nodes(self), it.value)
`;

/** BASE with line n (1-based) replaced by text, which may span several lines. */
function edit(n: number, text: string): string {
  const lines = BASE.split('\n');
  if (n < 1 || n > lines.length) throw new Error(`no line ${n}`);
  lines[n - 1] = text;
  return lines.join('\n');
}

function schemaError(text: string): SchemaError {
  try {
    parseSchema(text, 't.yaml');
  } catch (err) {
    if (err instanceof SchemaError) return err;
    throw err;
  }
  throw new Error('the schema was accepted');
}

/** The schema fails at t.yaml:where with a message that includes fragment. */
function fails(t: Test, name: string, text: string, where: string, fragment: string | RegExp): void {
  t.test(name, async (t) => {
    const err = schemaError(text);
    t.equal(err.message.slice(0, err.message.indexOf(': ')), `t.yaml:${where}`, err.message);
    t.equal(`${err.pos.line}:${err.pos.col}`, where);
    t.match(err.detail, fragment);
    t.notMatch(err.message, /\n/, 'one line');
  });
}

t.test('the base schema is valid', async (t) => {
  const pack = parseSchema(BASE, 't.yaml');
  t.same([...pack.structs.keys()], ['node_t', 'root_t']);
  t.same([...pack.views.keys()], ['lst']);
  t.same(pack.views.get('lst')!.columns.map((c) => c.name), ['count', 'sum']);
  t.same(pack.views.get('lst')!.pos, { file: 't.yaml', line: 23, col: 3 });
  t.same(pack.structs.get('root_t')!.fields.get('nodes')!.pos, { file: 't.yaml', line: 14, col: 7 });
});

t.test('malformed YAML', async (t) => {
  fails(t, 'a key indented less than its siblings', edit(7, '     value: uint'), '7:1', 'All mapping items must start at the same column');
  fails(t, 'a key indented more than its siblings', edit(7, '        value: uint'), '6:13', 'YAML: ');
  // YAML notices the missing quote where the text ends (line 30 is the empty last line).
  fails(t, 'an unclosed quote', edit(26, "      r: '&root"), '30:1', "Missing closing 'quote");
  fails(t, 'a duplicate field', edit(7, '      next: uint'), '7:7', 'Map keys must be unique');
  fails(t, 'a duplicate view', edit(29, '      sum: sum(nodes(self), it.value)\n  lst:\n    of: root_t\n    columns:\n      x: self'), '30:3', 'Map keys must be unique');
  fails(t, 'not a mapping', '- xwalk: 1\n', '1:1', 'a schema is a YAML mapping');
});

t.test('the top level', async (t) => {
  fails(t, 'no xwalk: 1', edit(1, ''), '2:1', "a schema starts with 'xwalk: 1'");
  fails(t, 'another language version', edit(1, 'xwalk: 2'), '1:8', "a schema starts with 'xwalk: 1'");
  fails(t, 'an unknown top-level key', edit(1, 'xwalk: 1\nbogus: 2'), '2:1', "unknown key 'bogus' in the schema (expected one of: xwalk, pack,");
  fails(t, 'no pack name', edit(2, 'pack:'), '2:6', 'pack must be a C identifier');
  fails(t, 'a pack name that is not an identifier', edit(2, 'pack: my-pack'), '2:7', 'pack must be a C identifier (letters, digits, _), not "my-pack"');
  fails(t, 'no views', BASE.slice(0, BASE.indexOf('views:')), '1:1', 'the schema has no views: section');
  fails(t, 'an empty types section', 'xwalk: 1\npack: t\ntypes:\nviews:\n', '3:7', 'types: maps C type names to their fields');
});

t.test('unknown keys in a type, a walk, a view', async (t) => {
  fails(t, 'type', edit(5, '    fieldz:'), '5:5', "unknown key 'fieldz' in type node_t (expected one of: doc, object, fields)");
  fails(t, 'walk', edit(20, '    off: root_t'), '20:5', "unknown key 'off' in walk nodes (expected one of: doc, of, params, yields)");
  fails(t, 'view', edit(27, '    colums:'), '27:5', "unknown key 'colums' in view lst (expected one of: doc, aliases, of, let, roots, columns, checks, instant, splices, stack, weight, weighs, counters)");
  fails(t, 'check', edit(29, '      sum: self.n\n    checks:\n      - expr: self.n > 0\n        msg: hi'), '32:9', "unknown key 'msg' in a check");
});

t.test('counters: number columns of the view', async (t) => {
  fails(t, 'not a column', edit(29, '      sum: self.n\n    counters: [nope]'), '30:16', 'view lst: counters: "nope" is not one of its number columns (count, sum)');
  fails(t, 'not a list', edit(29, '      sum: self.n\n    counters: sum'), '30:15', 'view lst: counters: is a list of its number columns that count up');
});

t.test('instant: what the kernel cannot read at a sample is refused at load, where it is written', async (t) => {
  const instant = (x: string) => edit(29, `      sum: self.n\n    instant:\n      - self.n\n      - ${x}`);
  t.ok(parseSchema(edit(29, '      sum: self.n\n    instant:\n      - self.n'), 't.yaml').views.get('lst')!.instant.length === 1, 'a read of memory: accepted');
  fails(t, 'text built in user space', instant('cat("n=", self.n)'), '32:9', 'view lst: instant: the kernel cannot run this: cat() builds text or asks user space (text)');
  fails(t, 'the clock', instant('now_ms()'), '32:9', 'the kernel cannot run this: clock() builds text or asks user space (the clock)');
});

t.test('splices: native_stack needs its columns and instant:', async (t) => {
  fails(t, 'another value', edit(29, '      sum: self.n\n    splices: python'), '30:14', 'splices: says what the view\'s rows splice into: native_stack');
  fails(t, 'columns missing', edit(29, '      sum: self.n\n      vm: self.n\n    instant: [self.n]\n    splices: native_stack'), '32:14', 'splices: native_stack needs the columns frames, kinds, entry_ends, caller_lines, top_line, entry_sps, vm_pc');
  fails(t, 'no instant', edit(29, ['      vm: self.n', '      frames: self.n', '      kinds: self.n', '      entry_ends: self.n', '      caller_lines: self.n', '      top_line: self.n', '      entry_sps: self.n', '      vm_pc: self.n', '    splices: native_stack'].join('\n')), '37:14', 'splices: native_stack needs instant:');
});

t.test('objects: the shared objects types and globals may come from', async (t) => {
  const withObjects = (objects: string, typeLine = '    fields:', global = '  root: root_t') =>
    edit(17, global).replace('types:\n', `${objects}types:\n`).replace('  node_t:\n    fields:', `  node_t:\n${typeLine}`);
  const ok = parseSchema(withObjects('objects:\n  lj:\n    doc: a library\n    file: libx.so.2\n', '    object: lj\n    fields:', '  root: {type: root_t, object: lj}'), 't.yaml');
  t.same(ok.objects.get('lj'), { name: 'lj', doc: 'a library', file: 'libx.so.2', pos: ok.objects.get('lj')!.pos }, 'an object: its file');
  t.equal(ok.structs.get('node_t')!.object, 'lj', 'a type of the object');
  t.equal(ok.structs.get('root_t')!.object, undefined, "and one of the program's own");
  t.equal(ok.globals.get('root')!.object, 'lj', 'a global of the object, in the long form');
  fails(t, 'a type of an unknown object', withObjects('', '    object: lj\n    fields:'), '5:13', "type node_t: unknown object 'lj' (the schema has no objects: section)");
  fails(t, 'a global of an unknown object', withObjects('objects:\n  lj: {file: libx.so}\n', '    fields:', '  root: {type: root_t, object: lk}'), '19:32', "global root: unknown object 'lk' (objects: lj)");
  fails(t, 'an object without a file', withObjects('objects:\n  lj: {doc: d}\n'), '4:7', 'object lj needs file: (the name it is mapped by, e.g. libluajit-5.1.so.2)');
  fails(t, 'a file with a folder', withObjects('objects:\n  lj: {file: /usr/lib/libx.so}\n'), '4:14', "object lj's file is a file name without a folder (letters, digits and . _ + -), not '/usr/lib/libx.so'");
  fails(t, 'a global without its type', withObjects('objects:\n  lj: {file: libx.so}\n', '    fields:', '  root: {object: lj}'), '19:9', 'global root needs type:');
});

t.test('field types', async (t) => {
  fails(t, 'ptr alone', edit(7, '      value: ptr'), '7:14', "'ptr' needs the type it points to");
  fails(t, 'ptr to a non-name', edit(7, '      value: ptr 9x'), '7:14', "'9x' is not a type name");
  fails(t, 'a scalar without ptr', edit(7, '      value: u8'), '7:14', "'u8' needs a pointer: write 'ptr u8'");
  fails(t, 'C syntax', edit(7, '      value: int *'), '7:14', "cannot read type 'int *'");
  fails(t, 'ptr between names', edit(7, '      value: ptr const node_t'), '7:14', "cannot read type 'ptr const node_t'");
  fails(t, 'no type at all', edit(7, '      value:'), '7:13', 'the type of node_t.value must be a string');
  fails(t, 'a field of an unknown type', edit(6, '      next: ptr nod_t'), '6:13', "unknown type 'nod_t' (declare it under types:, or use ptr void)");
  fails(t, 'an array with no count', edit(7, '      value: char[]'), '7:14', "'char[]' needs its number of elements: T[N] (a flexible array member cannot be declared; use ptr T and array())");
  fails(t, 'an array of no elements', edit(7, '      value: u32[0]'), '7:14', "an array member has 1 to 16777216 elements");
  fails(t, 'an array of int', edit(7, '      value: int[4]'), '7:14', "write the element's size: i32[N], u64[N], char[N]");
  fails(t, 'an array of void', edit(7, '      value: void[4]'), '7:14', 'void has no elements');
  fails(t, 'an array of an unknown type', edit(7, '      value: nod_t[2]'), '7:14', "unknown type 'nod_t'");
  fails(t, 'an array of fnptr', edit(7, '      value: fnptr[2]'), '7:14', "an array's elements are a scalar (u8, char, i32...), ptr T or a struct");
  fails(t, 'ptr ptr of an unknown type', edit(14, '      nodes: ptr ptr nod_t'), '14:14', "unknown type 'nod_t'");
  fails(t, 'an embedded member of an unknown type', edit(15, '      head: nod_t'), '15:13', "unknown type 'nod_t'");
  fails(t, 'a global of an unknown type', edit(17, '  root: rooot_t'), '17:9', "unknown type 'rooot_t'");
  fails(t, 'a walk of an unknown type', edit(20, '    of: rooot_t'), '20:9', "unknown type 'rooot_t' (declared: node_t, root_t)");
  fails(t, 'a view of an unknown type', edit(24, '    of: rooot_t'), '24:9', "unknown type 'rooot_t' (declared: node_t, root_t)");
  fails(t, 'a member and its own part', edit(9, '      d: ptr u_char'), '9:7', 'node_t.d overlaps node_t.d.last: declare leaf members only');
  fails(t, 'a part declared after the member', edit(7, '      value: uint\n      next.x: uint'), '8:7', 'node_t.next.x overlaps node_t.next');
  fails(t, 'a member name that is not C', edit(7, '      va-lue: uint'), '7:7', "'va-lue' is not a C member name");
  fails(t, 'a type named like a scalar', edit(4, '  u_char:'), '4:3', "'u_char' is a built-in type name");
  fails(t, 'a type named int', edit(4, '  int:'), '4:3', "'int' is a built-in type name");
});

t.test('names that are not identifiers', async (t) => {
  fails(t, 'a view ngx-pool', edit(23, '  ngx-pool:'), '23:3', 'a view name must be a C identifier (letters, digits, _), not "ngx-pool"');
  fails(t, 'a type "a b"', edit(4, '  a b:'), '4:3', 'a type name must be a C identifier (letters, digits, _), not "a b"');
  fails(t, 'a column __import__', edit(29, "      __import__('os'): self.n"), '29:7', `a column name must be a C identifier (letters, digits, _), not "__import__('os')"`);
  fails(t, 'a root label with a quote', edit(26, `      "r'x": '&root'`), '26:7', `a root label must be a C identifier (letters, digits, _), not "r'x"`);
  fails(t, 'a column with a newline', edit(28, '      "a\\nb": count(nodes(self))'), '28:7', 'a column name must be a C identifier (letters, digits, _), not "a\\nb"');
  fails(t, 'a walk name that is a number', edit(19, '  42:'), '19:3', 'a walk name must be a C identifier (letters, digits, _), not 42');
  fails(t, 'a global name with a dot', edit(17, '  ro.ot: root_t'), '17:3', 'a global name must be a C identifier');
  fails(t, 'a global named self', edit(17, '  self: root_t'), '17:3', "a global cannot be named 'self'");
  fails(t, 'a walk named like a builtin', edit(19, '  chain:'), '19:3', 'walk chain has the name of a builtin function');
  fails(t, 'a walk named like a global', edit(19, '  root:'), '19:3', 'walk root has the name of a global');
});

t.test('expression syntax', async (t) => {
  // `      sum: ` is 11 characters: the expression starts at column 12.
  fails(t, 'an unexpected character', edit(29, '      sum: sum(nodes(self), it.$value)'), '29:32', 'unexpected character "$"');
  fails(t, "a missing ')'", edit(28, '      count: count(nodes(self)'), '28:31', "expected ')' but found the end of the expression");
  fails(t, 'trailing tokens', edit(28, '      count: count(nodes(self)) self'), '28:33', "unexpected 'self' after the expression");
  fails(t, 'a number too large', edit(29, '      sum: sum(nodes(self), it.value + 99999999999999999999)'), '29:40', 'number 99999999999999999999 is too large (limit 2^53)');
  fails(t, 'a number too large, alone', edit(29, '      sum: 99999999999999999999'), '29:12', 'number 99999999999999999999 is too large');
  fails(t, 'a bad number', edit(29, '      sum: self.n + 12ab'), '29:21', "bad number '12ab'");
  fails(t, 'a missing field name', edit(29, '      sum: self. + 1'), '29:18', "expected a field name after '.' but found '+'");
  fails(t, 'a missing operand', edit(29, '      sum: self.n *'), '29:20', 'expected a value but found the end of the expression');
  fails(t, 'nested too deeply', edit(29, `      sum: ${'('.repeat(70)}1${')'.repeat(70)}`), '29:76', 'expression nested too deeply');
  fails(t, 'inside quotes', edit(29, "      sum: 'self.n + $'"), '29:22', 'unexpected character "$"');
  fails(t, 'an empty expression', edit(29, '      sum:'), '29:11', 'expected an expression');
  fails(t, 'a list instead of an expression', edit(29, '      sum: [1, 2]'), '29:12', 'expected an expression');
});

t.test('expressions written on several lines point into the right line', async (t) => {
  fails(t, 'folded block', edit(29, '      sum: >-\n        sum(nodes(self),\n            it.valu)'), '31:16', "node_t has no field 'valu'");
  fails(t, 'literal block', edit(29, '      sum: |\n        sum(nodes(self),\n          it.valu)'), '31:14', "node_t has no field 'valu'");
  fails(t, 'plain', edit(29, '      sum: sum(nodes(self),\n        it.valu)'), '30:12', "node_t has no field 'valu'");
  fails(t, 'double-quoted', edit(29, '      sum: "sum(nodes(self),\n        it.valu)"'), '30:12', "node_t has no field 'valu'");
  fails(t, 'a syntax error at the end', edit(29, '      sum: >-\n        sum(nodes(self),\n          it.value'), '31:19', "expected ')' but found the end");
  fails(t, 'a block header with a comment', edit(29, '      sum: >- # the sum\n        self.n + $'), '30:18', 'unexpected character "$"');
});

t.test('type errors', async (t) => {
  fails(t, 'an unknown name', edit(29, '      sum: sum(nodes(self), it.value + nothing)'), '29:40', "unknown name 'nothing' (use self, it, NULL or a global: root)");
  fails(t, 'an unknown field', edit(29, '      sum: sum(nodes(self), it.valu)'), '29:32', "node_t has no field 'valu' in the schema (declared: next, value, d.last, d.end)");
  fails(t, 'an unknown field through ->', edit(29, '      sum: self->list->valu'), '29:24', "node_t has no field 'valu'");
  fails(t, '.x on an integer', edit(29, '      sum: sum(nodes(self), it.value.x)'), '29:38', "'.x' needs a struct, but this is uint");
  fails(t, '* on a void pointer', edit(28, "      count: '*cast(self.list, void)'"), '28:15', "'*' needs a typed pointer, but this is ptr void");
  fails(t, '[] on an integer', edit(28, '      count: self.n[1]'), '28:20', "'[]' needs a typed pointer, but this is int");
  fails(t, 'pointer + pointer', edit(28, '      count: self.list + self.list'), '28:24', "'+' between ptr node_t and ptr node_t: pointer arithmetic is ptr ± int");
  fails(t, 'pointer * int', edit(28, '      count: self.list * 2'), '28:24', "'*' between ptr node_t and uint");
  fails(t, '& on a number', edit(28, "      count: '&1'"), '28:15', "'&' needs a field, an element or a struct");
  fails(t, '- on a pointer', edit(28, '      count: -self.list'), '28:14', "'-' needs an integer, but this is ptr node_t");
  fails(t, 'a string in arithmetic', edit(28, '      count: 1 + str(self.head.d.last, 4)'), '28:16', "the right side of '+' must be a number or pointer, but this is string");
  fails(t, 'count() with no argument', edit(28, '      count: count()'), '28:14', 'count() takes 1 to 2 arguments: count(walk) or count(walk, condition on it)');
  fails(t, 'sizeof() with two', edit(28, '      count: sizeof(node_t, 1)'), '28:14', 'sizeof() takes 1 argument: sizeof(type)');
  fails(t, 'a walk with two arguments', edit(28, '      count: count(nodes(self, self))'), '28:20', 'walk nodes() takes one argument: a pointer to root_t');
  fails(t, 'a walk given another struct', edit(28, '      count: count(nodes(self.list))'), '28:31', 'the argument of nodes() must point to root_t, but it is ptr node_t');
  fails(t, 'an unknown function', edit(28, '      count: toString(self)'), '28:14', "unknown function 'toString'");
  fails(t, 'a prototype name as a function', edit(28, '      count: __proto__(self)'), '28:14', "unknown function '__proto__'");
  fails(t, 'chain() over a field of another type', edit(21, '    yields: chain(self.list, value)'), '21:30', 'chain() follows a field of type ptr node_t, but node_t.value is uint');
  fails(t, 'chain() from an integer', edit(21, '    yields: chain(self.n, next)'), '21:24', 'chain() starts from a struct pointer, but this is int');
  fails(t, 'chain() over a field that is not declared', edit(21, '    yields: chain(self.list, nxt)'), '21:30', "node_t has no field 'nxt'");
  fails(t, 'a column that is part of a member', edit(28, '      count: self.head.d'), '28:14', 'column count must be a value, but it is part of node_t.d');
  fails(t, 'a partial member used as a value', edit(28, '      count: self.head.d + 1'), '28:26', "the left side of '+' must be a number or pointer, but this is part of node_t.d");
  fails(t, 'it outside an aggregate', edit(28, '      count: it.value'), '28:14', "'it' is only bound inside each(), filter(), count()");
  fails(t, 'self in a root', edit(26, '      r: self'), '26:10', "'self' has no meaning here");
  fails(t, 'sum() of a string', edit(29, '      sum: sum(nodes(self), str(it.d.last, 2))'), '29:29', 'sum() needs a number for each element, but this is string');
  fails(t, 'both kinds in ?:', edit(29, "      sum: 'self.n ? self.n : str(self.head.d.last, 2)'"), '29:20', "both branches of '?:' must be values of one kind, not int and string");
  fails(t, 'a check that is not a condition', edit(29, '      sum: self.n\n    checks:\n      - expr: str(self.head.d.last, 2)'), '31:15', 'a check must be a condition, but this is string');
  fails(t, 'a walk in arithmetic', edit(21, '    yields: chain(self.list, next) + 1'), '21:36', "the left side of '+' must be a number or pointer, but this is sequence of ptr node_t");
});

t.test('walks that call themselves', async (t) => {
  fails(t, 'directly', edit(21, '    yields: nodes(self)'), '21:13', 'walk nodes calls itself (nodes → nodes)');
  fails(t, 'through another walk', edit(21, '    yields: each(other(self), it)\n  other:\n    of: root_t\n    yields: nodes(self)'), '21:18', 'calls itself (other → nodes → other)');
});

t.test('roots and binary.version', async (t) => {
  fails(t, 'a root of the wrong struct', edit(26, '      r: root.list'), '26:10', 'root r of view lst must yield root_t pointers, but it yields ptr node_t');
  fails(t, 'a root walk of the wrong struct', edit(26, '      r: nodes(&root)'), '26:10', 'root r of view lst must yield root_t pointers, but it yields ptr node_t');
  fails(t, 'a root that is a number', edit(26, '      r: 4096'), '26:10', 'must yield root_t pointers, but it yields uint');
  fails(t, 'binary.version with no capture group', edit(2, "pack: t\nbinary:\n  version: 'nginx/[0-9.]+'"), '4:13', 'binary.version: a pattern needs exactly one capture group: the text it finds (the release, e.g. (\\d+\\.\\d+\\.\\d+))');
  fails(t, 'binary.version with two groups', edit(2, "pack: t\nbinary:\n  version: '(nginx)/([0-9.]+)'"), '4:21', 'binary.version: a pattern has exactly one capture group');
  fails(t, 'binary.version that is not a pattern', edit(2, "pack: t\nbinary:\n  version: 'nginx/([0-9.]+'"), '4:19', 'binary.version: an unclosed (');
  // Patterns that would make a backtracking engine take exponential or quadratic time are not patterns here.
  fails(t, 'a repeated group', edit(2, "pack: t\nbinary:\n  version: '([\\s\\S]*)*Q9Z7'"), '4:22', 'binary.version: a capture group cannot be repeated');
  fails(t, 'alternation', edit(2, "pack: t\nbinary:\n  version: 'v(\\d+|x)'"), '4:18', "binary.version: '|' is not allowed in a pattern");
  fails(t, 'a lookahead', edit(2, "pack: t\nbinary:\n  version: '(?=a)(b)'"), '4:13', 'binary.version: (? groups are not allowed');
  fails(t, 'a backreference', edit(2, "pack: t\nbinary:\n  version: '(a)\\1'"), '4:16', 'binary.version: \\1 is not allowed in a pattern');
  fails(t, 'a huge repeat', edit(2, "pack: t\nbinary:\n  version: '(a{1,5000})'"), '4:15', 'binary.version: a quantifier counts up to 1000');
  fails(t, 'a pattern that matches nothing', edit(2, "pack: t\nbinary:\n  version: 'x?(\\d*)'"), '4:13', 'binary.version: a pattern must match at least one character');
  fails(t, 'binary that is not a mapping', edit(2, 'pack: t\nbinary: nginx'), '3:9', 'binary: is a mapping');
  const ok = parseSchema(edit(2, "pack: t\nbinary:\n  version: 'nginx/([0-9.]+)'"), 't.yaml');
  t.equal(ok.versionPattern?.text, 'nginx/([0-9.]+)');
});

t.test('both real packs load', async (t) => {
  const walkee = loadSchema(join(root, 'packs/walkee/schema.yaml'));
  t.equal(walkee.name, 'walkee');
  t.same([...walkee.views.keys()], ['ngx_pool', 'walkee_list', 'walkee_sum', 'walkee_array', 'walkee_kvs', 'walkee_jobs', 'walkee_timers', 'walkee_bst', 'walkee_arrays', 'walkee_name', 'walkee_pool_memory']);
  t.same(walkee.structs.get('walkee_root_t')!.fields.get('pools')!.type, { k: 'ptr', to: { k: 'ptr', to: { k: 'struct', name: 'ngx_pool_t' } } });
  const nginx = loadSchema(join(root, 'packs/nginx/schema.yaml'));
  t.equal(nginx.name, 'nginx');
  t.equal(nginx.versionPattern?.text, 'nginx/(\\d+\\.\\d+\\.\\d+)');
  t.same([...nginx.views.keys()], ['ngx_pool', 'ngx_cycle_pool', 'ngx_connection_totals', 'ngx_connections', 'ngx_requests', 'ngx_request_time', 'ngx_worker', 'ngx_status', 'ngx_timers', 'ngx_shm_zones', 'ngx_memory_cycle', 'ngx_memory_connections', 'ngx_memory_requests', 'ngx_memory_zones', 'ngx_listening', 'ngx_open_files', 'ngx_phase_handlers', 'ngx_filters', 'lua_vm', 'lua_requests', 'lua_backtrace', 'lua_objects', 'lua_tables', 'lua_held_by', 'lua_references', 'lua_table', 'lua_stacks', 'lua_entries']);
  t.equal(nginx.signaturePattern?.text, '(\\d+,\\d+,\\d+,[01]{30,})');
  t.same(nginx.views.get('ngx_pool')!.roots.map((r) => r.label), ['cycle', 'connection', 'request']);
  // The folded (>-) active_requests walk keeps its text (its more-indented line keeps its newline).
  t.match(nginx.walks.get('active_requests')!.text, /^each\(filter\(used_connections\(self\), .*\),\s+cast\(it\.data, ngx_http_request_t\)\)$/);
  const missing = (() => {
    try {
      loadSchema(join(root, 'packs/none/schema.yaml'));
    } catch (err) {
      return err as SchemaError;
    }
  })();
  t.match(missing?.message, /packs\/none\/schema\.yaml:1:1: cannot read the schema/);
});

/** The one column of a view made of BASE plus `expr` as column x (line 29). */
function column(expr: string): TExpr {
  const pack = parseSchema(edit(29, `      x: ${expr}`), 't.yaml');
  return pack.views.get('lst')!.columns.find((c) => c.name === 'x')!.expr;
}

t.test('what type-checks', async (t) => {
  t.test('ptr ptr T: deref and index', async (t) => {
    t.same(parseSchema(BASE, 't.yaml').structs.get('root_t')!.fields.get('nodes')!.type, { k: 'ptr', to: { k: 'ptr', to: { k: 'struct', name: 'node_t' } } });
    const deref = column('count(chain(*self.nodes, next))');
    t.match(deref, { op: 'aggregate', fn: 'count', seq: { op: 'walk', walk: { w: 'chain', first: { op: 'deref', pointee: { k: 'ptr', to: { k: 'struct', name: 'node_t' } }, type: { k: 'ptr', to: { k: 'struct', name: 'node_t' } } } } } });
    t.match(column('self.nodes[2]->value'), { op: 'field', struct: 'node_t', field: 'value', base: { op: 'index', type: { k: 'ptr', to: { k: 'struct', name: 'node_t' } } } });
    t.match(column('count(array(self.nodes, self.n))'), { seq: { type: { k: 'seq', elem: { k: 'ptr', to: { k: 'struct', name: 'node_t' } } } } });
  });
  t.test('dotted members resolve', async (t) => {
    t.match(column('self.head.d.last'), { op: 'field', struct: 'node_t', field: 'd.last', base: { op: 'field', struct: 'root_t', field: 'head', type: { k: 'ref', name: 'node_t' } } });
    t.match(column('self.list->d.end - self.list->d.last'), { op: 'binary', o: '-', type: { k: 'int', signed: true }, left: { field: 'd.end' }, right: { field: 'd.last' } });
    t.match(column("'&self.head.d.last'"), { op: 'addrof', struct: 'node_t', field: 'd.last', type: { k: 'ptr', to: { k: 'ptr', to: { k: 'int', size: 1, signed: false } } } });
    const err = schemaError(edit(29, '      x: self.head.d.lst'));
    t.match(err.message, "t.yaml:29:22: node_t has no field 'd.lst'");
  });
  t.test('a walk is inlined with self bound to its argument', async (t) => {
    t.match(column('count(nodes(self))'), { seq: { walk: { w: 'chain', struct: 'node_t', next: 'next', first: { op: 'field', field: 'list', base: { op: 'var', slot: 0 } } } } });
    t.match(column('count(nodes(&root))'), { seq: { walk: { first: { op: 'field', field: 'list', base: { op: 'cast', arg: { op: 'global', name: 'root' } } } } } });
    t.match(column("'count(nodes(self.list->next ? &root : self))'"), { seq: { walk: { first: { base: { op: 'cond' } } } } });
  });
  t.test('aggregates and their it', async (t) => {
    t.match(column('min(nodes(self), it.value)'), { op: 'aggregate', fn: 'min', slot: 1, body: { op: 'field', base: { op: 'var', slot: 1 } }, type: { k: 'int', signed: false } });
    t.match(column('max(nodes(self), -it.value)'), { fn: 'max', type: { k: 'int', signed: true } });
    t.match(column('all(nodes(self), it.value > 1)'), { fn: 'all', body: { op: 'binary', o: '>' } });
    t.match(column('any(nodes(self), it == self.list)'), { fn: 'any' });
    t.match(column('count(nodes(self), it.value)'), { fn: 'count', body: { field: 'value' } });
    t.match(column('count(filter(nodes(self), it.value > 1))'), { seq: { walk: { w: 'filter', slot: 1 }, type: { k: 'seq', elem: { k: 'ptr' } } } });
    t.match(column('sum(each(nodes(self), it.value * 2), it)'), { slot: 2, seq: { walk: { w: 'each', slot: 1 }, type: { k: 'seq', elem: { k: 'int' } } }, body: { op: 'var', slot: 2 } });
    // each() whose body is a walk flattens; the inner it is the innermost one.
    const nested = column('sum(each(nodes(self), chain(it, next)), count(nodes(self), it.value > 0))');
    t.match(nested, { slot: 2, seq: { type: { k: 'seq', elem: { k: 'ptr', to: { name: 'node_t' } } } }, body: { op: 'aggregate', slot: 3, body: { left: { base: { slot: 3 } } } } });
    const pack = parseSchema(edit(29, '      x: sum(each(nodes(self), chain(it, next)), count(nodes(self), it.value > 0))'), 't.yaml');
    t.equal(pack.views.get('lst')!.slots, 4, 'self and three its');
    t.match(column("'count(nodes(self), it.value) ? sizeof(node_t) : offsetof(node_t, d.end)'"), { op: 'cond', then: { op: 'sizeof' }, else: { op: 'offsetof', field: 'd.end' } });
  });
  t.test('checks', async (t) => {
    const pack = parseSchema(edit(29, '      sum: self.n\n    checks:\n      - expr: all(nodes(self), it.value < 10)\n        message: values are small\n      - expr: self.n >= 0'), 't.yaml');
    t.same(pack.views.get('lst')!.checks.map((c) => [c.message, c.pos.line, c.pos.col]), [
      ['values are small', 31, 9],
      ['check failed', 33, 9],
    ]);
  });
});

t.test('checkPointerExpr (xsample --addr)', async (t) => {
  const pack = parseSchema(BASE, 't.yaml');
  t.same(checkPointerExpr(pack, 'root_t', '0x7f0012345678'), { op: 'cast', arg: { op: 'num', value: 0x7f0012345678, type: { k: 'int', signed: false } }, type: { k: 'ptr', to: { k: 'struct', name: 'root_t' } } });
  t.match(checkPointerExpr(pack, 'node_t', 'root.list'), { op: 'field', struct: 'root_t', field: 'list', base: { op: 'global', name: 'root' } });
  t.match(checkPointerExpr(pack, 'node_t', '*root.nodes'), { op: 'deref' });
  t.match(checkPointerExpr(pack, 'root_t', '&root'), { op: 'cast', type: { k: 'ptr', to: { name: 'root_t' } } });
  t.match(checkPointerExpr(pack, 'node_t', 'cast(root.head.d.last, void)'), { op: 'cast', type: { k: 'ptr', to: { k: 'struct', name: 'node_t' } } });
  const err = (text: string, struct = 'root_t') => {
    try {
      checkPointerExpr(pack, struct, text);
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };
  t.equal(err('root.list'), '--addr:1:1: --addr must point to root_t, but it is ptr node_t');
  t.equal(err('root.lisst'), "--addr:1:6: root_t has no field 'lisst' in the schema (declared: list, n, nodes, head)");
  t.equal(err('root.list + $'), '--addr:1:13: unexpected character "$"');
  t.equal(err('self'), "--addr:1:1: 'self' has no meaning here");
  t.equal(err('nodes(&root)', 'node_t'), '--addr:1:1: --addr must point to node_t, but it is sequence of ptr node_t');
});

t.test('view aliases and the reserved column name', async (t) => {
  const withAlias = BASE.replace('views:\n  lst:\n', 'views:\n  lst:\n    aliases: [lists, all_lists]\n');
  t.not(withAlias, BASE);
  t.same(parseSchema(withAlias, 't.yaml').views.get('lst')!.aliases, ['lists', 'all_lists']);
  t.throws(() => parseSchema(withAlias.replace('[lists, all_lists]', '[lst]'), 't.yaml'), /lst already names a view or an alias/);
  t.throws(() => parseSchema(withAlias.replace('[lists, all_lists]', '[ngx-pools]'), 't.yaml'), /an alias must be a C identifier/);
});

t.test('the clock: now_ms() and monotonic_ms(), and what they read on a core', async (t) => {
  const withClock = edit(2, 'pack: t\nclock:\n  doc: the program keeps its time in root.n\n  now_ms: root.n * 1000\n  monotonic_ms: root.n')
    .replace('      sum: sum(nodes(self), it.value)', "      sum: sum(nodes(self), it.value)\n  aged:\n    of: root_t\n    roots:\n      r: '&root'\n    columns:\n      age: now_ms() - self.n");
  const pack = parseSchema(withClock, 't.yaml');
  t.same(Object.keys(pack.clock!.exprs), ['now_ms', 'monotonic_ms']);
  t.equal(pack.clock!.doc, 'the program keeps its time in root.n');
  t.same([...pack.views.values()].map((v) => [v.name, v.clock]), [['lst', false], ['aged', true]], 'a view that reads the clock says so');
  t.equal(parseSchema(BASE, 't.yaml').clock, null, 'no clock: section, no clock on a core');
  fails(t, 'now_ms() with an argument', edit(29, '      sum: now_ms(1)'), '29:12', 'now_ms() takes 0 arguments');
  fails(t, 'a clock without doc', edit(2, 'pack: t\nclock:\n  now_ms: root.n'), '4:3', "clock: needs doc: what the program's time is");
  fails(t, 'an unknown clock', edit(2, 'pack: t\nclock:\n  doc: d\n  today: root.n'), '5:3', "unknown key 'today' in clock (expected one of: doc, now_ms, monotonic_ms)");
  fails(t, 'a clock that reads the clock', edit(2, 'pack: t\nclock:\n  doc: d\n  now_ms: now_ms() + 1'), '5:11', 'clock now_ms is what now_ms() reads on a core: it cannot read the clock itself');
  fails(t, 'a clock that is not a number', edit(2, 'pack: t\nclock:\n  doc: d\n  now_ms: str(root.list, 1)'), '5:11', 'clock now_ms must be a number of milliseconds, but this is string');
  fails(t, 'a clock that reads self', edit(2, 'pack: t\nclock:\n  doc: d\n  now_ms: self.n'), '5:11', "'self' has no meaning here");
});

t.test("processes: a master's workers hold the state", async (t) => {
  const pack = parseSchema(edit(2, "pack: t\nbinary:\n  master: '^t: master'\n  worker: '^t: worker'"), 't.yaml');
  t.same(pack.processes, { master: '^t: master', worker: '^t: worker' });
  fails(t, 'a master pattern that is no regular expression', edit(2, "pack: t\nbinary:\n  master: '('"), '4:11', 'binary.master is not a valid regular expression');
  fails(t, 'a worker without a master', edit(2, "pack: t\nbinary:\n  worker: 'w'"), '4:3', "binary.worker goes with binary.master");
  fails(t, 'a column named pid', edit(29, '      pid: self.n'), '29:7', "'pid' is reserved: every row already says which process it was read from");
});

// A walk with parameters: the names of a type and a field, given at each call.
const PARAMS = edit(19, '  nodes:\n    of: root_t\n    params: [T, link]\n    yields: chain(cast(self.list, T), link)\n  unused:').replace('count(nodes(self))', 'count(nodes(self, node_t, next))').replace('sum(nodes(self), it.value)', 'sum(nodes(self, node_t, next), it.value)');

t.test('walks with parameters', async (t) => {
  const pack = parseSchema(PARAMS, 't.yaml');
  t.same(pack.walks.get('nodes')!.params, ['T', 'link']);
  const sum = pack.views.get('lst')!.columns.find((c) => c.name === 'sum')!.expr;
  t.same(sum.type, { k: 'int', signed: false }, 'the call is checked with node_t and next in place of T and link');
  const callAt = (expr: string) => PARAMS.replace('sum(nodes(self, node_t, next), it.value)', expr);
  fails(t, 'too few arguments', callAt('count(nodes(self))'), '33:18', 'walk nodes() takes 3 arguments: a pointer to root_t, T, link');
  fails(t, 'a value for a name', callAt('count(nodes(self, node_t, self.n))'), '33:43', 'walk nodes(): link is a name (a type, or a field such as d.next), not a value');
  fails(t, 'a field the type lacks', callAt('count(nodes(self, node_t, value))'), '33:18', 'in walk nodes: chain() follows a field of type ptr node_t, but node_t.value is uint');
  fails(t, 'a parameter named it', PARAMS.replace('[T, link]', '[T, it]'), '21:17', 'walk nodes: the parameter it has the name of what the body binds');
  fails(t, 'a parameter twice', PARAMS.replace('[T, link]', '[T, T]'), '21:17', 'walk nodes: the parameter T is listed twice');
});

t.test('imports: walks from a file of walks', async (t) => {
  const dir = fs.mkdtempSync(join(os.tmpdir(), 'xwalk-imports-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const lib = 'xwalk: 1\ndoc: a library\nwalks:\n  nodes:\n    of: root_t\n    yields: chain(self.list, next)\n  about_other:\n    of: other_t\n    yields: self\n';
  fs.mkdirSync(join(dir, 'p'));
  fs.writeFileSync(join(dir, 'p/lib.yaml'), lib);
  // BASE with imports: on line 16, its own walk nodes left out unless keep.
  const schema = (imports: string, keep = false) => {
    const text = BASE.replace('globals:', `imports: ${imports}\nglobals:`);
    return keep ? text : text.replace(/walks:\n  nodes:\n    of: root_t\n    yields: chain\(self.list, next\)\n/, '');
  };
  fs.writeFileSync(join(dir, 'p/schema.yaml'), schema('[p/lib.yaml]'));
  const pack = loadSchema(join(dir, 'p/schema.yaml'));
  t.same([...pack.walks.keys()], ['nodes'], "the library's walks, but one about a type this schema does not declare");
  t.same(pack.imports.map((i) => i.file), [join(dir, 'p/lib.yaml')], 'found in the folder of packs that holds the schema');
  const loadFails = (name: string, text: string, where: RegExp, fragment: string) =>
    t.test(name, async (t) => {
      fs.writeFileSync(join(dir, 'p/schema.yaml'), text);
      const err = t.throws(() => loadSchema(join(dir, 'p/schema.yaml'))) as SchemaError;
      t.ok(err instanceof SchemaError, err.message);
      t.match(err.message, where);
      t.match(err.detail, fragment);
    });
  loadFails('a file that is not there', schema('[p/nope.yaml]'), /schema\.yaml:16:11: /, `cannot import p/nope.yaml: no such file in ${dir}, `);
  loadFails('an absolute path', schema('[/etc/passwd.yaml]'), /schema\.yaml:16:11: /, "an import names a file of walks in a pack's folder, PACK/FILE.yaml");
  loadFails('a path out of the folders of packs', schema('[../etc.yaml]'), /schema\.yaml:16:11: /, "an import names a file of walks in a pack's folder, PACK/FILE.yaml");
  loadFails('not a list', schema('p/lib.yaml'), /schema\.yaml:16:10: /, 'imports: is a list of files of walks');
  loadFails('a walk defined twice', schema('[p/lib.yaml]', true), /schema\.yaml:20:3: /, 'walk nodes is also defined in');
  // Line 16 holds imports: [] (no import); the column count calls nodes (line 25 once the walk is left out).
  loadFails('a walk of a file of walks not imported says which import brings it', schema('[]'), /schema\.yaml:25:20: /, 'nodes is a walk of p/lib.yaml: add imports: [p/lib.yaml]');
  fs.writeFileSync(join(dir, 'p/bad.yaml'), 'xwalk: 1\nviews: {}\n');
  loadFails('a library with views', schema('[p/bad.yaml]'), /bad\.yaml:2:1: /, "unknown key 'views' in a file of walks");
});

t.test('xwalk: 1 keeps its word: a builtin that became a walk names the fix', async (t) => {
  const call = '      count: count(ngx_queue(&self.head, node_t, next))';
  fails(t, 'ngx_queue without the import', edit(28, call), '28:20', 'ngx_queue() is no longer a builtin (since 706cc0b, 2026-12-01): ngx_queue is a walk of nginx/idioms.yaml: add imports: [nginx/idioms.yaml], or use dlist(&self.head, node_t, next)');
  fails(
    t,
    'imported, but about a type the schema does not declare',
    edit(28, call).replace('globals:', 'imports: [nginx/idioms.yaml]\nglobals:'),
    '29:20',
    'ngx_queue is a walk of nginx/idioms.yaml about ngx_queue_t, which this schema does not declare, so the import leaves it out: declare ngx_queue_t under types:, or use dlist(&self.head, node_t, next)',
  );
  fails(t, 'ngx_array, with its replacement written from the call', edit(28, '      count: count(ngx_array(self.head.value, node_t))'), '28:20', 'or use array(cast(self.head.value.elts, node_t), self.head.value.nelts)');
  fails(t, 'ngx_list', edit(28, '      count: count(ngx_list(&self.head, node_t))'), '28:20', 'add imports: [nginx/idioms.yaml], or use each(chain(&self.head.part, next), array(cast(it.elts, node_t), it.nelts))');
  fails(t, 'rbtree', edit(28, '      count: count(rbtree(self.list, node_t, next))'), '28:20', 'or use each(bintree(self.list.root, left, right, self.list.sentinel), container_of(it, node_t, next))');
  fails(t, 'with other arguments than it took, the import alone', edit(28, '      count: count(ngx_queue(self))'), '28:20', /^ngx_queue\(\) is no longer a builtin \(since 706cc0b, 2026-12-01\): ngx_queue is a walk of nginx\/idioms.yaml: add imports: \[nginx\/idioms.yaml\]$/);
  fails(t, 'a name that never was a builtin or a walk', edit(28, '      count: count(ngx_queues(self))'), '28:20', "unknown function 'ngx_queues' (builtins: ");
});

t.test('stack-shaped views: stack: names columns, weight: a number column, weighs: what it is', async (t) => {
  const stackOf = (lines: string) => parseSchema(BASE.replace('      sum: sum(nodes(self), it.value)', `      sum: sum(nodes(self), it.value)\n${lines}`), 't.yaml').views.get('lst')!.stack;
  t.same(stackOf('    stack: [origin, count]\n    weight: sum'), { frames: ['origin', 'count'], weight: 'sum', leaves: null, weighs: 'samples' }, 'a weight whose name does not say bytes: samples, which add up');
  t.same(stackOf('    stack: [origin]\n    weight: [count, sum]'), { frames: ['origin'], weight: null, leaves: ['count', 'sum'], weighs: 'samples' }, 'weight: a list, one path per column');
  t.same(stackOf('    stack: [origin]'), { frames: ['origin'], weight: null, leaves: null, weighs: 'samples' }, 'no weight: an item weighs 1 a sample, samples');
  t.same(stackOf('    stack: [origin]\n    weight: sum\n    weighs: bytes'), { frames: ['origin'], weight: 'sum', leaves: null, weighs: 'bytes' }, 'weighs: declares it (bytes held: a gauge)');
  t.same(stackOf('    stack: [origin]\n    weight: count\n    weighs: items'), { frames: ['origin'], weight: 'count', leaves: null, weighs: 'items' }, 'items held: a gauge');
  t.same(weightKind(['bytes']), 'bytes', 'a weight named bytes is bytes held');
  t.same(weightKind(['blocks_bytes', 'large_bytes']), 'bytes', 'leaves all in bytes: bytes held');
  t.same(weightKind(['blocks_bytes', 'count']), 'samples', 'not all in bytes: samples');
  t.same(weightKind(['running']), 'samples');
  fails(t, 'weighs: of another kind', BASE.replace('      sum: sum(nodes(self), it.value)', '      sum: sum(nodes(self), it.value)\n    stack: [origin]\n    weighs: seconds'), '31:13', 'view lst: weighs: is one of bytes, items, samples (bytes and items held are averaged over a recording\'s samples, samples add up), not "seconds"');
  fails(t, 'weighs: without a stack', BASE.replace('      sum: sum(nodes(self), it.value)', '      sum: sum(nodes(self), it.value)\n    weighs: bytes'), '30:5', 'view lst: weighs: goes with stack: (what its weight is)');
  t.equal(parseSchema(BASE, 't.yaml').views.get('lst')!.stack, null, 'a table by default');
  fails(t, 'a frame that is not a column', BASE.replace('      sum: sum(nodes(self), it.value)', '      sum: sum(nodes(self), it.value)\n    stack: [origin, nme]'), '30:21', 'view lst: the frame "nme" is not one of its columns (origin, count, sum)');
  fails(t, 'a weight that is not a number', BASE.replace('      sum: sum(nodes(self), it.value)', '      sum: sum(nodes(self), it.value)\n    stack: [count]\n    weight: origin'), '31:13', 'view lst: the weight must be a number column, but origin is the root label');
  fails(t, 'a weight without a stack', BASE.replace('      sum: sum(nodes(self), it.value)', '      sum: sum(nodes(self), it.value)\n    weight: sum'), '30:5', 'view lst: weight: goes with stack: (the frames it weighs)');
});

t.test('flamegraphs: stack-shaped views under one name', async (t) => {
  const stacked = BASE.replace('      sum: sum(nodes(self), it.value)', '      sum: sum(nodes(self), it.value)\n    stack: [origin]\n    weight: sum');
  const pack = parseSchema(`${stacked}flamegraphs:\n  all:\n    doc: Everything.\n    views: [lst]\n`, 't.yaml');
  t.same(pack.flamegraphs.get('all'), { name: 'all', doc: 'Everything.', views: ['lst'], pos: { file: 't.yaml', line: 33, col: 3 } });
  fails(t, 'a view that is a table', `${BASE}flamegraphs:\n  all:\n    views: [lst]\n`, '32:13', 'flame graph all: view lst is a table, not stack-shaped (no stack:)');
  fails(t, 'not a view', `${stacked}flamegraphs:\n  all:\n    views: [nope]\n`, '34:13', 'flame graph all: "nope" is not a view (views: lst)');
  fails(t, 'the name of a view', `${stacked}flamegraphs:\n  lst:\n    views: [lst]\n`, '33:3', 'flame graph lst has the name of a view');
  // Lines 32-39: a second view whose weight's name says bytes (bytes held, a gauge), beside lst's sum (samples, a counter).
  const held = `${stacked}  held:\n    of: root_t\n    roots:\n      r: '&root'\n    columns:\n      bytes: sum(nodes(self), it.value)\n    stack: [origin]\n    weight: bytes\n`;
  t.same(parseSchema(held, 't.yaml').views.get('held')!.stack!.weighs, 'bytes', 'held weighs bytes, lst samples');
  fails(t, 'views that weigh different kinds (bytes held are averaged, samples add)', `${held}flamegraphs:\n  all:\n    views: [lst, held]\n`, '42:18', 'flame graph all: view held weighs bytes, but lst weighs samples: the views of a flame graph weigh one kind (weighs: in a view says which)');
  fails(t, 'a weighs: that says otherwise than the name', `${held.replace('    weight: bytes\n', '    weight: bytes\n    weighs: items\n')}flamegraphs:\n  all:\n    views: [held, lst]\n`, '43:19', 'flame graph all: view lst weighs samples, but held weighs items');
  t.same(parseSchema(`${held.replace('    weight: bytes\n', '    weight: bytes\n    weighs: samples\n')}flamegraphs:\n  all:\n    views: [lst, held]\n`, 't.yaml').flamegraphs.get('all')!.views, ['lst', 'held'], 'the same views, declared of one kind: accepted');
});
