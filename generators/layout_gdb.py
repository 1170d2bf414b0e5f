# Run by `xgen layout` as:
#   XWALK_RUNTIME_PATH='["py-common", "gdb-py"]' gdb -batch -nx -x generators/layout_gdb.py BINARY
# gdb reads the binary *file* only (no process is attached). Prints the
# layout of every struct, field and global of the spec in XWALK_LAYOUT_SPEC
# as one JSON document between markers.
import json
import os
import sys

import gdb

sys.dont_write_bytecode = True  # nothing written beside the runtime's files
sys.path[:0] = json.loads(os.environ["XWALK_RUNTIME_PATH"])
from xwalk_derive import derive_enums  # noqa: E402 (found on the path just set)
from xwalk_dwarf import GdbTypes, derive_layout  # noqa: E402

spec = json.loads(os.environ["XWALK_LAYOUT_SPEC"])
types, globals_, errors = derive_layout(spec)
enums, enum_errors = derive_enums(GdbTypes(), spec)
print("XWALK-LAYOUT-BEGIN")
print(json.dumps({"types": types, "globals": globals_, "enums": enums, "errors": errors + enum_errors, "gdb": gdb.VERSION}))
print("XWALK-LAYOUT-END")
