/**
 * A person at gdb's prompt, on a terminal (node-pty): attach, source the
 * generated extension, run a command, read the screen.
 */
import pty from 'node-pty';
import t from 'tap';
import { extension } from './lib/debuggers.ts';
import { type Json, startWalkee } from './lib/walkee.ts';

// eslint-disable-next-line no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Z0-9]|\r/g, '');

class Terminal {
  screen = '';
  private readonly term: pty.IPty;
  readonly exited: Promise<number>;

  constructor(file: string, args: string[]) {
    this.term = pty.spawn(file, args, { name: 'xterm-256color', cols: 200, rows: 60, env: { ...process.env, DEBUGINFOD_URLS: '' } as Record<string, string> });
    this.term.onData((d) => (this.screen += d));
    this.exited = new Promise((resolve) => this.term.onExit(({ exitCode }) => resolve(exitCode)));
  }

  /** Waits (bounded) until the screen, from `from` on, matches `re`; returns that part. */
  async waitFor(re: RegExp, from: number, ms = 30_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const text = plain(this.screen.slice(from));
      if (re.test(text)) return text;
      if (Date.now() > end) throw new Error(`timed out waiting for ${re}; the screen shows:\n${text.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Types a line, waits for the next prompt, returns what the command printed. */
  async run(line: string): Promise<string> {
    const from = this.screen.length;
    this.term.write(line + '\r');
    const out = await this.waitFor(/\(gdb\) $/, from);
    return out.slice(out.indexOf('\n') + 1).replace(/\(gdb\) $/, '');
  }

  write(s: string): void {
    this.term.write(s);
  }

  kill(): void {
    try {
      this.term.kill();
    } catch {
      /* already gone */
    }
  }
}

t.test('gdb at a terminal: source the extension, run ngx-pools, read the screen', async (t) => {
  const w = await startWalkee(['--nodes', '100', '--pools', '3']);
  t.teardown(() => w.kill());
  const truth = await w.ask('truth');
  const gdb = new Terminal('gdb', ['-nx', '-q', '-p', String(w.child.pid)]);
  t.teardown(() => gdb.kill());
  await gdb.waitFor(/\(gdb\) $/, 0);

  const sourced = await gdb.run(`source ${extension('walkee', 'gdb')}`);
  t.equal(sourced.trim(), '', 'sourcing prints nothing');
  const screen = await gdb.run('ngx-pools');
  t.match(screen, /^ngx_pool: 3 items {2}\(walkee 1\.0, pid \d+\)$/m, 'the title');
  t.match(screen, /^ORIGIN +ADDR +BLOCKS +USED +FREE +FAILED +LARGE_COUNT +LARGE_BYTES +CLEANUPS$/m, 'the header');
  for (const p of truth.pools as Json[]) {
    t.match(screen, new RegExp(`^walkee +${p.addr} +${p.blocks} +${p.used} +${p.free} +${p.failed} +${p.large_count} +${p.large_bytes} +${p.cleanups}$`, 'm'), `the line of pool ${p.addr}`);
  }
  const help = await gdb.run('help ngx-pool');
  t.match(help, /Memory pools/);
  const apropos = await gdb.run('apropos xsample');
  t.match(apropos, /ngx-pool/, 'apropos finds the commands');

  const from = gdb.screen.length;
  gdb.write('quit\r');
  await gdb.waitFor(/Quit anyway\? \(y or n\)/, from);
  gdb.write('y\r');
  t.equal(await gdb.exited, 0, 'gdb quits cleanly');
  t.same(await w.ask('truth'), truth, 'the target lives on, unchanged');
});
