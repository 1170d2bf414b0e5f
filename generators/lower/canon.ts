/**
 * What an expression of the checked IR is, as text: two that compute the same give the same text (a grouped
 * fold's walks and aggregates, a reach's state are shared by it).
 */

/** Keys of the IR that hold a slot: a variable's, or one a walk binds (slot, nameSlot, fromSlot...). */
const isSlotKey = (k: string): boolean => k === 'slot' || k.endsWith('Slot');

/**
 * x as text, its slots renumbered in the order they first appear (self, slot 0, kept as it is unless
 * renumberSelf: then it is numbered as any other, and the caller passes what it stands for); a named walk
 * is its name and argument (its body is a function of its own self). slots: the slots in that order.
 */
export function canonical(x: unknown, renumberSelf = false): { text: string; slots: number[] } {
  const slots = new Map<number, number>();
  const text = JSON.stringify(x, (k, val: unknown) => {
    if (typeof val === 'bigint') return `${val}n`;
    if (isSlotKey(k) && typeof val === 'number' && (renumberSelf || val !== 0)) {
      if (!slots.has(val)) slots.set(val, slots.size + 1);
      return slots.get(val);
    }
    if (val !== null && typeof val === 'object' && (val as { op?: string }).op === 'call') {
      const c = val as { walk: string; arg: unknown; type: unknown };
      return { op: 'call', walk: c.walk, arg: c.arg, type: c.type };
    }
    return val;
  });
  return { text, slots: [...slots.keys()] };
}
