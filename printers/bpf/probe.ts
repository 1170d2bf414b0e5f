/**
 * The eBPF printer's probe mode: a probe (probes: in a schema) printed as a
 * program the kernel runs at a uprobe, at the first instruction of a
 * function, in the target's threads only. self is the function's first
 * argument (rdi in the struct pt_regs the uprobe gives). The program
 * evaluates the probe's keys into a key buffer (an integer, 8 bytes; a
 * text, its length and up to PROBE_TEXT bytes copied from memory), its
 * values, and adds them to the key's entry of a per-CPU hash: a count, and
 * per value the sum, min, max and a log2 histogram. A walk error, a read
 * that faults, a full table: counted per reason in a small array instead.
 * No message and no text is built in the kernel; user space reads the maps.
 *
 * The statements and expressions are the capture's (print.ts WalkPrinter);
 * only the loads (a fault ends the run), the registers (the uprobe's
 * pt_regs) and the texts of keys differ.
 */
import { PROBE_TEXT, type ProbeIR, type ViewIR } from '../../generators/ir.ts';
import { lowerView } from '../../generators/lower/lower.ts';
import type { LExpr, LFunc } from '../../generators/lower/lir.ts';
import { FP, HELPER, type Label } from './asm.ts';
import type { LayoutFacts } from '../../generators/lower/fold.ts';
import { type BpfProgram, type Ctx, CTX, Env, PT_REGS, R0, R1, R2, R3, R4, REC, Refused, SHAPE_ONLY, SLOT, V, W, type WalkOptions, WalkPrinter } from './print.ts';

/** A probe lowered: its functions, and for each key and value the value function of self that computes it. */
export interface LoweredProbe {
  funcs: LFunc[];
  keys: { name: string; fn: string; text: TextKind | null }[];
  values: { name: string; fn: string }[];
}

/** How a text key was read: str(data, len), cstr(p) (NUL-terminated), a char[N] member. */
export type TextKind = 'string' | 'cstring' | 'cstringn';

/** A probe's keys and values as value functions of self (the first argument), lowered once as a view's columns are. */
export function lowerProbe(p: ProbeIR): LoweredProbe {
  const view: ViewIR = { name: p.name, aliases: [], doc: p.doc, of: p.arg, roots: [], columns: [...p.keys, ...p.values], checks: [], instant: [], slots: 1, clock: false, stack: null, pos: p.pos };
  // No grouped fold: the kernel keeps no failure per aggregate (the printer refuses one).
  const l = lowerView(view, false, false);
  const cols = l.columns;
  return {
    funcs: l.funcs,
    keys: p.keys.map((k, i) => ({ name: k.name, fn: cols[i].fn, text: k.expr.type.k === 'str' ? textKind(l.funcs, cols[i].fn) : null })),
    values: p.values.map((v, i) => ({ name: v.name, fn: cols[p.keys.length + i].fn })),
  };
}

/** The runtime helper a text column's function ends in (str(), cstr(), a char[N]), found by what it returns. */
function textKind(funcs: LFunc[], fn: string): TextKind | null {
  const byName = new Map(funcs.map((f) => [f.name, f]));
  const seen = new Set<string>();
  const find = (name: string): TextKind | null => {
    if (seen.has(name)) return null;
    seen.add(name);
    const f = byName.get(name);
    let out: TextKind | null = null;
    const look = (x: unknown): void => {
      if (out || typeof x !== 'object' || x === null) return;
      if (Array.isArray(x)) return x.forEach(look);
      const o = x as LExpr;
      if (o.k === 'rt' && (o.fn === 'string' || o.fn === 'cstring' || o.fn === 'cstringn')) out = o.fn;
      else if (o.k === 'call' && typeof o.fn === 'string') out = find(o.fn);
      if (!out) Object.values(o).forEach(look);
    };
    look(f?.body);
    return out;
  };
  return find(fn);
}

