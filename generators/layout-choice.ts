/**
 * Which layout serves a process: the one rule xsample (sampler/sampling/pack-select.ts)
 * and the gdb and lldb extensions (py-common/xwalk_choice.py choose_layout,
 * the same rule in Python) follow, given what each found out. In order:
 *
 * 1. the layout made for its build-id, when it fits the schema;
 * 2. else the binary's own debug info, when it serves (xsample: the
 *    executable's DWARF, derived and cached; a debugger: the DWARF it loaded);
 * 3. else a layout made for another build of the same release and the
 *    same signature (a security update), when it fits;
 * 4. else one line that says why not: the debug info's own problem, the
 *    build-id layout that no longer fits, no build-id, or an unknown
 *    stripped build, naming the builds known and how to add one.
 *
 * Pure: the facts come in, a choice or a refusal comes out; the golden
 * cases of test/fixtures/output-golden/layout-choice.json hold both
 * languages to it. A reader asks first as if the debug info served
 * (debug: 'serves' when it may), derives, and asks again with the
 * derivation's problem if it does not.
 */

/** A layout of the program itself (not of its objects) that may serve. */
export interface LayoutCandidate {
  release: string;
  build_id: string;
  signature: string | null;
  /** The binary it was made from, when known (the extensions' embedded layouts do not keep it). */
  binary?: string | null;
  /** Why it does not fit the schema (the whole line), or null when it does. */
  misfit: string | null;
}

export interface ProcessFacts {
  pack: string;
  /** The executable, as the reader names it. */
  exe: string;
  build_id: string | null;
  /** What the pack's version pattern found in the binary. */
  version: string | null;
  signature: string | null;
  /** The binary's debug info: null when there is none to derive from, 'serves', or why it does not serve. */
  debug: string | null;
  /** The layouts are inside the reader (a generated extension): adding one means regenerating it. */
  embedded: boolean;
}

export type LayoutChoice =
  | { by: 'build-id' | 'signature'; layout: number; source: string }
  | { by: 'dwarf'; source: string }
  | { refused: string };

const id12 = (id: string) => id.slice(0, 12);

/** The builds known, as a refusal names them. */
export function knownBuilds(pack: string, layouts: LayoutCandidate[]): string {
  if (layouts.length === 0) return `no builds of ${pack} are known yet`;
  return `known builds of ${pack}: ${layouts.map((l) => [l.release, l.binary, id12(l.build_id)].filter(Boolean).join(' ')).join(', ')}`;
}

export function chooseLayout(layouts: LayoutCandidate[], p: ProcessFacts): LayoutChoice {
  const release = p.version ?? 'unknown';
  const own = p.build_id === null ? -1 : layouts.findIndex((l) => l.build_id === p.build_id);
  if (own >= 0 && layouts[own].misfit === null) return { by: 'build-id', layout: own, source: `${p.pack} ${layouts[own].release} (${id12(layouts[own].build_id)})` };
  if (p.debug === 'serves') return { by: 'dwarf', source: `${p.pack} ${release} (${p.build_id ? id12(p.build_id) : 'no build-id'}, derived from DWARF)` };
  if (p.version !== null && p.signature !== null) {
    const same = layouts.findIndex((l) => l.release === p.version && l.signature === p.signature && l.misfit === null);
    if (same >= 0) return { by: 'signature', layout: same, source: `${p.pack} ${p.version} (made for ${id12(layouts[same].build_id)}; same release and signature)` };
  }
  const add = `Add one with: xgen layout --pack ${p.pack} BINARY-WITH-DEBUG-INFO${p.embedded ? ', then regenerate' : ''}`;
  const build = `${p.exe} (build-id ${p.build_id ?? 'none'})`;
  if (p.debug !== null) return { refused: `unknown build of ${p.pack} ${release}: ${build} matches no layout, and its debug info does not serve (${p.debug}); ${knownBuilds(p.pack, layouts)}. ${add}` };
  if (own >= 0) return { refused: layouts[own].misfit! };
  if (p.build_id === null) return { refused: `${p.exe} has no build-id note, so no layout can be keyed to it: link it with --build-id` };
  return { refused: `unknown build of ${p.pack} ${release}: ${build} is stripped and no layout matches it; ${knownBuilds(p.pack, layouts)}. ${add}` };
}
