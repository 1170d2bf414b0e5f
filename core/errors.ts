/** The errors every layer may raise and the CLIs print as one line. */

/** The target process exited (or never existed) while we read it. */
export class TargetGone extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetGone';
  }
}

/** A clear, one-line error for the user; the CLI prints message and exits non-zero. */
export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}
