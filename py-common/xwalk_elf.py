# xwalk: the statics of an executable's C files, from its .symtab, where each
# file's local symbols follow that file's STT_FILE symbol. The same reading
# as sampler/symbols.ts, so gdb, lldb and xsample name the same statics.
import struct

_STT_OBJECT, _STT_FUNC, _STT_FILE = 1, 2, 4
_SHT_SYMTAB = 2
_SHN_UNDEF, _SHN_ABS = 0, 0xFFF1
MAX_NOTES = 16 * 1024 * 1024


class FileStatics(object):
    def __init__(self, path):
        self.file_of: dict[int, int] = {}  # st_value of a local function -> file index
        self.statics = {}  # (file index, name) -> st_value of a local object
        self.values = {}  # name -> st_value of a global function or object (to find the load bias)
        try:
            with open(path, "rb") as f:
                self._read(f.read())
        except (IOError, OSError, struct.error, IndexError, ValueError):
            self.file_of = {}

    def _read(self, data):
        if data[:4] != b"\x7fELF" or data[4] != 2:
            return
        shoff, = struct.unpack_from("<Q", data, 0x28)
        shentsize, shnum = struct.unpack_from("<HH", data, 0x3A)
        sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
        for sh in sections:
            if sh[1] != _SHT_SYMTAB:
                continue
            link, entsize = sh[6], sh[9] or 24
            stroff = sections[link][4]
            file = -1
            for at in range(sh[4], sh[4] + sh[5], entsize):
                name_off, info, _, shndx, value, _ = struct.unpack_from("<IBBHQQ", data, at)
                typ, bind = info & 0xF, info >> 4
                if typ == _STT_FILE:
                    file += 1
                    continue
                if name_off == 0 or shndx in (_SHN_UNDEF, _SHN_ABS):
                    continue
                name = data[stroff + name_off:data.index(b"\0", stroff + name_off)].decode("latin-1")
                if bind == 0 and file >= 0:
                    if typ == _STT_FUNC and value not in self.file_of:
                        self.file_of[value] = file
                    elif typ == _STT_OBJECT:
                        self.statics[(file, name)] = value
                elif bind != 0 and typ in (_STT_FUNC, _STT_OBJECT):
                    self.values.setdefault(name, value)

    def lookup(self, fn, name, bias):
        """The runtime address of static `name` of fn's file; None if none; False without a .symtab."""
        if not self.file_of:
            return False
        file = self.file_of.get(fn - bias)
        value = None if file is None else self.statics.get((file, name))
        return None if value is None else value + bias


def file_statics_of(symbols, path):
    """Memoised FileStatics and load bias for a debugger's symbol object (which must offer address(name))."""
    if getattr(symbols, "_file_statics", None) is None:
        st = FileStatics(path)
        bias = 0
        for name in ("main",) + tuple(st.values):
            a = symbols.address(name)
            if a is not None and name in st.values:
                bias = a - st.values[name]
                break
        symbols._file_statics = (st, bias)
    return symbols._file_statics


def open_regular(path):
    """Opens a regular file for reading without blocking (a FIFO or a device is refused, never waited on)."""
    import os
    import stat

    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError("%s: not a regular file" % path)
    return os.fdopen(fd, "rb")


