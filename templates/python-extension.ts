/**
 * One self-contained Python file per pack and debugger: a header, the
 * hand-written runtime (py-common/ and gdb-py/ or lldb-py/) inlined, the
 * pack's layouts and spec as data, and each view compiled to Python.
 * Everything taken from the schema passes through py-source.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { CLOCK_NAMES, type ClockIR, type PackIR, type PrinterIR, type TExpr, type ViewIR } from '../generators/ir.ts';
import { commandName } from '../generators/debugger-commands.ts';
import { layoutSpecOf, type LayoutFile } from '../generators/layout.ts';
import { repoRoot } from '../generators/repo.ts';
import { PyConsts, PyExprEmitter } from './py-expr.ts';
import { type Py, py, pyBool, pyComment, pyData, pyInt, pyJoin, pyRuntime, pyStr } from './py-source.ts';

export type Debugger = 'gdb' | 'lldb';

export const GENERATOR_VERSION = '1';

const RUNTIME: Record<Debugger, string[]> = {
  gdb: ['py-common/xwalk_core.py', 'py-common/xwalk_elf.py', 'py-common/xwalk_pattern.py', 'py-common/xwalk_commands.py', 'gdb-py/xwalk_dwarf.py', 'gdb-py/xwalk_gdb.py'],
  lldb: ['py-common/xwalk_core.py', 'py-common/xwalk_elf.py', 'py-common/xwalk_pattern.py', 'py-common/xwalk_commands.py', 'lldb-py/xwalk_dwarf_lldb.py', 'lldb-py/xwalk_lldb.py'],
};

/** The command names of a view: its name with dashes, and its aliases. */
export function commandNames(view: ViewIR): string[] {
  return [view.name, ...view.aliases].map(commandName);
}

function isAddress(t: TExpr['type']): boolean {
  return t.k === 'ptr' || t.k === 'ref' || t.k === 'fnptr';
}

/** A view as a factory: bind the layout's numbers once, return a View of compiled functions. */
function viewFactory(view: ViewIR, index: number): Py {
  const consts = new PyConsts();
  const e = new PyExprEmitter(consts);
  const roots = view.roots.map((r, i) => ({ label: r.label, fn: py`root${i}`, body: e.seq(r.expr) }));
  // A function body: an aggregate over a chain as a loop, anything else as one expression.
  const bodyOf = (x: TExpr): Py => {
    const loop = e.chainAggregateLoop(x);
    return loop ? pyJoin(loop.map((l) => py`        ${l}`), '\n') : py`        return ${e.expr(x)}`;
  };
  const columns = view.columns.map((c, i) => ({ name: c.name, fn: py`col${i}`, body: bodyOf(c.expr), addr: isAddress(c.expr.type) }));
  const checks = view.checks.map((c, i) => ({ message: c.message, fn: py`check${i}`, body: bodyOf(c.expr) }));
  const lines: Py[] = [py`def view${index}(L):`];
  for (const b of consts.bindings()) lines.push(py`    ${b}`);
  for (const r of roots) lines.push(py`\n    def ${r.fn}(rt):\n        m = rt.m\n        u64 = m.u64\n        return ${r.body}`);
  for (const c of [...columns, ...checks]) lines.push(py`\n    def ${c.fn}(rt, s):\n        m = rt.m\n        u64 = m.u64\n${c.body}`);
  const rootList = pyJoin(roots.map((r) => py`(${pyStr(r.label)}, ${r.fn})`), ', ');
  const colList = pyJoin(columns.map((c) => py`(${pyStr(c.name)}, ${c.fn}, ${pyStr(c.addr ? 'addr' : 'value')})`), ', ');
  const checkList = pyJoin(checks.map((c) => py`(${c.fn}, ${pyStr(c.message)})`), ', ');
  lines.push(py`\n    return View(${pyStr(view.name)}, ${pyStr(view.doc)}, ${pyStr(view.of)}, [${rootList}], [${colList}], [${checkList}], ${pyBool(view.clock)})  # noqa: F821`);
  return pyJoin(lines, '\n');
}

/** The program's clock on a core (the schema's clock:), as a factory like a view's: (doc, {name: fn(rt, s)}). */
function clockFactory(clock: ClockIR): Py {
  const consts = new PyConsts();
  const e = new PyExprEmitter(consts);
  const fns = CLOCK_NAMES.filter((n) => clock.exprs[n]).map((n) => ({ name: n, body: e.expr(clock.exprs[n]!) }));
  const lines: Py[] = [py`def pack_clock(L):`];
  for (const b of consts.bindings()) lines.push(py`    ${b}`);
  fns.forEach((f, i) => lines.push(py`\n    def clock${i}(rt, s):\n        m = rt.m\n        u64 = m.u64\n        return ${f.body}`));
  const table = pyJoin(fns.map((f, i) => py`${pyStr(f.name)}: clock${i}`), ', ');
  lines.push(py`\n    return (${pyStr(clock.doc)}, {${table}})`);
  return pyJoin(lines, '\n');
}

