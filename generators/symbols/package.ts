/**
 * Which Debian package owns a file, its exact version and its source
 * package: what a rebuild of the file's exact source needs (dpkg -S,
 * dpkg-query), and the versions of that source apt can still fetch
 * (apt-cache madison), nearest first, for when the exact one is gone.
 */
import { execa } from './exec.ts';

export interface PackageOf {
  /** The binary package that ships the file. */
  name: string;
  version: string;
  source: string;
  sourceVersion: string;
  architecture: string;
  /** The path as the package lists it: /bin/true for /usr/bin/true on a merged-/usr system. */
  path: string;
}

/** The paths dpkg may list a file under: on a merged-/usr system, /usr/bin/X is also /bin/X (and the other way). */
function aliases(file: string): string[] {
  const m = /^\/usr\/(s?bin|lib\w*)\//.exec(file);
  if (m) return [file, file.slice(4)];
  return /^\/(s?bin|lib\w*)\//.test(file) ? [file, `/usr${file}`] : [file];
}

/** The package that owns `file` (an absolute, resolved path), or null when dpkg knows none (or there is no dpkg). */
export async function packageOf(real: string): Promise<PackageOf | null> {
  for (const file of aliases(real)) {
    const p = await ownerOf(file);
    if (p) return p;
  }
  return null;
}

async function ownerOf(file: string): Promise<PackageOf | null> {
  const owner = await execa('dpkg', ['-S', file], { reject: false });
  if (owner.exitCode !== 0 || typeof owner.stdout !== 'string') return null;
  // "memcached: /usr/bin/memcached"; a diversion line starts with "diversion by".
  const line = owner.stdout.split('\n').find((l) => l.endsWith(`: ${file}`) && !l.startsWith('diversion'));
  if (!line) return null;
  const name = line.slice(0, line.length - file.length - 2).split(',')[0].trim();
  const q = await execa('dpkg-query', ['-W', '-f=${Version}\\t${source:Package}\\t${source:Version}\\t${Architecture}', name], { reject: false });
  if (q.exitCode !== 0 || typeof q.stdout !== 'string') return null;
  const [version, source, sourceVersion, architecture] = q.stdout.split('\t');
  if (!version || !source || !sourceVersion) return null;
  return { name: name.replace(/:[a-z0-9]+$/, ''), version, source, sourceVersion, architecture, path: file };
}

/** The versions of source package `source` apt knows of (its Sources indexes), other than `but`, nearest to it first. */
export async function nearestSourceVersions(source: string, but: string): Promise<string[]> {
  const r = await execa('apt-cache', ['madison', source], { reject: false });
  if (r.exitCode !== 0 || typeof r.stdout !== 'string') return [];
  const versions = new Set<string>();
  for (const line of r.stdout.split('\n')) {
    const cols = line.split('|').map((c) => c.trim());
    if (cols.length >= 3 && cols[0] === source && / Sources$/.test(cols[2]) && cols[1] !== but) versions.add(cols[1]);
  }
  const below: string[] = [];
  const above: string[] = [];
  for (const v of versions) ((await versionLess(v, but)) ? below : above).push(v);
  // The nearest release below (the point release a security update is made from) first, then the nearest above.
  const sorted = async (list: string[]) => {
    const out = [...list];
    for (let i = 1; i < out.length; i++) for (let j = i; j > 0 && (await versionLess(out[j], out[j - 1])); j--) [out[j], out[j - 1]] = [out[j - 1], out[j]];
    return out;
  };
  return [...(await sorted(below)).reverse(), ...(await sorted(above))];
}

/** a < b as dpkg orders versions. */
async function versionLess(a: string, b: string): Promise<boolean> {
  return (await execa('dpkg', ['--compare-versions', a, 'lt', b], { reject: false })).exitCode === 0;
}

/** Whether apt can fetch binary package `name` at `version` (a -dbgsym package, say). */
export async function aptHas(name: string, version: string): Promise<boolean> {
  const r = await execa('apt-cache', ['show', `${name}=${version}`], { reject: false });
  return r.exitCode === 0 && typeof r.stdout === 'string' && r.stdout.includes(`Package: ${name}`);
}
