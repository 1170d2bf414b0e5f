/**
 * A real headless browser (Debian's chromium-headless-shell) renders a file
 * to a PNG, and the PNG's pixels are read back (8-bit RGB or RGBA,
 * not interlaced: what chromium writes), so that a test can say what is on
 * the picture.
 */
import { execa } from 'execa';
import zlib from 'node:zlib';

export const CHROMIUM = 'chromium-headless-shell';

/** Renders url (file://...) at width x height into png. */
export async function screenshot(url: string, png: string, width: number, height: number): Promise<void> {
  const r = await execa(CHROMIUM, ['--no-sandbox', '--headless', '--disable-gpu', '--hide-scrollbars', `--screenshot=${png}`, `--window-size=${width},${height}`, url], { reject: false, timeout: 60_000 });
  if (r.exitCode !== 0) throw new Error(`${CHROMIUM} failed: ${r.stderr}`);
}

export interface Picture {
  width: number;
  height: number;
  /** [r, g, b] of the pixel at (x, y). */
  at(x: number, y: number): [number, number, number];
}

/** The pixels of a PNG: IHDR, the IDAT stream inflated, each row unfiltered. */
export function readPng(data: Buffer): Picture {
  if (data.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let channels = 0;
  const idat: Buffer[] = [];
  while (off < data.length) {
    const len = data.readUInt32BE(off);
    const type = data.toString('latin1', off + 4, off + 8);
    const body = data.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      const [depth, colour, , , interlace] = [body[8], body[9], body[10], body[11], body[12]];
      if (depth !== 8 || (colour !== 2 && colour !== 6) || interlace !== 0) throw new Error(`a PNG of another kind (depth ${depth}, colour ${colour}, interlace ${interlace})`);
      channels = colour === 6 ? 4 : 3;
    } else if (type === 'IDAT') idat.push(body);
    off += 12 + len;
  }
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? px[y * stride + i - channels] : 0;
      const b = y > 0 ? px[(y - 1) * stride + i] : 0;
      const c = i >= channels && y > 0 ? px[(y - 1) * stride + i - channels] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const add = [0, a, b, (a + b) >> 1, paeth][filter];
      if (add === undefined) throw new Error(`PNG filter ${filter}`);
      px[y * stride + i] = (line[i] + add) & 0xff;
    }
  }
  return {
    width,
    height,
    at: (x, y) => {
      const i = y * stride + x * channels;
      return [px[i], px[i + 1], px[i + 2]];
    },
  };
}
