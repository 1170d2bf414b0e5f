/**
 * The third printer agrees with the other two: every walk-logic case
 * (test/walk-logic.test.ts, where JS and Python agree over a fake memory)
 * whose expression the kernel can run is printed as an eBPF capture
 * (printers/bpf/), run by a uprobe in a real process holding the
 * fake memory's bytes at the same addresses (test/lib/fake-process.ts), and
 * its answer computed again in JS over the captured words alone: a read of
 * a word the kernel did not capture faults. The same value, the same walk
 * error, the same fault address as over the fake memory shows the kernel's
 * control flow read exactly the words the walk needs, with the same integer
 * semantics (where a comparison, a shift or a division decides what is read
 * next). Integer semantics the walk-logic cases do not reach are cases here.
 */
import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseExpr } from '../generators/expr-parse.ts';
import { ExprChecker } from '../generators/check-expr.ts';
import type { LayoutFile } from '../generators/layout.ts';
import type { LExpr, LFunc, LStmt } from '../generators/lower/lir.ts';
import { lowerValue } from '../generators/lower/lower.ts';
import { captureRefusal, irNodes, printCapture } from '../printers/bpf/print.ts';
import { checkContext } from '../generators/schema.ts';
import { parseSchema } from '../printers/checked-schema.ts';
import { bpfUnavailable, VerifierRefused } from '../sampler/bpf/addon.ts';
import { type Capture, decodeCapture } from '../sampler/bpf/capture.ts';
import { instantRegisters } from '../sampler/bpf/instant-memory.ts';
import { type AttachedBpf, attachUprobe } from '../sampler/bpf/loader.ts';
import { BoundLayout } from '../sampler/sampling/bound-layout.ts';
import type { Int } from '../core/exact.ts';
import { compileProgram } from '../printers/js.ts';
import { type Chunk, Fault, PAGE, Snapshot } from '../sampler/memory/snapshot.ts';
import { SymbolTable } from '../sampler/memory/symbols.ts';
import type { Value } from '../sampler/sampling/view-run.ts';
import { type Limits, WalkError } from '../sampler/memory/walk-error.ts';
import { WalkRuntime } from '../sampler/sampling/walk-runtime.ts';
import { FakeMemory } from './lib/fake-memory.ts';
import { FakeProcess, fakeFromDump } from './lib/fake-process.ts';
import { encode } from './lib/py-walk.ts';
import { CASES_ENV, readCases, type WalkCase } from './lib/walk-cases.ts';

/**
 * The kernel's bound of one walk: the verifier follows every step of a loop, and its work grows faster
 * than the bound (a tree walk is refused at 32: a million instructions). Each case gets the smallest of
 * these under which the walk over the fake memory gives its own answer (else the smallest: a limit
 * error, the same everywhere); both JS runs use it too.
 */
const KERNEL_BOUNDS = [4, 8, 16, 32];
const ENTRIES = 1024;

/**
 * The words of a capture as the walk's memory, and nothing else: a read of a byte the kernel did not
 * capture faults (at the address the read began, where the kernel's faulted too).
 */
class CapturedWords extends Snapshot {
  private readonly bytesAt = new Map<number, number>();

  constructor(capture: Capture) {
    super(
      {
        description: 'the words of a capture',
        readInto: () => {
          throw new Error('internal: CapturedWords reads nothing');
        },
        close: () => {},
      },
      [{ start: 0, end: 2 ** 47 }],
    );
    for (const w of capture.words) w.bytes.forEach((b, i) => this.bytesAt.set(w.addr + i, b));
  }

  override chunk(addr: Int, len: number): Chunk {
    if (typeof addr !== 'number') throw new Fault(addr, 'not captured');
    let end = addr;
    while (this.bytesAt.has(end)) end++;
    if (end < addr + len) throw new Fault(addr, 'not captured');
    const bytes = Uint8Array.from({ length: end - addr }, (_, i) => this.bytesAt.get(addr + i)!);
    return { start: addr, end, view: new DataView(bytes.buffer), used: new Uint32Array(((end - addr) >> 3) + 2), pages: 0 };
  }
}

type Outcome = { value: unknown } | { elems: unknown[] } | { error: { kind: string; message: string } } | { fault: string };

