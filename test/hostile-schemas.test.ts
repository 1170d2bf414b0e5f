/**
 * Schemas someone else wrote. A broken, huge or hostile schema of another
 * pack costs a run nothing (xsample identifies the binary first and loads
 * only its pack); a pattern that would make a regex engine backtrack for
 * ever, a view that would replace a debugger's own command, an expression
 * too long or too deep, YAML nested too deeply: each is one line at
 * file:line:col; a doc's control characters never reach the terminal.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { DEBUGGER_COMMANDS } from '../generators/debugger-commands.ts';
import { root, startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const xgen = path.join(root, 'dist/xgen.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-schemas-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
const walkeeSchema = fs.readFileSync(path.join(root, 'packs/walkee/schema.yaml'), 'utf8');

/** A packs folder with walkee and the given other packs. */
function packs(name: string, others: Record<string, string>): string {
  const dir = path.join(tmp, name);
  for (const [pack, text] of Object.entries({ walkee: walkeeSchema, ...others })) {
    fs.mkdirSync(path.join(dir, pack), { recursive: true });
    fs.writeFileSync(path.join(dir, pack, 'schema.yaml'), text);
  }
  return dir;
}

const check = (file: string) => execa(process.execPath, [xgen, 'check', '--schema', file], { reject: false, timeout: 60_000 });

