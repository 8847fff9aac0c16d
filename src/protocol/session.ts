// One attached client after a successful MONITOR or CONNECT: the raw byte
// stream in both directions and conman's 0xFF escapes from the client. The
// links to consoles (and their joined/stolen/departed notices) are the
// engine's: this session attaches, changes mode and detaches through them.
//
// Modes: MONITOR is a reader of one console (R/O); CONNECT to one console is
// reader and writer (R/W); CONNECT with BROADCAST to several is a writer of
// each (W/O) and so gets their notices but no output.

import type * as net from 'node:net';
import type { Console } from '../engine/console.js';
import type { Identity, KickReason, Session } from '../engine/session.js';
import { frameNotice } from '../util/notice.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import { framedReplay, NOTE } from './messages.js';
import type { AccessControl } from '../access/access-control.js';
import type { Right } from '../access/rights.js';
import { OutBuf } from './outbuf.js';
import { replayHistory, type HistoryNodes } from '../cluster/history.js';
import type { ResetRunner } from './reset.js';

/** conman's in-band escape byte and the commands that may follow it. */
export const ESC = 0xff;
const CMD = {
  BREAK: 0x42, // B
  DEL: 0x44, // D
  FORCE: 0x46, // F
  JOIN: 0x4a, // J
  REPLAY: 0x4c, // L
  MONITOR: 0x4d, // M
  QUIET: 0x51, // Q
  RESET: 0x52, // R
  SUSPEND: 0x5a, // Z
};
const DEL = Buffer.from([0x7f]);

export type Mode = 'monitor' | 'connect' | 'broadcast';

export interface ClientSessionOptions {
  mode: Mode;
  consoles: Console[];
  quiet: boolean;
  force: boolean;
  join: boolean;
  bufferBytes: number;
  dlog: DaemonLog;
  resets: ResetRunner;
  /** rights of each escape, and the audit log */
  access: AccessControl;
  /** for log lines: `<user@host:port>` */
  peer: string;
  /** a cluster node: a replay gathers the console's history from the other nodes too (src/cluster/history.ts) */
  history?: HistoryNodes | null;
}

export class ClientSession implements Session {
  readonly broadcast: boolean;
  private consoles: Console[];
  private writing = false;
  private quiet: boolean;
  private force: boolean;
  private gotEscape = false;
  private lastInput = Date.now();
  private readonly out: OutBuf;
  private closed = false;
  private readonly dlog: DaemonLog;
  /** consoles not taking this client's input: its socket is not read while any is here */
  private heldBy: Set<Console> | null = null;

  constructor(
    private readonly sock: net.Socket,
    readonly identity: Identity,
    private readonly opts: ClientSessionOptions,
  ) {
    this.broadcast = opts.mode === 'broadcast';
    this.consoles = opts.consoles;
    this.quiet = opts.quiet;
    this.force = opts.force;
    this.dlog = opts.dlog;
    this.out = new OutBuf(sock, opts.bufferBytes, (tag, n) => frameNotice(NOTE.lost(tag, n)));
  }

  /**
   * Link to the consoles (the OK line has been sent) and take over the
   * socket. `early` = bytes the client sent right after its request line.
   */
  start(early: Buffer): void {
    const sock = this.sock;
    sock.on('data', (b: Buffer) => this.guard('input', () => this.input(b)));
    // the client half-closed (`&.`): flush what is queued, then close
    sock.on('end', () => this.guard('end', () => this.finish()));
    sock.on('close', () => this.guard('close', () => this.detach()));
    sock.on('error', (e) => this.guard('error', () => {
      this.dlog.debug(`Client ${this.opts.peer}: ${e.message}`);
      this.detach();
    }));

    const { mode, access } = this.opts;
    if (mode === 'monitor') {
      const c = this.consoles[0];
      c.attach(this, 'monitor');
      this.checkState(c);
      this.dlog.info(`Client ${this.opts.peer} connected to [${c.name}] (read-only)`);
      access.record(this.identity, 'monitor', 'ok', { console: c.name });
    } else if (mode === 'connect') {
      const c = this.consoles[0];
      const how = this.force ? 'force' : this.opts.join ? 'join' : 'attach';
      const displaced = c.attach(this, this.writeMode());
      this.writing = true;
      this.checkState(c);
      this.dlog.info(`Client ${this.opts.peer} connected to [${c.name}]`);
      access.record(this.identity, how, 'ok', { console: c.name, ...(displaced.length ? { displaced: displaced.map(named) } : {}) });
    } else {
      for (const c of this.consoles) {
        c.attach(this, 'broadcast');
        this.checkState(c);
      }
      this.dlog.info(`Client ${this.opts.peer} connected to ${this.consoles.length} consoles (broadcast)`);
      access.record(this.identity, 'broadcast', 'ok', { consoles: this.consoles.map((c) => c.name) });
    }
    if (early.length > 0) this.input(early);
  }

