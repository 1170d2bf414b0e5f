/**
 * x86-64 registers by DWARF number (the System V psABI's table): what CFI
 * rules name. A register not known (a caller-saved one after a step, one a
 * sample did not carry) is NaN. Values are numbers: user-space addresses
 * are below 2^47, so pcs, stack pointers and CFAs are exact.
 */
export type Regs = Float64Array; // length 17

export const RSP = 7;
export const RBP = 6;
export const RIP = 16;
export const NREGS = 17;

/** DWARF numbers 0..15: rax rdx rcx rbx rsi rdi rbp rsp r8..r15; 16 is the return address (rip). */
export const DWARF_NAMES = ['rax', 'rdx', 'rcx', 'rbx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'];

/** Callee-saved registers (psABI): a caller's value is the callee's unless its CFI says where it was saved. */
export const CALLEE_SAVED: readonly number[] = [3, 6, 12, 13, 14, 15];

const UNKNOWN = new Float64Array(NREGS).fill(NaN);

export function unknownRegs(): Regs {
  return UNKNOWN.slice();
}

const CHUNK_REGS = 32;

/**
 * Register sets carved out of shared chunks: a Float64Array of 17 has its own backing store (off V8's heap),
 * and one a frame made allocation half the cost of a step. Sets handed out stay valid (chunks are never reused).
 */
export class RegsPool {
  private chunk: Float64Array = new Float64Array(0);
  private used = 0;

  /** A set of unknown registers. */
  take(): Regs {
    if (this.used === this.chunk.length) {
      this.chunk = new Float64Array(NREGS * CHUNK_REGS).fill(NaN);
      this.used = 0;
    }
    const regs = this.chunk.subarray(this.used, this.used + NREGS);
    this.used += NREGS;
    return regs;
  }
}

/**
 * enum perf_event_x86_regs (asm/perf_regs.h) bit → DWARF number: ax bx cx dx si di bp sp ip flags cs ss ds es fs gs,
 * then r8..r15 at bits 16..23. The kernel writes the sampled registers in increasing bit order.
 */
const PERF_TO_DWARF: (number | null)[] = [0, 3, 2, 1, 4, 5, 6, 7, 16, null, null, null, null, null, null, null, 8, 9, 10, 11, 12, 13, 14, 15];

/** sampler/native/perf_regs.c's REG_MASK: ax..ip and r8..r15, no flags (17 values). */
export const PERF_REG_MASK = (0xffn << 16n) | 0x1ffn;
/** The same with flags (bit 9): 18 values. */
export const PERF_REG_MASK_FLAGS = PERF_REG_MASK | (1n << 9n);

/**
 * Registers by DWARF number from a perf sample's PERF_SAMPLE_REGS_USER values, taken with sample_regs_user = mask
 * (default: perf_regs.c's REG_MASK when 17 values are given, with flags when 18).
 */
export function regsFromPerf(perfRegs: BigUint64Array, mask?: bigint): Regs {
  const m = mask ?? (perfRegs.length === 18 ? PERF_REG_MASK_FLAGS : PERF_REG_MASK);
  const regs = unknownRegs();
  let i = 0;
  for (let bit = 0; bit < 64 && i < perfRegs.length; bit++) {
    if (((m >> BigInt(bit)) & 1n) === 0n) continue;
    const dwarf = bit < PERF_TO_DWARF.length ? PERF_TO_DWARF[bit] : null;
    if (dwarf !== null) regs[dwarf] = Number(perfRegs[i]);
    i++;
  }
  return regs;
}

/** Registers by DWARF number from named ones (a core's NT_PRSTATUS as CoreSource.registers has them). */
export function regsFromNamed(named: Record<string, number | bigint>): Regs {
  const regs = unknownRegs();
  DWARF_NAMES.forEach((name, i) => {
    const v = named[name];
    if (v !== undefined) regs[i] = Number(v);
  });
  return regs;
}
