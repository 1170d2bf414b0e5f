/**
 * Layouts: the sizes and offsets of one build, read from DWARF by gdb on
 * the binary file (never a process), stored per pack, release and
 * build-id. No offset is ever typed by hand.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { FieldType, PackIR } from './ir.ts';
import { packDir, packDirs, repoRoot, trustedInPacks } from '../core/packs.ts';
import { UserError } from '../core/errors.ts';
import { makeDirs, readRegularFile } from '../core/regular-file.ts';
import { checkedLayout } from './layout-valid.ts';
import { LAYOUT_FORMAT, type LayoutFile } from './layout-file.ts';

export type { LayoutField, LayoutFile } from './layout-file.ts';

/** What gdb must look up in one binary: every struct, field and global the schema declares of it (object: null, the program's own). */
export function layoutSpecOf(pack: PackIR, object: string | null = null): { structs: Record<string, Record<string, FieldType>>; globals: Record<string, FieldType>; optional: Record<string, string>; enums: string[] } {
  const structs: Record<string, Record<string, FieldType>> = {};
  for (const st of pack.structs.values()) if ((st.object ?? null) === object) structs[st.name] = Object.fromEntries([...st.fields.values()].map((f) => [f.name, f.type]));
  const globals = Object.fromEntries([...pack.globals.values()].filter((g) => (g.object ?? null) === object).map((g) => [g.name, g.type]));
  const enums = [...pack.enums.values()].filter((e) => (e.object ?? null) === object).map((e) => e.name);
  // globals a build may lack (optional:), and why: its layout leaves them out, and they read as unavailable
  const optional = Object.fromEntries([...pack.globals.values()].filter((g) => (g.object ?? null) === object && g.optional).map((g) => [g.name, g.optional!]));
  return { structs, globals, optional, enums };
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
  /** The schema's object the binary is (objects:); absent: the program's own binary. */
  object?: string;
}

/** Runs `gdb -batch -nx` on the binary file and returns its layout for the pack. */
export async function extractLayout(pack: PackIR, binary: string, opts: ExtractOptions): Promise<LayoutFile> {
  const runtime = [path.join(repoRoot(), 'py-common'), path.join(repoRoot(), 'gdb-py')];
  const script = path.join(repoRoot(), 'generators/layout_gdb.py');
  let out: string;
  try {
    // Loaded here, not at start: most runs find a layout and never start gdb.
    const { execa } = await import('execa');
    const r = await execa('gdb', ['-batch', '-nx', '-iex', 'set auto-load off', '-x', script, binary], {
      env: { XWALK_LAYOUT_SPEC: JSON.stringify(layoutSpecOf(pack, opts.object ?? null)), XWALK_RUNTIME_PATH: JSON.stringify(runtime) },
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
  const got = JSON.parse(json) as { types: LayoutFile['types']; globals: LayoutFile['globals']; enums?: LayoutFile['enums']; errors: { where: string; message: string }[]; gdb: string };
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
    ...(opts.object ? { object: opts.object } : {}),
    producer: opts.forBinary ? `gdb ${got.gdb} from the DWARF of ${path.basename(binary)}, built against its headers` : `gdb ${got.gdb} from DWARF`,
    types: got.types,
    globals: got.globals,
    ...(got.enums && Object.keys(got.enums).length ? { enums: got.enums } : {}),
  };
}

export function layoutJson(layout: LayoutFile): string {
  return JSON.stringify(layout, null, 1) + '\n';
}

// ---- the store: the layouts committed in packs/<pack>/<release>/ ----

/** A layout known for a pack or one of its objects: enough to name it in a line. */
export interface KnownLayout {
  release: string;
  build_id: string;
}

/** A committed layout file, validated: a broken one is one clear line naming it. */
function readLayout(file: string): LayoutFile {
  let l: unknown;
  try {
    l = JSON.parse(readRegularFile(file));
  } catch (err) {
    throw new UserError(`${file}: not a layout: ${(err as Error).message}`);
  }
  try {
    return checkedLayout(l, file);
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}

/** Every layout known for the pack (packLayoutsIn), sorted by file. */
export function knownLayouts(packName: string, object?: string): KnownLayout[] {
  return packLayoutFiles(packName)
    .filter(({ layout: l }) => l.object === object)
    .map(({ layout: l }) => ({ release: l.release, build_id: l.build_id }));
}

const layoutsCache = new Map<string, { file: string; layout: LayoutFile }[]>();

/**
 * The layouts of a pack: those of the folder its schema is taken from, and
 * of every folder of packs that holds only layouts of it (NAME/RELEASE/
 * BUILD-ID.json, no schema), first folder first: such a folder adds builds
 * to the pack found elsewhere, as the layouts `make test` probes for the
 * Debian builds installed here that no committed layout covers. Another
 * copy of the pack, with a schema of its own, lends it none.
 */
function packLayoutFiles(packName: string): { file: string; layout: LayoutFile }[] {
  const own = packDir(packName);
  return packDirs()
    .map((d) => path.join(d, packName))
    .filter((dir) => dir === own || !fs.existsSync(path.join(dir, 'schema.yaml')))
    .flatMap((dir) => layoutsIn(dir, packName));
}

/** In code-unit order: localeCompare's first call loads ICU's collation, a tenth of a one-shot command's time. */
const byName = (a: fs.Dirent, b: fs.Dirent): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** The layouts of a pack's folder, packs/<pack>/<release>/*.json, sorted by file. */
function layoutsIn(dirOfPack: string, packName: string): { file: string; layout: LayoutFile }[] {
  const key = `${packName}\0${dirOfPack}`;
  if (layoutsCache.has(key)) return layoutsCache.get(key)!;
  const out: { file: string; layout: LayoutFile }[] = [];
  if (fs.existsSync(dirOfPack)) {
    for (const d of fs.readdirSync(dirOfPack, { withFileTypes: true }).filter((e) => e.isDirectory()).sort(byName)) {
      const dir = path.join(dirOfPack, d.name);
      for (const f of fs.readdirSync(dir).filter((n) => n.endsWith('.json')).sort()) {
        if (!trustedInPacks(path.dirname(dirOfPack), path.join(dir, f))) continue;
        const layout = readLayout(path.join(dir, f));
        if (layout.pack === packName) out.push({ file: path.join(dir, f), layout });
      }
    }
  }
  layoutsCache.set(key, out);
  return out;
}

/**
 * The layouts an extension embeds: those of the pack's folder `dir` only
 * (the committed ones, for generated/), or every folder's.
 */
export function packLayouts(packName: string, dir?: string): LayoutFile[] {
  return (dir ? layoutsIn(dir, packName) : packLayoutFiles(packName)).map((c) => c.layout);
}

/** The layout committed for this build-id of the program's own binary (object: undefined) or of one of its objects. */
export function layoutByBuildId(packName: string, buildId: string, object?: string): LayoutFile | null {
  return packLayoutFiles(packName).find((c) => c.layout.build_id === buildId && c.layout.object === object)?.layout ?? null;
}

/** Writes the layout whole or not at all: a reader running at the same time never sees half a file. */
export function writeLayout(layout: LayoutFile, dir: string): string {
  makeDirs(dir);
  const file = path.join(dir, `${layout.build_id}.json`);
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, layoutJson(layout), { flag: 'wx' });
    fs.renameSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
  layoutsCache.clear();
  return file;
}

