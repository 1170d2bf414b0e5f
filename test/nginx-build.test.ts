// Builds the debug nginx target and checks the harness in test/lib/nginx.ts:
// master/worker layout, stub_status counting held connections, clean shutdown.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import {
  NGINX_VERSION,
  ROOT_BODY,
  buildNginx,
  holdConnections,
  httpGet,
  partialGet,
  procCmdline,
  procStat,
  startNginx,
} from './lib/nginx.ts';

// the first build (apt-get source + configure + make) takes a few minutes
t.setTimeout(20 * 60 * 1000);

t.test('nginx debug build, start, hold connections, stop', async (t) => {
  const binary = await buildNginx();
  t.ok(fs.existsSync(binary), `binary exists: ${binary}`);

  // nginx -V prints to stderr
  const v = execFileSync(binary, ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const vOut = execFileSync('sh', ['-c', '"$0" -V 2>&1', binary], { encoding: 'utf8' });
  t.equal(v, '', 'nginx -V writes nothing to stdout');
  t.match(vOut, new RegExp(`nginx version: nginx/${NGINX_VERSION.replace(/\./g, '\\.')}\\b`), 'nginx -V reports 1.22.1');
  t.match(vOut, /--with-http_stub_status_module/, 'configured with stub_status');

  const sections = execFileSync('readelf', ['-S', '-W', binary], { encoding: 'utf8' });
  t.match(sections, /\.debug_info/, 'binary carries DWARF (.debug_info)');

  const ngx = await startNginx({ binary });
  t.teardown(() => ngx.stop());

  t.equal(procStat(ngx.masterPid)?.ppid, process.pid, 'master is our child (daemon off)');
  t.equal(procStat(ngx.workerPid)?.ppid, ngx.masterPid, 'worker is a child of the master');
  t.match(procCmdline(ngx.workerPid), /^nginx: worker process/, 'worker cmdline');
  t.match(procCmdline(ngx.masterPid), /^nginx: master process/, 'master cmdline');

  const root = await httpGet(ngx.port, '/');
  t.equal(root.status, 200, 'GET / status');
  t.equal(root.body, ROOT_BODY, 'GET / body');

  const held = await holdConnections(ngx.port, 5, { partialRequest: partialGet });
  t.equal(held.sockets.length, 5, '5 connections held');

  // holdConnections returns once nginx counts them
  const status = await httpGet(ngx.port, '/status');
  t.equal(status.status, 200, 'GET /status status');
  t.match(status.body, /^Active connections: 6 \n/, '5 held + the status request itself');
  t.match(status.body, /Reading: 5 Writing: 1 Waiting: 0/, '5 requests still reading headers');

  await held.close();

  const { masterPid, workerPid, dir } = ngx;
  await ngx.stop();
  t.equal(procStat(masterPid), undefined, 'master pid is gone');
  t.equal(procStat(workerPid), undefined, 'worker pid is gone');
  t.notOk(fs.existsSync(dir), 'temp dir removed');
});
