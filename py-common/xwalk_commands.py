# xwalk commands, debugger-neutral: pick the layout, run a view over a fresh
# snapshot, print text or JSON exactly as xsample does. gdb-py/ and lldb-py/
# supply a Target and Symbols (the contract: py-common/xwalk_target.py) and
# the evaluation of an address expression; test/py/test_commands.py, fakes.
import errno
import os
import re
import stat
from typing import Any

from xwalk_choice import choose_layout
from xwalk_core import Layout, Runtime, Snapshot, XwalkError, column_reads, core_clock, live_clock, run_view
from xwalk_derive import derive_enums, derive_layout_with
from xwalk_elf import open_regular, section_range
from xwalk_output import error_where, folded_add, folded_lines, folded_sorted, result_json, result_text
from xwalk_pattern import find_in_file


class Pack(object):
    """Everything the generated file knows about its pack; commands close over it."""

    def __init__(self, name, doc, schema_sha256, version_pattern, signature_pattern, layouts, spec, view_factories, commands, printers, clock_factory=None, objects=None):
        self.objects = objects or {}  # name -> {"file": mapped as, "members": the types and globals its layouts give}
        self.name = name
        self.doc = doc
        self.schema_sha256 = schema_sha256
        self.version_pattern = version_pattern
        self.signature_pattern = signature_pattern
        self.layouts = layouts
        self.spec = spec
        self.view_factories = view_factories
        self.commands = commands
        self.printers = printers
        self.clock_factory = clock_factory  # fn(layout) -> (doc, {name: fn(rt, s)}): the program's clock on a core
        self._clocks = {}
        self._views = {}
        self._printers = {}
        self._layouts = {}

    def printers_for(self, layout):
        key = (layout.build_id, layout.source)
        if key not in self._printers:
            self._printers[key] = [(t, kind, x if kind == "view" else x(layout)) for t, kind, x in self.printers]
        return self._printers[key]

    def clock_for(self, layout):
        if self.clock_factory is None:
            return None
        key = (layout.build_id, layout.source)
        if key not in self._clocks:
            self._clocks[key] = self.clock_factory(layout)
        return self._clocks[key]

    def view_for(self, layout, i):
        """View i compiled for the layout, when first asked for: a view of an object the process does not
        map fails alone, saying why, and the others still run."""
        key = (layout.build_id, layout.source, i)
        if key not in self._views:
            self._views[key] = self._compile_view(layout, i)
        return self._views[key]

    def _compile_view(self, layout, i):
        """A view whose items can be read without the objects the process does not map runs, and its columns
        that read one are left out (as compileView in printers/js.ts); else it fails, saying why."""
        try:
            return self.view_factories[i](layout)
        except XwalkError:
            if not layout.unavailable:
                raise
            view = self.view_factories[i](layout.with_stand_ins())
            if view.of in layout.unavailable or any(n in layout.unavailable for n in view.needs):
                raise
            view.absent = set(c[0] for c in view.columns if any(n in layout.unavailable for n in column_reads(c)))
            return view


USAGE = "[EXPR] [--json] [--max-nodes N] [--folded FILE]"


def parse_command_args(argv):
    opts: dict[str, Any] = {"json": False, "max_nodes": 10000000, "expr": None, "folded": None}
    rest = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--json":
            opts["json"] = True
        elif a == "--max-nodes":
            i += 1
            if i >= len(argv) or not argv[i].isdigit() or not 1 <= int(argv[i]) <= 1000000000:
                raise XwalkError("--max-nodes takes a whole number from 1 to 1000000000, not '%s'" % (argv[i] if i < len(argv) else ""))
            opts["max_nodes"] = int(argv[i])
        elif a == "--folded":
            i += 1
            if i >= len(argv) or not argv[i]:
                raise XwalkError("--folded takes the file to write the stacks to")
            opts["folded"] = argv[i]
        elif a.startswith("--"):
            raise XwalkError("unknown option %s (usage: %s)" % (a, USAGE))
        else:
            rest.append(a)
        i += 1
    if rest:
        opts["expr"] = " ".join(rest)
    return opts


def select_layout(pack, target):
    """The pack's layout for this build: by build-id, else from the DWARF the debugger has loaded (once);
    joined with the layouts of the pack's objects the process maps (objects:), as xsample does."""
    mapped = _mapped_objects(pack, target)
    key = (target.build_id, tuple(sorted(mapped.items())))
    if key not in pack._layouts:
        pack._layouts[key] = _with_objects(pack, _find_layout(pack, target), mapped)
    return pack._layouts[key]


