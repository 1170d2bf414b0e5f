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

export function loadSchemaCached(file: string, kernel: KernelRefusals, warn: (message: string) => void = () => {}): PackIR {
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
  const name = `${crypto.createHash('sha256').update(`${stamp}\0${path.resolve(file)}\0${text}`).digest('hex').slice(0, 40)}.v8`;
  const entry = cache.read(folder, name);
  if (entry) {
    try {
      const pack = v8.deserialize(entry.bytes) as PackIR;
      if (pack && pack.views instanceof Map && pack.structs instanceof Map && typeof pack.name === 'string' && importsUnchanged(pack)) return pack;
    } catch {
      // Not an entry we wrote: parse again, and write it anew.
    }
  }
  const pack = parseSchema(text, file, kernel);
  cache.write(folder, name, v8.serialize(pack), { only: true });
  return pack;
}
