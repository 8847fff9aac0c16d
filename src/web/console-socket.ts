// One browser (or script) attached to one console over a WebSocket: just
// another kind of engine session, through the same door as a conman client
// (Console.attach), with the same rights, notices and refusals.
//
// Server → client: binary frames are console output (the `<ConMan>` notices
// inside it, framed as for conman clients, so a terminal shows them);
// text frames are JSON: {type:"hello", console, mode, writers} once attached,
// {type:"mode", mode} after a change, {type:"closed", reason} before a close.
// Client → server: binary frames are keystrokes; text frames are JSON:
// {type:"input", data}, {type:"break"}, {type:"mode", mode}, {type:"replay"},
// {type:"resize", cols, rows} (accepted; consoles have no window size).
//
// A browser that reads slower than the console prints loses its own output
// (with a notice once it catches up); it never delays the log or others.

import type { WebSocket } from 'ws';
import type { Console } from '../engine/console.js';
import type { AttachMode, Identity, KickReason, Session } from '../engine/session.js';
import type { AccessControl } from '../access/access-control.js';
import type { Right } from '../access/rights.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { frameNotice } from '../util/notice.js';
import { framedReplay, NOTE } from '../protocol/messages.js';
import { replayHistory, type HistoryNodes } from '../cluster/history.js';

/** WebSocket close codes (4000-4999 are the application's) */
export const CLOSE = { denied: 4403, busy: 4409, notFound: 4404, stolen: 4001, removed: 4002, moved: 4003, bad: 4400 } as const;

/** a control message larger than this is refused */
const MAX_CONTROL = 64 * 1024;

export type SocketMode = 'monitor' | 'attach' | 'join' | 'force';

export interface ConsoleSocketOptions {
  access: AccessControl;
  dlog: DaemonLog;
  /** output queued for this client before it loses data (server clientbuffer=) */
  bufferBytes: number;
  /** a cluster node: the first screen and a replay gather the console's history from the other nodes too (src/cluster/history.ts) */
  history?: HistoryNodes | null;
  /** a cluster node: why this console cannot be had here (another node runs it), else null */
  elsewhere?: (name: string) => string | null;
}

/** The right a mode needs. */
export const rightFor = (mode: SocketMode): Right => (mode === 'monitor' ? 'monitor' : mode === 'force' ? 'force' : 'attach');

export class ConsoleSocket implements Session {
  private writing = false;
  private lastInput = Date.now();
  private lost = 0;
  private closed = false;
  private paused = 0;
  /**
   * While a replay is read from the log file (one at a time), what would be
   * sent waits here (frames of output, control messages) and goes after it;
   * null: no replay is being read.
   */
  private waiting: (Buffer | string)[] | null = null;
  private waitingBytes = 0;

  constructor(
    private readonly ws: WebSocket,
    readonly identity: Identity,
    private readonly console: Console,
    private readonly opts: ConsoleSocketOptions,
  ) {}

  /**
   * Attach in `mode` after the checks a conman request gets: the right for
   * the mode, and for a plain attach a console nobody writes to. Refusals
   * are a JSON message and a close with a code saying why.
   */
  start(mode: SocketMode): void {
    const c = this.console;
    const { access } = this.opts;
    const need = rightFor(mode);
    const away = this.opts.elsewhere?.(c.name);
    if (away) return this.refuse(CLOSE.moved, away);
    if (!access.allows(this.identity, c.name, need)) {
      access.denied(this.identity, need, { console: c.name });
      return this.refuse(CLOSE.denied, `Permission denied: ${this.identity.user} has no ${need} right on console [${c.name}]`);
    }
    if (mode === 'attach' && c.writerCount > 0) {
      const writers = c.clients().filter((l) => l.mode !== 'monitor').map((l) => `${l.identity.user}@${l.identity.host}`);
      return this.refuse(CLOSE.busy, `Console [${c.name}] is in use by ${writers.join(', ')}: monitor, join or force`);
    }
    this.ws.on('message', (data, isBinary) => this.guard(() => this.fromClient(data as Buffer, isBinary)));
    this.ws.on('close', () => this.guard(() => this.detach()));
    this.ws.on('error', () => this.guard(() => this.detach()));
    // recent output first, so the terminal's scrollback shows what led here
    this.replayFirst(false);
    const displaced = c.attach(this, mode as AttachMode);
    this.writing = mode !== 'monitor';
    c.poke();
    this.control({ type: 'hello', console: c.name, mode: this.mode(), state: c.state });
    access.record(this.identity, mode, 'ok', { console: c.name, ...(displaced.length ? { displaced: displaced.map((i) => `${i.user}@${i.address}`) } : {}) });
    this.opts.dlog.info(`Web client <${this.identity.user}@${this.identity.address}> connected to [${c.name}] (${mode})`);
  }

  // ---- engine → client ------------------------------------------------------

  output(_from: Console, data: Buffer): void {
    if (this.closed) return;
    if (this.waiting) {
      if (this.waitingBytes + data.length > this.opts.bufferBytes) this.lost += data.length;
      else {
        this.waiting.push(data);
        this.waitingBytes += data.length;
      }
      return;
    }
    if (this.ws.bufferedAmount > this.opts.bufferBytes) {
      this.lost += data.length;
      return;
    }
    if (this.lost > 0) {
      this.ws.send(frameNotice(NOTE.lost(this.console.name, this.lost)), { binary: true });
      this.lost = 0;
    }
    this.ws.send(data, { binary: true });
  }

