/**
 * The SVG flame graph of xsample record, as a real headless browser
 * (chromium) draws it: every frame of the file is on the picture, in its
 * colour, where the file puts it. The frames are read from the file by
 * python's XML parser; the picture's pixels by test/lib/chromium.ts.
 */
import { execa } from 'execa';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { readPng, screenshot } from './lib/chromium.ts';
import { startWalkee } from './lib/walkee.ts';
import { xsample } from './lib/xsample.ts';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-render-'));
t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Frame {
  name: string;
  x: number;
  y: number;
  width: number;
  height: number;
  fill: [number, number, number];
}

async function framesOf(svg: string): Promise<{ width: number; height: number; frames: Frame[] }> {
  const r = await execa('python3', [
    '-c',
    `
import json, re, sys, xml.etree.ElementTree as ET
S = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
frames = []
for g in root.iter(S + "g"):
    if g.get("class") == "f":
        r = g.find(S + "rect")
        frames.append({"name": g.get("data-name"), "x": float(r.get("x")), "y": float(r.get("y")), "width": float(r.get("width")), "height": float(r.get("height")), "fill": [int(v) for v in re.findall(r"\\d+", r.get("fill"))]})
print(json.dumps({"width": int(root.get("width")), "height": int(root.get("height")), "frames": frames}))
`,
    svg,
  ]);
  return JSON.parse(r.stdout);
}

t.test('chromium draws every frame of the flame graph in its colour, where the file puts it', async (t) => {
  const w = await startWalkee(['--nodes', '10', '--pools', '5']);
  t.teardown(() => w.kill());
  const svg = path.join(tmp, 'pools.svg');
  const r = await xsample(['record', '--pid', String(w.child.pid), '--struct', 'walkee_pool_memory', '--rate', '10', '--duration', '1', '-o', svg]);
  t.equal(r.code, 0, r.stderr);
  const { width, height, frames } = await framesOf(svg);
  t.equal(frames.length, 3 + 5, 'all, the process, the root label and five pools');
  const png = path.join(tmp, 'pools.png');
  await screenshot(`file://${svg}`, png, width, height);
  const pic = readPng(fs.readFileSync(png));
  t.same([pic.width, pic.height], [width, height], 'the picture is the size of the graph');
  for (const f of frames.filter((x) => x.width >= 8)) {
    // The top row of the rectangle, inside its rounded corners: above any text.
    const y = Math.round(f.y + 1);
    const xs: number[] = [];
    for (let x = Math.ceil(f.x + 3); x <= Math.floor(f.x + f.width - 3); x++) xs.push(x);
    const inColour = xs.filter((x) => pic.at(x, y).every((c, i) => Math.abs(c - f.fill[i]) <= 3)).length;
    t.ok(inColour >= 0.9 * xs.length, `${f.name}: ${inColour} of ${xs.length} pixels of its top row in rgb(${f.fill.join(',')})`);
  }
  // Below the frames, left of the details line: the background.
  const bg = pic.at(3, height - 3);
  t.ok(frames.every((f) => f.y + f.height < height - 3), 'the point looked at below is outside every frame');
  t.same(bg, [0xfd, 0xfd, 0xf6], 'and is the background');
});
