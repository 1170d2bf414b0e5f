/**
 * The one memory contract every source implements (process_vm_readv,
 * /proc/PID/mem, an ELF core file, and fakes in unit tests).
 */
export interface MemorySource {
  /**
   * Copies out.length bytes of the target's memory at addr into out.
   * Returns how many bytes were read from the start: fewer than
   * out.length means the byte at addr + result could not be read.
   * Throws TargetGone when the process no longer exists.
   */
  readInto(addr: number, out: Uint8Array): number;
  /**
   * Reads the ranges (addrs[i], lens[i]) into out, back to back, in one call where the source can (one
   * process_vm_readv). Returns how many bytes were read from the start; a range is whole when the count
   * reaches its end. Throws as readInto does.
   */
  readMany?(addrs: Float64Array, lens: Uint32Array, out: Uint8Array): number;
  /** How many system calls the source's reads have made, where one read may take several (readMany past IOV_MAX ranges). */
  readonly systemCalls?: number;
  /** Why the byte at addr cannot be read, when the source can say more than "unreadable" (a core cut short). */
  explain?(addr: number): string;
  /** Human-readable name for messages: "pid 1234 (process_vm_readv)". */
  readonly description: string;
  close(): void;
}

export { TargetGone, UserError } from '../../core/errors.ts';

/** An address as 0x...; a negative one (an address computed below 0) as its 64-bit two's complement, as Python prints it. */
export { hex } from '../../core/exact.ts';
