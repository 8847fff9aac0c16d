// One console: its device's connection state machine with backoff, and the
// fan-out of every byte the device delivers — first to the log, then to the
// replay ring, then to each attached client session.

import type { ConsoleConfig } from '../config/types.js';
import { INPUT_CAP, type Device, type DeviceHandler } from '../devices/device.js';
import type { ConsoleLog } from '../logging/console-log.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { frameNotice, longTime, timeDelta } from '../util/notice.js';
import { fenceOk } from '../util/fence.js';
import { Ring } from './ring.js';
import { BackoffTimer } from './backoff.js';
import { LINK_NOTE } from './link-notes.js';
import type { ConsoleCounters, EventHub } from './events.js';
import { whoText, type AttachMode, type ClientLink, type Identity, type Session } from './session.js';

export type ConsoleState = 'down' | 'connecting' | 'up' | 'backoff';

/** how long stop() waits for a device to be released (an IPMI Deactivate + Close Session to a dead BMC retries for longer) */
export const RELEASE_MS = 3000;

/** How long writers stay paused without the device draining before the console drops input instead. */
export const STALL_MS = 10_000;
/** Dropped input is told to its writer at most this often (and when the outage ends). */
const DROP_NOTICE_MS = 10_000;
/** recent output a logged console keeps in memory for the alerts' before-lines (conman's replay length) */
export const ALERT_CONTEXT_BYTES = 4096;

/**
 * One outage of the device's input: from write() returning false to the
 * device's onDrain (or its going down, or the console stopping).
 */
interface Jam {
  /** sessions told to stop reading */
  paused: Set<Session>;
  /** STALL_MS passed without a drain: writers run free and excess input is dropped */
  stalled: boolean;
  timer: NodeJS.Timeout | null;
  /** bytes dropped per writer, not yet told; and when each was last told */
  dropped: Map<Session, { untold: number; toldAt: number }>;
}

export interface ConsoleOptions {
  /** for tests: INPUT_CAP and STALL_MS */
  inputCap?: number;
  stallMs?: number;
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

/**
 * Bytes of recent output a console keeps in memory. Without a log, the
 * whole replay. With one, a replay is read back from the file, and so are
 * the alerts' before-lines when the file holds the console's bytes as they
 * came (notices included): nothing in memory. A log that stamps or
 * sanitizes its lines has other bytes than the matcher saw: for a console
 * an alert rule taps, memory then keeps ALERT_CONTEXT_BYTES (or the replay
 * size if smaller). At 10,000 consoles, 16 KiB each was a quarter of the
 * daemon's memory, and 4 KiB each a tenth of a telnet fleet's.
 */
export function ringBytes(replayBytes: number, log: ConsoleLog | null, alerts: boolean): number {
  if (!log) return replayBytes;
  return alerts && !log.verbatim ? Math.min(replayBytes, ALERT_CONTEXT_BYTES) : 0;
}

/** who is attached to a console: made at its first attach (most consoles of a fleet never have one) */
interface Attached {
  /** sessions receiving output (R/O and R/W clients) */
  readonly readers: Set<Session>;
  /** sessions that may write (R/W and broadcast clients); they also receive notices */
  readonly writers: Set<Session>;
  /** every attached session, since when */
  readonly links: Map<Session, Date>;
}
const NO_SESSIONS: ReadonlySet<Session> = new Set();
const NO_LINKS: ReadonlyMap<Session, Date> = new Map();

export class Console {
  readonly name: string;
  /** null until a session attaches: three empty hash tables per console were 2 % of a 10,000-console daemon */
  private att: Attached | null = null;
  private get readers(): ReadonlySet<Session> {
    return this.att?.readers ?? NO_SESSIONS;
  }
  private get writers(): ReadonlySet<Session> {
    return this.att?.writers ?? NO_SESSIONS;
  }
  private get links(): ReadonlyMap<Session, Date> {
    return this.att?.links ?? NO_LINKS;
  }
  private attached(): Attached {
    return (this.att ??= { readers: new Set(), writers: new Set(), links: new Map() });
  }
  /** where this console's events go (the registry's hub), if anywhere */
  events: EventHub | null = null;
  /** what it has done since the daemon started it */
  readonly counters: ConsoleCounters = { bytesIn: 0, connects: 0, disconnects: 0 };
  private _tap: ((data: Buffer) => void) | null = null;

