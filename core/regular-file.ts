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

/**
 * A file we keep (a cache entry, a pack's table): opened without following a
 * symlink and without blocking, and judged on the fstat of that same open,
 * so what is checked is what is read. `judge` says why the file is refused,
 * or null; a file that cannot be opened or read is null.
 */
export function readKeptFile(file: string, judge: (st: fs.Stats) => string | null): { bytes: Buffer } | { refused: string } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    const why = st.isFile() ? judge(st) : `${file} is ${kindOf(st)}, not a regular file`;
    return why ? { refused: why } : { bytes: fs.readFileSync(fd) };
  } catch {
    return null;
  } finally {
    fs.closeSync(fd);
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
