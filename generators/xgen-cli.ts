/**
 * xgen: the generator's command line.
 *   xgen layout --pack NAME BINARY   read a build's layout from DWARF into the pack
 *   xgen check --pack NAME           load and validate a schema
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ElfFile } from '../sampler/elf.ts';
import { TargetGone, UserError } from '../sampler/memory.ts';
import { SchemaError } from './ir.ts';
import { generateExtension, type Debugger } from '../templates/python-extension.ts';
import { committedLayouts, extractLayout, writeLayout } from './layout.ts';
import { packsDir, repoRoot } from './repo.ts';
import { loadSchema } from './schema.ts';

const USAGE = `usage: xgen layout --pack NAME [--release R] [--out DIR] BINARY
       xgen check --pack NAME | --schema FILE
       xgen gdb|lldb --pack NAME [--out FILE]
       xgen regen [--check]

layout  Reads the size and offset of every type, field and global the pack's
        schema names from BINARY's DWARF (gdb -batch -nx on the file; no
        process is touched) and writes packs/NAME/RELEASE/BUILD-ID.json.
        RELEASE comes from the version string the schema looks for in the
        binary, or --release. BINARY may be a debug file (with the build-id of
        the stripped binary it belongs to).
check   Loads and validates a schema; errors name file:line:col.
gdb     Writes generated/NAME.py, the gdb extension (source it in gdb).
lldb    Writes generated/NAME_lldb.py (command script import it in lldb-16).
regen   Regenerates both extensions of every pack; --check only reports
        (exit 1) when a committed file differs from what it would write.`;

class UsageError extends Error {}

function schemaFile(values: { pack?: string; schema?: string }): string {
  if (values.schema) return values.schema;
  if (!values.pack) throw new UsageError('which pack? --pack NAME');
  return path.join(packsDir(), values.pack, 'schema.yaml');
}

async function layout(args: string[], print: (s: string) => void): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { pack: { type: 'string' }, schema: { type: 'string' }, release: { type: 'string' }, out: { type: 'string' } },
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('xgen layout needs one BINARY');
  const binary = positionals[0];
  const pack = loadSchema(schemaFile(values));
  const elf = ElfFile.open(binary);
  try {
    const buildId = elf.buildId();
    if (!buildId) throw new UserError(`${binary} has no build-id note: a layout is keyed by it (link with --build-id)`);
    if (!elf.hasDebugInfo()) throw new UserError(`${binary} has no DWARF (.debug_info): build it with -g, or give its debug file`);
    const release = values.release ?? (pack.versionPattern ? elf.findString(new RegExp(pack.versionPattern)) : null);
    if (!release) throw new UserError(`cannot find ${pack.name}'s version string in ${binary}: pass --release`);
    const l = await extractLayout(pack, binary, { release, buildId });
    const file = writeLayout(l, values.out ?? path.join(packsDir(), pack.name, release));
    print(`${file}: ${pack.name} ${release}, build-id ${buildId}, ${Object.keys(l.types).length} types`);
    return 0;
  } finally {
    elf.close();
  }
}

function check(args: string[], print: (s: string) => void): number {
  const { values } = parseArgs({ args, options: { pack: { type: 'string' }, schema: { type: 'string' } } });
  const pack = loadSchema(schemaFile(values));
  print(`${pack.file}: ok: ${pack.structs.size} types, ${pack.walks.size} walks, ${pack.views.size} views`);
  return 0;
}

function generatedPath(packName: string, dbg: Debugger): string {
  return path.join(repoRoot(), 'generated', dbg === 'gdb' ? `${packName}.py` : `${packName}_lldb.py`);
}

function extensionText(packName: string, dbg: Debugger): string {
  const file = path.join(packsDir(), packName, 'schema.yaml');
  const pack = loadSchema(file);
  return generateExtension(dbg, { pack, layouts: committedLayouts(packName), schemaPath: path.relative(repoRoot(), file) });
}

function generate(dbg: Debugger, args: string[], print: (s: string) => void): number {
  const { values } = parseArgs({ args, options: { pack: { type: 'string' }, out: { type: 'string' } } });
  if (!values.pack) throw new UsageError('which pack? --pack NAME');
  const out = values.out ?? generatedPath(values.pack, dbg);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, extensionText(values.pack, dbg));
  print(out);
  return 0;
}

function regen(args: string[], print: (s: string) => void): number {
  const { values } = parseArgs({ args, options: { check: { type: 'boolean' } } });
  let stale = 0;
  for (const packName of fs.readdirSync(packsDir()).filter((n) => fs.existsSync(path.join(packsDir(), n, 'schema.yaml'))).sort()) {
    for (const dbg of ['gdb', 'lldb'] as Debugger[]) {
      const out = generatedPath(packName, dbg);
      const text = extensionText(packName, dbg);
      const old = fs.existsSync(out) ? fs.readFileSync(out, 'utf8') : null;
      if (old === text) continue;
      stale++;
      if (values.check) print(`${path.relative(process.cwd(), out)} is ${old === null ? 'missing' : 'stale'}: run make regen`);
      else {
        fs.mkdirSync(path.dirname(out), { recursive: true });
        fs.writeFileSync(out, text);
        print(`wrote ${path.relative(process.cwd(), out)}`);
      }
    }
  }
  return values.check && stale > 0 ? 1 : 0;
}

export async function main(argv: string[], print = (s: string) => console.log(s), warn = (s: string) => console.error(s)): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      print(USAGE);
      return cmd ? 0 : 2;
    }
    if (cmd === 'layout') return await layout(rest, print);
    if (cmd === 'check') return check(rest, print);
    if (cmd === 'gdb' || cmd === 'lldb') return generate(cmd, rest, print);
    if (cmd === 'regen') return regen(rest, print);
    throw new UsageError(`unknown command '${cmd}'`);
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      warn(`xgen: ${(err as Error).message}\n(xgen --help for usage)`);
      return 2;
    }
    if (err instanceof UserError || err instanceof SchemaError || err instanceof TargetGone) {
      warn(`xgen: ${err.message}`);
      return 1;
    }
    if (process.env.XWALK_DEBUG) throw err;
    warn(`xgen: internal error: ${(err as Error).message} (set XWALK_DEBUG=1 for a stack trace)`);
    return 1;
  }
}
