/**
 * The memory a snapshot copies the target's bytes into: chunks cut from a
 * few 4 MiB slabs rather than one buffer each (less garbage to collect).
 * A sampler taking sample after sample keeps its Slabs and reuses them
 * (reset() when the previous sample is done with): the pages are already
 * the process's, so the next sample's copies cost no page faults.
 */
const SLAB = 4 * 1024 * 1024;

export class Slabs {
  private readonly slabs: ArrayBuffer[] = [];
  /** The slab being cut from, and how much of it is used. */
  private current = -1;
  private used = 0;

  /** len bytes, not zeroed: the caller overwrites what it reads. */
  take(len: number): Uint8Array {
    if (this.current < 0 || this.used + len > this.slabs[this.current].byteLength) {
      this.current++;
      if (this.current === this.slabs.length || this.slabs[this.current].byteLength < len) this.slabs.splice(this.current, 0, new ArrayBuffer(Math.max(SLAB, len)));
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
