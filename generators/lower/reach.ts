/**
 * Lowering of reach_path(): a breadth-first reach from roots by the edges a
 * walk gives each node, stopped at the target, and the path to it rebuilt
 * from parent links. It is the only lowering that keeps a seen map (address
 * → the node's index in the queue) and a queue (a stack read from its
 * bottom, by index); a step's name is computed only for the steps of the
 * path it yields, so the reach itself reads only the edges.
 *
 * Bounds: the queue holds at most --max-nodes nodes (past it, a limit
 * error); every node queued is spent from the sample's budget; a path of
 * more than maxSteps steps yields its first four, `…`, and its last ones.
 */
import type { TExpr, Walk } from '../ir.ts';
import { decArg, fail, if_, int, type LExpr, type LStmt, let_, set, v, bin } from './lir.ts';

type Emit = (elem: LExpr, stop: LStmt[]) => LStmt[];

/** What reach_path's lowering asks of the Lowerer (lower.ts). */
export interface ReachLowerer {
  expr(e: TExpr): LExpr;
  seq(e: TExpr, emit: Emit, stop: LStmt[]): LStmt[];
  names(...parts: string[]): Record<string, string>;
  slotVar(slot: number): string;
  spend(n: LExpr): LStmt[];
}

const small = (e: LExpr): LExpr => ({ ...e, small: true }) as LExpr;
const eq = (a: LExpr, b: LExpr) => bin('==', a, b);
const lt = (a: LExpr, b: LExpr) => bin('<', a, b);
const ge = (a: LExpr, b: LExpr) => bin('>=', a, b);
const at = (stack: string, i: LExpr): LExpr => ({ k: 'at', stack, i });
const depth = (stack: string): LExpr => ({ k: 'depth', stack });
const maxNodes: LExpr = { k: 'state', name: 'maxNodes' };
/** Steps kept before the `…` of a path cut short. */
const HEAD_STEPS = 4;

export function lowerReachPath(lw: ReachLowerer, w: Extract<Walk, { w: 'reach_path' }>, emit: Emit, stop: LStmt[]): LStmt[] {
  const { tgt, seen, q, par, edg, found, head, ei, node, pth, j, n, k } = lw.names('tgt', 'seen', 'q', 'par', 'edg', 'found', 'head', 'ei', 'node', 'pth', 'j', 'n', 'k');
  /** Queues x (reached from the node at index `from`, as its edge ei) unless it is NULL or seen. */
  const enqueue = (x: LExpr, from: LExpr): LStmt[] => [
    set(node, x),
    if_(bin('&&', bin('!=', v(node), int(0)), eq({ k: 'mapGet', map: seen, key: v(node) }, int(-1))), [
      if_(ge(depth(q), maxNodes), [fail('limit', 'reach_path(): more than {0} objects reached (--max-nodes)', decArg(maxNodes))]),
      { k: 'mapSet', map: seen, key: v(node), e: depth(q) },
      if_(eq(v(node), v(tgt)), [set(found, depth(q))]),
      { k: 'push', stack: q, e: v(node) },
      { k: 'push', stack: par, e: from },
      { k: 'push', stack: edg, e: v(ei) },
    ]),
    set(ei, small(bin('+', v(ei), int(1)))),
  ];
  const cut = w.maxSteps;
  const tail = cut - HEAD_STEPS - 1;
  const step: LStmt[] = [
    let_(lw.slotVar(w.nameSlot), at(q, v(j))),
    let_(lw.slotVar(w.fromSlot), { k: 'cond', c: lt(at(par, v(j)), int(0)), a: int(0), b: at(q, at(par, v(j))) }),
    let_(lw.slotVar(w.edgeSlot), at(edg, v(j))),
    ...emit(lw.expr(w.name), stop),
  ];
  return [
    let_(tgt, lw.expr(w.target)),
    { k: 'map', name: seen },
    { k: 'stack', name: q },
    { k: 'stack', name: par },
    { k: 'stack', name: edg },
    let_(found, int(-1)),
    let_(ei, int(0)),
    let_(node, int(0)),
    ...lw.seq(w.roots, (x) => enqueue(x, int(-1)), []),
    let_(head, int(0)),
    {
      k: 'try',
      body: [
        {
          k: 'loop',
          body: [
            if_(bin('||', ge(v(found), int(0)), ge(v(head), depth(q))), [{ k: 'break' }]),
            let_(lw.slotVar(w.slot), at(q, v(head))),
            set(ei, int(0)),
            ...lw.seq(w.children, (x) => enqueue(x, v(head)), []),
            set(head, small(bin('+', v(head), int(1)))),
          ],
        },
      ],
      finally: lw.spend(depth(q)),
    },
    // The path, target first onto a stack (each parent is earlier in the queue, so this ends), then root first.
    if_(ge(v(found), int(0)), [
      { k: 'stack', name: pth },
      let_(j, v(found)),
      { k: 'loop', body: [{ k: 'push', stack: pth, e: v(j) }, if_(lt(at(par, v(j)), int(0)), [{ k: 'break' }]), set(j, at(par, v(j)))] },
      let_(n, depth(pth)),
      let_(k, int(0)),
      {
        k: 'loop',
        body: [
          if_(eq(depth(pth), int(0)), [{ k: 'break' }]),
          set(j, { k: 'pop', stack: pth }),
          if_(
            bin('&&', bin('>', v(n), int(cut)), bin('&&', ge(v(k), int(HEAD_STEPS)), lt(v(k), bin('-', v(n), int(tail))))),
            [if_(eq(v(k), int(HEAD_STEPS)), emit({ k: 'str', v: '…' }, stop))],
            step,
          ),
          set(k, small(bin('+', v(k), int(1)))),
        ],
      },
    ]),
  ];
}