  private _state: ConsoleState = 'down';
  private since = new Date();
  private lastError: string | null = null;
  private upSince = 0;
  private running = false;
  /** its log is open: started and not stopped since (stop() then has a device to release and a log to close) */
  private opened = false;
  /** the session that typed last: its echo goes out before the other readers' copies */
  private typist: Session | null = null;
  // replaced by a reload (reconfigure): the Console, its sessions and its ring stay
  private _cfg: ConsoleConfig;
  private _device: Device;
  private _log: ConsoleLog | null;
  /** recent output in memory: the whole replay without a log, the alerts' context with one (see ringBytes) */
  private _replay: Ring;
  /** server replaybuffer=: the bytes a replay gives */
  private replayBytes: number;
  private backoff: BackoffTimer;
  private handler: DeviceHandler;
  /** a reload is replacing the device: no attempt until the old one is released */
  private swapping = false;
  /** the device said it is full; null almost always */
  private jam: Jam | null = null;
  private readonly inputCap: number;
  private readonly stallMs: number;

  constructor(
    cfg: ConsoleConfig,
    device: Device,
    log: ConsoleLog | null,
    private readonly dlog: DaemonLog,
    replayBytes: number,
    opts: ConsoleOptions = {},
  ) {
    this.name = cfg.name;
    this._cfg = cfg;
    this._device = device;
    this._log = log;
    this.inputCap = opts.inputCap ?? INPUT_CAP;
    this.stallMs = opts.stallMs ?? STALL_MS;
    this.replayBytes = replayBytes;
    this._replay = new Ring(ringBytes(replayBytes, log, false));
    this.backoff = new BackoffTimer(device.backoff, () => this.attempt());
    this.handler = this.handlerFor(device);
  }

  get cfg(): ConsoleConfig {
    return this._cfg;
  }

  get device(): Device {
    return this._device;
  }

  get log(): ConsoleLog | null {
    return this._log;
  }

  /**
   * Sees every byte the device delivers, right after the log (pattern
   * alerts): must be cheap and must not throw; one per console. A console
   * whose log stamps or sanitizes its lines keeps a ring of recent output
   * only while it has a tap (see ringBytes).
   */
  get tap(): ((data: Buffer) => void) | null {
    return this._tap;
  }
  set tap(fn: ((data: Buffer) => void) | null) {
    this._tap = fn;
    this.sizeRing();
  }

  /** recent output in memory (the alerts read their context lines from it) */
  get replay(): Ring {
    return this._replay;
  }

  /**
   * The newest `server replaybuffer=` bytes of the console, for &L and a
   * browser's first screen. A logged console's are read back from its log
   * file, as conman replays the log (notices and logopts' changes
   * included), by the log writer thread after every byte gathered so far:
   * a replay costs no memory per console. Without a log, or while its file
   * cannot be read, the ring in memory.
   */
  async replayTail(): Promise<Buffer> {
    return (await this._log?.tail(this.replayBytes).catch(() => null)) ?? this._replay.tail();
  }

  /** server replaybuffer=: the most a replay gives (a cluster's replay gathers that much history from every node, src/cluster/history.ts) */
  get replaySize(): number {
    return this.replayBytes;
  }

  /**
   * Recent output for the alerts' before-lines, as of this call: the ring
   * when the console keeps one, else the newest ALERT_CONTEXT_BYTES of its
   * log read back (see ringBytes). `cut`: the first line may be a part.
   * null: the log cannot be read now.
   */
  contextTail(): Promise<{ tail: Buffer; cut: boolean } | null> {
    const r = this._replay;
    if (r.capacity > 0 || !this._log) return Promise.resolve({ tail: r.tail(), cut: r.size >= r.capacity });
    return this._log.tail(ALERT_CONTEXT_BYTES).then(
      (b) => (b ? { tail: b, cut: b.length >= ALERT_CONTEXT_BYTES } : null),
      () => null,
    );
  }

  /**
   * The handler given to one device. A device a reload replaced may still
   * report while it is released: its state changes no longer count (its
   * last bytes still do).
   */
  private handlerFor(dev: Device): DeviceHandler {
    return new DeviceDoor(this, dev);
  }

