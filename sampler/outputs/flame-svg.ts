/**
 * A recording's stacks as a self-contained SVG flame graph: every frame is
 * an SVG element of the file (a rect, its name, a <title> with its weight
 * and share), so it reads without JavaScript; a small script adds click to
 * zoom, search (highlights the frames whose name matches, with their share)
 * and a details line under the pointer. The root is at the bottom, each
 * frame's width its share of the total weight; frames narrower than
 * MIN_WIDTH pixels are left out (their weight stays in their parents').
 */
import type { Int } from '../../core/exact.ts';
import type { StackCounts } from './stack-counts.ts';

const WIDTH = 1200;
const ROW = 17;
const TOP = 50; // title, search and details lines
const BOTTOM = 30;
const MIN_WIDTH = 0.1;

interface Node {
  name: string;
  weight: number;
  children: Map<string, Node>;
}

function treeOf(counts: StackCounts): Node {
  const root: Node = { name: 'all', weight: 0, children: new Map() };
  for (const e of counts.entries()) {
    const w = Number(e.weight);
    root.weight += w;
    let n = root;
    for (const f of e.frames) {
      let c = n.children.get(f);
      if (!c) n.children.set(f, (c = { name: f, weight: 0, children: new Map() }));
      c.weight += w;
      n = c;
    }
  }
  return root;
}

const xml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/**
 * A colour that is the same for the same name, from one run to the next: by the layer a frame's suffix
 * says (flamegraph.pl's: _[k] kernel orange, _[j] compiled code green; _[l] interpreted Lua blue-green),
 * else warm (native code, and every frame of a view).
 */
function colour(name: string): string {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619) >>> 0;
  const a = h % 50;
  const b = (h >>> 8) % 60;
  if (name.endsWith('_[k]')) return `rgb(${200 + a},${130 + b},${30 + (b >> 1)})`;
  if (name.endsWith('_[j]')) return `rgb(${50 + b},${180 + a},${50 + (b >> 1)})`;
  if (name.endsWith('_[l]')) return `rgb(${60 + b},${170 + a},${160 + (b >> 1)})`;
  return `rgb(${205 + a},${80 + ((h >>> 8) % 130)},${40 + ((h >>> 16) % 40)})`;
}

const share = (w: number, total: number) => (total > 0 ? (100 * w) / total : 0).toFixed(2);