def object_file_matches(file, path):
    """Whether a mapped path is the object named file: that name, or it followed by a dot and more."""
    base = os.path.basename(path)
    return base == file or base.startswith(file + ".")


def _mapped_objects(pack, target):
    """name -> (path, build-id) of each of the pack's objects the process maps."""
    if not pack.objects:
        return {}
    out = {}
    for path, build_id in target.objects():
        for name, o in pack.objects.items():
            if name not in out and object_file_matches(o["file"], path):
                out[name] = (path, build_id)
    return out


def _with_objects(pack, layout, mapped):
    """The layout with each object's types and globals: from the layout committed for the build mapped, or
    unavailable with the reason (not mapped, an unknown build), in the words of objectLayouts in
    sampler/sampling/pack-select.ts, so that the readers say the same."""
    # a global a build may lack (optional: in the schema), in the words of optionalMissing in sampler/sampling/bound-layout.ts
    for name, why in pack.spec.get("optional", {}).items():
        if name not in layout.data["globals"]:
            layout.unavailable[name] = "this build has no %s (%s)" % (name, why)
    if not pack.objects:
        return layout
    data = dict(layout.data, types=dict(layout.data["types"]), globals=dict(layout.data["globals"]), enums=dict(layout.data.get("enums", {})))
    unavailable = dict(layout.unavailable)
    sources = [layout.source]
    for name, o in pack.objects.items():
        found = mapped.get(name)
        known = [d for d in pack.layouts if d.get("object") == name]
        got = next((d for d in known if found and d["build_id"] == found[1]), None)
        if got is not None:
            data["types"].update(got["types"])
            data["globals"].update(got["globals"])
            data["enums"].update(got.get("enums", {}))
            sources.append("%s %s (%s)" % (name, got["release"], got["build_id"][:12]))
            continue
        if found is None:
            reason = "%s is not mapped in this process" % o["file"]
        elif not found[1]:
            reason = "%s has no build-id note, and layouts are keyed by it" % found[0]
        else:
            reason = "unknown build of %s: %s (build-id %s); known builds of %s's %s: %s. Add one with: xgen layout --pack %s --object %s --for %s PROBE-WITH-DEBUG-INFO" % (
                o["file"], found[0], found[1], pack.name, name, ", ".join("%s %s" % (d["release"], d["build_id"][:12]) for d in known) or "none",
                pack.name, name, found[0])
        for member in o["members"]:
            unavailable[member] = reason
    return Layout(data, " + ".join(sources), unavailable)


def _misfit(pack, data):
    """Why a layout of the program does not fit the schema (every struct, field and global it declares, but the
    optional globals), in the words of BoundLayout.bind in sampler/sampling/bound-layout.ts; None when it fits."""
    spec, types = pack.spec, data["types"]
    missing = []
    for t, fields in spec["structs"].items():
        if t not in types:
            missing.append(t)
            continue
        missing += ["%s.%s" % (t, f) for f in fields if f not in types[t]["fields"]]
    missing += [g for g in spec["globals"] if g not in data["globals"] and g not in spec.get("optional", {})]
    if not missing:
        return None
    return "the layout %s %s (%s) lacks %s%s: the schema changed since it was made; regenerate it with xgen layout" % (
        pack.name, data["release"], data["build_id"][:12], ", ".join(missing[:6]), " and %d more" % (len(missing) - 6) if len(missing) > 6 else "")


