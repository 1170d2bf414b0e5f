/**
 * What compiled walks (printers/js.ts) call at run time: the sample's memory
 * (a Snapshot), its budget and limits, and the few helpers that reach
 * beyond bytes: text from memory (escaped), symbols, the clock. One object
 * per sampler, given a new snapshot for each sample, so the compiled code
 * is reused across samples. The semantics of the walks themselves are in
 * the code generated from the loop IR, not here.
 */
import type { ClockName } from '../../generators/ir.ts';
import { clockValue, type ClockReading } from './clock-reading.ts';
import { hex, norm, type Int } from '../../core/exact.ts';
import type { RegisterSource } from '../memory/live-registers.ts';
import { Fault, type Snapshot } from '../memory/snapshot.ts';
import { SHARED_TAG } from '../../core/read-tags.ts';
import { inObject, type Symbols } from '../memory/symbols.ts';
import { type Limits, WalkError, type WalkErrorKind } from '../memory/walk-error.ts';

const MAX_STRING = 4096;
const MAX_CSTRING = 1024;

export class WalkRuntime {
  /** The elements every walk of this sample yielded so far. */
  visited = 0;
  maxNodes: number;
  maxTotal: number;
  clock: ClockReading | null = null;

  constructor(
    public m: Snapshot,
    public symbols: Symbols,
    limits: Limits,
  ) {
    this.maxNodes = limits.maxNodes;
    this.maxTotal = limits.maxTotal;
  }

  /** A fresh sample: its snapshot, the budget spent from zero. */
  reset(m: Snapshot, clock: ClockReading | null): void {
    this.m = m;
    this.visited = 0;
    this.clock = clock;
    this.sampleRegisters = undefined;
    // clear() makes a new table even when empty (see newRow): most samples have none to forget.
    if (this.registersUsed.size) this.registersUsed.clear();
    if (this.sample.size) this.sample.clear();
  }

  /**
   * The same sample walked once more over the memory already read, with the clock read now: the budget spent from
   * zero again, and the values cached for the sample forgotten (one may hold the clock); the registers kept.
   */
  again(clock: ClockReading): void {
    this.visited = 0;
    this.clock = clock;
    if (this.sample.size) this.sample.clear();
  }

  /** A walk error, its message filled in: {i} is the i-th argument, as hex or decimal. */
  fail(kind: WalkErrorKind, msg: string, args: [Int, 'hex' | 'dec'][]): WalkError {
    return new WalkError(kind, msg.replace(/\{(\d+)\}/g, (_, i) => (args[i][1] === 'hex' ? hex(args[i][0]) : String(args[i][0]))));
  }

  /** Whether err is a walk's failure (a walk error, a read that faulted): what a catch of the loop IR keeps, and nothing else. */
  isFailure(err: unknown): boolean {
    return err instanceof WalkError || err instanceof Fault;
  }

  /** bits bits from bit `bit` of the little-endian bytes at addr (a bitfield). */
  bitfield(addr: Int, bit: number, bits: number, signed: boolean): Int {
    const bytes = this.m.bytes(addr, Math.ceil((bit + bits) / 8));
    let x = 0n;
    for (let i = bytes.length - 1; i >= 0; i--) x = (x << 8n) | BigInt(bytes[i]);
    // Exact in bigint: a field of more than 53 bits (int64_t f:60) is not a double.
    let v = (x >> BigInt(bit)) & ((1n << BigInt(bits)) - 1n);
    if (signed && v >= 1n << BigInt(bits - 1)) v -= 1n << BigInt(bits);
    return norm(v);
  }

  /** len bytes at data as text: printable ASCII kept, the rest \xNN; cut at 4096 with "...". */
  string(data: Int, len: Int): string {
    if (!(len > 0)) return '';
    const n = len > MAX_STRING ? MAX_STRING : Number(len);
    const s = escapeBytes(this.m.bytes(data, n));
    return n < len ? s + '...' : s;
  }

  /** The NUL-terminated string at data, escaped; cut at 1024 with "...". */
  cstring(data: Int): string {
    if (data === 0) return '';
    const out: number[] = [];
    for (let i = 0; i < MAX_CSTRING; i++) {
      const c = this.m.u8(typeof data === 'number' ? data + i : data);
      if (c === 0) return escapeBytes(Uint8Array.from(out));
      out.push(c);
    }
    return escapeBytes(Uint8Array.from(out)) + '...';
  }