  /** (DeviceDoor) what device `dev` said; all but its bytes are ignored once `dev` is not this console's */
  heard(dev: Device, what: Exclude<keyof DeviceHandler, 'onData'>, text = ''): void {
    if (this._device !== dev) return;
    switch (what) {
      case 'onUp':
        return this.onUp();
      case 'onDown':
        return this.onDown(text);
      case 'onReady':
        if (this._state === 'backoff') this.attemptNow();
        return;
      case 'onNotice':
        this.dlog.info(`Console [${this.name}] ${text}`);
        this.notify(text);
        this.events?.emit({ type: 'notice', console: this.name, text });
        return;
      case 'onDrain':
        return this.unjam();
    }
  }

  /** (DeviceDoor) bytes from the device */
  heardData(b: Buffer): void {
    this.fromDevice(b);
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
    this.opened = true;
    this.log?.open();
    this.attempt();
  }

  /**
   * A cluster node takes this stopped console (src/cluster/): a new device
   * and log, `note` as the log's first line, then the first attempt. The
   * Console — its sessions and replay ring — stays.
   */
  startWith(device: Device, log: ConsoleLog | null, note: string): void {
    if (this.running) return;
    this._device.dispose?.();
    this._device = device;
    this._log = log;
    this.sizeRing();
    this.handler = this.handlerFor(device);
    this.backoff = new BackoffTimer(device.backoff, () => this.attempt());
    this.running = true;
    this.opened = true;
    log?.open();
    this.notify(note);
    this.attempt();
  }

  /** started and not stopped since */
  get active(): boolean {
    return this.running;
  }

  /** Release the device (children killed), flush and close the log. */
  /**
   * Release the device (children killed, IPMI payload deactivated) within
   * `releaseMs` — a BMC that no longer answers must not hold up a shutdown —
   * then close the log with a closing line saying why.
   */
  async stop(why = 'conchd stopping', releaseMs = RELEASE_MS): Promise<void> {
    this.running = false;
    if (!this.opened) return; // never started (a cluster node's console run by another node)
    this.backoff.cancel();
    this.unjam();
    // notices while the device is released (its disconnection) still reach the log; the closing line is the last
    await this.releaseDevice(this._device, releaseMs);
    this.setState('down');
    this.opened = false;
    const log = this._log;
    if (fenceOk()) log?.write(frameNotice(`Console [${this.name}] log closed at ${longTime()}: ${why}`));
    await log?.close();
  }

