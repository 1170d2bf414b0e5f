/**
 * A fake memory (fake-memory.ts) as a real process: test-targets/fake-process.c,
 * built into a temp folder, maps the fake's regions at their own addresses
 * with their bytes (MAP_FIXED_NOREPLACE, every page populated) and calls
 * xw_tick() when asked, where a uprobe runs a kernel program against it.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeMemory } from './fake-memory.ts';

const SOURCE = path.join(import.meta.dirname, '..', '..', 'test-targets', 'fake-process.c');
const PAGE = 4096;

export type MemoryDump = ReturnType<FakeMemory['dump']>;

/** A FakeMemory holding a dump's regions, bytes and holes. */
export function fakeFromDump(d: MemoryDump): FakeMemory {
  const mem = new FakeMemory();
  for (const r of d.regions) {
    mem.map(r.start, r.size);
    for (const [off, hexBytes] of r.pages) mem.bytes(r.start + off, Buffer.from(hexBytes, 'hex'));
  }
  for (const [s, e] of d.holes) mem.hole(s, e);
  return mem;
}

/** The file fake-process.c loads (see its header). */
function encodeDump(d: MemoryDump): Buffer {
  const parts: Buffer[] = [];
  const u32 = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    parts.push(b);
  };
  const u64 = (v: number) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    parts.push(b);
  };
  u32(d.regions.length);
  for (const r of d.regions) {
    u64(r.start);
    u64(r.size);
    u32(r.pages.length);
    for (const [off, hexBytes] of r.pages) {
      u64(off);
      parts.push(Buffer.from(hexBytes, 'hex'));
    }
  }
  u32(d.holes.length);
  for (const [s, e] of d.holes) {
    if (s % PAGE || e % PAGE) throw new Error(`fake process: a hole [0x${s.toString(16)}, 0x${e.toString(16)}) is not whole pages`);
    u64(s);
    u64(e);
  }
  return Buffer.concat(parts);
}

export class FakeProcess {
  private readonly lines: string[] = [];
  private waiting: ((line: string | null) => void) | null = null;
  private pending = '';
  private ended = false;
  private loads = 0;

  private constructor(
    readonly binary: string,
    private readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (s: string) => {
      this.pending += s;
      for (let nl = this.pending.indexOf('\n'); nl >= 0; nl = this.pending.indexOf('\n')) {
        this.push(this.pending.slice(0, nl));
        this.pending = this.pending.slice(nl + 1);
      }
    });
    child.on('close', () => {
      this.ended = true;
      this.push(null);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Builds fake-process.c into a temp folder (removed by close()) and starts it. */
  static start(): FakeProcess {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'xwalk-fake-process-'));
    const binary = path.join(dir, 'fake-process');
    execFileSync('cc', ['-O2', '-Wall', '-Wextra', '-static', '-o', binary, SOURCE], { stdio: ['ignore', 'ignore', 'inherit'] });
    const child = spawn(binary, [], { stdio: ['pipe', 'pipe', 'inherit'] });
    return new FakeProcess(binary, dir, child);
  }

  /** The process's memory becomes mem's (its regions, bytes and holes); the last load's regions are gone. */
  async load(mem: FakeMemory | MemoryDump): Promise<void> {
    const file = path.join(this.dir, `memory-${this.loads++ % 2}`);
    fs.writeFileSync(file, encodeDump(mem instanceof FakeMemory ? mem.dump() : mem));
    const answer = await this.ask(`load ${file}`);
    if (answer !== 'ok') throw new Error(`fake process ${this.pid}: load: ${answer}`);
  }

  /** One call of xw_tick(): a uprobe there has run once it returns. */
  async tick(): Promise<void> {
    const answer = await this.ask('tick');
    if (answer !== 'ticked') throw new Error(`fake process ${this.pid}: tick: ${answer}`);
  }

  async close(): Promise<void> {
    if (!this.ended) {
      this.child.stdin!.end();
      while ((await this.next()) !== null);
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  private async ask(command: string): Promise<string> {
    if (this.ended) throw new Error(`fake process ${this.pid} has ended`);
    this.child.stdin!.write(command + '\n');
    const line = await this.next();
    if (line === null) throw new Error(`fake process ${this.pid} ended at "${command}"`);
    return line;
  }

  private push(line: string | null): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(line);
    } else if (line !== null) this.lines.push(line);
  }

  private next(): Promise<string | null> {
    if (this.lines.length) return Promise.resolve(this.lines.shift()!);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve) => (this.waiting = resolve));
  }
}
