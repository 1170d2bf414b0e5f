/**
 * xsample serve: a Prometheus /metrics endpoint for a live process (a
 * master's workers). On a scrape, each view is sampled again unless it was
 * less than --interval ago (so a walk runs at most once an interval, however
 * often it is scraped), and its numbers become gauges:
 *
 * - a view whose roots give one item each (ngx_connection_totals): a gauge
 *   xwalk_<view>_<column> per number column, labelled by pid and root; a
 *   column the view names a counter (counters:, a total that counts up, as
 *   nginx's requests) is a counter xwalk_<view>_<column>_total of the
 *   program's own value (its rate is Prometheus's rate());
 * - a view of many items (requests, pools): xwalk_<view>_items, how many,
 *   and per number column the sum and the largest over the items
 *   (xwalk_<view>_<column> and ..._max: the oldest request's age), and a
 *   histogram xwalk_<view>_item_<column> that each sample adds every item's
 *   value to (histogram_quantile over its rate: the p99 of request ages
 *   seen in the last minute); labelled by pid only, so that no series is
 *   ever one request or one pool. A column that names a thing rather than
 *   counts one (fd, id, key, index) is left out.
 *
 * A column in milliseconds (name_ms) is exported in seconds (name_seconds),
 * Prometheus's base unit; a name that would end as a counter's or a
 * histogram's (_count, _sum, _total) ends in _value. A sample that is partial says so
 * (xwalk_sample_partial) and never exports a wrong figure: of a view of one item a root, the values it
 * shows when every one of them is true (view-run.ts valuesTrue: its only problem was memory that changed,
 * taken out), each value it could not read whole absent; of a view of many items, none (a sum or a
 * count over a set read in part is no figure of the set). One view never
 * fails a scrape: a view that cannot apply to a process (an object it reads
 * is not mapped) is not served for it (said once, one line a process), and one whose sample fails exports
 * xwalk_view_up 0 and counts the failure (xwalk_view_errors_total) while
 * the others are served. The exposition is prom-client's. It listens on
 * loopback unless --listen names another address, and then warns.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ViewIR } from '../../generators/ir.ts';
import { UserError } from '../../core/errors.ts';
import { TargetGone } from '../memory/memory.ts';
import { closeSessions, compileSessions, openSessions, type Print, type ReadOptions, sampleOnce, type Session, viewOf } from '../sampling/sampling.ts';
import type { Row } from '../sampling/view-run.ts';

export interface ServeOptions extends ReadOptions {
  /** A scrape samples again only when the last sample is older than this, in ms. */
  interval: number;
  /** The views served; none: every view of the pack that applies to the process. */
  views: string[];
  host: string;
  port: number;
}

/** A view whose every root is one value, not a walk: one item a root. */
export const isOneRow = (v: ViewIR): boolean => v.roots.length > 0 && v.roots.every((r) => r.expr.type.k !== 'seq');

/** A column that names a thing (a file descriptor, an id): its sum or its distribution means nothing. */
const NAMES_A_THING = /(^|_)(fd|id|key|index)$/;

const numberColumns = (v: ViewIR): string[] => v.columns.filter((c) => c.expr.type.k === 'int' && !NAMES_A_THING.test(c.name)).map((c) => c.name);

/** Seconds from a millisecond to an hour; anything else (bytes, counts) by fours from 1 to 2^30. */
const SECONDS_BUCKETS = [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 3600];
const FOURS_BUCKETS = Array.from({ length: 16 }, (_, i) => 4 ** i);

/**
 * A column as a metric name and how its value is scaled: name_ms in seconds (name_seconds); a name that
 * would end as a counter's or a histogram's do (_total, _count, _sum, _bucket, _created) ends in _value.
 */
export function metricOf(view: string, column: string): { name: string; scale: number } {
  const ms = /^(.*)_ms$/.exec(column);
  const name = ms ? `xwalk_${view}_${ms[1]}_seconds` : `xwalk_${view}_${column}`;
  return { name: /_(total|count|sum|bucket|created)$/.test(name) ? `${name}_value` : name, scale: ms ? 1 / 1000 : 1 };
}

const asNumber = (v: unknown): number | null => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : null);

/** One view's gauges, and how it fills them from a sample of one process. */
class ViewMetrics {
  private readonly gauges = new Map<string, { gauge: Gauge; max: Gauge | null; histogram: Histogram | null; scale: number }>();
  private readonly counters = new Map<string, Counter>();
  private readonly items: Gauge | null;
  readonly oneRow: boolean;

