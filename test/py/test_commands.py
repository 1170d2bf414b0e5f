"""
The debugger-neutral commands (py-common/xwalk_commands.py) end to end under
plain python3: a FakeTarget over bytes and a FakeSymbols honour the contract
of py-common/xwalk_target.py, as GdbTarget and LldbTarget do, and a small
pack built the way a generated extension builds one (a view factory over
its layout, Pack(...)) is run over them: the layout chosen by build-id or
from the debug info, a clear error when neither serves, the text and JSON
of a view, and a partial result that says why when memory gives out.
"""
import json
import os
import struct
import unittest

from test_derive import FakeTypes, T  # the fake type adapter of the layout deriver's tests; it puts py-common/ on sys.path

import xwalk_commands  # noqa: E402
import xwalk_core  # noqa: E402
import xwalk_derive  # noqa: E402
import xwalk_output  # noqa: E402
import xwalk_target  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# The runtime's modules, as a generated extension registers them; their names in one namespace.
ns = {**vars(xwalk_core), **vars(xwalk_output), **vars(xwalk_derive), **vars(xwalk_target), **vars(xwalk_commands)}
Target, Symbols, Pack, View, XwalkError = ns["Target"], ns["Symbols"], ns["Pack"], ns["View"], ns["XwalkError"]

PAGE = 4096
BUILD = "abcdef0123456789abcdef0123456789abcdef01"
OTHER = "feedface00000000000000000000000000000000"
EXE = "/srv/toy"

# The schema's declarations (what a generated Pack carries as its spec) and the layout of one known build.
SPEC = {
    "structs": {
        "item_t": {
            "next": {"k": "ptr", "to": {"k": "struct", "name": "item_t"}},
            "value": {"k": "int", "signed": False},
            "name": {"k": "ptr", "to": {"k": "int", "size": 1, "signed": True}},
            "fn": {"k": "fnptr"},
        }
    },
    "globals": {"head": {"k": "ptr", "to": {"k": "struct", "name": "item_t"}}},
}
OFFSETS = {"next": 0, "value": 8, "name": 16, "fn": 24}
LAYOUT = {
    "release": "1.0",
    "build_id": BUILD,
    "signature": None,
    "types": {"item_t": {"size": 32, "align": 8, "fields": {k: dict({"offset": v, "size": 8}, **({"signed": False} if k == "value" else {})) for k, v in OFFSETS.items()}}},
    "globals": {"head": {"size": 8}},
}

# Another build of the same program, its fields in another order: only its debug info knows it.
ITEM = T("struct item", "struct", 32, align=8)
ITEM.members = [
    ("fn", 0, 0, T("void (*)(int)", "fnptr", 8)),
    ("name", 64, 0, T("char *", "ptr", 8, target=T("char", "int", 1, signed=True))),
    ("value", 128, 0, T("unsigned long", "int", 8)),
    ("next", 192, 0, T("struct item *", "ptr", 8, target=ITEM)),
]
OTHER_OFFSETS = {"fn": 0, "name": 8, "value": 16, "next": 24}
DEBUG_INFO = FakeTypes({"item_t": ITEM, "struct item": ITEM}, {"head": T("struct item *", "ptr", 8, target=ITEM)})


def items_view(L):
    """A view factory shaped as the generated ones (view0(L) in generated/walkee.py): the layout's
    numbers bound once, a root that visits every item of the list at the global head, columns, a check."""
    k_next = L.off("item_t", "next")
    k_value = L.int_field("item_t", "value")
    k_name = L.off("item_t", "name")
    k_fn = L.off("item_t", "fn")

    def root(rt, visit):
        a = rt.global_addr("head")
        if a < 0:
            raise rt.fail("corrupt", "the symbol head is not in the binary's symbol tables", [])
        node, n = rt.m.u64(a), 0
        while node != 0:
            n += 1
            if n > rt.max_nodes:
                raise rt.fail("limit", "list at {0}: more than {1} nodes (--max-nodes)", [(a, "hex"), (rt.max_nodes, "dec")])
            visit(node)
            node = rt.m.u64(node + k_next)

    columns = [
        ("addr", lambda rt, a: a, "addr", False),
        ("value", lambda rt, a: rt.field_int(a, k_value, False), "value", False),
        ("name", lambda rt, a: rt.cstring(rt.m.u64(a + k_name)), "value", False),
        ("handler", lambda rt, a: rt.symbol(rt.m.u64(a + k_fn)), "value", False),
    ]
    checks = [(lambda rt, a: rt.field_int(a, k_value, False) < 1000, "an item's value is 1000 or more")]
    return View("items", "The list at head.", "item_t", [("head", root)], columns, checks, False)


