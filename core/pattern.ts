/**
 * Patterns that find a release or a build signature in a binary
 * (binary.version, binary.signature). A schema is input someone else may
 * write, and a backtracking regex engine can take exponential time on a
 * pattern like ([\s\S]*)*Q, or quadratic time on a plain \d+\. over a long
 * run of digits. So patterns are a small subset of regular expressions,
 * compiled here into a program for a Pike VM (sampler/pattern-vm.ts, and
 * the same machine in the Python runtime): linear in the bytes scanned,
 * whatever the pattern, and the same answer in every back end.
 *
 * The subset: literal characters; escapes \d \D \w \W \s \S and escaped
 * punctuation; `.` (any byte); classes [a-z0-9_] and [^...]; the
 * quantifiers ? * + {n} {n,} {n,m} (greedy, n and m up to 1000) on a single
 * character or class; exactly one capture group ( ... ), not quantified
 * and not nested. No alternation, anchors, backreferences or lookaround.
 * A pattern must match at least one character.
 */

export type Instr =
  | ['char', string] // a set of bytes: 64 hex digits, bit b of the 256-bit number is byte b
  | ['split', number, number] // try the first, then the second (greedy: the first is "more")
  | ['jmp', number]
  | ['save', number] // 0/1: the match; 2/3: the capture
  | ['match'];

export interface Program {
  instrs: Instr[];
  /** Bytes a match can start with (hex, as a char set): the scan skips everything else. */
  first: string;
}

export class PatternError extends Error {
  constructor(
    message: string,
    readonly at: number,
  ) {
    super(message);
  }
}

const MAX_REPEAT = 1000;
const MAX_INSTRS = 20_000;

type ByteSet = Uint8Array; // 256 entries of 0/1

const setOf = (pred: (b: number) => boolean): ByteSet => Uint8Array.from({ length: 256 }, (_, b) => (pred(b) ? 1 : 0));
const DIGIT = setOf((b) => b >= 0x30 && b <= 0x39);
const WORD = setOf((b) => (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) || b === 0x5f);
const SPACE = setOf((b) => b === 0x20 || (b >= 0x09 && b <= 0x0d));
const ANY = setOf(() => true);
const not = (s: ByteSet): ByteSet => s.map((x) => 1 - x);
const union = (a: ByteSet, b: ByteSet): ByteSet => a.map((x, i) => x | b[i]);

function hexOf(s: ByteSet): string {
  let out = '';
  for (let i = 252; i >= 0; i -= 4) out += ((s[i + 3] << 3) | (s[i + 2] << 2) | (s[i + 1] << 1) | s[i]).toString(16);
  return out;
}

const CLASS_ESCAPES: Record<string, ByteSet> = { d: DIGIT, D: not(DIGIT), w: WORD, W: not(WORD), s: SPACE, S: not(SPACE) };

interface Item {
  set: ByteSet;
  min: number;
  max: number; // Infinity: unbounded
}

