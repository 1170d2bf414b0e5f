# xwalk output: a view's result as text, as JSON and as folded flame-graph
# lines, byte for byte as xsample writes them (sampler/outputs/text-table.ts and
# folded.ts, sampler/sampling/result-shape.ts). Standard library only: it needs nothing else of
# the runtime. The golden cases of test/fixtures/output-golden/ hold both
# languages to the same bytes (test/py/test_output_golden.py,
# test/output-golden.test.ts).
import json
import re
import time


# ---- text ----

_UNPRINTABLE = re.compile(u"[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def printable(text):
    """As generators/schema.ts printable(): line breaks as spaces, control characters as \\xNN, bidi
    controls and line separators as \\uNNNN: nothing a schema or memory holds rewrites the terminal."""
    def esc(m):
        c = ord(m.group(0))
        if m.group(0) in "\n\r\t":
            return " "
        return "\\x%02x" % c if c <= 0xFF else "\\u%04x" % c
    return _UNPRINTABLE.sub(esc, text)


def format_time(ms):
    """UTC to the millisecond, as sampler/sampling/clock.ts formatTime()."""
    if ms is None:
        return "unreadable"
    if not 0 <= ms < 253402300800000:
        return "%d ms" % ms
    return "%s.%03d UTC" % (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000)), ms % 1000)


def clock_line(clock):
    """On a core, what "now" was (sampler/outputs/text-table.ts clockLine())."""
    if clock is None or clock.source != "core":
        return None
    if clock.doc is None:
        return "now: none (a core keeps no clock of its own, and the pack names none)"
    return "now: %s = %s (a core keeps no clock of its own)" % (format_time(clock.now_ms), clock.doc)


def cell_text(v):
    """A value as a table shows it: no value as ?, a list as [a, b] (cellText())."""
    if isinstance(v, list):
        return "[" + ", ".join(cell_text(x) for x in v) + "]"
    return "?" if v is None else str(v)


def aligned(head, rows, numeric):
    """A header and rows of cells as aligned lines: number columns to the right, the others to the left."""
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]

    def line(vals):
        return "  ".join(v.rjust(widths[i]) if numeric[i] else v.ljust(widths[i]) for i, v in enumerate(vals)).rstrip()

    return [line(head)] + [line(r) for r in rows]


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def result_text(view, pid, pack, layout, clock, rows, errors):
    """The same text as xsample (formatText()): a title, a header, one aligned line per item (the title
    names the pid, so the rows' pid column is not repeated), the problems of a partial result."""
    n = len(rows)
    title = "%s: %d item%s  (%s %s%s)" % (view.name, n, "" if n == 1 else "s", pack, layout.release, ", pid %d" % pid if pid is not None else "")
    lines = [title]
    now = clock_line(clock)
    if now:
        lines.append(now)
    if rows:
        cols = [k for k, _ in rows[0] if k != "pid"]
        table = [dict(r) for r in rows]
        numeric = [all(_is_int(t[c]) or t[c] is None for t in table) for c in cols]
        lines += aligned([c.upper() for c in cols], [[cell_text(t[c]) for c in cols] for t in table], numeric)
    if errors:
        lines.append("partial: %d problem%s" % (len(errors), "" if len(errors) == 1 else "s"))
        for e in errors:
            where = error_where(e)
            lines.append("  %s: %s" % (where, e["message"]) if where else "  " + e["message"])
    return "\n".join(printable(line) for line in lines)


def error_where(e):
    """Where a problem is: root LABEL, the item, the column, those it names."""
    return " ".join(x for x in [("root " + e["root"]) if e.get("root") else None, e.get("item"), e.get("column")] if x)


# ---- JSON ----


def result_json(view, pid, pack, layout, build_id, clock, rows, errors, consistency=None):
    """The same JSON as xsample --json (sampler/sampling/result-shape.ts resultShape()): keys in the same
    order, no spaces, integers whole."""
    out = [
        ("view", view.name),
        ("pid", pid),
        ("pack", pack),
        ("release", layout.release),
        ("build_id", build_id),
    ]
    if consistency:
        out.append(("consistency", consistency))
    if clock is not None:
        out.append(("clock", {"source": clock.source, "now_ms": clock.now_ms, "monotonic_ms": clock.monotonic_ms}))
    out += [
        ("items", None),
        ("partial", len(errors) > 0),
        ("errors", errors),
    ]
    items = "[" + ",".join(_obj(r) for r in rows) + "]"
    parts = []
    for k, v in out:
        parts.append(json.dumps(k) + ":" + (items if k == "items" else _compact_json(v)))
    return "{" + ",".join(parts) + "}"


def _compact_json(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def _obj(pairs):
    return "{" + ",".join(json.dumps(k) + ":" + _compact_json(v) for k, v in pairs) + "}"


# ---- folded ----


def frames_of(stack, row, pid):
    """One item of a stack-shaped view as frames (framesOf()): the process, then each frame column's value
    (origin bare, the others as "name value", a list one frame each, a value not read as ?)."""
    frame_names = stack[0]
    frames = [] if pid is None else ["pid %d" % pid]
    for name in frame_names:
        if name == "origin":
            frames.append(str(row["origin"]))
            continue
        cell = row.get(name)
        for v in cell if isinstance(cell, list) else [cell]:
            frames.append("%s %s" % (name, "?" if v is None else v))
    return frames


def stacks_of(stack, row, pid):
    """An item's paths (stacksOf()): its frames with its weight (1 without a weight column), or with leaves
    one path per leaf column, ending in its name (a pool's blocks and its large allocations)."""
    _, weight_name, leaves = stack
    frames = frames_of(stack, row, pid)

    def weight_in(c):
        w = row.get(c)
        return w if _is_int(w) else 0

    if leaves:
        return [(frames + [c], weight_in(c)) for c in leaves]
    return [(frames, weight_in(weight_name) if weight_name else 1)]


def folded_path(frames):
    """A path as folded text: its frames joined by ';', a ';' inside a frame written \\x3b."""
    return ";".join(f.replace(";", "\\x3b") for f in frames)


def folded_add(view, rows, pid, weights):
    """Adds a stack-shaped view's rows to weights ({folded path: weight}); the views of a flame graph add to one.
    A path of weight 0 adds nothing, and is left out, as xsample record leaves it out."""
    for row in rows:
        for frames, w in stacks_of(view.stack, dict(row), pid):
            if w == 0:
                continue
            key = folded_path(frames)
            weights[key] = weights.get(key, 0) + w


def folded_sorted(weights):
    """Folded lines from {path: weight}: heaviest first, then by their text."""
    return ["%s %d" % (k, w) for k, w in sorted(weights.items(), key=lambda e: (-e[1], e[0]))]


def folded_lines(view, rows, pid):
    """A stack-shaped view's rows as folded lines (frame;frame;frame weight), as xsample record writes
    one sample; identical paths add up; heaviest first, then by their text."""
    weights: dict[str, int] = {}
    folded_add(view, rows, pid, weights)
    return folded_sorted(weights)
