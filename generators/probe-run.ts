/**
 * `xgen layout --for FILE` with no probe object: the layout of an installed,
 * stripped Debian build, made as the checkout's make targets make it, by the
 * probe script of the package that owns FILE (probes/*.sh, shipped with
 * xwalk): it fetches that package's source, compiles a probe with -g and
 * Debian's flags in a private temporary folder (as nobody when run as root),
 * and has xgen read the probe's DWARF into a layout keyed to FILE's build-id.
 * The layout goes into the user's cache of probed layouts (a folder of packs
 * that packDirs() reads), or --into DIR, or the pack's own folder (--pack).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ElfFile } from '../core/elf.ts';
import { UserError } from '../core/errors.ts';
import { packDir, repoRoot } from '../core/packs.ts';
import { TrustedCache } from './layout-cache.ts';

/** Which probe serves the files of a Debian package, and the pack its layout is of. */
interface ProbeFor {
  packages: string[];
  script: string;
  pack: string;
}

const PROBES: ProbeFor[] = [
  { packages: ['nginx', 'nginx-core', 'nginx-light', 'nginx-full', 'nginx-extras'], script: 'nginx.sh', pack: 'nginx' },
  { packages: ['libnginx-mod-http-lua', 'libluajit2-5.1-2'], script: 'lua.sh', pack: 'nginx' },
  { packages: ['redis-server'], script: 'redis.sh', pack: 'redis' },
  { packages: ['memcached'], script: 'memcached.sh', pack: 'memcached' },
];

/** The packages owning `file` (dpkg -S): of the path as given, then of its real path (Debian's /usr/bin/redis-server is redis-tools' redis-check-rdb). */
export async function owningPackages(file: string): Promise<string[]> {
  const { execa } = await import('execa');
  const found: string[] = [];
  for (const f of [...new Set([path.resolve(file), fs.realpathSync(file)])]) {
    const r = await execa('dpkg', ['-S', f], { reject: false });
    // "pkg[:arch]: /path", or "pkg1, pkg2: /path" for a path several packages share.
    const line = r.exitCode === 0 ? String(r.stdout).split('\n').find((l) => l.endsWith(`: ${f}`)) : undefined;
    if (line) found.push(...line.slice(0, line.lastIndexOf(': ')).split(', ').map((p) => p.replace(/:.*$/, '')));
  }
  return [...new Set(found)];
}

/** The probe script for a package, or why there is none. */
export function probeForPackage(pkg: string): { script: string; pack: string } | { why: string } {
  const p = PROBES.find((x) => x.packages.includes(pkg));
  const script = p && path.join(repoRoot(), 'probes', p.script);
  if (!p || !script || !fs.existsSync(script)) return { why: `no probe for package ${pkg} (probes for: ${PROBES.filter((x) => fs.existsSync(path.join(repoRoot(), 'probes', x.script))).flatMap((x) => x.packages).join(', ')})` };
  return { script, pack: p.pack };
}

export interface ProbeRunOptions {
  /** --into DIR: a folder of packs. */
  into?: string;
  /** --pack NAME: the pack the file's probe must be of; without --into, its layouts go into the pack's own folder. */
  pack?: string;
  print: (s: string) => void;
  warn: (s: string) => void;
}

/** Runs the probe for `file`'s package; prints the layout file written for its build-id. */
export async function layoutByProbe(file: string, opts: ProbeRunOptions): Promise<number> {
  if (!fs.existsSync(file)) throw new UserError(`${file} does not exist`);
  const real = fs.realpathSync(file);
  const elf = ElfFile.open(real);
  let buildId: string | null;
  try {
    buildId = elf.buildId();
  } finally {
    elf.close();
  }
  if (!buildId) throw new UserError(`${file} has no build-id note: a layout is keyed by it`);
  const pkgs = await owningPackages(file);
  if (pkgs.length === 0) throw new UserError(`no package owns ${real} (dpkg -S): give the probe object yourself, xgen layout --pack NAME --for ${file} PROBE.o`);
  const probes = pkgs.map((p) => ({ pkg: p, probe: probeForPackage(p) }));
  const served = probes.find((p) => !('why' in p.probe));
  if (!served) throw new UserError((probes[0].probe as { why: string }).why);
  const pkg = served.pkg;
  const probe = served.probe as { script: string; pack: string };
  if (opts.pack !== undefined && opts.pack !== probe.pack) throw new UserError(`${file} is of package ${pkg}, whose probe makes layouts of pack ${probe.pack}, not ${opts.pack}`);

  let into: string;
  if (opts.into) into = path.resolve(opts.into);
  else if (opts.pack) {
    const dir = packDir(opts.pack);
    if (!dir) throw new UserError(`no pack named ${opts.pack}`);
    into = path.dirname(dir);
  } else {
    const dir = new TrustedCache('packs', opts.warn).dir(probe.pack);
    if (!dir) throw new UserError(`the cache of probed layouts cannot be used (above): pass --into DIR, a folder of packs to name in XWALK_PACKS`);
    into = path.dirname(dir);
  }
  fs.mkdirSync(into, { recursive: true, mode: 0o700 });

  const { execa } = await import('execa');
  const version = String((await execa('dpkg-query', ['-W', '-f', '${Version}', pkg], { reject: false })).stdout ?? '');
  opts.warn(`xgen: ${file} (build-id ${buildId}) is of package ${pkg}${version ? ` ${version}` : ''}: probing it with probes/${path.basename(probe.script)} (fetches the package's source and compiles a probe: a minute or more), into ${into}`);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    XWALK_PROBE_FOR: real,
    XWALK_LAYOUTS_INTO: into,
    XWALK_NODE: process.execPath,
    XWALK_XGEN: path.join(repoRoot(), 'dist/xgen.js'),
  };
  // XWALK_PROBE_WORK is the probe's to make: its own private folder under TMPDIR.
  delete env.XWALK_PROBE_WORK;
  const code = await new Promise<number>((resolve, reject) => {
    const child = spawn('bash', [probe.script], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.setEncoding('utf8').on('data', (s: string) => process.stderr.write(s));
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? (signal ? 128 : 1)));
  });
  if (code !== 0) throw new UserError(`the probe for ${file} failed (probes/${path.basename(probe.script)}, exit ${code}): see its lines above`);
  const written = findLayout(path.join(into, probe.pack), buildId);
  if (!written) throw new UserError(`the probe for ${file} ended without a layout for build-id ${buildId} in ${path.join(into, probe.pack)}`);
  opts.print(written);
  return 0;
}

/** The layout file RELEASE/BUILD-ID.json under a pack's folder, if there is one. */
function findLayout(packFolder: string, buildId: string): string | null {
  if (!fs.existsSync(packFolder)) return null;
  for (const release of fs.readdirSync(packFolder)) {
    const f = path.join(packFolder, release, `${buildId}.json`);
    if (fs.existsSync(f)) return f;
  }
  return null;
}
