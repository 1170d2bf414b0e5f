/**
 * One self-contained Python file per pack and debugger: a header, the
 * hand-written runtime (py-common/ and gdb-py/ or lldb-py/), each file's
 * source made a module in sys.modules in the order its imports ask, the
 * pack's layouts and spec as data, and each view compiled to Python.
 * Everything taken from the schema passes through py-source.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CLOCK_NAMES, type ClockIR, type FlamegraphIR, type PackIR, type PrinterIR, type TExpr, type ViewIR } from '../generators/ir.ts';
import { commandName } from '../generators/debugger-commands.ts';
import { layoutSpecOf, type LayoutFile } from '../generators/layout.ts';
import { repoRoot } from '../core/packs.ts';
import type { LFunc } from '../generators/lower/lir.ts';
import { lowerSeqOf, lowerValue, lowerValues, lowerView } from '../generators/lower/lower.ts';
import { callees, reachedFrom } from '../generators/lower/reads.ts';
import { FunctionPool } from '../generators/lower/share.ts';
import { PyConsts, printPyFuncs } from './py.ts';
import { type Py, py, pyBool, pyComment, pyData, pyInt, pyJoin, pyRuntime, pyStr } from './py-source.ts';

export type Debugger = 'gdb' | 'lldb';

export const GENERATOR_VERSION = '1';

/** The runtime's folders for each debugger: each .py file in them is one module, named after the file. */
const RUNTIME_DIRS: Record<Debugger, string[]> = { gdb: ['py-common', 'gdb-py'], lldb: ['py-common', 'lldb-py'] };

export interface RuntimeModule {
  name: string;
  file: string; // relative to the repo
  text: string;
  imports: string[]; // the runtime modules it imports
}

/** The runtime's modules for a debugger (its folders' .py files), each after the modules it imports. */
export function runtimeModules(dbg: Debugger): RuntimeModule[] {
  return importOrder(
    RUNTIME_DIRS[dbg].flatMap((dir) =>
      fs
        .readdirSync(path.join(repoRoot(), dir))
        .filter((f) => f.endsWith('.py'))
        .map((f) => ({ name: f.slice(0, -3), file: `${dir}/${f}`, text: fs.readFileSync(path.join(repoRoot(), dir, f), 'utf8') })),
    ),
  );
}

/**
 * Modules, each after the modules it imports: a topological sort of their import lines (`import xwalk_x`,
 * `from xwalk_x import ...`), ties by name; an import circle is refused in one line that names it.
 */
export function importOrder(files: Omit<RuntimeModule, 'imports'>[]): RuntimeModule[] {
  const byName = new Map<string, RuntimeModule>([...files].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((f) => [f.name, { ...f, imports: [] }]));
  if (byName.size !== files.length) throw new Error(`two runtime modules have one name: ${files.map((f) => f.file).join(' ')}`);
  for (const m of byName.values()) {
    const named = [...m.text.matchAll(/^[ \t]*(?:from[ \t]+([\w.]+)[ \t]+import\b|import[ \t]+([\w., \t]+))/gm)].flatMap((x) => (x[1] ?? x[2]!).split(',').map((n) => n.trim().split(/[ \t.]/)[0]!));
    m.imports = [...new Set(named.filter((n) => byName.has(n) && n !== m.name))].sort();
  }
  const order: RuntimeModule[] = [];
  const state = new Map<string, 'open' | 'done'>();
  const visit = (m: RuntimeModule, path: string[]): void => {
    if (state.get(m.name) === 'done') return;
    if (state.get(m.name) === 'open') throw new Error(`the Python runtime's imports go round: ${[...path.slice(path.indexOf(m.name)), m.name].join(' -> ')}`);
    state.set(m.name, 'open');
    for (const n of m.imports) visit(byName.get(n)!, [...path, m.name]);
    state.set(m.name, 'done');
    order.push(m);
  };
  for (const m of byName.values()) visit(m, []);
  return order;
}

/** Makes each runtime module afresh at each source (a second source, or a second pack, gets its own), under its own name. */
const MODULE_MAKER = py`import linecache as _linecache
import sys as _sys
import types as _types


def _xwalk_module(name, source):
    """One module of the runtime: registered under its name before it runs, as an import does; its lines
    known to linecache, so that a traceback shows them."""
    module = _types.ModuleType(name)
    _sys.modules[name] = module
    filename = "<xwalk: %s>" % name
    _linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    try:
        exec(compile(source, filename, "exec"), module.__dict__)
    except BaseException:
        del _sys.modules[name]
        raise`;

