/**
 * Every file xsample writes (record -o FILE): never through a symbolic
 * link, never onto a file of another user, and an existing file replaced
 * atomically - the data is written beside it into a fresh file (O_EXCL,
 * O_NOFOLLOW: a name someone planted is not opened) and renamed over it,
 * so a reader sees the old file or the new one, never half of one.
 * checkOutput says what is wrong before any sampling; writeOutput checks
 * again (the folder may have changed meanwhile) and writes.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../../core/errors.ts';

const kindOf = (st: fs.Stats): string => (st.isDirectory() ? 'a folder' : st.isSymbolicLink() ? 'a symbolic link (not followed)' : 'not a regular file');

/** Throws, in one line, when FILE cannot be written as writeOutput writes it; returns the mode to give it. */
export function checkOutput(file: string): number {
  if (file.endsWith('/')) throw new UserError(`cannot write ${file}: it names a folder; give a file name`);
  let st: fs.Stats | null = null;
  try {
    st = fs.lstatSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new UserError(`cannot write ${file}: ${(err as Error).message}`);
  }
  if (st) {
    if (!st.isFile()) throw new UserError(`cannot write ${file}: it is ${kindOf(st)}`);
    const me = process.geteuid?.() ?? st.uid;
    if (st.uid !== me) throw new UserError(`cannot write ${file}: it belongs to uid ${st.uid}, not to this user (${me}): not replaced`);
  }
  const dir = path.dirname(file);
  try {
    if (!fs.statSync(dir).isDirectory()) throw new UserError(`cannot write ${file}: ${dir} is not a folder`);
    fs.accessSync(dir, fs.constants.W_OK);
  } catch (err) {
    if (err instanceof UserError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot write ${file}: ${code === 'ENOENT' ? `no folder ${dir}` : code === 'EACCES' ? `the folder ${dir} is not writable` : (err as Error).message}`);
  }
  return st ? st.mode & 0o777 : 0o644;
}

/** Writes data to FILE as checkOutput allows: into a fresh file beside it, then renamed over it. */
export function writeOutput(file: string, data: string | Buffer): void {
  const mode = checkOutput(file);
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, mode);
  } catch (err) {
    throw new UserError(`cannot write ${file}: ${(err as Error).message}`);
  }
  try {
    fs.writeFileSync(fd, data);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.closeSync(fd);
    } catch {
      /* closed already */
    }
    fs.rmSync(tmp, { force: true });
    throw new UserError(`cannot write ${file}: ${(err as Error).message}`);
  }
}
