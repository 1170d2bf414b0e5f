/**
 * xgen probe and xgen layout --for, where every layout of a stripped
 * distribution build comes from: a probe printed by xgen, compiled with -g
 * against a program's own headers, must compile as printed and give
 * exactly the offsets the DWARF of a -g build of the same source gives.
 * redis names two of its types by their struct tags (redisServer,
 * redisCommand: no typedef), nginx all of its by typedefs.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildNginx } from './lib/nginx.ts';
import { buildRedis } from './lib/redis.ts';
import { root } from './lib/walkee.ts';

const xgen = path.join(root, 'dist/xgen.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-probe-test-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

type Layout = { types: Record<string, unknown>; globals: Record<string, unknown> };

/** xgen layout into a folder of the test's; the layout file it wrote. */
async function layout(args: string[], out: string): Promise<Layout> {
  fs.mkdirSync(out, { recursive: true });
  const r = await execa(process.execPath, [xgen, 'layout', ...args, '--out', out], { reject: false });
  if (r.exitCode !== 0) throw new Error(`xgen layout ${args.join(' ')}: exit ${r.exitCode}: ${r.stderr}`);
  const [file] = fs.readdirSync(out).filter((f) => f.endsWith('.json'));
  return JSON.parse(fs.readFileSync(path.join(out, file), 'utf8')) as Layout;
}

/**
 * The probe of `pack` as a user makes it: the headers compiled once with every type kept in the
 * DWARF (--dwarf tells xgen probe how C spells each name), then the headers and xgen's declarations
 * compiled with -g. Returns the probe's text and the object.
 */
async function makeProbe(pack: string, name: string, head: string, cc: { cwd: string; flags: string[] }): Promise<{ text: string; object: string }> {
  const types = path.join(dir, `${name}-types.c`);
  fs.writeFileSync(types, head);
  const typesO = path.join(dir, `${name}-types.o`);
  await execa('cc', ['-g', '-fno-eliminate-unused-debug-types', ...cc.flags, '-c', types, '-o', typesO], { cwd: cc.cwd });
  const decls = await execa(process.execPath, [xgen, 'probe', '--pack', pack, '--dwarf', typesO]);
  const text = head + decls.stdout + '\n';
  const probe = path.join(dir, `${name}-probe.c`);
  fs.writeFileSync(probe, text);
  const object = path.join(dir, `${name}-probe.o`);
  await execa('cc', ['-g', '-O0', ...cc.flags, '-c', probe, '-o', object], { cwd: cc.cwd });
  return { text, object };
}

t.test('redis: the probe spells struct tags with struct, compiles as printed, and gives the offsets of the -g build', async (t) => {
  const binary = await buildRedis();
  const src = path.dirname(binary);
  const flags = ['-std=c11', '-pedantic', '-DREDIS_STATIC=', '-I.', '-I../deps/hiredis', '-I../deps/linenoise', '-I../deps/lua/src', '-I../deps/hdr_histogram'];
  const head = '#include "server.h"\n#include "slowlog.h"\n';

  // Without --dwarf every name is written as a typedef: redis has none for struct redisServer, and it does not compile.
  const plain = await execa(process.execPath, [xgen, 'probe', '--pack', 'redis']);
  t.match(plain.stdout, /^redisServer \*xwalk_probe_type_\d+;$/m, 'without --dwarf: redisServer as a typedef name');
  const plainFile = path.join(dir, 'redis-plain.c');
  fs.writeFileSync(plainFile, head + plain.stdout + '\n');
  const failed = await execa('cc', ['-g', ...flags, '-c', plainFile, '-o', path.join(dir, 'redis-plain.o')], { cwd: src, reject: false });
  t.not(failed.exitCode, 0, 'which does not compile');
  t.match(failed.stderr, /redisServer/, 'the compiler names the type');

  const { text, object } = await makeProbe('redis', 'redis', head, { cwd: src, flags });
  t.match(text, /^struct redisServer \*xwalk_probe_type_\d+;$/m, 'struct redisServer: a tag');
  t.match(text, /^struct redisCommand \*xwalk_probe_type_\d+;$/m, 'struct redisCommand: a tag');
  t.match(text, /^client \*xwalk_probe_type_\d+;$/m, 'client: a typedef');
  const probed = await layout(['--pack', 'redis', '--for', binary, object], path.join(dir, 'redis-probed'));
  const dwarf = await layout(['--pack', 'redis', binary], path.join(dir, 'redis-dwarf'));
  t.ok(Object.keys(dwarf.types).length > 5, `the -g build gives ${Object.keys(dwarf.types).length} types`);
  t.same(probed.types, dwarf.types, 'every type: the probe gives the sizes and offsets of the -g build');
  t.same(probed.globals, dwarf.globals, 'every global');
});

