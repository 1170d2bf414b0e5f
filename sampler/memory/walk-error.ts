/** Why a walk stopped early. The walk's result is then partial, never garbage. */
export type WalkErrorKind = 'cycle' | 'limit' | 'corrupt' | 'unavailable';

export class WalkError extends Error {
  constructor(
    readonly kind: WalkErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'WalkError';
  }
}

export interface Limits {
  /** Most elements one walk (one chain, array, list, queue or tree) may yield. */
  maxNodes: number;
  /** Most elements all walks of one sample may yield together. */
  maxTotal: number;
}

export const DEFAULT_LIMITS: Limits = { maxNodes: 10_000_000, maxTotal: 100_000_000 };
