# Sourced in gdb attached to walkee: walks walkee.list and sums .value, timing
# only the walk. XWALK_BENCH=value: gdb.Value (the style of hand-written
# extensions); XWALK_BENCH=ext: the generated extension's walkee-sum command
# (the extension is sourced before this file). Prints one JSON line.
import json
import os
import time

import gdb

method = os.environ["XWALK_BENCH"]
if method == "ext":
    # The extension picks (or derives) the layout on its first command: a cost per session, not per walk.
    gdb.execute("walkee-name", to_string=True)
t0 = time.perf_counter()
if method == "value":
    node = gdb.parse_and_eval("walkee.list")
    count = total = 0
    while int(node) != 0:
        total += int(node["value"])
        count += 1
        node = node["next"]
else:
    out = json.loads(gdb.execute("walkee-sum --json", to_string=True))
    total = out["items"][0]["sum"]
    count = None
t1 = time.perf_counter()
print("XWALK-BENCH " + json.dumps({"count": count, "sum": total, "ns": (t1 - t0) * 1e9}))
