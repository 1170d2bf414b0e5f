/**
 * xsample record on a live walkee: a stack-shaped view (walkee_pool_memory)
 * as folded lines, a speedscope file, an SVG and a pprof profile, a table
 * view summarised as JSON, Ctrl-C that writes what was gathered. Bytes held
 * are a gauge: every pool weighs the bytes walkee's own bookkeeping says it
 * holds (its truth: blocks used and free, and its large allocations' glibc
 * chunk sizes), however many samples the recording took.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import t from 'tap';
import { startWalkee, type Walkee } from './lib/walkee.ts';
import { xsample, xsampleBin } from './lib/xsample.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-record-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** What each pool holds, by address, as walkee's own bookkeeping says: its blocks (used and free) and its large allocations. */
async function poolBytes(w: Walkee): Promise<Map<string, number>> {
  const truth = await w.ask('truth');
  return new Map(truth.pools.map((p: { addr: string; used: number; free: number; large_bytes: number }) => [p.addr, p.used + p.free + p.large_bytes]));
}

const record = (args: string[]) => xsample(['record', ...args]);

t.test('a stack-shaped view of bytes held: folded lines, a speedscope file, the JSON summary, each pool weighing its bytes, not its bytes times the samples', async (t) => {
  const w = await startWalkee(['--nodes', '10', '--pools', '5']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const bytes = await poolBytes(w);
  t.equal(bytes.size, 5, 'five pools');

  const summary = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '50', '--duration', '1', '--format', 'json']);
  t.equal(summary.code, 0, summary.stderr);
  const meta = JSON.parse(summary.stdout);
  t.ok(meta.samples >= 1, `${meta.samples} samples`);
  t.equal(meta.partial, 0);
  t.same(meta.pids, [w.child.pid]);
  t.ok(meta.samples > 1, 'more than one sample: a sum would be a multiple of the bytes');
  const total = [...bytes.values()].reduce((a, b) => a + b, 0);
  t.equal(meta.weighs, 'bytes', 'the weight is bytes held (its name says bytes)');
  t.equal(meta.unit, 'bytes');
  t.equal(meta.total_weight, total, 'the total weight is the bytes the pools hold, averaged over the samples');
  t.equal(meta.stacks.length, 5, 'one stack per pool');
  for (const st of meta.stacks) {
    const b = bytes.get(st.frames[2].replace('pool ', ''));
    t.same({ min: st.min, mean: st.mean, max: st.max, last: st.last }, { min: b, mean: b, max: b, last: b }, `${st.frames[2]}: min, mean, max and last are its ${b} bytes`);
  }
  t.equal(meta.columns.bytes.min, Math.min(...bytes.values()));
  t.equal(meta.columns.bytes.max, Math.max(...bytes.values()));
  t.equal(meta.columns.bytes.n, meta.samples * 5, 'every pool of every sample');

  const folded = path.join(tmp, 'pools.folded');
  const f = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '50', '--duration', '1', '-o', folded]);
  t.equal(f.code, 0, f.stderr);
  const samples = Number(/wrote .* \(folded\): (\d+) samples? in/.exec(f.stderr)?.[1]);
  t.ok(samples > 1, `the summary on stderr says how many samples: ${f.stderr}`);
  t.match(f.stderr, /; weights: bytes held, the mean over the samples$/m, 'and what a weight is (the folded lines cannot say)');
  const lines = fs.readFileSync(folded, 'utf8').trim().split('\n');
  t.equal(lines.length, 5, 'one stack per pool');
  for (const line of lines) {
    const m = /^pid (\d+);pools;pool (0x[0-9a-f]+) (\d+)$/.exec(line);
    t.ok(m, `frame;frame;frame weight: ${line}`);
    if (!m) continue;
    t.equal(m[1], pid);
    t.equal(Number(m[3]), bytes.get(m[2])!, `pool ${m[2]}: the ${bytes.get(m[2])} bytes it holds, over ${samples} samples`);
  }

  const scope = path.join(tmp, 'pools.speedscope.json');
  const s = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '50', '--duration', '1', '-o', scope]);
  t.equal(s.code, 0, s.stderr);
  const file = JSON.parse(fs.readFileSync(scope, 'utf8'));
  t.equal(file.$schema, 'https://www.speedscope.app/file-format-schema.json');
  const [profile] = file.profiles;
  t.equal(profile.type, 'sampled');
  t.equal(profile.unit, 'bytes', 'speedscope shows the weights as bytes');
  t.equal(profile.samples.length, 5);
  t.equal(profile.weights.length, 5);
  const n = Number(/\(speedscope\): (\d+) samples? in/.exec(s.stderr)?.[1]);
  const stacks = profile.samples.map((idx: number[], i: number) => ({ frames: idx.map((k) => file.shared.frames[k].name), weight: profile.weights[i] }));
  for (const st of stacks) {
    t.same(st.frames.slice(0, 2), [`pid ${pid}`, 'pools']);
    t.equal(st.weight, bytes.get(st.frames[2].replace('pool ', ''))!, `${st.frames[2]}: its bytes, over ${n} samples`);
  }
  t.equal(profile.endValue, total, 'endValue is the total weight');
});