/** Parses and compiles a pattern; a PatternError says what is not allowed and where. */
export function compilePattern(text: string): Program {
  const items: (Item | 'open' | 'close')[] = [];
  let i = 0;
  let groups = 0;
  let depth = 0;
  const fail = (m: string, at = i): never => {
    throw new PatternError(m, at);
  };
  const byte = (at: number): number => {
    const c = text.charCodeAt(at);
    if (c > 0xff) fail(`'${text[at]}' is not a byte: patterns match single bytes (latin-1)`, at);
    return c;
  };
  const escape = (): ByteSet => {
    const c = text[i + 1];
    if (c === undefined) fail('a pattern cannot end in a backslash');
    i += 2;
    if (CLASS_ESCAPES[c]) return CLASS_ESCAPES[c];
    if (/[A-Za-z0-9]/.test(c)) fail(`\\${c} is not allowed in a pattern (\\d \\w \\s, their capitals, and escaped punctuation are)`, i - 2);
    return setOf((b) => b === byte(i - 1));
  };
  const charClass = (): ByteSet => {
    const start = i;
    i++;
    const negate = text[i] === '^';
    if (negate) i++;
    let set = setOf(() => false);
    let first = true;
    while (text[i] !== ']' || first) {
      first = false;
      if (i >= text.length) fail('an unclosed [ ... ] class', start);
      let lo: number;
      if (text[i] === '\\') {
        const e = escape();
        if (e.reduce((n, x) => n + x, 0) !== 1) {
          set = union(set, e);
          continue;
        }
        lo = e.indexOf(1);
      } else lo = byte(i++);
      if (text[i] === '-' && text[i + 1] !== ']' && i + 1 < text.length) {
        i++;
        const hi = text[i] === '\\' ? escape().indexOf(1) : byte(i++);
        if (hi < lo) fail('a class range runs backwards', i - 1);
        set = union(set, setOf((b) => b >= lo && b <= hi));
      } else set = union(set, setOf((b) => b === lo));
    }
    i++;
    return negate ? not(set) : set;
  };
  const quantifier = (): [number, number] => {
    const c = text[i];
    if (c === '?') return i++, [0, 1];
    if (c === '*') return i++, [0, Infinity];
    if (c === '+') return i++, [1, Infinity];
    if (c !== '{') return [1, 1];
    const m = /^\{(\d{1,4})(,(\d{0,4}))?\}/.exec(text.slice(i));
    if (!m) fail('a { quantifier is {n}, {n,} or {n,m}');
    const min = Number(m![1]);
    const max = m![2] === undefined ? min : m![3] === '' ? Infinity : Number(m![3]);
    if (min > MAX_REPEAT || (max !== Infinity && max > MAX_REPEAT)) fail(`a quantifier counts up to ${MAX_REPEAT}`);
    if (max < min) fail('a quantifier {n,m} needs n <= m');
    i += m![0].length;
    return [min, max];
  };
  while (i < text.length) {
    const c = text[i];
    if (c === '(') {
      if (text[i + 1] === '?') fail('(? groups are not allowed in a pattern: one plain capture group');
      if (depth > 0) fail('capture groups cannot be nested');
      if (++groups > 1) fail('a pattern has exactly one capture group');
      depth++;
      i++;
      items.push('open');
      continue;
    }
    if (c === ')') {
      if (depth === 0) fail('an unmatched )');
      depth--;
      i++;
      if (i < text.length && '?*+{'.includes(text[i])) fail('a capture group cannot be repeated');
      items.push('close');
      continue;
    }
    if ('|^$'.includes(c)) fail(`'${c}' is not allowed in a pattern (no alternation or anchors)`);
    if ('?*+{'.includes(c)) fail(`'${c}' must follow a character or a class`);
    if (c === ']' || c === '}') fail(`an unmatched ${c}`);
    const set = c === '\\' ? escape() : c === '[' ? charClass() : c === '.' ? (i++, ANY) : (i++, setOf((b) => b === byte(i - 1)));
    const at = i;
    const [min, max] = quantifier();
    if (text[i] === '?' && at !== i) fail('lazy quantifiers are not allowed in a pattern');
    items.push({ set, min, max });
  }
  if (depth > 0) fail('an unclosed (', text.lastIndexOf('('));
  if (groups !== 1) fail('a pattern needs exactly one capture group: the text it finds', 0);
  if (items.every((x) => typeof x === 'string' || x.min === 0)) fail('a pattern must match at least one character', 0);
  return compile(items);
}

function compile(items: (Item | 'open' | 'close')[]): Program {
  const out: Instr[] = [['save', 0]];
  const emit = (x: Instr) => {
    if (out.length >= MAX_INSTRS) throw new PatternError('the pattern is too long once its repeats are counted', 0);
    out.push(x);
  };
  for (const it of items) {
    if (it === 'open') {
      emit(['save', 2]);
      continue;
    }
    if (it === 'close') {
      emit(['save', 3]);
      continue;
    }
    const hex = hexOf(it.set);
    for (let k = 0; k < it.min; k++) emit(['char', hex]);
    if (it.max === Infinity) {
      const loop = out.length;
      emit(['split', loop + 1, loop + 3]);
      emit(['char', hex]);
      emit(['jmp', loop]);
    } else if (it.max > it.min) {
      const splits: number[] = [];
      for (let k = it.min; k < it.max; k++) {
        splits.push(out.length);
        emit(['split', out.length + 1, -1]);
        emit(['char', hex]);
      }
      for (const s of splits) (out[s] as ['split', number, number])[2] = out.length;
    }
  }
  emit(['save', 1]);
  emit(['match']);
  return { instrs: out, first: hexOf(firstBytes(out)) };
}

/** The bytes a match can begin with: the char sets reachable from the start without reading. */
function firstBytes(prog: Instr[]): ByteSet {
  let set = setOf(() => false);
  const seen = new Set<number>();
  const visit = (pc: number) => {
    if (seen.has(pc)) return;
    seen.add(pc);
    const x = prog[pc];
    if (x[0] === 'char') set = union(set, setFromHex(x[1]));
    else if (x[0] === 'split') {
      visit(x[1]);
      visit(x[2]);
    } else if (x[0] === 'jmp') visit(x[1]);
    else if (x[0] === 'save') visit(pc + 1);
  };
  visit(0);
  return set;
}

export function setFromHex(hex: string): Uint8Array {
  const s = new Uint8Array(256);
  for (let d = 0; d < 64; d++) {
    const v = parseInt(hex[63 - d], 16);
    for (let bit = 0; bit < 4; bit++) s[d * 4 + bit] = (v >> bit) & 1;
  }
  return s;
}
