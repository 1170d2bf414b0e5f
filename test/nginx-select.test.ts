/**
 * Which layout serves which nginx: by build-id first; a build no pack knows
 * by id but with debug info by its own DWARF (our builds, whose build-id
 * moves with the machine's package versions), never by a look-alike; a
 * stripped build of a known release and module signature (a Debian security
 * update, say) by release + signature; and the committed layouts of two
 * builds of the same release really differ.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { ElfFile } from '../core/elf.ts';
import { gdb, lldb } from './lib/debuggers.ts';
import { buildNginx, holdConnections, partialGet, startNginx } from './lib/nginx.ts';
import { root } from './lib/walkee.ts';
import { figures, xsample } from './lib/xsample.ts';

const DEBIAN = '/usr/sbin/nginx';
const xgen = path.join(root, 'dist/xgen.js');

/** A copy of the binary with another build-id: the same code, as a rebuilt package would be. */
function withNewBuildId(src: string, dst: string): string {
  const elf = ElfFile.open(src);
  const note = elf.section('.note.gnu.build-id')!;
  const old = elf.buildId()!;
  elf.close();
  const bytes = fs.readFileSync(src);
  const at = note.offset + 16; // the note header (12 bytes) and "GNU\0"
  for (let i = 0; i < 4; i++) bytes[at + i] ^= 0xff;
  fs.writeFileSync(dst, bytes, { mode: 0o755 });
  const id = ElfFile.open(dst).buildId()!;
  if (id === old) throw new Error('the build-id did not change');
  return id;
}

t.test('a new build-id of a known release and signature is served by release + signature', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-update-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const binary = path.join(dir, 'nginx');
  const id = withNewBuildId(DEBIAN, binary);
  const nginx = await startNginx({ binary });
  t.teardown(() => nginx.stop());
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const pid = nginx.workerPid;
  const r = await xsample(['--pid', String(pid), '--struct', 'ngx_requests', '--json', '--verbose'], { env: { XDG_CACHE_HOME: path.join(dir, 'cache') } });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.build_id, id, 'the new build-id');
  // The installed build's own layout (committed, or probed by make test into XWALK_PACKS, which is searched first).
  const installed = ElfFile.open(DEBIAN).buildId()!;
  t.match(r.stderr, new RegExp(`layout nginx 1\\.22\\.1 \\(made for ${installed.slice(0, 12)}; same release and signature\\)`), "served by the layout of Debian's build it was copied from");
  t.same(r.json.items.map((i: { uri: string }) => i.uri).sort(), ['/hold/0', '/hold/1']);
  const g = await gdb({ pid }, 'nginx', ['ngx-requests --json']);
  const l = await lldb({ pid }, 'nginx', ['ngx-requests --json']);
  const uris = (j: Record<string, unknown>) => (j.items as { uri: string }[]).map((i) => i.uri).sort();
  t.same(uris(g.json[0]), ['/hold/0', '/hold/1'], 'gdb finds it the same way');
  t.same(uris(l.json[0]), ['/hold/0', '/hold/1'], 'and lldb');
});

t.test('a build with debug info that no layout knows by id is served by its own DWARF, not by release + signature', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-rebuilt-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const binary = path.join(dir, 'nginx');
  const id = withNewBuildId(await buildNginx(), binary);
  const nginx = await startNginx({ binary });
  t.teardown(() => nginx.stop());
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const pid = nginx.workerPid;
  const env = { XDG_CACHE_HOME: path.join(dir, 'cache') };
  const uris = (items: { uri: string }[]) => items.map((i) => i.uri).sort();
  for (const run of ['first', 'second']) {
    const r = await xsample(['--pid', String(pid), '--struct', 'ngx_requests', '--json', '--verbose'], { env });
    t.equal(r.code, 0, r.stderr);
    t.equal(r.json.build_id, id, 'the new build-id');
    t.match(r.stderr.trim().split('\n').pop(), new RegExp(`layout nginx 1\\.22\\.1 \\(${id.slice(0, 12)}, derived from DWARF\\)\\)$`), `${run} run: derived from its own DWARF`);
    t.equal(/deriving the layout/.test(r.stderr), run === 'first', run === 'first' ? 'derived once' : 'then taken from the cache');
    t.same(uris(r.json.items), ['/hold/0', '/hold/1']);
  }
  const g = await gdb({ pid }, 'nginx', ['xwalk-check', 'ngx-requests --json']);
  const l = await lldb({ pid }, 'nginx', ['xwalk-check', 'ngx-requests --json']);
  for (const [name, out] of [['gdb', g], ['lldb', l]] as const) {
    t.match(out.stdout, new RegExp(`the layout nginx 1\\.22\\.1 \\(${id.slice(0, 12)}, derived from DWARF\\) matches the debug info`), `${name}: from its own DWARF too`);
    t.same(uris(out.json[0].items as { uri: string }[]), ['/hold/0', '/hold/1'], `${name}: the same requests`);
  }
});