/** The case's program run by the JS printer over memory m: its value or elements, its walk error or fault. */
function run(c: WalkCase, layout: BoundLayout, m: Snapshot, capture: Capture | null, limits: Limits): { outcome: Outcome; visited: number } {
  const symbols = new SymbolTable(
    c.symbols.map(([name, value, size, type]) => ({ name, value, size, type, bind: 1, shndx: 14 })),
    0,
  );
  const R = new WalkRuntime(m, symbols, limits);
  if (capture) R.registers = instantRegisters(() => capture);
  let outcome: Outcome;
  try {
    const fn = compileProgram(c.prog, layout, R);
    if (c.kind === 'value') outcome = { value: encode(fn(c.self)) };
    else {
      const elems: Value[] = [];
      fn(c.self, (v: Value) => {
        elems.push(v);
        return true;
      });
      outcome = { elems: elems.map(encode) };
    }
  } catch (err) {
    if (err instanceof WalkError) outcome = { error: { kind: err.kind, message: err.message } };
    else if (err instanceof Fault) outcome = { fault: String(err.addr) };
    else throw err;
  }
  return { outcome, visited: R.visited };
}

function bounded(c: WalkCase, maxNodes: number): Limits {
  return { maxNodes: Math.min(c.limits.maxNodes, maxNodes), maxTotal: Math.min(c.limits.maxTotal, maxNodes * 10) };
}

/** The kernel's bound for case c: the smallest under which its walk over the fake memory gives its own answer. */
function kernelLimits(c: WalkCase, layout: BoundLayout, fake: FakeMemory): { limits: Limits; fits: boolean } {
  const answer = (l: Limits) => JSON.stringify(run(c, layout, new Snapshot(fake, fake.ranges()), null, l).outcome);
  const own = answer(c.limits);
  const fits = KERNEL_BOUNDS.find((k) => answer(bounded(c, k)) === own);
  return { limits: bounded(c, fits ?? KERNEL_BOUNDS[1]), fits: fits !== undefined };
}

const ROOT = 'xw_root';
const CASE = 'xw_case';

/** The capture's view: a root that yields the case's self, and the case's program as its one instant: expression. */
function captureView(c: WalkCase): { funcs: LFunc[]; roots: { label: string; fn: string }[] } {
  const self: LExpr = { k: 'var', name: 'self' };
  const entry: LExpr =
    c.kind === 'value'
      ? { k: 'call', fn: c.prog.entry, args: [self] }
      : // The consumer takes every element, as the JS run's does.
        { k: 'call', fn: c.prog.entry, args: [self, { k: 'visitor', param: 'it', body: [{ k: 'return', e: { k: 'int', v: 1n } }] }] };
  const caseFn: LFunc = { name: CASE, kind: 'value', params: ['self'], body: [{ k: 'return', e: entry }] };
  const rootBody: LStmt[] = [{ k: 'expr', e: { k: 'visit', e: { k: 'int', v: BigInt(c.self) } } }, { k: 'return', e: { k: 'int', v: 1n } }];
  const root: LFunc = { name: ROOT, kind: 'seq', params: [], body: rootBody };
  if (c.prog.funcs.some((f) => f.name === ROOT || f.name === CASE)) throw new Error(`internal: the case's program has a function named ${ROOT} or ${CASE}`);
  return { funcs: [...c.prog.funcs, caseFn, root], roots: [{ label: 'self', fn: ROOT }] };
}

interface Tally {
  agreed: number;
  /** Of those, walks longer than the kernel's bound: the same limit error. */
  bounded: number;
  refused: Map<string, number>;
  /** Refusals of the verifier (a program of too many steps), and the bound the case ran at instead. */
  verifier: string[];
  full: string[];
  slowest: { text: string; ms: number }[];
  ms: { load: number; attach: number; detach: number };
}

/** The globals whose address a program asks for (global(name)). */
function globalsOf(funcs: LFunc[]): string[] {
  const names = irNodes(funcs).flatMap((o) => {
    const arg = (o.args as LExpr[] | undefined)?.[0];
    return o.k === 'rt' && o.fn === 'global' && arg?.k === 'str' ? [arg.v] : [];
  });
  return [...new Set(names)];
}

