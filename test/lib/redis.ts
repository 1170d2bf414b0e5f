/**
 * redis for the tests: Debian's redis-server, or our -g build of the same
 * source (test-targets/redis/build.sh), started on a free loopback port in a
 * fresh directory as a child of the test; and a small RESP client, so that a
 * test can hold named clients, block them and watch replies arrive.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { freePort, waitUntil } from './nginx.ts';

export const DEBIAN_REDIS = '/usr/bin/redis-server';
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Builds (once) our -g redis-server from Debian's source of the installed version; its path. */
export async function buildRedis(): Promise<string> {
  await execa('bash', [path.join(ROOT, 'test-targets/redis/build.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  const version = (await execa('dpkg-query', ['-W', '-f', '${Version}', 'redis-server'])).stdout;
  const upstream = version.replace(/^\d+:/, '').replace(/-[^-]*$/, '');
  return path.join(ROOT, `build/redis/redis-${upstream}/src/redis-server`);
}

export type Reply = string | number | null | Error | Reply[];

/** One connection speaking RESP2: each send() resolves with its reply, in order. */
export class RespClient {
  private buf = Buffer.alloc(0);
  private readonly waiting: ((r: Reply) => void)[] = [];

  private constructor(private readonly socket: net.Socket) {
    socket.on('data', (d) => {
      this.buf = Buffer.concat([this.buf, d]);
      for (;;) {
        const parsed = parseReply(this.buf, 0);
        if (!parsed) break;
        this.buf = this.buf.subarray(parsed.end);
        this.waiting.shift()?.(parsed.reply);
      }
    });
    socket.on('error', () => {});
  }

  static connect(port: number): Promise<RespClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(new RespClient(s)));
      s.once('error', reject);
    });
  }

  send(...args: (string | number)[]): Promise<Reply> {
    const parts = args.map(String);
    this.socket.write(`*${parts.length}\r\n` + parts.map((p) => `$${Buffer.byteLength(p)}\r\n${p}\r\n`).join(''));
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): void {
    this.socket.destroy();
  }
}

function parseReply(b: Buffer, at: number): { reply: Reply; end: number } | null {
  const eol = b.indexOf('\r\n', at);
  if (eol < 0) return null;
  const line = b.toString('utf8', at + 1, eol);
  switch (String.fromCharCode(b[at])) {
    case '+':
      return { reply: line, end: eol + 2 };
    case '-':
      return { reply: new Error(line), end: eol + 2 };
    case ':':
      return { reply: Number(line), end: eol + 2 };
    case '$': {
      const n = Number(line);
      if (n < 0) return { reply: null, end: eol + 2 };
      if (b.length < eol + 2 + n + 2) return null;
      return { reply: b.toString('utf8', eol + 2, eol + 2 + n), end: eol + 2 + n + 2 };
    }
    case '*': {
      const n = Number(line);
      if (n < 0) return { reply: null, end: eol + 2 };
      const items: Reply[] = [];
      let end = eol + 2;
      for (let i = 0; i < n; i++) {
        const item = parseReply(b, end);
        if (!item) return null;
        items.push(item.reply);
        end = item.end;
      }
      return { reply: items, end };
    }
    default:
      throw new Error(`not RESP: ${line}`);
  }
}

export interface Redis {
  pid: number;
  port: number;
  dir: string;
  binary: string;
  /** A command on a connection of its own, closed after the reply. */
  cli(...args: (string | number)[]): Promise<Reply>;
  connect(): Promise<RespClient>;
  stop(): Promise<void>;
}

/** redis-server on a free 127.0.0.1 port, no persistence, DEBUG allowed; ready when it answers PING. */
export async function startRedis(opts: { binary?: string; args?: string[] } = {}): Promise<Redis> {
  const binary = opts.binary ?? DEBIAN_REDIS;
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xwalk-redis-'));
  const port = await freePort();
  const log = path.join(dir, 'redis.log');
  const child: ChildProcess = spawn(
    binary,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no',
      '--logfile', log, '--enable-debug-command', 'yes', ...(opts.args ?? [])],
    { stdio: 'ignore' },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const cli = async (...args: (string | number)[]) => {
    const c = await RespClient.connect(port);
    try {
      return await c.send(...args);
    } finally {
      c.close();
    }
  };
  try {
    await waitUntil(`redis answers PING on port ${port}`, async () => (await cli('PING').catch(() => null)) === 'PONG', 10_000);
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n--- ${log} ---\n${fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '(none)'}`);
  }
  return {
    pid: child.pid!,
    port,
    dir,
    binary,
    cli,
    connect: () => RespClient.connect(port),
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
      await fsp.rm(dir, { recursive: true, force: true });
    },
  };
}