def make_pack():
    """A fresh pack (it caches the layout it picks per build-id)."""
    return Pack("toy", "A toy program.", "0" * 64, None, None, [LAYOUT], SPEC, [items_view], [("toy-items", 0, "The list at head.")], [("item_t", "view", 0)])


HEAD = 0x10000  # the global head, in the data segment
HEAP = 0x200000  # items at HEAP, HEAP+0x40, HEAP+0x80; their names on the next page
ON_READ = 0x400000  # a function of the executable, 0x40 bytes long
MEMCPY = 0x7F0000001000  # a function of libc


class Image(object):
    """Memory as the fake target maps it: regions of bytes, and pages in them that cannot be read."""

    def __init__(self):
        self.regions = {HEAD: bytearray(PAGE), HEAP: bytearray(3 * PAGE)}
        self.unreadable = set()

    def put(self, addr, data):
        for start, buf in self.regions.items():
            if start <= addr and addr + len(data) <= start + len(buf):
                buf[addr - start:addr - start + len(data)] = data
                return
        raise AssertionError("%#x is in no region of the image" % addr)

    def put_u64(self, addr, v):
        self.put(addr, struct.pack("<Q", v))


def toy_image(offsets=OFFSETS, items=((7, "alpha", ON_READ + 0x10), (12, "beta", ON_READ), (30, None, 0))):
    """head -> item0 -> item1 -> item2 -> NULL, each (value, name or NULL, fn) laid out at offsets."""
    img = Image()
    img.put_u64(HEAD, HEAP)
    for i, (value, name, fn) in enumerate(items):
        at = HEAP + 0x40 * i
        img.put_u64(at + offsets["next"], at + 0x40 if i + 1 < len(items) else 0)
        img.put_u64(at + offsets["value"], value)
        text = HEAP + PAGE + 0x10 * i
        img.put_u64(at + offsets["name"], text if name is not None else 0)
        if name is not None:
            img.put(text, name.encode() + b"\0")
        img.put_u64(at + offsets["fn"], fn)
    return img