/** What the pack's part (views, PACK, the registration) takes from the runtime. */
const PACK_IMPORTS: Record<Debugger, Py> = {
  gdb: py`from xwalk_commands import Pack
from xwalk_core import View
from xwalk_gdb import xwalk_register`,
  lldb: py`from xwalk_commands import Pack
from xwalk_core import View
from xwalk_lldb import xwalk_register`,
};

/** The command names of a view: its name with dashes, and its aliases. */
export function commandNames(view: ViewIR): string[] {
  return [view.name, ...view.aliases].map(commandName);
}

/**
 * One function of the pack (share.ts: each distinct one once), as a factory of a layout: bind the layout's
 * numbers once (the consts) and the functions it calls, define it, return it.
 */
function functionFactory(f: LFunc): Py {
  const consts = new PyConsts();
  const body = printPyFuncs([f], consts, '    ');
  const bound = callees(f).map((n) => py`    ${fnRef(n)} = get(${pyStr(n)})`);
  return pyJoin([py`def make_${fnRef(f.name)}(L, get):`, ...consts.bindings().map((b) => py`    ${b}`), ...bound, ...body, py``, py`    return ${fnRef(f.name)}`], '\n');
}

/** The table of the pack's function factories, and what makes the functions a program asks for, once each, for one layout. */
function functionTable(pool: FunctionPool): Py {
  const entries = pool.funcs.map((f) => py`${pyStr(f.name)}: make_${fnRef(f.name)}`);
  return py`PACK_FUNCTIONS = {${pyJoin(entries, ', ')}}


def pack_functions(L, names, table=PACK_FUNCTIONS):
    """The pack's functions of these names for the layout L (each made once, with those it calls), by name.
    The table is bound here: a second pack sourced into the same namespace brings its own."""
    made = {}

    def get(n):
        f = made.get(n)
        if f is None:
            f = made[n] = table[n](L, get)
        return f
    return dict((n, get(n)) for n in names)`;
}

/** The pack's functions (a pool of share.ts), each once as a factory, and pack_functions that makes them for a layout. */
export function packFunctionsSource(pool: FunctionPool): Py {
  return pyJoin([...pool.funcs.map(functionFactory), functionTable(pool)], '\n\n');
}

/**
 * A program's factory: the pack's functions it names, made for the layout, and what it returns of them (fs["name"]).
 * It is called at a command, long after the file was sourced: what it uses of the pack's part is bound now, as
 * defaults, since a second pack sourced into gdb's one namespace rebinds the names (pack_functions, View).
 */
function factory(fnName: Py, names: string[], result: Py, binds: Py = py``): Py {
  return pyJoin([py`def ${fnName}(L, pack_functions=pack_functions${binds}):`, py`    fs = pack_functions(L, [${pyJoin([...new Set(names)].map((n) => pyStr(n)), ', ')}])`, py`    return ${result}`], '\n');
}

/** A function of the pack, as a program's factory refers to it. */
const packFn = (n: string): Py => py`fs[${pyStr(n)}]`;

/** A view: roots (seq functions of a visitor), columns and checks (value functions of the item). */
function viewFactory(pool: FunctionPool, view: ViewIR, index: number): Py {
  const lv = lowerView(view);
  const to = pool.add(lv.funcs);
  const at = (n: string) => to.get(n)!;
  const rootList = pyJoin(lv.roots.map((r) => py`(${pyStr(r.label)}, ${packFn(at(r.fn))})`), ', ');
  const names = (xs: string[]) => py`[${pyJoin(xs.map((n) => pyStr(n)), ', ')}]`;
  const colList = pyJoin(lv.columns.map((c) => py`(${pyStr(c.name)}, ${packFn(at(c.fn))}, ${pyStr(c.kind)}, ${pyBool(c.list)}, ${names(c.reads)})`), ', ');
  const checkList = pyJoin(lv.checks.map((c) => py`(${packFn(at(c.fn))}, ${pyStr(c.message)})`), ', ');
  const needs = names(reachedFrom(lv.funcs, [...lv.roots.map((r) => r.fn), ...lv.checks.map((c) => c.fn)]).names);
  const uses = lv.funcs.map((f) => at(f.name));
  return factory(py`view${index}`, uses, py`View(${pyStr(view.name)}, ${pyStr(view.doc)}, ${pyStr(view.of)}, [${rootList}], [${colList}], [${checkList}], ${pyBool(view.clock)}, ${stackOf(view)}, ${needs})`, py`, View=View`);
}

