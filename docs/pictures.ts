/**
 * make docs: the pictures the docs show, made as a user would make them.
 * docs/ngx-memory.svg is `xsample record --struct ngx_memory -o ...` on a
 * live nginx worker (our build) holding two idle connections and two
 * requests; docs/ngx-memory.png is that file as chromium draws it. The
 * whole-stack graphs of a Lua worker: docs/pictures-fullstack.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { screenshot } from '../test/lib/chromium.ts';
import { buildNginx, holdConnections, partialGet, startNginx } from '../test/lib/nginx.ts';
import { root } from '../test/lib/walkee.ts';
import { xsample } from '../test/lib/xsample.ts';
import { fullstackPictures } from './pictures-fullstack.ts';

const svg = path.join(root, 'docs/ngx-memory.svg');
const png = path.join(root, 'docs/ngx-memory.png');

const nginx = await startNginx({ binary: await buildNginx() });
try {
  const idle = await holdConnections(nginx.port, 2);
  const held = await holdConnections(nginx.port, 2, { partialRequest: partialGet });
  const r = await xsample(['record', '--pid', String(nginx.workerPid), '--struct', 'ngx_memory', '--rate', '1', '--duration', '1', '-o', svg]);
  await idle.close();
  await held.close();
  if (r.code !== 0) throw new Error(r.stderr);
  const size = /<svg [^>]*width="(\d+)" height="(\d+)"/.exec(fs.readFileSync(svg, 'utf8'));
  await screenshot(`file://${svg}`, png, Number(size![1]), Number(size![2]));
  process.stderr.write(`docs: wrote ${path.relative(root, svg)} and ${path.relative(root, png)}\n`);
} finally {
  await nginx.stop();
}
await fullstackPictures();
