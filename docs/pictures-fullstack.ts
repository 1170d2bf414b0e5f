/**
 * make docs, the whole-stack pictures (docs/flamegraphs.md): `xsample record --cpu` of a Debian nginx
 * worker burning Lua (/lua/burn, JIT on) into docs/lua-cpu.svg, and `xsample record --off-cpu` of a
 * worker blocked in os.execute for about a second (/lua/blocked) into docs/lua-offcpu.svg, each drawn by
 * chromium into a .png beside it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { screenshot } from '../test/lib/chromium.ts';
import { blockWorker, startBurn, startRecord } from '../test/lib/fullstack.ts';
import { DEBIAN_NGINX, startNginx, waitUntil } from '../test/lib/nginx.ts';
import { root } from '../test/lib/walkee.ts';
import { xsample } from '../test/lib/xsample.ts';

async function png(svg: string): Promise<void> {
  const size = /<svg [^>]*width="(\d+)" height="(\d+)"/.exec(fs.readFileSync(svg, 'utf8'));
  const out = svg.replace(/\.svg$/, '.png');
  await screenshot(`file://${svg}`, out, Number(size![1]), Number(size![2]));
  process.stderr.write(`docs: wrote ${path.relative(root, svg)} and ${path.relative(root, out)}\n`);
}

export async function fullstackPictures(): Promise<void> {
  const cpu = path.join(root, 'docs/lua-cpu.svg');
  const off = path.join(root, 'docs/lua-offcpu.svg');
  const nginx = await startNginx({ binary: DEBIAN_NGINX, lua: true });
  try {
    const burn = await startBurn(nginx, 'on');
    const r = await xsample(['record', '--pid', String(nginx.workerPid), '--cpu', '--duration', '5', '-o', cpu]);
    await burn.stop();
    if (r.code !== 0) throw new Error(r.stderr);

    const rec = startRecord(['--pid', String(nginx.workerPid), '--off-cpu', '--duration', '4', '-o', off]);
    await rec.attached();
    const fifo = path.join(nginx.dir, 'fifo');
    const block = await blockWorker(nginx, fifo);
    await waitUntil('a second of the worker blocked', () => performance.now() - block.since >= 1000, 10_000);
    fs.writeFileSync(fifo, 'x');
    await block.answer;
    const o = await rec.child;
    if (o.exitCode !== 0) throw new Error(String(o.stderr));
  } finally {
    await nginx.stop();
  }
  await png(cpu);
  await png(off);
}

if (import.meta.url === `file://${process.argv[1]}`) await fullstackPictures();