t.test('an SVG flame graph: every frame an element, as wide as its share, its weight in its title', async (t) => {
  const w = await startWalkee(['--nodes', '10', '--pools', '4']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const bytes = await poolBytes(w);
  const svg = path.join(tmp, 'pools.svg');
  const r = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '20', '--duration', '1', '-o', svg]);
  t.equal(r.code, 0, r.stderr);
  const samples = Number(/\(svg\): (\d+) samples? in/.exec(r.stderr)?.[1]);
  // Read back by an XML parser (python3's), as any SVG reader would: well-formed, and each frame a <g> with its rect and title.
  const parsed = await execa('python3', ['-c', `
import json, sys, xml.etree.ElementTree as ET
ns = {"s": "http://www.w3.org/2000/svg"}
root = ET.parse(sys.argv[1]).getroot()
out = []
for g in root.iter("{http://www.w3.org/2000/svg}g"):
    if g.get("class") != "f":
        continue
    rect = g.find("s:rect", ns)
    out.append({"name": g.get("data-name"), "weight": int(g.get("data-weight")), "title": g.find("s:title", ns).text, "x": float(rect.get("x")), "width": float(rect.get("width")), "y": float(rect.get("y"))})
print(json.dumps({"frames": out, "script": root.find("s:script", ns) is not None, "width": root.get("width"), "title": root.find("s:text", ns).text}))
`, svg]);
  const doc = JSON.parse(parsed.stdout);
  t.ok(doc.script, 'a script for zoom and search');
  t.match(doc.title, `the mean of ${samples} samples at 20 Hz`, 'the title says the weights are a mean');
  t.ok(samples > 1, `${samples} samples`);
  const total = [...bytes.values()].reduce((a, b) => a + b, 0);
  const byName = new Map(doc.frames.map((f: { name: string }) => [f.name, f]));
  t.same([...byName.keys()].slice(0, 3), ['all', `pid ${pid}`, 'pools'], 'the root, the process, the root label');
  t.equal(doc.frames.length, 3 + 4, 'and one frame per pool');
  const all = byName.get('all') as { weight: number; width: number; title: string };
  t.equal(all.weight, total);
  t.equal(all.width, 1200);
  t.equal(all.title, `all (${total} bytes, 100.00%)`);
  for (const [addr, b] of bytes) {
    const f = byName.get(`pool ${addr}`) as { weight: number; width: number; title: string; y: number } | undefined;
    t.ok(f, `pool ${addr} has a frame`);
    if (!f) continue;
    t.equal(f.weight, b, `pool ${addr}: its bytes, over ${samples} samples`);
    t.ok(Math.abs(f.width - (1200 * f.weight) / total) < 0.01, `pool ${addr}: as wide as its share (${f.width})`);
    t.equal(f.title, `pool ${addr} (${f.weight} bytes, ${((100 * f.weight) / total).toFixed(2)}%)`);
    t.ok(f.y < (byName.get('pools') as { y: number }).y, 'above its parent: the root is at the bottom');
  }
});

/** profile.proto as Debian's pprof sources have it: the decoder here is protoc's, not ours. */
const PROFILE_PROTO = '/usr/share/gocode/src/github.com/google/pprof/proto';

