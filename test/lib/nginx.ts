// Test helpers for the nginx target: build it, run it (master stays our child),
// find its worker, hold connections open with half-sent requests.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { childPids, cmdline as procCmdline } from '../../sampler/sampling/processes.ts';

export const NGINX_VERSION = '1.22.1';
/** Body nginx serves for `/` (written to <dir>/html/index.html). */
export const ROOT_BODY = 'xwalk nginx test target\n';

/** Repository root (this file is test/lib/nginx.ts). */
export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const buildScript = path.join(repoRoot, 'test-targets', 'nginx', 'build.sh');
const confTemplate = path.join(repoRoot, 'test-targets', 'nginx', 'nginx.conf.in');

export interface Nginx {
  masterPid: number;
  /** the first worker (the process itself when it serves alone) */
  workerPid: number;
  workerPids: number[];
  port: number;
  /** temp directory: prefix (-p), nginx.conf, error.log, nginx.pid, html/, temp/ */
  dir: string;
  binary: string;
  errorLog: string;
  /** SIGQUIT (graceful), SIGKILL after a timeout; waits for the master's exit, removes dir. Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  binary?: string;
  /** worker_processes (default 1) */
  workers?: number;
  /** master_process off: one process serves, under its own command line (no workers) */
  singleProcess?: boolean;
  /** argv[0] to run nginx under (its command line as ps shows it, when nginx does not retitle itself) */
  argv0?: string;
  /** client_header_timeout (default DEFAULT_HEADER_TIMEOUT_MS) */
  clientHeaderTimeout?: string;
  /** Debian's lua-nginx-module (and the ndk it needs) loaded, with the locations LUA_LOCATIONS */
  lua?: boolean;
  /** locations of a test's own, added to the server (after LUA_LOCATIONS; nginx.conf syntax) */
  locations?: string;

  /** how long to wait for the port and the worker (default 10 000 ms) */
  startTimeoutMs?: number;
  /** how long stop() waits after SIGQUIT before SIGKILL (default 5 000 ms) */
  quitTimeoutMs?: number;
}

/**
 * client_header_timeout unless a test sets its own: the connections a test holds (idle, or with half a request)
 * must outlive every reader the test runs, however slow a busy machine makes gdb and lldb (nginx's 60 s did not).
 */
export const DEFAULT_HEADER_TIMEOUT_MS = 3_600_000;

/** Our builds: the default one, and 'v2debug', configured with options that move struct fields. */
export type Variant = '' | 'v2debug';

export function nginxBinary(variant: Variant = ''): string {
  return path.join(repoRoot, 'build', variant ? `nginx-${variant}` : 'nginx', `nginx-${NGINX_VERSION}`, 'objs', 'nginx');
}

const building = new Map<Variant, Promise<string>>();

/** Run test-targets/nginx/build.sh (idempotent, fast when up to date); resolves to the binary path. */
export function buildNginx(variant: Variant = ''): Promise<string> {
  if (!building.has(variant)) {
    const run = new Promise<string>((resolve, reject) => {
      // stdout goes to our stderr too: under tap, our stdout is the TAP stream.
      const child = spawn('bash', [buildScript, ...(variant ? [variant] : [])], { cwd: repoRoot, stdio: ['ignore', 2, 'inherit'] });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        if (code === 0) resolve(nginxBinary(variant));
        else reject(new Error(`${path.relative(repoRoot, buildScript)} failed (${signal ?? `exit ${code}`}); see its output above`));
      });
    }).catch((e) => {
      building.delete(variant);
      throw e;
    });
    building.set(variant, run);
  }
  return building.get(variant)!;
}

// ---------------------------------------------------------------- /proc helpers

export { childPids } from '../../sampler/sampling/processes.ts';

/** state and ppid from /proc/<pid>/stat, or undefined when the process is gone. */
export function procStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // comm may contain spaces and parentheses: fields resume after the last ')'
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0], ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** /proc/<pid>/cmdline with NULs as spaces ('' when gone). nginx rewrites it to "nginx: worker process". */
export { cmdline as procCmdline } from '../../sampler/sampling/processes.ts';

function alive(pid: number): boolean {
  const st = procStat(pid);
  return st !== undefined && st.state !== 'Z' && st.state !== 'X';
}