t.test('nginx: the probe of our -g build\'s configured headers gives its offsets, keyed to it by its signature', async (t) => {
  const binary = await buildNginx();
  const src = path.dirname(path.dirname(binary));
  const makefile = fs.readFileSync(path.join(src, 'objs/Makefile'), 'utf8');
  const incs = /^ALL_INCS = ((?:.*\\\n)*.*)$/m.exec(makefile)![1].replace(/\\\n/g, ' ').split(/\s+/).filter(Boolean);
  t.ok(incs.includes('-I') || incs.some((i) => i.startsWith('-I')), `the build's include folders (${incs.length / 2})`);
  const head = ['#include <ngx_config.h>', '#include <ngx_core.h>', '#include <ngx_event.h>', '#include <ngx_http.h>', 'const char xwalk_probe_signature[] = NGX_MODULE_SIGNATURE;', ''].join('\n');
  const { object } = await makeProbe('nginx', 'nginx', head, { cwd: src, flags: incs });
  const probed = await layout(['--pack', 'nginx', '--for', binary, object], path.join(dir, 'nginx-probed'));
  const dwarf = await layout(['--pack', 'nginx', binary], path.join(dir, 'nginx-dwarf'));
  t.ok(Object.keys(dwarf.types).length > 20, `the -g build gives ${Object.keys(dwarf.types).length} types`);
  t.same(probed.types, dwarf.types, 'every type: the probe gives the sizes and offsets of the -g build');
  t.same(probed.globals, dwarf.globals, 'every global');

  // A probe of other configure flags is refused: its signature is not the build's.
  const other = path.join(dir, 'nginx-other.c');
  fs.writeFileSync(other, head.replace('NGX_MODULE_SIGNATURE', '"8,4,8,0000111111010111001111111111111111"'));
  const otherO = path.join(dir, 'nginx-other.o');
  await execa('cc', ['-g', '-O0', ...incs, '-c', other, '-o', otherO], { cwd: src });
  const refused = await execa(process.execPath, [xgen, 'layout', '--pack', 'nginx', '--for', binary, otherO, '--out', path.join(dir, 'nginx-other')], { reject: false });
  t.equal(refused.exitCode, 1, 'xgen layout --for refuses a probe built otherwise');
  t.match(refused.stderr, /was not built like .*: signature 8,4,8,0000111111010111001111111111111111 against /, 'and says whose signature differs');
});

t.test('xgen probe --dwarf: a file without DWARF, or without the types, is one clear line', async (t) => {
  const noDebug = path.join(dir, 'nodebug.o');
  const c = path.join(dir, 'empty.c');
  fs.writeFileSync(c, 'int xwalk_nothing;\n');
  await execa('cc', ['-c', c, '-o', noDebug]);
  const r = await execa(process.execPath, [xgen, 'probe', '--pack', 'redis', '--dwarf', noDebug], { reject: false });
  t.equal(r.exitCode, 1);
  t.match(r.stderr, /^xgen: .*nodebug\.o has no DWARF \(\.debug_info\): compile the program's headers with -g -fno-eliminate-unused-debug-types\n?$/);
  const empty = path.join(dir, 'empty.o');
  await execa('cc', ['-g', '-c', c, '-o', empty]);
  const none = await execa(process.execPath, [xgen, 'probe', '--pack', 'redis', '--dwarf', empty], { reject: false });
  t.equal(none.exitCode, 1);
  t.match(none.stderr, /^xgen: .*empty\.o's DWARF has no type redisServer, client, .*: compile the headers that declare them/);
});
