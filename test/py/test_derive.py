"""
The layout deriver (py-common/xwalk_derive.py) on its own, under plain
python3: a fake adapter stands in for gdb's and lldb's types, so every rule
(anonymous members, bitfields, signedness, arrays, each mismatch and its
message) is checked without a debugger. gdb and lldb adapt the same code.
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # nothing written into the source tree
sys.path.insert(0, os.path.join(HERE, "..", "..", "py-common"))
from xwalk_derive import DebugTypes, derive_layout_with  # noqa: E402 (after the path it is found on)


class T(object):
    """A fake type: kind, size, and what it needs of the rest."""

    def __init__(self, name, kind, size, align=None, signed=False, target=None, element=None, count=0, members=()):
        self.name, self.kind, self.size = name, kind, size
        self.align = align or min(max(size, 1), 8)
        self.signed, self.target, self.element, self.count, self.members = signed, target, element, count, list(members)


class FakeTypes(DebugTypes):
    source = "the fake debug info"

    def __init__(self, types, globals_):
        self.types, self.globals = types, globals_

    def lookup(self, name):
        return self.types.get(name)

    def global_type(self, name):
        return self.globals.get(name)

    def kind(self, t):
        return t.kind

    def size(self, t):
        return t.size

    def align(self, t):
        return t.align

    def is_signed(self, t):
        return t.signed

    def target(self, t):
        return t.target

    def element(self, t):
        return t.element

    def count(self, t):
        return t.count

    def members(self, t):
        return t.members

    def name(self, t):
        return t.name


INT = T("int", "int", 4, signed=True)
U64 = T("unsigned long", "int", 8)
CHAR = T("char", "int", 1, signed=True)
NODE = T("struct node", "struct", 48, align=8)
NODE_P = T("struct node *", "ptr", 8, target=NODE)
NODE.members = [
    ("key", 0, 0, T("char [24]", "array", 24, element=CHAR, count=24)),
    ("next", 192, 0, NODE_P),
    (None, 256, 0, T("union {...}", "struct", 8, members=[("value", 0, 0, U64), ("weight", 0, 0, INT)])),
    ("flags", 320, 3, INT),
    ("kids", 328, 0, T("struct node *[2]", "array", 16, element=NODE_P, count=2)),
]
TYPES = {"node_t": NODE, "struct node": NODE}
GLOBALS = {"root": NODE_P, "count": INT}


def derive(structs, globals_=None):
    return derive_layout_with(FakeTypes(TYPES, GLOBALS), {"structs": structs, "globals": globals_ or {}})


class DeriveTest(unittest.TestCase):
    def test_fields_as_declared(self):
        types, globals_, errors = derive(
            {"node_t": {"next": {"k": "ptr", "to": {"k": "struct", "name": "node_t"}}, "value": {"k": "int", "signed": False}, "weight": {"k": "int", "signed": True}}},
            {"root": {"k": "ptr", "to": {"k": "struct", "name": "node_t"}}, "count": {"k": "int", "signed": True}},
        )
        self.assertEqual(errors, [])
        self.assertEqual(types["node_t"]["size"], 48)
        self.assertEqual(types["node_t"]["fields"]["next"], {"offset": 24, "size": 8})
        self.assertEqual(types["node_t"]["fields"]["value"], {"offset": 32, "size": 8, "signed": False}, "found in the anonymous union")
        self.assertEqual(types["node_t"]["fields"]["weight"], {"offset": 32, "size": 4, "signed": True})
        self.assertEqual(globals_, {"root": {"size": 8}, "count": {"size": 4, "signed": True}})

    def test_a_bitfield(self):
        types, _, errors = derive({"node_t": {"flags": {"k": "int", "signed": True}}})
        self.assertEqual(errors, [])
        self.assertEqual(types["node_t"]["fields"]["flags"], {"offset": 40, "size": 4, "bit": 0, "bits": 3, "signed": True})

    def test_arrays(self):
        char24 = {"k": "array", "elem": {"k": "int", "size": 1, "signed": True}, "count": 24}
        kids = {"k": "array", "elem": {"k": "ptr", "to": {"k": "struct", "name": "node_t"}}, "count": 2}
        types, _, errors = derive({"node_t": {"key": char24, "kids": kids}})
        self.assertEqual(errors, [])
        self.assertEqual(types["node_t"]["fields"]["key"], {"offset": 0, "size": 24})
        self.assertEqual(types["node_t"]["fields"]["kids"], {"offset": 41, "size": 16})

    def test_mismatches_say_what_the_debug_info_says(self):
        _, _, errors = derive(
            {
                "node_t": {
                    "key": {"k": "array", "elem": {"k": "int", "size": 1, "signed": True}, "count": 16},
                    "kids": {"k": "array", "elem": {"k": "int", "size": 8, "signed": False}, "count": 2},
                    "next": {"k": "int", "signed": False},
                    "value": {"k": "fnptr"},
                    "missing": {"k": "int", "signed": False},
                },
                "no_such_t": {"x": {"k": "int", "signed": False}},
            },
            {"nowhere": {"k": "int", "signed": False}, "count": {"k": "struct", "name": "node_t"}},
        )
        self.assertEqual(
            [(e["where"], e["message"]) for e in errors],
            [
                ("node_t.key", "the fake debug info says char [24]: 24 elements, not 16"),
                ("node_t.kids", "the fake debug info says struct node *[2], which does not match the schema"),
                ("node_t.next", "the fake debug info says struct node *, not an integer"),
                ("node_t.value", "the fake debug info says unsigned long, not a function pointer"),
                ("node_t.missing", "the fake debug info has no member 'missing' in struct node"),
                ("no_such_t", "the fake debug info has no type named no_such_t"),
                ("nowhere", "the fake debug info has no global variable nowhere"),
                ("count", "the fake debug info says int, not node_t"),
            ],
        )


if __name__ == "__main__":
    unittest.main()
