/**
 * Layouts: the sizes and offsets of one build, read from DWARF by gdb on
 * the binary file (never a process), stored per pack, release and
 * build-id. No offset is ever typed by hand.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import type { FieldType, PackIR } from './ir.ts';
import { packsDir, repoRoot } from './repo.ts';
import { UserError } from '../sampler/memory.ts';
import { readRegularFile } from '../sampler/regular-file.ts';

export const LAYOUT_FORMAT = 1;

export interface LayoutField {
  offset: number;
  size: number;
  signed?: boolean;
  bit?: number; // bitfields: first bit within the byte at offset
  bits?: number;
}

export interface LayoutStruct {
  size: number;
  align: number;
  fields: Record<string, LayoutField>;
}

export interface LayoutFile {
  xwalk_layout: number;
  pack: string;
  release: string;
  build_id: string;
  /** The build's signature string (binary.signature), when the schema names one: builds that share release and signature share struct layouts. */
  signature?: string;
  binary: string;
  producer: string;
  types: Record<string, LayoutStruct>;
  globals: Record<string, { size: number; signed?: boolean }>;
}

/** What gdb must look up: every struct, field and global the schema declares. */
export function layoutSpecOf(pack: PackIR): { structs: Record<string, Record<string, FieldType>>; globals: Record<string, FieldType> } {
  const structs: Record<string, Record<string, FieldType>> = {};
  for (const st of pack.structs.values()) structs[st.name] = Object.fromEntries([...st.fields.values()].map((f) => [f.name, f.type]));
  const globals = Object.fromEntries([...pack.globals.values()].map((g) => [g.name, g.type]));
  return { structs, globals };
}

/** Where the schema declares `where` ("type.field" or a global), for messages. */
function schemaPlace(pack: PackIR, where: string): string {
  const dot = where.indexOf('.');
  const st = pack.structs.get(dot < 0 ? where : where.slice(0, dot));
  const pos = dot < 0 ? (st?.pos ?? pack.globals.get(where)?.pos) : st?.fields.get(where.slice(dot + 1))?.pos;
  return pos ? `${path.relative(process.cwd(), pos.file) || pos.file}:${pos.line}:${pos.col}` : pack.file;
}

export interface ExtractOptions {
  release: string;
  buildId: string;
  signature?: string | null;
  /** The binary the layout is for, when the DWARF comes from another file (a probe built against its headers). */
  forBinary?: string;
}

/** Runs `gdb -batch -nx` on the binary file and returns its layout for the pack. */
export async function extractLayout(pack: PackIR, binary: string, opts: ExtractOptions): Promise<LayoutFile> {
  const dwarf = path.join(repoRoot(), 'gdb-py/xwalk_dwarf.py');
  const script = path.join(repoRoot(), 'generators/layout_gdb.py');
  let out: string;
  try {
    const r = await execa('gdb', ['-batch', '-nx', '-iex', 'set auto-load off', '-x', dwarf, '-x', script, binary], {
      env: { XWALK_LAYOUT_SPEC: JSON.stringify(layoutSpecOf(pack)) },
      timeout: 120_000,
      reject: false,
    });
    if (r.failed && r.exitCode === undefined) throw new UserError(`gdb could not run: ${r.shortMessage}`);
    out = r.stdout;
    if (!out.includes('XWALK-LAYOUT-BEGIN')) throw new UserError(`gdb could not read the layout of ${binary}: ${(r.stderr || r.stdout).trim().split('\n').slice(-3).join(' / ')}`);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UserError('gdb is not installed: it reads layouts from DWARF (apt-get install gdb)');
    throw err;
  }
  const json = out.slice(out.indexOf('XWALK-LAYOUT-BEGIN') + 18, out.indexOf('XWALK-LAYOUT-END'));
  const got = JSON.parse(json) as { types: LayoutFile['types']; globals: LayoutFile['globals']; errors: { where: string; message: string }[]; gdb: string };
  if (got.errors.length > 0) {
    const lines = got.errors.map((e) => `${schemaPlace(pack, e.where)}: ${e.where}: ${e.message}`);
    throw new UserError(`the schema does not match ${binary}:\n${lines.join('\n')}`);
  }
  return {
    xwalk_layout: LAYOUT_FORMAT,
    pack: pack.name,
    release: opts.release,
    build_id: opts.buildId,
    ...(opts.signature ? { signature: opts.signature } : {}),
    binary: path.basename(opts.forBinary ?? binary),
    producer: opts.forBinary ? `gdb ${got.gdb} from the DWARF of ${path.basename(binary)}, built against its headers` : `gdb ${got.gdb} from DWARF`,
    types: got.types,
    globals: got.globals,
  };
}