/** A printer's code, as a factory like a view's: bind the layout once, return fn(rt, s). */
function printerFactory(p: Extract<PrinterIR, { expr: TExpr }>, index: number): Py {
  const consts = new PyConsts();
  const e = new PyExprEmitter(consts);
  const body = p.kind === 'children' ? e.seq(p.expr) : e.expr(p.expr);
  const lines: Py[] = [py`def printer${index}(L):`];
  for (const b of consts.bindings()) lines.push(py`    ${b}`);
  lines.push(py`
    def fn(rt, s):
        m = rt.m
        u64 = m.u64
        return ${body}

    return fn`);
  return pyJoin(lines, '\n');
}

function printerEntry(pack: PackIR, p: PrinterIR, index: number): Py {
  if (p.kind === 'view') return py`(${pyStr(p.type)}, "view", ${pyInt([...pack.views.keys()].indexOf(p.view))})`;
  return py`(${pyStr(p.type)}, ${pyStr(p.kind)}, printer${index})`;
}

function helpText(pack: PackIR, view: ViewIR, command: string): string {
  return `${view.doc}\n\nUsage: ${command} [EXPR] [--json] [--max-nodes N]\nWith EXPR (an address or an expression of the debugger), only the ${view.of} there; without it, every one the view's roots reach.\nReads raw memory with the ${pack.name} pack's layout (same output as xsample --struct ${view.name}).`;
}

export interface GenerateInput {
  pack: PackIR;
  layouts: LayoutFile[];
  schemaPath: string; // as shown in the header, relative to the repo
}

export function generateExtension(dbg: Debugger, input: GenerateInput): string {
  const { pack, layouts } = input;
  const views = [...pack.views.values()];
  const releases = [...new Set(layouts.map((l) => l.release))].sort();
  const header: Py[] = [
    pyComment(`Generated by xgen ${GENERATOR_VERSION} from ${input.schemaPath}: do not edit; regenerate with make regen.`),
    pyComment(`pack ${pack.name}, release${releases.length === 1 ? '' : 's'} ${releases.join(', ') || 'none (layouts derived from debug info)'}, schema sha256 ${pack.schemaHash}`),
    pyComment(dbg === 'gdb' ? `Use: (gdb) source ${pack.name}.py` : `Use: (lldb) command script import ${pack.name}_lldb.py`),
  ];
  const runtime = RUNTIME[dbg].map((f) => py`${pyComment(`---- ${f} ----`)}\n${pyRuntime(fs.readFileSync(path.join(repoRoot(), f), 'utf8'))}`);
  const commands = views.flatMap((v, i) => commandNames(v).map((c) => py`(${pyStr(c)}, ${pyInt(i)}, ${pyStr(helpText(pack, v, c))})`));
  const body: Py[] = [
    ...header,
    ...runtime,
    pyComment(`---- pack ${pack.name} ----`),
    ...views.map((v, i) => viewFactory(v, i)),
    ...pack.printers.flatMap((p, i) => (p.kind === 'view' ? [] : [printerFactory(p, i)])),
    ...(pack.clock ? [clockFactory(pack.clock)] : []),
    py`PACK = Pack(  # noqa: F821
    ${pyStr(pack.name)},
    ${pyStr(pack.doc)},
    ${pyStr(pack.schemaHash)},
    ${pack.versionPattern === null ? py`None` : pyData(pack.versionPattern.program)},
    ${pack.signaturePattern === null ? py`None` : pyData(pack.signaturePattern.program)},
    ${pyData(layouts.map((l) => ({ release: l.release, build_id: l.build_id, signature: l.signature ?? null, types: l.types, globals: l.globals })))},
    ${pyData(layoutSpecOf(pack))},
    [${pyJoin(views.map((_, i) => py`view${i}`), ', ')}],
    [${pyJoin(commands, ',\n     ')}],
    [${pyJoin(pack.printers.map((p, i) => printerEntry(pack, p, i)), ', ')}],
    ${pack.clock ? py`pack_clock` : py`None`},
)`,
    dbg === 'gdb' ? py`xwalk_register(PACK)  # noqa: F821` : py`\n\ndef __lldb_init_module(debugger, internal_dict):\n    xwalk_register(debugger, PACK, __name__)  # noqa: F821`,
  ];
  return pyJoin(body, '\n\n') + '\n';
}
