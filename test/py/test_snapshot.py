"""
The extensions' snapshot (py-common/xwalk_core.py Snapshot) reads as xsample's does: the first miss in a
64 KiB window reads its page alone, a second one the whole window clipped to its range, and bytes read once
are what every later read sees, even after the window is read whole.
"""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "py-common"))

from xwalk_core import PAGE, Snapshot  # noqa: E402

BASE = 0x7F5500000000  # 64 KiB-aligned


class Memory(object):
    """Bytes of [BASE, BASE + size), and every read asked of them."""

    def __init__(self, size):
        self.data = bytearray(size)
        self.reads = []

    def read_chunk(self, addr, n):
        self.reads.append((addr - BASE, n))
        off = addr - BASE
        return bytes(self.data[off:off + n])

    def put(self, addr, value):
        self.data[addr - BASE:addr - BASE + 8] = value.to_bytes(8, "little")


class SnapshotReadsTest(unittest.TestCase):
    def test_a_page_first_then_the_window(self):
        mem = Memory(0x20000)
        s = Snapshot(mem.read_chunk, [(BASE, BASE + 0x20000)])
        s.u64(BASE + 3 * PAGE)
        s.u64(BASE + 0x10000 + 5 * PAGE)
        self.assertEqual(mem.reads, [(3 * PAGE, PAGE), (0x10000 + 5 * PAGE, PAGE)], "a sparse walk reads a page a node")
        s.u64(BASE + 8 * PAGE)
        self.assertEqual(mem.reads[2:], [(0, 0x10000)], "a second page of the window reads it whole")
        s.u64(BASE + 9 * PAGE)
        self.assertEqual(len(mem.reads), 3, "then no more reads in it")

    def test_a_window_clipped_to_its_range(self):
        mem = Memory(0x10000)
        s = Snapshot(mem.read_chunk, [(BASE + PAGE, BASE + 4 * PAGE)])
        s.u64(BASE + PAGE)
        s.u64(BASE + 2 * PAGE)
        self.assertEqual(mem.reads, [(PAGE, PAGE), (PAGE, 3 * PAGE)])

    def test_bytes_read_first_are_kept_when_the_window_is_read(self):
        mem = Memory(0x10000)
        mem.put(BASE + 16, 1)
        s = Snapshot(mem.read_chunk, [(BASE, BASE + 0x10000)])
        self.assertEqual(s.u64(BASE + 16), 1)
        mem.put(BASE + 16, 2)
        s.u64(BASE + 4 * PAGE)  # reads the window whole, with the new value at BASE + 16
        self.assertEqual(s.u64(BASE + 16), 1, "the fast path over the whole window sees what the first read did")
        self.assertEqual(s.int(BASE + 16, 4, False), 1)


if __name__ == "__main__":
    unittest.main()
