/**
 * The native addon xwalk_bpf (sampler/native/bpf.c): raw bpf(2) and
 * perf_event_open(2), every object a file descriptor. Loaded once; a
 * machine without the addon or without BPF gives one clear line.
 */
import { UserError } from '../../core/errors.ts';
import { loadAddon } from '../memory/native-addon.ts';
import type { BpfMapType } from './program.ts';

export interface BpfProgInfo {
  id: number;
  runCount: number;
  runTimeNs: number;
  jitedLen: number;
  xlatedLen: number;
  verifiedInsns: number;
}

/** The addon's functions (their contract is documented at the top of bpf.c). */
export interface BpfAddon {
  progLoad(type: 'perf_event' | 'kprobe', insns: Buffer, license: string, name?: string): number;
  mapCreate(type: BpfMapType, keySize: number, valueSize: number, maxEntries: number, name?: string): number;
  mapLookup(fd: number, key: Buffer, value: Buffer): boolean;
  mapUpdate(fd: number, key: Buffer, value: Buffer): void;
  mapDelete(fd: number, key: Buffer): boolean;
  mapNextKey(fd: number, key: Buffer | null, next: Buffer): boolean;
  possibleCpus(): number;
  perfClock(tid: number, freqHz: number): number;
  perfUprobe(path: string, fileOffset: number, pid: number): number;
  attach(perfFd: number, progFd: number): void;
  close(fd: number): void;
  ringbufOpen(mapFd: number, size: number): object;
  ringbufDrain(handle: object, max: number): Buffer[];
  ringbufWait(handle: object, ms: number): boolean;
  ringbufClose(handle: object): void;
  enableStats(): number;
  progInfo(fd: number): BpfProgInfo;
  progIds(): number[];
}

/** The addon's errors carry errno, and a refused program the verifier's log (its last 40 lines). */
export interface BpfError extends Error {
  errno?: number;
  log?: string;
}

/** A program the kernel's verifier refused: one line, and the log's tail in `log`. */
export class VerifierRefused extends UserError {
  constructor(
    message: string,
    readonly log: string,
  ) {
    super(message);
    this.name = 'VerifierRefused';
  }
}

const TRIVIAL = Buffer.from([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]); // r0 = 0; exit

let checked: string | null | undefined;

/** Why eBPF cannot run here ("the native addon xwalk_bpf is not built", "BPF is not available here: ..."), or null when it can. */
export function bpfUnavailable(): string | null {
  if (checked !== undefined) return checked;
  const addon = loadAddon<BpfAddon>('xwalk_bpf');
  if (!addon) return (checked = 'the native addon xwalk_bpf is not built (make native)');
  try {
    addon.close(addon.progLoad('perf_event', TRIVIAL, 'GPL', 'xwalk_probe'));
    checked = null;
  } catch (err) {
    checked = (err as Error).message;
  }
  return checked;
}

/** The addon, or a UserError the CLI prints as "xsample: eBPF is not available: ...". */
export function bpfAddon(): BpfAddon {
  const why = bpfUnavailable();
  if (why !== null) throw new UserError(`eBPF is not available: ${why.replace(/^BPF is not available here: /, '')}`);
  return loadAddon<BpfAddon>('xwalk_bpf')!;
}
