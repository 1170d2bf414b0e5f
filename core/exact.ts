/**
 * Exact integers in JavaScript, as the loop IR wants them: a value is a
 * number while it is exact (|v| < 2^53) and a bigint past that, always in
 * that one form, so === compares exactly and a column prints the same
 * digits as Python's int. The fast path (two numbers, a result in range)
 * is one typeof test each and one comparison; V8 inlines it.
 */
export type Int = number | bigint;

/** Whether v is an exact integer (a number or a bigint), as values read from memory are. */
export const isInt = (v: unknown): v is Int => typeof v === 'number' || typeof v === 'bigint';

const MAX = 9007199254740991;
const MAXN = 9007199254740991n;
const U64 = (1n << 64n) - 1n;

/** The one form of an exact integer: a number when it fits. */
export function norm(b: bigint): Int {
  return b <= MAXN && b >= -MAXN ? Number(b) : b;
}

const big = (a: Int): bigint => (typeof a === 'bigint' ? a : BigInt(a));

export function add(a: Int, b: Int): Int {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a + b;
    if (r <= MAX && r >= -MAX) return r;
  }
  return norm(big(a) + big(b));
}

export function sub(a: Int, b: Int): Int {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a - b;
    if (r <= MAX && r >= -MAX) return r;
  }
  return norm(big(a) - big(b));
}

export function mul(a: Int, b: Int): Int {
  if (typeof a === 'number' && typeof b === 'number') {
    const r = a * b;
    if (r <= MAX && r >= -MAX) return r;
  }
  return norm(big(a) * big(b));
}

/** C's division: toward zero (the divisor was checked for zero where the loop IR asked). */
export function div(a: Int, b: Int): Int {
  return norm(big(a) / big(b));
}

/** C's remainder: the sign of the dividend. */
export function mod(a: Int, b: Int): Int {
  return norm(big(a) % big(b));
}

export function neg(a: Int): Int {
  return typeof a === 'number' ? -a : norm(-a);
}

/** A 64-bit result read as two's complement: with bit 63 set it is negative (so that masks like ~7 stay exact). */
function int64(x: bigint): Int {
  return norm(BigInt.asIntN(64, x));
}

/** 64-bit two's complement bit operations; a shift of 64 or more is 0 (C leaves it undefined). */
export function bit(op: string, a: Int, b: Int): Int {
  const x = big(a) & U64;
  const y = big(b) & U64;
  switch (op) {
    case '&':
      return int64(x & y);
    case '|':
      return int64(x | y);
    case '^':
      return int64(x ^ y);
    case '<<':
      return y >= 64n ? 0 : int64(x << y);
    default:
      return y >= 64n ? 0 : int64(x >> y);
  }
}

/** a & m for a mask 0 <= m < 2^31 (an alignment check): the low bits, with no bigint for a number. */
export function andSmall(a: Int, m: number): number {
  return typeof a === 'number' ? a & m : Number(BigInt.asUintN(64, a) & BigInt(m));
}

export function bnot(a: Int): Int {
  return int64(~big(a) & U64);
}

/** An address in hex, as Python prints it: a negative one as its 64-bit two's complement. */
export function hex(a: Int): string {
  const b = big(a);
  return '0x' + (b < 0n ? BigInt.asUintN(64, b) : b).toString(16);
}
