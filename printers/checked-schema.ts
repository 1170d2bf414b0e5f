/**
 * A schema loaded as the tools load it: checked by generators/schema.ts and by what the
 * kernel refuses (bpf/refusals.ts), so a probe or an instant: view the eBPF printer cannot
 * print is refused at load with its file:line:col. Load schemas through here.
 */
import type { PackIR } from '../generators/ir.ts';
import { loadSchema as loadWith, parseSchema as parseWith } from '../generators/schema.ts';
import { loadSchemaCached as loadCachedWith } from '../generators/schema-cache.ts';
import { KERNEL_REFUSALS } from './bpf/refusals.ts';

export const loadSchema = (file: string): PackIR => loadWith(file, KERNEL_REFUSALS);
export const parseSchema = (text: string, file: string): PackIR => parseWith(text, file, KERNEL_REFUSALS);
export const loadSchemaCached = (file: string, warn?: (message: string) => void, wants?: string[]): PackIR => loadCachedWith(file, KERNEL_REFUSALS, warn, wants);
