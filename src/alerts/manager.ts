// Pattern alerts for a registry's consoles: the rules in force, each
// console's tap, the batch that matches, and the sinks.
//
// The tap (Console.tap, called with every byte the device delivers, right
// after the log) screens a small piece of output at once with the rules'
// LiteralScanner: holding none of their literal strings and needing no
// cleaning, its lines are counted and that is all (nearly all output goes
// this way). Anything else it only
// keeps a reference to, marking the console: every BATCH_MS the marked
// consoles' bytes are cut into lines and matched, for at most SLICE_MS of
// the event loop at a time (the rest goes on at the next turn, after
// whatever I/O waits): the log and the clients never wait on matching. A
// console whose bytes pile up unmatched past MAX_PENDING (a flood faster
// than the matcher) has the excess skipped — counted, and its unfinished
// line dropped, never joined to a later one. Skipping costs alerts, never a
// log byte.

import type { ServerConfig } from '../config/types.js';
import type { Console } from '../engine/console.js';
import type { ConsoleRegistry } from '../engine/registry.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { AlertTracker, ConsoleTrack, snapshot, type Alert, type AlertPhase, type AlertRecord } from './alert.js';
import { ExecSink, type ExecCounters, type ExecOptions } from './exec-sink.js';
import { LineAssembler, TailLines } from './line-assembler.js';
import { RuleScreen } from './matcher.js';
import { consoleMatcher, effectiveRules, type AlertRule, type Severity } from './rules.js';
import { DaemonLogSink, EventSink, NoticeSink, RecentAlerts, type AlertSink, type RecentFilter } from './sinks.js';
import { shownUrl } from './url.js';
import { WebhookSink, type WebhookCounters, type WebhookOptions } from './webhook.js';

/** how long bytes wait to be matched in a batch */
export const BATCH_MS = 20;
/** event-loop time one batch may take before yielding */
export const SLICE_MS = 8;
/** bytes of one console waiting to be matched; past it output is skipped (counted) */
export const MAX_PENDING = 256 * 1024;
/** output up to this size is screened in the tap itself (see tap()); larger goes to the batch */
const QUIET_MAX = 4096;
/** in a console's chunks: output was skipped here */
const GAP = Buffer.alloc(0);
/** how often timed-out alerts are completed and hold-downs ended */
const SWEEP_MS = 250;
/** a notice waits at most this long for the console's line to end before it goes into the log mid-line */
const NOTICE_WAIT_MS = 2000;

export interface AlertManagerOptions {
  registry: ConsoleRegistry;
  dlog: DaemonLog;
  server: ServerConfig;
  /** for tests */
  webhook?: WebhookOptions;
  exec?: ExecOptions;
  recentMax?: number;
}

/** The counters for metrics: per rule and severity, the matcher's own, and the sinks'. */
export interface AlertCounters {
  rules: { rule: string; severity: Severity; builtin: boolean; fired: number; matches: number }[];
  /** alerts fired per severity since the start (rules no longer in force included) */
  firedBySeverity: Partial<Record<Severity, number>>;
  /** lines matched against the rules */
  lines: number;
  /** bytes skipped unmatched because a console's backlog was full */
  bytesSkipped: number;
  /** lines longer than the matcher keeps (cut), among those it made (output the byte screen passed is not cut into lines) */
  linesCut: number;
  /** alerts holding down or collecting context now */
  active: number;
  /** consoles with rules that apply to them */
  consoles: number;
  webhook: WebhookCounters | null;
  exec: ExecCounters | null;
}

/** One watched console. */
interface Watched {
  console: Console;
  track: ConsoleTrack;
  asm: LineAssembler;
  screen: RuleScreen<AlertRule>;
  chunks: Buffer[];
  pendingBytes: number;
  /** the literal scanner's state after the bytes taken so far (-1: not known, the bytes go to the batch) */
  ac: number;
  dirty: boolean;
  line: (text: string) => void;
  /** <ConMan> notices waiting for the log to reach the end of a line, and since when */
  notices: Buffer[];
  noticesSince: number;
  /** alerts waiting for their before-lines (read back from the log): later ones of this console go after them */
  context: Promise<void> | null;
}