  /** The text of a char[n] at data: up to its first NUL, or all n bytes (cut at 4096 with "..."), escaped. */
  cstringn(data: Int, n: number): string {
    const take = Math.min(n, MAX_STRING);
    const b = this.m.bytes(data, take);
    const nul = b.indexOf(0);
    const s = escapeBytes(nul < 0 ? b : b.subarray(0, nul));
    return nul < 0 && take < n ? s + '...' : s;
  }

  /** Where the target's first thread's registers come from; read once a sample, when a walk first asks. */
  registers: RegisterSource | null = null;
  private sampleRegisters: Record<string, Int> | null | undefined;
  private readonly registersUsed = new Set<string>();

  /** A register of the target's first thread, or 0 where it is not known (register() in a schema). */
  register(name: string): Int {
    this.registersUsed.add(name);
    this.m.loads += 2; // read at another moment than memory: a column that uses one is never a value of one read
    if (this.sampleRegisters === undefined) this.sampleRegisters = this.registers?.read() ?? null;
    return this.sampleRegisters?.[name] ?? 0;
  }

  /** The registers this sample's walk asked for, by name. */
  usedRegisters(): string[] {
    return [...this.registersUsed];
  }

  /** Whether this sample's walk asked for a register. */
  askedRegisters(): boolean {
    return this.registersUsed.size > 0;
  }

  /**
   * The registers this sample used that a newer sample of them holds otherwise (the thread moved on while
   * the walk read memory), or null: registers and memory are read at two moments, and are compared as memory is.
   */
  registersMoved(): string | null {
    if (!this.sampleRegisters || !this.registers) return null;
    const now = this.registers.read();
    const moved = now ? [...this.registersUsed].filter((n) => now[n] !== this.sampleRegisters![n]) : [];
    return moved.length ? moved.join(', ') : null;
  }

  /** A non-negative integer in lowercase hexadecimal, no prefix (an IPv6 group in sockaddr_str()). */
  hex(n: Int): string {
    return n.toString(16);
  }

  /** What a view's let: names in this row: computed at most once per row (runView starts each row with newRow()). */
  private row = new Map<string, unknown>();

  newRow(): void {
    // Map.clear() makes a new table even when empty: a view of a million rows that asks no let: would pay it a million times.
    if (this.row.size) this.row.clear();
  }

  /** A value the row's columns share: what it reads is tagged as theirs (SHARED_TAG), not as the first column's that asked. */
  memo(key: string, fn: (...args: unknown[]) => unknown, ...args: unknown[]): unknown {
    this.m.sharedBy |= this.m.mark;
    if (this.row.has(key)) {
      this.m.loads += 2; // a value of many reads, as far as the column asking knows
      return this.row.get(key);
    }
    const mark = this.m.mark;
    this.m.mark = SHARED_TAG;
    try {
      const value = fn(...args);
      this.row.set(key, value);
      return value;
    } finally {
      this.m.mark = mark;
    }
  }

  /**
   * What a walk computes once for the whole sample (a breadth-first reach, generators/lower/reach.ts): forgotten
   * at reset(). A walk failure is kept too: the sample's memory does not change, so every row that asks would
   * fail the same way, after spending the budget on it again.
   */
  private sample = new Map<string, Map<string, { value: unknown } | { failure: unknown }>>();

  shared(key: string, fn: (...args: unknown[]) => unknown, ...args: unknown[]): unknown {
    let byArgs = this.sample.get(key);
    if (!byArgs) this.sample.set(key, (byArgs = new Map()));
    const k = args.length === 1 ? String(args[0]) : args.join(' ');
    this.m.sharedBy |= this.m.mark;
    let kept = byArgs.get(k);
    if (kept) this.m.loads += 2;
    else {
      // Shared by every row and column: what it reads is tagged as theirs, as a row's memo() is.
      const mark = this.m.mark;
      this.m.mark = SHARED_TAG;
      try {
        kept = { value: fn(...args) };
      } catch (err) {
        if (!this.isFailure(err)) throw err;
        kept = { failure: err };
      } finally {
        this.m.mark = mark;
      }
      byArgs.set(k, kept);
    }
    if ('failure' in kept) throw kept.failure;
    return kept.value;
  }

  /** Texts and integers joined, the integers in decimal (cat() in a schema). */
  cat(...parts: (string | Int)[]): string {
    return parts.map((p) => (typeof p === 'string' ? p : String(p))).join('');
  }

