/**
 * xwalk-check: where the binary has debug info, the extension's layout is
 * compared with the debugger's own types, and every mismatch is reported.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { binPath, root, startWalkee } from './lib/walkee.ts';

const xgen = path.join(root, 'dist/xgen.js');

t.test('a layout that disagrees with the debug info is reported, field by field', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-check-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const packs = path.join(dir, 'packs');
  fs.mkdirSync(path.join(packs, 'walkee'), { recursive: true });
  fs.copyFileSync(path.join(root, 'packs/walkee/schema.yaml'), path.join(packs, 'walkee/schema.yaml'));
  const env = { XWALK_PACKS: packs };
  const made = await execa(process.execPath, [xgen, 'layout', '--pack', 'walkee', binPath], { env });
  const file = made.stdout.split(':')[0];
  const layout = JSON.parse(fs.readFileSync(file, 'utf8'));
  const value = layout.types.walkee_item_t.fields.value;
  value.offset += 8;
  layout.types.ngx_pool_t.size += 16;
  fs.writeFileSync(file, JSON.stringify(layout));
  for (const dbg of ['gdb', 'lldb']) await execa(process.execPath, [xgen, dbg, '--pack', 'walkee', '--out', path.join(dir, `${dbg}.py`)], { env });

  const w = await startWalkee(['--nodes', '10']);
  t.teardown(() => w.kill());
  const pid = String(w.child.pid);
  const g = await execa('gdb', ['-batch', '-nx', '-p', pid, '-ex', `source ${path.join(dir, 'gdb.py')}`, '-ex', 'xwalk-check'], { reject: false, env: { DEBUGINFOD_URLS: '' } });
  const l = await execa('lldb-16', ['-b', '--no-lldbinit', '-p', pid, '-o', `command script import ${path.join(dir, 'lldb.py')}`, '-o', 'xwalk-check'], { reject: false });
  for (const [name, out] of [
    ['gdb', g.stdout],
    ['lldb', l.stdout],
  ]) {
    t.match(out, /xwalk-check: 2 mismatches with the layout walkee 1\.0 \([0-9a-f]{12}\):/, `${name}: counts the mismatches`);
    t.match(out, new RegExp(`walkee_item_t\\.value: offset ${value.offset} in the layout, ${value.offset - 8} in the debug info`), `${name}: names the field`);
    t.match(out, new RegExp(`ngx_pool_t: size ${layout.types.ngx_pool_t.size} in the layout, ${layout.types.ngx_pool_t.size - 16} in the debug info`), `${name}: names the struct size`);
  }
  const ok = await execa('gdb', ['-batch', '-nx', '-p', pid, '-ex', `source ${path.join(root, 'generated/walkee.py')}`, '-ex', 'xwalk-check'], { reject: false, env: { DEBUGINFOD_URLS: '' } });
  t.match(ok.stdout, /xwalk-check: the layout walkee 1\.0 \([0-9a-f]{12}, derived from DWARF\) matches the debug info \(17 types\)/, 'the committed extension agrees');
});
