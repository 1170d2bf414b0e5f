# Run by `xgen probe --dwarf FILE` as:
#   gdb -batch -nx -x generators/probe_gdb.py FILE
# gdb reads the file only. For each name in XWALK_PROBE_NAMES (a JSON list),
# prints how C spells the type: "typedef" (the name alone), "struct",
# "union" or "enum" (the tag, with its keyword), or null when the DWARF has
# no such type; one JSON document between markers.
import json
import os

import gdb

KEYWORDS = {gdb.TYPE_CODE_STRUCT: "struct", gdb.TYPE_CODE_UNION: "union", gdb.TYPE_CODE_ENUM: "enum"}


def spelling(name):
    try:
        t = gdb.lookup_type(name)
        # In C a bare name finds a typedef (or a base type); some gdb versions find a tag too.
        return "typedef" if t.code == gdb.TYPE_CODE_TYPEDEF else KEYWORDS.get(t.code, "typedef")
    except gdb.error:
        pass
    for keyword in ("struct", "union", "enum"):
        try:
            gdb.lookup_type(keyword + " " + name)
            return keyword
        except gdb.error:
            pass
    return None


names = json.loads(os.environ["XWALK_PROBE_NAMES"])
print("XWALK-PROBE-BEGIN")
print(json.dumps({n: spelling(n) for n in names}))
print("XWALK-PROBE-END")
