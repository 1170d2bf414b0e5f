/**
 * Recovered symbol tables in the readers, over binaries of our own: a stripped copy of walkee, whose table is made
 * from the unstripped one. xsample's symbol() columns (WalkRuntime.symbol), its file statics and its unwound frame
 * names (ProcessObjects, nativeFrameName) name a static function from the table, and so do the Python runtime's
 * Symbols (what the gdb and lldb extensions stand on); both runtimes accept and refuse the same table files with the
 * same words; and how long a table of thousands of symbols (an nginx's) takes to load in each.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ElfFile, STT_FUNC, STT_OBJECT } from '../core/elf.ts';
import { symbolTableProblem, type SymbolTableFile } from '../core/symbol-table.ts';
import { findRecoveredTable, objectSymbols, onSymbolTableWarning } from '../sampler/memory/recovered-symbols.ts';
import { shapeOf } from '../generators/symbols/cache.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import { openLive } from '../sampler/memory/target.ts';
import { nativeFrameName } from '../sampler/memory/unwind/frame-names.ts';
import { ProcessObjects } from '../sampler/memory/unwind/objects.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import type { Snapshot } from '../sampler/memory/snapshot.ts';
import { putInCache, symbolTableOf } from './lib/symbol-table-of.ts';
import { binPath, build, root, Walkee } from './lib/walkee.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-recovered-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const withTable = path.join(dir, 'cache');
const noTable = path.join(dir, 'empty');
fs.mkdirSync(noTable, { mode: 0o700 });

/** The Python runtime's modules (imported from py-common/, nothing written there), their names in one namespace, then `script`. */
const PY_RUNTIME = ['xwalk_core', 'xwalk_elf', 'xwalk_symtab', 'xwalk_target'];
const pyLoad = `import importlib, json, sys\nsys.dont_write_bytecode = True\nsys.path.insert(0, ${JSON.stringify(path.join(root, 'py-common'))})\nns = {}\nfor n in ${JSON.stringify(PY_RUNTIME)}:\n    ns.update(vars(importlib.import_module(n)))\n`;
async function python(script: string, env: Record<string, string>): Promise<unknown> {
  const r = await execa('python3', ['-c', pyLoad + script], { env: { ...process.env, ...env }, reject: false });
  if (r.exitCode !== 0) throw new Error(`python3: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Sets XDG_CACHE_HOME for the in-process readers (cacheDir reads it at each lookup). */
function cacheHome(home: string): void {
  process.env.XDG_CACHE_HOME = home;
}
t.teardown(() => delete process.env.XDG_CACHE_HOME);

/** The .symtab value of a symbol of the unstripped walkee: the independent truth. */
function linkValue(name: string, type: number): number {
  const elf = ElfFile.open(binPath);
  try {
    const s = elf.symbols().find((x) => x.name === name && x.type === type);
    if (!s) throw new Error(`walkee has no ${name}`);
    return s.value;
  } finally {
    elf.close();
  }
}

/** Where the first page of file is mapped in pid (walkee is a PIE whose first PT_LOAD is at 0): its load bias. */
function biasOf(pid: number, file: string): number {
  const line = fs.readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith(file) && l.split(/\s+/)[2] === '00000000');
  return parseInt(line!.split('-')[0], 16);
}

t.test("a stripped walkee's static function and file static are named from its recovered table, in xsample and in Python", async (t) => {
  build('walkee');
  const stripped = path.join(dir, 'walkee');
  await execa('strip', ['-o', stripped, binPath]);
  const probe = ElfFile.open(stripped);
  t.notOk(new SymbolTable(probe.symbols(), 0).address('ngx_palloc_small'), 'the stripped copy does not name it itself');
  probe.close();
  const table = symbolTableOf(binPath, stripped, 'test-targets/bin/walkee, unstripped');
  putInCache(withTable, table);

  const w = new Walkee(['--nodes', '10'], 'walkee', stripped);
  t.teardown(() => w.child.kill('SIGKILL'));
  await w.next();
  const pid = w.child.pid!;
  const bias = biasOf(pid, stripped);
  const fn = bias + linkValue('ngx_palloc_small', STT_FUNC);
  const listItems = bias + linkValue('list_items', STT_OBJECT);
  const rtOf = (symbols: WalkRuntime['symbols']) => new WalkRuntime(undefined as unknown as Snapshot, symbols, { maxNodes: 1, maxTotal: 1 });

  cacheHome(noTable);
  const bare = openLive(pid);
  t.equal(rtOf(bare.symbols).symbol(fn + 4), `walkee+0x${(fn + 4 - bias).toString(16)}`, 'without a table: the object and the address in it');
  t.equal(bare.symbols.fileStatic(fn, 'list_items'), undefined, 'without a table: no file statics');
  bare.close();

  cacheHome(withTable);
  const target = openLive(pid);
  t.teardown(() => target.close());
  t.equal(rtOf(target.symbols).symbol(fn + 4), 'ngx_palloc_small+0x4', 'symbol(): the static function, from the table');
  t.equal(target.symbols.address('ngx_palloc_small'), fn, 'its address by name');
  t.equal(target.symbols.fileStatic(fn, 'list_items'), listItems, "a static of the function's C file");
  const objects = ProcessObjects.live(pid);
  t.equal(nativeFrameName(objects.objectAt(fn + 4), fn + 5, true), 'ngx_palloc_small', 'an unwound frame (a return address into it)');

  // The Python runtime's Symbols, as the gdb and lldb extensions use them: the debugger knows no name here.
  const py = `
class Live(ns["Symbols"]):
    exe = ${JSON.stringify(stripped)}
    def debugger_address(self, name): return None
    def debugger_symbol_at(self, addr): return None
    def live_pid(self): return ${pid}
s = Live()
rt = ns["Runtime"](None, s)
print(json.dumps({"symbol": rt.symbol(${fn + 4}), "address": s.address("ngx_palloc_small"), "static": s.file_static(${fn}, "list_items"),
                  "why": s.why_missing("nosuch")}))
`;
  t.same(await python(py, { XDG_CACHE_HOME: withTable }), { symbol: 'ngx_palloc_small+0x4', address: fn, static: listItems, why: null }, 'Python: the same names');
  const none = (await python(py, { XDG_CACHE_HOME: noTable })) as Record<string, unknown>;
  t.equal(none.symbol, `walkee+0x${(fn + 4 - bias).toString(16)}`, 'Python without a table: the object and the address in it');
  t.match(none.why, `${stripped} is stripped and no recovered symbol table is found for it (build-id ${table.build_id}): run \`xgen symbols --for ${stripped}\``);
});