def _find_layout(pack, target):
    """The one rule of py-common/xwalk_choice.py (as xsample): by build-id; else the debugger's own DWARF; else
    release + signature; else one line saying why not."""
    own = [d for d in pack.layouts if d.get("object") is None]
    candidates = [{"release": d["release"], "build_id": d["build_id"], "signature": d.get("signature"), "misfit": _misfit(pack, d)} for d in own]
    facts = {"pack": pack.name, "exe": target.exe, "build_id": target.build_id, "version": None, "signature": None, "debug": "serves", "embedded": True}
    choice = choose_layout(candidates, facts)
    if choice.get("by") == "build-id":
        return Layout(own[choice["layout"]], choice["source"])
    # No layout by build-id: the version string (a scan of the executable) names the release from here on.
    version = find_version(target.exe, pack.version_pattern)
    facts["version"] = version
    choice = choose_layout(candidates, facts)
    types, globals_, errors = derive_layout_with(target.debug_types(), pack.spec)
    if not errors:
        data = {"release": version or "unknown", "build_id": target.build_id, "types": types, "globals": globals_}
        data["enums"] = derive_enums(target.debug_types(), pack.spec)[0]
        return Layout(data, choice["source"])
    facts.update(debug="%s: %s" % (errors[0]["where"], errors[0]["message"]), signature=find_version(target.exe, pack.signature_pattern, SIGNATURE))
    choice = choose_layout(candidates, facts)
    if "refused" in choice:
        raise XwalkError(choice["refused"])
    return Layout(own[choice["layout"]], choice["source"])


# What a release and a signature may look like (sampler/sampling/pack-select.ts checks the same).
RELEASE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$")
SIGNATURE = re.compile(r"^[\x20-\x7e]{1,1024}$")


def find_version(path, program, shape=RELEASE):
    """The capture of the pattern's program in the binary's .rodata (linear time: xwalk_pattern.py), if it has that shape."""
    if not program or not path:
        return None
    try:
        with open_regular(path) as f:
            start, end = section_range(f, ".rodata")
            found = find_in_file(f, start, end, program)
    except (IOError, OSError, ValueError, IndexError):
        return None
    return found if found is not None and shape.match(found) else None


def checked_address(view, expr, addr, type_names):
    """EXPR's address, as xsample --addr takes one: a number or a void pointer as it is, a pointer to (or
    a value of) a struct only if it is the view's; and always a 64-bit address."""
    if type_names and view.of != "fnptr" and view.of not in type_names:
        raise XwalkError("%s is %s, not a %s: give a pointer to one, or an address" % (expr, type_names[0], view.of))
    if not 0 <= addr <= 0xFFFFFFFFFFFFFFFF:
        raise XwalkError("%s is %d, not a 64-bit address" % (expr, addr))
    return addr


def run_command(pack, view_index, opts, target, symbols, eval_address):
    """eval_address(EXPR) -> (address, the names of the struct it is or points to, or None).
    A list of view indexes is a flame graph of those views (flamegraphs: in the schema)."""
    if isinstance(view_index, list):
        return run_flamegraph(pack, view_index, opts, target, symbols)
    layout = select_layout(pack, target)
    view = pack.view_for(layout, view_index)
    addr = checked_address(view, opts["expr"], *eval_address(opts["expr"])) if opts["expr"] else None
    rt = view_runtime(pack, layout, view, target, symbols, opts["max_nodes"])
    rows, errors = run_view(view, rt, addr)
    if opts["folded"]:
        return write_folded(view, opts["folded"], rows, errors, target.pid)
    rows = [[("pid", target.pid)] + row for row in rows]
    if opts["json"]:
        return result_json(view, target.pid, pack.name, layout, target.build_id, rt.clock, rows, errors)
    return result_text(view, target.pid, pack.name, layout, rt.clock, rows, errors)


def run_flamegraph(pack, view_indexes, opts, target, symbols):
    """One sample of every view of a flame graph, as folded lines: to --folded FILE, else printed."""
    if opts["expr"] or opts["json"]:
        raise XwalkError("a flame graph takes no EXPR and no --json: [--folded FILE] [--max-nodes N]")
    layout = select_layout(pack, target)
    weights: dict[str, int] = {}
    for i in view_indexes:
        view = pack.view_for(layout, i)
        rt = view_runtime(pack, layout, view, target, symbols, opts["max_nodes"])
        rows, errors = run_view(view, rt)
        if errors:
            raise XwalkError("%s: the sample is partial, nothing %s (%s: %s)" % (view.name, "written" if opts["folded"] else "shown", error_where(errors[0]) or view.name, errors[0]["message"]))
        folded_add(view, rows, target.pid, weights)
    lines = folded_sorted(weights)
    return _write_lines(opts["folded"], lines) if opts["folded"] else "\n".join(lines)


def _write_lines(path, lines):
    """Folded lines into path; what to tell the user."""
    write_file(path, "".join(line + "\n" for line in lines).encode("utf-8"))
    return "wrote %s: %d stack%s" % (path, len(lines), "" if len(lines) == 1 else "s")