  /** `dev`'s close(), given at most `releaseMs` (a BMC that no longer answers does not hold us up). */
  private async releaseDevice(dev: Device, releaseMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const released = await Promise.race([
      dev.close().then(() => true),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(false), releaseMs))),
    ]);
    clearTimeout(timer);
    if (!released) this.dlog.warn(`Console [${this.name}] ${dev.label()} not released within ${timeDelta(releaseMs)}; going on`);
  }

  /**
   * A reload changed this console's settings (`what` says which, for the
   * notice): release the old device, then connect `device`. `log` replaces
   * the log when given (undefined: the log stays as it is). The Console —
   * its clients with their modes, and the replay ring — stays: attached
   * clients see the notice and the reconnection, and are not detached.
   */
  async reconfigure(cfg: ConsoleConfig, device: Device, log: ConsoleLog | null | undefined, what: string): Promise<void> {
    const old = this._device;
    this.notify(`Console [${this.name}] ${what}`, false);
    this.swapping = true;
    this.backoff.cancel();
    this.unjam();
    this._cfg = cfg;
    this._device = device;
    this.handler = this.handlerFor(device);
    this.backoff = new BackoffTimer(device.backoff, () => this.attempt());
    this.setState('down');
    try {
      // released before the new one connects: a BMC has one SOL payload, a serial port one opener
      await this.releaseDevice(old, RELEASE_MS);
      old.dispose?.();
    } finally {
      this.swapping = false;
    }
    if (!this.running) {
      // stopped meanwhile (shutdown): stop() closed the old log
      await log?.close();
      return;
    }
    if (log !== undefined) {
      const before = this._log;
      before?.write(frameNotice(`Console [${this.name}] log closed at ${longTime()}: log settings changed by a reload`));
      const closing = before?.close();
      this._log = log;
      this.sizeRing();
      log?.open();
      await closing;
    }
    this.attempt();
  }

  /**
   * A reload removed this console (the registry no longer lists it): its
   * clients get a notice and are let go (each connection closed once
   * flushed), the device is released and the log closed.
   */
  async retire(): Promise<void> {
    this.notify(`Console [${this.name}] removed from the configuration`, false);
    for (const s of [...this.links.keys()]) {
      this.unlink(s);
      s.kicked(this, 'removed');
    }
    await this.stop('removed from the configuration');
    this._device.dispose?.();
  }

  /** A cluster node lets this console go (src/cluster/): its clients are told `text` and let go, to connect again and follow it. */
  dismiss(text: string): void {
    this.tell(text, false);
    for (const s of [...this.links.keys()]) {
      this.unlink(s);
      s.kicked(this, 'moved');
    }
  }

  /** server replaybuffer= changed: a ring of the new size, keeping the newest bytes */
  resizeReplay(bytes: number): void {
    this.replayBytes = bytes;
    this.sizeRing();
  }

  /** the ring's size follows the replay size and whether there is a log, keeping the newest bytes */
  private sizeRing(): void {
    const bytes = ringBytes(this.replayBytes, this._log, this._tap !== null);
    if (bytes === this._replay.capacity) return;
    const ring = new Ring(bytes);
    ring.push(this._replay.tail());
    this._replay = ring;
  }

  /**
   * Client input (already un-escaped) toward the device, from session `from`.
   *
   * A device whose peer does not read says so (write() returns false) and is
   * "jammed" until it drains. Meanwhile, the rule:
   *  - a writer of this console only (R/W, joined or not) is paused like a
   *    terminal: the session stops reading its socket, each writer when it
   *    next writes (so every joined writer, and one joining later, is
   *    caught), and all resume on the drain;
   *  - a broadcast writer is never paused: one stalled console must not hold
   *    up its input to all the others; its input to this console is queued
   *    up to the cap and dropped beyond it;
   *  - past STALL_MS without a drain the paused writers are let go too (a
   *    paused client cannot even send its escape to quit, and stays on as
   *    this console's writer): from then on excess input is dropped;
   *  - whatever the device holds stays under the cap (INPUT_CAP): input past
   *    it is dropped and the writer told, once at first and then at most
   *    every DROP_NOTICE_MS and when the outage ends;
   *  - the device going down or the console stopping ends the outage: the
   *    device drops its queue and paused writers resume.
   */
  input(data: Buffer, from?: Session): void {
    this.typist = from ?? null;
    if (this._state !== 'up') return;
    const jam = this.jam;
    if (jam === null) {
      if (!this.device.write(data)) this.jammed(from);
      return;
    }
    if (from && !jam.stalled && !jam.paused.has(from) && from.throttle?.(this, true)) jam.paused.add(from);
    const room = this.inputCap - this.device.queued();
    if (room >= data.length) {
      this.device.write(data);
      return;
    }
    if (room > 0) this.device.write(data.subarray(0, room));
    this.dropped(jam, data.length - Math.max(room, 0), from);
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

  // ---- notices ---------------------------------------------------------------

  /** A `<ConMan>` notice to the log, the replay ring, and every attached session. */
  notify(text: string, info = true): void {
    const framed = frameNotice(text);
    if (!fenceOk()) return; // a cluster node past its lease writes nothing (util/fence.ts)
    if (this.opened) this.log?.write(framed);
    this.replay.push(framed);
    for (const s of this.sessions()) s.notice(this, framed, info);
  }

  /** A notice to every attached session only (not logged). */
  tell(text: string, info = true, except?: Session): void {
    const framed = frameNotice(text);
    for (const s of this.sessions()) if (s !== except) s.notice(this, framed, info);
  }

  // ---- clients ---------------------------------------------------------------

  /**
   * Link a session in `mode` (see AttachMode), with conman's notices: a new
   * writer is announced to everyone already there and to the log (`joined
   * by`, `stolen by`), and hears one `joined with`/`stolen from` per writer
   * there; with force those writers are let go (kicked). Plain `attach`
   * does not check for writers: the caller refuses a busy console first
   * (conman's ERROR CODE=7 lists them). Returns who was displaced.
   */
  attach(s: Session, mode: AttachMode): Identity[] {
    const a = this.attached();
    if (!a.links.has(s)) a.links.set(s, new Date());
    let displaced: Identity[] = [];
    if (mode === 'monitor') a.readers.add(s);
    else {
      displaced = this.gainWrite(s, mode === 'force', mode === 'broadcast');
      if (mode !== 'broadcast') a.readers.add(s);
    }
    this.clientEvent(s, 'attach');
    return displaced;
  }

  private clientEvent(s: Session, action: 'attach' | 'detach' | 'mode'): void {
    if (!this.events?.listening) return;
    const mode = !this.writers.has(s) ? 'monitor' : this.readers.has(s) ? 'write' : 'broadcast';
    this.events.emit({ type: 'client', console: this.name, action, client: { user: s.identity.user, transport: s.identity.transport, mode } });
  }

  /**
   * An attached reader changes mode (conman's &M, &J, &F): `monitor` gives
   * up write access (`departed by`), `join`/`force`/`attach` gain it as
   * attach() would. A broadcast writer keeps its mode.
   */
  setMode(s: Session, mode: Exclude<AttachMode, 'broadcast'>): Identity[] {
    if (!this.readers.has(s)) return [];
    if (mode === 'monitor') {
      this.loseWrite(s);
      this.clientEvent(s, 'mode');
      return [];
    }
    if (this.writers.has(s)) return [];
    const displaced = this.gainWrite(s, mode === 'force', false);
    this.clientEvent(s, 'mode');
    return displaced;
  }

  /** The session leaves (`departed by` if it could write). */
  detach(s: Session): void {
    if (!this.links.has(s)) return;
    this.clientEvent(s, 'detach');
    this.att?.readers.delete(s);
    this.loseWrite(s);
    this.att?.links.delete(s);
    if (this.typist === s) this.typist = null;
  }

  isWriter(s: Session): boolean {
    return this.writers.has(s);
  }

  /** R/W and broadcast clients */
  get writerCount(): number {
    return this.writers.size;
  }

  /** The attached clients, oldest first. */
  clients(): ClientLink[] {
    const out: ClientLink[] = [];
    for (const [s, since] of this.links) {
      const mode = !this.writers.has(s) ? 'monitor' : this.readers.has(s) ? 'write' : 'broadcast';
      out.push({ identity: s.identity, mode, since, idleMs: s.idleMs() });
    }
    return out;
  }

  private gainWrite(s: Session, force: boolean, broadcast: boolean): Identity[] {
    const others = [...this.writers].filter((w) => w !== s);
    const stolen = force && others.length > 0;
    const now = new Date();
    this.notify(LINK_NOTE.arrived(this.name, s.identity, stolen, broadcast, now));
    for (const w of others) s.notice(this, frameNotice(LINK_NOTE.existing(this.name, w.identity, stolen, now)), true);
    if (stolen) {
      for (const w of others) {
        this.detach(w);
        w.kicked(this, 'forced');
      }
    }
    this.attached().writers.add(s);
    // a forced session also takes the device from holders outside conch (IPMI SOL)
    if (force) this.force(whoText(s.identity));
    return stolen ? others.map((w) => w.identity) : [];
  }

  private loseWrite(s: Session): void {
    if (this.att?.writers.delete(s)) this.notify(LINK_NOTE.departed(this.name, s.identity));
  }

  /** Unlinked without notices (the console is going away). */
  private unlink(s: Session): void {
    this.att?.readers.delete(s);
    this.att?.writers.delete(s);
    this.att?.links.delete(s);
    if (this.typist === s) this.typist = null;
  }

  /** readers ∪ writers, each once */
  private sessions(): ReadonlySet<Session> {
    if (this.writers.size === 0) return this.readers;
    const all = new Set(this.readers);
    for (const w of this.writers) all.add(w);
    return all;
  }

  // ---- input outages --------------------------------------------------------

  private jammed(from: Session | undefined): void {
    const jam: Jam = { paused: new Set(), stalled: false, timer: null, dropped: new Map() };
    this.jam = jam;
    if (from?.throttle?.(this, true)) jam.paused.add(from);
    // one timer per outage, none in normal running
    jam.timer = setTimeout(() => this.stalled(jam), this.stallMs);
    jam.timer.unref();
  }

  /** No drain for STALL_MS: let the paused writers go; excess input is dropped from now on. */
  private stalled(jam: Jam): void {
    jam.timer = null;
    if (this.jam !== jam) return;
    jam.stalled = true;
    this.dlog.info(`Console [${this.name}] has taken no input for ${timeDelta(this.stallMs)}: its writers are no longer paused`);
    this.release(jam);
  }

  private dropped(jam: Jam, n: number, from: Session | undefined): void {
    if (!from) return;
    let d = jam.dropped.get(from);
    if (!d) {
      if (jam.dropped.size === 0) this.dlog.info(`Console [${this.name}] is not reading: dropping client input`);
      d = { untold: 0, toldAt: 0 };
      jam.dropped.set(from, d);
    }
    d.untold += n;
    const now = Date.now();
    if (now - d.toldAt < DROP_NOTICE_MS) return;
    d.toldAt = now;
    this.tellDropped(from, d);
  }

  private tellDropped(s: Session, d: { untold: number }): void {
    if (d.untold === 0) return;
    s.notice(this, frameNotice(`Console [${this.name}] input dropped: ${d.untold} bytes (the console is not reading)`), false);
    d.untold = 0;
  }

  /** The outage is over (drained, down, stopped): writers resume, drops not yet told are. */
  private unjam(): void {
    const jam = this.jam;
    if (!jam) return;
    this.jam = null;
    if (jam.timer) clearTimeout(jam.timer);
    jam.timer = null;
    this.release(jam);
    for (const [s, d] of jam.dropped) this.tellDropped(s, d);
  }

  private release(jam: Jam): void {
    const paused = [...jam.paused];
    jam.paused.clear();
    for (const s of paused) s.throttle?.(this, false);
  }

  // ---- device side -------------------------------------------------------

  private fromDevice(data: Buffer): void {
    // a cluster node woken past its lease (SIGSTOP) must not log what its old session still delivers
    if (!fenceOk()) return;
    this.counters.bytesIn += data.length;
    // the log first: a slow client must never delay or lose log data
    this._log?.write(data);
    this._tap?.(data);
    this._replay.push(data);
    // the person typing sees the echo first: with 50 sessions joined, being
    // last behind 49 socket writes cost the typist a millisecond and more
    if (this.readers.size === 0) {
      // the unattended fleet: no iterator made per chunk (and a typist who left is not kept alive)
      this.typist = null;
      return;
    }
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
    if (!this.running || this.swapping || this._state === 'connecting' || this._state === 'up') return;
    if (!fenceOk()) return; // the cluster code stops it; never open a device meanwhile
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
    this.counters.connects++;
    this.setState('up');
    const msg = `Console [${this.name}] connected to ${this.device.label()}`;
    this.dlog.info(msg);
    this.notify(msg);
  }

  private onDown(reason: string): void {
    this.unjam(); // the device dropped its queue
    const wasUp = this._state === 'up';
    const label = this.device.label();
    this.lastError = reason;
    if (wasUp) {
      this.counters.disconnects++;
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
    if (s === this._state) return;
    this.since = new Date();
    this._state = s;
    this.events?.emit({ type: 'state', console: this.name, state: s, since: this.since, error: this.lastError });
  }
}

/**
 * A console's handler for one of its devices, as methods: one small object
 * per console where seven closures and their context were (a telnet
 * console's heap is mostly such small things, times thousands).
 */
class DeviceDoor implements DeviceHandler {
  constructor(
    private readonly c: Console,
    private readonly dev: Device,
  ) {}
  onData(b: Buffer): void {
    this.c.heardData(b);
  }
  onUp(): void {
    this.c.heard(this.dev, 'onUp');
  }
  onDown(reason: string): void {
    this.c.heard(this.dev, 'onDown', reason);
  }
  onReady(): void {
    this.c.heard(this.dev, 'onReady');
  }
  onNotice(text: string): void {
    this.c.heard(this.dev, 'onNotice', text);
  }
  onDrain(): void {
    this.c.heard(this.dev, 'onDrain');
  }
}
