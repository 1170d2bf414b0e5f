# xwalk: the names a stripped object lost, from a recovered symbol table (core/symbol-table.ts, made by `xgen
# symbols --for FILE`), as xsample reads them (sampler/recovered-symbols.ts): looked up by the object's build-id in
# the user's cache ($XDG_CACHE_HOME or ~/.cache, xwalk/symbols/<build-id>.json, used only if no one else could have
# written it) and in the folders of XWALK_PACKS (<pack>/symbols/<build-id>.json, trusted as packs are); validated by
# the same rules (symbol_table_problem, a port of symbolTableProblem) and used only for the build-id it names.
import bisect
import json
import os
import stat
import struct

SYMBOL_TABLE_VERSION = 1
_MAX_SYMBOLS = 2000000
_MAX_NAME = 4096
_MAX_TABLE_BYTES = 256 << 20
_METHODS = ("rebuild", "matched", "dbgsym", "debuginfod")
_HEX = "0123456789abcdef"
_UNSIZED_REACH = 64 * 1024


def _json(v):
    """v as JSON.stringify writes it (no spaces), for messages."""
    return json.dumps(v, separators=(",", ":"))


def _is_count(v):
    # A JSON number that is a non-negative safe integer (JavaScript's Number.isSafeInteger): 3.0 is one, True is not.
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return False
    return v == v and v >= 0 and v <= 2 ** 53 - 1 and float(v).is_integer()


def _printable_name(n):
    return isinstance(n, str) and n != "" and len(n) <= _MAX_NAME and not any(ord(c) < 0x20 for c in n)


def symbol_table_problem(t):
    """Why t (parsed JSON) is not a symbol table this reader can use, or None: the rules of core/symbol-table.ts
    symbolTableProblem, word for word."""
    if not isinstance(t, dict):
        return "not a JSON object"
    v = t.get("xwalk_symbols")
    if isinstance(v, bool) or v != SYMBOL_TABLE_VERSION:
        return "xwalk_symbols is %s, this reader knows %d" % (_json(v) if "xwalk_symbols" in t else "undefined", SYMBOL_TABLE_VERSION)
    b = t.get("build_id")
    if not isinstance(b, str) or not 2 <= len(b) <= 128 or any(c not in _HEX for c in b):
        return "build_id is not a hex string"
    for k in ("file", "from", "verified"):
        if not isinstance(t.get(k), str):
            return "%s is not a string" % k
    if t.get("method") not in _METHODS or not isinstance(t.get("method"), str):
        return "method %s is unknown" % (_json(t["method"]) if "method" in t else "undefined")
    for k in ("matched", "total"):
        if k in t and not _is_count(t[k]):
            return "%s is not a count" % k
    syms = t.get("symbols")
    if not isinstance(syms, list):
        return "symbols is not a list"
    if len(syms) > _MAX_SYMBOLS:
        return "%d symbols (at most %d)" % (len(syms), _MAX_SYMBOLS)
    for i, s in enumerate(syms):
        why = _symbol_problem(s)
        if why:
            return "symbols[%d]: %s" % (i, why)
    return None


def _symbol_problem(s):
    if not isinstance(s, (dict, list)):
        return "not an object"
    if isinstance(s, list):
        s = {}  # a JSON array is an object to JavaScript: it has no name
    name = s.get("name")
    if not _printable_name(name):
        return "name is not a printable string"
    if not _is_count(s.get("value")) or not _is_count(s.get("size")):
        return "%s: value and size must be non-negative integers" % name
    if s.get("kind") not in ("func", "object") or not isinstance(s.get("kind"), str):
        return "%s: kind is not func or object" % name
    if s.get("bind") not in ("global", "local", "weak") or not isinstance(s.get("bind"), str):
        return "%s: bind is not global, local or weak" % name
    if "file" in s and (not isinstance(s["file"], str) or len(s["file"]) > _MAX_NAME):
        return "%s: file is not a string" % name
    return None


_BIND_RANK = {"global": 0, "weak": 1, "local": 2}