export class AlertManager {
  private readonly registry: ConsoleRegistry;
  private readonly dlog: DaemonLog;
  private rules: AlertRule[] = [];
  private matchers: (((name: string) => boolean) | null)[] = [];
  private screens = new Map<string, RuleScreen<AlertRule>>();
  private readonly watched = new Map<string, Watched>();
  private dirty: Watched[] = [];
  private batchTimer: NodeJS.Timeout | null = null;
  private immediate: NodeJS.Immediate | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private now = Date.now();
  private readonly tracker: AlertTracker;
  private readonly recentRing: RecentAlerts;
  private readonly events: EventSink;
  private sinks: AlertSink[] = [];
  private webhook: WebhookSink | null = null;
  private exec: ExecSink | null = null;
  private readonly stats = { lines: 0, bytesSkipped: 0, linesCut: 0 };
  private readonly firedBySeverity: Partial<Record<Severity, number>> = {};
  private stopped = false;
  private readonly unlisten: () => void;
  /** the console whose bytes are being matched now */
  private processing: Watched | null = null;
  /** what its alerts said meanwhile, told at the end (see dispatchDeferred) */
  private deferred: [AlertPhase, Alert][] = [];
  /** an internal error was logged (once) */
  private faulted = false;
  /** consoles with notices waiting for the end of a line */
  private readonly noticesWaiting = new Set<Watched>();

  /** Throws AlertRulesError when the rules file has errors (the start fails, naming each). */
  constructor(private readonly o: AlertManagerOptions) {
    this.registry = o.registry;
    this.dlog = o.dlog;
    this.tracker = new AlertTracker((phase, a) => {
      if (this.processing) return void this.deferred.push([phase, a]);
      const w = this.watched.get(a.record.console);
      if (w?.context) this.afterContext(w, () => this.dispatch(phase, a));
      else this.dispatch(phase, a);
    });
    this.recentRing = new RecentAlerts(o.recentMax ?? 1000);
    this.events = new EventSink(o.registry);
    const rules = effectiveRules({ defaults: o.server.alertDefaults, file: o.server.alertsFile });
    this.setSinks(o.server);
    this.setRules(rules);
    // consoles a reload adds get a tap; those it removes lose theirs
    this.unlisten = o.registry.events.on((e) => {
      if (e.type !== 'console') return;
      if (e.action === 'added') {
        const c = o.registry.get(e.console);
        if (c) this.watch(c);
      } else this.unwatch(e.console);
    });
    this.say('');
  }

  /** The rules in force (file's first, then built-in). */
  get ruleList(): readonly AlertRule[] {
    return this.rules;
  }

  /**
   * A reload: the rules file is read again (even under the same name) and
   * the sinks follow the new settings. A rules file with errors keeps the
   * rules in force (each error logged). Returns whether the rules applied.
   */
  reconfigure(server: ServerConfig): boolean {
    this.o.server = server;
    this.setSinks(server);
    let rules: AlertRule[];
    try {
      rules = effectiveRules({ defaults: server.alertDefaults, file: server.alertsFile });
    } catch (e) {
      for (const line of (e as Error).message.split('\n')) this.dlog.err(`Reload: ${line}`);
      this.dlog.err(`Reload: the alert rules in force stay as they were (${this.rules.length} rule${this.rules.length === 1 ? '' : 's'})`);
      return false;
    }
    this.setRules(rules);
    this.say('Reload: ');
    return true;
  }

  /** The newest alerts (plain JSON-able copies), newest first: GET /api/v1/alerts. */
  recent(filter: RecentFilter = {}): AlertRecord[] {
    return this.recentRing.list(filter);
  }

  counters(): AlertCounters {
    const rules = this.rules.map((r) => ({
      rule: r.name,
      severity: r.severity,
      builtin: r.builtin,
      fired: this.tracker.fired.get(r.name) ?? 0,
      matches: this.tracker.matches.get(r.name) ?? 0,
    }));
    let cut = this.stats.linesCut;
    for (const w of this.watched.values()) cut += w.asm.cut;
    return {
      rules,
      firedBySeverity: { ...this.firedBySeverity },
      lines: this.stats.lines,
      bytesSkipped: this.stats.bytesSkipped,
      linesCut: cut,
      active: this.tracker.active,
      consoles: this.watched.size,
      webhook: this.webhook?.counters ?? null,
      exec: this.exec?.counters ?? null,
    };
  }

