/**
 * make demo: start the nginx we built, give it some connections and
 * requests in flight, and show its worker's pools with xsample while it
 * keeps serving.
 */
import { execa } from 'execa';
import path from 'node:path';
import { holdConnections, partialGet, startNginx, repoRoot } from '../test/lib/nginx.ts';

const xsample = path.join(repoRoot, 'dist/xsample.js');
const say = (s: string) => process.stderr.write(`\n== ${s}\n`);

const nginx = await startNginx();
try {
  say(`nginx 1.22.1 on 127.0.0.1:${nginx.port}: master ${nginx.masterPid}, worker ${nginx.workerPid}`);
  const idle = await holdConnections(nginx.port, 2);
  const inFlight = await holdConnections(nginx.port, 3, { partialRequest: partialGet });
  say('2 idle connections and 3 requests in flight (headers unfinished); now, without stopping the worker:');
  say(`xsample --pid ${nginx.workerPid} --struct ngx_pool`);
  const run = await execa(process.execPath, [xsample, '--pid', String(nginx.workerPid), '--struct', 'ngx_pool', '--verbose'], { reject: false, stdout: 'inherit', stderr: 'inherit' });
  // The master's pid stands for its workers.
  for (const view of ['ngx_requests', 'ngx_worker', 'ngx_timers', 'ngx_shm_zones']) {
    say(`xsample --pid ${nginx.masterPid} --struct ${view}   # the master: its workers are read`);
    await execa(process.execPath, [xsample, '--pid', String(nginx.masterPid), '--struct', view], { reject: false, stdout: 'inherit', stderr: 'inherit' });
  }
  say(`xsample --pid ${nginx.workerPid} --struct ngx_cycle_pool --json`);
  await execa(process.execPath, [xsample, '--pid', String(nginx.workerPid), '--struct', 'ngx_cycle_pool', '--json'], { reject: false, stdout: 'inherit', stderr: 'inherit' });
  say('the same from gdb, with the generated extension (gdb stops the worker while attached; xsample never does):');
  await execa('gdb', ['-batch', '-nx', '-p', String(nginx.workerPid), '-ex', `source ${path.join(repoRoot, 'generated/nginx.py')}`, '-ex', 'ngx-requests'], { reject: false, stdout: 'inherit', stderr: 'ignore', env: { DEBUGINFOD_URLS: '' } });
  idle.close();
  inFlight.close();
  process.exitCode = run.exitCode;
} finally {
  await nginx.stop();
}
