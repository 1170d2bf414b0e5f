/**
 * xsample's command line parses into a tagged command (sampler/cli/): the
 * first word picks the parser, each returns its own options, and main runs
 * it by its tag. What the options mean is tested by the commands' own tests
 * (xsample-cli, bad-input, record, top, serve, trace); here, that each line
 * is the command it says, with the options it gave.
 */
import t from 'tap';
import { parseCommand } from '../sampler/cli/cli.ts';
import { UsageError } from '../sampler/cli/options.ts';
import { DEFAULT_LIMITS } from '../sampler/memory/walk-error.ts';

const split = (line: string): string[] => line.split(' ').filter(Boolean);

t.test('each command line is the command it names', async (t) => {
  const cases: [string, string][] = [
    ['--pid 12 --struct ngx_pool', 'show'],
    ['--core core.1 --struct ngx_pool', 'show'],
    ['record -p 12 --struct lua_stacks -o out.svg', 'record'],
    ['record -p 12 --cpu', 'record-cpu'],
    ['record -p 12 --off-cpu --min-block 100', 'record-cpu'],
    ['top -p 12 --struct ngx_pool --sort used', 'top'],
    ['serve -p 12', 'serve'],
    ['trace -p 12 --probe ngx_request_done', 'trace'],
    ['--list', 'list'],
    ['top --list --pack nginx', 'list'],
    ['record --help', 'help'],
    ['trace -h', 'help'],
    ['--version', 'version'],
  ];
  for (const [line, command] of cases) t.equal(parseCommand(split(line)).command, command, `xsample ${line}`);
});

t.test('each command has its own options, and only those', async (t) => {
  t.same(parseCommand(split('--pid 12,13 --struct ngx_pool --interval 500')), {
    command: 'show',
    options: { pids: [12, 13], core: undefined, exe: undefined, addr: undefined, maxNodes: DEFAULT_LIMITS.maxNodes, maxBytes: 512 * 1024 * 1024, pack: undefined, source: undefined, verbose: false, consistency: 'verify', retries: 3, view: 'ngx_pool', wants: ['ngx_pool'], json: false, interval: 500, count: Infinity },
  }, '--interval alone samples until Ctrl-C');
  const serve = parseCommand(split('serve -p 12 --struct a --struct b --listen [::1]:9000'));
  t.ok(serve.command === 'serve' && !('view' in serve.options), 'serve has no one view');
  t.match(serve, { command: 'serve', options: { pids: [12], views: ['a', 'b'], wants: ['a', 'b'], host: '::1', port: 9000, interval: 1000 } });
  t.equal((parseCommand(split('serve -p 12')) as { options: { wants?: string[] } }).options.wants, undefined, 'serve with no --struct reads the whole pack: it serves every view');
  t.match(parseCommand(split('record -p 12 --struct v --rate 99 -o -')), { command: 'record', options: { rate: 99, out: null, format: null, instant: 'auto', duration: Infinity } });
  const cpu = parseCommand(split('record -p 12 --off-cpu --no-lua'));
  t.match(cpu, { command: 'record-cpu', options: { mode: 'off-cpu', interpreted: false, view: '' } });
  t.equal((cpu as { options: { wants?: string[] } }).options.wants, undefined, 'record --cpu reads the whole pack: it chooses its view among all');
  t.match(parseCommand(split('top -p 12 --struct v')), { command: 'top', options: { sort: null, interval: 1000, count: Infinity } });
});

t.test('a line of one command with an option of another is bad usage', async (t) => {
  const usage = (line: string): string => {
    try {
      parseCommand(split(line));
    } catch (err) {
      if (err instanceof UsageError) return err.message;
      throw err;
    }
    return 'parsed';
  };
  t.equal(usage('--pid 12 --struct v --rate 5'), "Unknown option '--rate'", '--rate is record\'s');
  t.equal(usage('top -p 12 --struct v --cpu'), "Unknown option '--cpu'", '--cpu is record\'s');
  t.equal(usage('record -p 12 --struct v --sort a'), "Unknown option '--sort'", '--sort is top\'s');
  t.equal(usage('trace -p 12 --probe p --struct v'), "Unknown option '--struct'", '--struct is not trace\'s');
  t.equal(usage('record -p 12 --struct v'), 'parsed', 'and a line of its own parses');
});