t.test('a table in a folder of XWALK_PACKS is found by both runtimes, and refused by both when others can write it', async (t) => {
  build('walkee');
  const stripped = path.join(dir, 'walkee-packs');
  await execa('strip', ['-o', stripped, binPath]);
  const table = symbolTableOf(binPath, stripped, 'test-targets/bin/walkee, unstripped');
  const packs = path.join(dir, 'packs');
  const folder = path.join(packs, 'walkee', 'symbols');
  fs.mkdirSync(folder, { recursive: true, mode: 0o755 });
  const file = path.join(folder, `${table.build_id}.json`);
  fs.writeFileSync(file, JSON.stringify(table), { mode: 0o644 });
  const env = { XDG_CACHE_HOME: noTable, XWALK_PACKS: packs };
  const pyFind = `t = ns["find_recovered_table"](${JSON.stringify(table.build_id)}, lambda m: print(json.dumps({"warning": m})))\nprint(json.dumps({"found": t.path if t else None}))`;
  const pyLast = async (): Promise<{ found: string | null; warnings: string[] }> => {
    const r = await execa('python3', ['-c', pyLoad + pyFind], { env: { ...process.env, ...env }, reject: false });
    const docs = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    return { found: docs.at(-1).found, warnings: docs.filter((d) => d.warning).map((d) => d.warning) };
  };
  const tsFind = () => {
    Object.assign(process.env, env);
    try {
      const elf = ElfFile.open(stripped);
      try {
        return findRecoveredTable(shapeOf(elf))?.where ?? null;
      } finally {
        elf.close();
      }
    } finally {
      delete process.env.XWALK_PACKS;
    }
  };
  t.equal(tsFind(), file, 'xsample finds it');
  t.equal((await pyLast()).found, file, 'the extensions find it');
  fs.chmodSync(file, 0o664);
  t.equal(tsFind(), null, 'xsample refuses a file its group can write');
  const py = await pyLast();
  t.equal(py.found, null, 'so do the extensions');
  t.match(py.warnings.join('\n'), `${file} can be written by others (mode 664)`, 'saying why');
});

