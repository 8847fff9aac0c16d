// GET /metrics: the Prometheus text format, built with prom-client. A login
// is needed as for the API (none for loopback clients when there is no users
// file), and the per-console series are those of the consoles the scraper
// may monitor. Nothing is counted per byte for metrics: every value is read
// at scrape time from what the daemon counts anyway (metrics-consoles.ts).
//
// What is exported (each metric's HELP text says what it counts):
// - per console, label `console`: `conch_console_up` (1 connected, 0 not;
//   label `type` too, the only per-console series with it: join on
//   `console` for the type of the others), bytes received and logged,
//   reconnect attempts, attached clients, and for IPMI consoles SOL
//   takeovers, resumes and seconds held elsewhere;
// - per daemon: consoles (all, and by state), clients by transport, log
//   write and open errors, IPMI retransmissions and session setups, the last
//   reload (named as Prometheus and Alertmanager name theirs), build info;
// - Node.js's and the process's own metrics under their usual names
//   (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//   `nodejs_eventloop_lag_seconds`, …), unprefixed, as every Node.js
//   exporter and the dashboards made for them have them.
// No label ever names a user or a client.

import { collectDefaultMetrics, Gauge, Registry } from 'prom-client';
import type { Router } from './router.js';
import { HttpError } from './http-util.js';
import type { WebContext } from './web-context.js';
import type { Identity } from '../engine/session.js';
import { ConsoleBooks, STATES, type ConsoleSamples, type Labels, type MakeSample, type Sample } from './metrics-consoles.js';
import { logFailures } from '../logging/file-appender.js';
import { ipmiCounts } from '../devices/ipmi-threads.js';

type MetricObject = Awaited<ReturnType<Gauge['get']>>;
const NO_LABELS: Labels = Object.freeze({});

/**
 * A metric whose samples are computed when it is scraped (prom-client's
 * `collect` would hash every label set into a map first: at 10,000 consoles
 * that doubled the scrape).
 */
class Scraped extends Gauge {
  constructor(
    registry: Registry,
    private readonly kind: 'gauge' | 'counter',
    private readonly metricName: string,
    private readonly metricHelp: string,
    labelNames: string[],
    private readonly samples: () => Sample[],
  ) {
    super({ name: metricName, help: metricHelp, labelNames, registers: [registry] });
  }

  override async get(): Promise<MetricObject> {
    const m = { name: this.metricName, help: this.metricHelp, type: this.kind, aggregator: 'sum', values: this.samples() };
    return m as unknown as MetricObject;
  }
}

/**
 * prom-client formats a sample's `sharedLabels` once per object and caches
 * the text (its histograms use it for their buckets); the per-console label
 * objects live as long as the console, so a scrape then formats no label at
 * all: 2.4 times faster at 10,000 consoles. Not in prom-client's typings:
 * checked once, and plain labels used if a version ignores them.
 */
async function sharedLabelsWork(): Promise<boolean> {
  const r = new Registry();
  new Scraped(r, 'gauge', 'probe', 'probe', ['a'], () => [{ value: 1, labels: NO_LABELS, sharedLabels: { a: 'b' } }]);
  return (await r.metrics()).includes('probe{a="b"} 1');
}

export class ConchMetrics {
  readonly registry = new Registry();
  private readonly books: ConsoleBooks;
  /** the samples of the scrape being rendered (renders run one at a time) */
  private current: ConsoleSamples | null = null;
  private make: MakeSample | null = null;
  /** renders one after another; a scrape that sees everything shares the one under way */
  private chain: Promise<unknown> = Promise.resolve();
  private shared: Promise<string> | null = null;
  /** when a reload last worked (the start counts as one, as in Prometheus) */
  private lastGoodReload: Date;

