/**
 * Ground truth from the kernel: how many established TCP connections to a
 * local port a process holds (its fds that are sockets, matched by inode
 * to /proc/PID/net/tcp and tcp6); with peers, only those from these client
 * ports (a test's own sockets, not a probe's connection that lingers).
 */
import fs from 'node:fs';

export function clientSockets(pid: number, port: number, peers?: number[]): number {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/${pid}/fd/${fd}`));
    if (m) inodes.add(m[1]);
  }
  let n = 0;
  for (const table of ['tcp', 'tcp6']) {
    const text = fs.existsSync(`/proc/${pid}/net/${table}`) ? fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8') : '';
    for (const line of text.split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 10) continue;
      const localPort = parseInt(f[1].split(':')[1], 16);
      const remotePort = parseInt(f[2].split(':')[1], 16);
      const established = f[3] === '01';
      if (localPort === port && established && inodes.has(f[9]) && (!peers || peers.includes(remotePort))) n++;
    }
  }
  return n;
}

function safeReadlink(p: string): string {
  try {
    return fs.readlinkSync(p);
  } catch {
    return ''; // closed meanwhile
  }
}

/** An IPv4 address:port of /proc/net/tcp (hex, the address in the host's byte order) as text: 127.0.0.1:8080. */
function tcp4Text(hex: string): string {
  const [a, p] = hex.split(':');
  const n = parseInt(a, 16);
  return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}:${parseInt(p, 16)}`;
}

/**
 * The kernel's own truth of a process's IPv4 TCP sockets: for each fd that is one, its local and remote
 * address as ip:port (from /proc/PID/net/tcp, matched by inode).
 */
export function tcpPeersByFd(pid: number): Map<number, { local: string; remote: string }> {
  const byInode = new Map<string, number>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    const m = /^socket:\[(\d+)\]$/.exec(safeReadlink(`/proc/${pid}/fd/${fd}`));
    if (m) byInode.set(m[1], Number(fd));
  }
  const out = new Map<number, { local: string; remote: string }>();
  for (const line of fs.readFileSync(`/proc/${pid}/net/tcp`, 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const fd = byInode.get(f[9]);
    if (fd !== undefined) out.set(fd, { local: tcp4Text(f[1]), remote: tcp4Text(f[2]) });
  }
  return out;
}