def section_range(f, name):
    """(start, end) file offsets of the named section of the ELF file f; the whole file when it has no section headers."""
    f.seek(0, 2)
    size = f.tell()
    f.seek(0)
    head = f.read(64)
    if head[:4] != b"\x7fELF" or head[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    shoff, = struct.unpack_from("<Q", head, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", head, 0x3A)
    if shoff == 0 or shnum == 0 or shentsize < 64 or shnum * shentsize > 1 << 24:
        return 0, size
    f.seek(shoff)
    table = f.read(shnum * shentsize)
    headers = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
    strtab = headers[shstrndx]
    f.seek(strtab[4])
    names = f.read(min(strtab[5], 1 << 20))
    want = name.encode() + b"\0"
    for h in headers:
        if names[h[0]:h[0] + len(want)] == want:
            return h[4], min(h[4] + h[5], size)
    return 0, 0


def core_ranges(path, exe_path=None):
    """The readable ranges of an ELF core, as xsample lists them: every readable
    PT_LOAD, and every file mapping (NT_FILE) whose file can still be read
    (the executable's, through the file the debugger loaded)."""
    import os

    out = []
    # Only the headers and the notes are read (a core may be gigabytes; a note that claims more than
    # any real one is skipped, as xsample refuses it).
    with open(path, "rb") as f:
        head = f.read(64)
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        f.seek(phoff)
        table = f.read(phnum * phentsize)
        for i in range(phnum):
            p_type, p_flags, _, p_vaddr, _, _, p_memsz, _ = struct.unpack_from("<IIQQQQQQ", table, i * phentsize)
            if p_type == 1 and p_flags & 4 and p_memsz > 0:
                out.append((p_vaddr, p_vaddr + p_memsz))
        f.seek(0)
        notes = _core_notes(f)
    for start, end, _, fname in _nt_file(notes):
        if fname.endswith(" (deleted)"):
            continue
        readable = os.access(fname, os.R_OK) or (exe_path is not None and os.path.basename(fname) == os.path.basename(exe_path))
        if readable:
            out.append((start, end))
    return out


def _core_notes(f):
    """The PT_NOTE blobs of the core open in f (a note that claims more than any real one is skipped)."""
    head = f.read(64)
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    f.seek(phoff)
    table = f.read(phnum * phentsize)
    notes = []
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz, _, _ = struct.unpack_from("<IIQQQQQQ", table, i * phentsize)
        if p_type == 4 and p_filesz <= MAX_NOTES:
            f.seek(p_offset)
            notes.append(f.read(p_filesz))
    return notes


def _nt_file(notes):
    """The file mappings of a core's NT_FILE note: a list of (start, end, file offset, path)."""
    out = []
    for blob in notes:
        at = 0
        while at + 12 <= len(blob):
            namesz, descsz, ntype = struct.unpack_from("<III", blob, at)
            name = blob[at + 12:at + 12 + namesz].rstrip(b"\0")
            desc_at = at + 12 + ((namesz + 3) & ~3)
            desc = blob[desc_at:desc_at + descsz]
            at = desc_at + ((descsz + 3) & ~3)
            if name != b"CORE" or ntype != 0x46494C45:  # NT_FILE
                continue
            count, page_size = struct.unpack_from("<QQ", desc, 0)
            names = desc[16 + count * 24:].split(b"\0")
            for j in range(count):
                start, end, page = struct.unpack_from("<QQQ", desc, 16 + j * 24)
                out.append((start, end, page * page_size, names[j].decode("utf-8", "replace")))
    return out


def core_file_mappings(path):
    """The file mappings a core's NT_FILE note lists: (start, end, file offset, path), as xsample reads them."""
    with open(path, "rb") as f:
        return _nt_file(_core_notes(f))


def elf_load_bias(f, mappings):
    """Runtime minus link-time address of the ELF object open in f, mapped by mappings ((start, end, file offset)
    of its file): its first PT_LOAD's page is where the mapping of that file offset starts (0 for an ET_EXEC), as
    sampler/proc-maps.ts loadBias. None when f is not a 64-bit ELF object or that page is not mapped."""
    head = f.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
        return None
    e_type, = struct.unpack_from("<H", head, 0x10)
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    if e_type == 2:
        return 0
    if phentsize < 56 or phnum > 4096:
        return None
    f.seek(phoff)
    table = f.read(phnum * phentsize)
    for i in range(len(table) // phentsize):
        p_type, _, p_offset, p_vaddr = struct.unpack_from("<IIQQ", table, i * phentsize)
        if p_type != 1:
            continue
        for start, _, offset in mappings:
            if offset == p_offset - p_offset % 4096:
                return start - (p_vaddr - p_vaddr % 4096)
        return None
    return None
