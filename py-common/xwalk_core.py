# xwalk runtime core: one snapshot of raw memory, and what the generated
# walks call beyond loading bytes (text, symbols, the clock, messages).
# Debugger-neutral: gdb-py/ and lldb-py/ supply read_chunk() and ranges.
# The walks themselves are generated from the loop IR (generators/lower/),
# as xsample's are, so gdb, lldb and xsample print the same.
import re
import struct
import time

PAGE = 4096
CHUNK = 64 * 1024
MASK64 = 0xFFFFFFFFFFFFFFFF
MAX_STRING = 4096
MAX_CSTRING = 1024
_U64 = struct.Struct("<Q").unpack_from
_INT = {
    (1, False): struct.Struct("<B").unpack_from,
    (2, False): struct.Struct("<H").unpack_from,
    (4, False): struct.Struct("<I").unpack_from,
    (8, False): _U64,
    (1, True): struct.Struct("<b").unpack_from,
    (2, True): struct.Struct("<h").unpack_from,
    (4, True): struct.Struct("<i").unpack_from,
    (8, True): struct.Struct("<q").unpack_from,
}


class XwalkError(Exception):
    """A clear, one-line problem for the user (unknown build, bad argument)."""


class Fault(Exception):
    def __init__(self, addr, reason):
        Exception.__init__(self, "%s: %s" % (hex(addr), reason))
        self.addr = addr


class WalkError(Exception):
    def __init__(self, kind, message):
        Exception.__init__(self, message)
        self.kind = kind