t.test("a broken, huge or hostile pack beside walkee's costs a walkee run nothing", async (t) => {
  const broken = 'xwalk: 1\npack: broken\ntypes: [\n';
  const huge = walkeeSchema.replace('pack: walkee', 'pack: huge') + `# ${'x'.repeat(5 * 1024 * 1024)}\n`;
  const evil = walkeeSchema.replace('pack: walkee', 'pack: evil').replace("version: 'walkee/(\\d+\\.\\d+)'", "version: '([\\s\\S]*)*Q9Z7'");
  t.not(evil, walkeeSchema.replace('pack: walkee', 'pack: evil'), 'the evil pack has its pattern');
  const dir = packs('mixed', { broken, huge, evil });
  const w = await startWalkee(['--nodes', '100']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json'], { env: { XWALK_PACKS: dir }, timeout: 60_000 });
  t.equal(r.code, 0, r.stderr);
  t.same([r.json.items[0].count, r.json.items[0].sum], [truth.list.count, truth.list.sum]);

  const list = await xsample(['--list'], { env: { XWALK_PACKS: dir } });
  t.equal(list.code, 0);
  t.match(list.stdout, /^walkee: /m, 'walkee is listed');
  t.match(list.stdout, /^broken: cannot be loaded: .*broken\/schema\.yaml:4:1: YAML: /m, 'the broken pack, with where');
  t.match(list.stdout, /^huge: cannot be loaded: .*huge\/schema\.yaml:1:1: a schema of \d+ bytes is more than xgen reads \(4 MiB\)/m);
  t.match(list.stdout, /^evil: cannot be loaded: .*evil\/schema\.yaml:\d+:\d+: binary\.version: a capture group cannot be repeated/m);
  const named = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--pack', 'broken'], { env: { XWALK_PACKS: dir } });
  t.equal(named.code, 1, 'named with --pack, its error is the answer');
  t.match(named.stderr.trim(), /^xsample: .*broken\/schema\.yaml:4:1: YAML: /);
});

t.test('a view or an alias that would be a command gdb or lldb has is refused where it is written', async (t) => {
  for (const [from, to, where] of [
    ['  walkee_list:\n', '  python:\n', /:\d+:3: 'python' would be the command 'python', which gdb or lldb already has/],
    ['  walkee_sum:\n', '  shell:\n', /:\d+:3: 'shell' would be the command 'shell'/],
    ['    aliases: [ngx_pools]', '    aliases: [ngx_pools, add_symbol_file]', /:\d+:26: 'add_symbol_file' would be the command 'add-symbol-file'/],
  ] as const) {
    const file = path.join(tmp, `${to.trim().replace(/\W/g, '')}.yaml`);
    t.ok(walkeeSchema.includes(from));
    fs.writeFileSync(file, walkeeSchema.replace(from, to));
    const r = await check(file);
    t.equal(r.exitCode, 1);
    t.match(r.stderr, where);
  }
});

t.test('every command the installed gdb and lldb have of their own is known to be one', async (t) => {
  const g = await execa('gdb', ['-batch', '-nx', '-ex', 'help all'], { reject: false });
  const gdbCommands = g.stdout.split('\n').filter((l) => /^\S/.test(l) && l.includes(' -- ')).flatMap((l) => l.split(' -- ')[0].split(',').map((c) => c.trim())).filter((c) => /^[a-z!|][a-z0-9_!|-]*$/.test(c));
  const l = await execa('lldb-16', ['-b', '-o', 'help'], { reject: false });
  const lldbCommands = l.stdout.split('\n').filter((x) => /^ {2}[a-z]/.test(x)).map((x) => x.trim().split(/\s+/)[0]);
  t.ok(gdbCommands.length > 100 && lldbCommands.length > 40, `${gdbCommands.length} gdb and ${lldbCommands.length} lldb commands`);
  const missing = [...gdbCommands, ...lldbCommands].filter((c) => !DEBUGGER_COMMANDS.has(c));
  t.same(missing, [], 'none missing from generators/debugger-commands.ts (regenerate it from help all / help if this fails)');
});

t.test('an expression too long or too deep, walks nested too far, YAML too deep: one line where it is', async (t) => {
  const cases: [string, string, RegExp][] = [
    ['long', walkeeSchema.replace('      count: count(chain(self.list, next))', `      count: ${Array(3000).fill('1').join(' + ')}`), /:\d+:\d+: expression too long: more than 2000 tokens/],
    ['deep', walkeeSchema.replace('      count: count(chain(self.list, next))', `      count: ${Array(500).fill('1').join(' + ')}`), /:\d+:\d+: expression nested too deeply \(more than 128 levels\)/],
    ['walks', walkeeSchema.replace('walks:\n', `walks:\n${Array.from({ length: 40 }, (_, i) => `  w${i}:\n    of: walkee_root_t\n    yields: ${i === 0 ? 'chain(self.list, next)' : `w${i - 1}(self)`}\n`).join('')}`), /walks call walks more than 16 deep/],
    ['yaml', `${walkeeSchema}\nzz: ${'['.repeat(100000)}${']'.repeat(100000)}\n`, /:\d+:\d+: YAML: nested too deeply/],
  ];
  for (const [name, text, want] of cases) {
    const file = path.join(tmp, `${name}.yaml`);
    fs.writeFileSync(file, text);
    const r = await check(file);
    t.equal(r.exitCode, 1, `${name}: exit 1`);
    t.match(r.stderr, want, `${name}: says what and where`);
    t.notMatch(r.stderr, /internal error|Maximum call stack/, `${name}: not an internal error`);
    t.equal(r.stderr.trim().split('\n').length, 1, `${name}: one line`);
  }
});

t.test('walks that call walks twice, 30 deep: one function each, not 2^30 copies', async (t) => {
  const walks = Array.from({ length: 30 }, (_, i) => `  w${i}:\n    of: walkee_root_t\n    yields: ${i === 0 ? 'chain(self.list, next)' : `filter(w${i - 1}(self), it.value >= 0 || count(w${i - 1}(self)) > 0)`}\n`).join('');
  const text = walkeeSchema.replace('walks:\n', `walks:\n${walks}`).replace('      count: count(chain(self.list, next))', '      count: count(w29(self))');
  const file = path.join(tmp, 'doubling.yaml');
  fs.writeFileSync(file, text);
  const r = await check(file);
  t.equal(r.exitCode, 0, r.stderr);
  t.equal(r.stderr, '', 'no warning');
  const kib = Number(/(\d+) KiB of generated Python/.exec(r.stdout)?.[1]);
  const plain = Number(/(\d+) KiB of generated Python/.exec((await check(path.join(root, 'packs/walkee/schema.yaml'))).stdout)?.[1]);
  t.ok(kib < plain + 64, `${kib} KiB, walkee's own is ${plain} KiB`);
  // And it runs: w29 of a list is the list (every value is >= 0, so the inner count is never needed).
  const w = await startWalkee(['--nodes', '5']);
  t.teardown(() => w.kill());
  const dir = packs('doubling', {});
  fs.writeFileSync(path.join(dir, 'walkee', 'schema.yaml'), text);
  const x = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json'], { env: { XWALK_PACKS: dir } });
  t.equal(x.code, 0, x.stderr);
  t.equal(x.json.items[0].count, 5);
});

t.test("a doc's control characters never reach the terminal", async (t) => {
  const dir = packs('controls', {});
  const file = path.join(dir, 'walkee/schema.yaml');
  fs.writeFileSync(file, walkeeSchema.replace(/^doc: .*$/m, 'doc: "walkee \\e[2J\\e[31mred \\x9b1m\\nfake: line\\x07"'));
  const list = await xsample(['--list'], { env: { XWALK_PACKS: dir } });
  t.equal(list.code, 0, list.stderr);
  t.notMatch(list.stdout, /[\x00-\x08\x0b-\x1f\x7f-\x9f]/, 'no control character');
  t.match(list.stdout, /^walkee: walkee \\x1b\[2J\\x1b\[31mred \\x9b1m fake: line\\x07$/m, 'shown escaped, on its one line');
});

t.test('bidi controls (U+202E) from a schema never reach the terminal raw: --list, text output, errors, gdb', async (t) => {
  const dir = packs('bidi', {});
  const file = path.join(dir, 'walkee/schema.yaml');
  const text = walkeeSchema
    .replace(/^doc: .*$/m, 'doc: "walkee \\u202Egnp.exe\\u2066 x"')
    .replace('  walkee_list:\n', '  walkee_list:\n    checks:\n      - expr: self.list_len < 0\n        message: "never \\u202Etrue\\u2029 of a list"\n');
  fs.writeFileSync(file, text);
  const raw = /[\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/;
  const list = await xsample(['--list'], { env: { XWALK_PACKS: dir } });
  t.equal(list.code, 0, list.stderr);
  t.match(list.stdout, /^walkee: walkee \\u202egnp\.exe\\u2066 x$/m, 'the doc, escaped');
  const w = await startWalkee(['--nodes', '5']);
  t.teardown(() => w.kill());
  // The check always fails (a length is never negative): its message is in the text output and in the errors.
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list'], { env: { XWALK_PACKS: dir } });
  t.equal(r.code, 3, r.stderr);
  t.match(r.stdout + r.stderr, /never \\u202etrue\\u2029 of a list/, 'the message, escaped');
  t.notMatch(r.stdout + r.stderr, raw, 'no bidi control, raw');
  const gen = await execa(process.execPath, [xgen, 'gdb', '--pack', 'walkee', '--out', path.join(tmp, 'bidi.py')], { reject: false, env: { XWALK_PACKS: dir } });
  t.equal(gen.exitCode, 0, gen.stderr);
  const g = await execa('gdb', ['-batch', '-nx', '-p', String(w.child.pid), '-ex', `source ${path.join(tmp, 'bidi.py')}`, '-ex', 'walkee-list'], { reject: false });
  t.match(g.stdout + g.stderr, /never \\u202etrue\\u2029 of a list/, 'gdb: the message, escaped');
  t.notMatch(g.stdout + g.stderr, raw, 'gdb: no bidi control, raw');
  const bad = path.join(tmp, 'bidi-name.yaml');
  fs.writeFileSync(bad, walkeeSchema.replace('  walkee_list:\n', '  walkee_li\u202est:\n'));
  const c = await check(bad);
  t.equal(c.exitCode, 1);
  t.match(c.stderr, /a view name must be a C identifier .*, not "walkee_li\\u202est"/, 'an error that quotes it, escaped');
  t.notMatch(c.stderr, raw);
});

t.test("a walk parameter after a dot reads the member the call names, and an error names that member", async (t) => {
  const walk = '  via:\n    doc: the items from the member F.\n    of: walkee_root_t\n    params: [F]\n    yields: chain(self.F, next)\n';
  const withCall = (arg: string) => walkeeSchema.replace('walks:\n', `walks:\n${walk}`).replace('      count: count(chain(self.list, next))', `      count: count(via(self, ${arg}))`);
  const bad = path.join(tmp, 'param-bad.yaml');
  fs.writeFileSync(bad, withCall('list.nope'));
  const r = await check(bad);
  t.equal(r.exitCode, 1);
  t.match(r.stderr, /:\d+:\d+: in walk via: walkee_item_t has no field 'nope' in the schema/, 'names the field the call gave');
  t.notMatch(r.stderr, /'F'/, 'not the parameter');
  const dir = packs('param', {});
  fs.writeFileSync(path.join(dir, 'walkee/schema.yaml'), withCall('list'));
  const w = await startWalkee(['--nodes', '7']);
  t.teardown(() => w.kill());
  const x = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json'], { env: { XWALK_PACKS: dir } });
  t.equal(x.code, 0, x.stderr);
  t.equal(x.json.items[0].count, 7, 'via(self, list) walks self.list');
});