  /**
   * The ELF symbol at addr (name+0xoff); else the object mapped there and the address in its file (inObject:
   * `ngx_http_lua_module.so+0x1a2b3`); else NULL for 0; else the bare address (anonymous memory, JIT code, no mapping).
   */
  symbol(addr: Int): string {
    if (typeof addr !== 'number') return hex(addr);
    const s = this.symbols.symbolize(addr);
    if (s) return s.offset ? `${s.name}+${hex(s.offset)}` : s.name;
    if (addr === 0) return 'NULL';
    const o = this.symbols.objectAt(addr);
    return o ? inObject(o.name, addr, o.bias) : hex(addr);
  }

  /**
   * A global's address; -1 when the symbol tables lack it. When the executable is stripped and no recovered symbol
   * table names its globals, the walk fails here with the line that says so and what to run.
   */
  global(name: string): Int {
    const a = this.symbols.address(name);
    if (a !== null) return a;
    const why = this.symbols.whyMissing?.(name);
    if (why) throw new WalkError('corrupt', `the symbol ${name} is not in the binary's symbol tables: ${why}`);
    return -1;
  }

  /** The static `name` of fn's C file: its address, 0 when there is none, -1 when the binary has no .symtab. */
  fileStatic(fn: Int, name: string): Int {
    const a = typeof fn === 'number' ? this.symbols.fileStatic(fn, name) : null;
    return a === undefined ? -1 : (a ?? 0);
  }

  /** A new, empty map of the loop IR (IntMap). */
  newMap(): IntMap {
    return new IntMap();
  }

  clockOf(name: string): Int {
    this.m.loads += 2; // read at another moment than memory: a column that uses it is never a value of one read
    return clockValue(this.clock, name as ClockName);
  }
}

/**
 * A map from integers (addresses, queue indices) to values, what the loop IR's map constructs are (a reach's
 * seen-map, reach.ts): open addressing on a Float64Array of keys, so a million addresses are neither boxed nor
 * hashed as JS Map keys are. get() gives -1 for a key it does not keep, as the IR's mapGet says. Keys that are
 * not non-negative safe integers (a bigint above 2^53, a negative number) are kept in a plain Map beside it.
 */
export class IntMap {
  private keys: Float64Array;
  private vals: unknown[];
  private mask: number;
  private count = 0;
  private other: Map<Int, unknown> | null = null;

  constructor(capacity = 64) {
    let cap = 16;
    while (cap < capacity * 2) cap *= 2;
    this.keys = new Float64Array(cap).fill(-1);
    this.vals = new Array<unknown>(cap).fill(0);
    this.mask = cap - 1;
  }

  /** The slot of key k (a non-negative safe integer): where it is, or the empty slot where it would go. */
  private slot(k: number): number {
    const keys = this.keys;
    const mask = this.mask;
    let h = Math.imul((k >>> 0) ^ Math.imul((k / 4294967296) | 0, 0x9e3779b1), 0x85ebca6b);
    h = (h ^ (h >>> 15)) & mask;
    for (;;) {
      const x = keys[h];
      if (x === k || x === -1) return h;
      h = (h + 1) & mask;
    }
  }

  get(k: Int): unknown {
    if (typeof k !== 'number' || !(k >= 0) || k > Number.MAX_SAFE_INTEGER || k !== Math.floor(k)) return this.other?.get(k) ?? -1;
    const h = this.slot(k);
    return this.keys[h] === -1 ? -1 : (this.vals[h] ?? -1);
  }

  set(k: Int, value: unknown): void {
    if (typeof k !== 'number' || !(k >= 0) || k > Number.MAX_SAFE_INTEGER || k !== Math.floor(k)) {
      (this.other ??= new Map()).set(k, value);
      return;
    }
    let h = this.slot(k);
    if (this.keys[h] === -1) {
      if ((this.count + 1) * 2 > this.keys.length) {
        this.grow();
        h = this.slot(k);
      }
      this.keys[h] = k;
      this.count++;
    }
    this.vals[h] = value;
  }

  private grow(): void {
    const keys = this.keys;
    const vals = this.vals;
    this.keys = new Float64Array(keys.length * 2).fill(-1);
    this.vals = new Array<unknown>(keys.length * 2).fill(0);
    this.mask = this.keys.length - 1;
    for (let i = 0; i < keys.length; i++) {
      if (keys[i] === -1) continue;
      const h = this.slot(keys[i]);
      this.keys[h] = keys[i];
      this.vals[h] = vals[i];
    }
  }
}

/** Bytes as text: printable ASCII kept, backslash and everything else escaped as \xNN. Python does the same. */
export function escapeBytes(b: Uint8Array): string {
  let s = '';
  for (const c of b) s += c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : '\\x' + c.toString(16).padStart(2, '0');
  return s;
}
