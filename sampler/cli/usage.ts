/** xsample --help: every command and option, in one text. */
import { DEFAULT_CPU_HZ, DEFAULT_STACK_BYTES } from '../fullstack/cpu-recording.ts';
import { DEFAULT_LIMITS } from '../memory/walk-error.ts';

export const USAGE = `usage: xsample --pid PID[,PID...] --struct VIEW [options]
       xsample --core FILE [--exe BINARY] --struct VIEW [options]
       xsample record --pid PID --struct VIEW [--rate HZ] [--duration S] [-o FILE] [--format F]
       xsample record --pid PID --cpu|--off-cpu [--rate HZ] [--duration S] [-o FILE] [--format F]
       xsample top --pid PID --struct VIEW [--sort COLUMN] [--interval MS] [--count K]
       xsample serve --pid PID [--struct VIEW]... [--listen HOST:PORT] [--interval MS]
       xsample trace --pid PID --probe NAME [--duration S] [--json]
       xsample --list [--pack NAME]

Walks the data structures of a running process without stopping it: memory is
read with process_vm_readv (or /proc/PID/mem), never ptrace, never SIGSTOP.
The same views work on a core file.

  --pid PID[,PID]    the processes to read; a server's master process (nginx's)
                     stands for its workers, each item says which pid it is from
  --core FILE        read a core dump instead; --exe names its executable when
                     the path recorded in the core is not right
  --struct VIEW      the view to print (xsample --list shows them), e.g. ngx_pool
  --addr EXPR        only the item at EXPR (an address, or an expression such as
                     ngx_cycle.pool) instead of every item the roots reach
  --json             print JSON: {view, pid, pack, release, build_id, items,
                     partial, errors}; one object per process and sample per line
  --interval MS      sample every MS milliseconds until Ctrl-C (or --count)
  --count K          sample K times (every --interval MS, default 1000), then
                     print how the figures moved
  --max-nodes N      most elements one walk may visit (default ${DEFAULT_LIMITS.maxNodes})
  --max-bytes N      most memory one sample may read, in bytes or with K, M, G
                     (default 512M); past it the sample is partial
  --consistency M    verify (default): an answer is complete only if the memory
                     it came from held still while it was read (read again and
                     compared); off: no such check, and the JSON says so
  --retries N        samples taken again when their memory changed under them,
                     before the answer is partial (default 3)
  --pack NAME        the pack to use (default: the one that knows the binary)
  --source KIND      pvr (process_vm_readv, default) or procmem (/proc/PID/mem)
  --no-fetch         do not recover the symbols of a stripped binary a pack
                     covers (xgen symbols --for FILE, run by itself otherwise:
                     a rebuild of its Debian source, verified); views that need
                     a global it does not export then fail
  --nice N           run at this nice level (default 19; 0 to keep yours), so the
                     target wins the CPU whenever both want it
  --verbose          print read statistics to stderr: each read's size, time and
                     CPU, and at the end xsample's own CPU a sample
  --version          xsample's version and its schema language's
  --help             this text

xsample record samples at a rate (--rate HZ, default 10, up to 1000) for
--duration S seconds or until Ctrl-C, and writes what the samples add up to
(to -o FILE, or to stdout): a stack-shaped view (one with stack: in its
schema) as a flame graph's input, any view as a summary of its columns.
  --format folded      frame;frame;frame weight lines (flamegraph.pl, inferno,
                       speedscope, Pyroscope read it); the default for stacks
  --format speedscope  speedscope's JSON file (https://www.speedscope.app)
  --format svg         a flame graph in one SVG file: readable as it is; in a
                       browser, click to zoom, Search, details under the pointer
  --format pprof       a gzipped pprof profile (go tool pprof, Pyroscope)
  --format json        per column: n, min, p50, p90, p99, max of its numbers,
                       or its most frequent texts; the default for tables
The format also follows -o's name: .folded, .speedscope.json, .svg, .pb.gz,
.pprof, .json.
  --instant MODE       auto (default): a view that names what the kernel reads
                       at the instant (instant: in its schema, as lua_stacks)
                       is sampled by an eBPF program at each perf sample of the
                       process's CPU time, so that short states weigh what
                       they last; on: that or an error; off: read memory at
                       --rate as other views are (biased toward long states)
Only
complete samples count (partial ones are left out and counted). On a terminal
it shows its progress; Ctrl-C writes what was gathered.

xsample record --cpu records whole stacks instead of a view: every thread of
the process, sampled by the kernel every 1/HZ s of its CPU time (--rate,
default ${DEFAULT_CPU_HZ}), each sample the thread's registers, a copy of its user stack
and the kernel's frames; user stacks are unwound here from each object's
.eh_frame (no frame pointers needed, stripped binaries too) and named from
its symbols (object+0xOFFSET where it has none). Where the pack knows an
interpreter (OpenResty's LuaJIT), its frames, read by eBPF at the same
instant, stand in for its own native frames: C, Lua and kernel frames in one
stack. --off-cpu records where threads wait instead: a sample at each
switch-out, weighing the µs until the thread runs again.
  --stack-bytes N      user stack copied per sample (default ${DEFAULT_STACK_BYTES}; at most
                       65528): deeper stacks end in [unwinding stopped: stack-cut]
  --no-lua             native frames only
  --min-block US       --off-cpu: leave out waits shorter than US µs (default 0)
Frames end in _[k] (kernel), _[l] (Lua, interpreted), _[j] (Lua, compiled
code), as flamegraph.pl colours them; the SVG colours them so.

xsample top shows a view as a live table, like py-spy top: every --interval
(default 1000 ms) a new sample, the items sorted by --sort COLUMN (largest
first; default: a stack-shaped view's weight, else the first number column),
each number with how it moved since the last refresh; new items are marked
and vanished ones counted. On a terminal it redraws in place; otherwise
each refresh is a block of text. Ctrl-C quits.

xsample serve answers Prometheus on http://HOST:PORT/metrics (default
127.0.0.1:9464): each number column of a view whose roots give one item
each (ngx_connection_totals) as a gauge xwalk_VIEW_COLUMN{pid,root}; of a
view of many items, their count (xwalk_VIEW_items{pid}) and each number
column summed and its largest (_max); a column in ms in seconds. Without --struct, every view of
the pack that applies to the process (one whose objects are not mapped, such as
the Lua views on a plain nginx, is not served, and stderr says so). A scrape
samples again only when the last sample is older than --interval (default
1000 ms); a view whose sample fails or is partial exports none of its figures,
but xwalk_view_up 0 and xwalk_view_errors_total, and the others are served.
It listens on loopback unless --listen names another address (then it warns).

xsample trace counts the calls of a function in the kernel: a probe of the
pack (probes: in its schema; xsample --list shows them) is printed as an eBPF
program and attached as a uprobe at the function's first instruction, in the
process only (a master stands for its workers: one program each; another
process running the same binary is not trapped). Each call evaluates the
probe's keys and values on the function's first argument and adds them up
per key: at the end (after --duration S, or at Ctrl-C) a table sorted by
count, each value's mean, min, max, and p50~/p99~ (the upper bound of its
log2 bucket), or JSON with --json. Calls a walk error or a read that faults
kept out are counted per reason; the end says them and the program's cost
per call in the kernel (it runs at every call: on a hot function, mind it).
Nothing stays attached after xsample exits (file descriptors only).
  --probe NAME         the probe (e.g. ngx_request_done)

Packs are found in the folders of XWALK_PACKS (separated by ':'), then among
the packs that come with xsample (each used only when root or you own it and
no one else may write it; else one line says why it is skipped); layouts derived from DWARF are cached in
$XDG_CACHE_HOME/xwalk (default ~/.cache/xwalk).

Ctrl-C stops sampling: what was gathered is printed, and the summary.
Exit status: 0 ok, 1 error, 2 bad usage, 3 partial result (in some sample a
structure could not be read consistently: the errors say where).`;
