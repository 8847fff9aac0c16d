// An alert's life. A rule matches a line of a console: the alert fires at
// once with the lines before it (kept per console); the lines after it are
// collected as they come, and the alert is complete when it has them all or
// when the rule's timeout passes, whichever is first. For the rule's hold-
// down window from the first line, further matches of the same rule on the
// same console count into that alert instead of firing again (a flood of
// `Call Trace:` is one alert with a count, not ten thousand); when the window
// ends with matches not yet reported, a `repeat` says how many there were.
// After the window the next match fires a new alert.

import type { AlertRule, Severity } from './rules.js';

export type AlertPhase = 'fired' | 'complete' | 'repeat';

/** An alert as the sinks, the event stream and the API see it: plain JSON. */
export interface AlertRecord {
  /** increasing per daemon run */
  id: number;
  /** when the matched line was seen (ISO 8601) */
  time: string;
  console: string;
  rule: string;
  severity: Severity;
  /** the matched line (escape sequences and control characters removed) */
  line: string;
  /** context: the lines before the matched one, oldest first, and those after it so far */
  before: string[];
  after: string[];
  /** all the after-lines are in, or the rule's timeout passed */
  complete: boolean;
  /** matches of the rule on this console counted into this alert (1: just the line) */
  count: number;
  /** the latest of them (ISO 8601) */
  lastTime: string;
  /** end of the hold-down window (ISO 8601) */
  holdUntil: string;
}

/** A copy that later changes to the live alert do not touch. */
export function snapshot(r: AlertRecord): AlertRecord {
  return { ...r, before: [...r.before], after: [...r.after] };
}

/** What the tracker tells: each phase once per alert (repeat at most once). */
export type AlertEmit = (phase: AlertPhase, alert: Alert) => void;

export class Alert {
  readonly record: AlertRecord;
  /** count already reported (by complete or repeat) */
  reported = 0;
  /** still in its hold-down window */
  holding = true;

  constructor(
    readonly rule: AlertRule,
    readonly track: ConsoleTrack,
    /** the matched line's number on its console (ConsoleTrack.lines then) */
    readonly lineNo: number,
    readonly firedAt: number,
    readonly holdUntil: number,
    readonly completeBy: number,
    record: AlertRecord,
  ) {
    this.record = record;
  }
}

/**
 * Per console: the alerts holding down and those collecting their
 * after-lines, and the lines seen. With a ring size, the recent lines are
 * kept here for before-context; with none (the manager's way: holding every
 * console's last lines as strings cost more than all the matching), the
 * before-lines are the caller's to fill in (from the console's replay ring).
 */
export class ConsoleTrack {
  /** lines seen since conchd began watching the console (for `armed=`) */
  lines = 0;
  private ring: string[] = [];
  private head = 0;
  /** by rule name: a reload that re-reads the rules keeps the windows running */
  readonly holding = new Map<string, Alert>();
  readonly collecting: Alert[] = [];

  constructor(
    public name: string,
    /** lines of context kept (the largest before= of the console's rules) */
    private ringSize: number,
  ) {}

  /** whether it keeps recent lines for before-context */
  get keepsLines(): boolean {
    return this.ringSize > 0;
  }

  resize(n: number): void {
    if (n === this.ringSize) return;
    const keep = this.recent(n);
    this.ring = keep;
    this.head = 0;
    this.ringSize = n;
  }

  push(line: string): void {
    if (this.ringSize === 0) return;
    if (this.ring.length < this.ringSize) this.ring.push(line);
    else {
      this.ring[this.head] = line;
      this.head = (this.head + 1) % this.ringSize;
    }
  }

  /** The last `n` lines, oldest first. */
  recent(n: number): string[] {
    const all = this.ring.length < this.ringSize ? this.ring : [...this.ring.slice(this.head), ...this.ring.slice(0, this.head)];
    return n >= all.length ? [...all] : all.slice(all.length - n);
  }
}

export class AlertTracker {
  private nextId = 1;
  /** alerts holding down or collecting, for sweep() */
  private readonly live = new Set<Alert>();
  /** matches counted (firing or into a holding alert), per rule name */
  readonly matches = new Map<string, number>();
  /** alerts fired, per rule name */
  readonly fired = new Map<string, number>();