/** Runs each case through the kernel and both JS runs; the checks are t's, the tally the caller's. */
async function agree(t: Test, proc: FakeProcess, layout: BoundLayout, cases: WalkCase[], tally: Tally): Promise<void> {
  let loaded = '';
  const closing: Promise<void>[] = [];
  for (const c of cases) {
    const view = captureView(c);
    const refusal = captureRefusal(view, [CASE], layout);
    if (refusal !== null) {
      const why = refusal.replace(/\("[^"]*"\)/, '(...)').replace(/^(\w+)\(\).*/, '$1()');
      tally.refused.set(why, (tally.refused.get(why) ?? 0) + 1);
      continue;
    }
    const fake = fakeFromDump(c.memory);
    let { limits, fits } = kernelLimits(c, layout, fake);
    const symbol = new Map(c.symbols.map(([name, value]) => [name, BigInt(value)]));
    const lacking = globalsOf(view.funcs).filter((g) => !symbol.has(g));
    if (lacking.length) {
      // The printer puts a global's address in the program: a walk of one the target lacks is not printed.
      const why = 'a global the symbols lack';
      tally.refused.set(why, (tally.refused.get(why) ?? 0) + 1);
      continue;
    }
    const memory = JSON.stringify(c.memory);
    let began = performance.now();
    if (memory !== loaded) {
      await proc.load(c.memory);
      loaded = memory;
    }
    tally.ms.load += performance.now() - began;
    began = performance.now();
    let bpf: AttachedBpf | null = null;
    while (!bpf) {
      const prog = printCapture(view, [CASE], layout, {
        tgid: proc.pid,
        ...limits,
        entries: ENTRIES,
        ringBytes: 1 << 16,
        global: (name) => symbol.get(name)!,
      });
      try {
        bpf = attachUprobe(prog, proc.pid, proc.binary, 'xw_tick', { name: 'xwalk_agree' });
      } catch (err) {
        if (!(err instanceof VerifierRefused)) throw err;
        // Too many steps for the verifier at this bound: a smaller one, where the walk stops at its limit.
        const smaller = KERNEL_BOUNDS.filter((k) => k < limits.maxNodes).pop();
        tally.verifier.push(`${c.text} at --max-nodes ${limits.maxNodes}${smaller ? `, run at ${smaller}` : ''}: ${err.message.split('\n')[0]}`);
        if (!smaller) break;
        limits = bounded(c, smaller);
        fits = false;
      }
    }
    if (!bpf) continue;
    const attached = performance.now();
    tally.ms.attach += attached - began;
    let records: Buffer[];
    try {
      await proc.tick();
      records = bpf.drain();
    } finally {
      began = performance.now();
      // Closing a uprobe's event waits for the kernel (~70 ms here): closed in the background, in parallel.
      for (const fd of bpf.events.splice(0)) closing.push(new Promise((resolve) => fs.close(fd, () => resolve())));
      bpf.detach();
      tally.ms.detach += performance.now() - began;
    }
    tally.slowest.push({ text: c.text, ms: performance.now() - attached });
    t.equal(records.length, 1, `${c.text}: one record for one call`);
    if (records.length !== 1) continue;
    const capture = decodeCapture(records[0]);
    if (capture.status === 'full') {
      tally.full.push(c.text);
      continue;
    }
    const wrong = capture.words.filter((w) => {
      const b = new Uint8Array(w.bytes.length);
      try {
        fake.readInto(w.addr, b);
      } catch {
        return true;
      }
      return !b.every((x, i) => x === w.bytes[i]);
    });
    t.same(wrong, [], `${c.text}: every word the kernel read holds the fake memory's bytes`);
    const truth = run(c, layout, new Snapshot(fake, fake.ranges()), capture, limits);
    const kernel = run(c, layout, new CapturedWords(capture), capture, limits);
    const same = JSON.stringify(kernel) === JSON.stringify(truth);
    t.ok(same, `${c.text}: over the captured words alone, ${JSON.stringify(kernel.outcome).slice(0, 200)} (fake memory: ${JSON.stringify(truth.outcome).slice(0, 200)}, status ${capture.status}, ${capture.words.length} words, fault ${capture.fault})`);
    // A walk error (or a fault) in the walk is one in the kernel too: it stopped where the walk stops.
    const stopped = 'error' in truth.outcome || 'fault' in truth.outcome;
    t.equal(capture.status === 'walkError' || capture.fault !== null, stopped, `${c.text}: the kernel stopped (status ${capture.status}) where the walk does`);
    if (same) tally.agreed++;
    if (same && !fits) tally.bounded++;
  }
  await Promise.all(closing);
}

const unavailable = bpfUnavailable();

t.test('the walk-logic cases: the eBPF printer agrees with the JS and Python printers', { skip: unavailable ?? false }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-walk-cases-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'cases.jsonl');
  const began = performance.now();
  const child = spawnSync(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'walk-logic.test.ts')], {
    env: { ...process.env, [CASES_ENV]: file, TAP: '0' },
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  });
  t.equal(child.status, 0, `walk-logic.test.ts ran and wrote its cases down${child.status ? `: ${child.stderr.slice(-2000)}` : ''}`);
  const { schema, layout: file_, cases } = readCases(file);
  const recordMs = performance.now() - began;
  t.ok(cases.length >= 250, `${cases.length} evaluations of walk-logic's cases`);
  const pack = parseSchema(schema, 'fake.yaml');
  const layout = BoundLayout.bind(pack, file_ as LayoutFile, 'walk-logic layout');
  const proc = FakeProcess.start();
  t.teardown(() => proc.close());
  const tally: Tally = { agreed: 0, bounded: 0, refused: new Map(), verifier: [], full: [], slowest: [], ms: { load: 0, attach: 0, detach: 0 } };
  const kernelBegan = performance.now();
  await agree(t, proc, layout, cases, tally);
  const kernelMs = performance.now() - kernelBegan;
  const refused = [...tally.refused.values()].reduce((a, b) => a + b, 0);
  t.comment(`${cases.length} evaluations (recorded in ${(recordMs / 1000).toFixed(1)} s): ${tally.agreed} agree through the kernel (${tally.bounded} of them at the kernel's walk bound), ${refused} the kernel does not run, ${tally.verifier.length} the verifier refused, ${tally.full.length} filled the record; kernel part ${(kernelMs / 1000).toFixed(1)} s`);
  for (const [why, n] of [...tally.refused].sort((a, b) => b[1] - a[1])) t.comment(`  not for the kernel (${n}): ${why}`);
  for (const v of tally.verifier) t.comment(`  verifier: ${v}`);
  for (const f of tally.full) t.comment(`  record full: ${f}`);
  const slow = tally.slowest.sort((a, b) => b.ms - a.ms).slice(0, 3);
  t.comment(`  ms in all: ${JSON.stringify(Object.fromEntries(Object.entries(tally.ms).map(([k, v]) => [k, Math.round(v)])))}`);
  t.comment(`  slowest tick+drain: ${slow.map((s) => `${s.ms.toFixed(0)} ms ${s.text}`).join('; ')}`);
  t.ok(tally.agreed >= 150, `most cases run in the kernel (${tally.agreed})`);
  t.same(
    tally.verifier.filter((v) => !/, run at \d+:/.test(v)),
    [],
    'the verifier takes every program the printer says the kernel can run, at the smallest bound',
  );
});

