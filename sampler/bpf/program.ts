/**
 * What the eBPF printer (printers/bpf/) hands the loader: the
 * program's instructions, the maps it names and where it names them.
 */

/** The map kinds the loader creates (enum bpf_map_type: ARRAY, PERCPU_ARRAY, HASH, PERCPU_HASH, RINGBUF). */
export type BpfMapType = 'array' | 'percpu_array' | 'hash' | 'percpu_hash' | 'ringbuf';

export interface BpfMapSpec {
  /** The name relocations use; also the kernel's map name (its first 15 of [A-Za-z0-9_.]). */
  name: string;
  type: BpfMapType;
  /** 0 for a ring buffer. */
  keySize: number;
  /** 0 for a ring buffer. */
  valueSize: number;
  /** For a ring buffer: its size in bytes, a power of two and a multiple of the page size. */
  maxEntries: number;
}

export interface BpfMapReloc {
  /** Index of the first half of a 16-byte BPF_LD_IMM64 (code 0x18): the loader sets its src_reg to BPF_PSEUDO_MAP_FD (1) and its imm to the map's fd. */
  insn: number;
  map: string;
}

export interface BpfProgram {
  /** struct bpf_insn, 8 bytes each, little endian. */
  insns: Buffer;
  maps: BpfMapSpec[];
  relocs: BpfMapReloc[];
}