t.test('two builds of 1.22.1 with different options have different committed layouts', async (t) => {
  const dir = path.join(root, 'packs/nginx/1.22.1');
  const layouts = fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
  t.ok(layouts.length >= 2);
  const signatures = new Set(layouts.map((l) => l.signature));
  t.equal(signatures.size, layouts.length, 'each has its own module signature');
  const offsets = new Set(layouts.map((l) => l.types.ngx_http_request_t.fields.uri.offset));
  t.ok(offsets.size > 1, `ngx_http_request_t.uri sits at different offsets: ${[...offsets].join(', ')}`);
});

t.test('a newer point release: probed as make test probes it, into a folder of packs, then selected by its build-id, and the extensions xgen writes with it agree with xsample', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-point-release-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const binary = path.join(dir, 'nginx');
  const id = withNewBuildId(DEBIAN, binary);
  const packs = path.join(dir, 'packs');
  const tracked = async () => (await execa('git', ['status', '--porcelain', '--', 'packs', 'generated'], { cwd: root })).stdout;
  const before = await tracked();
  const probe = await execa('bash', [path.join(root, 'probes/nginx.sh')], {
    reject: false,
    env: { XWALK_PROBE_FOR: binary, XWALK_PROBE_WORK: path.join(dir, 'probe'), XWALK_LAYOUTS_INTO: packs },
  });
  t.equal(probe.exitCode, 0, probe.stderr);
  const layoutFile = path.join(packs, 'nginx/1.22.1', `${id}.json`);
  t.ok(fs.existsSync(layoutFile), `the layout is written into the folder of packs: ${probe.stdout}`);
  t.equal(await tracked(), before, 'nothing written into packs/ or generated/');

  // The extensions xgen writes with every layout it finds, the new build's too.
  const extensions = { gdb: path.join(dir, 'nginx.py'), lldb: path.join(dir, 'nginx_lldb.py') }; // lldb imports a module: no dash in its name
  for (const dbg of ['gdb', 'lldb'] as const) {
    const g = await execa(process.execPath, [xgen, dbg, '--pack', 'nginx', '--out', extensions[dbg]], { reject: false, env: { XWALK_PACKS: packs } });
    t.equal(g.exitCode, 0, g.stderr);
    t.match(fs.readFileSync(extensions[dbg], 'utf8'), id, `the ${dbg} extension embeds the new build's layout`);
  }

  const nginx = await startNginx({ binary });
  t.teardown(() => nginx.stop());
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  t.teardown(() => held.close());
  const pid = nginx.workerPid;
  const env = { XWALK_PACKS: packs, XDG_CACHE_HOME: path.join(dir, 'cache') };
  const r = await xsample(['--pid', String(pid), '--struct', 'ngx_requests', '--json', '--verbose'], { env });
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.build_id, id);
  t.match(r.stderr, new RegExp(`layout nginx 1\\.22\\.1 \\(${id.slice(0, 12)}\\)`), 'selected by its own build-id, not by release and signature');
  t.same(r.json.items.map((i: { uri: string }) => i.uri).sort(), ['/hold/0', '/hold/1']);

  for (const dbg of ['gdb', 'lldb'] as const) {
    const out = extensions[dbg];
    const run = dbg === 'gdb' ? await gdb({ pid }, 'nginx', ['ngx-requests --json'], { extension: out }) : await lldb({ pid }, 'nginx', ['ngx-requests --json'], { extension: out });
    // age_ms reads the clock, which each back end reads at its own moment.
    const still = (i: Record<string, unknown>) => ({ ...figures(i), age_ms: null });
    const items = (run.json[0]?.items ?? []) as Record<string, unknown>[];
    t.equal(items.length, 2, `${dbg}: the two requests: ${run.stdout.slice(-400)} ${run.stderr.slice(-400)}`);
    t.same(items.map(still), r.json.items.map(still), `${dbg} with the generated extension says what xsample says`);
  }
  t.equal(await tracked(), before, 'still nothing written into the source tree');
});
