/**
 * The loop IR: what a view, a printer or a clock becomes once lowered
 * (lower.ts), and all the back ends see of it. It is small on purpose:
 * variables, loads of memory, exact integer arithmetic, loops, failures
 * with a message written once, and calls of the few runtime helpers that
 * touch the debugger or the symbol tables. A printer (printers/js.ts,
 * printers/py.ts, printers/bpf/) only spells it; every decision about idioms,
 * bounds, cycles and messages was taken here.
 *
 * Integers are exact: a constant is a bigint, and every back end computes
 * with exact integers (JS: numbers while they are exact, bigints past
 * 2^53; Python: its own ints). Bit operations are 64-bit two's complement.
 * Layout facts (offsets, sizes) are symbolic: a printer resolves them per
 * build.
 */
import type { ClockName, Pointee } from '../ir.ts';

export type BinOp = '+' | '-' | '*' | '/' | '%' | '==' | '!=' | '<' | '<=' | '>' | '>=' | '&&' | '||' | '&' | '|' | '^' | '<<' | '>>';

/** Runtime helpers: what a walk asks of the debugger or the binary beyond loading bytes. */
export type RtFn =
  | 'string' // (data, len): text of len bytes, escaped, cut at 4096
  | 'cstring' // (data): a NUL-terminated string, escaped, cut at 1024
  | 'cstringn' // (data, n): the text of a char[n], up to its first NUL, escaped
  | 'symbol' // (addr): the ELF symbol at addr, or 0x..., or NULL
  | 'file_static' // (fn, name): the address of a static of fn's C file, or 0
  | 'global' // (name): a global's address, or a walk error
  | 'clock' // (name): the sample's clock
  | 'cat' // (parts...): texts and integers (in decimal) joined
  | 'hex' // (n): a non-negative integer in lowercase hexadecimal, no prefix (an IPv6 group)
  | 'register'; // (name): a register of the target's first thread, or 0 where the reader has none

export type LExpr =
  | { k: 'int'; v: bigint }
  | { k: 'str'; v: string } // text of ours (a name, a message), never read from memory
  | { k: 'var'; name: string }
  | { k: 'none' } // no value: max() of nothing
  /** A layout fact, resolved per build. */
  | { k: 'off'; struct: string; field: string }
  | { k: 'size'; of: Pointee }
  /** 1 when this build's layout carries the enumerators of the enum, else 0 (an older layout). */
  | { k: 'hasEnum'; enum: string }
  /** The name of e's enumerator of the enum in this build (the first declared of that value), else e in decimal. */
  | { k: 'enumName'; enum: string; e: LExpr }
  /** The struct's alignment, at most 8 (what a pointer to it must be a multiple of). */
  | { k: 'align'; struct: string }
  /** An integer of `size` bytes at addr. */
  | { k: 'load'; addr: LExpr; size: number; signed: boolean }
  /** An integer field of the struct at base: its size, and where a bitfield sits, from the layout. */
  | { k: 'field'; base: LExpr; struct: string; field: string; signed: boolean }
  /** The integer global at addr: its size from the layout. */
  | { k: 'gint'; addr: LExpr; name: string; signed: boolean }
  /** How many elements a stack holds; the top one, taken off. */
  | { k: 'depth'; stack: string }
  | { k: 'pop'; stack: string }
  /** Element i (from 0, the first pushed) of a stack: with a stack and an index, a queue. */
  | { k: 'at'; stack: string; i: LExpr }
  /** The value a map keeps under key, or -1 when it keeps none. */
  | { k: 'mapGet'; map: string; key: LExpr }
  /** small: a counter or a step count, bounded by --max-nodes: exact in any back end's plainest integer (no overflow check). */
  | { k: 'bin'; op: BinOp; a: LExpr; b: LExpr; small?: boolean }
  | { k: 'un'; op: '-' | '!' | '~'; a: LExpr }
  | { k: 'cond'; c: LExpr; a: LExpr; b: LExpr }
  /** The sample's budget and limits. */
  | { k: 'state'; name: 'visited' | 'maxNodes' | 'maxTotal' }
  | { k: 'rt'; fn: RtFn; args: LExpr[] }
  /**
   * The value of the value function fn of args, computed at most once per row of a view (a view's let:):
   * the runtime keeps it under key until the next row. A call that fails is not kept (it fails again).
   */
  | { k: 'memo'; key: string; fn: string; args: LExpr[] }
  /**
   * The value of the value function fn of args, computed at most once per sample: the runtime keeps it
   * under key and args until the next sample (a breadth-first reach that every row of a view asks of).
   */
  | { k: 'shared'; key: string; fn: string; args: LExpr[] }
  /** A function of this program; a seq function takes a visitor last and returns whether it ran to the end. */
  | { k: 'call'; fn: string; args: LExpr[] }
  /** A visitor for a seq function: (param) => body, which returns false to stop the walk. */
  | { k: 'visitor'; param: string; body: LStmt[] }
  /** The visitor of the seq function being defined: whether the consumer wants more. */
  | { k: 'visit'; e: LExpr }
  /** Element i of a list a function returned (a stack: a grouped fold's record of results). */
  | { k: 'item'; of: LExpr; i: number };

