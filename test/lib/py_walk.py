"""
Runs one program of the loop IR, printed as Python (printers/py.ts),
under plain python3 with the extensions' own runtime (py-common/xwalk_core.py)
over a fake memory: what test/lib/py-walk.ts sends on stdin, as JSON. It
answers with the value, the elements, or the error, and the budget spent.
Integers travel as decimal strings: exact at any size.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CORE = os.path.join(HERE, "..", "..", "py-common", "xwalk_core.py")
PAGE = 4096


class FakeMemory(object):
    """Mapped regions (sparse: the pages not given are zero) and holes where reads stop short."""

    def __init__(self, regions, holes):
        self.regions = [(int(r["start"]), int(r["size"]), {int(o): bytes.fromhex(h) for o, h in r["pages"]}) for r in regions]
        self.holes = [(int(a), int(b)) for a, b in holes]

    def read_chunk(self, addr, n):
        for start, size, pages in self.regions:
            if start <= addr and addr + n <= start + size:
                for h0, h1 in self.holes:
                    if h0 < addr + n and h1 > addr:
                        n = max(0, h0 - addr)
                out = bytearray(n)
                for i in range((addr - start) // PAGE * PAGE, addr - start + n, PAGE):
                    page = pages.get(i)
                    if page is None:
                        continue
                    lo = max(i, addr - start)
                    hi = min(i + PAGE, addr - start + n)
                    out[lo - (addr - start):hi - (addr - start)] = page[lo - i:hi - i]
                return bytes(out)
        raise AssertionError("fake: a read of %d bytes at %#x outside every region" % (n, addr))

    def ranges(self):
        return [(start, start + size) for start, size, _ in self.regions]


class FakeSymbols(object):
    def __init__(self, symbols, objects):
        self.symbols = [(name, int(value), int(size)) for name, value, size in symbols]
        self.objects = [(name, int(start), int(end), int(bias)) for name, start, end, bias in objects]

    def object_at(self, addr):
        for name, start, end, bias in self.objects:
            if start <= addr < end:
                return name, bias
        return None

    def address(self, name):
        for n, value, _ in self.symbols:
            if n == name:
                return value
        return None

    def symbolize(self, addr):
        for n, value, size in self.symbols:
            if value <= addr < value + size:
                return (n, addr - value)
        return None

    def file_static(self, fn, name):
        return None


def encode(v):
    if v is None:
        return ["n"]
    if isinstance(v, str):
        return ["s", v]
    if isinstance(v, list):
        return ["l", [encode(x) for x in v]]
    return ["i", str(v)]


def load_core():
    ns = {"__name__": "xwalk_core"}
    with open(CORE) as f:
        exec(compile(f.read(), CORE, "exec"), ns)
    return ns


def answer(core, req):
    ns = dict(core)
    exec(compile(req["source"], "<program>", "exec"), ns)
    mem = FakeMemory(req["regions"], req["holes"])
    layout = ns["Layout"](req["layout"], "test layout")
    rt = ns["Runtime"](ns["Snapshot"](mem.read_chunk, mem.ranges()), FakeSymbols(req["symbols"], req.get("objects", [])), int(req["max_nodes"]), int(req["max_total"]))
    rt.visited = int(req["visited"])
    fn = ns["program"](layout)
    this = int(req["self"])
    out = {}
    try:
        if req["kind"] == "seq":
            elems = []

            def take(v):
                elems.append(encode(v))
                return 1

            fn(rt, this, take)
            out["elems"] = elems
        else:
            out["value"] = encode(fn(rt, this))
    except (ns["WalkError"], ns["Fault"]) as e:
        out["error"] = {"type": type(e).__name__, "kind": getattr(e, "kind", None), "message": str(e)}
        if req["kind"] == "seq":
            out["elems"] = elems
    out["visited"] = str(rt.visited)
    return out


def main():
    core = load_core()
    if len(sys.argv) == 3:
        # Served: one request per line on the first FIFO, one answer per line on the second, until EOF.
        with open(sys.argv[1]) as requests, open(sys.argv[2], "w") as answers:
            for line in requests:
                answers.write(json.dumps(answer(core, json.loads(line))) + "\n")
                answers.flush()
        return
    json.dump(answer(core, json.load(sys.stdin)), sys.stdout)


main()
