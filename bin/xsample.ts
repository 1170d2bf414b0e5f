#!/usr/bin/env node
// xsample's launcher: every thread is lowered to nice 19 (or --nice) before the
// sampler and its imports load, so nothing of xsample runs at the target's
// priority. The sampler is a bundle of its own, loaded by a path esbuild leaves alone.
import { beNice, niceLevel } from '../sampler/cli/nice.ts';

beNice(niceLevel(process.argv.slice(2)));
await import(new URL('./xsample-main.js', import.meta.url).href);
