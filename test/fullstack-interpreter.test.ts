/**
 * interpreter.ts: a splices: native_stack row (lua_entries) grouped into entries as record --cpu splices
 * them. Rows as xsample gives them; the live agreement is test/fullstack.test.ts's.
 */
import t from 'tap';
import { INLINED_FRAME, interpreterState } from '../sampler/fullstack/interpreter.ts';

t.test('frames group into entries at the frames called from C, outermost first, native functions left out', async (t) => {
  const s = interpreterState({
    vm: 'C',
    frames: ['[C] ngx_http_lua_ngx_sleep', 'inner (a.lua:5)', 'cmp (a.lua:9)', '[C] table.sort', 'outer (a.lua:20)', 'main chunk'],
    kinds: [1, 0, 0, 1, 0, 0],
    entry_ends: [0, 0, 1, 0, 0, 1],
    caller_lines: [6, 11, 0, 22, 30, 0],
    top_line: 0,
    entry_sps: [0x7ffd1000, 0x7ffd2000],
    vm_pc: 0x7f0000001000,
  });
  t.ok(s);
  t.same(s!.entrySps, [0x7ffd1000, 0x7ffd2000]);
  t.equal(s!.vmPc, 0x7f0000001000);
  t.same(
    s!.entries.map((e) => e.map((f) => `${f.name}:${f.line}`)),
    [
      ['cmp (a.lua:9):11', 'inner (a.lua:5):6'],
      ['main chunk:30', 'outer (a.lua:20):22'],
    ],
  );
});

t.test('the youngest frame of a trace is compiled; a position in an inlined callee adds its own frame', async (t) => {
  const s = interpreterState({ vm: 'JIT', frames: ['heavy (x:2)', 'main chunk'], kinds: [0, 0], entry_ends: [0, 1], caller_lines: [6, 0], top_line: -1, entry_sps: [1000], vm_pc: 5 });
  t.same(s!.entries[0], [
    { name: 'main chunk', line: 6, compiled: false },
    { name: 'heavy (x:2)', line: 0, compiled: true },
    { name: INLINED_FRAME, line: 0, compiled: true },
  ]);
});

t.test('no frames or no entry: nothing runs', async (t) => {
  t.equal(interpreterState({ vm: 'C', frames: [], kinds: [], entry_ends: [], caller_lines: [], top_line: 0, entry_sps: [], vm_pc: 1 }), null);
  t.equal(interpreterState({ vm: 'C', frames: ['x'], kinds: [0], entry_ends: [1], caller_lines: [0], top_line: 0, entry_sps: [], vm_pc: 1 }), null);
});
