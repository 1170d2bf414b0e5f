/**
 * An x86-64 length decoder: where each instruction ends, and which of its
 * bytes are an address the linker chose (a call's or jump's rel32, a
 * RIP-relative displacement, an absolute immediate), so that two builds of
 * one function compare equal once those bytes are masked. It follows the
 * opcode maps of the Intel SDM vol. 2, appendix A (one-byte, 0F, 0F38, 0F3A;
 * VEX and EVEX prefixes), for lengths only: it never names an instruction.
 * An opcode it does not know (or one invalid in 64-bit mode) ends the decode
 * with null: the function is then left unhashed, never guessed.
 */

export type RefKind = 'call' | 'jmp' | 'jcc' | 'data';

export interface Insn {
  len: number;
  /** Offset in the instruction of a rel8/rel32 branch displacement, and its size (call, jmp, jcc, loop). */
  relAt?: number;
  relSize?: number;
  /** 'call' (E8), 'jmp' (E9, EB), 'jcc' (7x, 0F 8x, E0-E3). */
  branch?: 'call' | 'jmp' | 'jcc';
  /** Offset in the instruction of a RIP-relative disp32. */
  ripAt?: number;
  /** Offset and size of the immediate (absolute values that may be addresses in a non-PIE image). */
  immAt?: number;
  immSize?: number;
}

/** One-byte map: 1 = has ModRM. Invalid-in-64-bit opcodes are handled in the switch. */
const MODRM1 = new Uint8Array(256);
for (let op = 0; op < 0x40; op++) if ((op & 7) < 4) MODRM1[op] = 1;
for (const op of [0x62, 0x63, 0x69, 0x6b, 0xc0, 0xc1, 0xc4, 0xc5, 0xc6, 0xc7, 0xd0, 0xd1, 0xd2, 0xd3, 0xf6, 0xf7, 0xfe, 0xff]) MODRM1[op] = 1;
for (let op = 0x80; op <= 0x8f; op++) MODRM1[op] = 1;
for (let op = 0xd8; op <= 0xdf; op++) MODRM1[op] = 1;

/** 0F map: 1 = has ModRM. */
const MODRM2 = new Uint8Array(256).fill(1);
for (const op of [0x05, 0x06, 0x07, 0x08, 0x09, 0x0b, 0x0e, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x37, 0x77, 0xa0, 0xa1, 0xa2, 0xa8, 0xa9, 0xaa]) MODRM2[op] = 0;
for (let op = 0x80; op <= 0x8f; op++) MODRM2[op] = 0;
for (let op = 0xc8; op <= 0xcf; op++) MODRM2[op] = 0;

/** 0F map opcodes with an imm8 after the ModRM. */
const IMM8_0F = new Set([0x70, 0x71, 0x72, 0x73, 0xa4, 0xac, 0xba, 0xc2, 0xc4, 0xc5, 0xc6]);

const LEGACY_PREFIX = new Set([0x26, 0x2e, 0x36, 0x3e, 0x64, 0x65, 0x66, 0x67, 0xf0, 0xf2, 0xf3]);

/** The ModRM (and SIB and displacement) at p: its length and where a RIP-relative disp32 is, or null past end. */
function modrm(b: Uint8Array, p: number, end: number): { len: number; rip: boolean; reg: number } | null {
  if (p >= end) return null;
  const m = b[p];
  const mod = m >> 6;
  const rm = m & 7;
  const reg = (m >> 3) & 7;
  let len = 1;
  if (mod === 3) return { len, rip: false, reg };
  let rip = false;
  if (rm === 4) {
    if (p + 1 >= end) return null;
    const base = b[p + 1] & 7;
    len++;
    if (mod === 0 && base === 5) len += 4;
  } else if (mod === 0 && rm === 5) {
    rip = true;
    len += 4;
  }
  if (mod === 1) len += 1;
  else if (mod === 2) len += 4;
  return { len, rip, reg };
}

