/**
 * Bad input ends in one clear line on stderr and a non-zero exit: never a
 * hang, a stack trace or garbage.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t, { type Test } from 'tap';
import { binPath, root, startWalkee, walkeeAsNobody } from './lib/walkee.ts';
import { type Run, xsample, xsampleBin } from './lib/xsample.ts';

function oneClearLine(t: Test, r: Run, code: number, pattern: RegExp): void {
  t.equal(r.code, code, `exit ${code}`);
  const lines = r.stderr.trim().split('\n');
  t.match(lines[0], /^xsample: /, 'names the tool');
  t.match(r.stderr, pattern, 'says what is wrong');
  t.notMatch(r.stderr, /^\s+at /m, 'no stack trace');
  t.notMatch(r.stderr, /internal error/, 'not an internal error');
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-bad-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

t.test('usage errors exit 2', async (t) => {
  for (const [args, pattern] of [
    [[], /give one of --pid PID or --core FILE/],
    [['--pid', 'abc', '--struct', 'ngx_pool'], /--pid takes a whole number from 1 to 4194304, not 'abc'/],
    [['--pid', '0', '--struct', 'ngx_pool'], /--pid takes a whole number from 1 to 4194304, not '0'/],
    [['--pid', '-1', '--struct', 'ngx_pool'], /^xsample: --pid needs a process id, a positive integer, not '-1'$/m],
    [['-p', '-1', '--struct', 'ngx_pool'], /^xsample: --pid needs a process id, a positive integer, not '-1'$/m],
    [['--pid', '1', '--struct', '-x'], /^xsample: --struct needs a value, not the option-like '-x' \(write --struct=-x if that is the value\)$/m],
    [['--pid', '12,x', '--struct', 'ngx_pool'], /--pid takes a whole number from 1 to 4194304, not 'x'/],
    [['--pid', '1', '--struct', 'v', '--interval', '99999999999'], /--interval takes a whole number from 1 to 86400000, not '99999999999'/],
    [['--pid', '1', '--struct', 'v', '--interval', '0'], /--interval takes a whole number from 1 to 86400000/],
    [['--pid', '1', '--struct', 'v', '--count=-3'], /--count takes a whole number from 1 to 1000000000, not '-3'/],
    [['--pid', '1', '--struct', 'v', '--max-nodes', '1e9'], /--max-nodes takes a whole number from 1 to 1000000000, not '1e9'/],
    [['--core', 'x', '--struct', 'v', '--interval', '100'], /a core does not change/],
    [['--pid', '1'], /which view\? --struct VIEW/],
    [['--pid', '1', '--struct', 'ngx_pool', '--bogus'], /Unknown option '--bogus'/],
    [['--pid'], /--pid/],
    [['--core', 'x', '--struct', 'v', '--count', '3'], /a core does not change/],
    [['--pid', '1', '--struct', 'v', '--source', 'ptrace'], /--source is pvr or procmem/],
    [['--pid', '1', '--struct', 'v', '--nice', '20'], /--nice takes a whole number from 0 to 19, not '20'/],
  ] as [string[], RegExp][]) {
    const r = await xsample(args);
    t.equal(r.code, 2, `${args.join(' ')}: exit 2`);
    t.match(r.stderr, pattern);
    t.equal(r.stderr.trim().split('\n').length, 2, 'the problem, then a pointer to --help');
  }
  const help = await xsample(['--help']);
  t.equal(help.code, 0);
  t.match(help.stdout, /never ptrace/);
});

t.test('xgen: --help for each command, --version, and a mistake in two lines', async (t) => {
  const xgen = (args: string[]) => execa(process.execPath, [path.join(root, 'dist/xgen.js'), ...args], { reject: false });
  for (const args of [['--help'], ['check', '--help'], ['layout', '-h']]) {
    const r = await xgen(args);
    t.equal(r.exitCode, 0, `xgen ${args.join(' ')}: exit 0`);
    t.match(r.stdout, /^usage: xgen layout/, `xgen ${args.join(' ')}: the usage`);
  }
  const v = await xgen(['--version']);
  t.equal(v.exitCode, 0);
  // The package's version, and the schema language's: the one the built-in schemas start with (xwalk: N).
  const language = /^xwalk: (\d+)$/m.exec(fs.readFileSync(path.join(root, 'packs/walkee/schema.yaml'), 'utf8'))![1];
  t.equal(v.stdout, `xgen ${JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version} (schema language ${language})`);
  const bad = await xgen(['check', '--pak', 'walkee']);
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /^xgen: Unknown option '--pak'/);
  t.equal(bad.stderr.trim().split('\n').length, 2, 'the problem, then a pointer to --help');
});

t.test('no such process', async (t) => {
  const r = await xsample(['--pid', '4000000', '--struct', 'ngx_pool']);
  oneClearLine(t, r, 1, /no process with pid 4000000/);
});

/**
 * xsample bundled whole, its npm packages included, into a folder any user
 * may enter: the checkout itself may sit where only root can (a fresh clone
 * in a mktemp -d folder).
 */