/** A stack-shaped view's frames and weight, as the Python View takes them; None for a table. */
function stackOf(view: ViewIR): Py {
  if (!view.stack) return py`None`;
  const names = (xs: string[]) => py`[${pyJoin(xs.map((f) => pyStr(f)), ', ')}]`;
  return py`(${names(view.stack.frames)}, ${view.stack.weight === null ? py`None` : pyStr(view.stack.weight)}, ${view.stack.leaves === null ? py`None` : names(view.stack.leaves)})`;
}

/** The program's clock on a core (the schema's clock:), as a factory like a view's: (doc, {name: fn(rt, s)}). */
function clockFactory(pool: FunctionPool, clock: ClockIR): Py {
  const names = CLOCK_NAMES.filter((n) => clock.exprs[n]);
  const { funcs, entries } = lowerValues(names.map((n) => clock.exprs[n]!));
  const to = pool.add(funcs);
  const table = names.map((n, i) => py`${pyStr(n)}: ${packFn(to.get(entries[i])!)}`);
  return factory(py`pack_clock`, funcs.map((f) => to.get(f.name)!), py`(${pyStr(clock.doc)}, {${pyJoin(table, ', ')}})`);
}

/** A printer's code, as a factory like a view's: a value function of s, or a seq function of s and a visitor. */
function printerFactory(pool: FunctionPool, p: Extract<PrinterIR, { expr: TExpr }>, index: number): Py {
  const prog = p.kind === 'children' ? lowerSeqOf(p.expr) : lowerValue(p.expr);
  const to = pool.add(prog.funcs);
  return factory(py`printer${index}`, prog.funcs.map((f) => to.get(f.name)!), packFn(to.get(prog.entry)!));
}

/** A function lower.ts named (a plain identifier it made). */
const fnRef = (n: string): Py => {
  if (!/^[A-Za-z][A-Za-z0-9_]*$/.test(n)) throw new Error(`internal: function name ${JSON.stringify(n)}`);
  return n as Py;
};

function printerEntry(pack: PackIR, p: PrinterIR, index: number): Py {
  if (p.kind === 'view') return py`(${pyStr(p.type)}, "view", ${pyInt([...pack.views.keys()].indexOf(p.view))})`;
  return py`(${pyStr(p.type)}, ${pyStr(p.kind)}, printer${index})`;
}

function helpText(pack: PackIR, view: ViewIR, command: string): string {
  return `${view.doc}\n\nUsage: ${command} [EXPR] [--json] [--max-nodes N]${view.stack ? ' [--folded FILE]' : ''}\nWith EXPR (an address or an expression of the debugger), only the ${view.of} there; without it, every one the view's roots reach.\nReads raw memory with the ${pack.name} pack's layout (same output as xsample --struct ${view.name}).${view.stack ? `\nWith --folded FILE, writes the items as a flame graph's stacks (frame;frame;frame weight lines), as one sample of xsample record --struct ${view.name} does.` : ''}`;
}

function flamegraphHelp(f: FlamegraphIR, command: string): string {
  return `${f.doc}\n\nUsage: ${command} [--folded FILE] [--max-nodes N]\nOne sample of the views ${f.views.join(', ')}, as a flame graph's stacks (frame;frame;frame weight lines): to FILE with --folded, else printed; as one sample of xsample record --struct ${f.name} writes.`;
}

/** The types and globals whose layouts an object (objects:) gives. */
function objectMembers(pack: PackIR, object: string): string[] {
  return [...[...pack.structs.values()].filter((s) => s.object === object).map((s) => s.name), ...[...pack.globals.values()].filter((g) => g.object === object).map((g) => g.name)];
}

export interface GenerateInput {
  pack: PackIR;
  layouts: LayoutFile[];
  schemaPath: string; // as shown in the header, relative to the repo
}