/** Table files that each reader must accept or refuse alike: the valid one, and one broken way each. */
function goldenCases(): Record<string, unknown> {
  const sym = { name: 'f', value: 4096, size: 16, kind: 'func', bind: 'local', file: 'a.c' };
  const ok = { xwalk_symbols: 1, build_id: 'ab12', file: '/usr/bin/x', method: 'rebuild', from: 'a rebuild', verified: 'build-id equal', symbols: [sym] };
  const withSym = (s: unknown) => ({ ...ok, symbols: [sym, s] });
  return {
    ok,
    'ok-matched': { ...ok, method: 'matched', matched: 3, total: 4 },
    'ok-no-file': withSym({ name: 'g', value: 0, size: 0, kind: 'object', bind: 'global' }),
    'ok-float-integer': withSym({ ...sym, value: 8192.0 }),
    array: [ok],
    null: null,
    'version-2': { ...ok, xwalk_symbols: 2 },
    'version-string': { ...ok, xwalk_symbols: '1' },
    'version-missing': (({ xwalk_symbols: _, ...rest }) => rest)(ok),
    'version-true': { ...ok, xwalk_symbols: true },
    'build-id-upper': { ...ok, build_id: 'AB12' },
    'build-id-short': { ...ok, build_id: 'a' },
    'build-id-number': { ...ok, build_id: 1234 },
    'from-missing': (({ from: _, ...rest }) => rest)(ok),
    'verified-number': { ...ok, verified: 1 },
    'method-unknown': { ...ok, method: 'guessed' },
    'method-list': { ...ok, method: ['rebuild'] },
    'matched-negative': { ...ok, matched: -1 },
    'total-null': { ...ok, total: null },
    'total-fraction': { ...ok, total: 1.5 },
    'symbols-object': { ...ok, symbols: {} },
    'symbol-null': withSym(null),
    'symbol-array': withSym([1]),
    'symbol-number': withSym(7),
    'name-empty': withSym({ ...sym, name: '' }),
    'name-control': withSym({ ...sym, name: 'a\nb' }),
    'name-long': withSym({ ...sym, name: 'x'.repeat(4097) }),
    'value-negative': withSym({ ...sym, value: -1 }),
    'value-huge': withSym({ ...sym, value: 2 ** 53 }),
    'size-string': withSym({ ...sym, size: '16' }),
    'kind-unknown': withSym({ ...sym, kind: 'section' }),
    'bind-unknown': withSym({ ...sym, bind: 'hidden' }),
    'file-number': withSym({ ...sym, file: 3 }),
    'file-null': withSym({ ...sym, file: null }),
  };
}

