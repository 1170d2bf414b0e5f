/**
 * The schema cache: a pack's checked IR, kept so the next xsample run need
 * not parse and check its YAML again ($XDG_CACHE_HOME/xwalk/schemas).
 * Parsing nginx's schema is a third of a one-shot xsample's CPU time.
 *
 * An entry is keyed by the schema's text and path and by the program that
 * reads it, and holds only while the files it imports read the same (the bundle's size and time: an IR of another xwalk is never
 * read), v8-serialized (Maps and shared walk bodies survive), and trusted
 * only as the layout cache is: a folder and files only we could have
 * written (TrustedCache). Run from sources rather than a bundle, there is
 * no cache.
 *
 * A command that reads a few views (show, top, record, serve --struct)
 * gets a second entry beside the pack's: the pack with only those views
 * (forView). Reading nginx's whole IR (800 KB, 22,000 objects) was a
 * tenth of a one-shot command; one view's is a fifth of that.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import { trustedInPacks } from '../core/packs.ts';
import { readRegularFile } from '../core/regular-file.ts';
import { type PackIR, SchemaError } from './ir.ts';
import type { KernelRefusals } from './kernel-refusals.ts';
import { TrustedCache } from './layout-cache.ts';
import { parseSchema } from './schema.ts';

/** What identifies the code that made an entry: the bundle it runs from, or null (no cache). */
function programStamp(): string | null {
  const self = fileURLToPath(import.meta.url);
  if (!self.endsWith('.js')) return null;
  const st = fs.statSync(self);
  return `${self} ${st.size} ${st.mtimeMs}`;
}

/** Whether every file of walks the pack imports still reads as it did when the entry was made, from a folder that can still be trusted. */
function importsUnchanged(pack: PackIR): boolean {
  return (
    Array.isArray(pack.imports) &&
    pack.imports.every((i) => {
      try {
        if (typeof i.file !== 'string' || !trustedInPacks(path.dirname(path.dirname(i.file)), i.file)) return false;
        return crypto.createHash('sha256').update(readRegularFile(i.file)).digest('hex') === i.sha256;
      } catch {
        return false;
      }
    })
  );
}

/**
 * The pack with only the views `wants` names (a flame graph's name brings its views), and no named walks (the views
 * hold what they call): what xsample needs to read them. null when a name is neither a view nor a flame graph of
 * the pack, so that the whole pack says what it has.
 */
export function forView(pack: PackIR, wants: string[]): PackIR | null {
  const names = new Set(wants.flatMap((w) => pack.flamegraphs.get(w)?.views ?? [w]));
  if (names.size === 0 || [...names].some((n) => !pack.views.has(n))) return null;
  return { ...pack, views: new Map([...pack.views].filter(([n]) => names.has(n))), walks: new Map() };
}

const sha = (text: string): string => crypto.createHash('sha256').update(text).digest('hex');

/** An entry we wrote, or null: not a pack, or one whose imported files changed since. */
function packOf(bytes: Buffer): PackIR | null {
  try {
    const pack = v8.deserialize(bytes) as PackIR;
    return pack && pack.views instanceof Map && pack.structs instanceof Map && typeof pack.name === 'string' && importsUnchanged(pack) ? pack : null;
  } catch {
    return null; // not an entry we wrote: parse again, and write it anew
  }
}

/** The checked IR of the schema in `file`, from the cache when it holds; with `wants`, only those views (forView), when the pack has them all. */
export function loadSchemaCached(file: string, kernel: KernelRefusals, warn: (message: string) => void = () => {}, wants: string[] = []): PackIR {
  let text: string;
  try {
    text = readRegularFile(file);
  } catch (err) {
    throw new SchemaError({ file, line: 1, col: 1 }, `cannot read the schema: ${(err as Error).message}`);
  }
  const stamp = programStamp();
  if (!stamp) return parseSchema(text, file, kernel);
  const cache = new TrustedCache('schemas', warn);
  const folder = path.basename(path.dirname(file));
  const key = sha(`${stamp}\0${path.resolve(file)}\0${text}`).slice(0, 40);
  const part = wants.length > 0 ? `${key}.${sha(JSON.stringify([...new Set(wants)].sort())).slice(0, 16)}.v8` : null;
  const kept = part && cache.read(folder, part);
  const fromPart = kept && packOf(kept.bytes);
  if (fromPart) return fromPart;
  const whole = (): PackIR => {
    const entry = cache.read(folder, `${key}.v8`);
    const pack = entry && packOf(entry.bytes);
    if (pack) return pack;
    const parsed = parseSchema(text, file, kernel);
    // The pack's entry replaces the folder's others, its parts included: a schema has one current IR.
    cache.write(folder, `${key}.v8`, v8.serialize(parsed), { only: key });
    return parsed;
  };
  const pack = whole();
  const some = part && forView(pack, wants);
  if (!some) return pack;
  cache.write(folder, part, v8.serialize(some));
  return some;
}
