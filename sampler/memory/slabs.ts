/**
 * The memory a snapshot copies the target's bytes into: chunks cut from a
 * few 4 MiB slabs rather than one buffer each (less garbage to collect).
 * A sampler taking sample after sample keeps its Slabs and reuses them
 * (reset() when the previous sample is done with): the pages are already
 * the process's, so the next sample's copies cost no page faults.
 *
 * Slabs after the first are in huge pages where the native addon is built
 * (slab.c): a walk of 24 MiB copied into 4 KiB pages faults 6,000 times
 * (100 ms of kernel time on a virtual machine here) and into huge pages a
 * dozen times (3 ms). The first stays in plain pages, so that a small
 * sample, the usual one, holds only the pages it uses.
 */
import { loadAddon } from './native-addon.ts';

const SLAB = 4 * 1024 * 1024;

export interface SlabAddon {
  slab(bytes: number): ArrayBuffer;
}

/**
 * bytes of memory for a slab: the first of a Slabs in plain pages, the others in huge pages when the addon can (one
 * built before slab.c cannot).
 */
function allocate(bytes: number, first: boolean): ArrayBuffer {
  const addon = first ? null : loadAddon<Partial<SlabAddon>>('xwalk_pvr');
  return addon?.slab ? addon.slab(bytes) : new ArrayBuffer(bytes);
}

export class Slabs {
  private readonly slabs: ArrayBuffer[] = [];
  /** The slab being cut from, and how much of it is used. */
  private current = -1;
  private used = 0;

  /** len bytes, not zeroed: the caller overwrites what it reads. */
  take(len: number): Uint8Array {
    if (this.current < 0 || this.used + len > this.slabs[this.current].byteLength) {
      this.current++;
      if (this.current === this.slabs.length || this.slabs[this.current].byteLength < len) this.slabs.splice(this.current, 0, allocate(Math.max(SLAB, len), this.current === 0));
      this.used = 0;
    }
    const out = new Uint8Array(this.slabs[this.current], this.used, len);
    this.used += len;
    return out;
  }

  /** n 32-bit words, zeroed (a chunk's marks), cut from the slabs as bytes are. */
  words(n: number): Uint32Array {
    this.used = (this.used + 7) & ~7;
    const bytes = this.take(n * 4);
    bytes.fill(0);
    return new Uint32Array(bytes.buffer, bytes.byteOffset, n);
  }

  /** Every slab free again: whatever was cut from them before must no longer be used. */
  reset(): void {
    this.current = -1;
    this.used = 0;
  }
}