  // ---- engine → client ------------------------------------------------------

  output(from: Console, data: Buffer): void {
    if (!this.closed) this.out.write(data, from.name);
  }

  notice(from: Console, framed: Buffer, info: boolean): void {
    if (this.closed || (info && this.quiet)) return;
    this.out.write(framed, from.name);
  }

  idleMs(): number {
    return Date.now() - this.lastInput;
  }

  /**
   * Back-pressure from a console that is not taking input: stop reading the
   * socket, as a terminal would, until it drains. A broadcast client is never
   * paused (the engine drops its excess input for that console instead).
   */
  throttle(from: Console, on: boolean): boolean {
    if (on) {
      if (this.broadcast || this.closed) return false;
      this.heldBy ??= new Set();
      if (this.heldBy.size === 0) this.sock.pause();
      this.heldBy.add(from);
      return true;
    }
    if (!this.heldBy?.delete(from) || this.heldBy.size > 0) return false;
    this.heldBy = null;
    if (!this.closed) this.sock.resume();
    return false;
  }

  kicked(from: Console, why: KickReason): void {
    if (why !== 'forced' && this.broadcast && this.consoles.length > 1) {
      // a broadcast goes on to the consoles that are left
      this.consoles = this.consoles.filter((c) => c !== from);
      if (this.heldBy?.has(from)) this.throttle(from, false);
      return;
    }
    this.finish();
  }

  /** Server shutdown: unlink and close once what is queued has been sent. */
  shutdown(): void {
    this.finish();
  }

  // ---- client → consoles ----------------------------------------------------

  /** Un-stuff 0xFF escapes; the escape state survives across reads. */
  private input(buf: Buffer): void {
    if (this.closed) return;
    this.lastInput = Date.now();
    let from = 0; // start of the current run of plain data
    let i = 0;
    for (; i < buf.length; i++) {
      const b = buf[i];
      if (this.gotEscape) {
        this.gotEscape = false;
        if (b === ESC) {
          from = i; // the second 0xFF starts the next run and is delivered as data
          continue;
        }
        from = i + 1;
        this.command(b);
        if (this.closed) return;
      } else if (b === ESC) {
        this.deliver(buf.subarray(from, i));
        this.gotEscape = true;
      }
    }
    if (!this.gotEscape) this.deliver(buf.subarray(from, i));
  }

  /** Consoles this client may write to right now. */
  private writable(): Console[] {
    if (this.broadcast) return this.consoles;
    return this.writing ? this.consoles : [];
  }

  private deliver(data: Buffer): void {
    if (data.length === 0) return;
    for (const c of this.writable()) c.input(data, this);
  }

  private command(b: number): void {
    switch (b) {
      case CMD.BREAK:
        this.escape('break', (c) => c.sendBreak());
        break;
      case CMD.DEL:
        for (const c of this.writable()) c.input(DEL, this);
        break;
      case CMD.FORCE:
        this.toggleWrite(true, false);
        break;
      case CMD.JOIN:
        this.toggleWrite(false, true);
        break;
      case CMD.MONITOR:
        this.toggleWrite(false, false);
        break;
      case CMD.REPLAY:
        this.replay();
        break;
      case CMD.QUIET:
        this.quiet = !this.quiet;
        // a confirmation quiet mode cannot suppress
        this.out.write(frameNotice(NOTE.quiet(this.quiet)), this.consoles[0]?.name ?? '');
        break;
      case CMD.RESET:
        this.escape('reset', (c) => this.opts.resets.reset(c, this.identity));
        break;
      case CMD.SUSPEND:
        this.out.suspend(!this.out.suspended);
        this.dlog.info(`Client ${this.opts.peer} ${this.out.suspended ? 'suspended' : 'resumed'}`);
        break;
      default:
        this.dlog.warn(`Received invalid escape '${String.fromCharCode(b)}' from ${this.opts.peer}`);
    }
  }