  /** Daemon shutdown: taps off, timers off; the webhook's queue is given up (logged), exec commands get a moment. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unlisten();
    for (const w of this.watched.values()) if (w.console.tap) w.console.tap = null;
    this.watched.clear();
    this.dirty = [];
    if (this.batchTimer) clearTimeout(this.batchTimer);
    if (this.immediate) clearImmediate(this.immediate);
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    this.batchTimer = this.immediate = this.sweepTimer = null;
    await Promise.all([this.webhook?.stop(), this.exec?.stop()]);
  }

  // ---- rules and consoles ---------------------------------------------------

  private setRules(rules: AlertRule[]): void {
    this.rules = rules;
    this.matchers = rules.map((r) => consoleMatcher(r));
    this.screens = new Map();
    const names = new Set<string>();
    for (const c of this.registry.list()) {
      names.add(c.name);
      this.watch(c);
    }
    for (const name of [...this.watched.keys()]) if (!names.has(name)) this.unwatch(name);
  }

  /** The rules that apply to console `name`, screened together (null: none). */
  private screenFor(name: string): RuleScreen<AlertRule> | null {
    const idx: number[] = [];
    for (let k = 0; k < this.rules.length; k++) {
      const m = this.matchers[k];
      if (!m || m(name)) idx.push(k);
    }
    if (idx.length === 0) return null;
    const key = idx.join(',');
    let s = this.screens.get(key);
    if (!s) {
      s = new RuleScreen(idx.map((k) => this.rules[k]!));
      this.screens.set(key, s);
    }
    return s;
  }

  /** Tap `c` with the rules that apply to it (or untap it: none do). */
  private watch(c: Console): void {
    if (this.stopped) return;
    const screen = this.screenFor(c.name);
    const w0 = this.watched.get(c.name);
    if (!screen) {
      if (w0) this.unwatch(c.name);
      return;
    }
    if (w0 && w0.console === c) {
      w0.screen = screen;
      w0.ac = -1;
      if (!w0.dirty) this.rescan(w0);
      return;
    }
    if (w0) this.unwatch(c.name);
    const w: Watched = {
      console: c,
      // no lines kept: the before-context comes from the console's replay ring when an alert fires
      track: new ConsoleTrack(c.name, 0),
      asm: new LineAssembler(),
      screen,
      chunks: [],
      pendingBytes: 0,
      ac: 0,
      dirty: false,
      line: (text) => this.line(w, text),
      notices: [],
      noticesSince: 0,
      context: null,
    };
    this.watched.set(c.name, w);
    c.tap = (data) => this.tap(w, data);
  }

  private unwatch(name: string): void {
    const w = this.watched.get(name);
    if (!w) return;
    this.watched.delete(name);
    if (w.console.tap) w.console.tap = null;
    w.chunks = [];
    w.pendingBytes = 0;
    if (w.notices.length > 0) this.tryNotices(w, true);
    this.stats.linesCut += w.asm.cut;
    this.tracker.finish(w.track, Date.now());
  }

  // ---- the tap and the batch -------------------------------------------------

  private tap(w: Watched, data: Buffer): void {
    // most output holds nothing for any rule: told here, at once, while the bytes are at hand,
    // it costs less than carrying them to the batch (nothing waits there: order is kept)
    if (!w.dirty && data.length <= QUIET_MAX && this.passQuiet(w, data)) return;
    w.ac = -1;
    if (w.pendingBytes + data.length > MAX_PENDING) {
      this.stats.bytesSkipped += data.length;
      // where output was skipped: the line open there is dropped, not joined to what comes after
      if (w.chunks.at(-1) !== GAP) w.chunks.push(GAP);
      this.mark(w);
      return;
    }
    // the device never reuses a buffer it delivered (the log holds them too): a reference is enough
    w.chunks.push(data);
    w.pendingBytes += data.length;
    this.mark(w);
  }

  private mark(w: Watched): void {
    if (w.dirty) return;
    w.dirty = true;
    this.dirty.push(w);
    if (!this.batchTimer && !this.immediate) {
      this.batchTimer = setTimeout(this.batch, BATCH_MS);
      this.batchTimer.unref();
    }
  }