export function layoutJson(layout: LayoutFile): string {
  return JSON.stringify(layout, null, 1) + '\n';
}

// ---- the store: committed packs, and a cache for builds derived on the fly ----

export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'xwalk', 'layouts');
}

export interface KnownLayout {
  file: string;
  release: string;
  build_id: string;
  signature?: string;
  binary: string;
  /** Derived from a binary's DWARF on this machine and kept in the cache, not committed. */
  cached: boolean;
}

function readLayout(file: string): LayoutFile | null {
  try {
    const l = JSON.parse(readRegularFile(file)) as LayoutFile;
    return l.xwalk_layout === LAYOUT_FORMAT ? l : null;
  } catch {
    return null;
  }
}

/** Every layout of the pack: packs/<pack>/<release>/*.json, then the cache. */
export function knownLayouts(packName: string): KnownLayout[] {
  const dirs: string[] = [];
  const packDir = path.join(packsDir(), packName);
  if (fs.existsSync(packDir)) {
    for (const d of fs.readdirSync(packDir, { withFileTypes: true })) if (d.isDirectory()) dirs.push(path.join(packDir, d.name));
  }
  const cache = path.join(cacheDir(), packName);
  dirs.push(cache);
  const out: KnownLayout[] = [];
  for (const dir of dirs) {
    if (!fs.existsSync(dir)) continue;
    for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
      const l = readLayout(path.join(dir, f));
      if (l && l.pack === packName) out.push({ file: path.join(dir, f), release: l.release, build_id: l.build_id, signature: l.signature, binary: l.binary, cached: dir === cache });
    }
  }
  return out;
}

/** The layouts committed in the pack (never the cache): what generated extensions embed, sorted by file. */
export function committedLayouts(packName: string): LayoutFile[] {
  const dir = path.join(packsDir(), packName);
  return knownLayouts(packName)
    .filter((k) => k.file.startsWith(dir + path.sep))
    .map((k) => readLayout(k.file)!)
    .filter(Boolean);
}

/** The layout for this build-id: a committed one first, else one derived earlier (cached: true). */
export function layoutByBuildId(packName: string, buildId: string): (LayoutFile & { cached: boolean }) | null {
  const k = knownLayouts(packName).find((l) => l.build_id === buildId);
  const l = k ? readLayout(k.file) : null;
  return l && k ? { ...l, cached: k.cached } : null;
}

/** A layout made for another build of the same release with the same signature (a security update, say). */
export function layoutByVersion(packName: string, release: string, signature: string): LayoutFile | null {
  const k = knownLayouts(packName).find((l) => l.release === release && l.signature === signature);
  return k ? readLayout(k.file) : null;
}

/** Writes the layout whole or not at all: a reader running at the same time never sees half a file. */
export function writeLayout(layout: LayoutFile, dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${layout.build_id}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, layoutJson(layout), { flag: 'wx' });
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  return file;
}

export function describeKnown(packName: string): string {
  const known = knownLayouts(packName);
  if (known.length === 0) return `no builds of ${packName} are known yet`;
  return `known builds of ${packName}: ` + known.map((k) => `${k.release} ${k.binary} ${k.build_id.slice(0, 12)}`).join(', ');
}
