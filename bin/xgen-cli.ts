/**
 * xgen: the generator's command line.
 *   xgen layout --pack NAME BINARY   read a build's layout from DWARF into the pack
 *   xgen check --pack NAME           load and validate a schema
 *   xgen symbols --for FILE          recover a stripped object's symbol table
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ElfFile } from '../core/elf.ts';
import { makeDirs } from '../core/regular-file.ts';
import { RELEASE, signatureOf, versionOf } from '../core/identity.ts';
import { TargetGone, UserError } from '../core/errors.ts';
import { type PackIR, SchemaError } from '../generators/ir.ts';
import { generateExtension, type Debugger } from '../printers/python-extension.ts';
import { packLayouts, extractLayout, layoutSpecOf, writeLayout } from '../generators/layout.ts';
import { builtinPacksDir, onUntrustedPack, packDir, packNames, repoRoot } from '../core/packs.ts';
import { printableLines, versionLine } from '../generators/schema.ts';
import { loadSchema } from '../printers/checked-schema.ts';
import { layoutByProbe } from '../generators/probe-run.ts';
import { recoverSymbols } from '../generators/symbols/recover.ts';
import { describeCounts } from '../generators/symbols/table.ts';

const USAGE = `usage: xgen layout --pack NAME [--object OBJ] [--release R] [--out DIR | --into PACKS] [--for BUILD] BINARY
       xgen layout --for FILE [--into PACKS | --pack NAME]
       xgen probe --pack NAME [--object OBJ] [--dwarf FILE]
       xgen check --pack NAME | --schema FILE
       xgen gdb|lldb --pack NAME [--out FILE]
       xgen regen [--check]
       xgen symbols --for FILE [--pack NAME] [--no-fetch] [--json]
       xgen --version

layout  Reads the size and offset of every type, field and global the pack's
        schema names from BINARY's DWARF (gdb -batch -nx on the file; no
        process is touched) and writes packs/NAME/RELEASE/BUILD-ID.json.
        RELEASE comes from the version string the schema looks for in the
        binary, or --release. BINARY may be a debug file (with the build-id of
        the stripped binary it belongs to). With --for BUILD, BINARY only
        gives the DWARF (a probe compiled with -g against BUILD's headers and
        configure flags) and the layout is keyed to BUILD: its build-id,
        release and signature; the probe's own signature must equal BUILD's.
        With --object OBJ, the layout is of the types and globals the schema
        gives to its object OBJ (objects:, a library or module the program
        maps), keyed by that object's build-id; it needs --release.
        --out DIR writes DIR/BUILD-ID.json; --into PACKS writes
        PACKS/NAME/RELEASE/BUILD-ID.json, a folder of packs that may hold
        only layouts: name it in XWALK_PACKS and its layouts join the pack's.
        --for FILE with no BINARY: FILE is an installed, stripped Debian
        build (nginx, lua-nginx-module, LuaJIT, redis-server...); the probe
        of the package that owns it (dpkg -S; probes/*.sh) fetches that
        package's source, compiles a probe with -g and Debian's flags in a
        private temporary folder (as nobody, run as root) and makes its
        layout, into the user's cache of probed layouts (found by xsample
        and xgen with no setting), or --into PACKS, or the pack's folder
        with --pack NAME.
probe   Prints C declarations of every type and global the schema reads (of
        --object OBJ only, or of the program's own binary), to compile into
        such a probe (after the program's own #includes). A type is written
        as a typedef name unless --dwarf FILE (an object compiled with -g
        -fno-eliminate-unused-debug-types from the same headers) says it is
        a struct, union or enum tag: then struct NAME, union NAME, enum NAME.
check   Loads and validates a schema; errors name file:line:col.
gdb     Writes generated/NAME.py, the gdb extension (source it in gdb), with
        the layouts of every folder of packs (XWALK_PACKS's too).
lldb    Writes generated/NAME_lldb.py (command script import it in lldb-16).
regen   Regenerates both extensions of every built-in pack, with its
        committed layouts only; --check only reports (exit 1) when a
        committed file differs from what it would write.
symbols Recovers the names of a stripped object's functions and data
        (globals and statics) for its exact build, keyed by its build-id, into
        the user's cache (or --pack NAME's symbols/): from debuginfod
        (DEBUGINFOD_URLS), the package's -dbgsym, a rebuild of its exact
        Debian source (used only when its loaded sections are identical), or
        the nearest release's rebuild matched function by function.
        --no-fetch uses only a table already kept. See docs/symbols.md.`;

class UsageError extends Error {}

function schemaFile(values: { pack?: string; schema?: string }): string {
  if (values.schema) return values.schema;
  if (!values.pack) throw new UsageError('which pack? --pack NAME');
  return path.join(packFolder(values.pack), 'schema.yaml');
}

function packFolder(name: string): string {
  const dir = packDir(name);
  if (!dir) throw new UserError(`no pack named ${name} (packs: ${packNames().join(', ') || 'none'})`);
  return dir;
}

async function layout(args: string[], print: (s: string) => void, warn: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { pack: { type: 'string' }, schema: { type: 'string' }, release: { type: 'string' }, out: { type: 'string' }, into: { type: 'string' }, for: { type: 'string' }, object: { type: 'string' } },
    allowPositionals: true,
  });
  // --for FILE alone: the probe of FILE's package makes the probe object (probes/*.sh).
  if (positionals.length === 0 && values.for) {
    if (values.out || values.object || values.release || values.schema) throw new UsageError('xgen layout --for FILE with no BINARY runs the probe of its package: it takes --into DIR or --pack NAME only');
    return await layoutByProbe(values.for, { into: values.into, pack: values.pack, print, warn });
  }
  if (positionals.length !== 1) throw new UsageError('xgen layout needs one BINARY (or --for FILE alone: the probe of its package)');
  const binary = positionals[0];
  const pack = loadSchema(schemaFile(values));
  const object = objectNamed(pack, values.object);
  if (object && values.release === undefined) throw new UsageError(`the layout of object ${object} needs --release (the object's own version; it names the folder)`);
  const elf = ElfFile.open(binary);
  const target = values.for ? ElfFile.open(values.for) : elf;
  try {
    const buildId = target.buildId();
    if (!buildId) throw new UserError(`${target.path} has no build-id note: a layout is keyed by it (link with --build-id)`);
    if (!elf.hasDebugInfo()) throw new UserError(`${binary} has no DWARF (.debug_info): build it with -g, or give its debug file`);
    if (values.release !== undefined && !RELEASE.test(values.release)) throw new UsageError(`--release names a folder: letters, digits and . _ + ~ -, not '${values.release}'`);
    // A program with no version string (a pack with no binary.version) is known by its build-id alone.
    const release = values.release ?? versionOf(pack, target) ?? (pack.versionPattern ? null : `build-${buildId.slice(0, 12)}`);
    if (!release) throw new UserError(`cannot find ${pack.name}'s version string in ${target.path}: pass --release`);
    // An object has no signature of the pack's: its build-id alone keys it.
    const signature = object ? null : signatureOf(pack, target);
    if (values.for && signature) {
      const probe = signatureOf(pack, elf);
      if (probe !== signature) throw new UserError(`${binary} was not built like ${values.for}: signature ${probe ?? 'missing'} against ${signature} (configure the probe with the build's own flags)`);
    }
    const l = await extractLayout(pack, binary, { release, buildId, signature, forBinary: values.for, ...(object ? { object } : {}) });
    const file = writeLayout(l, values.out ?? path.join(values.into ? path.join(values.into, pack.name) : values.schema ? path.dirname(values.schema) : packFolder(pack.name), release));
    print(`${file}: ${pack.name}${object ? `'s ${object}` : ''} ${release}, build-id ${buildId}${signature ? `, signature ${signature}` : ''}, ${Object.keys(l.types).length} types`);
    return 0;
  } finally {
    elf.close();
    if (target !== elf) target.close();
  }
}

/** --object NAME: one of the pack's objects (objects:), or null for the program's own binary. */
function objectNamed(pack: PackIR, name: string | undefined): string | null {
  if (name === undefined) return null;
  if (!pack.objects.has(name)) throw new UsageError(`pack ${pack.name} has no object ${name} (${pack.objects.size ? `objects: ${[...pack.objects.keys()].join(', ')}` : 'its schema has no objects: section'})`);
  return name;
}

