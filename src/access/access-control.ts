// Who may do what, in one place for every way in (the conman port, TLS, later
// the web): who a connecting client is (claimed, password, certificate), the
// rights the rules give it on a console, and the audit line of every
// decision. Without a rules file everything is allowed, as conman does, so an
// upgrade changes nothing until an operator opts in (docs/access.md).

import type { PlainAccess, ServerConfig } from '../config/types.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import type { AuthMethod, Identity, Transport } from '../engine/session.js';
import { AccessRules } from './rules.js';
import { UsersFile } from './users.js';
import { Limiter } from '../util/limiter.js';
import { AuthThrottle, sourceKey } from './throttle.js';
import { AuditLog, type AuditAction, type AuditEvent } from './audit.js';
import { RIGHTS, type Right } from './rights.js';

const EVERYTHING: ReadonlySet<Right> = new Set(RIGHTS);
/**
 * Password checks at once, and waiting: scrypt runs on libuv's pool (4
 * threads), which the daemon's file I/O shares; two leave it room.
 */
const VERIFY_LIMITER = new Limiter(2, 256);
const MONITOR_ONLY: ReadonlySet<Right> = new Set<Right>(['monitor']);
const NOTHING: ReadonlySet<Right> = new Set<Right>();

/** What a refused client reads (conman's ERROR CODE=4): never whether the user exists. */
export const AUTH_MSG = {
  required: 'Authentication required: give a password (conch asks for it) or a client certificate',
  failed: 'Authentication failed',
  plainPassword: 'Passwords are accepted only over TLS (conch --tls)',
  plainClosed: 'This port is closed to clients (server plainaccess=none): use conch --tls',
};

export interface Credentials {
  transport: Transport;
  address: string;
  port: number;
  /** the greeting's USER */
  user: string;
  /** the greeting's PASSWORD (TLS only), null when none */
  password: Buffer | null;
  /** the CN of a client certificate the TLS layer verified, null when none */
  certUser: string | null;
}

export type AuthResult = { ok: true; user: string; auth: AuthMethod; groups: string[] } | { ok: false; message: string };

/** The parts of an audit line that come from the identity. */
function whoFields(id: Pick<Identity, 'user' | 'auth' | 'transport' | 'address' | 'port'>): Pick<AuditEvent, 'user' | 'auth' | 'transport' | 'source' | 'port'> {
  return { user: id.user, auth: id.auth, transport: id.transport, source: id.address, port: id.port };
}

export class AccessControl {
  private users: UsersFile | null = null;
  private rules: AccessRules | null = null;
  private plain: PlainAccess = 'rw';
  private audit: AuditLog;
  private auditFile: string | null;
  private readonly throttle = new AuthThrottle();
  /**
   * Password checks from one source run one after the other: attempts sent
   * in parallel each wait for the ones before, so they cannot dodge the
   * delay that those attempts' failures add.
   */
  private readonly inLine = new Map<string, Promise<unknown>>();

  /** Reads the users and rules files; an error in either throws (the daemon does not start half-protected). */
  constructor(
    server: ServerConfig,
    private readonly dlog: DaemonLog,
  ) {
    this.load(server);
    this.auditFile = server.auditLog;
    this.audit = this.openAudit(server.auditLog);
  }

  /**
   * A reload: the files are read again (also when their names did not
   * change: an operator edits them in place). One with errors is reported
   * and the rules or users in force stay; the audit log is reopened.
   */
  reconfigure(server: ServerConfig): void {
    try {
      this.load(server);
    } catch (e) {
      for (const line of (e as Error).message.split('\n')) this.dlog.err(`Reload: ${line}`);
      this.dlog.err('Reload: the users and access rules in force stay as they were');
      this.plain = server.plainAccess;
    }
    if (server.auditLog !== this.auditFile) {
      this.audit.close();
      this.auditFile = server.auditLog;
      this.audit = this.openAudit(server.auditLog);
    } else this.audit.reopen();
  }

  /** SIGHUP's reopen (logrotate) when the configuration could not be read. */
  reopen(): void {
    this.audit.reopen();
  }

  close(): void {
    this.audit.close();
  }

  private load(server: ServerConfig): void {
    const users = server.usersFile ? UsersFile.load(server.usersFile, (m) => this.dlog.warn(m), { limiter: VERIFY_LIMITER }) : null;
    const rules = server.accessFile ? AccessRules.load(server.accessFile) : null;
    this.users = users;
    this.rules = rules;
    this.plain = server.plainAccess;
  }