t.test('a table that places a symbol outside the object is refused by both runtimes, with the same line', async (t) => {
  build('walkee');
  const stripped = path.join(dir, 'walkee-misfit');
  await execa('strip', ['-o', stripped, binPath]);
  const good = symbolTableOf(binPath, stripped, 'test-targets/bin/walkee, unstripped');
  const cases: [string, SymbolTableFile, RegExp][] = [
    ['an object outside every segment', { ...good, symbols: good.symbols.map((s) => (s.name === 'list_items' ? { ...s, value: 0x7fff0000 } : s)) }, /list_items at 0x7fff0000 is outside .*walkee-misfit's loaded segments/],
    ['a function in data', { ...good, symbols: good.symbols.map((s) => (s.name === 'ngx_palloc_small' ? { ...s, value: good.symbols.find((o) => o.name === 'list_items')!.value, size: 1 } : s)) }, /function ngx_palloc_small at 0x[0-9a-f]+ is not in .*walkee-misfit's code/],
  ];
  for (const [what, table, why] of cases) {
    const home = path.join(dir, `misfit-${what.replace(/\W/g, '-')}`);
    putInCache(home, table);
    cacheHome(home);
    const warnings: string[] = [];
    onSymbolTableWarning((m) => warnings.push(m));
    const elf = ElfFile.open(stripped);
    try {
      t.equal(findRecoveredTable(shapeOf(elf)), null, `${what}: xsample does not use it`);
    } finally {
      elf.close();
    }
    t.match(warnings.join('\n'), why, `${what}: and says why`);
    const py = (await python(
      `warnings = []\nwith open(${JSON.stringify(stripped)}, "rb") as f:\n    loads = ns["elf_loads"](f)\nfound = ns["find_recovered_table"](${JSON.stringify(table.build_id)}, warnings.append, loads, ${JSON.stringify(stripped)})\nprint(json.dumps({"found": found is not None, "warnings": warnings}))`,
      { XDG_CACHE_HOME: home },
    )) as { found: boolean; warnings: string[] };
    t.equal(py.found, false, `${what}: Python does not use it`);
    t.same(py.warnings, warnings.filter((w) => why.test(w)), `${what}: and says the same`);
  }
});

t.test('both runtimes accept and refuse the same table files, with the same words', async (t) => {
  const folder = path.join(dir, 'golden');
  fs.mkdirSync(folder);
  const files: Record<string, string> = {};
  for (const [name, value] of Object.entries(goldenCases())) fs.writeFileSync((files[name] = path.join(folder, `${name}.json`)), JSON.stringify(value));
  const fromPython = (await python(
    `print(json.dumps({k: ns["symbol_table_problem"](json.load(open(f))) for k, f in ${JSON.stringify(files)}.items()}))`,
    {},
  )) as Record<string, string | null>;
  for (const [name, file] of Object.entries(files)) {
    const ts = symbolTableProblem(JSON.parse(fs.readFileSync(file, 'utf8')));
    t.equal(ts === null, name.startsWith('ok'), `${name}: ${ts ?? 'accepted'}`);
    t.equal(fromPython[name], ts, `${name}: Python says the same`);
  }
});

// Our -g redis-server: about 5000 functions and objects, the size of a Debian nginx's .symtab.
const redisBuild = path.join(root, 'build/redis');
const bigBinary = fs.existsSync(redisBuild) ? fs.readdirSync(redisBuild).map((d) => path.join(redisBuild, d, 'src/redis-server')).find((f) => fs.existsSync(f)) : undefined;
t.test('how long a table of thousands of symbols takes to load, in each runtime', { skip: bigBinary ? false : 'build/redis is not built (make redis)' }, async (t) => {
  const unstripped = bigBinary!;
  const stripped = path.join(dir, 'big');
  await execa('strip', ['-o', stripped, unstripped]);
  const table: SymbolTableFile = symbolTableOf(unstripped, stripped, 'our -g build');
  const home = path.join(dir, 'big-cache');
  putInCache(home, table);
  cacheHome(home);
  const elf = ElfFile.open(stripped);
  t.teardown(() => elf.close());
  const runs = 9;
  const ts: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = process.hrtime.bigint();
    const st = new SymbolTable(objectSymbols(elf).symbols, 0);
    st.address('server');
    ts.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  t.ok(findRecoveredTable(shapeOf(elf)), 'the table is found');
  const py = (await python(
    `import time
times = []
for i in range(${runs}):
    start = time.perf_counter()
    table = ns["find_recovered_table"](${JSON.stringify(table.build_id)}, print)
    table.address("server")
    table.symbol_at(0)
    times.append((time.perf_counter() - start) * 1000)
print(json.dumps(times))`,
    { XDG_CACHE_HOME: home },
  )) as number[];
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  const line = `a table of ${table.symbols.length} symbols (${fs.statSync(path.join(home, 'xwalk/symbols', `${table.build_id}.json`)).size} bytes): found, validated and indexed in ${median(ts).toFixed(1)} ms (TypeScript, median of ${runs}), ${median(py).toFixed(1)} ms (Python)`;
  t.comment(line);
  t.ok(table.symbols.length > 1000, line);
});