/**
 * C declarations that make a -g build keep every type and global the schema reads in its DWARF.
 * A schema names a type as DWARF knows it: a typedef name, or a struct or union tag, which C spells
 * with its keyword (`struct stats *p;`). Which one a name is comes from --dwarf FILE, any object
 * compiled with -g from the same headers; without it, every name is written as a typedef.
 */
async function probe(args: string[], print: (s: string) => void): Promise<number> {
  const { values } = parseArgs({ args, options: { pack: { type: 'string' }, schema: { type: 'string' }, object: { type: 'string' }, dwarf: { type: 'string' } } });
  const pack = loadSchema(schemaFile(values));
  const object = objectNamed(pack, values.object);
  const spec = layoutSpecOf(pack, object);
  const names = Object.keys(spec.structs);
  const spelled = values.dwarf ? await cSpellings(values.dwarf, names) : null;
  const lines = [`/* Generated by xgen probe from ${path.basename(pack.file)} of pack ${pack.name}${object ? `, object ${object}` : ''}: the types and globals it reads. */`];
  if (!spelled) lines.push('/* Every type is written as a typedef name: for a struct or union tag (struct NAME with no typedef), give xgen probe --dwarf FILE. */');
  names.forEach((name, i) => {
    const kind = spelled?.[name] ?? 'typedef';
    lines.push(`${kind === 'typedef' ? name : `${kind} ${name}`} *xwalk_probe_type_${i};`);
  });
  lines.push(`void *xwalk_probe_globals[] = {`, ...Object.keys(spec.globals).map((g) => `    (void *) &${g},`), `};`);
  print(lines.join('\n'));
  return 0;
}

