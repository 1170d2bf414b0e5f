# xwalk for lldb: raw memory through process.ReadMemory (target.ReadMemory
# for what a core lacks), the pack's layout chosen by the executable's
# build-id, one command per view. A module of each generated lldb
# extension, as are those of py-common/.
import os
import shlex
import sys

import lldb

from xwalk_commands import check_layout, parse_command_args, printer_output, run_command, select_layout
from xwalk_core import XwalkError
from xwalk_derive import derive_layout_with
from xwalk_dwarf_lldb import LldbTypes
from xwalk_target import SPECIAL_MAPPINGS, Symbols, Target


def _build_id(module):
    """A module's GNU build-id as lowercase hex: lldb gives it as a UUID string (hex with dashes)."""
    uuid = module.GetUUIDString()
    return uuid.replace("-", "").lower() if uuid else None


class LldbTarget(Target):
    """The selected target's process: live or a core."""

    def __init__(self, target):
        self.target = target
        self.process = self.target.GetProcess()
        if not self.target.IsValid() or not self.process.IsValid() or self.process.GetState() in (lldb.eStateExited, lldb.eStateDetached, lldb.eStateUnloaded, lldb.eStateInvalid):
            raise XwalkError("no process: attach lldb to a process (-p PID) or load a core (--core FILE)")
        self.pid = self.process.GetProcessID() or None
        self.live = self.process.GetPluginName() != "elf-core"
        exe = self.target.GetExecutable()
        self.exe = exe.fullpath if exe.IsValid() else None
        module = self.target.FindModule(exe) if exe.IsValid() else None
        self.build_id = _build_id(module) if module is not None and module.IsValid() else None

    def register(self, name):
        # The first thread's innermost frame, as a core's first NT_PRSTATUS has it (xsample reads that one).
        thread = self.process.GetThreadAtIndex(0)
        value = thread.GetFrameAtIndex(0).FindRegister(name) if thread.IsValid() else None
        return value.GetValueAsUnsigned() if value is not None and value.IsValid() else None

    def objects(self):
        out = []
        for m in range(self.target.GetNumModules()):
            module = self.target.GetModuleAtIndex(m)
            path = module.GetFileSpec().fullpath
            if path and path != self.exe:
                out.append((path, _build_id(module)))
        return out

    def read_exact(self, addr, n):
        err = lldb.SBError()
        data = self.process.ReadMemory(addr, n, err)
        return data if err.Success() and data is not None and len(data) == n else None

    def read_page(self, addr, n):
        return self.read_exact(addr, n) or self._read_file(addr, n) or b""

    def _file_segments(self):
        """(start, end, path, file offset) of every loaded segment backed by a file, page-rounded as mapped."""
        if getattr(self, "_segments", None) is None:
            self._segments = [(start, end, path, offset) for start, end, offset, path in _module_segments(self.target)]
        return self._segments

    def _read_file(self, addr, n):
        """What a core lacks (read-only file pages): the bytes the kernel had mapped from the file."""
        for start, end, path, offset in self._file_segments():
            if start <= addr < end:
                try:
                    with open(path, "rb") as f:
                        f.seek(offset + addr - start)
                        return f.read(min(n, end - addr))
                except (IOError, OSError):
                    return None
        return None

    def ranges(self):
        regions = self.process.GetMemoryRegions()
        out = []
        info = lldb.SBMemoryRegionInfo()
        for i in range(regions.GetSize()):
            if regions.GetMemoryRegionAtIndex(i, info) and info.IsReadable():
                name = info.GetName() or ""
                if name not in SPECIAL_MAPPINGS:
                    out.append((info.GetRegionBase(), info.GetRegionEnd()))
        if self.process.GetPluginName() == "elf-core":
            out.extend((start, end) for start, end, _, _ in self._file_segments())
        return out

    def debug_types(self):
        return LldbTypes()


def _module_segments(target):
    """(start, end, file offset, path) of every loaded segment of target's modules backed by a file, page-rounded as
    the kernel maps them: what a core's NT_FILE lists, which lldb 16 does not give."""
    out = []
    for m in range(target.GetNumModules()):
        module = target.GetModuleAtIndex(m)
        path = module.GetFileSpec().fullpath
        for i in range(module.GetNumSections()):
            sec = module.GetSectionAtIndex(i)
            start = sec.GetLoadAddress(target)
            if start == lldb.LLDB_INVALID_ADDRESS or sec.GetFileByteSize() == 0 or not sec.GetPermissions() & lldb.ePermissionsReadable:
                continue
            end = start + sec.GetFileByteSize()
            end += -end % 4096
            offset = sec.GetFileOffset() - start % 4096  # the kernel maps whole pages
            start -= start % 4096
            out.append((start, end, offset, path))
    return out