/** A pprof file decoded by protoc into its stacks (root first, by function name) and values. */
async function decodePprof(file: string): Promise<{ type: string; unit: string; stacks: { frames: string[]; value: number }[]; strings: string[] }> {
  const gz = fs.readFileSync(file);
  const raw = (await import('node:zlib')).gunzipSync(gz);
  const text = (await execa('protoc', ['--decode=perftools.profiles.Profile', '-I', PROFILE_PROTO, 'profile.proto'], { input: raw })).stdout;
  const strings = [...text.matchAll(/^string_table: "(.*)"$/gm)].map((m) => JSON.parse(`"${m[1]}"`) as string);
  const block = (name: string) => [...text.matchAll(new RegExp(`^${name} \\{\\n([\\s\\S]*?)^\\}`, 'gm'))].map((m) => m[1]);
  const nums = (b: string, k: string) => [...b.matchAll(new RegExp(`^\\s*${k}: (\\d+)$`, 'gm'))].map((m) => Number(m[1]));
  const fnName = new Map(block('function').map((b) => [nums(b, 'id')[0], strings[nums(b, 'name')[0]]]));
  const locFn = new Map(block('location').map((b) => [nums(b, 'id')[0], nums(b, 'function_id')[0]]));
  const stacks = block('sample').map((b) => ({ frames: nums(b, 'location_id').map((l) => fnName.get(locFn.get(l)!)!).reverse(), value: nums(b, 'value')[0] }));
  const [st] = block('sample_type');
  return { type: strings[nums(st, 'type')[0]], unit: strings[nums(st, 'unit')[0]], stacks, strings };
}

t.test('a pprof profile, read back by protoc with pprof\'s own profile.proto', async (t) => {
  const w = await startWalkee(['--nodes', '10', '--pools', '3']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const bytes = await poolBytes(w);
  const out = path.join(tmp, 'pools.pb.gz');
  const r = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '20', '--duration', '1', '-o', out]);
  t.equal(r.code, 0, r.stderr);
  const samples = Number(/\(pprof\): (\d+) samples? in/.exec(r.stderr)?.[1]);
  const p = await decodePprof(out);
  t.ok(samples > 1, `${samples} samples`);
  t.same([p.type, p.unit], ['inuse_space', 'bytes'], 'bytes held: inuse_space in bytes, as a heap profile says');
  t.equal(p.stacks.length, 3, 'one sample per pool');
  for (const s of p.stacks) {
    t.same(s.frames.slice(0, 2), [`pid ${pid}`, 'pools'], 'root first once the leaf-first locations are turned round');
    t.equal(s.value, bytes.get(s.frames[2].replace('pool ', ''))!, `${s.frames[2]}: its bytes, over ${samples} samples`);
  }
  t.ok(p.strings.some((x) => x.startsWith(`walkee_pool_memory (walkee, pid ${pid}): the mean of ${samples} samples at 20 Hz`)), 'a comment says what it is');
  const tty = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--format', 'pprof', '--duration', '1']);
  t.equal(tty.code, 0, 'to a pipe, the gzipped bytes go to stdout');
  t.equal(tty.stdout.charCodeAt(0), 0x1f, 'gzip magic');
});