/** How C spells each type name (typedef, struct, union, enum), from the DWARF of `file` (gdb -batch on the file). */
async function cSpellings(file: string, names: string[]): Promise<Record<string, string>> {
  const elf = ElfFile.open(file);
  try {
    if (!elf.hasDebugInfo()) throw new UserError(`${file} has no DWARF (.debug_info): compile the program's headers with -g -fno-eliminate-unused-debug-types`);
  } finally {
    elf.close();
  }
  const { execa } = await import('execa');
  const r = await execa('gdb', ['-batch', '-nx', '-iex', 'set auto-load off', '-x', path.join(repoRoot(), 'generators/probe_gdb.py'), file], {
    env: { XWALK_PROBE_NAMES: JSON.stringify(names) },
    timeout: 120_000,
    reject: false,
  });
  const out = r.stdout ?? '';
  if (!out.includes('XWALK-PROBE-BEGIN')) throw new UserError(`gdb could not read the types of ${file}: ${(String(r.stderr ?? '') || out || String(r.shortMessage ?? '')).trim().split('\n').slice(-3).join(' / ')}`);
  const got = JSON.parse(out.slice(out.indexOf('XWALK-PROBE-BEGIN') + 17, out.indexOf('XWALK-PROBE-END'))) as Record<string, string | null>;
  const missing = names.filter((n) => got[n] === null);
  if (missing.length > 0) throw new UserError(`${file}'s DWARF has no type ${missing.join(', ')}: compile the headers that declare them with -g -fno-eliminate-unused-debug-types`);
  return got as Record<string, string>;
}

/** A generated extension past this size is worth a warning: a schema that makes that much code is likely a mistake. */
const GENERATED_WARN_BYTES = 1 << 20;

function check(args: string[], print: (s: string) => void, warn: (s: string) => void): number {
  const { values } = parseArgs({ args, options: { pack: { type: 'string' }, schema: { type: 'string' } } });
  const pack = loadSchema(schemaFile(values));
  const bytes = generateExtension('gdb', { pack, layouts: [], schemaPath: pack.file }).length;
  print(`${pack.file}: ok: ${pack.structs.size} types, ${pack.walks.size} walks, ${pack.views.size} views; ${(bytes / 1024).toFixed(0)} KiB of generated Python`);
  if (bytes > GENERATED_WARN_BYTES) warn(`xgen: warning: ${pack.file} makes ${(bytes / 1048576).toFixed(1)} MiB of generated Python (more than ${GENERATED_WARN_BYTES >> 20} MiB): do its views call walks inside walks that could be named walks?`);
  return 0;
}

function generatedPath(packName: string, dbg: Debugger): string {
  return path.join(repoRoot(), 'generated', dbg === 'gdb' ? `${packName}.py` : `${packName}_lldb.py`);
}

/** The extension of a pack: with the layouts of its own folder `dir` only (generated/ embeds the committed ones), or of every folder of packs. */
function extensionText(packName: string, dbg: Debugger, dir?: string): string {
  const file = path.join(dir ?? packFolder(packName), 'schema.yaml');
  const pack = loadSchema(file);
  return generateExtension(dbg, { pack, layouts: packLayouts(packName, dir), schemaPath: schemaLabel(file) });
}

/** The schema as a generated file's header names it: packs/NAME/schema.yaml for a built-in pack, else NAME/schema.yaml (never a path of this machine). */
function schemaLabel(file: string): string {
  const rel = path.relative(builtinPacksDir(), file);
  return rel.startsWith('..') || path.isAbsolute(rel) ? path.join(path.basename(path.dirname(file)), path.basename(file)) : path.join('packs', rel);
}

function generate(dbg: Debugger, args: string[], print: (s: string) => void): number {
  const { values } = parseArgs({ args, options: { pack: { type: 'string' }, out: { type: 'string' } } });
  if (!values.pack) throw new UsageError('which pack? --pack NAME');
  const out = values.out ?? generatedPath(values.pack, dbg);
  makeDirs(path.dirname(out));
  fs.writeFileSync(out, extensionText(values.pack, dbg));
  print(out);
  return 0;
}

