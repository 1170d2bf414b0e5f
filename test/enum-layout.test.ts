/**
 * Enum names come from DWARF, by build: a small C program with enums of
 * each kind (a typedef of an anonymous enum, an enum tag, aliases,
 * negative and 32-bit values) compiled with -g; `xgen layout`'s gdb and
 * the lldb extensions' deriver (lldb-16) must both give the enumerators
 * the source declares, in its order.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { extractLayout } from '../generators/layout.ts';
import { parseSchema } from '../printers/checked-schema.ts';
import { root } from './lib/walkee.ts';

const C = `enum color { RED, GREEN = 5, BLUE, CYAN = 5 };
typedef enum { M_OFF = -2, M_ON = 0x7fffffff, M_MAX = 0xffffffffu } mode_t2;
struct lamp { enum color color; mode_t2 mode; int lit; };
struct lamp lamp = { BLUE, M_ON, 1 };
int main(void) { return lamp.lit - 1; }
`;

const SCHEMA = `xwalk: 1
pack: lamp
types:
  lamp:
    fields:
      color: uint
      mode: int
      lit: int
enums:
  color: {}
  mode_t2: {}
globals:
  lamp: lamp
views:
  lamp:
    of: lamp
    roots:
      g: '&lamp'
    columns:
      color: enum_name(self.color, color)
`;

/** As the source declares them, in its order. */
const TRUTH = { color: { RED: 0, GREEN: 5, BLUE: 6, CYAN: 5 }, mode_t2: { M_OFF: -2, M_ON: 2147483647, M_MAX: 4294967295 } };

t.test('enumerators from DWARF: gdb (xgen layout) and lldb-16 give what the source declares', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-enums-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'lamp.c'), C);
  const bin = path.join(dir, 'lamp');
  await execa('cc', ['-g', '-O0', '-o', bin, path.join(dir, 'lamp.c')]);
  const pack = parseSchema(SCHEMA, path.join(dir, 'schema.yaml'));
  const layout = await extractLayout(pack, bin, { release: 'test', buildId: '00' });
  t.same(layout.enums, TRUTH, 'gdb');
  t.same(Object.keys(layout.enums!.color), Object.keys(TRUTH.color), 'in declaration order');
  const script = [
    `import sys; sys.dont_write_bytecode = True; sys.path[:0] = ${JSON.stringify([path.join(root, 'py-common'), path.join(root, 'lldb-py')])}`,
    `from xwalk_derive import derive_enums; from xwalk_dwarf_lldb import LldbTypes`,
    `import json; print("ENUMS " + json.dumps(derive_enums(LldbTypes(), {"enums": ["color", "mode_t2", "nope"]})))`,
  ].join('; ');
  const r = await execa('lldb-16', ['-b', '-o', `target create ${bin}`, '-o', `script ${script}`], { reject: false });
  const line = r.stdout.split('\n').find((l) => l.startsWith('ENUMS '));
  t.ok(line, r.stdout + r.stderr);
  const [enums, errors] = JSON.parse(line!.slice(6));
  t.same(enums, TRUTH, 'lldb-16');
  t.same(errors, [{ where: 'nope', message: 'the debug info has no enum named nope' }], 'an enum the binary lacks is an error of the layout');
});