export function generateExtension(dbg: Debugger, input: GenerateInput): string {
  const { pack, layouts } = input;
  const views = [...pack.views.values()];
  const releases = [...new Set(layouts.filter((l) => !l.object).map((l) => l.release))].sort();
  const objectReleases = [...pack.objects.keys()].map((o) => `${o} ${[...new Set(layouts.filter((l) => l.object === o).map((l) => l.release))].sort().join(', ') || 'none'}`);
  const header: Py[] = [
    pyComment(`Generated by xgen ${GENERATOR_VERSION} from ${input.schemaPath}: do not edit; regenerate with make regen.`),
    pyComment(`pack ${pack.name}, release${releases.length === 1 ? '' : 's'} ${releases.join(', ') || 'none (layouts derived from debug info)'}${objectReleases.map((r) => `, object ${r}`).join('')}, schema sha256 ${pack.schemaHash}${pack.imports.map((i) => `, imports ${i.name} sha256 ${i.sha256}`).join('')}`),
    pyComment(dbg === 'gdb' ? `Use: (gdb) source ${pack.name}.py` : `Use: (lldb) command script import ${pack.name}_lldb.py`),
  ];
  const runtime = runtimeModules(dbg).map((m) => py`${pyComment(`---- ${m.file} ----`)}\n_xwalk_module(${pyStr(m.name)}, ${pyRuntime(m.text)})`);
  const commands = [
    ...views.flatMap((v, i) => commandNames(v).map((c) => py`(${pyStr(c)}, ${pyInt(i)}, ${pyStr(helpText(pack, v, c))})`)),
    // A flame graph's command runs its views, by index, and writes their stacks as one.
    ...[...pack.flamegraphs.values()].map((f) => {
      const indexes = f.views.map((n) => views.findIndex((v) => v.name === n));
      return py`(${pyStr(commandName(f.name))}, [${pyJoin(indexes.map((i) => pyInt(i)), ', ')}], ${pyStr(flamegraphHelp(f, commandName(f.name)))})`;
    }),
  ];
  // The programs first: they fill the pool of the pack's functions, printed once each after them.
  const pool = new FunctionPool();
  const programs = [
    ...views.map((v, i) => viewFactory(pool, v, i)),
    ...pack.printers.flatMap((p, i) => (p.kind === 'view' ? [] : [printerFactory(pool, p, i)])),
    ...(pack.clock ? [clockFactory(pool, pack.clock)] : []),
  ];
  const body: Py[] = [
    ...header,
    MODULE_MAKER,
    ...runtime,
    pyComment(`---- pack ${pack.name} ----`),
    PACK_IMPORTS[dbg],
    // The pack's functions before the programs, whose factories bind this pack's pack_functions when defined.
    packFunctionsSource(pool),
    ...programs,
    py`PACK = Pack(
    ${pyStr(pack.name)},
    ${pyStr(pack.doc)},
    ${pyStr(pack.schemaHash)},
    ${pack.versionPattern === null ? py`None` : pyData(pack.versionPattern.program)},
    ${pack.signaturePattern === null ? py`None` : pyData(pack.signaturePattern.program)},
    ${pyData(layouts.map((l) => ({ release: l.release, build_id: l.build_id, signature: l.signature ?? null, ...(l.object ? { object: l.object } : {}), types: l.types, globals: l.globals, ...(l.enums ? { enums: l.enums } : {}) })))},
    ${pyData(layoutSpecOf(pack))},
    [${pyJoin(views.map((_, i) => py`view${i}`), ', ')}],
    [${pyJoin(commands, ',\n     ')}],
    [${pyJoin(pack.printers.map((p, i) => printerEntry(pack, p, i)), ', ')}],
    ${pack.clock ? py`pack_clock` : py`None`},
    ${pyData(Object.fromEntries([...pack.objects.values()].map((o) => [o.name, { file: o.file, members: objectMembers(pack, o.name) }])))},
)`,
    dbg === 'gdb' ? py`xwalk_register(PACK)` : py`\n\ndef __lldb_init_module(debugger, internal_dict):\n    xwalk_register(debugger, PACK, __name__)`,
  ];
  return pyJoin(body, '\n\n') + '\n';
}