/** Where each part of a probe's maps is. */
export const PROBE = {
  /** A text key in the key buffer: u64 (its length as the function read it), then the bytes read. */
  textHeader: 8,
  textData: 72,
  /** What str() copies at most; cstr() reads up to textRead so a longer text is known to be cut. */
  textRead: PROBE_TEXT,
  cstrRead: PROBE_TEXT + 2,
  /** An entry of the table: u64 count, then per value u64 sum, i64 min, i64 max, u64 hist[buckets]. */
  buckets: 64,
  /** Entries of the table (distinct keys); a key past them counts as 'table full'. */
  maxEntries: 10240,
} as const;

/** Why a call was not added to the table, in the order of the errors map's counters. */
export const PROBE_ERRORS = ['walk error', 'read fault', 'walk too deep', 'table full'] as const;

export const keyBytes = (k: { text: TextKind | null }): number => (k.text ? PROBE.textHeader + PROBE.textData : 8);
export const valueStride = 24 + PROBE.buckets * 8;

/** A probe's program and where the parts of its key and table entry are. */
export interface ProbeProgram extends Omit<BpfProgram, 'regsSize' | 'entries'> {
  keySize: number;
  valueSize: number;
  keys: { name: string; offset: number; text: TextKind | null }[];
  values: { name: string; offset: number }[];
}

/** The probe as a uprobe program of this build's layout. */
export function printProbe(p: LoweredProbe, layout: LayoutFacts, o: WalkOptions): ProbeProgram {
  return new ProbePrinter(p.funcs, layout, o).program(p);
}

/** Why the kernel cannot run a probe's key or value (text of many reads, a value that is not an integer...), or null. */
export function probeRefusal(p: LoweredProbe, only: { key?: number; value?: number }): string | null {
  const part: LoweredProbe = { funcs: p.funcs, keys: only.key === undefined ? [] : [p.keys[only.key]], values: only.value === undefined ? [] : [p.values[only.value]] };
  try {
    printProbe(part, SHAPE_ONLY, { tgid: 1, maxNodes: 1, maxTotal: 10, global: () => 0n });
    return null;
  } catch (e) {
    if (e instanceof Refused) return e.message;
    throw e;
  }
}

const BPF_NOEXIST = 1;
/** struct pt_regs: rdi, the first argument, at its index. */
const RDI = PT_REGS.indexOf('rdi');

class ProbePrinter extends WalkPrinter {
  private readonly fault: Label = this.a.label('fault');
  private readonly tableFull: Label = this.a.label('table_full');
  /** Where in the key buffer the text key being computed goes, while one is. */
  private textAt: number | null = null;
  private keysSize = 0;