t.test('a table view over time: per column the percentiles of its numbers and its most frequent texts', async (t) => {
  const w = await startWalkee(['--nodes', '7']);
  t.teardown(() => w.kill());
  const r = await record(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--rate', '40', '--duration', '1']);
  t.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  const truth = await w.ask('truth');
  t.same(j.columns.count, { kind: 'number', n: j.samples, min: 7, p50: 7, p90: 7, p99: 7, max: 7, exact: true });
  t.equal(j.columns.sum.max, truth.list.sum);
  t.same(j.columns.origin.top, [{ value: 'walkee', count: j.samples }]);
  t.equal(j.items, j.samples, 'one item a sample');
});

t.test('Ctrl-C writes what was gathered', async (t) => {
  const w = await startWalkee(['--nodes', '10', '--pools', '3']);
  t.teardown(() => w.kill());
  const bytes = await poolBytes(w);
  const out = path.join(tmp, 'ctrl-c.folded');
  const child = execa(process.execPath, [xsampleBin, 'record', '--pid', String(w.child.pid), '--struct', 'walkee_pool_memory', '--rate', '20', '-o', out, '--verbose'], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
  let seen = 0;
  const stderr: string[] = [];
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      stderr.push(l);
      // Wait for two samples, then Ctrl-C.
      if (/walkee_pool_memory: .* held still/.test(l) && ++seen === 2) resolve();
    });
  });
  child.kill('SIGINT');
  const r = await child;
  t.equal(r.exitCode, 0, stderr.join('\n'));
  t.match(stderr.join('\n'), /^xsample: stopped by Ctrl-C after \d+\.\d s; \d+ samples? kept$/m, 'says why it stopped');
  const samples = Number(/\(folded\): (\d+) samples? in/.exec(stderr.join('\n'))?.[1]);
  t.ok(samples >= 2, `${samples} samples`);
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
  t.equal(lines.length, 3);
  for (const line of lines) {
    const [, addr, weight] = /;pool (0x[0-9a-f]+) (\d+)$/.exec(line) ?? [];
    t.equal(Number(weight), bytes.get(addr)!, line);
  }
});