  notice(from: Console, framed: Buffer, _info: boolean): void {
    this.output(from, framed);
  }

  throttle(_from: Console, on: boolean): boolean {
    const sock = (this.ws as unknown as { _socket?: { pause(): void; resume(): void } })._socket;
    if (!sock || this.closed) return false;
    if (on) {
      if (this.paused++ === 0) sock.pause();
      return true;
    }
    if (this.paused > 0 && --this.paused === 0) sock.resume();
    return false;
  }

  kicked(_from: Console, why: KickReason): void {
    this.detach();
    const how = { forced: [CLOSE.stolen, 'stolen', 'console taken by another client'], removed: [CLOSE.removed, 'removed', 'console removed'], moved: [CLOSE.moved, 'moved', 'console moved to another cluster node'] } as const;
    const [code, reason, text] = how[why];
    this.control({ type: 'closed', reason });
    this.ws.close(code, text);
  }

  idleMs(): number {
    return Date.now() - this.lastInput;
  }

  /**
   * The console's replay (read from its log file), sent before anything that
   * comes after this call; `framed`: between the begin and end notices (the
   * replay button), else bare (the first screen).
   */
  private replayFirst(framed: boolean): void {
    // one at a time: a page asking ten thousand times must not queue ten thousand reads
    if (this.waiting) return;
    const waiting: (Buffer | string)[] = (this.waiting = []);
    const name = this.console.name;
    void replayHistory(this.console, this.opts.history, this.identity).then((data) => {
      this.waiting = null;
      this.waitingBytes = 0;
      if (this.closed) return;
      const replay = framed ? framedReplay(name, data) : data;
      if (replay.length > 0) this.ws.send(replay, { binary: true });
      for (const x of waiting) this.ws.send(x, { binary: typeof x !== 'string' });
    });
  }

  // ---- client → console -----------------------------------------------------

  private fromClient(data: Buffer, isBinary: boolean): void {
    if (this.closed) return;
    this.lastInput = Date.now();
    if (isBinary) return this.type(data);
    if (data.length > MAX_CONTROL) return this.control({ type: 'error', message: 'control message too large' });
    let m: { type?: unknown; data?: unknown; mode?: unknown };
    try {
      m = JSON.parse(data.toString('utf8')) as typeof m;
    } catch {
      return this.control({ type: 'error', message: 'text frames must be JSON control messages' });
    }
    switch (m.type) {
      case 'input':
        if (typeof m.data === 'string') this.type(Buffer.from(m.data, 'utf8'));
        return;
      case 'break':
        return this.sendBreak();
      case 'mode':
        if (m.mode === 'monitor' || m.mode === 'join' || m.mode === 'force') return this.setMode(m.mode);
        return this.control({ type: 'error', message: 'mode must be monitor, join or force' });
      case 'replay':
        return this.replayFirst(true);
      case 'resize':
        return;
      default:
        return this.control({ type: 'error', message: `unknown message type ${JSON.stringify(m.type)}` });
    }
  }

  /** Keystrokes reach the console only from a writer (a monitor's are dropped, as with conman). */
  private type(data: Buffer): void {
    if (this.writing && data.length > 0) this.console.input(data, this);
  }

  private sendBreak(): void {
    const c = this.console;
    if (!this.writing) return this.control({ type: 'error', message: 'break needs write access (join or force first)' });
    if (!this.may('break', 'break')) return;
    c.sendBreak();
    this.opts.access.record(this.identity, 'break', 'ok', { console: c.name });
  }

  private setMode(mode: 'monitor' | 'join' | 'force'): void {
    const c = this.console;
    if (mode !== 'monitor' && !this.may(mode === 'force' ? 'force' : 'attach', 'write access')) return;
    const displaced = c.setMode(this, mode);
    this.writing = c.isWriter(this);
    this.control({ type: 'mode', mode: this.mode() });
    this.opts.access.record(this.identity, mode, 'ok', { console: c.name, ...(displaced.length ? { displaced: displaced.map((i) => `${i.user}@${i.address}`) } : {}) });
  }

  private may(right: Right, what: string): boolean {
    if (this.opts.access.allows(this.identity, this.console.name, right)) return true;
    this.output(this.console, frameNotice(NOTE.refused(this.console.name, what, right)));
    this.opts.access.denied(this.identity, right, { console: this.console.name });
    return false;
  }

  private mode(): 'monitor' | 'write' {
    return this.console.isWriter(this) ? 'write' : 'monitor';
  }

  private control(m: Record<string, unknown>): void {
    if (this.closed && m.type !== 'closed') return;
    if (this.waiting && !this.closed) this.waiting.push(JSON.stringify(m));
    else this.ws.send(JSON.stringify(m));
  }

  private refuse(code: number, message: string): void {
    this.ws.send(JSON.stringify({ type: 'error', message }));
    this.ws.close(code, message.slice(0, 120));
  }

  private detach(): void {
    if (this.closed) return;
    this.closed = true;
    this.console.detach(this);
    this.opts.access.record(this.identity, 'detach', 'ok', { console: this.console.name });
    this.opts.dlog.info(`Web client <${this.identity.user}@${this.identity.address}> disconnected from [${this.console.name}]`);
  }

  /** Socket handlers never throw into the event loop. */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.opts.dlog.err(`Web client <${this.identity.user}@${this.identity.address}>: ${(e as Error).stack ?? String(e)}`);
      this.ws.terminate();
    }
  }
}
