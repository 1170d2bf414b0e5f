/** walkee (and churn), the C test targets, as children of the test: built on demand, talked to one JSON line at a time. */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The C test targets: walkee (every idiom, with its truth), churn (structures that never hold still), unwindee (a call chain for the unwinder). */
export type Program = 'walkee' | 'churn' | 'unwindee';

/** The Makefile's flags per program: unwindee is built as Debian builds its packages (no -g, no frame pointers, .eh_frame only). */
const CFLAGS: Record<Program, string[]> = {
  walkee: ['-g', '-O2', '-Wall', '-Wextra', '-pthread'],
  churn: ['-g', '-O2', '-Wall', '-Wextra', '-pthread'],
  unwindee: ['-O2', '-fomit-frame-pointer', '-fasynchronous-unwind-tables', '-Wall', '-Wextra'],
};

export const programPath = (program: Program): string => join(root, 'test-targets/bin', program);
export const binPath = programPath('walkee');

/* The same line as the Makefile's, run from the repository root. */
export const build = (program: Program = 'walkee'): void => {
  const src = `test-targets/${program}.c`;
  const bin = `test-targets/bin/${program}`;
  const binFile = join(root, bin);
  if (existsSync(binFile) && statSync(binFile).mtimeMs >= statSync(join(root, src)).mtimeMs) return;
  mkdirSync(dirname(binFile), { recursive: true });
  const cc = spawnSync('cc', [...CFLAGS[program], '-o', bin, src], {
    cwd: root,
    encoding: 'utf8',
  });
  if (cc.status !== 0) throw new Error(`building ${program} failed:\n${cc.stderr}${cc.error ?? ''}`);
};

export type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export const sleep = (ms: number) => new Promise<void>(r => setTimeout(r, ms));

/** A running walkee: a child of this test, talked to one JSON line at a time. */
export class Walkee {
  readonly child: ChildProcessWithoutNullStreams;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private lines: string[] = [];
  private waiter: ((line: string | null) => void) | null = null;
  private gone = false;
  stderr = '';

  /** binary: a copy of the program elsewhere (a test may need it at a path of its own). */
  constructor(args: string[], program: Program = 'walkee', binary?: string) {
    build(program);
    this.child = spawn(binary ?? programPath(program), args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.setEncoding('utf8').on('data', (s: string) => (this.stderr += s));
    this.child.stdin.on('error', () => {}); // EPIPE if it died: reported by next()
    createInterface({ input: this.child.stdout }).on('line', line => {
      if (this.waiter) this.waiter(line);
      else this.lines.push(line);
    });
    this.exited = new Promise(res =>
      this.child.on('exit', (code, signal) => {
        this.gone = true;
        this.waiter?.(null);
        res({ code, signal });
      }),
    );
  }

  /** The next stdout line, parsed; throws on timeout or exit. */
  next(timeoutMs = 10_000): Promise<Json> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(JSON.parse(line));
    if (this.gone) return Promise.reject(new Error(`walkee exited; stderr: ${this.stderr}`));
    return new Promise((res, rej) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        rej(new Error(`no answer from walkee in ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = l => {
        clearTimeout(timer);
        this.waiter = null;
        if (l === null) rej(new Error(`walkee exited; stderr: ${this.stderr}`));
        else {
          try {
            res(JSON.parse(l));
          } catch (e) {
            rej(new Error(`walkee printed a non-JSON line: ${l}`));
          }
        }
      };
    });
  }

  ask(command: string): Promise<Json> {
    this.child.stdin.write(command + '\n');
    return this.next();
  }

  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}


/** Starts walkee (or churn) and waits for its ready line. */
export async function startWalkee(args: string[], program: Program = 'walkee', binary?: string): Promise<Walkee> {
  const w = new Walkee(args, program, binary);
  const ready = await w.next(60_000);
  if (!ready.ready) throw new Error(`walkee said ${JSON.stringify(ready)} instead of ready`);
  return w;
}

/** A program in dir that runs walkee as nobody (uid 65534), for startWalkee's binary: a target of another user. */
export function walkeeAsNobody(dir: string): string {
  const wrapper = join(dir, 'walkee-as-nobody');
  // A copy beside the wrapper: the checkout may be a folder nobody cannot enter (a clone in a mktemp -d folder).
  const copy = join(dir, 'walkee-copy');
  copyFileSync(binPath, copy);
  chmodSync(copy, 0o755);
  writeFileSync(wrapper, `#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups ${copy} "$@"\n`, { mode: 0o755 });
  return wrapper;
}
