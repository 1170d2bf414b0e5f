# xwalk for lldb: raw memory through process.ReadMemory (target.ReadMemory
# for what a core lacks), the pack's layout chosen by the executable's
# build-id, one command per view. Inlined into each generated extension
# after py-common/.
import shlex
import sys

import lldb


class LldbTarget(object):
    """The selected target's process: live or a core."""

    def __init__(self, exe_ctx):
        self.target = exe_ctx.GetTarget() if exe_ctx is not None else lldb.debugger.GetSelectedTarget()
        self.process = self.target.GetProcess()
        if not self.target.IsValid() or not self.process.IsValid():
            raise XwalkError("no process: attach lldb to a process (-p PID) or load a core (--core FILE)")  # noqa: F821
        self.pid = self.process.GetProcessID() or None
        exe = self.target.GetExecutable()
        self.exe = exe.fullpath if exe.IsValid() else None
        module = self.target.FindModule(exe) if exe.IsValid() else None
        uuid = module.GetUUIDString() if module is not None and module.IsValid() else None
        self.build_id = uuid.replace("-", "").lower() if uuid else None

    def _read(self, addr, n):
        err = lldb.SBError()
        data = self.process.ReadMemory(addr, n, err)
        return data if err.Success() and data is not None and len(data) == n else None

    def read_chunk(self, addr, n):
        data = self._read(addr, n)
        if data is not None:
            return data
        out = b""
        while len(out) < n:
            a = addr + len(out)
            want = min(4096 - a % 4096, n - len(out))
            piece = self._read(a, want) or self._read_file(a, want)
            if not piece:
                break
            out += piece
        return out

    def _file_segments(self):
        """(start, end, path, file offset) of every loaded segment backed by a file, page-rounded as mapped."""
        if getattr(self, "_segments", None) is None:
            self._segments = []
            for m in range(self.target.GetNumModules()):
                module = self.target.GetModuleAtIndex(m)
                path = module.GetFileSpec().fullpath
                for i in range(module.GetNumSections()):
                    sec = module.GetSectionAtIndex(i)
                    start = sec.GetLoadAddress(self.target)
                    if start == lldb.LLDB_INVALID_ADDRESS or sec.GetFileByteSize() == 0 or not sec.GetPermissions() & lldb.ePermissionsReadable:
                        continue
                    end = start + sec.GetFileByteSize()
                    end += -end % 4096
                    self._segments.append((start, end, path, sec.GetFileOffset()))
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
                if name not in ("[vvar]", "[vsyscall]", "[vvar_vclock]"):
                    out.append((info.GetRegionBase(), info.GetRegionEnd()))
        if self.process.GetPluginName() == "elf-core":
            out.extend((start, end) for start, end, _, _ in self._file_segments())
        return out


class LldbSymbols(object):
    def __init__(self, target):
        self.target = target

    def address(self, name):
        found = self.target.FindSymbols(name)
        for i in range(found.GetSize()):
            sym = found.GetContextAtIndex(i).GetSymbol()
            if sym.IsValid():
                a = sym.GetStartAddress().GetLoadAddress(self.target)
                if a != lldb.LLDB_INVALID_ADDRESS:
                    return a
        return None

    def symbolize(self, addr):
        if addr == 0:
            return None
        sym = self.target.ResolveLoadAddress(addr).GetSymbol()
        if not sym.IsValid() or not sym.GetName():
            return None
        return sym.GetName(), addr - sym.GetStartAddress().GetLoadAddress(self.target)


def _eval_address(target, expr):
    try:
        return int(expr, 0)
    except ValueError:
        pass
    frame = target.GetProcess().GetSelectedThread().GetSelectedFrame()
    v = frame.EvaluateExpression(expr) if frame.IsValid() else target.EvaluateExpression(expr)
    if not v.IsValid() or v.GetError().Fail():
        raise XwalkError("cannot evaluate %s: %s" % (expr, v.GetError().GetCString()))  # noqa: F821
    if v.GetType().GetCanonicalType().GetTypeClass() in (lldb.eTypeClassStruct, lldb.eTypeClassUnion):
        v = v.AddressOf()
    return v.GetValueAsUnsigned()


def _make_command(pack, view_index, doc):
    class ViewCommand(object):
        def __init__(self, debugger, internal_dict):
            pass

        def __call__(self, debugger, command, exe_ctx, result):
            try:
                target = LldbTarget(exe_ctx)
                opts = parse_command_args(shlex.split(command))  # noqa: F821
                text = run_command(pack, view_index, opts, target, LldbSymbols(target.target), lambda e: _eval_address(target.target, e))  # noqa: F821
                result.AppendMessage(text)
            except XwalkError as e:  # noqa: F821
                result.SetError(str(e))

        def get_short_help(self):
            return doc.split("\n")[0]

        def get_long_help(self):
            return doc

    return ViewCommand


class CheckCommand(object):
    """Compares this extension's layout for the running build with lldb's own debug info."""

    def __init__(self, debugger, internal_dict):
        pass

    def __call__(self, debugger, command, exe_ctx, result):
        try:
            target = LldbTarget(exe_ctx)
            layout = select_layout(CheckCommand.pack, target)  # noqa: F821
            types, globals_, errors = derive_layout(CheckCommand.pack.spec)  # noqa: F821
            result.AppendMessage(check_layout(CheckCommand.pack, layout, types, errors))  # noqa: F821
        except XwalkError as e:  # noqa: F821
            result.SetError(str(e))

    def get_short_help(self):
        return "Compare the extension's layout with lldb's debug info"


def xwalk_register(debugger, pack, module_name):
    module = sys.modules[module_name]
    for i, (command, view_index, doc) in enumerate(pack.commands):
        cls_name = "XwalkCommand%d" % i
        setattr(module, cls_name, _make_command(pack, view_index, doc))
        debugger.HandleCommand("command script add -o -c %s.%s %s" % (module_name, cls_name, command))
    CheckCommand.pack = pack
    debugger.HandleCommand("command script add -o -c %s.CheckCommand xwalk-check" % module_name)
