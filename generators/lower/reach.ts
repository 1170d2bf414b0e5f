/**
 * Lowering of the breadth-first reach: reach(roots, children) (every node
 * reached, once), reach_path(roots, children, target, name) (the first
 * path to target, named step by step) and reach_parent(roots, children,
 * node). All three read one state, made once per sample (a `shared` value:
 * the runtime keeps it until the next sample): the queue of the nodes in
 * the order reached (a stack read from its bottom, by index), each one's
 * parent (its index in the queue, -1 for a root) and edge (its index among
 * its parent's children, or among the roots), and a seen map (node → its
 * index). A step's name is computed only for the steps of a path asked for,
 * once per node and sample (a map of names per reach_path), so the reach
 * itself reads only the edges.
 *
 * Bounds: the queue holds at most --max-nodes nodes (past it, a limit
 * error); every node queued is spent from the sample's budget; a path of
 * more than maxSteps steps yields its first four, `…`, and its last ones.
 */
import type { TExpr, Walk } from '../ir.ts';
import { canonical } from './canon.ts';
import { decArg, fail, if_, int, type LExpr, type LFunc, type LStmt, let_, set, v, bin } from './lir.ts';

type Emit = (elem: LExpr, stop: LStmt[]) => LStmt[];

/** What the reach's lowering asks of the Lowerer (lower.ts). */
export interface ReachLowerer {
  expr(e: TExpr): LExpr;
  seq(e: TExpr, emit: Emit, stop: LStmt[]): LStmt[];
  names(...parts: string[]): Record<string, string>;
  slotVar(slot: number): string;
  spend(n: LExpr): LStmt[];
  freeVars(e: TExpr): string[];
  /** A function of the program made once under key (the same key: the same function). */
  once(key: string, make: () => Omit<LFunc, 'name'>, prefix: string): string;
}

type Reach = { roots: TExpr; slot: number; children: TExpr };

/** The parts of a reach its state is made of, under their own keys (slot: children's it). */
const reachOf = (r: Reach): Reach => ({ roots: r.roots, slot: r.slot, children: r.children });

const small = (e: LExpr): LExpr => ({ ...e, small: true }) as LExpr;
const eq = (a: LExpr, b: LExpr) => bin('==', a, b);
const lt = (a: LExpr, b: LExpr) => bin('<', a, b);
const ge = (a: LExpr, b: LExpr) => bin('>=', a, b);
const at = (stack: string, i: LExpr): LExpr => ({ k: 'at', stack, i });
const depth = (stack: string): LExpr => ({ k: 'depth', stack });
const maxNodes: LExpr = { k: 'state', name: 'maxNodes' };
/** Steps kept before the `…` of a path cut short. */
const HEAD_STEPS = 4;

/**
 * What a reach is, up to the numbers of its slots (self too: what stands for it is passed): two walks that
 * write the same reach (lua_held_path and lua_references) share one function, and one state a sample.
 */
const keyOf = (x: unknown): string => canonical(x, true).text;

/** The variables of the reach's roots and children, in the order keyOf numbers them: what its state is a function of. */
function stateParams(lw: ReachLowerer, r: Reach): string[] {
  const free = new Set(lw.freeVars({ op: 'walk', walk: { w: 'reach', roots: r.roots, slot: r.slot, children: r.children }, type: { k: 'seq', elem: { k: 'int', signed: false } } }));
  return canonical(reachOf(r), true).slots.map((slot) => lw.slotVar(slot)).filter((name) => free.has(name));
}