export type ErrorKind = 'cycle' | 'limit' | 'corrupt' | 'unavailable';

/** An argument of a message: printed as hex (an address) or decimal. */
export interface MsgArg {
  e: LExpr;
  as: 'hex' | 'dec';
}

export type LStmt =
  | { k: 'let'; name: string; e: LExpr }
  | { k: 'set'; name: string; e: LExpr }
  | { k: 'addVisited'; n: LExpr } // the sample's budget: visited += n
  | { k: 'stack'; name: string } // a new, empty stack (also a list: a column may return one)
  | { k: 'push'; stack: string; e: LExpr }
  /** A new, empty map from integers (addresses) to values: a seen set of a breadth-first reach (reach.ts). */
  | { k: 'map'; name: string }
  | { k: 'mapSet'; map: string; key: LExpr; e: LExpr }
  | { k: 'if'; c: LExpr; then: LStmt[]; else: LStmt[] }
  | { k: 'loop'; body: LStmt[] }
  | { k: 'break' }
  | { k: 'return'; e: LExpr | null }
  /** A walk error. msg has {0}, {1}... for the args; the text is written here once. */
  | { k: 'fail'; kind: ErrorKind; msg: string; args: MsgArg[] }
  | { k: 'try'; body: LStmt[]; finally: LStmt[] }
  /**
   * A walk failure (a walk error, or a read that faulted; nothing else: a
   * target gone, a bug, goes on up) in body is bound to err and handler
   * runs. What a grouped fold keeps for each of its aggregates.
   */
  | { k: 'catch'; body: LStmt[]; err: string; handler: LStmt[] }
  /**
   * The reads from here on are of these columns of the view (by index; -1: its items and checks), for a
   * sampler that tells which columns read memory that changed (a fold's aggregates, each its own columns'):
   * a back end that checks no change ignores it.
   */
  | { k: 'readsOf'; columns: number[] }
  /** The failure a catch bound, raised again (where an aggregate a fold kept as failed is read). */
  | { k: 'throw'; e: LExpr }
  | { k: 'expr'; e: LExpr };

/** value: returns a value; seq: calls its visitor with each element, returns false when the visitor stopped it. */
export interface LFunc {
  name: string;
  kind: 'value' | 'seq';
  params: string[];
  body: LStmt[];
}

/** What the result of a column is, for printing: an address in hex, or the value as it is. */
export type ColumnKind = 'addr' | 'value';

export interface LView {
  name: string;
  /** What its items are (a struct, or a scalar): a view of a struct the process cannot read fails as a whole. */
  of: string;
  funcs: LFunc[];
  /** Seq functions of no parameter (and a visitor). */
  roots: { label: string; fn: string }[];
  /**
   * Value functions of self; a list column's returns a stack of its elements, each shown as `kind` says.
   * reads: the structs and globals it names (reads.ts): where one is of an object the process does not map,
   * the column is left out of the table, when the view's roots and checks can be read.
   */
  columns: { name: string; fn: string; kind: ColumnKind; list: boolean; reads: string[] }[];
  checks: { message: string; fn: string }[];
  /** Value functions of self the kernel runs at the instant of a sample (a view's instant:), recording what they load. */
  instant: string[];
}

/** A standalone expression of self (a printer, the clock): its functions, and the one to call. */
export interface LProgram {
  funcs: LFunc[];
  entry: string;
}

// ---- building ----

export const int = (v: number | bigint): LExpr => ({ k: 'int', v: BigInt(v) });
export const v = (name: string): LExpr => ({ k: 'var', name });
export const bin = (op: BinOp, a: LExpr, b: LExpr): LExpr => ({ k: 'bin', op, a, b });
export const load64 = (addr: LExpr): LExpr => ({ k: 'load', addr, size: 8, signed: false });
export const add = (a: LExpr, b: LExpr): LExpr => (b.k === 'int' && b.v === 0n ? a : bin('+', a, b));
export const let_ = (name: string, e: LExpr): LStmt => ({ k: 'let', name, e });
export const set = (name: string, e: LExpr): LStmt => ({ k: 'set', name, e });
export const if_ = (c: LExpr, then: LStmt[], els: LStmt[] = []): LStmt => ({ k: 'if', c, then, else: els });
export const fail = (kind: ErrorKind, msg: string, ...args: MsgArg[]): LStmt => ({ k: 'fail', kind, msg, args });
export const hexArg = (e: LExpr): MsgArg => ({ e, as: 'hex' });
export const decArg = (e: LExpr): MsgArg => ({ e, as: 'dec' });

/** A node of the loop IR as a key: its JSON, a bigint written with its n. */
export const jsonOf = (x: unknown): string => JSON.stringify(x, (_, val: unknown) => (typeof val === 'bigint' ? `${val}n` : val));