class LldbSymbols(Symbols):
    def __init__(self, target):
        self.target = target
        exe = target.GetExecutable()
        self.exe = exe.fullpath if exe.IsValid() else None

    def debugger_address(self, name):
        found = self.target.FindSymbols(name)
        for i in range(found.GetSize()):
            sym = found.GetContextAtIndex(i).GetSymbol()
            if sym.IsValid():
                a = sym.GetStartAddress().GetLoadAddress(self.target)
                if a != lldb.LLDB_INVALID_ADDRESS:
                    return a
        return None

    def debugger_symbol_at(self, addr):
        resolved = self.target.ResolveLoadAddress(addr)
        sym = resolved.GetSymbol()
        # lldb names stripped functions it finds in .eh_frame ___lldb_unnamed_symbolN: not an ELF symbol.
        module = resolved.GetModule()
        if not sym.IsValid() or not sym.GetName() or sym.IsSynthetic() or not module.IsValid():
            return None
        return sym.GetName(), addr - sym.GetStartAddress().GetLoadAddress(self.target), module.GetFileSpec().fullpath

    def live_pid(self):
        process = self.target.GetProcess()
        return process.GetProcessID() or None if process.IsValid() and process.GetPluginName() != "elf-core" else None

    def core_file_mappings(self):
        return _module_segments(self.target)


def _struct_names(t):
    """The names a struct type goes by: each typedef on the way to it, and its own."""
    names = []
    while t.IsValid():
        if t.GetName():
            names.append(t.GetName())
        if not t.IsTypedefType():
            break
        t = t.GetTypedefedType()
    if t.GetTypeClass() not in (lldb.eTypeClassStruct, lldb.eTypeClassUnion):
        return None
    tag = t.GetName().replace("struct ", "")
    if tag not in names:
        names.append(tag)
    return names


def _eval_address(target, expr):
    """(address, the names of the struct EXPR is or points to, or None for a number or any other pointer)."""
    try:
        return int(expr, 0), None
    except ValueError:
        pass
    frame = target.GetProcess().GetSelectedThread().GetSelectedFrame()
    v = frame.EvaluateExpression(expr) if frame.IsValid() else target.EvaluateExpression(expr)
    if not v.IsValid() or v.GetError().Fail():
        raise XwalkError("cannot evaluate %s: %s" % (expr, v.GetError().GetCString()))
    t = v.GetType()
    if t.GetCanonicalType().GetTypeClass() in (lldb.eTypeClassStruct, lldb.eTypeClassUnion):
        where = v.AddressOf()
        if not where.IsValid() or where.GetError().Fail():
            raise XwalkError("%s is a %s that is not in the target's memory: give a pointer to one, or an address" % (expr, t.GetName()))
        return where.GetValueAsUnsigned(), _struct_names(t)
    if t.IsPointerType():
        return v.GetValueAsUnsigned(), _struct_names(t.GetPointeeType())
    if t.GetCanonicalType().GetTypeClass() not in (lldb.eTypeClassBuiltin, lldb.eTypeClassEnumeration) or t.GetCanonicalType().GetBasicType() in (lldb.eBasicTypeFloat, lldb.eBasicTypeDouble, lldb.eBasicTypeLongDouble, lldb.eBasicTypeVoid):
        raise XwalkError("%s is a %s, not a pointer or an address" % (expr, t.GetName()))
    return v.GetValueAsSigned() if t.GetCanonicalType().GetBasicType() not in _UNSIGNED else v.GetValueAsUnsigned(), None


_UNSIGNED = (lldb.eBasicTypeUnsignedChar, lldb.eBasicTypeUnsignedShort, lldb.eBasicTypeUnsignedInt, lldb.eBasicTypeUnsignedLong, lldb.eBasicTypeUnsignedLongLong)


def _one_line(result, e):
    """Any failure of a command is one line in the result (XWALK_DEBUG=1 raises it, with its traceback)."""
    if isinstance(e, XwalkError):
        result.SetError(str(e))
    elif os.environ.get("XWALK_DEBUG"):
        raise e
    else:
        result.SetError("xwalk: internal error: %s: %s (set XWALK_DEBUG=1 for a traceback, and please report it)" % (type(e).__name__, e))


def _make_command(pack, view_index, doc):
    class ViewCommand(object):
        def __init__(self, debugger, internal_dict):
            pass

        def __call__(self, debugger, command, exe_ctx, result):
            try:
                target = LldbTarget(exe_ctx.GetTarget())
                try:
                    argv = shlex.split(command)
                except ValueError as e:
                    raise XwalkError("cannot read the arguments: %s" % e)
                opts = parse_command_args(argv)
                text = run_command(pack, view_index, opts, target, LldbSymbols(target.target), lambda e: _eval_address(target.target, e))
                result.AppendMessage(text)
            except Exception as e:
                _one_line(result, e)

        def get_short_help(self):
            return doc.split("\n")[0]

        def get_long_help(self):
            return doc

    return ViewCommand