/** The function that runs the reach to its end: it returns [queue, parents, edges, seen]. */
function stateFn(lw: ReachLowerer, r: Reach): string {
  return lw.once(
    `reach ${keyOf(reachOf(r))}`,
    () => {
      const { seen, q, par, edg, head, ei, node, st } = lw.names('seen', 'q', 'par', 'edg', 'head', 'ei', 'node', 'st');
      /** Queues x (reached from the node at index `from`, as its edge ei) unless it is NULL or seen. */
      const enqueue = (x: LExpr, from: LExpr): LStmt[] => [
        set(node, x),
        if_(bin('&&', bin('!=', v(node), int(0)), eq({ k: 'mapGet', map: seen, key: v(node) }, int(-1))), [
          if_(ge(depth(q), maxNodes), [fail('limit', 'reach(): more than {0} objects reached (--max-nodes)', decArg(maxNodes))]),
          { k: 'mapSet', map: seen, key: v(node), e: depth(q) },
          { k: 'push', stack: q, e: v(node) },
          { k: 'push', stack: par, e: from },
          { k: 'push', stack: edg, e: v(ei) },
        ]),
        set(ei, small(bin('+', v(ei), int(1)))),
      ];
      const body: LStmt[] = [
        { k: 'map', name: seen },
        { k: 'stack', name: q },
        { k: 'stack', name: par },
        { k: 'stack', name: edg },
        let_(ei, int(0)),
        let_(node, int(0)),
        let_(head, int(0)),
        {
          k: 'try',
          body: [
            ...lw.seq(r.roots, (x) => enqueue(x, int(-1)), []),
            {
              k: 'loop',
              body: [
                if_(ge(v(head), depth(q)), [{ k: 'break' }]),
                let_(lw.slotVar(r.slot), at(q, v(head))),
                set(ei, int(0)),
                ...lw.seq(r.children, (x) => enqueue(x, v(head)), []),
                set(head, small(bin('+', v(head), int(1)))),
              ],
            },
          ],
          finally: lw.spend(depth(q)),
        },
        { k: 'stack', name: st },
        ...[q, par, edg, seen].map((x): LStmt => ({ k: 'push', stack: st, e: v(x) })),
        { k: 'return', e: v(st) },
      ];
      return { kind: 'value', params: stateParams(lw, r), body };
    },
    'reach',
  );
}

/** The reach's state, made once per sample: binds q, par, edg and seen (and returns the statements that do). */
function bindState(lw: ReachLowerer, r: Reach, names: { st: string; q: string; par: string; edg: string; seen: string }): LStmt[] {
  const fn = stateFn(lw, r);
  const { st, q, par, edg, seen } = names;
  return [
    let_(st, { k: 'shared', key: fn, fn, args: stateParams(lw, r).map(v) }),
    let_(q, at(st, int(0))),
    let_(par, at(st, int(1))),
    let_(edg, at(st, int(2))),
    let_(seen, at(st, int(3))),
  ];
}

/** reach(roots, children): every node, in the order reached. */
export function lowerReach(lw: ReachLowerer, w: Extract<Walk, { w: 'reach' }>, emit: Emit, stop: LStmt[]): LStmt[] {
  const n = lw.names('st', 'q', 'par', 'edg', 'seen', 'i');
  return [
    ...bindState(lw, w, n as { st: string; q: string; par: string; edg: string; seen: string }),
    let_(n.i, int(0)),
    { k: 'loop', body: [if_(ge(v(n.i), depth(n.q)), [{ k: 'break' }]), ...emit(at(n.q, v(n.i)), stop), set(n.i, small(bin('+', v(n.i), int(1))))] },
  ];
}

/** reach_parent(roots, children, node): a function of the state's variables and the node. */
export function lowerReachParent(lw: ReachLowerer, e: Extract<TExpr, { op: 'reach_parent' }>): LExpr {
  const params = stateParams(lw, e);
  const fn = lw.once(
    `reach_parent ${keyOf(reachOf(e))}`,
    () => {
      const n = lw.names('st', 'q', 'par', 'edg', 'seen', 'j');
      return {
        kind: 'value',
        params: [...params, 'x'],
        body: [
          ...bindState(lw, e, n as { st: string; q: string; par: string; edg: string; seen: string }),
          let_(n.j, { k: 'mapGet', map: n.seen, key: v('x') }),
          if_(lt(v(n.j), int(0)), [{ k: 'return', e: int(0) }]),
          if_(lt(at(n.par, v(n.j)), int(0)), [{ k: 'return', e: int(0) }]),
          { k: 'return', e: at(n.q, at(n.par, v(n.j))) },
        ],
      };
    },
    'reach_parent',
  );
  return { k: 'call', fn, args: [...params.map(v), lw.expr(e.node)] };
}

