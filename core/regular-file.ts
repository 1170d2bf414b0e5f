/**
 * Opening what user input or a core names: regular files only, and never
 * a blocking open. A FIFO, a device, a socket or a directory is one clear
 * line, not a hang.
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from './errors.ts';

/** What a file that is not regular is, for the one line that refuses it. */
function kindOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens a regular file for reading without ever blocking: O_NONBLOCK, so a
 * FIFO or a device opens at once (and is then refused), never waits for a
 * writer. Everything named by user input or by a core is opened this way.
 */
export function openRegular(path: string): { fd: number; stat: fs.Stats } {
  let fd: number;
  try {
    fd = fs.openSync(path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new UserError(describeOpenError(path, err as NodeJS.ErrnoException));
  }
  const stat = fs.fstatSync(fd);
  if (!stat.isFile()) {
    fs.closeSync(fd);
    throw new UserError(`${path}: is ${kindOf(stat)}, not a regular file`);
  }
  return { fd, stat };
}

export function describeOpenError(path: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT': return `${path}: no such file`;
    case 'EACCES':
    case 'EPERM': return `${path}: permission denied`;
    case 'EISDIR': return `${path}: is a directory, not a regular file`;
    default: return `${path}: cannot read (${err.code ?? err.message})`;
  }
}

/** The whole of a regular file (a schema, a layout) as text. */
export function readRegularFile(path: string): string {
  const { fd } = openRegular(path);
  try {
    return fs.readFileSync(fd, 'utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes dir and its missing parents, one at a time (mode for each new one).
 * Node's own recursive mkdir loops forever on some paths (/proc/self/x).
 */
export function makeDirs(dir: string, mode = 0o777): void {
  const missing: string[] = [];
  for (let d = path.resolve(dir); !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
