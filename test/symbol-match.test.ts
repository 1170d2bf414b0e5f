/**
 * Names for stripped binaries from the nearest release's debug build,
 * matched function by function (generators/symbols/match.ts, issue 24).
 * Each name matchSymbols gives is checked against the truth of an exact
 * twin (a build whose .symtab names the target's own addresses), against
 * the names the target exports (matched with them hidden: Debian's nginx
 * and redis-server), or against the target file itself with binutils: a
 * function starts where one of its .eh_frame FDEs starts (readelf) and its
 * code, as objdump disassembles it with addresses left out, is the debug
 * build's.
 *
 * The debug builds are Debian's own (dpkg-buildpackage, nostrip) of
 * memcached 1.6.18-1 and 1.6.18-1+deb12u1, a simulated point release (one
 * more Debian patch: test-targets/memcached/point-release.patch), and nginx
 * from Debian's source of the installed version or, when the archive no
 * longer serves it (deb12u12's source is a 404), the nearest one (deb12u9),
 * configured as /usr/sbin/nginx says it was; they are cached in
 * build/symbol-match/ (first run: minutes).
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { ElfFile, STB_LOCAL, STT_FILE, STT_FUNC, STT_OBJECT } from '../core/elf.ts';
import { symbolTableProblem, toElfSymbols, type RecoveredSymbol, type SymbolTableFile } from '../core/symbol-table.ts';
import { matchSymbols } from '../generators/symbols/match.ts';
import { decode, maskCode } from '../generators/symbols/x86-mask.ts';
import { rebuild } from '../generators/symbols/rebuild.ts';
import { verifyTwin } from '../generators/symbols/verify.ts';
import { SYMBOLS_BUILDS } from './lib/memcached.ts';
import { buildNginxDebug, type NginxDebugBuild } from '../generators/symbols/nginx-debug-build.ts';
import { nearestSourceVersions } from '../generators/symbols/package.ts';
import { buildNginx, DEBIAN_NGINX, repoRoot, startNginx } from './lib/nginx.ts';
import { buildRedis, DEBIAN_REDIS } from './lib/redis.ts';
import { xsample } from './lib/xsample.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';

t.setTimeout(60 * 60 * 1000);
const BUILD = path.join(repoRoot, 'build', 'symbol-match');
/** The debug nginx is xgen symbols' own (XWALK_SYMBOLS_BUILDS of the tests: one build for both). */
const NGINX_DEBUG = path.join(repoRoot, 'build', 'symbols-cache', 'nginx-debug');
const MEMCACHED = '/usr/bin/memcached';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-symbol-match-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

type Row = Record<string, unknown>;

/** A symbol's key: its name, and for a local the file it belongs to (statics of two files may share a name). */
const keyOf = (name: string, file: string | undefined, local: boolean): string => (local ? `${file}:${name}` : name);

/** Every function and object of a file's .symtab, by key: its addresses. */
function symtab(file: string): Map<string, number[]> {
  const out = new Map<string, number[]>();
  let current = '';
  const elf = ElfFile.open(file);
  try {
    for (const s of elf.symbols()) {
      if (s.type === STT_FILE) current = s.name;
      if (s.type !== STT_FUNC && s.type !== STT_OBJECT) continue;
      const k = keyOf(s.name, current, s.bind === STB_LOCAL);
      out.set(k, [...(out.get(k) ?? []), s.value]);
    }
  } finally {
    elf.close();
  }
  return out;
}

/** The recovered names the truth puts elsewhere, and how many it confirms. */
function compare(symbols: RecoveredSymbol[], truth: Map<string, number[]>): { right: number; wrong: string[]; unknown: string[] } {
  let right = 0;
  const wrong: string[] = [];
  const unknown: string[] = [];
  for (const s of symbols) {
    const k = keyOf(s.name, s.file, s.bind === 'local');
    const at = truth.get(k);
    if (!at) unknown.push(k);
    else if (at.includes(s.value)) right++;
    else wrong.push(`${k} at 0x${s.value.toString(16)}, the truth says ${at.map((v) => `0x${v.toString(16)}`).join(' ')}`);
  }
  return { right, wrong, unknown };
}

const at = (symbols: RecoveredSymbol[], name: string): RecoveredSymbol[] => symbols.filter((s) => s.name === name);