  constructor(private readonly ctx: WebContext) {
    this.books = new ConsoleBooks(ctx.registry);
    this.lastGoodReload = ctx.daemon.startedAt;
    this.perConsole();
    this.perDaemon();
    collectDefaultMetrics({ register: this.registry });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The text for `id`: every console unless access rules are in force. */
  render(id: Identity): Promise<string> {
    const access = this.ctx.access;
    if (!access.enforcing) {
      this.shared ??= this.queue(undefined).finally(() => (this.shared = null));
      return this.shared;
    }
    return this.queue((name) => access.allows(id, name, 'monitor'));
  }

  private queue(visible: ((name: string) => boolean) | undefined): Promise<string> {
    const run = this.chain.then(() => this.renderNow(visible));
    this.chain = run.catch(() => {});
    return run;
  }

  private async renderNow(visible: ((name: string) => boolean) | undefined): Promise<string> {
    if (!this.make) {
      const fast = await sharedLabelsWork();
      this.make = fast ? (labels, value) => ({ value, labels: NO_LABELS, sharedLabels: labels }) : (labels, value) => ({ value, labels });
    }
    this.current = this.books.samples(this.make, visible);
    try {
      return await this.registry.metrics();
    } finally {
      this.current = null;
    }
  }

  private sample(labels: Labels, value: number): Sample {
    return { value, labels };
  }

  private perConsole(): void {
    const r = this.registry;
    const of = (pick: (s: ConsoleSamples) => Sample[]) => () => (this.current ? pick(this.current) : []);
    const c = ['console'];
    new Scraped(r, 'gauge', 'conch_console_up', 'Whether the console is connected to its device (1) or not (0: connecting, waiting to retry, or stopped); IPMI: the session is open, even while another client holds SOL', ['console', 'type'], of((s) => s.up));
    new Scraped(r, 'counter', 'conch_console_received_bytes_total', 'Bytes received from the console device', c, of((s) => s.receivedBytes));
    new Scraped(r, 'counter', 'conch_console_logged_bytes_total', 'Bytes written to the console log file (output as filtered by logopts, notices and markers)', c, of((s) => s.loggedBytes));
    new Scraped(r, 'counter', 'conch_console_reconnects_total', 'Connection attempts made after a failed attempt or a disconnection', c, of((s) => s.reconnects));
    new Scraped(r, 'gauge', 'conch_console_clients', 'Clients attached to the console now (any transport and mode)', c, of((s) => s.clients));
    new Scraped(r, 'counter', 'conch_console_sol_takeovers_total', 'IPMI: times another client took the SOL session from conch', c, of((s) => s.solTakeovers));
    new Scraped(r, 'counter', 'conch_console_sol_resumes_total', 'IPMI: times the SOL session became conch\'s again after another client held it', c, of((s) => s.solResumes));
    new Scraped(r, 'counter', 'conch_console_sol_held_elsewhere_seconds_total', 'IPMI: seconds another client held the SOL session while conch had a session open', c, of((s) => s.solHeldSeconds));
  }

  private perDaemon(): void {
    const r = this.registry;
    const one = (value: number): Sample[] => [this.sample(NO_LABELS, value)];
    const d = this.ctx.daemon;
    new Scraped(r, 'gauge', 'conch_consoles', 'Consoles configured (that the scraper may see)', [], () => one(this.current?.total ?? 0));
    new Scraped(r, 'gauge', 'conch_consoles_by_state', 'Consoles in each connection state', ['state'], () =>
      STATES.map((state) => this.sample({ state }, this.current?.byState[state] ?? 0)),
    );
    new Scraped(r, 'gauge', 'conch_clients', 'Client connections attached to consoles now, by transport', ['transport'], () => {
      const by = { conman: 0, tls: 0, web: 0, ...d.clientsByTransport() };
      return Object.entries(by).map(([transport, n]) => this.sample({ transport }, n));
    });
    new Scraped(r, 'counter', 'conch_log_write_errors_total', 'Console log writes that failed (disk full, I/O error)', [], () => one(logFailures.writes));
    new Scraped(r, 'counter', 'conch_log_open_errors_total', 'Console log opens that failed (each try)', [], () => one(logFailures.opens));
    new Scraped(r, 'counter', 'conch_ipmi_retransmissions_total', 'IPMI requests sent again after a timeout, and session setups started over', [], () => one(ipmiCounts().retransmissions));
    new Scraped(r, 'counter', 'conch_ipmi_session_setups_total', 'IPMI session setups begun', [], () => one(ipmiCounts().setups));
    new Scraped(r, 'counter', 'conch_ipmi_session_setup_failures_total', 'IPMI session setups that failed', [], () => one(ipmiCounts().setupFailures));
    new Scraped(r, 'gauge', 'conch_config_last_reload_successful', 'Whether the last configuration reload (SIGHUP) worked (1) or not (0); 1 before any', [], () => one(this.reload().ok ? 1 : 0));
    new Scraped(r, 'gauge', 'conch_config_last_reload_success_timestamp_seconds', 'When the configuration was last loaded successfully (the start, or a reload)', [], () =>
      one(this.reload().goodAt.getTime() / 1000),
    );
    new Scraped(r, 'counter', 'conch_alerts_total', 'Pattern alerts fired, by rule and severity (a hold-down window counts once)', ['rule', 'severity'], () =>
      (d.alerts?.counters().rules ?? []).map((x) => this.sample({ rule: x.rule, severity: x.severity }, x.fired)),
    );
    new Scraped(r, 'counter', 'conch_alert_webhook_dropped_total', 'Alerts the webhook could not deliver and dropped (queue full or retries exhausted)', [], () =>
      one(d.alerts?.counters().webhook?.dropped ?? 0),
    );
    new Scraped(r, 'gauge', 'conch_build_info', 'The conchd version running (always 1)', ['version'], () => [this.sample({ version: d.version }, 1)]);
  }

  /** the last reload's outcome; its success time is remembered from scrape to scrape */
  private reload(): { ok: boolean; goodAt: Date } {
    const last = this.ctx.daemon.lastReload();
    if (last && last.goodAt > this.lastGoodReload) this.lastGoodReload = last.goodAt;
    return { ok: last?.ok ?? true, goodAt: this.lastGoodReload };
  }
}

export function register(router: Router, ctx: WebContext): void {
  const metrics = new ConchMetrics(ctx);
  router.add('GET', '/metrics', async ({ res, identity }) => {
    // (not a public route: the server has identified the scraper)
    if (!identity) throw new HttpError(401, 'log in first or send a bearer token');
    const body = await metrics.render(identity);
    res.writeHead(200, { 'content-type': metrics.contentType, 'cache-control': 'no-store' });
    res.end(body);
  });
}