  private readonly batch = (): void => {
    this.batchTimer = null;
    this.immediate = null;
    const t0 = performance.now();
    this.now = Date.now();
    const list = this.dirty;
    let i = 0;
    while (i < list.length) {
      const w = list[i++]!;
      this.process(w);
      if (performance.now() - t0 > SLICE_MS) break;
    }
    this.dirty = i === list.length ? [] : list.slice(i);
    // what is left goes on at once, after the I/O that waits
    if (this.dirty.length > 0 && !this.stopped) this.immediate = setImmediate(this.batch);
    this.sweepSoon();
  };

  private process(w: Watched): void {
    this.processing = w;
    w.dirty = false;
    const chunks = w.chunks;
    w.pendingBytes = 0;
    try {
      for (const b of chunks) {
        if (b === GAP) {
          w.asm.reset();
          w.ac = 0;
          continue;
        }
        if (this.passQuiet(w, b)) continue;
        w.asm.feed(b, w.line);
        w.ac = -1;
      }
    } catch (e) {
      // a bug must cost this console's batch, not the matcher (nor the daemon)
      w.asm.reset();
      if (!this.faulted) this.dlog.err(`Alerts: internal error matching console [${w.console.name}]: ${(e as Error).stack ?? String(e)}`);
      this.faulted = true;
    } finally {
      this.processing = null;
      chunks.length = 0; // the array is kept for the next batch
    }
    if (w.ac < 0) this.rescan(w);
    if (this.deferred.length > 0) this.dispatchDeferred(w);
    if (w.notices.length > 0) this.tryNotices(w);
  }

  /**
   * Take `data` without making lines if the byte screen finds nothing in it
   * for any rule and no alert waits for after-lines: its lines are counted.
   */
  private passQuiet(w: Watched, data: Buffer): boolean {
    const sc = w.screen.scanner;
    if (sc === null || w.ac < 0 || w.track.collecting.length > 0) return false;
    const s = sc.scan(data, w.ac);
    if (s < 0) return false;
    w.ac = s;
    w.asm.passOver(data, sc.lines);
    w.track.lines += sc.lines;
    this.stats.lines += sc.lines;
    return true;
  }

  /** The scanner's state for the line `w` has open (none: the start); -1 if that line holds a literal already. */
  private rescan(w: Watched): void {
    const open = w.asm.pendingBytes;
    const sc = w.screen.scanner;
    w.ac = open === null ? 0 : sc === null ? -1 : sc.scan(open, 0);
  }

  /**
   * What the alerts of `w` said while its bytes were matched, in order, now
   * that the alerts fired have their before-lines: from the console's recent
   * output as of now (Console.contextTail: its ring, or its log read back),
   * counting back over the lines that came after each alert's line.
   */
  private dispatchDeferred(w: Watched): void {
    const deferred = this.deferred;
    this.deferred = [];
    const needs = deferred.some(([phase, a]) => phase === 'fired' && a.rule.before > 0);
    if (!needs && !w.context) {
      for (const [phase, a] of deferred) this.dispatch(phase, a);
      return;
    }
    // asked for now, the lines seen now: later output neither shifts nor hides an alert's place
    const recent = needs ? w.console.contextTail() : null;
    const seen = w.track.lines;
    this.afterContext(w, async () => {
      const r = recent && (await recent);
      if (r) {
        const tail = new TailLines(r.tail, r.cut);
        for (const [phase, a] of deferred) {
          if (phase === 'fired' && a.rule.before > 0) a.record.before = tail.before(seen - a.lineNo - 1, a.record.line, a.rule.before);
        }
      }
      for (const [phase, a] of deferred) this.dispatch(phase, a);
    });
  }

  /** `fn` after the alerts of `w` that wait for their before-lines: one console's alerts keep their order */
  private afterContext(w: Watched, fn: () => void | Promise<void>): void {
    const p: Promise<void> = (w.context ?? Promise.resolve())
      .then(fn)
      .catch((e: unknown) => this.dlog.err(`Alerts: internal error dispatching an alert of console [${w.console.name}]: ${String(e)}`))
      .then(() => {
        if (w.context === p) w.context = null;
      });
    w.context = p;
  }