/** A Debian debug build of memcached (cached), or a reason to skip when the Debian archive is out of reach. */
async function memcachedDebug(version: string, patch?: string): Promise<{ binary: string } | { skip: string }> {
  if (!patch) return memcachedRebuild(version);
  const out = path.join(BUILD, `memcached-${version}${patch ? '-point' : ''}`);
  const r = await execa('bash', [path.join(repoRoot, 'test-targets/memcached/debug-build.sh'), version, out, ...(patch ? [patch] : [])], { reject: false, all: true });
  if (r.exitCode !== 0) {
    if (/apt-get (source|update).*failed/.test(r.all ?? '')) return { skip: `the Debian archive is out of reach: ${r.all?.split('\n').slice(-3).join(' ')}` };
    throw new Error(`debug-build.sh ${version} failed: ${r.all}`);
  }
  return { binary: path.join(out, 'memcached') };
}

/** Debian's memcached at version as xgen symbols rebuilds it (dpkg-buildpackage, nostrip), in the build cache the other tests share. */
async function memcachedRebuild(version: string): Promise<{ binary: string } | { skip: string }> {
  const kept = path.join(SYMBOLS_BUILDS, `memcached_${version}`, 'memcached/usr/bin/memcached');
  if (!fs.existsSync(kept)) {
    fs.mkdirSync(SYMBOLS_BUILDS, { recursive: true, mode: 0o700 });
    const r = await rebuild('memcached', version, 'memcached', 'usr/bin/memcached', { progress: () => {}, buildCache: SYMBOLS_BUILDS });
    if ('why' in r) {
      if (r.unreachable) return { skip: `the Debian archive is out of reach: ${r.why}` };
      throw new Error(r.why);
    }
    r.twin.close();
    if (r.debug !== r.twin) r.debug.close();
  }
  return { binary: kept };
}

async function installedVersion(pkg: string): Promise<string | null> {
  const r = await execa('dpkg-query', ['-W', '-f', '${Version}', pkg], { reject: false });
  return r.exitCode === 0 ? r.stdout : null;
}

t.test("the x86-64 length decoder starts each instruction where objdump does, over the whole .text of memcached and libc (SSE, AVX, EVEX)", async (t) => {
  for (const file of [MEMCACHED, '/usr/lib/x86_64-linux-gnu/libc.so.6']) {
    if (!fs.existsSync(file)) continue;
    const { stdout } = await execa('objdump', ['-d', '-j', '.text', '--no-show-raw-insn', file], { maxBuffer: 1 << 30 });
    const starts = [...stdout.matchAll(/^ +([0-9a-f]+):\t/gm)].map((m) => parseInt(m[1], 16));
    const elf = ElfFile.open(file);
    const text = elf.section('.text')!;
    const bytes = elf.sectionBytes(text);
    elf.close();
    const ours: number[] = [];
    for (let p = 0; p < bytes.length; ) {
      ours.push(text.addr + p);
      const i = decode(bytes, p, bytes.length);
      if (!i) break;
      p += i.len;
    }
    const firstDiff = ours.findIndex((a, k) => a !== starts[k]);
    t.equal(firstDiff, -1, `${file}: ${ours.length} instructions, objdump ${starts.length}${firstDiff >= 0 ? `; first differs at 0x${ours[firstDiff].toString(16)}` : ''}`);
    t.equal(ours.length, starts.length, `${file}: as many instructions as objdump`);
  }
});

t.test('masking: a call out of the function and a RIP-relative displacement are masked and listed; a jump inside keeps its displacement', async (t) => {
  // call +0x100; mov 0x2000(%rip),%rax; jmp back to 0; ret
  const code = Buffer.from([0xe8, 0x00, 0x01, 0x00, 0x00, 0x48, 0x8b, 0x05, 0x00, 0x20, 0x00, 0x00, 0xeb, 0xf2, 0xc3]);
  const m = maskCode(code, 0x1000, null)!;
  t.same(m.masked.toString('hex'), 'e800000000488b0500000000ebf2c3');
  t.same(m.refs, [
    { insn: 0, kind: 'call', target: 0x1000 + 5 + 0x100 },
    { insn: 1, kind: 'data', target: 0x1000 + 12 + 0x2000 },
  ]);
  t.equal(m.insns, 4);
  t.equal(maskCode(Buffer.from([0x06]), 0, null), null, 'an opcode invalid in 64-bit mode: no hash at all');
});

