// What the engine knows of a client attached to consoles: who it is and how
// to tell or let go of it. Every way in (the conman port, TLS, the web
// terminal, a cluster peer) attaches through Console.attach() with one of
// these, so notices, busy checks, access rules and the audit see one kind of
// thing whatever the transport.

import type { Console } from './console.js';

/** How the client reached the daemon. */
export type Transport = 'conman' | 'tls' | 'web' | 'cluster';

/** How the user name was established: claimed in conman's greeting, or proven. */
export type AuthMethod = 'claimed' | 'password' | 'certificate' | 'token' | 'none';

export interface Identity {
  user: string;
  /** the client's host as notices show it (`localhost` for loopback) */
  host: string;
  /** the terminal the client named in its greeting */
  tty: string | null;
  /** source address and port */
  address: string;
  port: number;
  /** the user's groups (users file), for access rules */
  groups: readonly string[];
  auth: AuthMethod;
  transport: Transport;
}

/**
 * How a session attaches to one console:
 *  - monitor: reads (R/O);
 *  - attach: reads and writes, the console having no writer (conman's plain connect);
 *  - join: reads and writes beside the writers already there;
 *  - force: reads and writes, the writers already there are let go ("stolen");
 *  - broadcast: writes only (one of several consoles), gets notices but no output.
 */
export type AttachMode = 'monitor' | 'attach' | 'join' | 'force' | 'broadcast';

/** Why the engine lets a session go. */
/** moved: a cluster node let the console go to another node (src/cluster/) */
export type KickReason = 'forced' | 'removed' | 'moved';

export interface Session {
  readonly identity: Identity;
  /** console output (readers only) */
  output(from: Console, data: Buffer): void;
  /** a framed `<ConMan>` notice; `info` notices are suppressed in quiet mode */
  notice(from: Console, framed: Buffer, info: boolean): void;
  /**
   * Console `from` is not taking input (on) / takes it again (off): stop or
   * resume reading this client's input. Returns whether the session paused
   * (a broadcast session does not: see Console.input). A session may be
   * held by several consoles; it reads again when none holds it.
   */
  throttle?(from: Console, on: boolean): boolean;
  /**
   * The engine has unlinked this session from `from` (another client forced
   * the console, or a reload removed it): close once flushed, or go on with
   * the other consoles of a broadcast.
   */
  kicked(from: Console, why: KickReason): void;
  /** ms since the client last sent anything (conman's "idle") */
  idleMs(): number;
}

/** One session's link to a console, as listings (busy lines, status, the API) show it. */
export interface ClientLink {
  identity: Identity;
  /** monitor: reads only; write: reads and writes; broadcast: writes only */
  mode: 'monitor' | 'write' | 'broadcast';
  since: Date;
  idleMs: number;
}

/** `<user@host>[ on tty]`: a client in conman's notices. */
export const whoText = (w: Pick<Identity, 'user' | 'host' | 'tty'>): string => `<${w.user}@${w.host}>${w.tty ? ` on ${w.tty}` : ''}`;