t.test('what record refuses, in one line and exit 2 (usage) or 1', async (t) => {
  const w = await startWalkee(['--nodes', '3']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  for (const [args, code, pattern] of [
    [['--pid', pid, '--struct', 'walkee_list', '--format', 'folded', '--duration', '1'], 1, /view walkee_list is a table, not stack-shaped \(no stack: in the schema\): record it as json/],
    [['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '0'], 2, /--rate takes a whole number from 1 to 1000, not '0'/],
    [['--pid', pid, '--struct', 'walkee_pool_memory', '--format', 'svgz'], 2, /--format is folded, speedscope, svg, pprof, json, not 'svgz'/],
    [['--pid', pid, '--struct', 'walkee_pool_memory', '--count', '3'], 2, /record samples at --rate for --duration/],
    [['--core', '/nonexistent', '--struct', 'walkee_pool_memory'], 2, /a core does not change: record needs --pid/],
  ] as [string[], number, RegExp][]) {
    const r = await record(args);
    t.equal(r.code, code, `${args.join(' ')}: exit ${code}`);
    t.match(r.stderr, pattern);
  }
});

t.test('over time, a gauge is averaged (min, mean, max, last; a sample without the path weighs 0) and a counter adds', async (t) => {
  const { StackCounts, toFolded } = await import('../sampler/outputs/stack-counts.ts');
  const a = ['pid 1', 'pool 0xa'];
  const b = ['pid 1', 'pool 0xb'];
  const samples = [
    [{ frames: a, weight: 100 }, { frames: b, weight: 10 }, { frames: b, weight: 5 }],
    [{ frames: a, weight: 300 }],
    [{ frames: a, weight: 200 }, { frames: b, weight: 30 }],
  ];
  const gauge = new StackCounts(true);
  const counter = new StackCounts(false);
  for (const s of samples) {
    gauge.sample('1', s);
    counter.sample('1', s);
  }
  t.same(gauge.stats(), [
    { frames: a, min: 100, mean: 200, max: 300, last: 200 },
    { frames: b, min: 0, mean: 15, max: 30, last: 30 },
  ], 'pool 0xb: 15 (two items of one path add up within a sample), absent, 30: mean 15, min 0');
  t.equal(toFolded(gauge), 'pid 1;pool 0xa 200\npid 1;pool 0xb 15', 'folded: the means');
  t.equal(gauge.total(), 215);
  t.equal(toFolded(counter), 'pid 1;pool 0xa 600\npid 1;pool 0xb 45', 'a counter: the sums');
  const two = new StackCounts(true);
  two.sample('1', [{ frames: a, weight: 10 }]);
  two.sample('2', [{ frames: ['pid 2', 'pool 0xc'], weight: 7 }]);
  two.sample('2', [{ frames: ['pid 2', 'pool 0xc'], weight: 9 }]);
  t.equal(toFolded(two), 'pid 1;pool 0xa 10\npid 2;pool 0xc 8', "each process's paths over its own samples");
});

t.test('record -o: a folder, a symbolic link or a file of another user fails at once, in one line, before sampling; an existing file is replaced whole', async (t) => {
  const w = await startWalkee(['--nodes', '3', '--pools', '2']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const victim = path.join(tmp, 'victim');
  fs.writeFileSync(victim, 'secret\n', { mode: 0o600 });
  const link = path.join(tmp, 'link.folded');
  fs.symlinkSync(victim, link);
  const theirs = path.join(tmp, 'theirs.folded');
  fs.writeFileSync(theirs, 'theirs\n');
  const other = process.geteuid!() === 0 ? 65534 : null;
  if (other !== null) fs.chownSync(theirs, other, other);
  const cases: [string, RegExp][] = [
    [tmp, new RegExp(`^xsample: cannot write ${tmp}: it is a folder$`)],
    [`${tmp}/`, /it names a folder; give a file name$/],
    [link, new RegExp(`^xsample: cannot write ${link}: it is a symbolic link \\(not followed\\)$`)],
    [path.join(tmp, 'no/such/out.folded'), /^xsample: cannot write .*: no folder .*no\/such$/],
    ...(other !== null ? [[theirs, new RegExp(`^xsample: cannot write ${theirs}: it belongs to uid ${other}, not to this user \\(0\\): not replaced$`)] as [string, RegExp]] : []),
  ];
  for (const [out, message] of cases) {
    const t0 = performance.now();
    const r = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '5', '--duration', '30', '-o', out]);
    t.equal(r.code, 1, `${out}: exit 1`);
    t.match(r.stderr.trim(), message, `${out}: one clear line`);
    t.equal(r.stderr.trim().split('\n').length, 1);
    t.ok(performance.now() - t0 < 25_000, 'at once, not after the 30 s of sampling');
  }
  t.equal(fs.readFileSync(victim, 'utf8'), 'secret\n', 'the file behind the link is untouched');
  t.equal(fs.readFileSync(theirs, 'utf8'), 'theirs\n', "another user's file is untouched");
  const mine = path.join(tmp, 'mine.folded');
  fs.writeFileSync(mine, 'old\n', { mode: 0o640 });
  const before = fs.statSync(mine);
  const r = await record(['--pid', pid, '--struct', 'walkee_pool_memory', '--rate', '2', '--duration', '1', '-o', mine]);
  t.equal(r.code, 0, r.stderr);
  const after = fs.statSync(mine);
  t.not(after.ino, before.ino, 'replaced by a rename (a new file), not written over in place');
  t.equal(after.mode & 0o777, 0o640, 'with the mode the old one had');
  t.match(fs.readFileSync(mine, 'utf8'), /^pid \d+;pools;pool 0x/);
  t.same(fs.readdirSync(tmp).filter((f) => f.endsWith('.tmp')), [], 'nothing left beside it');
});

t.test('a target that exits mid-record: what was gathered is written, and stderr says why it stopped', async (t) => {
  const w = await startWalkee(['--nodes', '3', '--pools', '2']);
  const bytes = await poolBytes(w);
  const out = path.join(tmp, 'exits.folded');
  const child = execa(process.execPath, [xsampleBin, 'record', '--pid', String(w.child.pid), '--struct', 'walkee_pool_memory', '--rate', '20', '--duration', '60', '-o', out, '--verbose'], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
  const stderr: string[] = [];
  let seen = 0;
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      stderr.push(l);
      if (/walkee_pool_memory: .* held still/.test(l) && ++seen === 3) resolve();
    });
  });
  await w.ask('quit');
  await w.exited;
  const r = await child;
  const text = stderr.filter((l) => !/held still/.test(l)).join('\n');
  t.equal(r.exitCode, 0, text);
  const m = /^xsample: the target exited after (\d+\.\d) s; (\d+) samples? kept$/m.exec(text);
  t.ok(m, `says why it stopped: ${text}`);
  const kept = Number(m?.[2]);
  t.ok(kept >= 3, `${kept} samples kept`);
  t.match(text, new RegExp(`wrote ${out} \\(folded\\): ${kept} samples? in`));
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
  t.equal(lines.length, 2, 'both pools');
  for (const line of lines) {
    const [, addr, weight] = /;pool (0x[0-9a-f]+) (\d+)$/.exec(line) ?? [];
    t.equal(Number(weight), bytes.get(addr)!, `${line}: its bytes, as walkee said`);
  }
});

