# xwalk for gdb: raw memory through inferior.read_memory, the pack's layout
# chosen by the executable's build-id, one command per view. A module of
# each generated gdb extension, as are those of py-common/.
import os
import re
import struct

import gdb

from xwalk_commands import check_layout, parse_command_args, printer_output, run_command, select_layout
from xwalk_core import XwalkError
from xwalk_derive import derive_layout_with
from xwalk_dwarf import GdbTypes
from xwalk_elf import core_file_mappings, core_ranges
from xwalk_target import Symbols, Target, proc_ranges


class GdbTarget(Target):
    """The selected inferior: a live process or a core."""

    def __init__(self):
        self.inf = gdb.selected_inferior()
        self.pid = self.inf.pid or None
        self.exe = gdb.current_progspace().filename
        if not self.exe:
            raise XwalkError("no executable: run this in a gdb attached to a process or holding a core")
        obj = gdb.lookup_objfile(self.exe)
        self.build_id = obj.build_id if obj is not None else None
        self.live = self.pid is not None and _is_live(self.inf)
        if not self.live and _core_file() is None:
            raise XwalkError("no process: attach gdb to one (gdb -p PID) or open a core (gdb BINARY CORE)")

    def read_exact(self, addr, n):
        # Any failure (gdb.MemoryError, or OverflowError for an address gdb cannot take) is no read.
        try:
            return bytes(self.inf.read_memory(addr, n))
        except Exception:
            return None

    def ranges(self):
        """Readable mappings: of a live process from /proc, of a core from its program headers and NT_FILE.
        None when neither can be read: then every read is tried."""
        try:
            if self.live:
                return proc_ranges(self.pid)
            core = _core_file()
            return core_ranges(core, self.exe) if core else None
        except (IOError, OSError, struct.error, IndexError, ValueError):
            return None

    def debug_types(self):
        return GdbTypes()

    def objects(self):
        return [(o.filename, o.build_id) for o in gdb.objfiles() if o.filename and o.filename != self.exe]

    def register(self, name):
        try:
            return _first_thread_register(self.inf, name)
        except (gdb.error, ValueError):
            return None


def _first_thread_register(inf, name):
    """A register of the first thread's innermost frame, as a core's first NT_PRSTATUS has it (xsample reads
    that one): the thread is selected for the read, then the selection is put back."""
    threads = inf.threads()
    if not threads:
        return None
    was = gdb.selected_thread()
    try:
        min(threads, key=lambda t: t.num).switch()
        return int(gdb.newest_frame().read_register(name)) & 0xFFFFFFFFFFFFFFFF
    finally:
        if was is not None and was.is_valid():
            was.switch()


def _core_file():
    m = re.search(r"core dump file:\s*`([^']+)'", gdb.execute("info target", to_string=True))
    return m.group(1) if m else None


def _is_live(inf):
    try:
        return len(inf.threads()) > 0 and not gdb.execute("info target", to_string=True).count("core dump")
    except gdb.error:
        return False


class GdbSymbols(Symbols):
    """ELF symbols as gdb knows them (minimal symbols too: stripped binaries keep .dynsym)."""

    @property
    def exe(self):
        return gdb.current_progspace().filename

    def debugger_address(self, name):
        try:
            return int(gdb.parse_and_eval("&" + name))
        except gdb.error:
            return None

    def debugger_symbol_at(self, addr):
        try:
            out = gdb.execute("info symbol %d" % addr, to_string=True)
        except gdb.error:
            return None
        # gdb names the object ("... in section .text of /lib/...") once more than one is loaded.
        m = re.match(r"^(\S+)(?: \+ (\d+))? in section \S+(?: of (.+))?$", out.strip())
        if not m:
            return None
        return m.group(1), int(m.group(2) or 0), m.group(3)

    def live_pid(self):
        inf = gdb.selected_inferior()
        return inf.pid if inf.pid and _is_live(inf) else None

    def core_file_mappings(self):
        core = _core_file()
        return core_file_mappings(core) if core else []


class ViewCommand(gdb.Command):
    def __init__(self, pack, command, view_index, doc):
        self.__doc__ = doc
        gdb.Command.__init__(self, command, gdb.COMMAND_DATA)
        self.pack = pack
        self.view_index = view_index

    def invoke(self, arg, from_tty):
        with one_line_errors():
            try:
                argv = gdb.string_to_argv(arg)
            except (gdb.error, ValueError) as e:
                raise XwalkError("cannot read the arguments: %s" % e)
            opts = parse_command_args(argv)
            gdb.write(run_command(self.pack, self.view_index, opts, GdbTarget(), GdbSymbols(), _eval_address) + "\n")


