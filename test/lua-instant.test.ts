/**
 * Issue 20: a CPU profile needs samples taken at an instant. Under many short calls (heavy ~10 µs, light
 * ~3 µs, 3 units of work for 1: test/lib/lua-split.ts), xsample's recording of lua_stacks must split
 * between the two as LuaJIT's own profiler (jit.profile) does in the same worker, just after the recording
 * (never during it: run together, jit.profile changes what the VM does and hides the bias). A sample read
 * over half a millisecond and kept only when a second read agrees over-weights the longer call (measured:
 * 0.92 to 1.00 against 0.73 to 0.78); recorded at the instant of each perf sample by the kernel (the view's
 * instant: capture, docs/tracing.md), as xsample does by default where eBPF works, it does not.
 * 2500 samples recorded and 3000 of jit.profile's: the spread of their difference is 0.012, so 0.05 is
 * 4 of it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createInterface } from 'node:readline';
import t from 'tap';
import { loadAddon } from '../sampler/memory/native-addon.ts';
import type { BpfAddon } from '../sampler/bpf/addon.ts';
import { xsampleBin } from './lib/xsample.ts';
import { foldedSplit, type Jit, jitProfileSplit, recordedSplit, startShortCalls, stopShortCalls } from './lib/lua-split.ts';
import { DEBIAN_NGINX, startNginx } from './lib/nginx.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-lua-instant-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

/** What jit.profile calls the VM's states: N in JIT code, I interpreted. */
const STATE: Record<Jit, string> = { on: 'N', off: 'I' };

for (const jit of ['on', 'off'] as const) {
  t.test(`lua_stacks under short calls, JIT ${jit}: heavy's share of the samples as jit.profile's in the same worker, within 0.05`, async (t) => {
    const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
    t.teardown(() => nginx.stop());
    t.teardown(stopShortCalls); // a failed assertion must not leave the worker busy
    // Resolves once lua_stacks shows the calls running in JIT code (JIT on) or in the interpreter (off).
    const calls = await startShortCalls(nginx, { jit });
    const rec = await recordedSplit(nginx.workerPid, { out: path.join(dir, `short-${jit}.folded`), seconds: 5, min: 2500, rate: 500 });
    t.match(await calls.stop(), /^\d+\n$/, 'the handler finished when told, never stopped by the recording');
    t.ok(rec.runs.every((r) => r.code === 0 || r.code === 3), `every recording ran (exit 0, or 3 with partial samples left out): ${JSON.stringify(rec.runs)}`);
    t.ok(rec.runs.every((r) => r.instant), 'every recording sampled at the instant (the default where eBPF works)');
    t.ok(rec.all >= 2500, `2500 samples or more saw Lua run (${rec.all} of ${rec.taken} taken, ${rec.partial} partial)`);
    t.ok(rec.partial <= 0.02 * rec.taken, `nearly none partial: what the kernel read at the instant is not read again (${rec.partial} of ${rec.taken})`);
    t.ok(rec.heavy + rec.light >= 0.9 * rec.all, `nearly all of them in heavy or light (${rec.heavy + rec.light} of ${rec.all})`);

    // The ground truth, after the recording: the same loop, the same worker, under jit.profile.
    const prof = await jitProfileSplit(nginx, { seconds: 60, samples: 3000, jit });
    const samples = Object.values(prof.vmstates).reduce((a, b) => a + b, 0);
    t.equal(prof.jit, jit, `jit.status() says the JIT is ${jit}`);
    t.ok((prof.vmstates[STATE[jit]] ?? 0) >= 0.9 * samples, `jit.profile saw the VM in state ${STATE[jit]} (${jit === 'on' ? 'JIT code' : 'the interpreter'}): ${JSON.stringify(prof.vmstates)}`);
    t.ok(prof.heavy + prof.light >= 2800, `jit.profile saw 2800 samples or more in heavy or light (${prof.heavy} + ${prof.light}; all: ${JSON.stringify(prof.functions)})`);
    // The work is 3 to 1; LuaJIT's own profiler says about that (measured 0.75 to 0.79).
    t.ok(Math.abs(prof.share - 0.75) <= 0.1, `jit.profile's share of heavy is about 3/4 (${prof.share.toFixed(3)}, ${prof.heavy} to ${prof.light})`);

    const diff = Math.abs(rec.share - prof.share);
    t.ok(diff <= 0.05, `heavy's share recorded ${rec.share.toFixed(3)} (${rec.heavy} to ${rec.light}) vs jit.profile's ${prof.share.toFixed(3)} (${prof.heavy} to ${prof.light}): ${diff.toFixed(3)} apart`);
  });
}

t.test('Ctrl-C during a recording at the instant writes what was gathered, and the kernel program goes with xsample', async (t) => {
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  t.teardown(() => nginx.stop());
  t.teardown(stopShortCalls);
  const calls = await startShortCalls(nginx, { jit: 'on' });
  const addon = loadAddon<BpfAddon>('xwalk_bpf')!;
  const out = path.join(dir, 'ctrl-c.folded');
  const child = execa(process.execPath, [xsampleBin, 'record', '--pid', String(nginx.workerPid), '--struct', 'lua_stacks', '--rate', '100', '-o', out, '--verbose'], { reject: false, stdin: 'ignore', buffer: { stderr: false } });
  const stderr: string[] = [];
  let seen = 0;
  await new Promise<void>((resolve) => {
    createInterface({ input: child.stderr! }).on('line', (l) => {
      stderr.push(l);
      // Each batch of captures taken says how many (--verbose): wait for 20, then Ctrl-C.
      seen += Number(/lua_stacks: (\d+) captures/.exec(l)?.[1] ?? 0);
      if (seen >= 20) resolve();
    });
  });
  const during = new Set(addon.progIds());
  child.kill('SIGINT');
  const r = await child;
  t.equal(r.exitCode, 0, stderr.slice(-5).join('\n'));
  t.match(stderr.join('\n'), /^xsample: stopped by Ctrl-C after \d+\.\d s; \d+ samples? kept$/m, 'says why it stopped');
  const kept = foldedSplit(fs.readFileSync(out, 'utf8'));
  t.ok(kept.all >= 20, `the samples gathered are written (${kept.all})`);
  // Programs of other tests come and go; the one xsample loaded is gone with it: fewer now than during.
  const after = new Set(addon.progIds());
  t.ok([...during].some((id) => !after.has(id)), 'a program loaded while recording is gone once xsample exited');
  t.match(await calls.stop(), /^\d+\n$/, 'the handler finished when told');
});
