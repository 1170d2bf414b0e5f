/** Ctrl-C between samples: stop, keep what was gathered. A second Ctrl-C leaves at once. */
export class Interrupt {
  stopped = false;
  private wake: (() => void) | null = null;
  private readonly onSigint = () => {
    if (this.stopped) process.exit(130);
    this.stopped = true;
    this.wake?.();
  };

  constructor() {
    process.on('SIGINT', this.onSigint);
  }

  /** Waits ms, or less when interrupted. */
  sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = null;
        resolve();
      }
      this.wake = done;
    });
  }

  dispose(): void {
    process.off('SIGINT', this.onSigint);
  }
}
