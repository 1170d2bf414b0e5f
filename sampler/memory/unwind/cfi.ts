/**
 * Runs an FDE's call frame instructions (DWARF 5 §6.4.2) to the row that
 * holds for a pc, and evaluates the DWARF expressions rules may use
 * (§2.5: what x86-64 PLT entries and glibc's signal trampoline need, and
 * the rest of the stack machine but for TLS and typed ops).
 */
import { CfiError, type Cie, type CfiTable, type Fde, Reader, readEncoded } from '../../../core/eh-frame.ts';
import { NREGS } from './regs.ts';

/** How a caller's register is recovered (the DWARF register rules). */
export const RuleKind = {
  Undefined: 0,
  SameValue: 1,
  /** saved at CFA + n */
  Offset: 2,
  /** the value is CFA + n */
  ValOffset: 3,
  /** the value is in register n */
  Register: 4,
  /** saved at the address an expression computes (pushed CFA first) */
  Expression: 5,
  /** the value an expression computes */
  ValExpression: 6,
} as const;
export type RuleKind = (typeof RuleKind)[keyof typeof RuleKind];

export interface Rule {
  kind: RuleKind;
  n: number;
  /** Expression bytes (Expression, ValExpression). */
  expr?: Uint8Array;
}

export interface Row {
  /** CFA = reg + offset, or an expression (cfaExpr) */
  cfaReg: number;
  cfaOffset: number;
  cfaExpr: Uint8Array | null;
  /** Rules by DWARF register number 0..16; undefined: none given (the unwinder's default). */
  rules: (Rule | undefined)[];
  /** The register holding the return address (16 on x86-64). */
  raReg: number;
  /** A signal frame ('S'): the caller's pc is where it was interrupted, not a return address. */
  signal: boolean;
  /** The pc range [start, end) this row holds for. */
  start: number;
  end: number;
}

const MAX_STATE_STACK = 64;
const MAX_INSNS = 100_000;

interface State {
  cfaReg: number;
  cfaOffset: number;
  cfaExpr: Uint8Array | null;
  rules: (Rule | undefined)[];
}

const cloneState = (s: State): State => ({ cfaReg: s.cfaReg, cfaOffset: s.cfaOffset, cfaExpr: s.cfaExpr, rules: s.rules.slice() });

/**
 * The row of fde (in table) that holds at link-time pc: the CIE's initial instructions, then the FDE's, up to
 * the first advance past pc. Throws CfiError on a malformed program.
 */
export function rowAt(table: CfiTable, fde: Fde, pc: number): Row {
  const cie = fde.cie;
  const state: State = { cfaReg: -1, cfaOffset: 0, cfaExpr: null, rules: new Array(NREGS).fill(undefined) };
  const bound = { start: fde.start, end: fde.end };
  // DW_CFA_set_loc's operand is an address as the FDE encodes its own (.eh_frame), or a plain 8 bytes (.debug_frame).
  const address = table.kind === 'eh' ? (r: Reader) => readEncoded(r, cie.fdeEnc, table.vaddr) : (r: Reader) => r.u64();
  run(table.buf, cie.insnStart, cie.insnEnd, cie, state, null, fde.start, Infinity, bound, address);
  const initial = cloneState(state);
  run(table.buf, fde.insnStart, fde.insnEnd, cie, state, initial, fde.start, pc, bound, address);
  if (state.cfaReg < 0 && !state.cfaExpr) throw new CfiError('no CFA rule');
  return { ...state, raReg: cie.raReg, signal: cie.signal, start: bound.start, end: bound.end };
}