export function toFlameSvg(counts: StackCounts, title: string, unit: string, total: Int): string {
  const root = treeOf(counts);
  const all = root.weight;
  const frames: string[] = [];
  let depth = 0;
  const place = (n: Node, x: number, level: number) => {
    const w = all > 0 ? (n.weight / all) * WIDTH : WIDTH;
    if (w < MIN_WIDTH) return;
    depth = Math.max(depth, level);
    frames.push(frameOf(n, x, w, level, all, unit));
    let cx = x;
    for (const c of [...n.children.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      place(c, cx, level + 1);
      cx += all > 0 ? (c.weight / all) * WIDTH : 0;
    }
  };
  place(root, 0, 0);
  const height = TOP + (depth + 1) * ROW + BOTTOM;
  // Rows are placed from the bottom: the y of a level is known once the depth is.
  const body = frames.map((f) => f.replace(/__Y(\d+)__/g, (_, l) => String(height - BOTTOM - (Number(l) + 1) * ROW)).replace(/__TY(\d+)__/g, (_, l) => String(height - BOTTOM - (Number(l) + 1) * ROW + 12)));
  return [
    `<?xml version="1.0" encoding="UTF-8"?>`,
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Verdana, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#fdfdf6"/>`,
    `<text x="${WIDTH / 2}" y="20" text-anchor="middle" font-size="16">${xml(title)}</text>`,
    `<text x="10" y="40" id="reset" style="cursor:pointer" visibility="hidden">Reset zoom</text>`,
    `<text x="${WIDTH - 10}" y="40" id="search" text-anchor="end" style="cursor:pointer">Search</text>`,
    `<text x="10" y="${height - 10}" id="details">${xml(`total ${total} ${unit}`)}</text>`,
    `<g id="frames">`,
    ...body,
    `</g>`,
    `<script type="text/ecmascript"><![CDATA[${SCRIPT}]]></script>`,
    `</svg>`,
  ].join('\n');
}

function frameOf(n: Node, x: number, w: number, level: number, all: number, unit: string): string {
  const label = `${n.name} (${n.weight} ${unit}, ${share(n.weight, all)}%)`;
  // Room for about one character per 7 pixels; what does not fit is cut with "..".
  const room = Math.floor((w - 6) / 7);
  const text = room < 3 ? '' : n.name.length <= room ? n.name : `${n.name.slice(0, room - 2)}..`;
  return (
    `<g class="f" data-x="${x.toFixed(3)}" data-w="${w.toFixed(3)}" data-weight="${n.weight}" data-name="${xml(n.name)}">` +
    `<title>${xml(label)}</title>` +
    `<rect x="${x.toFixed(2)}" y="__Y${level}__" width="${w.toFixed(2)}" height="${ROW - 1}" rx="2" fill="${colour(n.name)}"/>` +
    `<text x="${(x + 3).toFixed(2)}" y="__TY${level}__">${xml(text)}</text></g>`
  );
}

/**
 * Click a frame: it and what is above it fill the width; its ancestors stay, the rest hides.
 * Search: a regular expression; matching frames turn purple, and the share they cover is shown.
 */
const SCRIPT = `
(function () {
  var W = ${WIDTH}, frames = [].slice.call(document.querySelectorAll('g.f'));
  var details = document.getElementById('details'), reset = document.getElementById('reset'), search = document.getElementById('search');
  var base = details.textContent;
  function num(g, k) { return parseFloat(g.getAttribute('data-' + k)); }
  function y(g) { return parseFloat(g.querySelector('rect').getAttribute('y')); }
  function show(g, x, w) {
    var r = g.querySelector('rect'), t = g.querySelector('text'), name = g.getAttribute('data-name');
    if (w < 0.1) { g.style.display = 'none'; return; }
    g.style.display = '';
    r.setAttribute('x', x); r.setAttribute('width', w);
    t.setAttribute('x', x + 3);
    var room = Math.floor((w - 6) / 7);
    t.textContent = room < 3 ? '' : name.length <= room ? name : name.slice(0, room - 2) + '..';
  }
  function zoom(g) {
    var x0 = num(g, 'x'), w0 = num(g, 'w'), y0 = y(g), k = W / w0;
    frames.forEach(function (f) {
      var x = num(f, 'x'), w = num(f, 'w');
      if (y(f) >= y0) { if (x <= x0 + 1e-6 && x + w >= x0 + w0 - 1e-6) show(f, 0, W); else f.style.display = 'none'; }
      else if (x >= x0 - 1e-6 && x + w <= x0 + w0 + 1e-6) show(f, (x - x0) * k, w * k);
      else f.style.display = 'none';
    });
    reset.setAttribute('visibility', 'visible');
  }
  function unzoom() {
    frames.forEach(function (f) { show(f, num(f, 'x'), num(f, 'w')); });
    reset.setAttribute('visibility', 'hidden');
  }
  frames.forEach(function (g) {
    g.style.cursor = 'pointer';
    g.addEventListener('click', function () { zoom(g); });
    g.addEventListener('mouseover', function () { details.textContent = g.querySelector('title').textContent; });
    g.addEventListener('mouseout', function () { details.textContent = base; });
  });
  reset.addEventListener('click', unzoom);
  search.addEventListener('click', function () {
    var term = prompt('Search frames (a regular expression)', '');
    frames.forEach(function (f) { f.querySelector('rect').style.fill = ''; });
    if (!term) { details.textContent = base; return; }
    var re = new RegExp(term), all = num(frames[0], 'weight'), hit = 0, counted = [];
    frames.forEach(function (f) {
      if (!re.test(f.getAttribute('data-name'))) return;
      f.querySelector('rect').style.fill = 'rgb(200,0,200)';
      var x = num(f, 'x'), w = num(f, 'w');
      if (!counted.some(function (c) { return x >= c[0] - 1e-6 && x + w <= c[0] + c[1] + 1e-6; })) { counted.push([x, w]); hit += num(f, 'weight'); }
    });
    base = 'matched ' + (all > 0 ? (100 * hit / all).toFixed(2) : '0') + '% of the total';
    details.textContent = base;
  });
})();
`;
