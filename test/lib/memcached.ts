/**
 * memcached for the tests: Debian's stripped /usr/bin/memcached started on a free loopback port (TCP only) as a
 * child of the test, a client of its text protocol, its `stats` reply, and a recovered symbol table for it (from
 * `xgen symbols --for` where this tree has it, else from a rebuild of Debian's source: test-targets/memcached/rebuild.sh).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import net from 'node:net';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { freePort, waitUntil } from './nginx.ts';
import { root } from './walkee.ts';

export const DEBIAN_MEMCACHED = '/usr/bin/memcached';

/** One connection speaking memcached's text protocol: each send() resolves with its whole reply. */
export class McClient {
  private buf = '';
  private readonly waiting: { done: (text: string) => boolean; resolve: (text: string) => void }[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => {
      this.buf += d;
      while (this.waiting.length > 0 && this.waiting[0].done(this.buf)) {
        const w = this.waiting.shift()!;
        const text = this.buf;
        this.buf = '';
        w.resolve(text);
      }
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<McClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new McClient(s)));
      s.once('error', reject);
    });
  }

  /** Sends text (whole lines, \r\n included) and waits for the reply that `done` says is complete. */
  send(text: string, done: (reply: string) => boolean): Promise<string> {
    return new Promise((resolve) => {
      this.waiting.push({ done, resolve });
      this.socket.write(text, 'latin1');
    });
  }

  /** A command whose reply is one line. */
  line(text: string): Promise<string> {
    return this.send(text, (r) => r.endsWith('\r\n'));
  }

  /** `get`/`stats`: a reply that ends with END. */
  listing(text: string): Promise<string> {
    return this.send(text, (r) => r.endsWith('END\r\n'));
  }

  close(): void {
    this.socket.destroy();
  }
}

/** memcached's `stats` reply: the text as sent (its length counts in bytes_written) and each STAT as a string. */
export async function stats(c: McClient): Promise<{ text: string; values: Map<string, string> }> {
  const text = await c.listing('stats\r\n');
  const values = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const m = /^STAT (\S+) (.*)$/.exec(line);
    if (m) values.set(m[1], m[2]);
  }
  return { text, values };
}

export interface Memcached {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

/** Debian's memcached on a free 127.0.0.1 port, no UDP, as a child; ready when it answers `version`. */
export async function startMemcached(): Promise<Memcached> {
  const port = await freePort();
  const asRoot = process.geteuid?.() === 0 ? ['-u', 'nobody'] : []; // memcached refuses to run as root without -u
  const child: ChildProcess = spawn(DEBIAN_MEMCACHED, ['-p', String(port), '-U', '0', '-l', '127.0.0.1', ...asRoot], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const answers = async (): Promise<boolean> => {
    const c = await McClient.connect(port).catch(() => null);
    if (!c) return false;
    try {
      return (await c.line('version\r\n')).startsWith('VERSION ');
    } finally {
      c.close();
    }
  };
  try {
    await waitUntil(`memcached answers version on port ${port}`, answers, 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- memcached's stderr ---\n${stderr}`);
  }
  return {
    pid: child.pid!,
    port,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The rebuilds xgen symbols keeps between test runs (a clean clone makes them once, minutes). */
export const SYMBOLS_BUILDS = path.join(fs.realpathSync(path.join(root, 'build')), 'symbols-cache');

/**
 * A recovered symbol table for Debian's memcached, in the symbol cache of XDG_CACHE_HOME cacheHome, made by `xgen
 * symbols --for /usr/bin/memcached` (a rebuild of Debian's source, verified a twin). The path of the table.
 */
export async function recoverMemcachedSymbols(cacheHome: string): Promise<string> {
  fs.mkdirSync(SYMBOLS_BUILDS, { recursive: true, mode: 0o700 });
  await execa(process.execPath, [path.join(root, 'dist/xgen.js'), 'symbols', '--for', DEBIAN_MEMCACHED], { env: { XDG_CACHE_HOME: cacheHome, XWALK_SYMBOLS_BUILDS: SYMBOLS_BUILDS }, stdio: ['ignore', 'inherit', 'inherit'] });
  const id = (await execa('readelf', ['-n', DEBIAN_MEMCACHED])).stdout.match(/Build ID: ([0-9a-f]+)/)![1];
  return path.join(cacheHome, 'xwalk', 'symbols', `${id}.json`);
}