def write_file(path, data):
    """data as the whole of the file path, as xsample record -o writes one: never through a symlink,
    never onto another user's file; written beside it (a new file, O_EXCL) and renamed over it, so an
    existing file is replaced whole or not at all. A problem is one line: cannot write PATH: why."""
    def fail(why):
        raise XwalkError("cannot write %s: %s" % (path, why))
    try:
        st = os.lstat(path)
    except OSError as e:
        st = None
        if e.errno != errno.ENOENT:
            fail(e.strerror)
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            fail("it is a symlink, which is not followed (name the file itself)")
        if not stat.S_ISREG(st.st_mode):
            fail("it is a directory" if stat.S_ISDIR(st.st_mode) else "it is not a regular file")
        if st.st_uid != os.geteuid():
            fail("it belongs to uid %d, not to you" % st.st_uid)
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, ".%s.%d.tmp" % (name, os.getpid()))
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644 if st is None else stat.S_IMODE(st.st_mode))
    except OSError as e:
        fail(e.strerror)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        fail(e.strerror)


def write_folded(view, path, rows, errors, pid):
    """One sample of a stack-shaped view as folded lines in path; a partial sample is not written."""
    if view.stack is None:
        raise XwalkError("view %s is a table, not stack-shaped (no stack: in the schema): --folded needs one" % view.name)
    if errors:
        e = errors[0]
        where = error_where(e)
        raise XwalkError("%s not written: the sample is partial (%s%s)" % (path, where + ": " if where else "", e["message"]))
    return _write_lines(path, folded_lines(view, rows, pid))


def view_runtime(pack, layout, view, target, symbols, max_nodes=10000000):
    """A fresh snapshot of the target, and the clock when the view reads one (read now, before the walk)."""
    rt = Runtime(Snapshot(target.read_chunk, target.ranges()), symbols, max_nodes)
    rt.registers = target.register
    if view.clock:
        rt.clock = live_clock() if target.live else core_clock(pack.name, pack.clock_for(layout), rt)
    return rt


def summary(pack, view_index, addr, target, symbols):
    """One line for a pretty printer: the view's figures for the struct at addr."""
    layout = select_layout(pack, target)
    view = pack.view_for(layout, view_index)
    rt = view_runtime(pack, layout, view, target, symbols)
    rows, errors = run_view(view, rt, addr)
    parts = ["%s=%s" % (k, "?" if v is None else v) for k, v in rows[0] if k not in ("origin", "addr")]
    return " ".join(parts) + (" (partial)" if errors else "")


def check_layout(pack, layout, types, errors):
    """Every difference between the extension's layout and the debugger's own types."""
    problems = ["%s: %s" % (e["where"], e["message"]) for e in errors]
    for struct_name, t in sorted(types.items()):
        mine = layout.data["types"].get(struct_name)
        if mine is None:
            problems.append("%s: missing from the layout" % struct_name)
            continue
        if mine["size"] != t["size"]:
            problems.append("%s: size %d in the layout, %d in the debug info" % (struct_name, mine["size"], t["size"]))
        for path, f in sorted(t["fields"].items()):
            m = mine["fields"].get(path)
            for key in ("offset", "size", "bit", "bits"):
                if m is None or m.get(key) != f.get(key):
                    problems.append("%s.%s: %s %s in the layout, %s in the debug info" % (struct_name, path, key, None if m is None else m.get(key), f.get(key)))
                    break
    if not problems:
        return "xwalk-check: the layout %s matches the debug info (%d types)" % (layout.source, len(types))
    return "xwalk-check: %d mismatch%s with the layout %s:\n  %s" % (len(problems), "" if len(problems) == 1 else "es", layout.source, "\n  ".join(problems))


PRINTER_CHILDREN_LIMIT = 1000


def printer_output(pack, index, addr, target, symbols):
    """What printer `index` shows for the struct at addr: a string, a summary line, or child values."""
    layout = select_layout(pack, target)
    type_name, kind, x = pack.printers_for(layout)[index]
    if kind == "view":
        return summary(pack, x, addr, target, symbols)
    rt = Runtime(Snapshot(target.read_chunk, target.ranges()), symbols)
    if kind == "string":
        return x(rt, addr)
    out = []

    def take(v):
        out.append(v)
        return 1 if len(out) < PRINTER_CHILDREN_LIMIT else 0

    x(rt, addr, take)
    return out
