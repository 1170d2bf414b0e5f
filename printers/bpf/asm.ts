/**
 * BPF instructions, as the kernel reads them (struct bpf_insn: opcode,
 * dst and src registers, a 16-bit offset, a 32-bit immediate), with labels
 * for jumps and relocations for the maps a program names. Only what the
 * printer emits is here; the encoding is the kernel's (Documentation/bpf/
 * standardization/instruction-set.rst).
 */

export type Reg = 0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10;
export const FP: Reg = 10;

const CLASS = { ld: 0x00, ldx: 0x01, st: 0x02, stx: 0x03, alu: 0x04, jmp: 0x05, jmp32: 0x06, alu64: 0x07 } as const;
const SRC_K = 0x00;
const SRC_X = 0x08;
const MEM = 0x60;
const SIZE = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 } as const;

export type AluOp = 'add' | 'sub' | 'mul' | 'div' | 'or' | 'and' | 'lsh' | 'rsh' | 'neg' | 'mod' | 'xor' | 'mov' | 'arsh' | 'sdiv' | 'smod';
const ALU: Record<AluOp, [number, number]> = {
  add: [0x00, 0], sub: [0x10, 0], mul: [0x20, 0], div: [0x30, 0], or: [0x40, 0], and: [0x50, 0], lsh: [0x60, 0], rsh: [0x70, 0],
  neg: [0x80, 0], mod: [0x90, 0], xor: [0xa0, 0], mov: [0xb0, 0], arsh: [0xc0, 0],
  // Signed division (cpu v4, Linux 6.6): the offset field says signed.
  sdiv: [0x30, 1], smod: [0x90, 1],
};

export type JmpOp = 'jeq' | 'jgt' | 'jge' | 'jset' | 'jne' | 'jsgt' | 'jsge' | 'jlt' | 'jle' | 'jslt' | 'jsle';
const JMP: Record<JmpOp, number> = { jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, jne: 0x50, jsgt: 0x60, jsge: 0x70, jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0 };
/** The jump taken when the comparison is false. */
export const NEGATE: Record<Exclude<JmpOp, 'jset'>, JmpOp> = { jeq: 'jne', jne: 'jeq', jgt: 'jle', jle: 'jgt', jge: 'jlt', jlt: 'jge', jsgt: 'jsle', jsle: 'jsgt', jsge: 'jslt', jslt: 'jsge' };

interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number;
  imm: number;
  /** A jump to a label, resolved when the program is done. */
  to?: Label;
}

export class Label {
  at = -1;
  constructor(readonly name: string) {}
}

export interface MapReloc {
  /** Index of the first half of a 16-byte load of a map's fd. */
  insn: number;
  map: string;
}

const S32 = (n: number | bigint): boolean => BigInt(n) >= -(2n ** 31n) && BigInt(n) < 2n ** 31n;

export class Asm {
  private readonly insns: Insn[] = [];
  readonly relocs: MapReloc[] = [];

  get length(): number {
    return this.insns.length;
  }

  private push(code: number, dst: number, src: number, off: number, imm: number, to?: Label): void {
    this.insns.push({ code, dst, src, off, imm, to });
  }

  label(name: string): Label {
    return new Label(name);
  }

  bind(l: Label): void {
    if (l.at >= 0) throw new Error(`internal: label ${l.name} bound twice`);
    l.at = this.insns.length;
  }

  /** dst = imm (any 64-bit value: a 16-byte load when it does not fit 32 bits signed). */
  movImm(dst: Reg, v: bigint): void {
    if (S32(v)) return this.push(CLASS.alu64 | SRC_K | ALU.mov[0], dst, 0, 0, Number(v));
    const u = BigInt.asUintN(64, v);
    this.push(0x18, dst, 0, 0, Number(BigInt.asIntN(32, u & 0xffffffffn)));
    this.push(0, 0, 0, 0, Number(BigInt.asIntN(32, u >> 32n)));
  }

  /** dst = the fd of a map, filled in when it is loaded. */
  mapFd(dst: Reg, map: string): void {
    this.relocs.push({ insn: this.insns.length, map });
    this.push(0x18, dst, 1, 0, 0);
    this.push(0, 0, 0, 0, 0);
  }