  constructor(
    readonly view: ViewIR,
    registry: Registry,
  ) {
    this.oneRow = isOneRow(view);
    const labels = this.oneRow ? ['pid', 'root'] : ['pid'];
    this.items = this.oneRow ? null : new Gauge({ name: `xwalk_${view.name}_items`, help: `${view.doc} How many items the view's roots reach.`, labelNames: ['pid'], registers: [registry] });
    for (const c of numberColumns(view)) {
      if (this.oneRow && view.counters?.includes(c)) {
        const help = `${view.doc} Column ${c}: a total the program counts up.`;
        this.counters.set(c, new Counter({ name: `xwalk_${view.name}_${c}_total`, help, labelNames: labels, registers: [registry] }));
        continue;
      }
      const { name, scale } = metricOf(view.name, c);
      const help = `${view.doc} Column ${c}${scale !== 1 ? ', in seconds' : ''}${this.oneRow ? '' : ', summed over the items'}.`;
      const max = this.oneRow ? null : new Gauge({ name: `${name}_max`, help: `${view.doc} Column ${c}${scale !== 1 ? ', in seconds' : ''}, the largest over the items (absent when there are none).`, labelNames: labels, registers: [registry] });
      const item = metricOf(view.name, `item_${c}`);
      const histogram = this.oneRow
        ? null
        : new Histogram({ name: item.name, help: `${view.doc} Column ${c}${scale !== 1 ? ', in seconds' : ''}: each sample adds every item's value.`, labelNames: labels, buckets: scale !== 1 ? SECONDS_BUCKETS : FOURS_BUCKETS, registers: [registry] });
      this.gauges.set(c, { gauge: new Gauge({ name, help, labelNames: labels, registers: [registry] }), max, histogram, scale });
    }
  }

  /** The gauges say the last sample only; the histograms keep adding up. */
  reset(): void {
    this.items?.reset();
    for (const c of this.counters.values()) c.reset();
    for (const g of this.gauges.values()) {
      g.gauge.reset();
      g.max?.reset();
    }
  }

  fill(pid: number, rows: Row[]): void {
    if (this.items) this.items.set({ pid: String(pid) }, rows.length);
    // a counter is the program's own total: set to it (prom-client's counters only add, from 0 after reset())
    for (const [column, counter] of this.counters) {
      for (const r of rows) {
        const v = asNumber(r[column]);
        if (v !== null && v >= 0) counter.inc({ pid: String(pid), root: String(r.origin) }, v);
      }
    }
    for (const [column, { gauge, max, histogram, scale }] of this.gauges) {
      if (this.oneRow) {
        for (const r of rows) {
          const v = asNumber(r[column]);
          if (v !== null) gauge.set({ pid: String(pid), root: String(r.origin) }, v * scale);
        }
      } else {
        const values = rows.map((r) => asNumber(r[column])).filter((v): v is number => v !== null);
        gauge.set({ pid: String(pid) }, values.reduce((a, b) => a + b, 0) * scale);
        if (values.length > 0) max!.set({ pid: String(pid) }, Math.max(...values) * scale);
        for (const v of values) histogram!.observe({ pid: String(pid) }, v * scale);
      }
    }
  }
}

/**
 * The views not served, said in one line a process: on an nginx without lua-nginx-module, the Lua views fail
 * for one or two causes (`ngx_http_lua_main_conf_t cannot be read: ngx_http_lua_module.so is not mapped in
 * this process`, the same for libluajit), so the line names the views of each cause, then the cause once:
 * `xsample: not served for pid 8138: lua_vm, lua_requests (ngx_http_lua_module.so is not mapped in this
 * process); lua_stacks, ... (libluajit-5.1.so.2 is not mapped in this process)`. Processes (a master's
 * workers) with the same views and causes share the line.
 */
export function notServedLines(notServed: { view: string; pid: number | null; why: string }[]): string[] {
  // The cause, without the type or global of the view that met it (BoundLayout: "NAME cannot be read: CAUSE").
  const causeOf = (why: string): string => /^[A-Za-z_][\w.]* cannot be read: (.+)$/s.exec(why)?.[1] ?? why;
  const byPid = new Map<number | null, Map<string, string[]>>();
  for (const { view, pid, why } of notServed) {
    const causes = byPid.get(pid) ?? new Map<string, string[]>();
    byPid.set(pid, causes);
    const views = causes.get(causeOf(why)) ?? [];
    causes.set(causeOf(why), views);
    if (!views.includes(view)) views.push(view);
  }
  const lines = new Map<string, (number | null)[]>();
  for (const [pid, causes] of byPid) {
    const said = [...causes].map(([cause, views]) => `${views.join(', ')} (${cause})`).join('; ');
    lines.set(said, [...(lines.get(said) ?? []), pid]);
  }
  return [...lines].map(([said, pids]) => `xsample: not served for pid ${pids.join(', ')}: ${said}`);
}

/** Whether a --listen host is this machine's loopback (127.0.0.0/8, ::1, localhost): the only default. */
export const isLoopback = (host: string): boolean => /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || host === '::1' || host === 'localhost';

