# xwalk layout choice: which layout serves a process, the one rule xsample
# follows too (generators/layout-choice.ts chooseLayout, the same in
# TypeScript). Pure: facts in, a choice or a refusal out; the golden cases
# of test/fixtures/output-golden/layout-choice.json hold both languages to
# it (test/py/test_output_golden.py). Standard library only.


def known_builds(pack, layouts):
    """The builds known, as a refusal names them (knownBuilds())."""
    if not layouts:
        return "no builds of %s are known yet" % pack
    return "known builds of %s: %s" % (pack, ", ".join(" ".join(x for x in [c["release"], c.get("binary"), c["build_id"][:12]] if x) for c in layouts))


def choose_layout(layouts, facts):
    """layouts: the program's own layouts that may serve ({release, build_id, signature, binary?, misfit: the
    line saying why it does not fit the schema, or None}); facts: {pack, exe, build_id, version, signature,
    debug: None when there is no debug info, "serves", or why it does not serve; embedded: the layouts are
    inside this extension}. In order: the layout of the build-id when it fits; else the debug info when it
    serves; else one of the same release and signature that fits; else {"refused": one line}. A choice is
    {"by": "build-id" | "signature", "layout": index, "source": ...} or {"by": "dwarf", "source": ...}."""
    pack, build_id, version, signature = facts["pack"], facts["build_id"], facts["version"], facts["signature"]
    release = version if version is not None else "unknown"
    own = next((i for i, c in enumerate(layouts) if build_id is not None and c["build_id"] == build_id), -1)
    if own >= 0 and layouts[own]["misfit"] is None:
        return {"by": "build-id", "layout": own, "source": "%s %s (%s)" % (pack, layouts[own]["release"], layouts[own]["build_id"][:12])}
    if facts["debug"] == "serves":
        return {"by": "dwarf", "source": "%s %s (%s, derived from DWARF)" % (pack, release, build_id[:12] if build_id else "no build-id")}
    if version is not None and signature is not None:
        same = next((i for i, c in enumerate(layouts) if c["release"] == version and c["signature"] == signature and c["misfit"] is None), -1)
        if same >= 0:
            return {"by": "signature", "layout": same, "source": "%s %s (made for %s; same release and signature)" % (pack, version, layouts[same]["build_id"][:12])}
    add = "Add one with: xgen layout --pack %s BINARY-WITH-DEBUG-INFO%s" % (pack, ", then regenerate" if facts["embedded"] else "")
    build = "%s (build-id %s)" % (facts["exe"], build_id if build_id is not None else "none")
    if facts["debug"] is not None:
        return {"refused": "unknown build of %s %s: %s matches no layout, and its debug info does not serve (%s); %s. %s" % (pack, release, build, facts["debug"], known_builds(pack, layouts), add)}
    if own >= 0:
        return {"refused": layouts[own]["misfit"]}
    if build_id is None:
        return {"refused": "%s has no build-id note, so no layout can be keyed to it: link it with --build-id" % facts["exe"]}
    return {"refused": "unknown build of %s %s: %s is stripped and no layout matches it; %s. %s" % (pack, release, build, known_builds(pack, layouts), add)}