/** The instruction at b[p] (b ends at end), or null when it is not one this decoder knows. */
export function decode(b: Uint8Array, p: number, end: number): Insn | null {
  const start = p;
  let opsize16 = false;
  let addr32 = false;
  let rexW = false;
  while (p < end && LEGACY_PREFIX.has(b[p])) {
    if (b[p] === 0x66) opsize16 = true;
    if (b[p] === 0x67) addr32 = true;
    p++;
    if (p - start > 14) return null;
  }
  if (p < end && (b[p] & 0xf0) === 0x40) {
    rexW = (b[p] & 8) !== 0;
    p++;
  }
  if (p >= end) return null;
  const op = b[p++];
  const iz = opsize16 ? 2 : 4;
  let map = 1;
  let opcode = op;
  let hasModrm: boolean;
  let imm = 0;
  let immIsAddr = false;
  let branch: Insn['branch'];
  let relSize = 0;

  if (op === 0xc4 || op === 0xc5 || op === 0x62) {
    // VEX (3- or 2-byte) and EVEX: in 64-bit mode these bytes are always the prefix.
    const n = op === 0xc5 ? 1 : op === 0xc4 ? 2 : 3;
    if (p + n >= end) return null;
    map = op === 0xc5 ? 1 : b[p] & (op === 0x62 ? 0x07 : 0x1f);
    p += n;
    opcode = b[p++];
    if (map < 1 || map > 3) return null;
    hasModrm = !(map === 1 && opcode === 0x77);
    if (map === 3 || (map === 1 && IMM8_0F.has(opcode))) imm = 1;
  } else if (op === 0x0f) {
    if (p >= end) return null;
    opcode = b[p++];
    if (opcode === 0x38 || opcode === 0x3a) {
      if (p >= end) return null;
      map = opcode === 0x38 ? 2 : 3;
      opcode = b[p++];
      hasModrm = true;
      if (map === 3) imm = 1;
    } else {
      map = 1;
      if (opcode === 0x0f) {
        // 3DNow!: ModRM, then the opcode as an imm8
        hasModrm = true;
        imm = 1;
      } else if (opcode >= 0x80 && opcode <= 0x8f) {
        hasModrm = false;
        branch = 'jcc';
        relSize = 4;
      } else {
        hasModrm = MODRM2[opcode] === 1;
        if (IMM8_0F.has(opcode)) imm = 1;
      }
    }
  } else {
    map = 0;
    hasModrm = MODRM1[op] === 1;
    switch (op) {
      case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17: case 0x1e: case 0x1f:
      case 0x27: case 0x2f: case 0x37: case 0x3f: case 0x60: case 0x61: case 0x82:
      case 0x9a: case 0xce: case 0xd4: case 0xd5: case 0xd6: case 0xea:
        return null; // invalid in 64-bit mode
    }
    if (op < 0x40 && (op & 7) === 4) imm = 1;
    else if (op < 0x40 && (op & 7) === 5) imm = iz;
    else if (op === 0x68 || op === 0x69 || op === 0x81 || op === 0xa9 || op === 0xc7) imm = iz;
    else if (op === 0x6a || op === 0x6b || op === 0x80 || op === 0x83 || op === 0xa8 || op === 0xc0 || op === 0xc1 || op === 0xc6 || op === 0xcd) imm = 1;
    else if (op >= 0xe4 && op <= 0xe7) imm = 1;
    else if (op >= 0xb0 && op <= 0xb7) imm = 1;
    else if (op >= 0xb8 && op <= 0xbf) imm = rexW ? 8 : iz;
    else if (op === 0xc2 || op === 0xca) imm = 2;
    else if (op === 0xc8) imm = 3;
    else if (op >= 0xa0 && op <= 0xa3) {
      imm = addr32 ? 4 : 8; // moffs: an absolute address
      immIsAddr = true;
    } else if (op >= 0x70 && op <= 0x7f) {
      branch = 'jcc';
      relSize = 1;
    } else if (op >= 0xe0 && op <= 0xe3) {
      branch = 'jcc';
      relSize = 1;
    } else if (op === 0xe8) {
      branch = 'call';
      relSize = 4;
    } else if (op === 0xe9) {
      branch = 'jmp';
      relSize = 4;
    } else if (op === 0xeb) {
      branch = 'jmp';
      relSize = 1;
    }
    if (op === 0xb8 || (op >= 0xb8 && op <= 0xbf) || op === 0x68 || op === 0xc7 || op === 0x81 || op === 0x69 || op === 0xa9 || (op < 0x40 && (op & 7) === 5)) immIsAddr = imm >= 4;
  }

  let ripAt: number | undefined;
  if (hasModrm) {
    const m = modrm(b, p, end);
    if (!m) return null;
    if (map === 0 && (op === 0xf6 || op === 0xf7) && m.reg < 2) imm = op === 0xf6 ? 1 : iz;
    if (m.rip && !addr32) ripAt = p + 1 - start;
    p += m.len;
  }
  const insn: Insn = { len: 0 };
  if (relSize) {
    insn.relAt = p - start;
    insn.relSize = relSize;
    insn.branch = branch;
    p += relSize;
  }
  if (imm) {
    if (immIsAddr) {
      insn.immAt = p - start;
      insn.immSize = imm;
    }
    p += imm;
  }
  if (p > end) return null;
  insn.len = p - start;
  if (ripAt !== undefined) insn.ripAt = ripAt;
  return insn;
}