t.test('the decoder on random bytes: never throws, never reads past the end, every length between 1 and 15 plus prefixes', async (t) => {
  let seed = 24;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 16) & 0xff;
  let decoded = 0;
  let refused = 0;
  for (let n = 0; n < 5000; n++) {
    const b = Buffer.from(Array.from({ length: 1 + (n % 40) }, rand));
    for (let p = 0; p < b.length; ) {
      const i = decode(b, p, b.length);
      if (!i) {
        refused++;
        break;
      }
      if (i.len < 1 || p + i.len > b.length || i.len > 30) return t.fail(`length ${i.len} at ${p} of ${b.toString('hex')}`);
      decoded++;
      p += i.len;
    }
    maskCode(b, 0x1000, { lo: 0x1000, hi: 0x2000 });
  }
  t.ok(decoded > 10_000 && refused > 0, `${decoded} instructions decoded, ${refused} buffers ended in bytes it refuses`);
});

t.test("Debian's stripped memcached 1.6.18-1+deb12u1 matched against the debug build of 1.6.18-1: stats_state, stats, settings and threads (a static) where the exact twin's .symtab puts them, and no name anywhere else", async (t) => {
  if ((await installedVersion('memcached')) !== '1.6.18-1+deb12u1') return t.plan(0, `memcached 1.6.18-1+deb12u1 is not installed (${await installedVersion('memcached')})`);
  const debug = await memcachedDebug('1.6.18-1');
  if ('skip' in debug) return t.plan(0, debug.skip);
  const twin = await memcachedDebug('1.6.18-1+deb12u1');
  if ('skip' in twin) return t.plan(0, twin.skip);

  const target = ElfFile.open(MEMCACHED);
  t.teardown(() => target.close());
  const exact = ElfFile.open(twin.binary);
  const same = verifyTwin(target, exact);
  exact.close();
  if (!same.ok) return t.plan(0, `this machine's toolchain does not rebuild Debian's memcached byte for byte (${same.why}): no exact twin to judge a match by`);
  t.notOk(
    target.symbols().some((s) => s.name === 'stats_state' || s.name === 'threads'),
    'the installed binary names neither stats_state nor threads itself',
  );
  const started = Date.now();
  const r = matchSymbols(target, ElfFile.open(debug.binary), undefined, { debugName: 'memcached 1.6.18-1' });
  const ms = Date.now() - started;
  t.comment(`${r.verified}; ${r.symbols.length} names in ${ms} ms`);
  const truth = symtab(twin.binary);
  for (const name of ['stats_state', 'stats', 'settings', 'threads']) {
    const got = at(r.symbols, name);
    t.equal(got.length, 1, `${name} is named once`);
    t.same(got.map((s) => s.value), truth.get(name) ?? truth.get(`thread.c:${name}`), `${name} at the twin's address`);
  }
  t.same(at(r.symbols, 'threads').map((s) => [s.bind, s.file, s.kind]), [['local', 'thread.c', 'object']], 'threads: a static object of thread.c');
  const c = compare(r.symbols, truth);
  t.same(c.wrong, [], `no false name: ${c.right} of ${r.symbols.length} names at the twin's addresses`);
  t.same(c.unknown, [], 'every name is one the twin has');
  t.ok(r.matched >= r.total * 0.9, `${r.matched} of ${r.total} functions and objects matched`);

  // As a symbol table (core/symbol-table.ts), read as readers read it: threads is found as thread.c's static.
  const table: SymbolTableFile = { xwalk_symbols: 1, build_id: target.buildId()!, file: MEMCACHED, method: 'matched', from: 'memcached 1.6.18-1 rebuilt', verified: r.verified, matched: r.matched, total: r.total, symbols: r.symbols };
  t.equal(symbolTableProblem(JSON.parse(JSON.stringify(table))), null, 'a valid symbol table');
  const read = new SymbolTable(toElfSymbols(table), 0);
  t.equal(read.address('stats_state'), truth.get('stats_state')![0], 'SymbolTable.address(stats_state)');
  const threadFn = r.symbols.find((s) => s.kind === 'func' && s.bind === 'local' && s.file === 'thread.c')!;
  t.equal(read.fileStatic(threadFn.value, 'threads'), truth.get('thread.c:threads')![0], `SymbolTable.fileStatic(${threadFn.name}, threads): thread.c's threads`);
});

