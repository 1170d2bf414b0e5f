# xwalk: sizes and offsets from the DWARF gdb has loaded, for the types,
# fields and globals a schema declares (a "spec"), checked against what the
# schema says each field is. Used by `xgen layout` (gdb -batch on a binary
# file) and by the generated gdb extension when it meets a build no pack
# knows. The spec: {"structs": {name: {path: decl}}, "globals": {name: decl}}.
import gdb

def lookup(name):
    for candidate in (name, "struct " + name, "union " + name):
        try:
            return gdb.lookup_type(candidate)
        except gdb.error:
            pass
    return None


def find_member(t, name):
    """(bit offset, field) of member `name`, looking into anonymous members."""
    t = t.strip_typedefs()
    if t.code not in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        return None
    for f in t.fields():
        if f.name == name:
            return f.bitpos, f
        if not f.name:
            inner = find_member(f.type, name)
            if inner:
                return f.bitpos + inner[0], inner[1]
    return None


def kind_of(t):
    t = t.strip_typedefs()
    if t.code == gdb.TYPE_CODE_PTR:
        if t.target().strip_typedefs().code == gdb.TYPE_CODE_FUNC:
            return "fnptr"
        return "ptr"
    if t.code in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_CHAR):
        return "int"
    if t.code in (gdb.TYPE_CODE_STRUCT, gdb.TYPE_CODE_UNION):
        return "struct"
    if t.code == gdb.TYPE_CODE_ARRAY:
        return "array"
    return "other"


def same_type(a, b):
    a = a.strip_typedefs().unqualified()
    b = b.strip_typedefs().unqualified()
    return str(a) == str(b) and a.sizeof == b.sizeof


def pointee_matches(ptr_type, want):
    """want: {"k": "void"|"int"|"struct"|"ptr", ...} as in the IR."""
    target = ptr_type.strip_typedefs().target()
    k = want["k"]
    if k == "void":
        return True
    tcode = target.strip_typedefs().code
    if k == "int":
        return tcode in (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_CHAR, gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_ENUM) and target.sizeof == want["size"]
    if k == "ptr":
        return tcode == gdb.TYPE_CODE_PTR and pointee_matches(target, want["to"])
    declared = lookup(want["name"])
    return declared is not None and same_type(declared, target)


def describe(t):
    return str(t.strip_typedefs()) if t is not None else "?"


def check_decl(errors, where, t, decl):
    k = kind_of(t)
    want = decl["k"]
    if want == "int" and k != "int":
        errors.append({"where": where, "message": "DWARF says %s, not an integer" % describe(t)})
    elif want == "fnptr" and k != "fnptr":
        errors.append({"where": where, "message": "DWARF says %s, not a function pointer" % describe(t)})
    elif want == "ptr":
        if k not in ("ptr", "fnptr") or not pointee_matches(t, decl["to"]):
            errors.append({"where": where, "message": "DWARF says %s, which does not match the schema" % describe(t)})
    elif want == "struct":
        declared = lookup(decl["name"])
        if k != "struct" or declared is None or not same_type(declared, t):
            errors.append({"where": where, "message": "DWARF says %s, not %s" % (describe(t), decl["name"])})


def field_layout(errors, struct_name, st, path, decl):
    bit = 0
    cur = st
    field = None
    for part in path.split("."):
        found = find_member(cur, part)
        if found is None:
            errors.append({"where": struct_name + "." + path, "message": "DWARF has no member '%s' in %s" % (part, describe(cur))})
            return None
        bit += found[0]
        field = found[1]
        cur = field.type
    t = cur.strip_typedefs()
    out = {"offset": bit // 8, "size": t.sizeof}
    if field.bitsize:
        out["bit"] = bit % 8
        out["bits"] = field.bitsize
    if kind_of(t) == "int":
        out["signed"] = bool(t.is_signed)
    check_decl(errors, struct_name + "." + path, cur, decl)
    return out



def derive_layout(spec):
    """(types, globals, errors) for the spec, from the DWARF gdb has loaded."""
    errors = []
    types = {}
    for name, fields in spec["structs"].items():
        t = lookup(name)
        if t is None:
            errors.append({"where": name, "message": "DWARF has no type named %s" % name})
            continue
        st = t.strip_typedefs()
        entry = {"size": st.sizeof, "align": st.alignof, "fields": {}}
        for path, decl in fields.items():
            f = field_layout(errors, name, st, path, decl)
            if f is not None:
                entry["fields"][path] = f
        types[name] = entry

    globals_ = {}
    for name, decl in spec["globals"].items():
        sym = gdb.lookup_global_symbol(name) or gdb.lookup_static_symbol(name)
        if sym is None:
            errors.append({"where": name, "message": "DWARF has no global variable %s" % name})
            continue
        t = sym.type.strip_typedefs()
        entry = {"size": t.sizeof}
        if kind_of(t) == "int":
            entry["signed"] = bool(t.is_signed)
        check_decl(errors, name, sym.type, decl)
        globals_[name] = entry
    return types, globals_, errors