async function xsampleForAnyUser(): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-anyuser-'));
  const bundle = (entry: string, out: string) =>
    execa('npx', ['esbuild', entry, '--bundle', '--platform=node', '--format=esm', '--log-level=warning', `--outfile=${path.join(dir, 'dist', out)}`,
      // CommonJS packages inside an ES module bundle still call require().
      "--banner:js=import { createRequire as xwalkRequire } from 'node:module'; const require = xwalkRequire(import.meta.url);"], { cwd: root });
  await bundle('bin/xsample.ts', 'xsample.js');
  await bundle('bin/xsample-main.ts', 'xsample-main.js');
  fs.copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  for (const p of [dir, path.join(dir, 'dist')]) fs.chmodSync(p, 0o755);
  for (const f of ['package.json', 'dist/xsample.js', 'dist/xsample-main.js']) fs.chmodSync(path.join(dir, f), 0o644);
  return dir;
}

t.test('permission denied (another user reading a root process)', async (t) => {
  const w = await startWalkee(['--nodes', '10']);
  t.teardown(() => w.kill());
  const dir = await xsampleForAnyUser();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = await execa('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'env', '-i', `HOME=${dir}`, 'PATH=/usr/bin:/bin', process.execPath, path.join(dir, 'dist/xsample.js'), '--pid', String(w.child.pid), '--struct', 'walkee_list'], { reject: false, stdin: 'ignore' });
  oneClearLine(t, { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json: null }, 1, /permission denied .*run as the target's user or (as )?root/);
});

t.test('root is told why it may not read a process, not to run as root', async (t) => {
  // walkee as nobody, read by root without CAP_SYS_PTRACE (as in a container that drops it).
  const w = await startWalkee(['--nodes', '10'], 'walkee', walkeeAsNobody(fs.mkdtempSync(path.join(tmp, 'nobody-'))));
  t.teardown(() => w.kill());
  const st = fs.readFileSync(`/proc/${w.child.pid}/status`, 'utf8');
  t.match(st, /^Uid:\s+65534\s/m, 'walkee runs as nobody');
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list'], { prefix: ['setpriv', '--bounding-set=-sys_ptrace', '--inh-caps=-sys_ptrace'] });
  oneClearLine(t, r, 1, new RegExp(`permission denied reading .*${w.child.pid}.*: xsample runs as root without CAP_SYS_PTRACE .*: give it CAP_SYS_PTRACE, or run as the target's user \\(uid 65534\\)`));
  t.notMatch(r.stderr, /or (as )?root/, 'not told to run as root: it is root');
  const ok = await xsample(['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json']);
  t.equal(ok.code, 0, 'with CAP_SYS_PTRACE, root reads it');
});

t.test('the process exits in the middle of sampling', async (t) => {
  const w = await startWalkee(['--nodes', '2000000', '--layout', 'shuffled']);
  const pid = String(w.child.pid);
  const run = execa(process.execPath, [xsampleBin, '--pid', pid, '--struct', 'walkee_list', '--interval', '1'], { reject: false, stdin: 'ignore' });
  // Once it has printed a sample, it is sampling: then the target goes.
  await new Promise<void>((resolve) => run.stdout!.once('data', () => resolve()));
  await w.kill();
  const r = await run;
  oneClearLine(t, { code: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr, json: null }, 1, new RegExp(`process ${pid} exited`));
});

t.test('an unknown stripped build names the known builds and how to add one', async (t) => {
  const stripped = path.join(tmp, 'walkee-stripped');
  await execa('strip', ['-o', stripped, binPath]);
  const w = await startWalkee(['--nodes', '10']);
  await w.kill();
  const child = execa(stripped, ['--nodes', '10'], { stdin: 'pipe', stdout: 'pipe', reject: false });
  t.teardown(() => {
    child.kill('SIGKILL');
  });
  await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
  const r = await xsample(['--pid', String(child.pid), '--struct', 'walkee_list'], { env: { XDG_CACHE_HOME: path.join(tmp, 'empty-cache') } });
  oneClearLine(t, r, 1, /unknown build of walkee 1\.0: .* is stripped and no layout matches it; .*Add one with: xgen layout --pack walkee/);
  child.kill('SIGKILL');
  await child;
});

t.test('a build with DWARF but no layout: derived once, then cached', async (t) => {
  const cache = path.join(tmp, 'cache');
  const w = await startWalkee(['--nodes', '100']);
  t.teardown(() => w.kill());
  const args = ['--pid', String(w.child.pid), '--struct', 'walkee_list', '--json'];
  const first = await xsample(args, { env: { XDG_CACHE_HOME: cache } });
  t.equal(first.code, 0);
  t.match(first.stderr, /deriving the layout of walkee 1\.0 build [0-9a-f]{12} from its DWARF/);
  const files = fs.readdirSync(path.join(cache, 'xwalk/layouts/walkee'));
  t.equal(files.length, 1, 'one layout cached');
  const second = await xsample(args, { env: { XDG_CACHE_HOME: cache } });
  t.equal(second.stderr, '', 'the second run uses the cache');
  t.same(second.json.items, first.json.items);
});

t.test('an unreadable address', async (t) => {
  const w = await startWalkee(['--pools', '1']);
  t.teardown(() => w.kill());
  const r = await xsample(['--pid', String(w.child.pid), '--struct', 'ngx_pool', '--addr', '0x10', '--json']);
  t.equal(r.code, 3, 'exit 3: partial');
  t.equal(r.json.partial, true);
  t.equal(r.json.items[0].blocks, null, 'no garbage: the column is null');
  t.match(r.json.errors[0].message, /not in any mapping/);
  t.match(r.stderr.trim(), /^xsample: partial result: 0x10 blocks: 0x[0-9a-f]+: not in any mapping \(and \d+ more\)$/);
  const expr = await xsample(['--pid', String(w.child.pid), '--struct', 'ngx_pool', '--addr', '*cast(0x10, u64)', '--json']);
  t.equal(expr.code, 3, 'an --addr expression that cannot be read: partial, exit 3');
  t.same(expr.json.items, []);
  t.same(expr.json.errors, [{ root: 'addr', message: '0x10: not in any mapping' }]);
});

t.test('an unknown view, a missing core, a file that is not a core', async (t) => {
  const w = await startWalkee(['--nodes', '10']);
  t.teardown(() => w.kill());
  oneClearLine(t, await xsample(['--pid', String(w.child.pid), '--struct', 'nope']), 1, /pack walkee has no view 'nope' \(views: ngx_pool, walkee_list/);
  oneClearLine(t, await xsample(['--core', path.join(tmp, 'missing'), '--struct', 'ngx_pool']), 1, /missing/);
  oneClearLine(t, await xsample(['--core', binPath, '--struct', 'ngx_pool']), 1, /not an ELF core file/);
  const text = path.join(tmp, 'text');
  fs.writeFileSync(text, 'hello\n');
  oneClearLine(t, await xsample(['--core', text, '--struct', 'ngx_pool']), 1, /not an ELF/);
});