  private openAudit(file: string | null): AuditLog {
    return new AuditLog(file, (m) => this.dlog.err(`Audit log: ${m}`), { onResume: (m) => this.dlog.notice(`Audit log: ${m}`) });
  }

  /**
   * Who a client is. Over the plain port: the name its greeting claims (as
   * conman), never a password. Over TLS: a verified client certificate's CN,
   * else, with a users file, a password checked after a delay that grows
   * with recent failures; without one, the claimed name. Groups come from
   * the users file for every kind of identity.
   */
  async authenticate(c: Credentials, signal?: AbortSignal): Promise<AuthResult> {
    if (c.transport === 'conman') {
      if (this.plain === 'none') return this.refuse(c, AUTH_MSG.plainClosed, 'plain port closed');
      if (c.password !== null) return this.refuse(c, AUTH_MSG.plainPassword, 'password over plain TCP');
      return this.ok(c.user, 'claimed');
    }
    if (c.certUser !== null) return this.ok(c.certUser, 'certificate');
    const users = this.users;
    if (!users) return this.ok(c.user, 'claimed');
    if (c.password === null) return { ok: false, message: AUTH_MSG.required };
    const key = sourceKey(c.address);
    const before = (this.inLine.get(key) ?? Promise.resolve()).catch(() => undefined);
    const mine = before.then(() => this.checkPassword(users, c, c.password!, signal));
    this.inLine.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.inLine.get(key) === mine) this.inLine.delete(key);
    }
  }

  private async checkPassword(users: UsersFile, c: Credentials, password: Buffer, signal?: AbortSignal): Promise<AuthResult> {
    // a client that left while waiting in line is not checked (nor counted)
    if (signal?.aborted) return { ok: false, message: AUTH_MSG.failed };
    const wait = this.throttle.delayFor(c.address, c.user);
    if (wait > 0) await sleep(wait, signal);
    if (signal?.aborted) return { ok: false, message: AUTH_MSG.failed };
    if (await users.verify(c.user, password)) {
      this.throttle.succeeded(c.address, c.user);
      return this.ok(c.user, 'password');
    }
    this.throttle.failed(c.address, c.user);
    await sleep(this.throttle.baseMs);
    return this.refuse(c, AUTH_MSG.failed, 'wrong user or password');
  }

  private ok(user: string, auth: AuthMethod): AuthResult {
    return { ok: true, user, auth, groups: this.users?.groupsOf(user) ?? [] };
  }

  private refuse(c: Credentials, message: string, detail: string): AuthResult {
    this.dlog.notice(`Client <${c.user}@${c.address}:${c.port}> refused: ${detail}`);
    this.audit.write({ action: 'auth-failed', user: c.user, auth: 'none', transport: c.transport, source: c.address, port: c.port, result: 'failed', detail });
    return { ok: false, message };
  }

  /** A users file is configured: logins need a password (or a certificate, or a token). */
  get hasUsers(): boolean {
    return this.users !== null;
  }

  /** The groups the users file gives `user` (none without one). */
  groupsOf(user: string): string[] {
    return this.users?.groupsOf(user) ?? [];
  }

  /** Rules are in force (otherwise everyone may do everything, as with conman). */
  get enforcing(): boolean {
    return this.rules !== null || this.plain !== 'rw';
  }

  /** What `id` may do on console `name`: the first matching rule's rights, capped by plainaccess on the plain port. */
  rightsFor(id: Identity, name: string): ReadonlySet<Right> {
    const rights = this.rules ? this.rules.rightsFor(id, name) : EVERYTHING;
    if (id.transport !== 'conman' || this.plain === 'rw') return rights;
    if (this.plain === 'none') return NOTHING;
    return rights.has('monitor') ? MONITOR_ONLY : NOTHING;
  }

  allows(id: Identity, name: string, right: Right): boolean {
    return this.rightsFor(id, name).has(right);
  }

  /** One audit line of an action by `id`. */
  record(id: Identity, action: AuditAction, result: AuditEvent['result'], more: Partial<AuditEvent> = {}): void {
    this.audit.write({ ...whoFields(id), action, result, ...more });
  }

  /** A refusal for lack of `missing`: audited, and said in the daemon log. */
  denied(id: Identity, missing: Right, more: Partial<AuditEvent> = {}): void {
    this.dlog.notice(`Client <${id.user}@${id.address}:${id.port}> denied ${missing}${more.console ? ` on [${more.console}]` : ''}`);
    this.record(id, 'denied', 'denied', { missing, ...more });
  }
}

/** a pause that ends early when `signal` aborts */
const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((r) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
