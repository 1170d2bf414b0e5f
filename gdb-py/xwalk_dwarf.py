# xwalk: gdb's types for the layout deriver (py-common/xwalk_derive.py): the
# DWARF gdb has loaded, through gdb.Type. Used by `xgen layout` (gdb -batch
# on a binary file) and by the generated gdb extension when it meets a build
# no pack knows, and by xwalk-check.
import gdb

from xwalk_derive import DebugTypes, derive_layout_with


def _first_type(candidates):
    """The first of the type names gdb knows, as a gdb.Type, or None."""
    for candidate in candidates:
        try:
            return gdb.lookup_type(candidate)
        except gdb.error:
            pass
    return None


class GdbTypes(DebugTypes):
    source = "DWARF"

    def lookup(self, name):
        return _first_type((name, "struct " + name, "union " + name))

    def global_type(self, name):
        sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
        return sym.type if sym is not None else None

    def kind(self, t):
        t = t.strip_typedefs()
        if t.code == gdb.TYPE_CODE_PTR:
            return "fnptr" if t.target().strip_typedefs().code == gdb.TYPE_CODE_FUNC else "ptr"
        if t.code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_CHAR):
            return "int"
        if t.code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
            return "struct"
        if t.code == gdb.TYPE_CODE_ARRAY:
            return "array"
        return "other"

    def size(self, t):
        return t.strip_typedefs().sizeof

    def align(self, t):
        return t.strip_typedefs().alignof

    def is_signed(self, t):
        return t.strip_typedefs().is_signed

    def target(self, t):
        return t.strip_typedefs().target()

    def element(self, t):
        return t.strip_typedefs().target()

    def count(self, t):
        lo, hi = t.strip_typedefs().range()
        return hi - lo + 1

    def members(self, t):
        return [(f.name or None, f.bitpos, f.bitsize, f.type) for f in t.strip_typedefs().fields()]

    def name(self, t):
        return str(t.strip_typedefs().unqualified())

    def lookup_enum(self, name):
        return _first_type((name, "enum " + name))

    def enumerators(self, t):
        t = t.strip_typedefs()
        if t.code != gdb.TYPE_CODE_ENUM:
            return None
        return [(f.name, f.enumval) for f in t.fields()]


def derive_layout(spec):
    """(types, globals, errors) for the spec, from the DWARF gdb has loaded."""
    return derive_layout_with(GdbTypes(), spec)