function regen(args: string[], print: (s: string) => void): number {
  const { values } = parseArgs({ args, options: { check: { type: 'boolean' } } });
  let stale = 0;
  // The checkout's own packs: generated/ holds their extensions.
  const builtin = builtinPacksDir();
  for (const packName of fs.readdirSync(builtin).filter((n) => fs.existsSync(path.join(builtin, n, 'schema.yaml'))).sort()) {
    for (const dbg of ['gdb', 'lldb'] as Debugger[]) {
      const out = generatedPath(packName, dbg);
      const text = extensionText(packName, dbg, path.join(builtin, packName));
      const old = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : null;
      if (old === text) continue;
      stale++;
      if (values.check) print(`${path.relative(process.cwd(), out)} is ${old === null ? 'missing' : 'stale'}: run make regen`);
      else {
        makeDirs(path.dirname(out));
        fs.writeFileSync(out, text);
        print(`wrote ${path.relative(process.cwd(), out)}`);
      }
    }
  }
  return values.check && stale > 0 ? 1 : 0;
}

/** xgen symbols --for FILE [--pack NAME] [--no-fetch] [--json]. */
async function symbols(args: string[], print: (s: string) => void, warn: (s: string) => void): Promise<number> {
  const { values } = parseArgs({ args, options: { for: { type: 'string' }, pack: { type: 'string' }, 'no-fetch': { type: 'boolean' }, json: { type: 'boolean' } } });
  if (!values.for) throw new UsageError('which object? --for FILE');
  if (values.pack !== undefined) packFolder(values.pack);
  const say = (m: string) => warn(`xgen symbols: ${m}`);
  const r = await recoverSymbols(values.for, { fetch: !values['no-fetch'], pack: values.pack, progress: say, warn: say, buildCache: process.env.XWALK_SYMBOLS_BUILDS || undefined });
  if (values.json) {
    const t = r.status === 'has-symtab' ? null : r.table;
    print(JSON.stringify({ file: r.file, build_id: r.buildId, status: r.status, ...(t ? { where: r.status !== 'has-symtab' ? r.where : null, method: t.method, from: t.from, verified: t.verified, symbols: t.symbols.length, matched: t.matched, total: t.total } : {}) }));
    return 0;
  }
  if (r.status === 'has-symtab') {
    print(`${r.file} has its own .symtab: nothing to recover`);
    return 0;
  }
  const t = r.table;
  const where = r.where ?? '(not written: the cache cannot be used)';
  print(`${r.status === 'made' ? 'wrote' : 'have'} ${where}: ${r.file} build-id ${r.buildId}, ${describeCounts(t)}${t.matched !== undefined ? `, ${t.matched} of ${t.total} matched` : ''}`);
  print(`  from ${t.from}; verified: ${t.verified}`);
  return 0;
}

export async function main(argv: string[], print = (s: string) => console.log(s), warn = (s: string) => console.error(s)): Promise<number> {
  onUntrustedPack((m) => warn(`xgen: ${m}`));
  try {
    const [cmd, ...rest] = argv;
    // `xgen check --help` as well as `xgen --help`: the usage says every command's options.
    const wantsHelp = cmd === '--help' || cmd === '-h' || cmd === 'help' || rest.some((a) => a === '--help' || a === '-h');
    if (!cmd || wantsHelp) {
      print(USAGE);
      return cmd ? 0 : 2;
    }
    if (cmd === '--version' || cmd === '-V') {
      print(versionLine('xgen'));
      return 0;
    }
    if (cmd === 'layout') return await layout(rest, print, warn);
    if (cmd === 'check') return check(rest, print, warn);
    if (cmd === 'probe') return await probe(rest, print);
    if (cmd === 'gdb' || cmd === 'lldb') return generate(cmd, rest, print);
    if (cmd === 'regen') return regen(rest, print);
    if (cmd === 'symbols') return await symbols(rest, print, warn);
    throw new UsageError(`unknown command '${cmd}'`);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      warn(`xgen: ${(err as Error).message}\n(xgen --help for usage)`);
      return 2;
    }
    if (err instanceof UserError || err instanceof SchemaError || err instanceof TargetGone) {
      warn(`xgen: ${printableLines(err.message)}`);
      return 1;
    }
    if (process.env.XWALK_DEBUG) throw err;
    warn(`xgen: internal error: ${(err as Error).message} (set XWALK_DEBUG=1 for a stack trace)`);
    return 1;
  }
}