class RecoveredTable(object):
    """A validated table's lookups at link-time addresses (sampler/symbols.ts SymbolTable's rules): a name's
    address (a global wins over a weak, a weak over a static of the same name), and the function or object whose
    extent holds an address (at equal starts a sized, then a global one)."""

    def __init__(self, data, path):
        self.path = path
        self.build_id = data["build_id"]
        self.symbols = data["symbols"]
        self.files = None
        self.by_name: dict[str, tuple[int, int]] = {}
        located = []
        for s in data["symbols"]:
            rank = _BIND_RANK[s["bind"]]
            name, value, size = s["name"], int(s["value"]), int(s["size"])
            known = self.by_name.get(name)
            if known is None or rank < known[1]:
                self.by_name[name] = (value, rank)
            located.append((value, 0 if size > 0 else 1, rank, size, name))
        located.sort()
        self.starts = [x[0] for x in located]
        self.located = located

    def file_static(self, fn, name):
        """The link-time address of the static object name of the C file that defines the local function at link-time
        address fn: an int, None when that file has none, False when the table gives no files (SymbolTable.fileStatic)."""
        if self.files is None:
            file_of: dict[int, int] = {}
            statics: dict[tuple[int, str], int] = {}
            for s in self.symbols:
                if s["bind"] == "local" and s.get("file") is not None:
                    if s["kind"] == "func":
                        file_of.setdefault(int(s["value"]), s["file"])
                    else:
                        statics[(s["file"], s["name"])] = int(s["value"])
            self.files = (file_of, statics)
        file_of, statics = self.files
        if not file_of:
            return False
        file = file_of.get(fn)
        return None if file is None else statics.get((file, name))

    def address(self, name):
        """The link-time address of name, or None."""
        found = self.by_name.get(name)
        return None if found is None else found[0]

    def symbol_at(self, vaddr):
        """(name, offset) of the symbol whose extent holds link-time address vaddr, or None."""
        i = bisect.bisect_right(self.starts, vaddr) - 1
        if i < 0:
            return None
        start = self.starts[i]
        first = bisect.bisect_left(self.starts, start)
        _, _, _, size, name = self.located[first]
        offset = vaddr - start
        return (name, offset) if offset < (size if size > 0 else _UNSIZED_REACH) else None


def _me():
    return os.geteuid()


def _untrusted(st, what, owners):
    """Why st (from lstat) of `what` cannot be trusted, or None (core/trust.ts untrusted)."""
    if stat.S_ISLNK(st.st_mode):
        return "%s is a symlink" % what
    if st.st_uid not in owners:
        return "%s belongs to uid %d, not to %s" % (what, st.st_uid, "root or you" if len(owners) > 1 and 0 in owners else "you")
    if st.st_mode & 0o022:
        return "%s can be written by others (mode %o)" % (what, st.st_mode & 0o777)
    return None


def symbols_cache_dir():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "xwalk", "symbols")


def _cache_problem(folder):
    """Why the cache folder may not be used (generators/layout-cache.ts TrustedCache's rules), or None; "" when it does not exist."""
    xwalk = os.path.dirname(folder)
    base = os.path.dirname(xwalk)
    try:
        b = os.stat(base)
        sticky = bool(b.st_mode & stat.S_ISVTX)
        if not (sticky and b.st_uid == 0) and b.st_uid != _me():
            return "%s belongs to uid %d, not to you" % (base, b.st_uid)
        if not sticky and b.st_mode & 0o022:
            return "%s can be written by others and is not sticky" % base
        for d in (xwalk, folder):
            why = _untrusted(os.lstat(d), d, (_me(),))
            if why:
                return why
    except OSError:
        return ""
    return None


def _pack_path_problem(top, file):
    """Why file inside the folder of packs top cannot be trusted (core/packs.ts packPathProblem), or None."""
    rel = os.path.relpath(file, top)
    if rel.startswith(".."):
        return "%s is outside %s" % (file, top)
    step = top
    for part in [""] + ([] if rel == "." else rel.split(os.sep)):
        step = os.path.join(step, part) if part else step
        try:
            st = os.lstat(step)
        except OSError:
            return None
        why = _untrusted(st, step, (0, _me()))
        if why:
            return why
    return None


def _read_table_file(path, owners):
    """The bytes of a regular file owned by one of owners that no one else can write, never through a symlink; None
    when it is not there; raises ValueError saying why it may not be used."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        why = _untrusted(st, path, owners)
        if why:
            raise ValueError(why)
        if st.st_size > _MAX_TABLE_BYTES:
            raise ValueError("%d bytes (a symbol table has at most %d)" % (st.st_size, _MAX_TABLE_BYTES))
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def _candidates(build_id):
    """(path, owners, why not) of each file a table for build_id may be in, first first: the user's cache, then each
    folder of XWALK_PACKS's packs."""
    name = build_id + ".json"
    folder = symbols_cache_dir()
    why = _cache_problem(folder)
    yield os.path.join(folder, name), (_me(),), why
    for top in [d for d in os.environ.get("XWALK_PACKS", "").split(":") if d]:
        top = os.path.realpath(top)
        try:
            packs = sorted(os.listdir(top))
        except OSError:
            continue
        for pack in packs:
            file = os.path.join(top, pack, "symbols", name)
            if os.path.exists(file):
                yield file, (0, _me()), _pack_path_problem(top, file)