/** Integer semantics the walk-logic cases do not reach, each deciding what is read next (the kernel's branch, or the address it reads). */
const INTS_SCHEMA = `xwalk: 1
pack: ints
types:
  ints_t:
    fields:
      big: uint
      neg: int
      c: int
      h: int
      w: int
      ubits: uint
      sbits: int
      yes: uint
      no: uint
      table: ptr u64
      huge: uint
views:
  ints:
    of: ints_t
    roots:
      none: cast(0, ints_t)
    columns:
      big: self.big
`;

const INTS_LAYOUT: LayoutFile = {
  xwalk_layout: 1,
  pack: 'ints',
  release: 'test',
  build_id: '00',
  binary: 'fake',
  producer: 'written by hand for bpf-printer.test.ts',
  types: {
    ints_t: {
      size: 72,
      align: 8,
      fields: {
        big: { offset: 0, size: 8, signed: false },
        neg: { offset: 8, size: 8, signed: true },
        c: { offset: 16, size: 1, signed: true },
        h: { offset: 18, size: 2, signed: true },
        w: { offset: 20, size: 4, signed: true },
        ubits: { offset: 24, size: 8, signed: false, bit: 2, bits: 60 },
        sbits: { offset: 32, size: 8, signed: true, bit: 2, bits: 60 },
        yes: { offset: 40, size: 8, signed: false },
        no: { offset: 48, size: 8, signed: false },
        table: { offset: 56, size: 8 },
        huge: { offset: 64, size: 8, signed: false },
      },
    },
  },
  globals: {},
  enums: {},
};