export async function serveAll(o: ServeOptions, warn: Print): Promise<number> {
  const opened = await openSessions(o, warn, (pack) => (o.views.length > 0 ? o.views.map((n) => viewOf(pack, n)) : [...pack.views.values()]));
  const pack = opened[0].sel.pack;
  // A view that cannot apply to a process (an object it reads is not mapped: the Lua views on a plain nginx)
  // is not served for it; the others are.
  const sessions: Session[] = [];
  const notServed: { view: string; pid: number | null; why: string }[] = [];
  for (const s of opened) {
    try {
      compileSessions(o, [s]);
      sessions.push(s);
    } catch (err) {
      if (!(err instanceof UserError)) throw err;
      notServed.push({ view: s.view.name, pid: s.target.pid, why: err.message });
    }
  }
  for (const line of notServedLines(notServed)) warn(line);
  if (sessions.length === 0) {
    closeSessions(opened);
    throw new UserError(`no view of ${pack.name} applies to pid ${[...new Set(opened.map((s) => s.target.pid))].join(', ')}: nothing to serve`);
  }
  const views = [...new Map(sessions.map((s) => [s.view.name, s.view])).values()];
  const registry = new Registry();
  const partial = new Gauge({ name: 'xwalk_sample_partial', help: 'Whether the last sample of a view was partial (1: the figures not read whole are left out), per process.', labelNames: ['view', 'pid'], registers: [registry] });
  const up = new Gauge({ name: 'xwalk_view_up', help: "Whether the last sample of a view gave all its figures (1), or failed or was partial (0: the figures not read whole are left out, the view's other series stay), per process.", labelNames: ['view', 'pid'], registers: [registry] });
  const failed = new Counter({ name: 'xwalk_view_errors_total', help: 'Samples of a view that failed (an error: the message is on stderr) or were partial, per process.', labelNames: ['view', 'pid'], registers: [registry] });
  const seconds = new Gauge({ name: 'xwalk_sample_duration_seconds', help: 'How long the last sample of a view took, per process.', labelNames: ['view', 'pid'], registers: [registry] });
  const taken = new Counter({ name: 'xwalk_samples_total', help: 'Samples taken, per view (a scrape samples again only when the last sample is older than --interval).', labelNames: ['view'], registers: [registry] });
  const served = views.map((v) => ({ metrics: new ViewMetrics(v, registry), sessions: sessions.filter((s) => s.view.name === v.name) }));
  /** The last error said of each view and process: said again only when it changes. */
  const said = new Map<string, string>();
  let last = -Infinity;
  const refresh = () => {
    if (performance.now() - last < o.interval) return;
    last = performance.now();
    for (const { metrics, sessions } of served) {
      metrics.reset();
      for (const s of sessions.filter((x) => !x.gone)) {
        const pid = String(s.target.pid);
        const labels = { view: metrics.view.name, pid };
        const t0 = performance.now();
        try {
          const { result, valuesTrue } = sampleOnce(o, s, warn);
          taken.inc({ view: metrics.view.name });
          seconds.set(labels, (performance.now() - t0) / 1000);
          partial.set(labels, result.partial ? 1 : 0);
          up.set(labels, result.partial ? 0 : 1);
          if (result.partial) failed.inc(labels);
          if (!result.partial || (metrics.oneRow && valuesTrue)) metrics.fill(s.target.pid!, result.items);
          said.delete(`${labels.view} ${pid}`);
        } catch (err) {
          if (err instanceof TargetGone) {
            warn(`xsample: ${err.message}`);
            s.gone = true;
            for (const g of [partial, seconds, up]) g.remove(labels);
            continue;
          }
          // One view failing never fails the scrape: it says so, and the others are served.
          up.set(labels, 0);
          failed.inc(labels);
          partial.remove(labels);
          const message = err instanceof Error ? err.message : String(err);
          if (said.get(`${labels.view} ${pid}`) !== message) warn(`xsample: ${labels.view} failed for pid ${pid}: ${message}`);
          said.set(`${labels.view} ${pid}`, message);
        }
      }
    }
  };
  // Imported here: an import at the top of the bundle would cost every command node:http's start-up.
  const http = await import('node:http');
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end();
    if (path === '/') return void res.writeHead(200, { 'Content-Type': 'text/html' }).end('<html><body><a href="/metrics">/metrics</a></body></html>\n');
    if (path !== '/metrics') return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found: /metrics is the only page\n');
    try {
      refresh();
    } catch (err) {
      res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`xsample: ${(err as Error).message}\n`);
      return;
    }
    void registry.metrics().then((text) => res.writeHead(200, { 'Content-Type': registry.contentType }).end(text));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err) => reject(new UserError(`cannot listen on ${o.host}:${o.port}: ${(err as Error).message}`)));
    server.listen(o.port, o.host, () => resolve());
  });
  const addr = server.address() as { port: number };
  const pids = [...new Set(served.flatMap((s) => s.sessions.map((x) => x.target.pid)))];
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  if (!isLoopback(o.host)) warn(`xsample: warning: listening on ${host}, not loopback: whoever can reach this address can read the metrics of pid ${pids.join(', ')}`);
  warn(`xsample: serving ${views.length} view${views.length === 1 ? '' : 's'} of ${pack.name} for pid ${pids.join(', ')} at http://${host}:${addr.port}/metrics; Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      server.close(() => resolve());
      server.closeAllConnections();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  closeSessions(opened);
  return 0;
}