/** How many process_vm_readv calls xsample (every thread of it) made, as strace counts them: the kernel's count, not the recorder's. */
async function readsOf(args: string[]): Promise<{ reads: number; r: Awaited<ReturnType<typeof record>> }> {
  const out = path.join(tmp, `strace-${process.hrtime.bigint()}.txt`);
  // --seccomp-bpf: only process_vm_readv stops the sampler, so strace costs it little else.
  const r = await xsample(['record', ...args], { prefix: ['strace', '-f', '--seccomp-bpf', '-c', '-e', 'trace=process_vm_readv', '-o', out] });
  // A line of strace -c: % time, seconds, usecs/call, calls, [errors], syscall.
  const line = fs.readFileSync(out, 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).find((f) => f[f.length - 1] === 'process_vm_readv');
  return { reads: line ? Number(line[3]) : 0, r };
}

t.test('the rate, counted by the kernel: --rate 50 --duration 2 makes about 100 samples of process_vm_readv calls, as strace counts them', async (t) => {
  const w = await startWalkee(['--nodes', '10', '--pools', '5']);
  t.teardown(() => w.kill());
  const args = ['--pid', String(w.child.pid), '--struct', 'walkee_pool_memory', '--format', 'json'];
  // What one sample reads, from one sample and two (the same walk of memory that holds still), and what the run reads besides.
  const one = await readsOf([...args, '--rate', '1', '--duration', '1']);
  const two = await readsOf([...args, '--rate', '2', '--duration', '1']);
  t.same([one.r.code, JSON.parse(one.r.stdout).samples, two.r.code, JSON.parse(two.r.stdout).samples], [0, 1, 0, 2], `one sample, then two: ${one.r.stderr} / ${two.r.stderr}`);
  const perSample = two.reads - one.reads;
  const besides = one.reads - perSample;
  t.ok(perSample > 0 && besides >= 0, `a sample of walkee_pool_memory makes ${perSample} process_vm_readv calls, the run ${besides} besides (${one.reads} for one sample, ${two.reads} for two)`);

  const RATE = 50;
  const SECONDS = 2;
  const due = RATE * SECONDS;
  const { reads, r } = await readsOf([...args, '--rate', String(RATE), '--duration', String(SECONDS)]);
  t.equal(r.code, 0, r.stderr);
  const taken = (reads - besides) / perSample;
  t.ok(Number.isInteger(taken), `${reads} calls are ${besides} + a whole number of samples of ${perSample} (${taken})`);
  // A busy 2-core machine may make the sampler miss some (it says so), never take more than are due: at least 60%, at most one round more.
  t.ok(taken >= 0.6 * due, `the kernel saw ${taken} samples' reads: at least 60% of the ${due} due at ${RATE} Hz for ${SECONDS} s`);
  t.ok(taken <= due + 1, `and no more than the ${due} due (+1)`);
  const meta = JSON.parse(r.stdout);
  t.equal(meta.samples, taken, `the recorder's own count (${meta.samples} taken, ${meta.missed} missed) is what the kernel saw`);
});