t.test('a simulated point release (one more Debian patch: new statics, changed functions, code and data moved) matched against its nearest release: every name where its own .symtab puts it, the functions the patch changed named by their unchanged callers', async (t) => {
  const nearest = await memcachedDebug('1.6.18-1+deb12u1');
  if ('skip' in nearest) return t.plan(0, nearest.skip);
  const point = await memcachedDebug('1.6.18-1+deb12u1', path.join(repoRoot, 'test-targets/memcached/point-release.patch'));
  if ('skip' in point) return t.plan(0, point.skip);
  // The point release as a distribution ships it: stripped (.eh_frame and .dynsym stay).
  const stripped = path.join(dir, 'memcached-point');
  await execa('strip', ['-o', stripped, point.binary]);

  const before = symtab(nearest.binary);
  const truth = symtab(point.binary);
  const target = ElfFile.open(stripped);
  t.teardown(() => target.close());
  t.equal(target.section('.symtab'), null, 'the target has no .symtab');
  const started = Date.now();
  const r = matchSymbols(target, ElfFile.open(nearest.binary), undefined, { debugName: 'memcached 1.6.18-1+deb12u1' });
  const ms = Date.now() - started;
  t.comment(`${r.verified}; ${r.symbols.length} names in ${ms} ms`);

  const moved = [...truth].filter(([k, v]) => before.has(k) && before.get(k)!.join() !== v.join()).map(([k]) => k);
  t.ok(moved.length > 50, `${moved.length} symbols moved between the releases (e.g. ${moved.slice(0, 4).join(', ')})`);
  for (const name of ['stats_state', 'stats', 'settings', 'thread.c:threads']) {
    const [file, plain] = name.includes(':') ? name.split(':') : [undefined, name];
    const got = at(r.symbols, plain).filter((s) => s.file === file);
    t.same(got.map((s) => s.value), truth.get(name), `${plain} at the point release's own address${moved.includes(name) ? ' (it moved)' : ''}`);
  }
  const c = compare(r.symbols, truth);
  t.same(c.wrong, [], `no false name: ${c.right} of ${r.symbols.length} names at the point release's addresses`);
  t.same(c.unknown, [], 'every name is one the point release has');
  // The patch changed these (process_verbosity_command and stats_init are inlined into the first two): named by
  // their unchanged callers, at the point release's addresses.
  for (const changed of ['proto_text.c:process_command_ascii.part.0', 'main', 'threadlocal_stats_reset']) {
    const got = r.symbols.filter((s) => keyOf(s.name, s.file, s.bind === 'local') === changed);
    t.same(got.map((s) => s.value), truth.get(changed), `${changed} (its code changed) named where the point release has it`);
  }
  for (const added of ['verbosity_level_ok', 'verbosity_changes', 'point_release_generation', 'stats_reset_generation']) {
    t.same(at(r.symbols, added), [], `${added} is new in the point release: the nearest release cannot name it`);
  }
  t.ok(r.matched >= r.total * 0.9, `${r.matched} of ${r.total} functions and objects of the nearest release placed`);
});

t.test('an unrelated debug build names nothing but the start-up code every executable shares', async (t) => {
  const debug = await buildNginx();
  const r = matchSymbols(ElfFile.open(MEMCACHED), ElfFile.open(debug));
  // main too: what _start calls is main in any program (named by the rule for changed code).
  const crt = new Set(['main', '_IO_stdin_used', '_start', 'deregister_tm_clones', 'register_tm_clones', '__do_global_dtors_aux', 'frame_dummy', '__libc_csu_init', '__libc_csu_fini', '_init', '_fini', '__do_global_dtors_aux_fini_array_entry', '__frame_dummy_init_array_entry', 'completed.0']);
  const others = r.symbols.filter((s) => !crt.has(s.name)).map((s) => s.name);
  t.same(others, [], `our nginx names nothing of memcached (${r.verified})`);
});

/** The FDEs of a file's .eh_frame, as readelf reads them: where each starts (link-time) and where it ends. */
async function fdeRanges(file: string): Promise<Map<number, number>> {
  const { stdout } = await execa('readelf', ['--debug-dump=frames', file], { maxBuffer: 256 * 1024 * 1024 });
  return new Map([...stdout.matchAll(/ FDE cie=\w+ pc=([0-9a-f]+)\.\.([0-9a-f]+)/g)].map((m) => [parseInt(m[1], 16), parseInt(m[2], 16)]));
}

/**
 * A function's code as objdump disassembles it, with every address left out: a branch inside the function
 * becomes its offset, one out of it, a RIP-relative displacement and objdump's comments become X.
 */
