/**
 * The tags a walk marks the words it reads with (Snapshot.mark): the printed
 * code sets them, the snapshot keeps them beside each word, and the read-again
 * check says which item or column a changed word belonged to.
 */

/** The items' reads (roots, --addr, checks). */
export const ITEMS_TAG = 1;
/** A value a row's columns share (let:). */
export const SHARED_TAG = 1 << 15;
/** A column's reads: columns 0..12 have a bit each; the others share bit 14. */
export const tagOf = (column: number): number => 1 << (1 + Math.min(column, 13));
