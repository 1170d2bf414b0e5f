/**
 * The inline-or-call decision: where a schema calls a named walk, whether
 * its body is written in place (self bound to the argument: its loops fuse
 * with the caller's) or the call stays a call of the walk's own function
 * (the argument evaluated once). The checker asks at each call it checks
 * (check-expr.ts) and expands an inlined body itself, since only it gives
 * out the caller's slots; lowering makes one function per called walk
 * (lower.ts, Builder.walk).
 */
import type { TExpr } from '../ir.ts';

/** A named walk of at most this many parts is inlined where it is called (its loops fuse with the caller's); a larger one is a function. */
export const MAX_INLINE_WALK = 40;

/** What a walk's checked body costs where it is inlined: its parts, and how often it evaluates self. */
export interface WalkCost {
  /** The parts of the body (a called walk counts as its argument and one). */
  size: number;
  /** Where self (slot 0) appears: an inlined call evaluates its argument at each. */
  selfUses: number;
}

export function walkCost(e: TExpr): WalkCost {
  const cost = { size: 0, selfUses: 0 };
  const visit = (x: unknown): void => {
    if (x === null || typeof x !== 'object') return;
    const o = x as Record<string, unknown>;
    if (o.op === 'call') {
      cost.size++;
      visit(o.arg);
      return;
    }
    if ('op' in o) cost.size++;
    if (o.op === 'var' && o.slot === 0) cost.selfUses++;
    for (const [k, val] of Object.entries(o)) if (k !== 'type' && typeof val === 'object') visit(val);
  };
  visit(e);
  return cost;
}

/** An argument as cheap to evaluate again as to pass: a variable (self, it) or a number. */
const cheapArgument = (e: TExpr): boolean => e.op === 'var' || e.op === 'num';

/**
 * A call of the walk `walk` (no parameters) with its argument checked, and
 * its body checked on its own: the call node when the walk is called, null
 * when its body is to be inlined. A large body is called; so is a walk of a
 * value that would evaluate a costly argument more than once where self
 * appears (a walk of a sequence stays inlined, so that its loop fuses with
 * the caller's).
 */
export function walkCall(walk: string, arg: TExpr, checked: { body: TExpr } & WalkCost): Extract<TExpr, { op: 'call' }> | null {
  const again = checked.body.type.k !== 'seq' && checked.selfUses > 1 && !cheapArgument(arg);
  if (checked.size > MAX_INLINE_WALK || again) return { op: 'call', walk, arg, body: checked.body, type: checked.body.type };
  return null;
}