/** A signed little-endian value of size 1 or 4 at b[at]. */
export function rel(b: Uint8Array, at: number, size: number): number {
  if (size === 1) return (b[at] << 24) >> 24;
  return b[at] | (b[at + 1] << 8) | (b[at + 2] << 16) | (b[at + 3] << 24);
}

/** An unsigned little-endian immediate of 4 or 8 bytes (exact below 2^53). */
function uimm(b: Uint8Array, at: number, size: number): number {
  const lo = (b[at] | (b[at + 1] << 8) | (b[at + 2] << 16)) + b[at + 3] * 0x1000000;
  if (size === 4) return lo;
  const hi = (b[at + 4] | (b[at + 5] << 8) | (b[at + 6] << 16)) + b[at + 7] * 0x1000000;
  return hi * 0x100000000 + lo;
}

export interface CodeRef {
  /** Index of the instruction in the function. */
  insn: number;
  kind: RefKind;
  /** Link-time address referenced. */
  target: number;
}

export interface MaskedCode {
  /** The code with every linker-chosen address zeroed. */
  masked: Buffer;
  /** Every address the code names outside itself, in order. */
  refs: CodeRef[];
  insns: number;
}

/**
 * The function whose code is `code`, at link-time `vaddr`: its bytes with
 * the addresses masked, and the addresses it refers to. Branches inside the
 * function keep their displacement (they are part of its shape); branches
 * out of it, RIP-relative displacements and (when `image` is given, for a
 * non-PIE object) immediates inside [image.lo, image.hi) are masked.
 * Null when an instruction is not decoded or runs past the end.
 */
export function maskCode(code: Uint8Array, vaddr: number, image: { lo: number; hi: number } | null): MaskedCode | null {
  const masked = Buffer.from(code);
  const refs: CodeRef[] = [];
  const end = code.length;
  let p = 0;
  let n = 0;
  while (p < end) {
    const i = decode(code, p, end);
    if (!i) return null;
    const next = vaddr + p + i.len;
    if (i.relAt !== undefined && i.relSize !== undefined) {
      const target = next + rel(code, p + i.relAt, i.relSize);
      if (target < vaddr || target >= vaddr + end) {
        masked.fill(0, p + i.relAt, p + i.relAt + i.relSize);
        refs.push({ insn: n, kind: i.branch === 'call' ? 'call' : i.branch === 'jmp' ? 'jmp' : 'jcc', target });
      }
    }
    if (i.ripAt !== undefined) {
      const target = next + rel(code, p + i.ripAt, 4);
      masked.fill(0, p + i.ripAt, p + i.ripAt + 4);
      refs.push({ insn: n, kind: 'data', target });
    }
    if (image && i.immAt !== undefined && i.immSize !== undefined) {
      const v = uimm(code, p + i.immAt, i.immSize);
      if (v >= image.lo && v < image.hi) {
        masked.fill(0, p + i.immAt, p + i.immAt + i.immSize);
        refs.push({ insn: n, kind: 'data', target: v });
      }
    }
    p += i.len;
    n++;
  }
  return { masked, refs, insns: n };
}
