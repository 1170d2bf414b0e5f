# xwalk: what the commands ask of a debugger, written down once. A Target is
# the process or core being looked at (its memory, its mappings, which build
# it is); Symbols are its executable's symbols. gdb-py/xwalk_gdb.py and
# lldb-py/xwalk_lldb.py implement both; test/py/test_commands.py implements
# them over a bytes buffer, so py-common/xwalk_commands.py runs under plain
# python3. What gdb and lldb would do alike is done here, once: reading a
# chunk page by page when it cannot be read whole, /proc/PID/maps, keeping
# to the executable's own symbols, a C file's statics.

import os
import shutil
import struct
import subprocess
import sys

from xwalk_core import PAGE
from xwalk_elf import elf_load_bias, file_statics_of, open_regular
from xwalk_symtab import elf_loads, elf_symtab_and_build_id, find_recovered_table


class Required(object):
    """An attribute the implementation sets (in its __init__, or as a property of its own).
    Read before it is set, it is an error that names the class and the attribute."""

    def __init__(self, doc):
        self.__doc__ = doc
        self.name = None

    def __set_name__(self, owner, name):
        self.owner, self.name = owner.__name__, name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        raise NotImplementedError("%s does not set %s.%s: %s" % (type(obj).__name__, self.owner, self.name, self.__doc__))


def missing(obj, contract, method):
    """The error for a method of the contract that obj's class does not implement."""
    return NotImplementedError("%s does not implement %s.%s" % (type(obj).__name__, contract, method))


class Target(object):
    """A process or a core, as the commands see it. Implement read_exact(), ranges(), debug_types()
    and set pid, exe, build_id and live; read_chunk() is built on read_exact() and read_page()."""

    pid = Required("the process id (int), or None when there is none to tell (a core may not say)")
    exe = Required("the path of the executable (str), or None when the debugger has none")
    build_id = Required("the executable's GNU build-id as lowercase hex (str), or None when it has none")
    live = Required("True for a running process (its clock is the debugger's), False for a core")

    def read_exact(self, addr, n):
        """The n bytes at addr (bytes of length n), or None when any of them cannot be read. Never raises."""
        raise missing(self, "Target", "read_exact(addr, n)")

    def read_page(self, addr, n):
        """At most the rest of one page at addr (n never crosses a page): bytes, short or empty when
        unreadable. What a chunk read short falls back to; by default read_exact()."""
        return self.read_exact(addr, n) or b""

    def read_chunk(self, addr, n):
        """The bytes at addr, up to n: shorter (possibly empty) from the first page that cannot be
        read. Never raises. What Snapshot (xwalk_core.py) reads memory with."""
        data = self.read_exact(addr, n)
        if data is not None:
            return data
        out = b""
        while len(out) < n:
            a = addr + len(out)
            piece = self.read_page(a, min(PAGE - a % PAGE, n - len(out)))
            if not piece:
                break
            out += piece
        return out

    def ranges(self):
        """The readable mappings: a list of (start, end), end exclusive, in any order, overlaps allowed;
        or None when they cannot be known (then every read is tried)."""
        raise missing(self, "Target", "ranges()")

    def debug_types(self):
        """A DebugTypes (xwalk_derive.py) over the debug info the debugger has loaded: a build that no
        layout of the pack knows is served by its own DWARF through it."""
        raise missing(self, "Target", "debug_types()")

    def register(self, name):
        """A register (rdx, rip, ...) of the target's first thread as an int, where the debugger has it (a core, a
        stopped process); None where it has not. By default, none."""
        return None

    def objects(self):
        """The shared objects the process has loaded besides its executable: a list of (path, build-id as
        lowercase hex or None). A pack's objects (a module, a library) are found among them."""
        raise missing(self, "Target", "objects()")


# Mappings the kernel gives every process that are not the program's memory (reading [vvar] can fault).
SPECIAL_MAPPINGS = ("[vvar]", "[vsyscall]", "[vvar_vclock]")


def maps_lines(text):
    """The lines of a /proc/PID/maps text: (start, end, permissions, file offset, path or "")."""
    out = []
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        start, end = parts[0].split("-")
        out.append((int(start, 16), int(end, 16), parts[1], int(parts[2], 16), parts[5].strip() if len(parts) == 6 else ""))
    return out


def parse_maps(text):
    """The readable mappings of a /proc/PID/maps text, as Target.ranges() lists them."""
    return [(start, end) for start, end, perms, _, path in maps_lines(text) if perms[0] == "r" and path not in SPECIAL_MAPPINGS]


def proc_ranges(pid):
    """The readable mappings of a live process, from /proc (IOError or OSError when they cannot be read)."""
    with open("/proc/%d/maps" % pid) as f:
        return parse_maps(f.read())


