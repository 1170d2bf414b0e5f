/**
 * execa, loaded only when a command is run (as xgen-cli.ts loads it only to run gdb): xsample imports the
 * automatic step of xgen symbols, and most runs of it never fetch or build anything.
 */
import type { execa as Execa } from 'execa';

export const execa = ((...args: unknown[]) => import('execa').then((m) => (m.execa as (...a: unknown[]) => unknown)(...args))) as unknown as typeof Execa;
