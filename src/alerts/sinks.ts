// Where alerts go, in the daemon: the daemon log (one line naming the
// console, the rule and the matched text), a conman-style `<ConMan>` notice
// in the console's own log, the registry's event stream (the API's
// /api/v1/events), and a ring of recent alerts for GET /api/v1/alerts. The
// webhook and exec sinks, which leave the daemon, are webhook.ts and
// exec-sink.ts. A sink is called synchronously from the matcher: it must be
// cheap (queue, not work) and must not throw.

import * as os from 'node:os';
import { PRIORITIES } from '../config/types.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { frameNotice } from '../util/notice.js';
import type { Alert, AlertPhase, AlertRecord } from './alert.js';
import type { Severity } from './rules.js';

export interface AlertSink {
  readonly kind: string;
  /** `snap` is a copy of the alert's record, shared by every sink of this call: read it, do not change it */
  deliver(phase: AlertPhase, alert: Alert, snap: AlertRecord): void;
}

/** matches counted into an alert since it last reported */
const moreOf = (a: Alert): number => a.record.count - a.reported;

/** The alert as a webhook or exec command gets it. */
export function alertPayload(phase: AlertPhase, snap: AlertRecord): string {
  return JSON.stringify({ phase, host: os.hostname(), ...snap });
}

export class DaemonLogSink implements AlertSink {
  readonly kind = 'log';
  constructor(private readonly dlog: DaemonLog) {}

  deliver(phase: AlertPhase, a: Alert, s: AlertRecord): void {
    if (phase === 'fired') this.dlog.write(s.severity, `Console [${s.console}] alert ${s.rule} (${s.severity}): ${s.line}`);
    else if (phase === 'repeat') {
      this.dlog.write(s.severity, `Console [${s.console}] alert ${s.rule} (${s.severity}) matched ${moreOf(a)} more time${moreOf(a) === 1 ? '' : 's'} in its hold-down window (${s.count} in all from ${s.time} to ${s.lastTime})`);
    }
  }
}

export class NoticeSink implements AlertSink {
  readonly kind = 'notice';
  /** `write` puts the framed notice in the console's log (the manager waits for the end of a line) */
  constructor(private readonly write: (console: string, framed: Buffer) => void) {}

  deliver(phase: AlertPhase, a: Alert, s: AlertRecord): void {
    if (phase === 'complete') return;
    const text =
      phase === 'fired'
        ? `Console [${s.console}] alert ${s.rule} (${s.severity}): ${s.line}`
        : `Console [${s.console}] alert ${s.rule} (${s.severity}) matched ${moreOf(a)} more time${moreOf(a) === 1 ? '' : 's'} in its hold-down window`;
    this.write(s.console, frameNotice(text));
  }
}

export class EventSink implements AlertSink {
  readonly kind = 'events';
  constructor(private readonly registry: ConsoleRegistry) {}

  deliver(phase: AlertPhase, _a: Alert, s: AlertRecord): void {
    const hub = this.registry.events;
    if (hub.listening) hub.emit({ type: 'alert', console: s.console, phase, alert: s });
  }
}

/** What recent() may be asked for (GET /api/v1/alerts's query). */
export interface RecentFilter {
  /** exact console name, or a list of them */
  console?: string | readonly string[];
  /** exact rule name */
  rule?: string;
  /** this severity or a more severe one */
  severity?: Severity;
  /** alerts whose (first) line came at or after this time (Date, ms since the epoch, or ISO text) */
  since?: Date | number | string;
  /** alerts with an id greater than this (for polling) */
  afterId?: number;
  /** at most this many, newest first (default 100) */
  limit?: number;
}

/** The newest alerts, kept live (their count and after-lines still grow) and copied out on request. */
export class RecentAlerts implements AlertSink {
  readonly kind = 'recent';
  private readonly ring: AlertRecord[] = [];
  private head = 0;

  constructor(readonly capacity = 1000) {}

  deliver(phase: AlertPhase, a: Alert): void {
    if (phase !== 'fired') return;
    if (this.ring.length < this.capacity) this.ring.push(a.record);
    else {
      this.ring[this.head] = a.record;
      this.head = (this.head + 1) % this.capacity;
    }
  }

  /** Plain JSON-able copies, newest first. */
  list(f: RecentFilter = {}): AlertRecord[] {
    const limit = Math.max(0, Math.min(f.limit ?? 100, this.capacity));
    const consoles = f.console === undefined ? null : new Set(typeof f.console === 'string' ? [f.console] : f.console);
    const worst = f.severity === undefined ? PRIORITIES.length : PRIORITIES.indexOf(f.severity);
    const since = f.since === undefined ? null : new Date(f.since).getTime();
    const out: AlertRecord[] = [];
    const n = this.ring.length;
    for (let k = 0; k < n && out.length < limit; k++) {
      // newest first: the slot before head, going back
      const r = this.ring[(this.head - 1 - k + 2 * n) % n]!;
      if (consoles && !consoles.has(r.console)) continue;
      if (f.rule !== undefined && r.rule !== f.rule) continue;
      if (PRIORITIES.indexOf(r.severity) > worst) continue;
      if (since !== null && !(Date.parse(r.time) >= since)) continue;
      if (f.afterId !== undefined && r.id <= f.afterId) continue;
      out.push({ ...r, before: [...r.before], after: [...r.after] });
    }
    return out;
  }
}