async function objdumpCode(file: string, start: number, size: number): Promise<string[]> {
  const { stdout } = await execa('objdump', ['-d', '--no-show-raw-insn', `--start-address=0x${start.toString(16)}`, `--stop-address=0x${(start + size).toString(16)}`, file], { maxBuffer: 64 * 1024 * 1024 });
  const lines: string[] = [];
  for (const m of stdout.matchAll(/^ +[0-9a-f]+:\t(.*)$/gm)) {
    let text = m[1].replace(/\s*#.*$/, '').replace(/\s*<[^>]*>/g, '').replace(/-?0x[0-9a-f]+\(%rip\)/g, 'X(%rip)');
    text = text.replace(/^((?:bnd |notrack )?(?:call|jmp|j[a-z]+|loop[a-z]*|jrcxz|xbegin)\s+)([0-9a-f]+)$/, (_all, op: string, target: string) => {
      const a = parseInt(target, 16);
      return op + (a >= start && a < start + size ? `+${a - start}` : 'X');
    });
    lines.push(text.replace(/\s+/g, ' ').trim());
  }
  return lines;
}

let nginxDebug: Promise<NginxDebugBuild | { skip: string }> | null = null;
/** The debug nginx for Debian's (built once per run, cached in build/), or a reason to skip. */
function debugNginx(comment: (m: string) => void): Promise<NginxDebugBuild | { skip: string }> {
  nginxDebug ??= (async () => {
    if (!fs.existsSync(DEBIAN_NGINX)) return { skip: `${DEBIAN_NGINX} is not installed` };
    const installed = await installedVersion('nginx');
    if (!installed) return { skip: 'the nginx package is not installed' };
    const versions = [installed, ...(await nearestSourceVersions('nginx', installed))];
    try {
      return await buildNginxDebug(DEBIAN_NGINX, versions, NGINX_DEBUG, comment);
    } catch (e) {
      if (/no source of nginx could be fetched/.test(String(e))) return { skip: `the Debian archive is out of reach: ${String(e)}` };
      throw e;
    }
  })();
  return nginxDebug;
}

t.test("Debian's stripped nginx: every phase handler the phase engine holds is named by matching against the debug build of the nearest Debian source, our -g build's handler names among them, each where an FDE starts and with the debug build's code", async (t) => {
  const debug = await debugNginx((m) => t.comment(m));
  if ('skip' in debug) return t.plan(0, debug.skip);
  const target = ElfFile.open(DEBIAN_NGINX);
  t.teardown(() => target.close());
  const debugElf = ElfFile.open(debug.binary);
  const text = (e: ElfFile) => e.sectionBytes(e.section('.text')!);
  const twin = target.section('.text')!.addr === debugElf.section('.text')!.addr && text(target).equals(text(debugElf));
  t.comment(`nginx ${debug.version}'s .text is ${twin ? 'byte-identical to' : 'not'} the installed executable's (${await installedVersion('nginx')})${twin ? ': an exact twin, the names are exact' : ''}`);
  const started = Date.now();
  const r = matchSymbols(target, debugElf, undefined, { debugName: `nginx ${debug.version}` });
  t.comment(`${r.verified}; ${r.symbols.length} names in ${Date.now() - started} ms`);
  if (twin) {
    const c = compare(r.symbols, symtab(debug.binary));
    t.same(c.wrong, [], `the twin puts every name where it was matched (${c.right} names)`);
  }

  // The phase engine of Debian's nginx, read by xsample: its static handlers are addresses, nginx+0xVADDR.
  const debian = await startNginx({ binary: DEBIAN_NGINX });
  t.teardown(() => debian.stop());
  const phases = (await xsample(['--pid', String(debian.workerPid), '--struct', 'ngx_phase_handlers', '--json'])).json.items as Row[];
  const ours = await startNginx({ binary: await buildNginx() });
  t.teardown(() => ours.stop());
  const ourPhases = (await xsample(['--pid', String(ours.workerPid), '--struct', 'ngx_phase_handlers', '--json'])).json.items as Row[];

  const byAddr = new Map<number, RecoveredSymbol[]>();
  for (const s of r.symbols) if (s.kind === 'func') byAddr.set(s.value, [...(byAddr.get(s.value) ?? []), s]);
  const fdes = await fdeRanges(DEBIAN_NGINX);
  const names = new Set<string>();
  const unnamed = new Set<string>();
  for (const p of phases) {
    for (const col of ['handler', 'checker']) {
      const v = String(p[col]);
      const m = /^nginx\+0x([0-9a-f]+)$/.exec(v);
      if (!m) {
        names.add(v);
        continue;
      }
      const got = byAddr.get(parseInt(m[1], 16));
      if (got) got.forEach((s) => names.add(s.name));
      else unnamed.add(v);
    }
  }
  t.same([...unnamed], [], `every static handler and checker of the phase engine is named: ${[...names].join(', ')}`);
  t.ok(names.has('ngx_http_realip_handler'), 'ngx_http_realip_handler among them');
  const ourNames = new Set(ourPhases.flatMap((p) => [String(p.handler), String(p.checker)]));
  t.same([...ourNames].filter((n) => !names.has(n)), [], `the names our -g build shows (${[...ourNames].join(', ')}) are all named in Debian's`);

  // Independently of the matcher: each recovered handler starts an FDE, and objdump reads the debug build's code there.
  const debugAt = symtab(debug.binary);
  for (const name of names) {
    const s = r.symbols.find((x) => x.name === name && x.kind === 'func' && x.bind === 'local');
    if (!s) continue; // exported: the binary names it itself
    t.ok(fdes.has(s.value), `${name}: an FDE of ${DEBIAN_NGINX} starts at 0x${s.value.toString(16)}`);
    const d = debugAt.get(keyOf(name, s.file, true))!;
    t.equal(d.length, 1, `${name}: one function of the debug build`);
    const fde = fdes.get(s.value)!;
    const mine = await objdumpCode(DEBIAN_NGINX, s.value, fde - s.value);
    const theirs = await objdumpCode(debug.binary, d[0], s.size);
    if (fde - s.value === s.size) t.same(mine, theirs, `${name}: the same code, as objdump reads it`);
    else {
      // A function the newer release changed (named through its unchanged callers): its start is the debug build's.
      const prefix = mine.findIndex((l, k) => l !== theirs[k]);
      t.ok(prefix >= 12, `${name}: changed between the releases (${s.size} bytes, ${fde - s.value} here); the first ${prefix} instructions are the debug build's, as objdump reads them`);
    }
  }
});

/** The names an executable exports (.dynsym functions and objects): a truth for matching that does not use them. */
function exportsOf(target: ElfFile): Map<string, number[]> {
  const exported = new Map<string, number[]>();
  for (const s of target.symbols()) {
    if ((s.type === STT_FUNC || s.type === STT_OBJECT) && s.shndx !== 0 && s.bind !== STB_LOCAL) exported.set(s.name, [...(exported.get(s.name) ?? []), s.value]);
  }
  return exported;
}

/** Matches target with its exports hidden and checks every exported name found against the exports. */
function exportsHidden(t: Test, targetFile: string, debugFile: string, debugName: string, atLeast: number): void {
  const target = ElfFile.open(targetFile);
  t.teardown(() => target.close());
  const exported = exportsOf(target);
  const started = Date.now();
  const r = matchSymbols(target, ElfFile.open(debugFile), undefined, { useExports: false, debugName });
  t.comment(`${r.verified}; ${r.symbols.length} names in ${Date.now() - started} ms`);
  const c = compare(r.symbols.filter((s) => s.bind !== 'local' && exported.has(s.name)), exported);
  t.same(c.wrong, [], `no false name: ${c.right} exported names found where ${targetFile} exports them`);
  t.ok(c.right >= exported.size * atLeast, `${c.right} of the ${exported.size} exported names found without the exports`);
}

t.test("Debian's nginx matched with its exports hidden (as a program that exports nothing is): every exported name the matching finds is where the executable exports it", async (t) => {
  const debug = await debugNginx((m) => t.comment(m));
  if ('skip' in debug) return t.plan(0, debug.skip);
  exportsHidden(t, DEBIAN_NGINX, debug.binary, `nginx ${debug.version}`, 0.9);
});

t.test("Debian's redis-server matched with its exports hidden against our -g build of Debian's redis source (other flags: much of the code differs): every exported name found is where redis-server exports it", async (t) => {
  if (!fs.existsSync(DEBIAN_REDIS)) return t.plan(0, `${DEBIAN_REDIS} is not installed`);
  exportsHidden(t, DEBIAN_REDIS, await buildRedis(), 'our -g redis', 0.7);
});