/** Runs the instructions in buf[from, to) from location loc, stopping before the first advance past pc. */
export function run(buf: Uint8Array, from: number, to: number, cie: Cie, state: State, initial: State | null, loc: number, pc: number, bound: { start: number; end: number }, address: (r: Reader) => number = (r) => r.u64()): void {
  const r = new Reader(buf, from, to);
  const stack: State[] = [];
  const set = (reg: number, rule: Rule | undefined) => {
    if (reg < NREGS) state.rules[reg] = rule;
  };
  const advance = (delta: number): boolean => {
    const next = loc + delta * cie.codeAlign;
    if (next > pc) {
      bound.end = Math.min(bound.end, next);
      return false;
    }
    loc = next;
    bound.start = loc;
    return true;
  };
  const block = (): Uint8Array => {
    const len = r.uleb();
    const at = r.pos;
    if (at + len > r.end) throw new CfiError('expression past the end of its program');
    r.pos += len;
    return buf.subarray(at, at + len);
  };
  for (let n = 0; r.pos < r.end; n++) {
    if (n > MAX_INSNS) throw new CfiError('call frame program too long');
    const op = r.u8();
    const high = op & 0xc0;
    const low = op & 0x3f;
    if (high === 0x40) {
      if (!advance(low)) return;
      continue;
    }
    if (high === 0x80) {
      set(low, { kind: RuleKind.Offset, n: r.uleb() * cie.dataAlign });
      continue;
    }
    if (high === 0xc0) {
      set(low, initial ? initial.rules[low] : undefined);
      continue;
    }
    switch (op) {
      case 0x00: // DW_CFA_nop
        break;
      case 0x01: {
        // DW_CFA_set_loc
        const to = address(r);
        if (to > pc) {
          bound.end = Math.min(bound.end, to);
          return;
        }
        loc = to;
        bound.start = loc;
        break;
      }
      case 0x02:
        if (!advance(r.u8())) return;
        break;
      case 0x03:
        if (!advance(r.u16())) return;
        break;
      case 0x04:
        if (!advance(r.u32())) return;
        break;
      case 0x05: // DW_CFA_offset_extended
        set(r.uleb(), { kind: RuleKind.Offset, n: r.uleb() * cie.dataAlign });
        break;
      case 0x06: {
        // DW_CFA_restore_extended
        const reg = r.uleb();
        set(reg, initial && reg < NREGS ? initial.rules[reg] : undefined);
        break;
      }
      case 0x07: // DW_CFA_undefined
        set(r.uleb(), { kind: RuleKind.Undefined, n: 0 });
        break;
      case 0x08: // DW_CFA_same_value
        set(r.uleb(), { kind: RuleKind.SameValue, n: 0 });
        break;
      case 0x09: {
        // DW_CFA_register
        const reg = r.uleb();
        set(reg, { kind: RuleKind.Register, n: r.uleb() });
        break;
      }
      case 0x0a: // DW_CFA_remember_state
        if (stack.length >= MAX_STATE_STACK) throw new CfiError('remember_state nested too deep');
        stack.push(cloneState(state));
        break;
      case 0x0b: {
        // DW_CFA_restore_state: the CFA rule is restored too (as gdb and libgcc do)
        const s = stack.pop();
        if (!s) throw new CfiError('restore_state without remember_state');
        Object.assign(state, s);
        break;
      }
      case 0x0c: // DW_CFA_def_cfa
        state.cfaReg = r.uleb();
        state.cfaOffset = r.uleb();
        state.cfaExpr = null;
        break;
      case 0x0d: // DW_CFA_def_cfa_register
        state.cfaReg = r.uleb();
        state.cfaExpr = null;
        break;
      case 0x0e: // DW_CFA_def_cfa_offset
        state.cfaOffset = r.uleb();
        break;
      case 0x0f: // DW_CFA_def_cfa_expression
        state.cfaExpr = block();
        break;
      case 0x10: {
        // DW_CFA_expression
        const reg = r.uleb();
        set(reg, { kind: RuleKind.Expression, n: 0, expr: block() });
        break;
      }
      case 0x11: {
        // DW_CFA_offset_extended_sf
        const reg = r.uleb();
        set(reg, { kind: RuleKind.Offset, n: r.sleb() * cie.dataAlign });
        break;
      }
      case 0x12: // DW_CFA_def_cfa_sf
        state.cfaReg = r.uleb();
        state.cfaOffset = r.sleb() * cie.dataAlign;
        state.cfaExpr = null;
        break;
      case 0x13: // DW_CFA_def_cfa_offset_sf
        state.cfaOffset = r.sleb() * cie.dataAlign;
        break;
      case 0x14: {
        // DW_CFA_val_offset
        const reg = r.uleb();
        set(reg, { kind: RuleKind.ValOffset, n: r.uleb() * cie.dataAlign });
        break;
      }
      case 0x15: {
        // DW_CFA_val_offset_sf
        const reg = r.uleb();
        set(reg, { kind: RuleKind.ValOffset, n: r.sleb() * cie.dataAlign });
        break;
      }
      case 0x16: {
        // DW_CFA_val_expression
        const reg = r.uleb();
        set(reg, { kind: RuleKind.ValExpression, n: 0, expr: block() });
        break;
      }
      case 0x2e: // DW_CFA_GNU_args_size
        r.uleb();
        break;
      case 0x2f: {
        // DW_CFA_GNU_negative_offset_extended
        const reg = r.uleb();
        set(reg, { kind: RuleKind.Offset, n: -r.uleb() * cie.dataAlign });
        break;
      }
      default:
        throw new CfiError(`DW_CFA op 0x${op.toString(16)}`);
    }
  }
}