t.test('integer semantics: what the kernel computes decides what it reads, as in JS and Python', { skip: unavailable ?? false }, async (t) => {
  const pack = parseSchema(INTS_SCHEMA, 'ints.yaml');
  const layout = BoundLayout.bind(pack, INTS_LAYOUT, 'ints layout');
  const HEAP = 0x7f3a12000000;
  const mem = new FakeMemory();
  mem.map(HEAP, PAGE);
  const self = mem.alloc(72);
  const table = mem.alloc(64 * 8);
  const big = 2n ** 63n + 5n;
  const neg = -7n;
  const U = 0xf00000000000123n; // 60 bits, the top one set: negative as a signed field
  const S = U - 2n ** 60n;
  mem.u64(self, big);
  mem.u64(self + 8, neg);
  mem.u8(self + 16, 0xfe); // -2
  mem.bytes(self + 18, [0xd4, 0xfe]); // -300
  mem.i32(self + 20, -70000);
  const word = (U << 2n) | 3n | (3n << 62n); // bits of other fields below and above
  mem.u64(self + 24, word);
  mem.u64(self + 32, word);
  mem.u64(self + 40, 111);
  mem.u64(self + 48, 222);
  mem.u64(self + 56, table);
  mem.u64(self + 64, 2n ** 64n - 7n); // the bits of neg
  for (let i = 0; i < 64; i++) mem.u64(table + 8 * i, 1000 + i);

  const at = (x: bigint) => 1000 + Number(BigInt.asUintN(64, x) & 63n);
  const shr = (x: bigint, n: bigint) => BigInt.asUintN(64, x) >> n;
  const read = (e: string) => `*cast(self.table + ((${e}) & 63) * 8, u64)`;
  const cases: [string, number][] = [
    ['self.big > 5 ? self.yes : self.no', 111],
    ['(self.big >> 63) == 1 ? self.yes : self.no', 111],
    ['self.big > self.neg ? self.yes : self.no', 111],
    ['self.neg >= self.big ? self.yes : self.no', 222],
    ['self.huge == self.neg ? self.yes : self.no', 222],
    ['self.huge != self.neg ? self.yes : self.no', 111],
    ['self.big > 0 - 1 ? self.yes : self.no', 111],
    ['self.big <= 0 - 1 ? self.yes : self.no', 222],
    ['self.neg < 0 ? self.yes : self.no', 111],
    [read('self.neg >> 1'), at(shr(neg, 1n))],
    [read('self.neg / 2'), at(neg / 2n)],
    [read('self.neg % 3'), at(neg % 3n)],
    [read('self.big / 3'), at(big / 3n)],
    [read('self.big % 7'), at(big % 7n)],
    [read('self.big / self.neg'), at(big / neg)],
    [read('self.big % self.neg'), at(big % neg)],
    [read('self.neg / self.big'), at(neg / big)],
    [read('self.neg % self.big'), at(neg % big)],
    [read('self.big / (0 - 3)'), at(big / -3n)],
    [read('self.big * self.neg'), at(big * neg)],
    [read('self.neg >> 70'), at(0n)],
    [read('(self.big + self.neg) / 2'), at((big + neg) / 2n)],
    [read('self.c + 100'), at(-2n + 100n)],
    [read('self.h / 7'), at(-300n / 7n)],
    ['self.w < 0 - 69999 ? self.yes : self.no', 111],
    [read('self.w / 1000'), at(-70000n / 1000n)],
    ['self.sbits < 0 ? self.yes : self.no', 111],
    [read('self.sbits >> 50'), at(shr(S, 50n))],
    [read('self.sbits / 1024'), at(S / 1024n)],
    [read('self.ubits >> 54'), at(U >> 54n)],
    ['self.ubits > 1 << 58 ? self.yes : self.no', 111],
  ];
  const checker = new ExprChecker(checkContext(pack), 1);
  const walkCases: WalkCase[] = cases.map(([text]) => ({
    text,
    kind: 'value',
    prog: lowerValue(checker.check(parseExpr(text), { op: 'var', slot: 0, type: { k: 'ptr', to: { k: 'struct', name: 'ints_t' } } })),
    self,
    limits: { maxNodes: 10_000, maxTotal: 100_000 },
    symbols: [],
    memory: mem.dump(),
  }));
  // The fake memory's answer is C's (as exact.ts and Python compute it): the ground truth the kernel must reach.
  for (const [i, c] of walkCases.entries()) {
    const { outcome } = run(c, layout, new Snapshot(mem, mem.ranges()), null, c.limits);
    t.same(outcome, { value: encode(cases[i][1]) }, `${c.text} is ${cases[i][1]} over the fake memory`);
  }
  const proc = FakeProcess.start();
  t.teardown(() => proc.close());
  const tally: Tally = { agreed: 0, bounded: 0, refused: new Map(), verifier: [], full: [], slowest: [], ms: { load: 0, attach: 0, detach: 0 } };
  await agree(t, proc, layout, walkCases, tally);
  t.equal(tally.agreed, cases.length, 'every one agrees through the kernel');
});
