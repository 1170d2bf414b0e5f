/**
 * Names of native frames as a profile shows them: the function from the
 * object's .symtab (or that of its separate debug file under
 * /usr/lib/debug/.build-id, as gdb reads it, or of a recovered symbol
 * table of its build: sampler/memory/recovered-symbols.ts), else its .dynsym, else
 * `object+0xOFFSET` (the offset
 * in the file's link-time address space, what `addr2line -e object` and
 * gdb's `info symbol` on the file take); kernel frames from /proc/kallsyms.
 */
import fs from 'node:fs';
import { inObject } from '../symbols.ts';
import type { UnwindObject } from './objects.ts';

/**
 * The name of the frame at runtime pc in object o (null: anonymous memory or no mapping). For a return address
 * the function is the one holding pc-1: the call may be the last instruction of its function.
 */
export function nativeFrameName(o: UnwindObject | null, pc: number, isReturnAddress: boolean): string {
  if (!o) return Number.isFinite(pc) && pc > 0 ? '[anon]' : '[unknown]';
  const sym = o.symbol(isReturnAddress ? pc - 1 : pc);
  if (sym) return sym.name;
  return inObject(o.name, pc, o.bias);
}

interface KernelSymbol {
  addr: bigint;
  name: string;
}

/** Text symbol types in /proc/kallsyms (nm's letters): functions, weak ones, and the like. */
const TEXT = new Set(['t', 'T', 'w', 'W']);

export class KernelSymbols {
  private constructor(private readonly sorted: KernelSymbol[]) {}

  /** /proc/kallsyms; without CAP_SYSLOG every address reads 0, and every frame is named by address. */
  static load(file = '/proc/kallsyms'): KernelSymbols {
    let text = '';
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      /* no kallsyms: addresses only */
    }
    return KernelSymbols.parse(text);
  }

  static parse(text: string): KernelSymbols {
    const out: KernelSymbol[] = [];
    for (const line of text.split('\n')) {
      const sp1 = line.indexOf(' ');
      const sp2 = line.indexOf(' ', sp1 + 1);
      if (sp1 <= 0 || sp2 < 0 || !TEXT.has(line[sp1 + 1])) continue;
      const end = line.indexOf('\t', sp2 + 1);
      const addr = BigInt(`0x${line.slice(0, sp1)}`);
      if (addr === 0n) continue;
      out.push({ addr, name: line.slice(sp2 + 1, end < 0 ? undefined : end) });
    }
    out.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
    return new KernelSymbols(out);
  }

  /** The kernel function holding addr (a bigint keeps all 64 bits; a number above 2^53 has lost its low ones), or `[kernel]+0x..`. */
  name(addr: number | bigint): string {
    const a = typeof addr === 'bigint' ? addr : BigInt(Math.round(addr));
    let lo = 0;
    let hi = this.sorted.length - 1;
    let found = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.sorted[mid].addr <= a) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    if (found < 0 || found === this.sorted.length - 1) return `[kernel]+0x${a.toString(16)}`;
    return this.sorted[found].name;
  }
}
