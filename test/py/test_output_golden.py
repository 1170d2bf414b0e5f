"""
The output layer of the gdb and lldb extensions (py-common/xwalk_output.py)
and their layout choice (xwalk_choice.py) against the golden cases xsample
passes too (test/fixtures/output-golden/, test/output-golden.test.ts): a
result's text and JSON, one sample of a stack-shaped view (or a flame graph)
as folded lines, byte for byte, and which layout serves a process.
"""
import json
import os
import sys
import unittest
from types import SimpleNamespace

HERE = os.path.dirname(os.path.abspath(__file__))
GOLDEN = os.path.join(HERE, "..", "fixtures", "output-golden")
# The modules as the generated extension makes them (each its own namespace, imported by name).
sys.path.insert(0, os.path.join(HERE, "..", "..", "py-common"))
import xwalk_choice  # noqa: E402
import xwalk_output  # noqa: E402


def read(name):
    """A golden file: an integer past 2^53 is written {"$int": "decimal"}; rows are [column, value] pairs."""
    with open(os.path.join(GOLDEN, name)) as f:
        return json.load(f, object_hook=lambda o: int(o["$int"]) if set(o) == {"$int"} else o)["cases"]


def pairs(row):
    return [(k, v) for k, v in row]


class Results(unittest.TestCase):
    def test_text_and_json(self):
        cases = read("results.json")
        self.assertGreaterEqual(len(cases), 8)
        for c in cases:
            r = c["result"]
            view = SimpleNamespace(name=r["view"])
            layout = SimpleNamespace(release=r["release"])
            clock = r.get("clock")
            clock = SimpleNamespace(source=clock["source"], now_ms=clock["now_ms"], monotonic_ms=clock["monotonic_ms"], doc=clock.get("doc")) if clock else None
            rows = [pairs(x) for x in r["items"]]
            with self.subTest(c["name"]):
                self.assertEqual(xwalk_output.result_text(view, r["pid"], r["pack"], layout, clock, rows, r["errors"]), c["text"])
                self.assertEqual(xwalk_output.result_json(view, r["pid"], r["pack"], layout, r["build_id"], clock, rows, r["errors"], r.get("consistency")), c["json"])


class Folded(unittest.TestCase):
    def test_folded_lines(self):
        cases = read("folded.json")
        self.assertGreaterEqual(len(cases), 5)
        for c in cases:
            weights = {}
            for p in c["parts"]:
                s = p["stack"]
                view = SimpleNamespace(stack=(s["frames"], s["weight"], s["leaves"]))
                xwalk_output.folded_add(view, [pairs(x) for x in p["rows"]], c["pid"], weights)
            with self.subTest(c["name"]):
                self.assertEqual("\n".join(xwalk_output.folded_sorted(weights)), c["folded"])

    def test_one_view(self):
        """folded_lines, what --folded writes of one view, is folded_add and folded_sorted."""
        c = read("folded.json")[0]
        s = c["parts"][0]["stack"]
        view = SimpleNamespace(stack=(s["frames"], s["weight"], s["leaves"]))
        self.assertEqual("\n".join(xwalk_output.folded_lines(view, [pairs(x) for x in c["parts"][0]["rows"]], c["pid"])), c["folded"])


class LayoutChoice(unittest.TestCase):
    def test_choice_or_refusal(self):
        cases = read("layout-choice.json")
        self.assertGreaterEqual(len(cases), 10)
        for c in cases:
            with self.subTest(c["name"]):
                self.assertEqual(xwalk_choice.choose_layout(c["layouts"], c["facts"]), c["expect"])


if __name__ == "__main__":
    unittest.main()