  alu(op: AluOp, dst: Reg, src: Reg): void {
    const [c, off] = ALU[op];
    this.push(CLASS.alu64 | SRC_X | c, dst, src, off, 0);
  }

  aluImm(op: AluOp, dst: Reg, imm: number): void {
    if (!S32(imm)) throw new Error(`internal: immediate ${imm} past 32 bits`);
    const [c, off] = ALU[op];
    this.push(CLASS.alu64 | SRC_K | c, dst, 0, off, imm);
  }

  mov(dst: Reg, src: Reg): void {
    this.alu('mov', dst, src);
  }

  ldx(size: 1 | 2 | 4 | 8, dst: Reg, src: Reg, off: number): void {
    this.push(CLASS.ldx | MEM | SIZE[size], dst, src, off, 0);
  }

  stx(size: 1 | 2 | 4 | 8, dst: Reg, off: number, src: Reg): void {
    this.push(CLASS.stx | MEM | SIZE[size], dst, src, off, 0);
  }

  stImm(size: 1 | 2 | 4 | 8, dst: Reg, off: number, imm: number): void {
    this.push(CLASS.st | MEM | SIZE[size], dst, 0, off, imm);
  }

  jmp(op: JmpOp, a: Reg, b: Reg, to: Label): void {
    this.push(CLASS.jmp | SRC_X | JMP[op], a, b, 0, 0, to);
  }

  jmpImm(op: JmpOp, a: Reg, imm: number, to: Label): void {
    if (!S32(imm)) throw new Error(`internal: immediate ${imm} past 32 bits`);
    this.push(CLASS.jmp | SRC_K | JMP[op], a, 0, 0, imm, to);
  }

  ja(to: Label): void {
    this.push(CLASS.jmp | 0x00, 0, 0, 0, 0, to);
  }

  call(helper: number): void {
    this.push(CLASS.jmp | 0x80, 0, 0, 0, helper);
  }

  exit(): void {
    this.push(CLASS.jmp | 0x90, 0, 0, 0, 0);
  }

  /**
   * The program: 8 bytes an instruction, jumps resolved. Code no path reaches (after a return, a walk's
   * exit not taken) is left out: the verifier refuses a program with an unreachable instruction.
   */
  bytes(): Buffer {
    const reach = this.reachable();
    const at: number[] = [];
    let n = 0;
    this.insns.forEach((_, i) => {
      at[i] = n;
      if (reach[i]) n++;
    });
    for (const r of this.relocs) r.insn = at[r.insn];
    const out = Buffer.alloc(n * 8);
    let j = 0;
    this.insns.forEach((x, i) => {
      if (!reach[i]) return;
      let off = x.off;
      if (x.to) {
        if (x.to.at < 0) throw new Error(`internal: label ${x.to.name} never bound`);
        off = at[x.to.at] - j - 1;
        if (off < -32768 || off > 32767) throw new Error(`the program is too long for its jumps (${n} instructions)`);
      }
      out.writeUInt8(x.code, j * 8);
      out.writeUInt8((x.src << 4) | x.dst, j * 8 + 1);
      out.writeInt16LE(off, j * 8 + 2);
      out.writeInt32LE(x.imm, j * 8 + 4);
      j++;
    });
    return out;
  }

  /** Which instructions a path from the first reaches (a 16-byte load's second half with its first). */
  private reachable(): boolean[] {
    const seen: boolean[] = new Array(this.insns.length).fill(false);
    const todo = [0];
    while (todo.length) {
      let i = todo.pop()!;
      while (i < this.insns.length && !seen[i]) {
        seen[i] = true;
        const x = this.insns[i];
        if (x.code === 0x18) {
          seen[i + 1] = true;
          i += 2;
          continue;
        }
        if (x.to) todo.push(x.to.at);
        if (x.code === 0x05 /* ja */ || x.code === 0x95 /* exit */) break;
        i++;
      }
    }
    return seen;
  }
}

/** The kernel's helper functions the printer calls (include/uapi/linux/bpf.h, enum bpf_func_id). */
export const HELPER = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  ktime_get_ns: 5,
  get_current_pid_tgid: 14,
  probe_read_user: 112,
  probe_read_kernel: 113,
  probe_read_user_str: 114,
  ringbuf_output: 130,
  get_current_task_btf: 158,
  task_pt_regs: 175,
} as const;
