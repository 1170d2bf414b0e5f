/**
 * The Python unit tests (test/py/test_*.py): parts of the gdb and lldb
 * extensions that run under plain python3, no debugger (the layout deriver
 * over a fake type adapter, ...). Each file is one tap assertion.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { root } from './lib/walkee.ts';

const dir = path.join(root, 'test/py');
for (const file of fs.readdirSync(dir).filter((f) => /^test_.*\.py$/.test(f))) {
  t.test(file, async (t) => {
    const r = await execa('python3', ['-B', '-m', 'unittest', '-v', file.replace(/\.py$/, '')], { cwd: dir, reject: false });
    t.equal(r.exitCode, 0, r.stderr);
    t.match(r.stderr, /^Ran [1-9]\d* tests? in /m, 'its tests ran');
  });
}