/** What an expression may read: registers by DWARF number (NaN unknown) and 8 bytes of memory (null: unreadable). */
export interface ExprContext {
  reg(n: number): number;
  read(addr: bigint, size: number): bigint | null;
}

/** Why an expression stopped: it read memory it could not, or a register not known. */
export class ExprFault extends Error {
  constructor(
    message: string,
    readonly unreadable: boolean,
  ) {
    super(message);
  }
}

const MAX_EXPR_STEPS = 10_000;
const MAX_EXPR_STACK = 1024;
const M64 = (1n << 64n) - 1n;
const wrap = (v: bigint): bigint => v & M64;
const signed = (v: bigint): bigint => BigInt.asIntN(64, v);

/**
 * Evaluates a DWARF expression (64-bit, unsigned wrap) with `initial` pushed first (the CFA, for register
 * rules); the value on top of the stack. Throws CfiError on a malformed or unsupported expression, ExprFault
 * when it needs memory or a register it cannot have.
 */
export function evalExpr(expr: Uint8Array, ctx: ExprContext, initial?: bigint): bigint {
  const r = new Reader(expr, 0, expr.length);
  const st: bigint[] = initial === undefined ? [] : [wrap(initial)];
  const pop = (): bigint => {
    const v = st.pop();
    if (v === undefined) throw new CfiError('expression stack underflow');
    return v;
  };
  const push = (v: bigint) => {
    if (st.length >= MAX_EXPR_STACK) throw new CfiError('expression stack overflow');
    st.push(wrap(v));
  };
  const reg = (n: number): bigint => {
    const v = ctx.reg(n);
    if (!Number.isFinite(v)) throw new ExprFault(`register ${n} is not known`, false);
    return BigInt(v);
  };
  const deref = (addr: bigint, size: number): bigint => {
    const v = ctx.read(addr, size);
    if (v === null) throw new ExprFault(`cannot read ${size} bytes at 0x${addr.toString(16)}`, true);
    return v;
  };
  for (let steps = 0; r.pos < r.end; steps++) {
    if (steps > MAX_EXPR_STEPS) throw new CfiError('expression runs too long (a loop?)');
    const op = r.u8();
    if (op >= 0x30 && op <= 0x4f) {
      push(BigInt(op - 0x30)); // DW_OP_lit0..31
      continue;
    }
    if (op >= 0x50 && op <= 0x6f) {
      push(reg(op - 0x50)); // DW_OP_reg0..31 (as a value, as the CFA rules use them)
      continue;
    }
    if (op >= 0x70 && op <= 0x8f) {
      push(reg(op - 0x70) + BigInt(r.sleb())); // DW_OP_breg0..31
      continue;
    }
    switch (op) {
      case 0x03: push(r.u64big()); break; // addr
      case 0x06: push(deref(pop(), 8)); break; // deref
      case 0x08: push(BigInt(r.u8())); break; // const1u
      case 0x09: push(BigInt(r.s8())); break;
      case 0x0a: push(BigInt(r.u16())); break;
      case 0x0b: push(BigInt(r.s16())); break;
      case 0x0c: push(BigInt(r.u32())); break;
      case 0x0d: push(BigInt(r.s32())); break;
      case 0x0e: push(r.u64big()); break;
      case 0x0f: push(r.u64big()); break; // const8s: same bits
      case 0x10: push(BigInt(r.uleb())); break; // constu
      case 0x11: push(BigInt(r.sleb())); break; // consts
      case 0x12: { const v = pop(); push(v); push(v); break; } // dup
      case 0x13: pop(); break; // drop
      case 0x14: { // over
        if (st.length < 2) throw new CfiError('expression stack underflow');
        push(st[st.length - 2]);
        break;
      }
      case 0x15: { // pick
        const i = r.u8();
        if (i >= st.length) throw new CfiError('pick past the stack');
        push(st[st.length - 1 - i]);
        break;
      }
      case 0x16: { const a = pop(); const b = pop(); push(a); push(b); break; } // swap
      case 0x17: { const a = pop(); const b = pop(); const c = pop(); push(a); push(c); push(b); break; } // rot
      case 0x19: { const a = signed(pop()); push(a < 0n ? -a : a); break; } // abs
      case 0x1a: { const b = pop(); push(pop() & b); break; } // and
      case 0x1b: { // div (signed)
        const b = signed(pop());
        const a = signed(pop());
        if (b === 0n) throw new CfiError('division by zero');
        push(a / b);
        break;
      }
      case 0x1c: { const b = pop(); push(pop() - b); break; } // minus
      case 0x1d: { // mod (unsigned)
        const b = pop();
        const a = pop();
        if (b === 0n) throw new CfiError('division by zero');
        push(a % b);
        break;
      }
      case 0x1e: { const b = pop(); push(pop() * b); break; } // mul
      case 0x1f: push(-signed(pop())); break; // neg
      case 0x20: push(~pop()); break; // not
      case 0x21: { const b = pop(); push(pop() | b); break; } // or
      case 0x22: { const b = pop(); push(pop() + b); break; } // plus
      case 0x23: push(pop() + BigInt(r.uleb())); break; // plus_uconst
      case 0x24: { const b = pop(); const a = pop(); push(b >= 64n ? 0n : a << b); break; } // shl
      case 0x25: { const b = pop(); const a = pop(); push(b >= 64n ? 0n : a >> b); break; } // shr
      case 0x26: { const b = pop(); const a = signed(pop()); push(a >> (b >= 64n ? 63n : b)); break; } // shra
      case 0x27: { const b = pop(); push(pop() ^ b); break; } // xor
      case 0x28: { // bra
        const off = r.s16();
        if (pop() !== 0n) jump(r, off);
        break;
      }
      case 0x29: case 0x2a: case 0x2b: case 0x2c: case 0x2d: case 0x2e: { // eq ge gt le lt ne (signed)
        const b = signed(pop());
        const a = signed(pop());
        const t = op === 0x29 ? a === b : op === 0x2a ? a >= b : op === 0x2b ? a > b : op === 0x2c ? a <= b : op === 0x2d ? a < b : a !== b;
        push(t ? 1n : 0n);
        break;
      }
      case 0x2f: jump(r, r.s16()); break; // skip
      case 0x90: push(reg(r.uleb())); break; // regx
      case 0x92: { const n = r.uleb(); push(reg(n) + BigInt(r.sleb())); break; } // bregx
      case 0x94: { // deref_size
        const size = r.u8();
        if (size < 1 || size > 8) throw new CfiError(`deref_size ${size}`);
        push(deref(pop(), size));
        break;
      }
      case 0x96: break; // nop
      default:
        throw new CfiError(`DW_OP 0x${op.toString(16)}`);
    }
  }
  return pop();
}

function jump(r: Reader, off: number): void {
  const to = r.pos + off;
  if (to < 0 || to > r.end) throw new CfiError('branch outside the expression');
  r.pos = to;
}