function workerPidsOf(master: number): number[] {
  return childPids(master).filter((p) => procCmdline(p).startsWith('nginx: worker process'));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// ---------------------------------------------------------------- ports / sockets

/** A currently free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(1000, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * GET http://127.0.0.1:<port><path> on a fresh connection that is closed afterwards (no keep-alive); it fails
 * after timeoutMs without a byte (10 s; 0: never, for a request that runs until the test says so).
 */
export function httpGet(port: number, urlPath: string, opts: { timeoutMs?: number } = {}): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, agent: false, headers: { Connection: 'close' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers }));
        res.on('error', reject);
      },
    );
    const timeoutMs = opts.timeoutMs ?? 10_000;
    if (timeoutMs > 0) req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET ${urlPath} on port ${port} timed out`)));
    req.on('error', reject);
  });
}

// ---------------------------------------------------------------- cleanup on crash

const running = new Map<number, { dir: string; workers: Set<number>; stop?: () => Promise<void> }>();
let handlersInstalled = false;
// fatal signals worth cleaning up for (tap ends a timed-out test file with SIGALRM)
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGALRM'];
const signalHandlers = new Map<NodeJS.Signals, () => void>();

function killAllSync(): void {
  for (const [master, info] of running) {
    // fast shutdown lets the master reap its workers (PID 1 here does not reap orphans)
    try { process.kill(master, 'SIGTERM'); } catch { /* gone */ }
    const deadline = Date.now() + 1000;
    while (alive(master) && Date.now() < deadline) sleepSync(10);
    for (const w of [...info.workers, ...childPids(master)]) {
      try { process.kill(w, 'SIGKILL'); } catch { /* gone */ }
    }
    try { process.kill(master, 'SIGKILL'); } catch { /* gone */ }
    try { fs.rmSync(info.dir, { recursive: true, force: true }); } catch { /* best effort */ }
  }
  running.clear();
}

function installCleanup(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  // a test that forgot stop(): shut nginx down properly (the master gets reaped)
  process.on('beforeExit', () => {
    const stops = [...running.values()].flatMap((i) => (i.stop ? [i.stop] : []));
    if (stops.length > 0) void Promise.allSettled(stops.map((f) => f()));
  });
  // crash / process.exit(): kill synchronously. The master may stay a zombie after
  // we are gone (nobody reaps it), but nothing keeps running.
  process.on('exit', killAllSync);
  for (const sig of SIGNALS) {
    const h = () => {
      killAllSync();
      for (const [s, fn] of signalHandlers) process.removeListener(s, fn);
      // Other listeners (e.g. tap's signal-exit, which re-raises once it is the
      // only listener left) take it from here; otherwise die of the signal.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    signalHandlers.set(sig, h);
    process.prependListener(sig, h);
  }
}

// ---------------------------------------------------------------- start / stop

function renderConfig(dir: string, port: number, opts: StartOptions): string {
  const user =
    typeof process.getuid === 'function' && process.getuid() === 0
      ? `user ${os.userInfo().username};` // worker runs as root too: same uid as the tools reading its memory
      : ''; // non-root master: "user" would be ignored (with a warning); the worker keeps our uid
  return fs
    .readFileSync(confTemplate, 'utf8')
    .replaceAll('@DIR@', dir)
    .replaceAll('@PORT@', String(port))
    .replaceAll('@USER@', user)
    .replaceAll('@WORKERS@', String(opts.workers ?? 1))
    .replaceAll('@MASTER@', opts.singleProcess ? 'off' : 'on')
    .replaceAll('@HEADER_TIMEOUT@', opts.clientHeaderTimeout ?? `${DEFAULT_HEADER_TIMEOUT_MS / 1000}s`)
    .replaceAll('@MODULES@', opts.lua ? LUA_MODULES : '')
    .replaceAll('@LOCATIONS@', (opts.lua ? LUA_LOCATIONS : '') + (opts.locations ?? ''));
}

/** Debian's nginx is the build these modules are for (/usr/sbin/nginx); ndk must come first. */
export const DEBIAN_NGINX = '/usr/sbin/nginx';
const LUA_MODULES = ['ndk_http_module.so', 'ngx_http_lua_module.so'].map((m) => `load_module /usr/lib/nginx/modules/${m};`).join('\n');

/**
 * /lua/gc stops the worker's GC and answers its own collectgarbage("count") in bytes: from the
 * first answer on, the bytes in use only grow, so a reading taken between two answers lies between them.
 */
const LUA_LOCATIONS = `
        location = /lua/gc {
            content_by_lua_block { collectgarbage("stop") ngx.say(string.format("%d", collectgarbage("count") * 1024)) }
        }
        location = /lua/objects {
            content_by_lua_block {
                collectgarbage("stop")
                local n = tonumber(ngx.var.arg_n) or 0
                xwalk_kept = xwalk_kept or {}
                for i = 1, n do xwalk_kept[#xwalk_kept + 1] = { "xwalk-" .. ngx.var.arg_tag .. "-" .. i } end
                local big = tonumber(ngx.var.arg_big)
                if big then
                    xwalk_big = setmetatable({}, { __index = function() return 0 end })
                    for i = 1, big do xwalk_big[i] = i end
                end
                ngx.say(#xwalk_kept)
            }
        }
        location = /lua/burn {
            content_by_lua_block {
                local function heavy(n) local x = 0 for i = 1, n do x = (x + i * 7) % 1000003 end return x end
                local M = {} function M.light(n) local x = 0 for i = 1, n do x = (x + i * 7) % 1000003 end return x end
                if ngx.var.arg_jit == "off" then jit.off() end
                local r = 0
                while not io.open(ngx.var.arg_until) do r = r + heavy(3000000) + M.light(1000000) end
                ngx.say(r)
            }
        }
        location = /lua/interpreted {
            content_by_lua_block {
                local function spin(n) local x = 0 for i = 1, n do x = (x + i * 7) % 1000003 end return x end
                jit.off()
                local r = 0
                while not io.open(ngx.var.arg_until) do r = r + spin(1000000) end
                ngx.say(r)
            }
        }
        location = /lua/blocked {
            content_by_lua_block {
                local function wait(fifo)
                    os.execute("head -c1 " .. fifo .. " > /dev/null")
                end
                wait(ngx.var.arg_fifo)
                ngx.say("done")
            }
        }
        location = /lua/threads {
            content_by_lua_block {
                local function nap(s) ngx.log(ngx.ERR, "xwalk-thread", (debug.traceback():gsub("\\n", "|"))) ngx.sleep(s) end
                local function worker(s) nap(s) end
                local t1 = ngx.thread.spawn(worker, tonumber(ngx.var.arg_s) or 30)
                local t2 = ngx.thread.spawn(nap, tonumber(ngx.var.arg_s) or 30)
                ngx.thread.wait(t1, t2)
                ngx.say("done")
            }
        }
        location = /lua/named {
            content_by_lua_block {
                local M = {}
                function M.field(...) local s = ... ngx.log(ngx.ERR, "xwalk-traceback", (debug.traceback():gsub("\\n", "|"))) ngx.sleep(s) end
                function xwalk_global(s) M.field(s) end
                local obj = {}
                function obj:method(s) xwalk_global(s) end
                local function upper(s) obj:method(s) end
                local function top(s) upper(s) end
                top(tonumber(ngx.var.arg_s) or 30)
                ngx.say("done")
            }
        }
        location = /lua/sleep {
            content_by_lua_block {
                local function inner(s)
                    ngx.sleep(s)
                end
                local function outer(s)
                    inner(s)
                end
                outer(tonumber(ngx.var.arg_s) or 30)
                ngx.say("slept")
            }
        }
        # --- heap views (test/lua-heap.test.ts): strings that collide, a table of known entries, garbage left for a sweep.
        # /lua/heap/strings?n=N&from=K: keeps N new strings (K on) in a global table; every 16th collides with the others
        # of its kind in LuaJIT's sparse hash, which reads a few of their 160 bytes (OpenResty's with SSE 4.2 3 of them,
        # at 0, 80 and 159, lj_str_hash.c; else 16, from 0, 39, 78 and 156: the number sits at 100 to 119), so that
        # their chain moves to the secondary hash (LUAJIT_SECURITY_STRHASH). Answers how many it keeps.
        location = /lua/heap/strings {
            content_by_lua_block {
                collectgarbage("stop")
                xwalk_heap_strings = xwalk_heap_strings or {}
                local kept = xwalk_heap_strings
                local n, from = tonumber(ngx.var.arg_n) or 0, tonumber(ngx.var.arg_from) or 1
                local head, tail = string.rep("c", 100), string.rep("c", 40)
                for i = from, from + n - 1 do
                    if i % 16 == 0 then kept[#kept + 1] = head .. string.format("%020d", i) .. tail
                    else kept[#kept + 1] = "xwalk-s-" .. i end
                end
                ngx.say(#kept)
            }
        }
        # /lua/heap/busy?until=FILE: interns strings and drops them until FILE exists, the collector running (a busy worker).
        location = /lua/heap/busy {
            content_by_lua_block {
                collectgarbage("restart")
                local head, tail = string.rep("b", 100), string.rep("b", 40)
                local r, i = 0, 0
                while not io.open(ngx.var.arg_until) do
                    local t = {}
                    for k = 1, 1000 do
                        i = i + 1
                        t[k] = (i % 8 == 0) and (head .. string.format("%020d", i) .. tail) or ("xwalk-busy-" .. i)
                    end
                    r = r + #t
                end
                ngx.say(r)
            }
        }
        # /lua/heap/pages?n=N: a table of N entries keyed "/page/I", each a string page, and a small table of keys of
        # other types; answers both addresses.
        location = /lua/heap/pages {
            content_by_lua_block {
                collectgarbage("stop")
                local n = tonumber(ngx.var.arg_n) or 1000
                xwalk_pages = {}
                for i = 1, n do xwalk_pages["/page/" .. i] = "<html>page " .. i .. "</html>" end
                xwalk_mixed = { [-3] = 1, [2 ^ 40] = 2, [1.5] = 3, [true] = 4, [{}] = 5, k = 6 }
                local addr = function(t) return (tostring(t):gsub("^table: ", "")) end
                ngx.say(addr(xwalk_pages), " ", addr(xwalk_mixed))
            }
        }
        # /lua/heap/garbage?n=N: a full collection, the collector stopped, then N tables and N strings made and dropped
        # (kept in a table until the end: a table that never leaves the loop would be sunk by the JIT, never made).
        location = /lua/heap/garbage {
            content_by_lua_block {
                collectgarbage("collect")
                collectgarbage("stop")
                local keep = {}
                for i = 1, tonumber(ngx.var.arg_n) or 0 do keep[i] = { "xwalk-garbage-" .. i } end
                keep = nil
                ngx.say("ok")
            }
        }
        # /lua/heap/step?n=K: K steps of the collector, which stays stopped after them; /lua/heap/collect: the cycle
        # finished and a full one, then stopped; answers the bytes in use after it (collectgarbage("count")).
        location = /lua/heap/step {
            content_by_lua_block {
                for _ = 1, tonumber(ngx.var.arg_n) or 1 do collectgarbage("step", 0) end
                collectgarbage("stop")
                ngx.say("ok")
            }
        }
        location = /lua/heap/collect {
            content_by_lua_block {
                collectgarbage("collect")
                collectgarbage("stop")
                ngx.say(string.format("%d", collectgarbage("count") * 1024))
            }
        }
        # --- end of the heap views' locations.
        # /lua/short?until=FILE and /lua/profile?seconds=S[&samples=N] (test/lib/lua-split.ts): one chunk, the same short calls.
        location ~ ^/lua/(short|profile)$ {
            content_by_lua_block {
                local function heavy(n) local x = 0 for i = 1, n do x = (x + i * 7) % 1000003 end return x end
                local M = {} function M.light(n) local x = 0 for i = 1, n do x = (x + i * 7) % 1000003 end return x end
                if ngx.var.arg_jit == "off" then jit.off() jit.flush() else jit.on() end
                local n = tonumber(ngx.var.arg_n) or (jit.status() and 500 or 200)
                local function rounds(k) local r = 0 for _ = 1, k do r = r + heavy(3 * n) + M.light(n) end return r end
                if ngx.var.uri == "/lua/short" then
                    local r = 0
                    while not io.open(ngx.var.arg_until) do r = r + rounds(200) end
                    ngx.say(r)
                    return
                end
                local profile = require("jit.profile")
                local funcs, states, r, done, taken = {}, {}, 0, 0, 0
                profile.start("fi1", function(thread, samples, vmstate)
                    local f = profile.dumpstack(thread, "f", 1)
                    funcs[f] = (funcs[f] or 0) + samples
                    states[vmstate] = (states[vmstate] or 0) + samples
                    taken = taken + samples
                end)
                ngx.update_time()
                local deadline = ngx.now() + (tonumber(ngx.var.arg_seconds) or 3)
                local want = tonumber(ngx.var.arg_samples) or math.huge
                repeat r = r + rounds(200) done = done + 200 ngx.update_time() until ngx.now() >= deadline or taken >= want
                profile.stop()
                local out = { "jit " .. (jit.status() and "on" or "off"), "rounds " .. done, "n " .. n, "result " .. r }
                for k, v in pairs(funcs) do out[#out + 1] = "function " .. k .. " " .. v end
                for k, v in pairs(states) do out[#out + 1] = "vmstate " .. k .. " " .. v end
                ngx.say(table.concat(out, string.char(10)))
            }
        }
        # ---- Retention paths (test/lua-retention.test.ts): objects held in known places, each answering its address
        # (tostring of a table) so the test knows what to ask about. xwalk_shop.lua is a module the test writes into the
        # nginx prefix (ngx.config.prefix()); render_item closes over its page_cache, a memo keyed by the URI it is given.
        location = /lua/retain/plant {
            content_by_lua_block {
                package.path = ngx.config.prefix() .. "?.lua;" .. package.path
                local shop = require("xwalk_shop")
                shop.render_item("/plant")
                _G.xwalk_global_holder = _G.xwalk_global_holder or { kind = "global" }
                shop.sessions = shop.sessions or { kind = "module field" }
                local dropped = { kind = "garbage" }
                ngx.say(table.concat({ "cache " .. shop.render_item(), "global " .. tostring(_G.xwalk_global_holder), "sessions " .. tostring(shop.sessions),
                                       "dropped " .. tostring(dropped) }, string.char(10)))
            }
        }
        location = /lua/retain/park {
            content_by_lua_block {
                local held = { kind = "parked" }
                ngx.log(ngx.ERR, "xwalk-held ", tostring(held))
                ngx.sleep(tonumber(ngx.var.arg_s) or 30)
                ngx.say(held.kind)
            }
        }
        location = /lua/retain/quiet {
            content_by_lua_block { collectgarbage("collect") collectgarbage("stop") ngx.say(string.format("%d", collectgarbage("count") * 1024)) }
        }
        location = /lua/retain/leak {
            content_by_lua_block {
                package.path = ngx.config.prefix() .. "?.lua;" .. package.path
                local shop = require("xwalk_shop")
                local n = tonumber(ngx.var.arg_n) or 1
                for i = 1, n do shop.render_item("/item/" .. ngx.var.arg_from .. "/" .. i) end
                ngx.say(shop.render_item())
            }
        }
        # ---- What a request waits on (test/waits.test.ts). /lua/cosocket?port=P&t=MS[&ct=MS] connects to 127.0.0.1:P
        # (connect timeout ct, 5 s), sends 10 bytes and waits for a line with a read timeout of t; /lua/cosocket/thread does it in a light thread that
        # the entry coroutine waits for (17 bytes); /lua/semaphore?s=S waits on a semaphore nobody posts.
        location = /lua/cosocket {
            content_by_lua_block {
                local sock = ngx.socket.tcp()
                sock:settimeouts(tonumber(ngx.var.arg_ct) or 5000, 5000, tonumber(ngx.var.arg_t) or 120000)
                local ok, err = sock:connect("127.0.0.1", tonumber(ngx.var.arg_port))
                if not ok then ngx.say("connect: ", err) return end
                sock:send("xwalk-ping")
                ngx.say(sock:receive("*l"))
            }
        }
        location = /lua/cosocket/thread {
            content_by_lua_block {
                local function ask(port, t)
                    local sock = ngx.socket.tcp()
                    sock:settimeouts(5000, 5000, t)
                    assert(sock:connect("127.0.0.1", port))
                    sock:send("xwalk-thread-ping")
                    return sock:receive("*l")
                end
                local th = ngx.thread.spawn(ask, tonumber(ngx.var.arg_port), tonumber(ngx.var.arg_t) or 120000)
                ngx.say(select(2, ngx.thread.wait(th)))
            }
        }
        location = /lua/semaphore {
            content_by_lua_block {
                local sema = require("ngx.semaphore").new(0)
                local ok, err = sema:wait(tonumber(ngx.var.arg_s) or 60)
                ngx.say(ok and "posted" or err)
            }
        }`;

function readErrorLog(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return '(no error.log)';
  }
}

class StartError extends Error {
  constructor(message: string, readonly addressInUse: boolean) {
    super(message);
  }
}

/** Start nginx (master + 1 worker) on a free 127.0.0.1 port in a fresh temp dir. */
export async function startNginx(opts: StartOptions = {}): Promise<Nginx> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (e) {
      // the free port was taken between probing and nginx's bind(): try another one
      if (e instanceof StartError && e.addressInUse && attempt < 3) continue;
      throw e;
    }
  }
}

async function startOnce(opts: StartOptions): Promise<Nginx> {
  const binary = path.resolve(opts.binary ?? nginxBinary());
  if (!fs.existsSync(binary)) throw new Error(`nginx binary not found: ${binary} (run buildNginx() first)`);
  const startTimeoutMs = opts.startTimeoutMs ?? 10_000;
  const quitTimeoutMs = opts.quitTimeoutMs ?? 5_000;

  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'xwalk-nginx-'));
  const errorLog = path.join(dir, 'error.log');
  const confFile = path.join(dir, 'nginx.conf');
  const port = await freePort();
  await fsp.mkdir(path.join(dir, 'html'));
  await fsp.mkdir(path.join(dir, 'temp'));
  await fsp.writeFile(path.join(dir, 'html', 'index.html'), ROOT_BODY);
  await fsp.writeFile(confFile, renderConfig(dir, port, opts));

  installCleanup();
  // -e: the error log nginx uses before it has read the config (default would be <prefix>/logs/error.log)
  const child: ChildProcess = spawn(binary, ['-p', dir + '/', '-e', errorLog, '-c', confFile], {
    argv0: opts.argv0,
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (b: Buffer) => {
    if (output.length < 64 * 1024) output += b.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exitInfo: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
      resolve();
    });
  });
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  // let a forgotten stop() not keep the test process alive (the exit hook still kills nginx)
  child.unref();
  (child.stdout as net.Socket | null)?.unref?.();
  (child.stderr as net.Socket | null)?.unref?.();

  const masterPid = child.pid;
  if (masterPid === undefined) {
    const err = await spawnError;
    await fsp.rm(dir, { recursive: true, force: true });
    throw new Error(`cannot spawn ${binary}: ${err.message}`);
  }
  const info: { dir: string; workers: Set<number>; stop?: () => Promise<void> } = { dir, workers: new Set<number>() };
  running.set(masterPid, info);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // the child is unref'd: keep the event loop alive while we wait for its exit
      const keepAlive = setInterval(() => {}, 1000);
      const exitedWithin = (ms: number) =>
        new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), ms);
          void exited.then(() => {
            clearTimeout(t);
            resolve(true);
          });
        });
      try {
        if (exitInfo === undefined) {
          try { process.kill(masterPid, 'SIGQUIT'); } catch { /* gone */ }
          const quit = await exitedWithin(quitTimeoutMs);
          if (!quit) {
            // Kill the workers first: the master (in shutdown) reaps them and exits by itself,
            // so no orphan is left to PID 1. SIGKILL the master if it still lingers.
            for (const w of [...info.workers, ...childPids(masterPid)]) {
              try { process.kill(w, 'SIGKILL'); } catch { /* gone */ }
            }
            const gone = await exitedWithin(2000);
            if (!gone) {
              try { process.kill(masterPid, 'SIGKILL'); } catch { /* gone */ }
              await exited;
            }
          }
        }
      } finally {
        clearInterval(keepAlive);
      }
      running.delete(masterPid);
      await fsp.rm(dir, { recursive: true, force: true });
    })());

  info.stop = stop;

  const fail = async (why: string, addressInUse = false): Promise<never> => {
    const log = readErrorLog(errorLog);
    await stop();
    throw new StartError(
      `nginx did not start: ${why}\n--- nginx stdout/stderr ---\n${output || '(none)'}\n--- ${errorLog} ---\n${log}`,
      addressInUse,
    );
  };

  const deadline = Date.now() + startTimeoutMs;
  for (;;) {
    if (exitInfo !== undefined) {
      const log = readErrorLog(errorLog) + output;
      return fail(`master exited early (${exitInfo})`, /Address already in use/.test(log));
    }
    // A single process serves by itself; else wait for every worker.
    const workers = opts.singleProcess ? [masterPid] : workerPidsOf(masterPid);
    if (workers.length >= (opts.singleProcess ? 1 : (opts.workers ?? 1)) && (await canConnect(port))) {
      if (!opts.singleProcess) workers.forEach((w) => info.workers.add(w));
      return { masterPid, workerPid: workers[0], workerPids: workers, port, dir, binary, errorLog, stop };
    }
    if (Date.now() > deadline) {
      return fail(
        `timed out after ${startTimeoutMs} ms waiting for port ${port} and a worker process ` +
          `(children of ${masterPid}: ${childPids(masterPid).map((p) => `${p} "${procCmdline(p)}"`).join(', ') || 'none'})`,
      );
    }
    await sleep(50);
  }
}

// ---------------------------------------------------------------- held connections

export interface HeldConnections {
  sockets: net.Socket[];
  /** destroy all sockets and wait until they are closed */
  close(): Promise<void>;
}

/** What stub_status (location /status) says: connections open, and requests reading their headers. */
export async function nginxStatus(port: number): Promise<{ active: number; reading: number }> {
  const body = (await httpGet(port, '/status')).body;
  const active = /^Active connections: (\d+)/.exec(body);
  const reading = /Reading: (\d+)/.exec(body);
  if (!active || !reading) throw new Error(`not a stub_status answer: ${body}`);
  // Less the status request itself.
  return { active: Number(active[1]) - 1, reading: Number(reading[1]) };
}

/** Polls until cond holds (bounded): for conditions nginx or the system reports, never a fixed time. */
export async function waitUntil(what: string, cond: () => Promise<boolean> | boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting until ${what}`);
    await sleep(20);
  }
}

/**
 * Open k TCP connections to 127.0.0.1:port. With partialRequest, write that text on
 * connection i (e.g. a request line and headers without the final blank line) so nginx
 * keeps the request in flight. Resolves once nginx itself (stub_status) counts the k
 * connections open and, with partialRequest, the k requests reading their headers.
 */
export async function holdConnections(
  port: number,
  k: number,
  opts: { partialRequest?: (i: number) => string } = {},
): Promise<HeldConnections> {
  const sockets: net.Socket[] = [];
  const close = async () => {
    await Promise.all(
      sockets.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed && s.closed) return resolve();
            s.once('close', () => resolve());
            s.destroy();
          }),
      ),
    );
  };
  const before = await nginxStatus(port);
  try {
    await Promise.all(
      Array.from({ length: k }, (_, i) =>
        new Promise<void>((resolve, reject) => {
          const s = net.connect({ host: '127.0.0.1', port });
          sockets.push(s);
          s.once('error', reject);
          s.once('connect', () => {
            s.removeListener('error', reject);
            s.on('error', () => { /* nginx may reset it later (timeouts, shutdown) */ });
            const text = opts.partialRequest?.(i);
            if (text === undefined) return resolve();
            s.write(text, (err) => (err ? reject(err) : resolve()));
          });
        }),
      ),
    );
    const reading = opts.partialRequest ? k : 0;
    await waitUntil(`nginx counts ${k} more connections (${reading} reading)`, async () => {
      const now = await nginxStatus(port);
      return now.active >= before.active + k && now.reading >= before.reading + reading;
    });
  } catch (e) {
    await close();
    throw e;
  }
  return { sockets, close };
}

/** The partial request used by the tests: request line + Host header, no terminating blank line. */
export const partialGet = (i: number): string => `GET /hold/${i} HTTP/1.1\r\nHost: xw${i}.test\r\n`;