class Snapshot(object):
    """Reads through a page cache: each page once. The first miss in a 64 KiB window (clipped to its range)
    reads its page; a second one reads the whole window, as xsample's snapshot does: a sparse walk costs a
    page a node, not 64 KiB, and a dense one a few reads a window. Bytes read are never read again."""

    def __init__(self, read_chunk, ranges):
        self.read_chunk = read_chunk  # (addr, n) -> bytes, possibly short; never raises
        self.ranges = merge_ranges(ranges) if ranges is not None else None
        self.pages = {}  # page number -> its bytes (memoryview), or None when unreadable
        self.qpages = {}  # page number -> the same bytes as 64-bit words (memoryview cast to "Q")
        self.qchunks = {}  # addr >> 16 -> a whole aligned 64 KiB chunk as words: the fast path
        self.probed = set()  # the windows (their first address) whose first missed page was read alone
        self.reads = 0

    def _range_of(self, addr):
        lo, hi = 0, len(self.ranges) - 1
        while lo <= hi:
            mid = (lo + hi) // 2
            start, end = self.ranges[mid]
            if addr < start:
                hi = mid - 1
            elif addr >= end:
                lo = mid + 1
            else:
                return start, end
        return None

    def _fill(self, page, addr):
        base = page * PAGE
        # Without a list of ranges (a gdb core), every chunk is tried and failures fall back to pages.
        r = self._range_of(base) if self.ranges is not None else (base - base % CHUNK, base - base % CHUNK + CHUNK)
        if r is None:
            self.pages[page] = None
            raise Fault(addr, "not in any mapping")
        start = max(r[0], base - base % CHUNK)
        end = min(r[1], start + CHUNK)
        if start not in self.probed and end - start > PAGE:
            self.probed.add(start)
            start, end = base, base + PAGE
        self.reads += 1
        data = self._with_kept(start, self.read_chunk(start, end - start))
        view = memoryview(data)
        got = len(data) - len(data) % PAGE
        if start % CHUNK == 0 and len(data) == CHUNK and (start >> 16) not in self.qchunks:
            self.qchunks[start >> 16] = view.cast("Q")
        for a in range(start, start + got, PAGE):
            p = a // PAGE
            if p not in self.pages:
                self.pages[p] = view[a - start:a - start + PAGE]
                self.qpages[p] = self.pages[p].cast("Q")
        if page not in self.pages:
            self.reads += 1
            one = self.read_chunk(base, PAGE)
            self.pages[page] = memoryview(one) if len(one) == PAGE else None
            if self.pages[page] is not None:
                self.qpages[page] = self.pages[page].cast("Q")
        buf = self.pages[page]
        if buf is None:
            raise Fault(addr, "unreadable")
        return buf

    def _with_kept(self, start, data):
        """data read at start, with the bytes of pages read before put back: later reads see what the first did."""
        kept = [p for p in range(start // PAGE, (start + len(data)) // PAGE) if self.pages.get(p) is not None]
        if not kept:
            return data
        out = bytearray(data)
        for p in kept:
            off = p * PAGE - start
            out[off:off + PAGE] = self.pages[p]
        return bytes(out)

    def _page(self, addr):
        if addr < 0 or addr > MASK64:
            raise Fault(addr & MASK64, "not in any mapping")
        page = addr >> 12
        buf = self.pages.get(page)
        if buf is None:
            if page in self.pages:
                mapped = self.ranges is None or self._range_of(addr) is not None
                raise Fault(addr, "unreadable" if mapped else "not in any mapping")
            buf = self._fill(page, addr)
        return buf

    def u64(self, addr):
        if not addr & 7:
            q = self.qchunks.get(addr >> 16)
            if q is not None:
                return q[(addr & 65535) >> 3]
            q = self.qpages.get(addr >> 12)
            if q is not None:
                return q[(addr & 4095) >> 3]
        if addr < 0:
            raise Fault(addr & MASK64, "not in any mapping")
        page = addr >> 12
        buf = self.pages.get(page)
        if buf is None:
            buf = self._page(addr)
        off = addr & 4095
        if off <= 4088:
            return _U64(buf, off)[0]
        return int.from_bytes(self.bytes(addr, 8), "little")

    def int(self, addr, size, signed):
        if addr < 0:
            raise Fault(addr & MASK64, "not in any mapping")
        buf = self._page(addr)
        off = addr & 4095
        if off <= PAGE - size:
            return _INT[(size, signed)](buf, off)[0]
        return int.from_bytes(self.bytes(addr, size), "little", signed=signed)

    def u8(self, addr):
        return self.int(addr, 1, False)

    def bytes(self, addr, n):
        out = bytearray()
        while len(out) < n:
            a = addr + len(out)
            buf = self._page(a)
            off = a & 4095
            take = min(PAGE - off, n - len(out))
            out += buf[off:off + take]
        return bytes(out)


def int64(v):
    """An unsigned 64-bit value read as two's complement."""
    return v - (1 << 64) if v >= 1 << 63 else v


def merge_ranges(ranges):
    """Sorted, non-overlapping (start, end) ranges: overlapping or touching ones are joined."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def escape_bytes(b):
    """Printable ASCII kept; backslash and everything else as \\xNN (as sampler/sampling/walk-runtime.ts escapeBytes)."""
    return "".join(chr(c) if 0x20 <= c < 0x7F and c != 0x5C else "\\x%02x" % c for c in bytearray(b))


class Runtime(object):
    """What the generated walks call (sampler/sampling/walk-runtime.ts is the same for xsample)."""

    def __init__(self, snap, symbols, max_nodes=10000000, max_total=None):
        self.m = snap
        self.symbols = symbols  # object with address(name), symbolize(addr), file_static(fn, name) and object_at(addr)
        self.max_nodes = max_nodes
        self.max_total = max_total if max_total is not None else max_nodes * 10
        self.visited = 0
        self.clock = None  # a ClockReading when the view reads the clock
        self.registers = None  # fn(name) -> int or None: the target's first thread's registers, where the debugger has them
        self._registers_read = {}
        self.row = {}  # what a view's let: names, for the row being read (memo)
        self.sample = {}  # what a walk computes once for the whole sample (shared): a breadth-first reach

    def register(self, name):
        """A register of the target's first thread, or 0 where it is not known (register() in a schema). Asked of the
        debugger once a sample: a walk reads the same register again and again."""
        if name not in self._registers_read:
            value = self.registers(name) if self.registers else None
            self._registers_read[name] = 0 if value is None else value
        return self._registers_read[name]

    @staticmethod
    def is_failure(e):
        """Whether e is a walk's failure (a walk error, a read that faulted): what a catch of the loop IR keeps, and
        nothing else."""
        return isinstance(e, (Fault, WalkError))

    @staticmethod
    def fail(kind, msg, args):
        """A walk error, its message filled in: {i} is the i-th argument, as hex or decimal."""
        return WalkError(kind, _PLACEHOLDER.sub(lambda g: _arg(args[int(g.group(1))]), msg))

    def clock_value(self, name):
        """What now_ms() or monotonic_ms() reads in this sample (sampler/sampling/clock.ts)."""
        v = getattr(self.clock, name, None)
        if v is None:
            why = self.clock.why.get(name) if self.clock is not None else None
            raise WalkError("unavailable", why or "%s(): internal: no clock was read for this sample" % name)
        return v

    def global_addr(self, name):
        """A global's address; -1 when the symbol tables lack it. When the executable is stripped and no recovered
        symbol table names its globals, the walk fails here with the line that says so and what to run (as
        sampler/sampling/walk-runtime.ts global())."""
        a = self.symbols.address(name)
        recover = getattr(self.symbols, "recover", None)
        if a is None and recover is not None and recover():
            a = self.symbols.address(name)
        if a is not None:
            return a
        why = getattr(self.symbols, "why_missing", None)
        why = why(name) if why else None
        if why:
            raise WalkError("corrupt", "the symbol %s is not in the binary's symbol tables: %s" % (name, why))
        return -1

    @staticmethod
    def hex_digits(n):
        """A non-negative integer in lowercase hexadecimal, no prefix (an IPv6 group in sockaddr_str())."""
        return "%x" % n

    def new_row(self):
        """What a view's let: names is computed at most once per row: forgotten at each row."""
        self.row = {}

    def memo(self, key, fn, *args):
        """The value of fn for this row, computed once (a call that fails is not kept)."""
        if key in self.row:
            return self.row[key]
        value = self.row[key] = fn(self, *args)
        return value

    def shared(self, key, fn, *args):
        """The value of fn for this sample, computed once; a walk failure is kept too (the sample's memory does not
        change: every row that asks would fail the same way, after spending the budget on it again)."""
        k = (key,) + args
        if k not in self.sample:
            try:
                self.sample[k] = (True, fn(self, *args))
            except (Fault, WalkError) as e:
                self.sample[k] = (False, e)
        ok, kept = self.sample[k]
        if not ok:
            raise kept
        return kept

    def cat(self, *parts):
        """Texts and integers joined, the integers in decimal (cat() in a schema)."""
        return "".join(p if isinstance(p, str) else str(p) for p in parts)

    def symbol(self, addr):
        """The ELF symbol at addr (name+0xoff); else the object mapped there and the address in its file
        (ngx_http_lua_module.so+0x1a2b3, in_object); else NULL for 0; else the bare address (anonymous memory,
        JIT code, no mapping). As sampler/sampling/walk-runtime.ts symbol()."""
        s = self.symbols.symbolize(addr)
        if s:
            return "%s+%s" % (s[0], hex(s[1])) if s[1] else s[0]
        if addr == 0:
            return "NULL"
        o = self.symbols.object_at(addr)
        return in_object(o[0], addr, o[1]) if o else hex64(addr)

    def string(self, data, length):
        if not length > 0:
            return ""
        n = min(length, MAX_STRING)
        s = escape_bytes(self.m.bytes(data, n))
        return s + "..." if n < length else s

    def cstring(self, data):
        if data == 0:
            return ""
        out = bytearray()
        for i in range(MAX_CSTRING):
            c = self.m.u8(data + i)
            if c == 0:
                return escape_bytes(out)
            out.append(c)
        return escape_bytes(out) + "..."

    def cstringn(self, data, n):
        """The text of a char[n] at data: up to its first NUL, or all n bytes (cut at 4096 with "..."), escaped."""
        take = min(n, MAX_STRING)
        b = self.m.bytes(data, take)
        nul = b.find(b"\0")
        s = escape_bytes(b if nul < 0 else b[:nul])
        return s + "..." if nul < 0 and take < n else s

    def file_static(self, fn, name):
        """The static `name` of fn's C file: its address, 0 when there is none, -1 when the binary has no .symtab."""
        a = self.symbols.file_static(fn, name)
        if a is False:
            return -1
        return a or 0

    def field_int(self, base, f, signed):
        off, size, bit, bits = f
        if bits:
            return self.bitfield(base + off, bit, bits, signed)
        if size == 8 and not signed:
            return self.m.u64(base + off)
        return self.m.int(base + off, size, signed)

    def bitfield(self, addr, bit, bits, signed):
        nbytes = (bit + bits + 7) // 8
        v = (int.from_bytes(self.m.bytes(addr, nbytes), "little") >> bit) & ((1 << bits) - 1)
        return v - (1 << bits) if signed and v >= 1 << (bits - 1) else v

    @staticmethod
    def div(a, b):
        """C's division: toward zero (the generated code checks b first)."""
        q = abs(a) // abs(b)
        return q if (a >= 0) == (b >= 0) else -q

    @staticmethod
    def mod(a, b):
        r = abs(a) % abs(b)
        return r if a >= 0 else -r

    @staticmethod
    def bitop(op, a, b):
        """64-bit bit operations; a result with bit 63 set is signed, as in sampler/exact.ts."""
        x, y = int(a) & MASK64, int(b) & MASK64
        if op in ("<<", ">>") and y >= 64:
            return 0
        if op == "&":
            r = x & y
        elif op == "|":
            r = x | y
        elif op == "^":
            r = x ^ y
        elif op == "<<":
            r = (x << y) & MASK64
        else:
            r = x >> y
        return int64(r)

    @staticmethod
    def bitnot(a):
        return int64(~int(a) & MASK64)


_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def _arg(a):
    v, how = a
    return hex64(v) if how == "hex" else str(v)


def in_object(name, addr, bias):
    """An address no symbol names, inside ELF object name (a file name) loaded with bias (runtime minus link-time
    address): name+0xVADDR, the address in the file's own address space, what addr2line -e FILE and objdump
    --start-address take (sampler/symbols.ts inObject: the same text)."""
    return "%s+%s" % (name, hex(addr - bias))


def hex64(v):
    """An address in hex; a negative one as its 64-bit two's complement (as sampler/exact.ts hex())."""
    return hex(v & MASK64) if v < 0 else hex(v)


class ClockReading(object):
    """The sample's clock, as sampler/sampling/clock.ts reads it: the debugger's own on a live process, the program's on a core."""

    def __init__(self, source, now_ms=None, monotonic_ms=None, doc=None, why=None):
        self.source, self.now_ms, self.monotonic_ms, self.doc = source, now_ms, monotonic_ms, doc
        self.why = why or {}


def live_clock():
    return ClockReading("live", int(time.time() * 1000), int(time.monotonic() * 1000))


def core_clock(pack_name, clock, rt):
    """clock: (doc, {name: fn(rt, s)}) from the schema's clock: section, or None when it has none."""
    r = ClockReading("core")
    for name in ("now_ms", "monotonic_ms"):
        fn = clock[1].get(name) if clock is not None else None
        if fn is None:
            r.why[name] = "%s(): a core keeps no clock, and pack %s does not say where the program keeps its time (clock: in its schema)" % (name, pack_name)
            continue
        try:
            setattr(r, name, fn(rt, 0))
        except Exception as e:
            if not is_walk_failure(e):
                raise
            r.why[name] = "%s() on a core is %s, which could not be read: %s" % (name, clock[0], e)
    if clock is not None:
        r.doc = clock[0]
    return r


class Layout(object):
    """One build's sizes and offsets (the JSON of packs/PACK/RELEASE/BUILD-ID.json)."""

    def __init__(self, data, source, unavailable=None):
        self.data = data
        self.source = source
        self.release = data["release"]
        self.build_id = data["build_id"]
        self.unavailable = unavailable or {}  # type or global of an object without a layout -> why
        self.stand_ins = False

    def _available(self, name):
        """Whether name is in this layout; raises, saying why, when it is of an object without one, unless
        this layout is one with stand-ins (with_stand_ins)."""
        if name not in self.unavailable:
            return True
        if self.stand_ins:
            return False
        raise XwalkError("%s cannot be read: %s" % (name, self.unavailable[name]))

    def with_stand_ins(self):
        """This layout, where a struct or global of an object without a layout gives a stand-in (offset 0, size
        8) instead of failing: what a view's factory binds for the columns that are left out (run_view)."""
        copy = Layout(self.data, self.source, self.unavailable)
        copy.stand_ins = True
        return copy

    def field(self, struct_name, path):
        if not self._available(struct_name):
            return {"offset": 0, "size": 8}
        return self.data["types"][struct_name]["fields"][path]

    def off(self, struct_name, path):
        return self.field(struct_name, path)["offset"]

    def size(self, struct_name):
        if not self._available(struct_name):
            return 8
        return self.data["types"][struct_name]["size"]

    def align(self, struct_name):
        if not self._available(struct_name):
            return 8
        return min(self.data["types"][struct_name]["align"], 8)

    def int_field(self, struct_name, path):
        f = self.field(struct_name, path)
        return (f["offset"], f["size"], f.get("bit", 0), f.get("bits", 0))

    def plain_u64(self, struct_name, path):
        """True when the field is a whole 8-byte word: the walks then read it with one u64()."""
        f = self.field(struct_name, path)
        return f["size"] == 8 and not f.get("bits")

    def global_size(self, name):
        if not self._available(name):
            return 8
        return self.data["globals"][name]["size"]

    def has_enum(self, name):
        """Whether this build's layout carries the enumerators of enum name (older layouts have none)."""
        return name in self.data.get("enums", {})

    def enum_names(self, name):
        """Enum name's enumerators by value, the first declared where several share one (enum_name() in a schema)."""
        out: dict[int, str] = {}
        for n, v in self.data.get("enums", {}).get(name, {}).items():
            out.setdefault(v, n)
        return out


def is_walk_failure(e):
    return isinstance(e, (Fault, WalkError))


def run_view(view, rt, addr=None):
    """Items from the roots (or one address), columns, checks; failures make it partial."""
    errors = []
    items = []
    if addr is not None:
        items.append((addr, "addr"))
    else:
        seen = set()
        for label, root in view.roots:

            def take(a, label=label):
                if a != 0 and a not in seen:
                    seen.add(a)
                    items.append((a, label))
                return 1

            try:
                root(rt, take)
            except Exception as e:
                if not is_walk_failure(e):
                    raise
                errors.append({"root": label, "message": str(e)})
    rows = []
    for a, origin in items:
        rt.new_row()
        row: list[tuple[str, object]] = [("origin", origin)]
        for column in view.columns:
            name, fn, kind, is_list = column[:4]
            if name in view.absent:
                continue
            try:
                value = fn(rt, a)
                row.append((name, [format_value(x, kind) for x in value] if is_list else format_value(value, kind)))
            except Exception as e:
                if not is_walk_failure(e):
                    raise
                row.append((name, None))
                errors.append({"item": hex64(a), "column": name, "message": str(e)})
        for fn, message in view.checks:
            try:
                if not fn(rt, a):
                    errors.append({"item": hex64(a), "message": "check failed: " + message})
            except Exception as e:
                if not is_walk_failure(e):
                    raise
                errors.append({"item": hex64(a), "message": "check could not run: " + str(e)})
        rows.append(row)
    return rows, errors


def column_reads(column):
    """The structs and globals a column of a View reads: its fifth member (generated views have it), else none."""
    return column[4] if len(column) > 4 else ()


def format_value(v, kind):
    if v is None or isinstance(v, str):
        return v
    if kind == "addr":
        return hex64(v)
    return v


class View(object):
    def __init__(self, name, doc, of, roots, columns, checks, clock=False, stack=None, needs=()):
        self.name, self.doc, self.of = name, doc, of
        self.roots, self.columns, self.checks = roots, columns, checks
        self.needs = needs  # the structs and globals the roots and checks read (generators/lower/reads.ts)
        self.absent = set()  # columns that read an object the process does not map: left out of the rows
        self.clock = clock  # whether it reads now_ms() or monotonic_ms()
        self.stack = stack  # (frame columns, weight column or None, leaf columns or None): a stack-shaped view
