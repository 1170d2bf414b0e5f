/**
 * The memory a snapshot copies into (sampler/memory/slabs.ts, slab.c): the
 * first slab in plain pages, the ones after it in huge pages, so a walk of
 * many MiB faults a few times a slab rather than once a page. Counted by
 * the kernel's own page-fault count of this process, not timed.
 */
import fs from 'node:fs';
import t from 'tap';
import { loadAddon } from '../sampler/memory/native-addon.ts';
import { type SlabAddon, Slabs } from '../sampler/memory/slabs.ts';

const MiB = 1024 * 1024;
const PAGE = 4096;
const addon = loadAddon<SlabAddon>('xwalk_pvr');
/** Why huge pages cannot be had here, or null: the kernel's setting ([never]), or this process's (THP_enabled: 0, prctl or a cgroup). */
const noHugePages = ((): string | null => {
  try {
    if (/\[never\]/.test(fs.readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8'))) return 'transparent huge pages are off on this kernel';
    if (/^THP_enabled:\s+0$/m.test(fs.readFileSync('/proc/self/status', 'utf8'))) return 'transparent huge pages are off for this process';
    return null;
  } catch {
    return 'this kernel has no transparent huge pages';
  }
})();

/** Page faults this process takes while f runs. */
function faultsOf(f: () => void): number {
  const before = process.resourceUsage().minorPageFault;
  f();
  return process.resourceUsage().minorPageFault - before;
}

/** Writes a byte in every page: what a copy into the memory does. */
const touch = (b: Uint8Array) => {
  for (let i = 0; i < b.length; i += PAGE) b[i] = 1;
};

t.test('slab(): memory of at least the size asked, rounded up to whole huge pages, and a clear error for a bad size', { skip: addon ? false : 'the native addon is not built (make native)' }, async (t) => {
  const b = addon!.slab(3 * MiB);
  t.ok(b instanceof ArrayBuffer && b.byteLength >= 3 * MiB && b.byteLength % (2 * MiB) === 0, `${b.byteLength} bytes for 3 MiB`);
  const u = new Uint8Array(b);
  u[0] = 7;
  u[u.length - 1] = 9;
  t.same([u[0], u[u.length - 1], u[MiB]], [7, 9, 0], 'readable and writable to its last byte; zeroed');
  t.throws(() => addon!.slab(0), TypeError);
  t.throws(() => addon!.slab(-1), TypeError);
  t.throws(() => addon!.slab(Number.NaN), TypeError);
  t.throws(() => addon!.slab(1.5), TypeError, 'a whole number of bytes');
  t.throws(() => addon!.slab(2 ** 41), { name: 'TypeError', message: /2\^40/ }, 'past the limit, which the message names');
});

t.test('a walk of 20 MiB faults in huge pages past its first slab, and next to never when its slabs are used again', { skip: !addon ? 'the native addon is not built (make native)' : (noHugePages ?? false) }, async (t) => {
  const slabs = new Slabs();
  touch(slabs.take(4 * MiB));
  const big = 16 * MiB;
  const chunks = Array.from({ length: big / (64 * 1024) }, () => slabs.take(64 * 1024));
  const faults = faultsOf(() => chunks.forEach(touch));
  // Room for the faults of node's own threads meanwhile; plain pages would fault once each.
  t.ok(faults < big / PAGE / 8, `16 MiB past the first slab: ${faults} faults, against ${big / PAGE} pages`);

  slabs.reset();
  const again = faultsOf(() => {
    for (let i = 0; i < 20 * 16; i++) touch(slabs.take(64 * 1024));
  });
  t.ok(again < 64, `the same slabs reused: ${again} faults, against ${(20 * MiB) / PAGE} pages`);
});
