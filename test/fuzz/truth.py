"""gdb's own answer for each fuzz column: the C twin of each expression,
evaluated by gdb.parse_and_eval on the stopped process (test/fuzz/gen-schema.ts
writes the twins). Run inside gdb:
    python import sys; sys.argv = ['truth', TWINS_JSON, OUT_JSON]; exec(open(TRUTH_PY).read())
Each answer: {"int": "digits"} | {"text": "..."} | {"list": [...]} | {"null": true}
| {"error": "message"} | {"shape": "..."} (the memory is not shaped as the generator wrote it)."""
import json
import sys

import gdb


def escape(b):
    return ''.join(chr(c) if 0x20 <= c <= 0x7e and c != 0x5c else '\\x%02x' % c for c in b)


def ival(c):
    return int(gdb.parse_and_eval(c))


def read(addr, n):
    return bytes(gdb.selected_inferior().read_memory(addr, n)) if n > 0 else b''


def cstring(addr, limit):
    out = b''
    while len(out) < limit:
        byte = read(addr + len(out), 1)
        if byte == b'\0':
            return out, False
        out += byte
    return out, True


def answer(t):
    if 'error' in t:
        return {'error': t['error']}
    if 'c' in t:
        return {'int': str(ival(t['c']))}
    if 'ptr' in t:
        return {'text': hex(ival('(unsigned long)(%s)' % t['ptr']))}
    if 'cstr' in t:
        addr = ival('(unsigned long)(%s)' % t['cstr'])
        if addr == 0:
            return {'text': ''}
        b, cut = cstring(addr, 1024)
        return {'text': escape(b) + ('...' if cut else '')}
    if 'bytes' in t:
        n = ival(t['len'])
        if n == 0:
            return {'text': ''}
        b = read(ival('(unsigned long)(%s)' % t['bytes']), min(n, 4096))
        return {'text': escape(b) + ('...' if n > 4096 else '')}
    if 'cbuf' in t:
        b = read(int(gdb.parse_and_eval(t['cbuf']).address), t['n'])
        return {'text': escape(b.split(b'\0')[0])}
    if 'agg' in t:
        if not ival('(long)(%s)' % t['end']):
            return {'shape': 'the walk does not end where the program put its end: ' + t['end']}
        fn = t['agg']
        vals = []
        for c in t['items']:
            v = ival(c)
            vals.append(v)
            if (fn == 'all' and v == 0) or (fn == 'any' and v != 0):
                break
        if fn == 'count':
            return {'int': str(sum(1 for v in vals if v != 0))}
        if fn == 'sum':
            return {'int': str(sum(vals))}
        if fn in ('min', 'max'):
            return {'int': str((min if fn == 'min' else max)(vals))} if vals else {'null': True}
        if fn == 'all':
            return {'int': '1' if all(v != 0 for v in vals) else '0'}
        if fn == 'any':
            return {'int': '1' if any(v != 0 for v in vals) else '0'}
        return {'list': [str(v) for v in vals]}
    raise ValueError('unknown twin %r' % (t,))


def main(twins_path, out_path):
    twins = json.load(open(twins_path))
    out = {}
    for name, t in twins.items():
        try:
            out[name] = answer(t)
        except gdb.error as e:
            out[name] = {'error': 'gdb: ' + str(e)}
    with open(out_path, 'w') as f:
        json.dump(out, f)


main(sys.argv[1], sys.argv[2])