  /**
   * A notice for a console's log. The log has every byte the matcher has
   * seen: when that ends mid-line, the notice waits for the line's end (at
   * most NOTICE_WAIT_MS) rather than split a kernel line in the log.
   */
  private notice(name: string, framed: Buffer): void {
    const w = this.watched.get(name);
    if (!w) return;
    if (w.notices.length === 0) w.noticesSince = Date.now();
    w.notices.push(framed);
    this.noticesWaiting.add(w);
    // while its bytes are being matched, the end of process() decides
    if (this.processing !== w) this.tryNotices(w);
    this.sweepSoon();
  }

  /** Write the waiting notices if the log is at the end of a line (every byte it has was matched, no line open). */
  private tryNotices(w: Watched, force = false): void {
    if (!force && (w.dirty || w.asm.pending > 0)) return;
    const log = w.console.log;
    for (const b of w.notices) log?.write(b);
    w.notices = [];
    this.noticesWaiting.delete(w);
  }

  private line(w: Watched, text: string): void {
    this.stats.lines++;
    this.tracker.line(w.track, text, w.screen.match(text), this.now);
  }

  // ---- alerts out ---------------------------------------------------------------

  private dispatch(phase: AlertPhase, a: Alert): void {
    if (phase === 'fired') this.firedBySeverity[a.rule.severity] = (this.firedBySeverity[a.rule.severity] ?? 0) + 1;
    const snap = snapshot(a.record);
    this.recentRing.deliver(phase, a);
    this.events.deliver(phase, a, snap);
    for (const s of this.sinks) {
      try {
        s.deliver(phase, a, snap);
      } catch (e) {
        this.dlog.err(`Alert ${s.kind} sink: ${(e as Error).message}`);
      }
    }
  }

  private sweepSoon(): void {
    if (this.sweepTimer || (this.tracker.active === 0 && this.noticesWaiting.size === 0) || this.stopped) return;
    this.sweepTimer = setInterval(() => {
      const now = Date.now();
      this.tracker.sweep(now);
      for (const w of [...this.noticesWaiting]) this.tryNotices(w, now - w.noticesSince >= NOTICE_WAIT_MS);
      if (this.tracker.active === 0 && this.noticesWaiting.size === 0 && this.sweepTimer) {
        clearInterval(this.sweepTimer);
        this.sweepTimer = null;
      }
    }, SWEEP_MS);
    this.sweepTimer.unref();
  }

  private setSinks(s: ServerConfig): void {
    const sinks: AlertSink[] = [];
    if (s.alertLog) sinks.push(new DaemonLogSink(this.dlog));
    if (s.alertNotice) sinks.push(new NoticeSink((name, framed) => this.notice(name, framed)));
    if (s.alertWebhook !== this.webhook?.url) {
      const next = s.alertWebhook ? new WebhookSink(s.alertWebhook, this.dlog, this.o.webhook) : null;
      if (this.webhook && next) this.webhook.handOver(next);
      else void this.webhook?.stop();
      this.webhook = next;
    }
    if (this.webhook) sinks.push(this.webhook);
    if (s.alertExec !== this.exec?.cmd) {
      void this.exec?.stop(this.o.exec?.timeoutMs ?? 30_000);
      this.exec = s.alertExec ? new ExecSink(s.alertExec, this.dlog, this.o.exec) : null;
    }
    if (this.exec) sinks.push(this.exec);
    this.sinks = sinks;
  }

  /** One line saying what is in force. */
  private say(prefix: string): void {
    const s = this.o.server;
    const n = this.rules.length;
    if (n === 0) {
      this.dlog.info(`${prefix}Alerts: no rules in force (alertdefaults=off and no alerts= file)`);
      return;
    }
    const builtin = this.rules.filter((r) => r.builtin).length;
    const parts = [`${builtin} built-in`];
    if (s.alertsFile) parts.push(`${n - builtin} from ${s.alertsFile}`);
    const to = [s.alertLog && 'daemon log', s.alertNotice && 'console logs', s.alertWebhook && `webhook ${shownUrl(s.alertWebhook)}`, s.alertExec && 'exec'].filter(Boolean);
    this.dlog.notice(
      `${prefix}Alerts: ${n} rule${n === 1 ? '' : 's'} (${parts.join(', ')}) on ${this.watched.size} console${this.watched.size === 1 ? '' : 's'}; to ${to.length > 0 ? to.join(', ') : 'the event stream only'}`,
    );
  }
}
