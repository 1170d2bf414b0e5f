/**
 * Placeholder until part "match" of issue 24 merges its own (functions
 * hashed with addresses masked, anchored by exports): of the nearest
 * release's debug build, only the symbols FILE itself exports (.dynsym),
 * at FILE's own addresses. Same signature as the real one.
 */
import { type ElfFile, SHN_UNDEF, STB_GLOBAL, STB_WEAK, STT_FUNC, STT_OBJECT } from '../../core/elf.ts';
import type { RecoveredSymbol } from '../../core/symbol-table.ts';
import { symbolsOf } from './table.ts';

export function matchSymbols(target: ElfFile, debug: ElfFile, progress?: (m: string) => void): { symbols: RecoveredSymbol[]; matched: number; total: number; verified: string } {
  const theirs = symbolsOf(debug);
  const exported = new Map(target.symbols().filter((s) => s.shndx !== SHN_UNDEF && (s.type === STT_FUNC || s.type === STT_OBJECT) && (s.bind === STB_GLOBAL || s.bind === STB_WEAK)).map((s) => [s.name, s]));
  const symbols: RecoveredSymbol[] = [];
  for (const s of theirs) {
    const own = exported.get(s.name);
    if (own && s.bind !== 'local') symbols.push({ ...s, value: own.value, size: own.size });
  }
  progress?.(`${symbols.length} of ${theirs.length} symbols placed by the names ${target.path} exports`);
  return { symbols, matched: symbols.length, total: theirs.length, verified: `${symbols.length} of ${theirs.length} symbols matched by exported name` };
}
