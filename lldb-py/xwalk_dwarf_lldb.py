# xwalk: sizes and offsets from the debug info lldb has loaded, for the
# types, fields and globals of a schema's spec, checked against what the
# schema says each field is. The lldb twin of gdb-py/xwalk_dwarf.py: the
# generated lldb extension uses it for builds no pack knows, and xwalk-check.
import lldb

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


def canonical(t):
    return t.GetCanonicalType()


def lookup(name):
    t = _target().FindFirstType(name)
    return t if t.IsValid() else None


def kind_of(t):
    c = canonical(t)
    cls = c.GetTypeClass()
    if cls == lldb.eTypeClassPointer:
        return "fnptr" if canonical(c.GetPointeeType()).GetTypeClass() == lldb.eTypeClassFunction else "ptr"
    if cls in _INT_CLASSES:
        return "int"
    if cls in (lldb.eTypeClassStruct, lldb.eTypeClassUnion, lldb.eTypeClassClass):
        return "struct"
    if cls == lldb.eTypeClassArray:
        return "array"
    return "other"


def is_signed(t):
    c = canonical(t)
    if c.GetTypeClass() == lldb.eTypeClassEnumeration:
        c = canonical(c.GetEnumerationIntegerType())
    return c.GetBasicType() not in _UNSIGNED


def alignment(t):
    """lldb 16 has no alignment query: the largest alignment of the scalar members."""
    c = canonical(t)
    k = kind_of(c)
    if k in ("ptr", "fnptr"):
        return c.GetByteSize()
    if k == "int":
        return max(1, c.GetByteSize())
    if k == "array":
        return alignment(c.GetArrayElementType())
    if k == "struct":
        return max([1] + [alignment(c.GetFieldAtIndex(i).GetType()) for i in range(c.GetNumberOfFields())])
    return max(1, min(c.GetByteSize(), 8))


def find_member(t, name):
    """(bit offset, member) of `name`, looking into anonymous members."""
    c = canonical(t)
    if kind_of(c) != "struct":
        return None
    for i in range(c.GetNumberOfFields()):
        f = c.GetFieldAtIndex(i)
        if f.GetName() == name:
            return f.GetOffsetInBits(), f
        if not f.GetName():
            inner = find_member(f.GetType(), name)
            if inner:
                return f.GetOffsetInBits() + inner[0], inner[1]
    return None


def same_type(a, b):
    a, b = canonical(a).GetUnqualifiedType(), canonical(b).GetUnqualifiedType()
    return a.GetName() == b.GetName() and a.GetByteSize() == b.GetByteSize()


def pointee_matches(ptr_type, want):
    target = canonical(ptr_type).GetPointeeType()
    k = want["k"]
    if k == "void":
        return True
    if k == "int":
        return kind_of(target) == "int" and target.GetByteSize() == want["size"]
    if k == "ptr":
        return kind_of(target) in ("ptr", "fnptr") and pointee_matches(target, want["to"])
    declared = lookup(want["name"])
    return declared is not None and same_type(declared, target)


def describe(t):
    return canonical(t).GetName() if t is not None else "?"


def check_decl(errors, where, t, decl):
    k = kind_of(t)
    want = decl["k"]
    if want == "int" and k != "int":
        errors.append({"where": where, "message": "the debug info says %s, not an integer" % describe(t)})
    elif want == "fnptr" and k != "fnptr":
        errors.append({"where": where, "message": "the debug info says %s, not a function pointer" % describe(t)})
    elif want == "ptr":
        if k not in ("ptr", "fnptr") or not pointee_matches(t, decl["to"]):
            errors.append({"where": where, "message": "the debug info says %s, which does not match the schema" % describe(t)})
    elif want == "struct":
        declared = lookup(decl["name"])
        if k != "struct" or declared is None or not same_type(declared, t):
            errors.append({"where": where, "message": "the debug info says %s, not %s" % (describe(t), decl["name"])})


def field_layout(errors, struct_name, st, path, decl):
    bit = 0
    cur = st
    member = None
    for part in path.split("."):
        found = find_member(cur, part)
        if found is None:
            errors.append({"where": struct_name + "." + path, "message": "the debug info has no member '%s' in %s" % (part, describe(cur))})
            return None
        bit += found[0]
        member = found[1]
        cur = member.GetType()
    out = {"offset": bit // 8, "size": canonical(cur).GetByteSize()}
    if member.IsBitfield():
        out["bit"] = bit % 8
        out["bits"] = member.GetBitfieldSizeInBits()
    if kind_of(cur) == "int":
        out["signed"] = is_signed(cur)
    check_decl(errors, struct_name + "." + path, cur, decl)
    return out


def derive_layout(spec):
    """(types, globals, errors) for the spec, from the debug info lldb has loaded."""
    errors = []
    types = {}
    for name, fields in spec["structs"].items():
        t = lookup(name)
        if t is None:
            errors.append({"where": name, "message": "the debug info has no type named %s" % name})
            continue
        entry = {"size": canonical(t).GetByteSize(), "align": alignment(t), "fields": {}}
        for path, decl in fields.items():
            f = field_layout(errors, name, t, path, decl)
            if f is not None:
                entry["fields"][path] = f
        types[name] = entry
    globals_ = {}
    for name, decl in spec["globals"].items():
        v = _target().FindFirstGlobalVariable(name)
        if not v.IsValid():
            errors.append({"where": name, "message": "the debug info has no global variable %s" % name})
            continue
        entry = {"size": canonical(v.GetType()).GetByteSize()}
        if kind_of(v.GetType()) == "int":
            entry["signed"] = is_signed(v.GetType())
        check_decl(errors, name, v.GetType(), decl)
        globals_[name] = entry
    return types, globals_, errors
