/** What every part of make bench shares: its progress line on stderr, and the median of its rounds. */
export const log = (s: string) => process.stderr.write(`bench: ${s}\n`);
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