def proc_file_mappings(pid):
    """The file mappings of a live process, from /proc/PID/maps: a list of (start, end, file offset, path)."""
    with open("/proc/%d/maps" % pid) as f:
        return [(start, end, offset, path) for start, end, _, offset, path in maps_lines(f.read()) if path.startswith("/")]


DELETED = " (deleted)"


def _without_deleted(path):
    return path[:-len(DELETED)] if path.endswith(DELETED) else path


class _Mapped(object):
    """One file the process maps: its mappings (start, end, file offset), its load bias (False: not read yet, None:
    unreadable), whether it is stripped, its build-id, its recovered table (False: not looked up yet)."""

    def __init__(self):
        self.mappings = []
        self.bias = False
        self.stripped = False
        self.build_id = None
        self.loads = None
        self.table = False

    def holds(self, addr):
        return any(start <= addr < end for start, end, _ in self.mappings)


_warned = set()


def _warn_once(message):
    """One line on stderr (the debugger's), once a session: a recovered table that is refused, and why."""
    if message not in _warned:
        _warned.add(message)
        sys.stderr.write("xwalk: %s\n" % message)


class Symbols(object):
    """The symbols of the executable and of every object it maps, as the walks use them (Runtime in xwalk_core.py). Implement
    debugger_address() and debugger_symbol_at() and set exe; address(), symbol_at(), symbolize() and file_static() are
    built on them and on the recovered symbol tables of stripped objects (xwalk_symtab.py); implement live_pid() and
    core_file_mappings() for object_at() and for those tables."""

    exe = Required("the path of the executable (str), or None when the debugger has none")

    def debugger_address(self, name):
        """The run-time address (int) of the global function or object name as the debugger knows it, or None."""
        raise missing(self, "Symbols", "debugger_address(name)")

    def debugger_symbol_at(self, addr):
        """(name, offset from its start, path of the object it is in or None for the executable) of the symbol that
        holds addr as the debugger knows it, or None when it knows none."""
        raise missing(self, "Symbols", "debugger_symbol_at(addr)")

    def address(self, name):
        """The run-time address (int) of the global function or object name, or None when there is none: the executable's
        names first, its recovered table's when it is stripped (as xsample: the executable before other objects), then the
        debugger's, then the recovered tables of the other stripped objects it maps."""
        exe = self._exe_object()
        if exe is not None and exe[2]:
            a = exe[2].address(name)
            if a is not None:
                return a + exe[1].bias
        a = self.debugger_address(name)
        if a is not None:
            return a
        for path, o in self._object_map().items():
            table = self._recovered_of(path, o)
            a = table.address(name) if table else None
            if a is not None:
                return a + o.bias
        return None

    def symbol_at(self, addr):
        """(name, offset from its start, path of the object it is in or None for the executable) of the symbol that
        holds addr, or None when none does: a stripped object's recovered table names it, else the debugger."""
        for path, o in self._object_map().items():
            if o.holds(addr):
                table = self._recovered_of(path, o)
                found = table.symbol_at(addr - o.bias) if table else None
                if found is not None:
                    return found[0], found[1], None if self._is_exe(path) else _without_deleted(path)
                break
        return self.debugger_symbol_at(addr)

    def recover(self):
        """xsample's automatic step, in a debugger: when the executable is stripped and no recovered table is found for
        it, runs `xgen symbols --for EXE` once (if xgen is on PATH; XWALK_NO_FETCH=1 forbids it), its progress on
        stderr. True when a table was found then."""
        exe = self._exe_object()
        if exe is None or not exe[1].stripped or exe[2] or not exe[1].build_id or self._recovery_tried:
            return False
        self._recovery_tried = True
        xgen = shutil.which("xgen")
        if os.environ.get("XWALK_NO_FETCH") or xgen is None:
            return False
        path, o = exe[0], exe[1]
        sys.stderr.write("xwalk: %s is stripped: recovering its symbols (xgen symbols --for %s; XWALK_NO_FETCH=1 to skip)\n" % (path, path))
        try:
            run = subprocess.Popen([xgen, "symbols", "--for", path], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, universal_newlines=True)
            assert run.stdout is not None  # stdout=PIPE
            for line in run.stdout:
                sys.stderr.write("xwalk: %s" % line)
            run.wait()
        except OSError as e:
            sys.stderr.write("xwalk: cannot run %s: %s\n" % (xgen, e))
            return False
        o.table = find_recovered_table(o.build_id, _warn_once, o.loads, path) if run.returncode == 0 else None
        return o.table is not None

    _recovery_tried = False

    def why_missing(self, name):
        """Why no symbol table names name, when it is worth saying: the executable is stripped and no recovered table is
        found for it (the end of the line a missing global fails with, as xsample's); else None."""
        exe = self._exe_object()
        if exe is None or not exe[1].stripped or exe[2]:
            return None
        path, o = exe[0], exe[1]
        return "%s is stripped and no recovered symbol table is found for it (%s): run `xgen symbols --for %s`" % (
            path, "build-id %s" % o.build_id if o.build_id else "no build-id", path)

    def symbolize(self, addr):
        """(name, offset) of the symbol that holds addr, in the executable or in any object it has mapped
        (a shared library, a module), as xsample reads them; None for NULL and for no symbol."""
        if addr == 0:
            return None
        found = self.symbol_at(addr)
        if found is None:
            return None
        name, offset, _path = found
        return name, offset

    def live_pid(self):
        """The pid of the live process the debugger is attached to; None for a core (and by default)."""
        return None

    def core_file_mappings(self):
        """A core's mappings of files: a list of (start, end, file offset, path), as its NT_FILE note lists them. By
        default none."""
        return []

    def file_mappings(self):
        """The process's mappings of files, (start, end, file offset, path): a live process's from /proc/PID/maps, a
        core's from core_file_mappings(). None known: no address is named by its object."""
        pid = self.live_pid()
        return proc_file_mappings(pid) if pid is not None else self.core_file_mappings()

    def open_mapped(self, path, mappings):
        """The file mapped from path (by mappings, each (start, end, file offset)), open for reading as bytes: a live
        process's, the very file it maps, through /proc/PID/map_files (even if another has taken its path since) where
        that may be followed; else the path (a core's: the file the debugger reads too), unless it is gone from it."""
        pid = self.live_pid()
        if pid is not None:
            start, end, _ = min(m for m in mappings if m[2] == 0)
            try:
                return open_regular("/proc/%d/map_files/%x-%x" % (pid, start, end))
            except (IOError, OSError):
                pass  # following map_files takes CAP_SYS_ADMIN: a debugger run by the process's own user reads the path
        if path.endswith(DELETED):
            raise OSError("%s: gone from its path" % path)
        return open_regular(path)

    def _object_map(self):
        """path -> _Mapped of every file the process maps, read once."""
        if getattr(self, "_objects", None) is None:
            try:
                mappings = self.file_mappings() or []
            except (IOError, OSError, struct.error, IndexError, ValueError):
                mappings = []
            self._objects: dict[str, _Mapped] = {}
            for start, end, offset, path in mappings:
                if path.startswith("/"):
                    self._objects.setdefault(path, _Mapped()).mappings.append((start, end, offset))
        return self._objects

    def _is_exe(self, path):
        exe = self.exe
        if exe is None:
            return False
        p = _without_deleted(path)
        return p == exe or os.path.realpath(p) == os.path.realpath(exe)

    def _bias(self, path, o):
        if o.bias is False:
            o.bias = self._bias_of(path, o.mappings)
        return o.bias

    def _recovered_of(self, path, o):
        """The recovered table of the object mapped from path (o: its _Mapped) when it is stripped and one is found
        (its bias is then known), else None."""
        if o.table is False:
            o.table = None
            if self._bias(path, o) is not None:
                try:
                    with self.open_mapped(path, o.mappings) as f:
                        has_symtab, o.build_id = elf_symtab_and_build_id(f)
                        o.loads = elf_loads(f)
                    o.stripped = not has_symtab
                except (IOError, OSError, struct.error, IndexError, ValueError):
                    pass
                if o.stripped and o.build_id:
                    o.table = find_recovered_table(o.build_id, _warn_once, o.loads, _without_deleted(path))
        return o.table

    def _exe_object(self):
        """(path, its _Mapped, its recovered table or None) of the executable's file; None when it is not mapped."""
        for path, o in self._object_map().items():
            if self._is_exe(path):
                return _without_deleted(path), o, self._recovered_of(path, o)
        return None

    def object_at(self, addr):
        """(file name, load bias) of the ELF object whose file is mapped at addr, or None: no file mapped there (anonymous
        memory, JIT code, a gap in an object's span), or not an ELF object, or one that cannot be read. Its bias is where
        the page of its first PT_LOAD is mapped (as xsample's ProcessSymbols.objectAt)."""
        for path, o in self._object_map().items():
            if o.holds(addr):
                if self._bias(path, o) is None:
                    return None
                name = _without_deleted(path)
                return name[name.rfind("/") + 1:], o.bias
        return None

    def _bias_of(self, path, mappings):
        try:
            with self.open_mapped(path, mappings) as f:
                return elf_load_bias(f, mappings)
        except (IOError, OSError, struct.error, IndexError, ValueError):
            return None

    def file_static(self, fn, name):
        """The run-time address of the static variable name of the C file that defines the function at
        fn: an int, None when that file has none, False when the executable has no .symtab."""
        if self.exe is None:
            return False
        exe = self._exe_object()
        if exe is not None and exe[2] is not None:
            # A stripped executable's statics, by the C file its recovered table gives each local.
            found = exe[2].file_static(fn - exe[1].bias, name)
            if found is not False:
                return None if found is None else found + exe[1].bias
        st, bias = file_statics_of(self, self.exe)
        return st.lookup(fn, name, bias)

