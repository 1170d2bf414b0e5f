# drgn (Debian's python3-drgn 0.0.22) on a live walkee: drgn reads memory
# through /proc/PID/mem and never stops the process. Walks walkee.list and
# sums .value, timing only the walk: objects (drgn.Object member access) or
# raw (prog.read of each field at offsets drgn's types give).
#   /usr/bin/python3 bench/drgn_walk.py PID objects|raw
import json
import struct
import sys
import time

import drgn

pid, method = int(sys.argv[1]), sys.argv[2]
prog = drgn.Program()
prog.set_pid(pid)
try:
    prog.load_default_debug_info()  # the executable as mapped, with its load bias (PIE)
except drgn.MissingDebugInfoError:
    pass  # the vDSO and stripped libraries have none; walkee has it
t0 = time.perf_counter()
count = total = 0
if method == "objects":
    node = prog["walkee"].list
    while node:
        total += node.value.value_()
        count += 1
        node = node.next
else:
    item = prog.type("walkee_item_t")
    next_off = drgn.offsetof(item, "next")
    value_off = drgn.offsetof(item, "value")
    p = prog["walkee"].list.value_()
    while p:
        total += struct.unpack("<Q", prog.read(p + value_off, 8))[0]
        p = struct.unpack("<Q", prog.read(p + next_off, 8))[0]
        count += 1
t1 = time.perf_counter()
print("XWALK-BENCH " + json.dumps({"count": count, "sum": total, "ns": (t1 - t0) * 1e9}))
