# Imported in lldb-16 attached to walkee: walks walkee.list and sums .value,
# timing only the walk. XWALK_BENCH=sbvalue: SBValue (Dereference and
# GetChildMemberWithName, the style of hand-written scripts); raw: one
# process.ReadMemory per field read; ext: the generated extension's
# walkee-sum command (imported before this file). Prints one JSON line.
import json
import os
import struct
import time

import lldb


def __lldb_init_module(debugger, internal_dict):
    method = os.environ["XWALK_BENCH"]
    target = debugger.GetSelectedTarget()
    process = target.GetProcess()
    if method == "ext":
        # The extension picks (or derives) the layout on its first command: a cost per session, not per walk.
        debugger.GetCommandInterpreter().HandleCommand("walkee-name", lldb.SBCommandReturnObject())
    t0 = time.perf_counter()
    count = total = 0
    if method == "sbvalue":
        node = target.FindFirstGlobalVariable("walkee").GetChildMemberWithName("list")
        while node.GetValueAsUnsigned() != 0:
            v = node.Dereference()
            total += v.GetChildMemberWithName("value").GetValueAsUnsigned()
            count += 1
            node = v.GetChildMemberWithName("next")
    elif method == "raw":
        root = target.FindFirstGlobalVariable("walkee")
        p = root.GetChildMemberWithName("list").GetValueAsUnsigned()
        err = lldb.SBError()
        while p != 0:
            total += struct.unpack("<Q", process.ReadMemory(p + 8, 8, err))[0]
            p = struct.unpack("<Q", process.ReadMemory(p, 8, err))[0]
            count += 1
    else:
        result = lldb.SBCommandReturnObject()
        debugger.GetCommandInterpreter().HandleCommand("walkee-sum --json", result)
        total = json.loads(result.GetOutput())["items"][0]["sum"]
        count = None
    t1 = time.perf_counter()
    print("XWALK-BENCH " + json.dumps({"count": count, "sum": total, "ns": (t1 - t0) * 1e9}))