  program(p: LoweredProbe): ProbeProgram {
    const a = this.a;
    const out = a.label('out');
    a.mov(CTX, R1);
    // The target's threads only (the uprobe is in its address space alone, but a forked child shares it).
    a.call(HELPER.get_current_pid_tgid);
    a.aluImm('rsh', R0, 32);
    a.jmpImm('jne', R0, this.o.tgid, out);
    const keys: ProbeProgram['keys'] = [];
    for (const k of p.keys) {
      keys.push({ name: k.name, offset: this.keysSize, text: k.text });
      this.keysSize += keyBytes(k);
    }
    const keySize = Math.max(8, this.keysSize);
    // The key buffer (and the walks' stacks past it): the scratch map's one element (per CPU), zeroed: a hash compares every byte.
    this.lookupAt('scratch', 0);
    a.jmpImm('jeq', R0, 0, out);
    a.mov(REC, R0);
    for (let off = 0; off < keySize; off += 8) a.stImm(8, REC, off, 0);
    a.stImm(8, FP, SLOT.visited, 0);

    const top: Ctx = { env: new Env(null), frame: { ret: null, done: a.label('top'), tries: 0 }, loops: [], tries: [], visitor: null, depth: 0 };
    const self = this.slot();
    a.ldx(8, V, CTX, RDI * 8);
    a.stx(8, FP, self.off, V);
    top.env.bind('self', self);
    const arg: LExpr = { k: 'var', name: 'self' };
    keys.forEach((k) => {
      if (k.text) {
        this.textAt = k.offset;
        this.expr({ k: 'call', fn: p.keys.find((x) => x.name === k.name)!.fn, args: [arg] }, top);
        this.textAt = null;
      } else {
        this.expr({ k: 'call', fn: p.keys.find((x) => x.name === k.name)!.fn, args: [arg] }, top);
        a.stx(8, REC, k.offset, V);
      }
    });
    const slots = p.values.map((v) => {
      this.expr({ k: 'call', fn: v.fn, args: [arg] }, top);
      const s = this.slot();
      a.stx(8, FP, s.off, V);
      return s;
    });
    a.bind(top.frame.done);

    // The key's entry: made (zeros) the first time, then added to. E = r8.
    const have = a.label('have');
    const E = W;
    this.lookupEntry();
    a.jmpImm('jne', R0, 0, have);
    this.lookupAt('zero', 0);
    a.jmpImm('jeq', R0, 0, out);
    a.mov(R3, R0);
    a.mapFd(R1, 'table');
    a.mov(R2, REC);
    a.movImm(R4, BigInt(BPF_NOEXIST));
    a.call(HELPER.map_update_elem);
    this.lookupEntry();
    a.jmpImm('jeq', R0, 0, this.tableFull);
    a.bind(have);
    a.mov(E, R0);
    const values: ProbeProgram['values'] = [];
    slots.forEach((s, j) => {
      const b = 8 + j * valueStride;
      values.push({ name: p.values[j].name, offset: b });
      a.ldx(8, V, FP, s.off);
      // sum
      a.ldx(8, R1, E, b);
      a.alu('add', R1, V);
      a.stx(8, E, b, R1);
      // min and max: the first value sets both
      const first = a.label('first');
      const minOk = a.label('min_ok');
      const maxOk = a.label('max_ok');
      a.ldx(8, R1, E, 0);
      a.jmpImm('jeq', R1, 0, first);
      a.ldx(8, R2, E, b + 8);
      a.jmp('jsle', R2, V, minOk);
      a.stx(8, E, b + 8, V);
      a.bind(minOk);
      a.ldx(8, R2, E, b + 16);
      a.jmp('jsge', R2, V, maxOk);
      a.stx(8, E, b + 16, V);
      a.ja(maxOk);
      a.bind(first);
      a.stx(8, E, b + 8, V);
      a.stx(8, E, b + 16, V);
      a.bind(maxOk);
      // log2 histogram: bucket 0 holds v <= 0, bucket i (1..63) 2^(i-1) <= v < 2^i (the last one: and above)
      const bucket = a.label('bucket');
      a.movImm(R1, 0n);
      a.jmpImm('jsle', V, 0, bucket);
      a.mov(R2, V);
      a.movImm(R1, 1n);
      for (const sh of [32, 16, 8, 4, 2, 1]) {
        const skip = a.label('skip');
        a.mov(R3, R2);
        a.aluImm('rsh', R3, sh);
        a.jmpImm('jeq', R3, 0, skip);
        a.mov(R2, R3);
        a.aluImm('add', R1, sh);
        a.bind(skip);
      }
      a.bind(bucket);
      const capped = a.label('capped');
      a.jmpImm('jle', R1, PROBE.buckets - 1, capped);
      a.movImm(R1, BigInt(PROBE.buckets - 1));
      a.bind(capped);
      a.aluImm('and', R1, PROBE.buckets - 1);
      a.aluImm('lsh', R1, 3);
      a.alu('add', R1, E);
      a.ldx(8, R2, R1, b + 24);
      a.aluImm('add', R2, 1);
      a.stx(8, R1, b + 24, R2);
    });
    a.ldx(8, R1, E, 0);
    a.aluImm('add', R1, 1);
    a.stx(8, E, 0, R1);
    a.ja(out);

    const counted = (l: Label, reason: number) => {
      a.bind(l);
      a.stImm(4, FP, SLOT.key, reason);
      a.ja(this.end);
    };
    counted(this.walkError, PROBE_ERRORS.indexOf('walk error'));
    counted(this.fault, PROBE_ERRORS.indexOf('read fault'));
    counted(this.full, PROBE_ERRORS.indexOf('walk too deep'));
    counted(this.tableFull, PROBE_ERRORS.indexOf('table full'));
    a.bind(this.end);
    a.mapFd(R1, 'errors');
    a.mov(R2, FP);
    a.aluImm('add', R2, SLOT.key);
    a.call(HELPER.map_lookup_elem);
    a.jmpImm('jeq', R0, 0, out);
    a.ldx(8, R1, R0, 0);
    a.aluImm('add', R1, 1);
    a.stx(8, R0, 0, R1);
    a.bind(out);
    a.movImm(R0, 0n);
    a.exit();

    const valueSize = 8 + p.values.length * valueStride;
    return {
      insns: a.bytes(),
      relocs: a.relocs,
      maps: [
        { name: 'scratch', type: 'percpu_array', keySize: 4, valueSize: this.stacksAt() + this.stacks * 256 * 8, maxEntries: 1 },
        { name: 'zero', type: 'array', keySize: 4, valueSize, maxEntries: 1 },
        { name: 'table', type: 'percpu_hash', keySize, valueSize, maxEntries: PROBE.maxEntries },
        { name: 'errors', type: 'percpu_array', keySize: 4, valueSize: 8, maxEntries: PROBE_ERRORS.length },
      ],
      keySize,
      valueSize,
      keys,
      values,
    };
  }