  constructor(private readonly emit: AlertEmit) {}

  /** alerts not yet done with (holding down or collecting) */
  get active(): number {
    return this.live.size;
  }

  /** One line of a console, and the rule it matched (null: none). */
  line(t: ConsoleTrack, text: string, rule: AlertRule | null, now: number): void {
    // a match inside a hold-down window counts before the line completes anything (a completed alert has it in its count)
    const fire = rule !== null && t.lines >= rule.armed && !this.counted(t, rule, now);
    if (t.collecting.length > 0) this.collect(t, text, now);
    if (fire) this.fire(t, text, rule, now);
    t.push(text);
    t.lines++;
  }

  private collect(t: ConsoleTrack, text: string, now: number): void {
    for (let i = 0; i < t.collecting.length; ) {
      const a = t.collecting[i]!;
      a.record.after.push(text);
      if (a.record.after.length >= a.rule.after) {
        t.collecting.splice(i, 1);
        this.complete(a, now);
      } else i++;
    }
  }

  /** Counts the match into the rule's alert holding down on this console; false: there is none, fire. */
  private counted(t: ConsoleTrack, rule: AlertRule, now: number): boolean {
    this.matches.set(rule.name, (this.matches.get(rule.name) ?? 0) + 1);
    const held = t.holding.get(rule.name);
    if (!held) return false;
    if (now >= held.holdUntil) {
      this.endHold(held);
      return false;
    }
    held.record.count++;
    held.record.lastTime = new Date(now).toISOString();
    return true;
  }

  private fire(t: ConsoleTrack, text: string, rule: AlertRule, now: number): void {
    const at = new Date(now).toISOString();
    const a = new Alert(rule, t, t.lines, now, now + rule.holddownMs, now + rule.timeoutMs, {
      id: this.nextId++,
      time: at,
      console: t.name,
      rule: rule.name,
      severity: rule.severity,
      line: text,
      before: rule.before > 0 && t.keepsLines ? t.recent(rule.before) : [],
      after: [],
      complete: false,
      count: 1,
      lastTime: at,
      holdUntil: new Date(now + rule.holddownMs).toISOString(),
    });
    this.fired.set(rule.name, (this.fired.get(rule.name) ?? 0) + 1);
    this.live.add(a);
    if (rule.holddownMs > 0) t.holding.set(rule.name, a);
    else a.holding = false;
    this.emit('fired', a);
    if (rule.after === 0 || rule.timeoutMs === 0) this.complete(a, now);
    else t.collecting.push(a);
  }

  private complete(a: Alert, now: number): void {
    a.record.complete = true;
    a.reported = a.record.count;
    this.emit('complete', a);
    if (!a.holding) this.live.delete(a);
    else if (now >= a.holdUntil) this.endHold(a);
  }

  /** The hold-down window is over: a repeat if matches came that were not reported. */
  private endHold(a: Alert): void {
    a.holding = false;
    if (a.track.holding.get(a.rule.name) === a) a.track.holding.delete(a.rule.name);
    if (!a.record.complete) return; // its completion reports the count
    this.live.delete(a);
    if (a.record.count > a.reported) {
      this.emit('repeat', a);
      a.reported = a.record.count;
    }
  }

  /** Complete what timed out, end hold-downs that are over. */
  sweep(now: number): void {
    for (const a of [...this.live]) {
      if (!a.record.complete && now >= a.completeBy) {
        const i = a.track.collecting.indexOf(a);
        if (i >= 0) a.track.collecting.splice(i, 1);
        this.complete(a, now);
      }
      if (a.holding && now >= a.holdUntil) this.endHold(a);
    }
  }

  /** The console went away (or the daemon stops): complete and close its alerts now. */
  finish(t: ConsoleTrack, now: number): void {
    for (const a of [...this.live]) {
      if (a.track !== t) continue;
      if (!a.record.complete) {
        const i = t.collecting.indexOf(a);
        if (i >= 0) t.collecting.splice(i, 1);
        a.holding = false;
        this.complete(a, now);
      } else if (a.holding) this.endHold(a);
      this.live.delete(a);
    }
  }
}
