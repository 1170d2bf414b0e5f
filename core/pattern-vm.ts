/**
 * The Pike VM that runs a compiled pattern (generators/pattern.ts) over
 * bytes fed in pieces: every thread advances one byte at a time, so the
 * time is linear in the bytes scanned, whatever the pattern. Threads are
 * kept in priority order, which gives the leftmost match and greedy
 * repeats, as a backtracking engine would. py-common/xwalk_pattern.py is
 * the same machine for the debugger extensions.
 *
 * Nothing is allocated per byte: a thread is its pc and three positions
 * (where the match and the capture start, where the capture ends), kept in
 * typed arrays that are reused; "added in this step" is a stamp per pc.
 */
import { type Program, setFromHex } from './pattern.ts';

const CHAR = 0;
const SPLIT = 1;
const JMP = 2;
const SAVE = 3;
const MATCH = 4;
const OPS = { char: CHAR, split: SPLIT, jmp: JMP, save: SAVE, match: MATCH } as const;

/** A list of threads in priority order. */
class Threads {
  count = 0;
  readonly pc: Int32Array;
  readonly start: Float64Array;
  readonly capStart: Float64Array;
  readonly capEnd: Float64Array;

  constructor(n: number) {
    this.pc = new Int32Array(n);
    this.start = new Float64Array(n);
    this.capStart = new Float64Array(n);
    this.capEnd = new Float64Array(n);
  }

  push(pc: number, start: number, capStart: number, capEnd: number): void {
    const k = this.count++;
    this.pc[k] = pc;
    this.start[k] = start;
    this.capStart[k] = capStart;
    this.capEnd[k] = capEnd;
  }
}

export interface PatternMatch {
  start: number;
  end: number;
  capStart: number;
  capEnd: number;
}

export class PatternSearch {
  private readonly op: Uint8Array;
  private readonly arg: Int32Array;
  private readonly alt: Int32Array;
  private readonly sets: (Uint8Array | null)[];
  private readonly first: Uint8Array;
  private readonly stamp: Int32Array;
  private generation = 0;
  private threads: Threads;
  private closure: Threads;
  /** The closure is built depth first from this stack. */
  private readonly stack: Threads;
  private found: PatternMatch | null = null;

  constructor(program: Program) {
    const n = program.instrs.length;
    this.op = Uint8Array.from(program.instrs, (x) => OPS[x[0]]);
    this.arg = Int32Array.from(program.instrs, (x) => (x[0] === 'split' || x[0] === 'jmp' || x[0] === 'save' ? x[1] : 0));
    this.alt = Int32Array.from(program.instrs, (x) => (x[0] === 'split' ? x[2] : 0));
    this.sets = program.instrs.map((x) => (x[0] === 'char' ? setFromHex(x[1]) : null));
    this.first = setFromHex(program.first);
    this.stamp = new Int32Array(n).fill(-1);
    this.threads = new Threads(n);
    this.closure = new Threads(n);
    this.stack = new Threads(2 * n + 2);
  }

  /** The match, as offsets of the bytes fed: the whole [start, end) and the capture's; null while none. */
  get match(): PatternMatch | null {
    return this.found;
  }

  /** Whether the search is over: a match was found and no better (earlier or greedier) one can come. */
  get done(): boolean {
    return this.found !== null && this.threads.count === 0;
  }

  /** Feeds bytes that start at offset `base` of the whole; returns done. */
  feed(bytes: Uint8Array, base: number): boolean {
    const first = this.first;
    for (let i = 0; i < bytes.length; i++) {
      if (this.threads.count === 0) {
        if (this.found !== null) return true;
        // Nothing under way: skip to a byte a match can start with.
        while (i < bytes.length && first[bytes[i]] === 0) i++;
        if (i === bytes.length) break;
      }
      this.step(bytes[i], base + i);
    }
    return this.done;
  }

  /** The end of the input: threads that match without reading more finish here. */
  end(at: number): void {
    this.close(at, false);
    const c = this.closure;
    for (let k = 0; k < c.count; k++) {
      if (this.op[c.pc[k]] === MATCH) {
        this.found = { start: c.start[k], end: at, capStart: c.capStart[k], capEnd: c.capEnd[k] };
        break;
      }
    }
    this.threads.count = 0;
  }

  /** One byte: the threads' closures at `at` (a new start last), then each reads the byte. */
  private step(byte: number, at: number): void {
    this.close(at, this.found === null);
    const c = this.closure;
    const next = this.threads;
    next.count = 0;
    for (let k = 0; k < c.count; k++) {
      const pc = c.pc[k];
      if (this.op[pc] === MATCH) {
        this.found = { start: c.start[k], end: at, capStart: c.capStart[k], capEnd: c.capEnd[k] };
        break; // threads after it have lower priority
      }
      if (this.sets[pc]![byte] === 1) next.push(pc + 1, c.start[k], c.capStart[k], c.capEnd[k]);
    }
  }

  /** The closure of every thread at `at`, in priority order, and of a new start when asked. */
  private close(at: number, start: boolean): void {
    this.generation++;
    this.closure.count = 0;
    const t = this.threads;
    for (let k = 0; k < t.count; k++) this.add(t.pc[k], t.start[k], t.capStart[k], t.capEnd[k], at);
    if (start) this.add(0, -1, -1, -1, at);
  }

  /** Follows jumps, splits and saves from pc, each pc once per step, the first arrival winning. */
  private add(pc0: number, start0: number, capStart0: number, capEnd0: number, at: number): void {
    const s = this.stack;
    s.count = 0;
    s.push(pc0, start0, capStart0, capEnd0);
    while (s.count > 0) {
      const k = --s.count;
      const pc = s.pc[k];
      let start = s.start[k];
      let capStart = s.capStart[k];
      let capEnd = s.capEnd[k];
      if (this.stamp[pc] === this.generation) continue;
      this.stamp[pc] = this.generation;
      switch (this.op[pc]) {
        case JMP:
          s.push(this.arg[pc], start, capStart, capEnd);
          break;
        case SPLIT:
          s.push(this.alt[pc], start, capStart, capEnd);
          s.push(this.arg[pc], start, capStart, capEnd);
          break;
        case SAVE:
          if (this.arg[pc] === 0) start = at;
          else if (this.arg[pc] === 2) capStart = at;
          else if (this.arg[pc] === 3) capEnd = at;
          s.push(pc + 1, start, capStart, capEnd);
          break;
        default:
          this.closure.push(pc, start, capStart, capEnd);
      }
    }
  }
}
