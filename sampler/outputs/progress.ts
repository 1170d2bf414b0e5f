/** A line of progress on stderr (a terminal's), redrawn at most twice a second, erased when done. */
export class Progress {
  private last = 0;
  private shown = false;

  update(text: string): void {
    const now = performance.now();
    if (now - this.last < 500) return;
    this.last = now;
    this.shown = true;
    process.stderr.write(`\r\x1b[Kxsample: ${text}`);
  }

  done(): void {
    if (this.shown) process.stderr.write('\r\x1b[K');
  }
}
