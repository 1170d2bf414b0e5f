/**
 * generators/lower/share.ts: a pack's functions pooled, each distinct one
 * once. The same view lowered twice adds nothing to the pool; two functions
 * alike but for what they call stay two; variables named apart are one.
 * (test/walk-logic.test.ts runs every case through the pooled Python.)
 */
import t from 'tap';
import type { LFunc } from '../generators/lower/lir.ts';
import { lowerView } from '../generators/lower/lower.ts';
import { FunctionPool } from '../generators/lower/share.ts';
import { loadPack } from '../sampler/sampling/pack-select.ts';

const ret = (name: string, v: bigint): LFunc => ({ name, kind: 'value', params: [], body: [{ k: 'return', e: { k: 'int', v } }] });
const calls = (name: string, callee: string, local: string): LFunc => ({
  name,
  kind: 'value',
  params: [],
  body: [
    { k: 'let', name: local, e: { k: 'call', fn: callee, args: [] } },
    { k: 'return', e: { k: 'var', name: local } },
  ],
} as LFunc);

t.test('a view lowered twice adds nothing the second time', async (t) => {
  const pack = loadPack('nginx');
  const view = pack.views.get('ngx_requests')!;
  const pool = new FunctionPool();
  const first = pool.add(lowerView(view).funcs);
  const size = pool.funcs.length;
  const second = pool.add(lowerView(view).funcs);
  t.equal(pool.funcs.length, size, `still ${size} functions`);
  t.same([...second.values()], [...first.values()], 'each function named as the first time');
});

t.test('alike but for their callees: two; alike but for their variable names: one', async (t) => {
  const pool = new FunctionPool();
  const a = pool.add([ret('one1', 1n), calls('f1', 'one1', 'x1')]);
  const b = pool.add([ret('two1', 2n), calls('f1', 'two1', 'x1')]);
  t.not(a.get('f1'), b.get('f1'), 'a caller of 1 and a caller of 2 are two functions');
  const c = pool.add([ret('one9', 1n), calls('g7', 'one9', 'y3')]);
  t.equal(c.get('g7'), a.get('f1'), 'the same function under other names is the first');
  t.equal(pool.funcs.length, 4, 'one, two and their two callers');
});
