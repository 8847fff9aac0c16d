// The webhook sink (`server alertwebhook=URL`): each alert, once complete
// and again if its hold-down window ends with more matches, is POSTed as
// JSON. One request at a time, in order; a failure (no connection, a
// timeout, HTTP 5xx, 408 or 429) is retried with a doubling delay, the
// others (HTTP 3xx and 4xx) are given up at once. Events wait in a bounded
// queue: past it the oldest go, counted, so a receiver that is down or slow
// never holds memory without end — and nothing here ever waits on it: the
// matcher only appends to the queue.

import * as http from 'node:http';
import * as https from 'node:https';
import type { DaemonLog } from '../logging/daemon-log.js';
import { VERSION } from '../util/version.js';
import type { Alert, AlertPhase, AlertRecord } from './alert.js';
import { alertPayload, type AlertSink } from './sinks.js';
import { shownUrl } from './url.js';

export interface WebhookOptions {
  /** events kept waiting; past it the oldest is dropped (default 1000) */
  queueMax?: number;
  /** first retry delay, doubling to maxBackoffMs (defaults 1 s, 60 s) */
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** one request's time to answer (default 10 s) */
  timeoutMs?: number;
  /** an event still undelivered after this long is dropped (default 24 h) */
  maxAgeMs?: number;
}

export interface WebhookCounters {
  /** delivered (2xx) */
  sent: number;
  /** attempts that failed and were retried */
  retries: number;
  /** refused by the receiver (3xx, 4xx other than 408 and 429): not retried */
  rejected: number;
  /** dropped from a full queue, or too old */
  dropped: number;
  /** waiting now */
  queued: number;
}

interface Pending {
  body: string;
  at: number;
}

const DROP_LOG_MS = 60_000;

export class WebhookSink implements AlertSink {
  readonly kind = 'webhook';
  private queue: Pending[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private stopped = false;
  private droppedUntold = 0;
  private droppedToldAt = 0;
  private req: http.ClientRequest | null = null;
  private readonly agent: http.Agent;
  readonly stats: Omit<WebhookCounters, 'queued'> = { sent: 0, retries: 0, rejected: 0, dropped: 0 };
  private readonly o: Required<WebhookOptions>;

  constructor(
    readonly url: string,
    private readonly dlog: DaemonLog,
    opts: WebhookOptions = {},
  ) {
    this.o = { queueMax: 1000, minBackoffMs: 1000, maxBackoffMs: 60_000, timeoutMs: 10_000, maxAgeMs: 86_400_000, ...opts };
    const secure = new URL(url).protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 1 }) : new http.Agent({ keepAlive: true, maxSockets: 1 });
  }

  get counters(): WebhookCounters {
    return { ...this.stats, queued: this.queue.length };
  }

  deliver(phase: AlertPhase, _a: Alert, snap: AlertRecord): void {
    if (phase === 'fired' || this.stopped) return;
    this.enqueue(alertPayload(phase, snap));
  }

  /** Queue one JSON body (the newest stays; past the bound the oldest goes). */
  enqueue(body: string, at = Date.now()): void {
    this.queue.push({ body, at });
    while (this.queue.length > this.o.queueMax) {
      this.queue.shift();
      this.dropped(1);
    }
    this.pump();
  }

  /** A reload moved the webhook: what waits here goes to `next`. */
  handOver(next: WebhookSink): void {
    for (const p of this.queue) next.enqueue(p.body, p.at);
    this.queue = [];
    void this.stop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.req?.destroy();
    if (this.queue.length > 0) this.dlog.warn(`Alert webhook ${shownUrl(this.url)}: ${this.queue.length} alert${this.queue.length === 1 ? '' : 's'} not delivered (stopping)`);
    this.queue = [];
    this.agent.destroy();
  }

  private dropped(n: number): void {
    this.stats.dropped += n;
    this.droppedUntold += n;
    const now = Date.now();
    if (now - this.droppedToldAt < DROP_LOG_MS) return;
    this.droppedToldAt = now;
    this.dlog.warn(`Alert webhook ${shownUrl(this.url)}: ${this.droppedUntold} alert${this.droppedUntold === 1 ? '' : 's'} dropped (queue full or too old; ${this.stats.dropped} in all)`);
    this.droppedUntold = 0;
  }

  private pump(): void {
    if (this.busy || this.timer || this.stopped) return;
    const now = Date.now();
    let old = 0;
    while (this.queue.length > 0 && now - this.queue[0]!.at > this.o.maxAgeMs) {
      this.queue.shift();
      old++;
    }
    if (old > 0) this.dropped(old);
    const next = this.queue[0];
    if (!next) return;
    this.busy = true;
    this.post(next.body, (outcome, why) => {
      this.busy = false;
      this.req = null;
      if (this.stopped) return;
      if (outcome === 'retry') {
        this.failures++;
        this.stats.retries++;
        const delay = Math.min(this.o.maxBackoffMs, this.o.minBackoffMs * 2 ** Math.min(this.failures - 1, 30));
        const msg = `Alert webhook ${shownUrl(this.url)}: ${why}; retrying in ${delay < 1000 ? `${delay} ms` : `${Math.round(delay / 1000)} s`} (${this.queue.length} waiting)`;
        if (this.failures === 1) this.dlog.warn(msg);
        else this.dlog.debug(msg);
        this.timer = setTimeout(() => {
          this.timer = null;
          this.pump();
        }, delay);
        this.timer.unref();
        return;
      }
      this.queue.shift();
      if (outcome === 'sent') {
        this.stats.sent++;
        if (this.failures > 0) this.dlog.notice(`Alert webhook ${shownUrl(this.url)}: delivering again after ${this.failures} failed attempt${this.failures === 1 ? '' : 's'}`);
        this.failures = 0;
      } else {
        this.stats.rejected++;
        this.dlog.warn(`Alert webhook ${shownUrl(this.url)}: ${why}; this alert is not sent again`);
      }
      this.pump();
    });
  }

  private post(body: string, done: (outcome: 'sent' | 'retry' | 'rejected', why: string) => void): void {
    let settled = false;
    const finish = (o: 'sent' | 'retry' | 'rejected', why: string): void => {
      if (settled) return;
      settled = true;
      done(o, why);
    };
    const u = new URL(this.url);
    const mod = u.protocol === 'https:' ? https : http;
    let req: http.ClientRequest;
    try {
      req = mod.request(u, {
        method: 'POST',
        agent: this.agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          'user-agent': `conchd/${VERSION}`,
        },
      });
    } catch (e) {
      finish('rejected', (e as Error).message);
      return;
    }
    this.req = req;
    req.setTimeout(this.o.timeoutMs, () => req.destroy(new Error(`no answer within ${this.o.timeoutMs / 1000} s`)));
    req.on('error', (e) => finish('retry', e.message));
    req.on('response', (res) => {
      res.resume(); // the body is not read
      const code = res.statusCode ?? 0;
      if (code >= 200 && code < 300) finish('sent', '');
      else if (code >= 500 || code === 408 || code === 429) finish('retry', `HTTP ${code}`);
      else finish('rejected', `HTTP ${code}`);
    });
    req.end(body);
  }
}
