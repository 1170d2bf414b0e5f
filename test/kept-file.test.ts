/**
 * core/regular-file.ts readKeptFile, the one reader of files we keep (the
 * layout cache, the packs' symbol tables): a symlink is not followed, a FIFO
 * is refused at once (never a blocked open), and the caller's judge refuses
 * on the fstat of the same open.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { readKeptFile } from '../core/regular-file.ts';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-kept-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
const file = path.join(dir, 'table.json');
fs.writeFileSync(file, '{"x": 1}');

t.test('a regular file judged fine is read whole', async (t) => {
  t.same(readKeptFile(file, () => null), { bytes: Buffer.from('{"x": 1}') });
});

t.test("the judge sees the file's own stat, and its refusal is returned", async (t) => {
  let seen = -1;
  t.same(readKeptFile(file, (st) => ((seen = st.size), `${file} is ${st.size} bytes`)), { refused: `${file} is 8 bytes` });
  t.equal(seen, 8);
});

t.test('a symlink is not followed, even to a good file', async (t) => {
  const link = path.join(dir, 'link.json');
  fs.symlinkSync(file, link);
  t.equal(readKeptFile(link, () => null), null);
});

t.test('a FIFO is refused at once, naming what it is', async (t) => {
  const fifo = path.join(dir, 'fifo.json');
  await execa('mkfifo', [fifo]);
  t.same(readKeptFile(fifo, () => null), { refused: `${fifo} is a FIFO, not a regular file` });
});

t.test('a file that is not there is null', async (t) => {
  t.equal(readKeptFile(path.join(dir, 'none.json'), () => null), null);
});