t.test('some samples partial (a pool whose blocks walkee made a cycle, then repaired): exit 3, stderr says why and names the pool, the partial samples are left out of the weights', async (t) => {
  const w = await startWalkee(['--nodes', '3', '--pools', '3']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const bytes = await poolBytes(w);
  const out = path.join(tmp, 'partial.folded');
  const child = execa(process.execPath, [xsampleBin, 'record', '--pid', String(w.child.pid), '--struct', 'walkee_pool_memory', '--rate', '20', '-o', out, '--verbose'], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
  const stderr: string[] = [];
  // Each --verbose line is one read of the view: two whole, then a cycle in pool 0's d.next chain for three, then repaired for three.
  const steps: [number, () => Promise<void>][] = [
    [2, async () => void t.same(await w.ask('corrupt pool-cycle'), { ok: true })],
    [5, async () => void t.same(await w.ask('repair'), { ok: true })],
    [8, async () => void child.kill('SIGINT')],
  ];
  let reads = 0;
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      stderr.push(l);
      if (!/^xsample: walkee_pool_memory: \d+ elements/.test(l)) return;
      reads++;
      if (steps.length > 0 && reads === steps[0][0]) void steps.shift()![1]().then(() => steps.length === 0 && resolve());
    });
  });
  const r = await child;
  const text = stderr.filter((l) => !/^xsample: walkee_pool_memory: \d+ elements/.test(l)).join('\n');
  t.equal(r.exitCode, 3, `exit 3: some samples were partial: ${text}`);
  const m = /^xsample: wrote .* \(folded\): (\d+) samples in [\d.]+ s, (\d+) partial: (0x[0-9a-f]+) bytes: ngx_pool_t\.d\.next chain: cycle at 0x[0-9a-f]+ after \d+ elements \((\d+) samples?\) \(partial samples are left out\); weights: bytes held/m.exec(text);
  t.ok(m, `the summary says how many were partial and why: ${text}`);
  const [samples, partial, where, why] = (m ?? []).slice(1).map((x, i) => (i === 2 ? x : Number(x))) as [number, number, string, number];
  t.equal(where, truth.pools[0].addr, 'the pool walkee corrupted, by its address');
  t.ok(partial >= 2 && partial === why, `${partial} partial samples, each for that cycle`);
  t.ok(samples - partial >= 4, `${samples - partial} complete: before the cycle and after the repair`);
  t.match(text, new RegExp(`^xsample: stopped by Ctrl-C after \\d+\\.\\d s; ${samples - partial} samples kept$`, 'm'), 'kept: the complete ones');
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n');
  t.equal(lines.length, 3, 'every pool');
  for (const line of lines) {
    const [, addr, weight] = /;pool (0x[0-9a-f]+) (\d+)$/.exec(line) ?? [];
    t.equal(Number(weight), bytes.get(addr)!, `${line}: its bytes, as walkee said: no partial sample weighs 0 in the mean`);
  }
  const all = await record(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--rate', '10', '--duration', '1']);
  t.equal(all.code, 0, 'repaired: whole again, exit 0');
});

t.test('--retries under churn: a sample is read at most N + 1 times, a complete one held still on its last read, a partial one says N + 1 times', async (t) => {
  const w = await startWalkee([], 'churn');
  t.teardown(() => w.kill());
  t.same(await w.ask('churn on 5000'), { ok: true });
  t.teardown(async () => void (w.child.exitCode === null && (await w.ask('churn off'))));
  for (const retries of [0, 3]) {
    const r = await record(['--pid', String(w.child.pid), '--struct', 'churn_list', '--rate', '20', '--duration', '2', '--retries', String(retries), '--verbose', '--format', 'json']);
    const meta = JSON.parse(r.stdout);
    t.equal(r.code, meta.partial > 0 ? 3 : 0, `exit ${r.code}: ${meta.partial} of ${meta.samples} partial`);
    // One --verbose line a read of the view: "held still" ends a complete sample, "changed while read" is taken again or, after N + 1 reads, partial.
    const reads = r.stderr.split('\n').filter((l) => /^xsample: churn_list: \d+ elements/.test(l));
    const changed = reads.filter((l) => /: changed while read \(/.test(l)).length;
    t.equal(reads.length - changed, meta.samples - meta.partial, `retries ${retries}: ${reads.length} reads, ${changed} of them changed: each complete sample held still once, on its last read`);
    t.ok(reads.length <= meta.samples * (retries + 1), `at most ${retries + 1} reads a sample`);
    const partials = [...r.stderr.matchAll(/changed while it was read, (\d+) times? [^;]*\((\d+) samples?\)/g)];
    t.same(partials.map((p) => Number(p[1])), partials.length ? partials.map(() => retries + 1) : [], `a partial sample was read ${retries + 1} time${retries === 0 ? "" : "s"}`);
    t.equal(partials.reduce((a, p) => a + Number(p[2]), 0), meta.partial, 'every partial sample is one that changed');
    if (retries === 0) t.equal(reads.length, meta.samples, 'no retries: each sample read once');
    else t.ok(reads.length > meta.samples && changed > meta.partial, `retries ${retries}: ${reads.length - meta.samples} reads again after a change (${changed} changed, ${meta.partial} partial)`);
  }
});