class one_line_errors(object):
    """Any failure of a command is one line, gdb's own error (XWALK_DEBUG=1 shows the Python traceback)."""

    def __enter__(self):
        return self

    def __exit__(self, kind, e, tb):
        if e is None or isinstance(e, gdb.GdbError) or os.environ.get("XWALK_DEBUG"):
            return False
        if isinstance(e, XwalkError):
            raise gdb.GdbError(str(e))
        raise gdb.GdbError("xwalk: internal error: %s: %s (set XWALK_DEBUG=1 for a traceback, and please report it)" % (type(e).__name__, e))


def _struct_names(t):
    """The names a struct type goes by: each typedef on the way to it, and its tag."""
    names = []
    while True:
        if t.name:
            names.append(t.name)
        if t.code != gdb.TYPE_CODE_TYPEDEF:
            break
        t = t.target()
    if t.code != gdb.TYPE_CODE_STRUCT:
        return None
    if t.tag and t.tag not in names:
        names.append(t.tag)
    return names


def _eval_address(expr):
    """(address, the names of the struct EXPR is or points to, or None for a number or any other pointer)."""
    try:
        v = gdb.parse_and_eval(expr)
        code = v.type.strip_typedefs().code
        if code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            if v.address is None:  # $_siginfo, a value returned by a call: not in the target's memory
                raise XwalkError("%s is a %s that is not in the target's memory: give a pointer to one, or an address" % (expr, v.type))
            return int(v.address), _struct_names(v.type)
        if code == gdb.TYPE_CODE_PTR:
            return int(v), _struct_names(v.type.strip_typedefs().target())
        if code not in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_CHAR, gdb.TYPE_CODE_BOOL):
            raise XwalkError("%s is %s, not a pointer or an address" % (expr, "void" if code == gdb.TYPE_CODE_VOID else "a %s" % v.type))
        return int(v), None
    except (gdb.error, OverflowError, TypeError, ValueError) as e:
        raise XwalkError("cannot evaluate %s: %s" % (expr, e))


class CheckCommand(gdb.Command):
    """Compares this extension's layout for the running build with gdb's own DWARF and reports every mismatch."""

    def __init__(self, pack, command):
        gdb.Command.__init__(self, command, gdb.COMMAND_DATA)
        self.pack = pack

    def invoke(self, arg, from_tty):
        with one_line_errors():
            target = GdbTarget()
            layout = select_layout(self.pack, target)
            types, globals_, errors = derive_layout_with(target.debug_types(), self.pack.spec)
            gdb.write(check_layout(self.pack, layout, types, errors) + "\n")


def xwalk_register(pack):
    for command, view_index, doc in pack.commands:
        ViewCommand(pack, command, view_index, doc)
    CheckCommand(pack, "xwalk-check")
    register_printers(pack)


def register_printers(pack):
    """A gdb.printing collection named after the pack: info/disable pretty-printer know it."""
    import gdb.printing

    printer = gdb.printing.RegexpCollectionPrettyPrinter(pack.name)
    for index, (type_name, kind, _) in enumerate(pack.printers):
        printer.add_printer(type_name, "^%s$" % "|".join(re.escape(n) for n in _type_names(type_name)), _printer_class(pack, index, kind))
    gdb.printing.register_pretty_printer(gdb.current_objfile(), printer, replace=True)


def _type_names(type_name):
    """gdb matches a struct's tag (ngx_pool_s) or, for an anonymous struct, its typedef (ngx_str_t)."""
    names = [type_name]
    try:
        tag = gdb.lookup_type(type_name).strip_typedefs().tag
        if tag and tag not in names:
            names.append(tag)
    except gdb.error:
        pass
    return names


def _printer_class(pack, index, kind):
    class Printer(object):
        def __init__(self, val):
            self.val = val
            self.out = None

        def _output(self):
            if self.out is None:
                addr = self.val.address
                if addr is None:
                    raise XwalkError("a value not in memory")
                self.out = printer_output(pack, index, int(addr), GdbTarget(), GdbSymbols())
            return self.out

        def to_string(self):
            try:
                out = self._output()
            except Exception as e:  # a printer must never break `print`
                return "<xwalk: %s>" % e
            if kind == "children":
                return "%s with %d element%s" % (self.val.type, len(out), "" if len(out) == 1 else "s")
            return out

        def children(self):
            if kind != "children":
                return
            try:
                out = self._output()
            except Exception:
                return
            void_p = gdb.lookup_type("void").pointer()
            for i, v in enumerate(out):
                yield "[%d]" % i, gdb.Value(v).cast(void_p)

        def display_hint(self):
            return "string" if kind == "string" else "array" if kind == "children" else None

    return Printer