  /** &F, &J, &M: conman toggles write access whichever was typed (gaining it takes the right to). */
  private toggleWrite(force: boolean, _join: boolean): void {
    if (this.broadcast) return;
    const c = this.consoles[0];
    if (!this.writing && !this.may(c, force ? 'force' : 'attach', 'write access')) return;
    this.force = force;
    this.writing = !this.writing;
    const displaced = c.setMode(this, this.writing ? this.writeMode() : 'monitor');
    const action = !this.writing ? 'monitor' : force ? 'force' : 'join';
    this.opts.access.record(this.identity, action, 'ok', { console: c.name, ...(displaced.length ? { displaced: displaced.map(named) } : {}) });
  }

  /**
   * &B or &R on each console this client writes to, where the rules allow
   * it. A reader's escape does nothing (as with conman); one without the
   * right is told so.
   */
  private escape(right: 'break' | 'reset', act: (c: Console) => void): void {
    const targets = this.writable();
    if (targets.length === 0 && !this.broadcast && this.consoles[0]) this.may(this.consoles[0], right, right);
    for (const c of targets) {
      if (!this.may(c, right, right)) continue;
      act(c);
      this.opts.access.record(this.identity, right, 'ok', { console: c.name });
    }
  }

  /** Whether the rules give this client `right` on `c`; if not, it is told and the refusal audited. */
  private may(c: Console, right: Right, what: string): boolean {
    if (this.opts.access.allows(this.identity, c.name, right)) return true;
    this.out.write(frameNotice(NOTE.refused(c.name, what, right)), c.name);
    this.opts.access.denied(this.identity, right, { console: c.name });
    return false;
  }

  /** how this client takes write access: forced, or joined beside the writers there */
  private writeMode(): 'force' | 'join' {
    return this.force ? 'force' : 'join';
  }

  private replay(): void {
    if (this.broadcast) return;
    const c = this.consoles[0];
    const name = c.name;
    // the newest server replaybuffer= bytes (16 KiB unless set; conman replays 4096), read from the
    // log file: the output that arrives meanwhile waits behind it; one at a time
    const place = this.out.placeReplay();
    if (place) void replayHistory(c, this.opts.history, this.identity).then((data) => place(framedReplay(name, data), name));
  }

  // ---- links ----------------------------------------------------------------

  /** A down console: say so and let the engine retry at once. */
  private checkState(c: Console): void {
    if (c.poke()) this.notice(c, frameNotice(NOTE.down(c.name, c.status().label)), true);
  }

  /** Unlink from every console (departed notices for write access lost). */
  private detach(): void {
    if (this.closed) return;
    this.closed = true;
    // read again, so that the peer's close is seen; input is ignored from now on
    if (this.heldBy) {
      this.heldBy = null;
      this.sock.resume();
    }
    for (const c of this.consoles) c.detach(this);
    this.dlog.info(`Client ${this.opts.peer} disconnected`);
    this.opts.access.record(this.identity, 'detach', 'ok', this.consoles.length === 1 ? { console: this.consoles[0]!.name } : { consoles: this.consoles.map((c) => c.name) });
  }

  private finish(): void {
    this.detach();
    this.out.end();
  }

  /** Socket handlers must never throw into the event loop. */
  private guard(where: string, fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.dlog.err(`Client ${this.opts.peer}: ${where}: ${(e as Error).stack ?? String(e)}`);
      try {
        this.detach();
      } catch {
        /* already logged */
      }
      this.out.destroy();
    }
  }
}

/** `user@host` for an audit line */
const named = (i: Identity): string => `${i.user}@${i.address}`;