def _make_check_command(pack):
    class CheckCommand(object):
        """Compares this extension's layout for the running build with lldb's own debug info."""

        def __init__(self, debugger, internal_dict):
            pass

        def __call__(self, debugger, command, exe_ctx, result):
            try:
                target = LldbTarget(exe_ctx.GetTarget())
                layout = select_layout(pack, target)
                types, globals_, errors = derive_layout_with(target.debug_types(), pack.spec)
                result.AppendMessage(check_layout(pack, layout, types, errors))
            except Exception as e:
                _one_line(result, e)

        def get_short_help(self):
            return "Compare the extension's layout with lldb's debug info"

    return CheckCommand


def xwalk_register(debugger, pack, module_name):
    module = sys.modules[module_name]
    for i, (command, view_index, doc) in enumerate(pack.commands):
        cls_name = "XwalkCommand%d" % i
        setattr(module, cls_name, _make_command(pack, view_index, doc))
        debugger.HandleCommand("command script add -o -c %s.%s %s" % (module_name, cls_name, command))
    setattr(module, "CheckCommand", _make_check_command(pack))  # the pack's own: two packs' modules share this one
    debugger.HandleCommand("command script add -o -c %s.CheckCommand xwalk-check" % module_name)
    register_printers(debugger, pack, module)


def register_printers(debugger, pack, module):
    """Type summaries and synthetic children in a category named after the pack (none for a pack without printers:
    lldb warns of an empty category enabled)."""
    if not pack.printers:
        return
    debugger.HandleCommand("type category define %s" % pack.name)
    target = debugger.GetSelectedTarget()
    for index, (type_name, kind, _) in enumerate(pack.printers):
        fn = "xwalk_summary_%d" % index
        setattr(module, fn, _summary_function(pack, index, kind))
        for name in _type_names(target, type_name):
            expand = "-e " if kind == "children" else ""  # -e: show the children under the summary
            debugger.HandleCommand("type summary add %s-w %s -F %s.%s %s" % (expand, pack.name, module.__name__, fn, name))
            if kind == "children":
                cls = "XwalkChildren%d" % index
                setattr(module, cls, _children_provider(pack, index))
                debugger.HandleCommand("type synthetic add -w %s -l %s.%s %s" % (pack.name, module.__name__, cls, name))
    debugger.HandleCommand("type category enable %s" % pack.name)


def _type_names(target, type_name):
    """The typedef name, and the struct's own name when the debug info tells it (ngx_pool_t, ngx_pool_s)."""
    names = [type_name]
    if target is not None and target.IsValid():
        t = target.FindFirstType(type_name)
        if t.IsValid():
            canonical = t.GetCanonicalType().GetName()
            if canonical and canonical != type_name and " " not in canonical and "(" not in canonical:
                names.append(canonical)
    return names


def _address(valobj):
    addr = valobj.GetLoadAddress()
    if addr == lldb.LLDB_INVALID_ADDRESS:
        raise XwalkError("a value not in memory")
    return addr


def _printer_output(pack, index, valobj):
    target = valobj.GetTarget()
    return printer_output(pack, index, _address(valobj), LldbTarget(target), LldbSymbols(target))


def _summary_function(pack, index, kind):
    def summary_fn(valobj, internal_dict):
        try:
            out = _printer_output(pack, index, valobj.GetNonSyntheticValue())
        except Exception as e:  # a summary must never break `frame variable`
            return "<xwalk: %s>" % e
        if kind == "children":
            return "%d element%s" % (len(out), "" if len(out) == 1 else "s")
        return '"%s"' % out if kind == "string" else out

    return summary_fn


def _children_provider(pack, index):
    class Children(object):
        def __init__(self, valobj, internal_dict):
            self.valobj = valobj
            self.items = []

        def update(self):
            try:
                self.items = _printer_output(pack, index, self.valobj)
            except Exception:
                self.items = []
            return False

        def has_children(self):
            return True

        def num_children(self):
            return len(self.items)

        def get_child_index(self, name):
            try:
                return int(name.strip("[]"))
            except ValueError:
                return -1

        def get_child_at_index(self, i):
            if not 0 <= i < len(self.items):
                return None
            void_p = self.valobj.GetTarget().GetBasicType(lldb.eBasicTypeVoid).GetPointerType()
            data = lldb.SBData.CreateDataFromUInt64Array(lldb.eByteOrderLittle, 8, [self.items[i] & 0xFFFFFFFFFFFFFFFF])
            return self.valobj.CreateValueFromData("[%d]" % i, data, void_p)

    return Children
