# xwalk: a layout (sizes and offsets) from a debugger's types, for the
# types, fields and globals a schema declares (a "spec"), each checked
# against what the schema says it is. Written once over a small adapter
# (DebugTypes below); gdb-py/xwalk_dwarf.py and lldb-py/xwalk_dwarf_lldb.py
# adapt gdb's and lldb's type APIs, and the unit tests a fake one.
# The spec: {"structs": {name: {path: decl}}, "globals": {name: decl}}, decl
# as in the IR ({"k": "int"}, {"k": "ptr", "to": ...}, {"k": "array", ...}).


class DebugTypes(object):
    """What derive_layout() asks of a debugger about its types. A type is whatever the adapter returns."""

    #: how messages name the debug info: "DWARF says ..." (gdb) or "the debug info says ..." (lldb)
    source = "the debug info"

    def lookup(self, name):
        """The type named name (a typedef, a struct or union tag), or None."""
        raise NotImplementedError

    def global_type(self, name):
        """The type of the global variable name, or None when there is none."""
        raise NotImplementedError

    def kind(self, t):
        """'ptr', 'fnptr', 'int', 'struct' (or union), 'array' or 'other', typedefs seen through."""
        raise NotImplementedError

    def size(self, t):
        raise NotImplementedError

    def align(self, t):
        raise NotImplementedError

    def is_signed(self, t):
        raise NotImplementedError

    def target(self, t):
        """What a pointer points to."""
        raise NotImplementedError

    def element(self, t):
        """An array's element type."""
        raise NotImplementedError

    def count(self, t):
        """An array's number of elements."""
        raise NotImplementedError

    def members(self, t):
        """A struct's or union's members: (name or None when anonymous, bit offset, bit size or 0, type)."""
        raise NotImplementedError

    def name(self, t):
        """The type as C writes it, typedefs seen through (for messages and for telling types apart)."""
        raise NotImplementedError

    def lookup_enum(self, name):
        """The enum type named name (a typedef or an enum tag), or None."""
        return self.lookup(name)

    def enumerators(self, t):
        """An enum's enumerators as (name, value), in declaration order; None when t is not an enum."""
        raise NotImplementedError


def find_member(types, t, name):
    """(bit offset, bit size, type) of member name, looking into anonymous members, or None."""
    if types.kind(t) != "struct":
        return None
    for member, bit, bits, mt in types.members(t):
        if member == name:
            return bit, bits, mt
        if not member:
            inner = find_member(types, mt, name)
            if inner:
                return bit + inner[0], inner[1], inner[2]
    return None


def same_type(types, a, b):
    return types.name(a) == types.name(b) and types.size(a) == types.size(b)


def matches(types, t, want):
    """Whether the type t is what the IR's pointee (or array element) want says."""
    k = want["k"]
    if k == "void":
        return True
    if k == "int":
        return types.kind(t) == "int" and types.size(t) == want["size"]
    if k == "ptr":
        return types.kind(t) in ("ptr", "fnptr") and matches(types, types.target(t), want["to"])
    declared = types.lookup(want["name"])
    return declared is not None and types.kind(t) == "struct" and same_type(types, declared, t)


def check_decl(types, errors, where, t, decl):
    k = types.kind(t)
    want = decl["k"]
    says = "%s says %s" % (types.source, types.name(t))
    if want == "int" and k != "int":
        errors.append({"where": where, "message": "%s, not an integer" % says})
    elif want == "fnptr" and k != "fnptr":
        errors.append({"where": where, "message": "%s, not a function pointer" % says})
    elif want == "ptr":
        if k not in ("ptr", "fnptr") or not matches(types, types.target(t), decl["to"]):
            errors.append({"where": where, "message": "%s, which does not match the schema" % says})
    elif want == "struct":
        declared = types.lookup(decl["name"])
        if k != "struct" or declared is None or not same_type(types, declared, t):
            errors.append({"where": where, "message": "%s, not %s" % (says, decl["name"])})
    elif want == "array":
        if k != "array" or not matches(types, types.element(t), decl["elem"]):
            errors.append({"where": where, "message": "%s, which does not match the schema" % says})
        elif types.count(t) != decl["count"]:
            errors.append({"where": where, "message": "%s: %d elements, not %d" % (says, types.count(t), decl["count"])})


def field_layout(types, errors, struct_name, st, path, decl):
    bit = 0
    bits = 0
    cur = st
    for part in path.split("."):
        found = find_member(types, cur, part)
        if found is None:
            errors.append({"where": struct_name + "." + path, "message": "%s has no member '%s' in %s" % (types.source, part, types.name(cur))})
            return None
        bit += found[0]
        bits = found[1]
        cur = found[2]
    out = {"offset": bit // 8, "size": types.size(cur)}
    if bits:
        out["bit"] = bit % 8
        out["bits"] = bits
    if types.kind(cur) == "int":
        out["signed"] = bool(types.is_signed(cur))
    check_decl(types, errors, struct_name + "." + path, cur, decl)
    return out


def derive_enums(types, spec):
    """(enums, errors): each enum the spec names (spec["enums"]), its enumerators as {name: value} in declaration order."""
    enums, errors = {}, []
    for name in spec.get("enums", []):
        t = types.lookup_enum(name)
        items = types.enumerators(t) if t is not None else None
        if items is None:
            errors.append({"where": name, "message": "%s has no enum named %s" % (types.source, name)})
            continue
        enums[name] = dict((n, int(v)) for n, v in items)
    return enums, errors


def derive_layout_with(types, spec):
    """(types, globals, errors) for the spec, from what the adapter says."""
    errors = []
    out_types = {}
    for name, fields in spec["structs"].items():
        t = types.lookup(name)
        if t is None:
            errors.append({"where": name, "message": "%s has no type named %s" % (types.source, name)})
            continue
        entry = {"size": types.size(t), "align": types.align(t), "fields": {}}
        for path, decl in fields.items():
            f = field_layout(types, errors, name, t, path, decl)
            if f is not None:
                entry["fields"][path] = f
        out_types[name] = entry
    out_globals = {}
    for name, decl in spec["globals"].items():
        t = types.global_type(name)
        if t is None and name in spec.get("optional", {}):
            continue  # a build may lack it (optional: in the schema): left out, read as unavailable
        if t is None:
            errors.append({"where": name, "message": "%s has no global variable %s" % (types.source, name)})
            continue
        entry = {"size": types.size(t)}
        if types.kind(t) == "int":
            entry["signed"] = bool(types.is_signed(t))
        check_decl(types, errors, name, t, decl)
        out_globals[name] = entry
    return out_types, out_globals, errors
