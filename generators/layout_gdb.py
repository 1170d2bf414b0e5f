# Run by `xgen layout` as:
#   gdb -batch -nx -x py-common/xwalk_derive.py -x gdb-py/xwalk_dwarf.py -x generators/layout_gdb.py BINARY
# gdb reads the binary *file* only (no process is attached). Prints the
# layout of every struct, field and global of the spec in XWALK_LAYOUT_SPEC
# as one JSON document between markers.
import json
import os

import gdb

spec = json.loads(os.environ["XWALK_LAYOUT_SPEC"])
types, globals_, errors = derive_layout(spec)  # noqa: F821 (from xwalk_dwarf.py)
enums, enum_errors = derive_enums(GdbTypes(), spec)  # noqa: F821 (from xwalk_derive.py and xwalk_dwarf.py)
print("XWALK-LAYOUT-BEGIN")
print(json.dumps({"types": types, "globals": globals_, "enums": enums, "errors": errors + enum_errors, "gdb": gdb.VERSION}))
print("XWALK-LAYOUT-END")