def table_misfit(t, where, loads):
    """Why table t (valid, of the object's build-id) cannot name the object at path where whose loaded segments are loads
    ((vaddr, memsz, flags) each), or None: a symbol outside them, or a function outside its code (as generators/symbols/
    cache.ts tableMisfit)."""
    for s in t["symbols"]:
        seg = next((l for l in loads if l[0] <= s["value"] and s["value"] + s["size"] <= l[0] + l[1]), None)
        if seg is None:
            return "%s at 0x%x is outside %s's loaded segments" % (s["name"], s["value"], where)
        if s["kind"] == "func" and not seg[2] & _PF_X:
            return "function %s at 0x%x is not in %s's code" % (s["name"], s["value"], where)
    return None


def find_recovered_table(build_id, warn, loads=None, where=None):
    """The first valid RecoveredTable for the object of build-id build_id (at path where, its loaded segments loads when
    known), or None; a file that may not be used, is not a valid table, names another build-id or places a symbol
    outside the object is passed over with one line (warn) naming it."""
    if not build_id:
        return None
    for path, owners, why in _candidates(build_id):
        if why == "":
            continue
        if why:
            warn("not using the symbol table cache: %s" % why if path.startswith(symbols_cache_dir()) else "skipping %s: %s" % (path, why))
            continue
        try:
            data = _read_table_file(path, owners)
        except ValueError as e:
            warn("ignoring %s: %s" % (path, e))
            continue
        if data is None:
            continue
        try:
            t = json.loads(data.decode("utf-8"))
        except ValueError as e:
            warn("ignoring %s, which is not a symbol table: %s" % (path, e))
            continue
        problem = symbol_table_problem(t)
        if problem:
            warn("ignoring %s, which is not a valid symbol table: %s" % (path, problem))
            continue
        if t["build_id"] != build_id:
            warn("ignoring %s: it names build-id %s, the object's is %s" % (path, t["build_id"], build_id))
            continue
        misfit = table_misfit(t, where, loads) if loads is not None else None
        if misfit:
            warn("ignoring %s: %s" % (path, misfit))
            continue
        return RecoveredTable(t, path)
    return None


_SHT_SYMTAB, _SHT_NOTE, _PT_NOTE, _PT_LOAD, _PF_X = 2, 7, 4, 1, 1
_NT_GNU_BUILD_ID = 3


def elf_symtab_and_build_id(f):
    """(has a .symtab, GNU build-id as lowercase hex or None) of the 64-bit ELF file f (open for reading bytes)."""
    f.seek(0)
    head = f.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    phoff, shoff = struct.unpack_from("<QQ", head, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from("<HHHH", head, 0x36)
    has_symtab = False
    if shoff and shnum and shentsize >= 64 and shnum * shentsize <= 1 << 24:
        f.seek(shoff)
        table = f.read(shnum * shentsize)
        has_symtab = any(struct.unpack_from("<I", table, i * shentsize + 4)[0] == _SHT_SYMTAB for i in range(len(table) // shentsize))
    build_id = None
    if phoff and phnum and phentsize >= 56 and phnum * phentsize <= 1 << 20:
        f.seek(phoff)
        table = f.read(phnum * phentsize)
        for i in range(len(table) // phentsize):
            p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", table, i * phentsize)
            if p_type != _PT_NOTE or p_filesz > 1 << 20:
                continue
            f.seek(p_offset)
            notes = f.read(p_filesz)
            at = 0
            while at + 12 <= len(notes):
                namesz, descsz, ntype = struct.unpack_from("<III", notes, at)
                name_at = at + 12
                desc_at = name_at + ((namesz + 3) & ~3)
                if ntype == _NT_GNU_BUILD_ID and notes[name_at:name_at + namesz] == b"GNU\0" and descsz > 0:
                    build_id = "".join("%02x" % c for c in bytearray(notes[desc_at:desc_at + descsz]))
                    break
                at = desc_at + ((descsz + 3) & ~3)
            if build_id:
                break
    return has_symtab, build_id


def elf_loads(f):
    """The PT_LOAD segments of the 64-bit ELF file f (open for reading bytes): (vaddr, memsz, flags) each."""
    f.seek(0)
    head = f.read(64)
    if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:
        raise ValueError("not a 64-bit ELF file")
    phoff, = struct.unpack_from("<Q", head, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
    if not phoff or not phnum or phentsize < 56 or phnum * phentsize > 1 << 20:
        return []
    f.seek(phoff)
    table = f.read(phnum * phentsize)
    out = []
    for i in range(len(table) // phentsize):
        p_type, p_flags, _, p_vaddr, _, _, p_memsz = struct.unpack_from("<IIQQQQQ", table, i * phentsize)
        if p_type == _PT_LOAD:
            out.append((p_vaddr, p_memsz, p_flags))
    return out
