# xwalk: lldb's types for the layout deriver (py-common/xwalk_derive.py):
# the debug info lldb has loaded, through SBType. The generated lldb
# extension uses it for builds no pack knows, and xwalk-check.
import lldb

from xwalk_derive import DebugTypes, derive_layout_with

_INT_CLASSES = (lldb.eTypeClassBuiltin, lldb.eTypeClassEnumeration)
_UNSIGNED = set(
    getattr(lldb, n)
    for n in (
        "eBasicTypeUnsignedChar", "eBasicTypeUnsignedShort", "eBasicTypeUnsignedInt", "eBasicTypeUnsignedLong",
        "eBasicTypeUnsignedLongLong", "eBasicTypeUnsignedInt128", "eBasicTypeBool", "eBasicTypeChar16",
        "eBasicTypeChar32", "eBasicTypeUnsignedWChar",
    )
)


def _target():
    return lldb.debugger.GetSelectedTarget()


def _canonical(t):
    return t.GetCanonicalType()


class LldbTypes(DebugTypes):
    source = "the debug info"

    def lookup(self, name):
        t = _target().FindFirstType(name)
        return t if t.IsValid() else None

    def global_type(self, name):
        v = _target().FindFirstGlobalVariable(name)
        return v.GetType() if v.IsValid() else None

    def kind(self, t):
        c = _canonical(t)
        cls = c.GetTypeClass()
        if cls == lldb.eTypeClassPointer:
            return "fnptr" if _canonical(c.GetPointeeType()).GetTypeClass() == lldb.eTypeClassFunction else "ptr"
        if cls in _INT_CLASSES:
            return "int"
        if cls in (lldb.eTypeClassStruct, lldb.eTypeClassUnion, lldb.eTypeClassClass):
            return "struct"
        if cls == lldb.eTypeClassArray:
            return "array"
        return "other"

    def size(self, t):
        return _canonical(t).GetByteSize()

    def align(self, t):
        """lldb 16 has no alignment query: the largest alignment of the scalar members."""
        k = self.kind(t)
        if k in ("ptr", "fnptr"):
            return self.size(t)
        if k == "int":
            return max(1, self.size(t))
        if k == "array":
            return self.align(self.element(t))
        if k == "struct":
            return max([1] + [self.align(mt) for _, _, _, mt in self.members(t)])
        return max(1, min(self.size(t), 8))

    def is_signed(self, t):
        c = _canonical(t)
        if c.GetTypeClass() == lldb.eTypeClassEnumeration:
            c = _canonical(c.GetEnumerationIntegerType())
        return c.GetBasicType() not in _UNSIGNED

    def target(self, t):
        return _canonical(t).GetPointeeType()

    def element(self, t):
        return _canonical(t).GetArrayElementType()

    def count(self, t):
        e = self.size(self.element(t))
        return self.size(t) // e if e else 0

    def members(self, t):
        c = _canonical(t)
        out = []
        for i in range(c.GetNumberOfFields()):
            f = c.GetFieldAtIndex(i)
            out.append((f.GetName() or None, f.GetOffsetInBits(), f.GetBitfieldSizeInBits() if f.IsBitfield() else 0, f.GetType()))
        return out

    def name(self, t):
        return _canonical(t).GetUnqualifiedType().GetName()

    def enumerators(self, t):
        c = _canonical(t)
        if c.GetTypeClass() != lldb.eTypeClassEnumeration:
            return None
        members = c.GetEnumMembers()
        signed = self.is_signed(c)
        out = []
        for i in range(members.GetSize()):
            m = members.GetTypeEnumMemberAtIndex(i)
            out.append((m.GetName(), m.GetValueAsSigned() if signed else m.GetValueAsUnsigned()))
        return out


def derive_layout(spec):
    """(types, globals, errors) for the spec, from the debug info lldb has loaded."""
    return derive_layout_with(LldbTypes(), spec)
