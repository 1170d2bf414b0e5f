/**
 * A master pid means its workers. The pid people find first is nginx's
 * master, which holds no connection: `--pid MASTER` reads every worker (as
 * `--pid W1,W2` does), each item says its pid, text groups by worker. A
 * single-process nginx is read itself; a master with no workers is one
 * clear line. What each worker holds is checked against the kernel: every
 * request's fd is a socket open in that very process.
 */
import fs from 'node:fs';
import { clientSockets } from './lib/proc-sockets.ts';
import t from 'tap';
import { childPids, holdConnections, partialGet, startNginx } from './lib/nginx.ts';
import { xsample } from './lib/xsample.ts';

const K = 4;
type Doc = { pid: number; items: { pid: number; uri: string; fd: number }[]; partial: boolean };

const docsOf = (json: Doc | Doc[]): Doc[] => (Array.isArray(json) ? json : [json]);
const uris = (docs: Doc[]) => docs.flatMap((d) => d.items.map((i) => i.uri)).sort();
const held = Array.from({ length: K }, (_, i) => `/hold/${i}`);

t.test('--pid of a master reads every worker, and each item says its pid', async (t) => {
  const nginx = await startNginx({ workers: 2 });
  t.teardown(() => nginx.stop());
  const workers = [...nginx.workerPids].sort((a, b) => a - b);
  t.same([...childPids(nginx.masterPid)].sort((a, b) => a - b), workers, "the master's children are its two workers");
  // The kernel decides which worker accepts each connection (stopping one to steer them can strand a
  // connection in the backlog): what each worker holds is read from /proc, and xsample must say the same.
  const conns = await holdConnections(nginx.port, K, { partialRequest: partialGet });
  t.teardown(() => conns.close());
  const truth = workers.map((w) => clientSockets(w, nginx.port, conns.sockets.map((s) => s.localPort!)));

  const r = await xsample(['--pid', String(nginx.masterPid), '--struct', 'ngx_requests', '--json']);
  t.equal(r.code, 0, r.stderr);
  const docs = docsOf(r.json);
  t.same(docs.map((d) => d.pid).sort((a, b) => a - b), workers, 'one result per worker, none for the master');
  t.same(uris(docs), held, 'every request the test holds');
  t.same(docs.sort((a, b) => a.pid - b.pid).map((d) => d.items.length), truth, 'each worker has the connections the kernel says it holds');
  for (const d of docs) {
    t.notOk(d.partial, `pid ${d.pid}: whole`);
    for (const i of d.items) {
      t.equal(i.pid, d.pid, `${i.uri}: says its worker`);
      t.match(fs.readlinkSync(`/proc/${i.pid}/fd/${i.fd}`), /^socket:\[\d+\]$/, `${i.uri}: fd ${i.fd} is a socket of pid ${i.pid}`);
    }
  }

  const list = await xsample(['--pid', workers.join(','), '--struct', 'ngx_requests', '--json']);
  t.same(docsOf(list.json).map((d) => [d.pid, d.items.map((i) => i.uri).sort()]), docs.map((d) => [d.pid, d.items.map((i) => i.uri).sort()]), '--pid W1,W2 reads the same');

  const totals = docsOf((await xsample(['--pid', String(nginx.masterPid), '--struct', 'ngx_connection_totals', '--json'])).json);
  t.equal(totals.reduce((n, d) => n + (d.items[0] as unknown as { clients: number }).clients, 0), K, 'the clients of both workers are the connections the test holds');

  const text = await xsample(['--pid', String(nginx.masterPid), '--struct', 'ngx_requests']);
  for (const w of workers) t.match(text.stdout, new RegExp(`^ngx_requests: \\d+ items?  \\(nginx 1\\.22\\.1, pid ${w}\\)$`, 'm'), `text: a block for worker ${w}`);
  t.notMatch(text.stdout, new RegExp(`pid ${nginx.masterPid}\\)`), 'and none for the master');

  const verbose = await xsample(['--pid', String(nginx.masterPid), '--struct', 'ngx_requests', '--verbose']);
  t.match(verbose.stderr, new RegExp(`pid ${nginx.masterPid} is nginx's master process: reading its workers ${workers.join(', ')}`), '--verbose says so');
});

t.test('a single-process nginx (master_process off) is read itself', async (t) => {
  const nginx = await startNginx({ singleProcess: true });
  t.teardown(() => nginx.stop());
  const conns = await holdConnections(nginx.port, K, { partialRequest: partialGet });
  t.teardown(() => conns.close());
  const r = await xsample(['--pid', String(nginx.masterPid), '--struct', 'ngx_requests', '--json']);
  t.equal(r.code, 0, r.stderr);
  t.equal(r.json.pid, nginx.masterPid);
  t.same(uris([r.json]), held);
});

t.test('a master with no workers is one clear line', async (t) => {
  // A process of nginx's executable titled as a master, with no children: a master whose workers are gone.
  const nginx = await startNginx({ singleProcess: true, argv0: 'nginx: master process (no workers)' });
  t.teardown(() => nginx.stop());
  const r = await xsample(['--pid', String(nginx.masterPid), '--struct', 'ngx_requests']);
  t.equal(r.code, 1);
  t.match(r.stderr.trim(), new RegExp(`^xsample: pid ${nginx.masterPid} is nginx's master process \\('nginx: master process \\(no workers\\)[^']*'\\), which holds none of what the views read, and it has no workers now`));
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
});