/** reach_path(roots, children, target, name): the steps from a root to target, root first, each named once a sample. */
export function lowerReachPath(lw: ReachLowerer, w: Extract<Walk, { w: 'reach_path' }>, emit: Emit, stop: LStmt[]): LStmt[] {
  const n = lw.names('st', 'q', 'par', 'edg', 'seen', 'nm', 'pth', 'j', 'len', 'k', 'name');
  // The names of this reach_path's steps, by queue index: a map made once per sample, for what the reach
  // and the names are of (the variables either uses).
  const named = { ...reachOf(w), name: w.name, nameSlot: w.nameSlot, fromSlot: w.fromSlot, edgeSlot: w.edgeSlot };
  const free = new Set(lw.freeVars({ op: 'walk', walk: { ...w, target: { op: 'num', value: 0, type: { k: 'int', signed: false } } }, type: { k: 'seq', elem: { k: 'str' } } }));
  const namesParams = canonical(named, true).slots.map((slot) => lw.slotVar(slot)).filter((name) => free.has(name));
  const namesFn = lw.once(
    `reach_names ${keyOf(named)}`,
    () => {
      const { m } = lw.names('m');
      return { kind: 'value', params: namesParams, body: [{ k: 'map', name: m }, { k: 'return', e: v(m) }] };
    },
    'reach_names',
  );
  const cut = w.maxSteps;
  const tail = cut - HEAD_STEPS - 1;
  const step: LStmt[] = [
    let_(n.name, { k: 'mapGet', map: n.nm, key: v(n.j) }),
    if_(eq(v(n.name), int(-1)), [
      let_(lw.slotVar(w.nameSlot), at(n.q, v(n.j))),
      let_(lw.slotVar(w.fromSlot), { k: 'cond', c: lt(at(n.par, v(n.j)), int(0)), a: int(0), b: at(n.q, at(n.par, v(n.j))) }),
      let_(lw.slotVar(w.edgeSlot), at(n.edg, v(n.j))),
      set(n.name, lw.expr(w.name)),
      { k: 'mapSet', map: n.nm, key: v(n.j), e: v(n.name) },
    ]),
    ...emit(v(n.name), stop),
  ];
  return [
    ...bindState(lw, w, n as { st: string; q: string; par: string; edg: string; seen: string }),
    let_(n.nm, { k: 'shared', key: namesFn, fn: namesFn, args: namesParams.map(v) }),
    let_(n.j, { k: 'mapGet', map: n.seen, key: lw.expr(w.target) }),
    // The path, target first onto a stack (each parent is earlier in the queue, so this ends), then root first.
    if_(ge(v(n.j), int(0)), [
      { k: 'stack', name: n.pth },
      { k: 'loop', body: [{ k: 'push', stack: n.pth, e: v(n.j) }, if_(lt(at(n.par, v(n.j)), int(0)), [{ k: 'break' }]), set(n.j, at(n.par, v(n.j)))] },
      let_(n.len, depth(n.pth)),
      let_(n.k, int(0)),
      {
        k: 'loop',
        body: [
          if_(eq(depth(n.pth), int(0)), [{ k: 'break' }]),
          set(n.j, { k: 'pop', stack: n.pth }),
          if_(
            bin('&&', bin('>', v(n.len), int(cut)), bin('&&', ge(v(n.k), int(HEAD_STEPS)), lt(v(n.k), bin('-', v(n.len), int(tail))))),
            [if_(eq(v(n.k), int(HEAD_STEPS)), emit({ k: 'str', v: '…' }, stop))],
            step,
          ),
          set(n.k, small(bin('+', v(n.k), int(1)))),
        ],
      },
    ]),
  ];
}