class FakeTarget(Target):
    """A process over an Image: read_exact() reads whole or not at all, as gdb's read_memory does."""

    def __init__(self, image, build_id=BUILD, debug_info=None, live=True):
        self.image = image
        self.pid = 42
        self.exe = EXE
        self.build_id = build_id
        self.live = live
        self.debug_info = debug_info if debug_info is not None else FakeTypes({}, {})
        self.reads = []

    def read_exact(self, addr, n):
        self.reads.append((addr, n))
        for start, buf in self.image.regions.items():
            if start <= addr and addr + n <= start + len(buf):
                if any(p in self.image.unreadable for p in range(addr // PAGE, (addr + n - 1) // PAGE + 1)):
                    return None
                return bytes(buf[addr - start:addr - start + n])
        return None

    def ranges(self):
        return [(start, start + len(buf)) for start, buf in self.image.regions.items()]

    def debug_types(self):
        return self.debug_info


class FakeSymbols(Symbols):
    exe = EXE

    def __init__(self):
        self.table = [("head", HEAD, 8, None), ("on_read", ON_READ, 0x40, None), ("main", 0x400100, 0x80, EXE), ("memcpy", MEMCPY, 0x100, "/lib/x86_64-linux-gnu/libc.so.6")]

    def debugger_address(self, name):
        return next((start for n, start, _, _ in self.table if n == name), None)

    def debugger_symbol_at(self, addr):
        return next(((n, addr - start, path) for n, start, size, path in self.table if start <= addr < start + size), None)


def run(image, argv=(), target=None, eval_address=None, pack=None):
    opts = ns["parse_command_args"](list(argv))
    return ns["run_command"](pack or make_pack(), 0, opts, target or FakeTarget(image), FakeSymbols(), eval_address)


LIB = "1111111111111111111111111111111111111111"
LIB_LAYOUT = {"release": "2.1", "build_id": LIB, "signature": None, "object": "lib", "types": {"vm_t": {"size": 16, "align": 8, "fields": {"bytes": {"offset": 8, "size": 8, "signed": False}}}}, "globals": {}}


def vm_view(L):
    """A view of the object's type: its factory fails when the object has no layout."""
    k_bytes = L.off("vm_t", "bytes")
    return View("vm", "The library's VM.", "vm_t", [], [("bytes", lambda rt, a: rt.m.u64(a + k_bytes), "value", False)], [], False)


def pack_with_object():
    """The toy pack, and an object of it (a library mapped as libvm.so.2) whose layouts give vm_t."""
    return Pack("toy", "A toy program.", "0" * 64, None, None, [LAYOUT, LIB_LAYOUT], SPEC, [items_view, vm_view],
                [("toy-items", 0, "The list at head."), ("toy-vm", 1, "The VM.")], [], None, {"lib": {"file": "libvm.so.2", "members": ["vm_t"]}})


class WithObjects(FakeTarget):
    def __init__(self, image, objects):
        FakeTarget.__init__(self, image)
        self._objects = objects

    def objects(self):
        return self._objects


class ObjectLayoutTest(unittest.TestCase):
    def test_the_layout_of_the_mapped_build_joins_the_programs(self):
        target = WithObjects(toy_image(), [("/lib/libc.so.6", "22" * 20), ("/usr/lib/libvm.so.2.1.0", LIB)])
        layout = ns["select_layout"](pack_with_object(), target)
        self.assertEqual(layout.source, "toy 1.0 (abcdef012345) + lib 2.1 (111111111111)")
        self.assertEqual((layout.off("vm_t", "bytes"), layout.off("item_t", "value")), (8, 8))

    def test_an_object_not_mapped_or_of_an_unknown_build_fails_its_views_only(self):
        for objects, reason in (
            ([("/lib/libc.so.6", "22" * 20)], "vm_t cannot be read: libvm.so.2 is not mapped in this process"),
            ([("/usr/lib/libvm.so.2", "33" * 20)], "vm_t cannot be read: unknown build of libvm.so.2: /usr/lib/libvm.so.2 (build-id %s); known builds of toy's lib: 2.1 111111111111. "
             "Add one with: xgen layout --pack toy --object lib --for /usr/lib/libvm.so.2 PROBE-WITH-DEBUG-INFO" % ("33" * 20)),
            ([("/usr/lib/libvm.so.20", LIB)], "vm_t cannot be read: libvm.so.2 is not mapped in this process"),
        ):
            pack, target = pack_with_object(), WithObjects(toy_image(), objects)
            with self.assertRaises(XwalkError) as e:
                ns["run_command"](pack, 1, ns["parse_command_args"]([]), target, FakeSymbols(), None)
            self.assertEqual(str(e.exception), reason)
            out = json.loads(ns["run_command"](pack, 0, ns["parse_command_args"](["--json"]), target, FakeSymbols(), None))
            self.assertEqual(len(out["items"]), 3, "the program's own views still run")


class OptionalGlobalTest(unittest.TestCase):
    """A global a build may lack (optional: in the schema, as nginx's stub_status counters): its layout leaves it out,
    and what reads it says why, in the words of optionalMissing in sampler/sampling/bound-layout.ts; the other views run."""

    SPEC = dict(SPEC, globals=dict(SPEC["globals"], stats={"k": "ptr", "to": {"k": "int", "size": 8, "signed": False}}), optional={"stats": "built without stats"})

    def pack(self):
        return Pack("toy", "A toy program.", "0" * 64, None, None, [LAYOUT], self.SPEC, [items_view], [("toy-items", 0, "The list at head.")], [])

    def test_a_committed_layout_without_it_is_whole_and_says_why(self):
        layout = ns["select_layout"](self.pack(), FakeTarget(toy_image()))
        self.assertEqual(layout.source, "toy 1.0 (abcdef012345)", "the layout of the build-id, though it lacks stats")
        with self.assertRaises(XwalkError) as e:
            layout.global_size("stats")
        self.assertEqual(str(e.exception), "stats cannot be read: this build has no stats (built without stats)")
        out = json.loads(run(None, ["--json"], target=FakeTarget(toy_image()), pack=self.pack()))
        self.assertEqual(len(out["items"]), 3, "the views that do not read it run")

    def test_debug_info_without_it_derives_a_layout_without_it(self):
        types, globals_, errors = ns["derive_layout_with"](DEBUG_INFO, self.SPEC)
        self.assertEqual((errors, sorted(globals_)), ([], ["head"]))


class LayoutSelectionTest(unittest.TestCase):
    def test_the_layout_of_a_known_build_id_is_used_and_kept(self):
        pack, target = make_pack(), FakeTarget(toy_image())
        layout = ns["select_layout"](pack, target)
        self.assertEqual(layout.source, "toy 1.0 (abcdef012345)")
        self.assertEqual(layout.off("item_t", "value"), 8)
        self.assertIs(ns["select_layout"](pack, FakeTarget(toy_image())), layout, "picked once per build-id")

    def test_an_unknown_build_is_served_by_its_own_debug_info(self):
        pack, target = make_pack(), FakeTarget(toy_image(OTHER_OFFSETS), build_id=OTHER, debug_info=DEBUG_INFO)
        layout = ns["select_layout"](pack, target)
        self.assertEqual(layout.source, "toy unknown (feedface0000, derived from DWARF)")
        self.assertEqual({k: layout.off("item_t", k) for k in OTHER_OFFSETS}, OTHER_OFFSETS)
        out = json.loads(run(None, ["--json"], target=target, pack=pack))
        self.assertEqual([(i["value"], i["name"]) for i in out["items"]], [(7, "alpha"), (12, "beta"), (30, "")])
        self.assertEqual((out["release"], out["build_id"], out["partial"]), ("unknown", OTHER, False))

    def test_no_layout_and_no_debug_info_is_a_clear_error(self):
        with self.assertRaises(XwalkError) as e:
            run(toy_image(), target=FakeTarget(toy_image(), build_id=OTHER))
        self.assertEqual(
            str(e.exception),
            "unknown build of toy unknown: /srv/toy (build-id feedface00000000000000000000000000000000) matches no layout, "
            "and its debug info does not serve (item_t: the fake debug info has no type named item_t); known builds of toy: 1.0 abcdef012345. "
            "Add one with: xgen layout --pack toy BINARY-WITH-DEBUG-INFO, then regenerate",
        )

    def test_debug_info_that_disagrees_with_the_schema_is_named(self):
        wrong = FakeTypes({"item_t": ITEM}, {"head": T("int", "int", 4, signed=True)})
        with self.assertRaises(XwalkError) as e:
            ns["select_layout"](make_pack(), FakeTarget(toy_image(), build_id=None, debug_info=wrong))
        self.assertIn("build-id none) matches no layout", str(e.exception))
        self.assertIn("(head: the fake debug info says int, which does not match the schema)", str(e.exception))


class RunViewTest(unittest.TestCase):
    def test_a_view_as_text(self):
        self.assertEqual(
            run(toy_image()).split("\n"),
            [
                "items: 3 items  (toy 1.0, pid 42)",
                "ORIGIN  ADDR      VALUE  NAME   HANDLER",
                "head    0x200000      7  alpha  on_read+0x10",
                "head    0x200040     12  beta   on_read",
                "head    0x200080     30         NULL",
            ],
        )

    def test_a_view_as_json(self):
        out = json.loads(run(toy_image(), ["--json"]))
        self.assertEqual((out["view"], out["pid"], out["pack"], out["release"], out["build_id"]), ("items", 42, "toy", "1.0", BUILD))
        self.assertEqual(out["items"][1], {"pid": 42, "origin": "head", "addr": "0x200040", "value": 12, "name": "beta", "handler": "on_read"})
        self.assertEqual((len(out["items"]), out["partial"], out["errors"]), (3, False, []))

    def test_a_symbol_of_another_object_is_named(self):
        img = toy_image(items=((1, "x", MEMCPY + 8),))
        self.assertEqual(json.loads(run(img, ["--json"]))["items"][0]["handler"], "memcpy+0x8")

    def test_one_item_by_expression(self):
        calls = []

        def eval_address(expr):
            calls.append(expr)
            return HEAP + 0x40, ["item_t", "struct item"]

        out = json.loads(run(toy_image(), ["items[1]", "--json"], eval_address=eval_address))
        self.assertEqual(calls, ["items[1]"])
        self.assertEqual([(i["origin"], i["addr"], i["value"]) for i in out["items"]], [("addr", "0x200040", 12)])

    def test_an_expression_of_another_struct_is_refused(self):
        with self.assertRaises(XwalkError) as e:
            run(toy_image(), ["conn"], eval_address=lambda expr: (HEAP, ["conn_t"]))
        self.assertEqual(str(e.exception), "conn is conn_t, not a item_t: give a pointer to one, or an address")

    def test_the_pretty_printer_line(self):
        self.assertEqual(ns["printer_output"](make_pack(), 0, HEAP, FakeTarget(toy_image()), FakeSymbols()), "value=7 name=alpha handler=on_read+0x10")


class PartialTest(unittest.TestCase):
    def test_a_next_pointer_to_nowhere_ends_the_walk_and_says_where(self):
        img = toy_image()
        img.put_u64(HEAP + 0x40, 0x300000)  # item1.next
        self.assertEqual(
            run(img).split("\n"),
            [
                "items: 3 items  (toy 1.0, pid 42)",
                "ORIGIN  ADDR      VALUE  NAME   HANDLER",
                "head    0x200000      7  alpha  on_read+0x10",
                "head    0x200040     12  beta   on_read",
                "head    0x300000      ?  ?      ?",
                "partial: 5 problems",
                "  root head: 0x300000: not in any mapping",
                "  0x300000 value: 0x300008: not in any mapping",
                "  0x300000 name: 0x300010: not in any mapping",
                "  0x300000 handler: 0x300018: not in any mapping",
                "  0x300000: check could not run: 0x300008: not in any mapping",
            ],
        )
        out = json.loads(run(img, ["--json"]))
        self.assertEqual((out["partial"], out["errors"][0]), (True, {"root": "head", "message": "0x300000: not in any mapping"}))
        self.assertEqual(out["items"][2], {"pid": 42, "origin": "head", "addr": "0x300000", "value": None, "name": None, "handler": None})

    def test_an_unreadable_page_is_one_column_of_one_item(self):
        img = toy_image()
        img.put_u64(HEAP + 0x40 + OFFSETS["name"], HEAP + 2 * PAGE)  # item1.name, on a page that cannot be read
        img.unreadable.add((HEAP + 2 * PAGE) // PAGE)
        out = json.loads(run(img, ["--json"]))
        self.assertEqual([i["name"] for i in out["items"]], ["alpha", None, ""])
        self.assertEqual(out["errors"], [{"item": "0x200040", "column": "name", "message": "0x202000: unreadable"}])

    def test_a_failed_check_is_reported_with_the_item(self):
        img = toy_image(items=((7, "a", 0), (5000, "b", 0)))
        out = json.loads(run(img, ["--json"]))
        self.assertEqual(out["errors"], [{"item": "0x200040", "message": "check failed: an item's value is 1000 or more"}])
        self.assertEqual([i["value"] for i in out["items"]], [7, 5000])

    def test_max_nodes_reaches_the_walk(self):
        out = json.loads(run(toy_image(), ["--max-nodes", "2", "--json"]))
        self.assertEqual([i["addr"] for i in out["items"]], ["0x200000", "0x200040"])
        self.assertEqual(out["errors"], [{"root": "head", "message": "list at 0x10000: more than 2 nodes (--max-nodes)"}])


class ContractTest(unittest.TestCase):
    def test_a_chunk_read_short_is_read_page_by_page_up_to_the_first_unreadable_one(self):
        img = toy_image()
        img.unreadable.add((HEAP + 2 * PAGE) // PAGE)
        target = FakeTarget(img)
        data = target.read_chunk(HEAP, 3 * PAGE)
        self.assertEqual(data, bytes(img.regions[HEAP][:2 * PAGE]))
        self.assertEqual(target.reads, [(HEAP, 3 * PAGE), (HEAP, PAGE), (HEAP + PAGE, PAGE), (HEAP + 2 * PAGE, PAGE)])

    def test_a_read_that_starts_mid_page_is_cut_at_page_ends(self):
        img = toy_image()
        img.unreadable.add(HEAP // PAGE + 1)
        target = FakeTarget(img)
        self.assertEqual(target.read_chunk(HEAP + 0x100, PAGE), bytes(img.regions[HEAP][0x100:PAGE]))
        self.assertEqual(target.reads[1:], [(HEAP + 0x100, PAGE - 0x100), (HEAP + PAGE, 0x100)])

    def test_an_implementation_missing_a_method_or_an_attribute_says_which(self):
        class HalfTarget(Target):
            def __init__(self):
                self.pid = 7

            def ranges(self):
                return []

        half = HalfTarget()
        with self.assertRaisesRegex(NotImplementedError, r"^HalfTarget does not implement Target\.read_exact\(addr, n\)$"):
            half.read_chunk(0, 8)
        with self.assertRaisesRegex(NotImplementedError, r"^HalfTarget does not implement Target\.debug_types\(\)$"):
            half.debug_types()
        with self.assertRaisesRegex(NotImplementedError, r"^HalfTarget does not set Target\.build_id: the executable's GNU build-id"):
            ns["select_layout"](make_pack(), half)
        self.assertEqual(half.pid, 7)

        class HalfSymbols(Symbols):
            exe = EXE

        with self.assertRaisesRegex(NotImplementedError, r"^HalfSymbols does not implement Symbols\.debugger_symbol_at\(addr\)$"):
            HalfSymbols().symbolize(ON_READ)
        with self.assertRaisesRegex(NotImplementedError, r"^Symbols does not set Symbols\.exe"):
            Symbols().file_static(ON_READ, "x")

    def test_symbolize_names_every_object(self):
        s = FakeSymbols()
        self.assertEqual(s.symbolize(ON_READ + 3), ("on_read", 3))
        self.assertEqual(s.symbolize(0x400104), ("main", 4), "an object named as the executable is the executable")
        self.assertEqual(s.symbolize(MEMCPY), ("memcpy", 0), "libc's, as xsample names it too")
        self.assertIsNone(s.symbolize(0), "NULL")
        self.assertIsNone(s.symbolize(0x500000), "no symbol")

    def test_object_at_names_the_file_mapped_there_by_its_link_time_address(self):
        import tempfile

        def elf(e_type, vaddr):
            head = b"\x7fELF\x02\x01\x01" + b"\0" * 9 + struct.pack("<HHIQQQIHHHHHH", e_type, 0x3E, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
            return head + struct.pack("<IIQQQQQQ", 1, 5, 0, vaddr, vaddr, 0x3000, 0x3000, 0x1000)

        with tempfile.TemporaryDirectory() as d:
            files = {"mod.so": elf(3, 0), "prelinked.so": elf(3, 0x200000), "toy": elf(2, 0x400000), "data.bin": b"not an ELF file"}
            for name, data in files.items():
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
            at = lambda name: os.path.join(d, name)  # noqa: E731

            class Mapped(FakeSymbols):
                def file_mappings(self):
                    return [
                        (0x7F0000000000, 0x7F0000001000, 0, "/dev/zero (deleted)"),  # its span holds every object below
                        (0x7F0000010000, 0x7F0000011000, 0, at("mod.so")),
                        (0x7F0000011000, 0x7F0000013000, 0x1000, at("mod.so")),
                        (0x7F0000020000, 0x7F0000023000, 0, at("prelinked.so")),
                        (0x400000, 0x403000, 0, at("toy")),
                        (0x7F0000030000, 0x7F0000031000, 0, at("data.bin")),
                        (0x7F0000F00000, 0x7F0000F01000, 0, "/dev/zero (deleted)"),
                    ]

            s = Mapped()
            self.assertEqual(s.object_at(0x7F0000011C10), ("mod.so", 0x7F0000010000), "in a module: its file name and where its first page is")
            self.assertEqual(s.object_at(0x7F0000020010), ("prelinked.so", 0x7F0000020000 - 0x200000), "linked at 0x200000: the bias says so")
            self.assertEqual(s.object_at(0x401234), ("toy", 0), "an ET_EXEC is where it was linked")
            self.assertIsNone(s.object_at(0x7F0000030010), "a file that is not an ELF object")
            self.assertIsNone(s.object_at(0x7F0000015000), "in the span of /dev/zero's mappings, but in no page of a file")
            self.assertIsNone(s.object_at(0x7F0000000010), "/dev/zero (deleted): gone from its path")
            rt = ns["Runtime"](None, s)
            self.assertEqual(rt.symbol(0x7F0000011C10), "mod.so+0x1c10")
            self.assertEqual(rt.symbol(0x7F0000020010), "prelinked.so+0x200010", "the address in the file, as addr2line -e takes it")
            self.assertEqual(rt.symbol(0x401234), "toy+0x401234")
            self.assertEqual(rt.symbol(ON_READ + 0x10), "on_read+0x10", "a symbol still names its own address")
            self.assertEqual(rt.symbol(0x7F0000015000), "0x7f0000015000", "anonymous memory: the bare address")
            self.assertEqual(rt.symbol(0), "NULL")
            self.assertIsNone(FakeSymbols().object_at(0x7F0000011C10), "no mappings known: no object")

    def test_file_static_without_a_symtab_is_false(self):
        self.assertIs(FakeSymbols().file_static(ON_READ, "counter"), False, "/srv/toy does not exist: no .symtab")

        class NoExe(FakeSymbols):
            exe = None

        self.assertIs(NoExe().file_static(ON_READ, "counter"), False)

    def test_maps_lines_that_are_not_readable_memory_are_left_out(self):
        text = (
            "55d0c8a00000-55d0c8a21000 r--p 00000000 08:01 1234 /usr/sbin/nginx\n"
            "55d0c8a21000-55d0c8a40000 --xp 00021000 08:01 1234 /usr/sbin/nginx\n"
            "7ffd1c5f0000-7ffd1c611000 rw-p 00000000 00:00 0 [stack]\n"
            "7ffd1c7f3000-7ffd1c7f7000 r--p 00000000 00:00 0 [vvar]\n"
            "7ffd1c7f7000-7ffd1c7f9000 r-xp 00000000 00:00 0\n"
        )
        self.assertEqual(ns["parse_maps"](text), [(0x55D0C8A00000, 0x55D0C8A21000), (0x7FFD1C5F0000, 0x7FFD1C611000), (0x7FFD1C7F7000, 0x7FFD1C7F9000)])


if __name__ == "__main__":
    unittest.main()


def stack_pack(stack):
    """The toy pack with its view made stack-shaped: frames and weight as a generated View carries them."""

    def factory(L):
        v = items_view(L)
        return View(v.name, v.doc, v.of, v.roots, v.columns, v.checks, False, stack)

    return Pack("toy", "A toy program.", "0" * 64, None, None, [LAYOUT], SPEC, [factory], [("toy-items", 0, "The list at head.")], [])


class FoldedTest(unittest.TestCase):
    def setUp(self):
        import tempfile

        self.dir = tempfile.mkdtemp()
        self.out = os.path.join(self.dir, "out.folded")

    def tearDown(self):
        import shutil

        shutil.rmtree(self.dir)

    def read(self):
        with open(self.out) as f:
            return f.read().split("\n")

    def test_frames_and_weights_as_xsample_record_writes_one_sample(self):
        said = run(toy_image(), ["--folded", self.out], pack=stack_pack((["origin", "name", "handler"], "value", None)))
        self.assertEqual(said, "wrote %s: 3 stacks" % self.out)
        # Heaviest first; the process, the root's label bare, then "column value" (an empty name is an empty value).
        self.assertEqual(self.read(), ["pid 42;head;name ;handler NULL 30", "pid 42;head;name beta;handler on_read 12", "pid 42;head;name alpha;handler on_read+0x10 7", ""])

    def test_identical_paths_add_up_and_a_semicolon_is_escaped(self):
        img = toy_image(items=((5, "a;b", ON_READ), (6, "a;b", ON_READ), (1, "c", ON_READ)))
        run(img, ["--folded", self.out], pack=stack_pack((["name"], "value", None)))
        self.assertEqual(self.read(), ["pid 42;name a\\x3bb 11", "pid 42;name c 1", ""])

    def test_without_a_weight_each_item_weighs_one(self):
        run(toy_image(items=((5, "x", 0), (6, "x", 0), (7, "y", 0))), ["--folded", self.out], pack=stack_pack((["name"], None, None)))
        self.assertEqual(self.read(), ["pid 42;name x 2", "pid 42;name y 1", ""])

    def test_leaves_one_path_per_weight_column_named_after_it(self):
        run(toy_image(items=((5, "x", ON_READ), (6, "y", 0))), ["--folded", self.out], pack=stack_pack((["name"], None, ["value", "value"])))
        self.assertEqual(self.read(), ["pid 42;name y;value 12", "pid 42;name x;value 10", ""], "each leaf column adds its path (here the same one twice)")

    def test_a_table_view_is_refused(self):
        with self.assertRaises(XwalkError) as e:
            run(toy_image(), ["--folded", self.out])
        self.assertEqual(str(e.exception), "view items is a table, not stack-shaped (no stack: in the schema): --folded needs one")
        self.assertFalse(os.path.exists(self.out))

    def test_a_partial_sample_is_not_written(self):
        img = toy_image()
        img.put_u64(HEAP + 0x40, 0x900000)  # item1's next points nowhere
        with self.assertRaises(XwalkError) as e:
            run(img, ["--folded", self.out], pack=stack_pack((["name"], "value", None)))
        self.assertTrue(str(e.exception).startswith("%s not written: the sample is partial (root head: " % self.out), str(e.exception))
        self.assertFalse(os.path.exists(self.out))


class SharedTest(unittest.TestCase):
    """A value computed once a sample (a breadth-first reach): its failure is kept, so that each row that asks
    fails the same way without walking again."""

    def test_a_failure_is_computed_once_and_raised_to_every_asker(self):
        rt = ns["Runtime"](None, None)
        calls = []

        def reach(_rt, root):
            calls.append(root)
            raise ns["WalkError"]("limit", "reach(): more than 5 objects reached (--max-nodes)")

        errors = []
        for _ in range(3):
            with self.assertRaises(ns["WalkError"]) as e:
                rt.shared("reach1", reach, 0x1000)
            errors.append(str(e.exception))
        self.assertEqual(calls, [0x1000])
        self.assertEqual(errors, ["reach(): more than 5 objects reached (--max-nodes)"] * 3)
        self.assertEqual(rt.shared("reach2", lambda _rt, x: x + 1, 1), 2)
        self.assertEqual(rt.shared("reach2", lambda _rt, x: x + 2, 1), 2, "a value kept for the sample")

    def test_what_is_not_a_walk_failure_is_not_kept(self):
        rt = ns["Runtime"](None, None)
        calls = []

        def broken(_rt):
            calls.append(1)
            raise KeyError("a bug")

        for _ in range(2):
            with self.assertRaises(KeyError):
                rt.shared("k", broken)
        self.assertEqual(len(calls), 2)
