/**
 * The Python runtime is linted and typed: pyflakes (Debian's pyflakes3) on py-common/, gdb-py/ and
 * lldb-py/, each file a module that imports what it uses, with no suppression at all; pyflakes on a
 * generated extension of each debugger (the runtime made into modules, the pack's part importing
 * Pack, View and xwalk_register); mypy (Debian's python3-mypy, mypy.ini at the root) on the runtime.
 * Nothing is written: pyflakes writes nothing, mypy's cache is /dev/null (mypy.ini).
 */
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { root } from './lib/walkee.ts';

const RUNTIME_DIRS = ['py-common', 'gdb-py', 'lldb-py'];
const runtimeFiles = RUNTIME_DIRS.flatMap((d) => fs.readdirSync(path.join(root, d)).filter((f) => f.endsWith('.py')).map((f) => path.join(d, f)));
// generators/layout_gdb.py is run by gdb at xgen layout and imports the runtime as the extensions do (after setting its path).
const LAYOUT_SCRIPT = 'generators/layout_gdb.py';

t.test('the runtime passes pyflakes, with no suppression', async (t) => {
  t.ok(runtimeFiles.length >= 11, `the runtime's files: ${runtimeFiles.join(' ')}`);
  const r = await execa('pyflakes3', [...runtimeFiles, LAYOUT_SCRIPT], { cwd: root, reject: false });
  t.equal(r.exitCode, 0, 'pyflakes is content');
  t.equal(r.stdout + r.stderr, '', 'and says nothing');
  for (const f of runtimeFiles) {
    t.notMatch(fs.readFileSync(path.join(root, f), 'utf8'), /#\s*(noqa|type:\s*ignore)/, `${f}: no noqa, no type: ignore`);
  }
});

// Lowering leaves a few lets unread (an iterate's element a walk never reads): pyflakes' "assigned to but never
// used" of such a name is lowering's to clear. A runtime name (_m, _u64, _max_nodes: bound only where used) or any
// other message (an undefined name above all) fails.
const UNUSED_LOCAL = /^[^:]+:\d+:\d+:? local variable '[a-z][A-Za-z0-9_]*' is assigned to but never used$/;

for (const file of ['generated/nginx.py', 'generated/nginx_lldb.py']) {
  t.test(`${file} passes pyflakes: every name it uses is defined or imported`, async (t) => {
    const r = await execa('pyflakes3', [file], { cwd: root, reject: false });
    const lines = (r.stdout + r.stderr).split('\n').filter((l) => l !== '');
    t.same(lines.filter((l) => !UNUSED_LOCAL.test(l)), [], 'no message but unused locals of printed functions');
    t.match(fs.readFileSync(path.join(root, file), 'utf8'), /^from xwalk_core import View$/m, 'the pack imports View');
  });
}

t.test('mypy checks the runtime (mypy.ini), bodies of functions without hints included', async (t) => {
  // Debian's python3-mypy lives in Debian's python3, which a python3 earlier on PATH may not be.
  const r = await execa('/usr/bin/python3', ['-m', 'mypy'], { cwd: root, reject: false });
  t.equal(r.exitCode, 0, r.stdout + r.stderr);
  t.match(r.stdout, /^Success: no issues found in (\d+) source files$/m);
  t.equal(Number(/in (\d+) source files/.exec(r.stdout)?.[1]), runtimeFiles.length, 'every file of the runtime checked');
});

t.test("the generator orders the runtime's modules by their imports, and refuses a circle in one line", async (t) => {
  const { importOrder, runtimeModules } = await import('../printers/python-extension.ts');
  for (const dbg of ['gdb', 'lldb'] as const) {
    const modules = runtimeModules(dbg);
    const order = modules.map((m) => m.name);
    // What each module imports, as Python's own parser reads it (not the generator's regex).
    const script = 'import ast, json, sys\nout = {}\nfor f in sys.argv[1:]:\n    t = ast.parse(open(f).read())\n    out[f] = sorted({(n.module if isinstance(n, ast.ImportFrom) else a.name).split(".")[0] for n in ast.walk(t) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in (n.names if isinstance(n, ast.Import) else [n]) if (n.module if isinstance(n, ast.ImportFrom) else a.name)})\nprint(json.dumps(out))';
    const parsed = JSON.parse((await execa('python3', ['-c', script, ...modules.map((m) => m.file)], { cwd: root })).stdout) as Record<string, string[]>;
    for (const m of modules) {
      for (const i of parsed[m.file].filter((n) => order.includes(n))) t.ok(order.indexOf(i) < order.indexOf(m.name), `${dbg}: ${m.name} after ${i}, which it imports`);
    }
    t.ok(order.includes(`xwalk_${dbg}`) && order.includes('xwalk_core'), `${dbg}: ${order.join(' ')}`);
  }
  const file = (name: string, text: string) => ({ name, file: `${name}.py`, text });
  t.same(
    importOrder([file('c', 'import os\n'), file('a', 'from b import x\nimport c as cc\n'), file('b', '    import c\n')]).map((m) => m.name),
    ['c', 'b', 'a'],
  );
  t.throws(() => importOrder([file('a', 'from b import x\n'), file('b', 'import c\n'), file('c', 'import a\n')]), { message: "the Python runtime's imports go round: a -> b -> c -> a" });
});
