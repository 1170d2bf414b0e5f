/**
 * Debug files fetched by build-id: from a debuginfod server
 * (DEBUGINFOD_URLS, GET URL/buildid/ID/debuginfo) and from a -dbgsym
 * package (apt-get download, dpkg-deb -x, usr/lib/debug/.build-id/xx/rest.debug).
 * Each lands in a private folder; the caller verifies it (verify.ts) before
 * a name of it is used.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execa } from './exec.ts';
import { ElfFile } from '../../core/elf.ts';

/** A debug file larger than this is refused, not downloaded. */
const MAX_DEBUG_FILE = 2 * 1024 * 1024 * 1024;

/** The servers DEBUGINFOD_URLS names (separated by spaces, as elfutils reads it). */
export const debuginfodUrls = (): string[] => (process.env.DEBUGINFOD_URLS ?? '').split(/\s+/).filter((u) => /^https?:\/\//.test(u));

/** The debug file of `buildId` from the first server that has it, saved in `dir`; null with the reasons when none has. */
export async function fetchDebuginfod(buildId: string, dir: string, progress: (m: string) => void): Promise<{ elf: ElfFile; from: string } | { why: string }> {
  const whys: string[] = [];
  for (const base of debuginfodUrls()) {
    const url = `${base.replace(/\/+$/, '')}/buildid/${buildId}/debuginfo`;
    progress(`asking ${url}`);
    try {
      const r = await fetch(url, { signal: AbortSignal.timeout(120_000) });
      if (!r.ok || !r.body) {
        whys.push(`${url}: HTTP ${r.status}`);
        continue;
      }
      const file = path.join(dir, `${buildId}.debug`);
      const out = fs.openSync(file, 'wx', 0o600);
      let size = 0;
      try {
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) {
          size += chunk.length;
          if (size > MAX_DEBUG_FILE) throw new Error(`more than ${MAX_DEBUG_FILE} bytes`);
          fs.writeSync(out, chunk);
        }
      } finally {
        fs.closeSync(out);
      }
      return { elf: ElfFile.open(file), from: url };
    } catch (err) {
      whys.push(`${url}: ${(err as Error).message}`);
    }
  }
  return { why: whys.join('; ') || 'DEBUGINFOD_URLS names no http(s) server' };
}

/** The debug file of `buildId` from package PKG-dbgsym at `version`, unpacked in `dir` (apt-get download runs as `as`). */
export async function fetchDbgsym(pkg: string, version: string, buildId: string, dir: string, as: string[]): Promise<{ elf: ElfFile; from: string } | { why: string }> {
  const name = `${pkg}-dbgsym`;
  const dl = await execa(as[0] ?? 'apt-get', [...as.slice(1), ...(as.length ? ['apt-get'] : []), 'download', `${name}=${version}`], { cwd: dir, reject: false, all: true });
  if (dl.exitCode !== 0) return { why: `apt-get download ${name}=${version}: ${String(dl.all ?? '').trim().split('\n').pop()}` };
  const deb = fs.readdirSync(dir).find((f) => f.startsWith(`${name}_`) && f.endsWith('.deb'));
  if (!deb) return { why: `apt-get download ${name}=${version} left no .deb` };
  const root = path.join(dir, 'dbgsym');
  const x = await execa('dpkg-deb', ['-x', path.join(dir, deb), root], { reject: false, all: true });
  if (x.exitCode !== 0) return { why: `dpkg-deb -x ${deb}: ${String(x.all ?? '').trim()}` };
  const file = path.join(root, 'usr/lib/debug/.build-id', buildId.slice(0, 2), `${buildId.slice(2)}.debug`);
  if (!fs.existsSync(file)) return { why: `${deb} has no debug file for build-id ${buildId}` };
  return { elf: ElfFile.open(file), from: `${name} ${version}` };
}