  /** r0 = the table's entry for the key buffer, or 0. */
  private lookupEntry(): void {
    const a = this.a;
    a.mapFd(R1, 'table');
    a.mov(R2, REC);
    a.call(HELPER.map_lookup_elem);
  }

  protected stacksAt(): number {
    return Math.max(8, this.keysSize);
  }

  protected register(i: number): void {
    this.a.ldx(8, V, CTX, i * 8);
  }

  /** A read that faults ends the run: counted as a fault, nothing added. */
  protected load(bytes: number, signed: boolean, bitfield: { bit: number; bits: number } | null): void {
    const a = this.a;
    this.readUser(bytes);
    a.jmpImm('jne', R0, 0, this.fault);
    a.ldx(8, V, FP, SLOT.scratch);
    this.extend(bytes, signed, bitfield);
  }

  /** A text read from memory, as a key: copied into the key buffer (its first bytes), its length beside it. */
  protected otherRuntime(e: Extract<LExpr, { k: 'rt' }>, ctx: Ctx): void {
    const a = this.a;
    const at = this.textAt;
    if (at === null || (e.fn !== 'string' && e.fn !== 'cstring' && e.fn !== 'cstringn')) {
      if (e.fn === 'string' || e.fn === 'cstring' || e.fn === 'cstringn') throw new Refused('a text is read in the kernel only as a whole key (str(), cstr()), not inside a value or an expression');
      return super.otherRuntime(e, ctx);
    }
    if (e.fn === 'cstring') {
      this.expr(e.args[0], ctx);
      a.mov(R1, REC);
      a.aluImm('add', R1, at + PROBE.textHeader);
      a.movImm(R2, BigInt(PROBE.cstrRead));
      a.mov(R3, V);
      a.call(HELPER.probe_read_user_str);
      a.jmpImm('jsle', R0, 0, this.fault);
      a.stx(8, REC, at, R0);
    } else {
      // str(data, len): len bytes, of which the first PROBE_TEXT; a char[N]: N bytes, up to its first NUL (user space cuts).
      this.operands(e.args[0], e.args[1], ctx);
      a.stx(8, REC, at, W);
      a.mov(R2, W);
      const ok = a.label('len_ok');
      a.jmpImm('jle', R2, PROBE.textRead, ok);
      a.movImm(R2, BigInt(PROBE.textRead));
      a.bind(ok);
      a.mov(R1, REC);
      a.aluImm('add', R1, at + PROBE.textHeader);
      a.mov(R3, V);
      a.call(HELPER.probe_read_user);
      a.jmpImm('jne', R0, 0, this.fault);
    }
    a.movImm(V, 0n);
  }
}
