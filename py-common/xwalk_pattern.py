# xwalk patterns: the Pike VM of core/pattern-vm.ts, for the programs that
# core/pattern.ts compiles from a schema's binary.version and
# binary.signature. Linear in the bytes scanned whatever the pattern (no
# backtracking regex engine ever sees text from a schema), and the same
# answer as xsample.

_CHAR, _SPLIT, _JMP, _SAVE, _MATCH = "char", "split", "jmp", "save", "match"


def _byte_set(hex_digits):
    v = int(hex_digits, 16)
    return bytes((v >> b) & 1 for b in range(256))


class PatternSearch(object):
    def __init__(self, program):
        self.instrs = [tuple(x) for x in program["instrs"]]
        self.sets = [_byte_set(x[1]) if x[0] == _CHAR else None for x in self.instrs]
        first = _byte_set(program["first"])
        self.first = bytes(b for b in range(256) if first[b])
        self.threads = []  # (pc, start, cap_start, cap_end), in priority order
        self.found = None

    def _close(self, at, new_start):
        seen = set()
        out = []
        for t in self.threads + ([(0, -1, -1, -1)] if new_start else []):
            stack = [t]
            while stack:
                pc, start, cs, ce = stack.pop()
                if pc in seen:
                    continue
                seen.add(pc)
                x = self.instrs[pc]
                if x[0] == _JMP:
                    stack.append((x[1], start, cs, ce))
                elif x[0] == _SPLIT:
                    stack.append((x[2], start, cs, ce))
                    stack.append((x[1], start, cs, ce))
                elif x[0] == _SAVE:
                    slot = x[1]
                    stack.append((pc + 1, at if slot == 0 else start, at if slot == 2 else cs, at if slot == 3 else ce))
                else:
                    out.append((pc, start, cs, ce))
        return out

    def feed(self, data, base):
        """Feeds bytes that start at offset base; True once the search is over."""
        i, n = 0, len(data)
        while i < n:
            if not self.threads:
                if self.found is not None:
                    return True
                i = _skip(data, i, self.first)
                if i >= n:
                    break
            byte = data[i]
            nxt = []
            for pc, start, cs, ce in self._close(base + i, self.found is None):
                if self.instrs[pc][0] == _MATCH:
                    self.found = (start, base + i, cs, ce)
                    break
                if self.sets[pc][byte]:
                    nxt.append((pc + 1, start, cs, ce))
            self.threads = nxt
            i += 1
        return self.found is not None and not self.threads

    def end(self, at):
        for pc, start, cs, ce in self._close(at, False):
            if self.instrs[pc][0] == _MATCH:
                self.found = (start, at, cs, ce)
                break
        self.threads = []


def _skip(data, i, first):
    """The first index at or after i whose byte can start a match (len(data) when none)."""
    if len(first) > 16:
        return i
    best = len(data)
    for b in first:
        j = data.find(bytes((b,)), i, best)
        if j >= 0:
            best = j
    return best


def find_in_file(f, start, end, program, max_scan=64 * 1024 * 1024):
    """The capture of the first match of program in bytes [start, end) of file f (at most max_scan of them), or None."""
    search = PatternSearch(program)
    end = min(end, start + max_scan)
    at = start
    done = False
    while at < end and not done:
        f.seek(at)
        data = f.read(min(1 << 20, end - at))
        if not data:
            break
        done = search.feed(data, at)
        at += len(data)
    if not done:
        search.end(at)
    if search.found is None:
        return None
    _, _, cs, ce = search.found
    f.seek(cs)
    return f.read(ce - cs).decode("latin-1")
