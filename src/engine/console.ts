// One console: its device's connection state machine with backoff, and the
// fan-out of every byte the device delivers — first to the log, then to the
// replay ring, then to each attached client session.

import type { ConsoleConfig } from '../config/types.js';
import type { Device, DeviceHandler } from '../devices/device.js';
import type { ConsoleLog } from '../logging/console-log.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { frameNotice, timeDelta } from './notice.js';
import { Ring } from './ring.js';
import { BackoffTimer } from './backoff.js';

export type ConsoleState = 'down' | 'connecting' | 'up' | 'backoff';

/** A client attached to one or more consoles (implemented by the protocol layer). */
export interface Session {
  /** console output (only sessions in `readers` get it) */
  output(from: Console, data: Buffer): void;
  /** a framed `<ConMan>` notice; `info` notices are suppressed in quiet mode */
  notice(from: Console, framed: Buffer, info: boolean): void;
}

export interface ConsoleStatus {
  name: string;
  type: string;
  state: ConsoleState;
  since: Date;
  retryAt: Date | null;
  lastError: string | null;
  label: string;
  /** device-specific state, e.g. "SOL held elsewhere since …" */
  detail: string | null;
  readers: number;
  writers: number;
}

export class Console {
  readonly name: string;
  /** sessions receiving output (R/O and R/W clients) */
  readonly readers = new Set<Session>();
  /** sessions that may write (R/W and broadcast clients); they also receive notices */
  readonly writers = new Set<Session>();
  readonly replay: Ring;

  private _state: ConsoleState = 'down';
  private since = new Date();
  private lastError: string | null = null;
  private upSince = 0;
  private running = false;
  /** the session that typed last: its echo goes out before the other readers' copies */
  private typist: Session | null = null;
  private readonly backoff: BackoffTimer;
  private readonly handler: DeviceHandler;

  constructor(
    readonly cfg: ConsoleConfig,
    readonly device: Device,
    readonly log: ConsoleLog | null,
    private readonly dlog: DaemonLog,
    replayBytes: number,
  ) {
    this.name = cfg.name;
    this.replay = new Ring(replayBytes);
    this.backoff = new BackoffTimer(device.backoff, () => this.attempt());
    this.handler = {
      onData: (b) => this.fromDevice(b),
      onUp: () => this.onUp(),
      onDown: (r) => this.onDown(r),
      onReady: () => {
        if (this._state === 'backoff') this.attemptNow();
      },
      onNotice: (t) => {
        this.dlog.info(`Console [${this.name}] ${t}`);
        this.notify(t);
      },
    };
  }

  get state(): ConsoleState {
    return this._state;
  }

  status(): ConsoleStatus {
    return {
      name: this.name,
      type: this.device.type,
      state: this._state,
      since: this.since,
      retryAt: this.backoff.dueAt,
      lastError: this.lastError,
      label: this.device.label(),
      detail: this.device.detail?.() ?? null,
      readers: this.readers.size,
      writers: this.writers.size,
    };
  }

  /** Open the log and make the first connection attempt. */
  start(): void {
    this.running = true;
    this.log?.open();
    this.attempt();
  }

  /** Release the device (children killed), flush and close the log. */
  async stop(): Promise<void> {
    this.running = false;
    this.backoff.cancel();
    await this.device.close();
    this.setState('down');
    await this.log?.close();
  }

  /** Client input (already un-escaped) toward the device, from session `from`. */
  input(data: Buffer, from?: Session): void {
    this.typist = from ?? null;
    if (this._state === 'up') this.device.write(data);
  }

  sendBreak(): void {
    if (this._state === 'up') this.device.sendBreak();
  }

  /** An operator forced a session: let the device take the console back from outside holders. */
  force(by: string): void {
    this.device.force?.(by).catch((e: unknown) => this.dlog.err(`Console [${this.name}] force by ${by}: ${String(e)}`));
  }

  /**
   * A client is attaching. If the console is down, try again at once (with
   * the backoff reset) and return true so the caller can say so.
   */
  poke(): boolean {
    if (this._state === 'up' || this._state === 'connecting') return false;
    this.backoff.reset();
    if (this.running) this.attemptNow();
    return true;
  }

  /** A `<ConMan>` notice to the log, the replay ring, and every attached session. */
  notify(text: string, info = true): void {
    const framed = frameNotice(text);
    this.log?.write(framed);
    this.replay.push(framed);
    for (const s of this.sessions()) s.notice(this, framed, info);
  }

  /** A notice to every attached session only (not logged). */
  tell(text: string, info = true, except?: Session): void {
    const framed = frameNotice(text);
    for (const s of this.sessions()) if (s !== except) s.notice(this, framed, info);
  }

  /** readers ∪ writers, each once */
  sessions(): Set<Session> {
    if (this.writers.size === 0) return this.readers;
    const all = new Set(this.readers);
    for (const w of this.writers) all.add(w);
    return all;
  }

  // ---- device side -------------------------------------------------------

  private fromDevice(data: Buffer): void {
    // the log first: a slow client must never delay or lose log data
    this.log?.write(data);
    this.replay.push(data);
    // the person typing sees the echo first: with 50 sessions joined, being
    // last behind 49 socket writes cost the typist a millisecond and more
    const first = this.typist;
    if (first && this.readers.has(first)) {
      first.output(this, data);
      for (const s of this.readers) if (s !== first) s.output(this, data);
    } else {
      this.typist = null; // it left: do not keep its session alive
      for (const s of this.readers) s.output(this, data);
    }
  }

  private attemptNow(): void {
    this.backoff.cancel();
    this.attempt();
  }

  private attempt(): void {
    if (!this.running || this._state === 'connecting' || this._state === 'up') return;
    this.setState('connecting');
    try {
      this.device.connect(this.handler);
    } catch (e) {
      this.onDown((e as Error).message);
    }
  }

  private onUp(): void {
    if (!this.running) return;
    this.upSince = Date.now();
    this.lastError = null;
    this.setState('up');
    const msg = `Console [${this.name}] connected to ${this.device.label()}`;
    this.dlog.info(msg);
    this.notify(msg);
  }

  private onDown(reason: string): void {
    const wasUp = this._state === 'up';
    const label = this.device.label();
    this.lastError = reason;
    if (wasUp) {
      const upFor = Date.now() - this.upSince;
      const msg = `Console [${this.name}] disconnected from ${label} after ${timeDelta(upFor)}`;
      this.dlog.info(`${msg}: ${reason}`);
      this.notify(msg);
      if (upFor >= this.device.backoff.healthyMs) this.backoff.reset();
    } else if (this._state === 'connecting') {
      this.dlog.info(`Console [${this.name}] connection to ${label} failed: ${reason}`);
    }
    if (!this.running) {
      this.setState('down');
      return;
    }
    this.setState('backoff');
    // after a healthy period the first retry is immediate (conman does the same)
    this.backoff.schedule(wasUp && Date.now() - this.upSince >= this.device.backoff.healthyMs);
    this.device.watch?.(this.handler);
  }

  private setState(s: ConsoleState): void {
    if (s !== this._state) this.since = new Date();
    this._state = s;
  }
}
