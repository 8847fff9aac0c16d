// Who a web request comes from. Browsers log in (POST /api/v1/login) and get
// a session cookie (HttpOnly, SameSite=Strict, Secure over HTTPS, expiring);
// scripts send a bearer token. Without a users file, a loopback client needs
// no login at all, exactly as the conman port (its user is `anonymous`, and
// the access rules apply to that name). State-changing requests made with a
// cookie must carry the session's CSRF token in `X-CSRF-Token`, and a
// WebSocket opened with a cookie must come from the server's own origin.

import * as crypto from 'node:crypto';
import type * as http from 'node:http';
import type { AccessControl } from '../access/access-control.js';
import type { Identity } from '../engine/session.js';
import { cookies, HttpError } from './http-util.js';
import type { TokenStore } from './tokens.js';
import { peerHost } from '../protocol/handshake.js';

export const COOKIE = 'conch_session';
/** a session ends this long after its last use */
export const SESSION_IDLE_MS = 12 * 3600_000;
/** sessions kept at once; the least recently used goes first */
const MAX_SESSIONS = 10_000;
/** the user of a loopback client when there is no users file */
export const ANONYMOUS = 'anonymous';

interface WebLogin {
  user: string;
  groups: string[];
  csrf: string;
  lastUsed: number;
}

const hash = (t: string): string => crypto.createHash('sha256').update(t).digest('hex');

export function isLoopback(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || a.startsWith('127.');
}

export function sourceOf(req: http.IncomingMessage): { address: string; port: number } {
  const ip = req.socket.remoteAddress ?? 'unknown';
  return { address: ip.startsWith('::ffff:') ? ip.slice(7) : ip, port: req.socket.remotePort ?? 0 };
}

export class WebAuth {
  /** by the SHA-256 of the cookie's value */
  private readonly sessions = new Map<string, WebLogin>();

  constructor(
    private readonly access: AccessControl,
    private readonly tokens: TokenStore,
    /** the listener is HTTPS: cookies are Secure */
    private readonly secure: () => boolean,
  ) {}

  /**
   * The identity of a request, or null when it needs a login. `state`:
   * the request changes something (POST, DELETE, a WebSocket that may type),
   * so a cookie alone is not enough: the CSRF header (or, for a WebSocket,
   * the same origin) must come with it.
   */
  identify(req: http.IncomingMessage, state: 'read' | 'change' | 'socket'): Identity | null {
    const src = sourceOf(req);
    const base = { host: peerHost(src.address), tty: null, address: src.address, port: src.port, transport: 'web' as const };
    const authz = req.headers.authorization;
    if (authz) {
      const m = /^Bearer\s+(\S+)$/i.exec(authz);
      const rec = m ? this.tokens.verify(m[1]!) : null;
      if (!rec) throw new HttpError(401, 'invalid or revoked token', { 'www-authenticate': 'Bearer' });
      return { ...base, user: rec.user, groups: this.access.groupsOf(rec.user), auth: 'token' };
    }
    const sid = cookies(req).get(COOKIE);
    if (sid) {
      const key = hash(sid);
      const s = this.sessions.get(key);
      if (s && Date.now() - s.lastUsed < SESSION_IDLE_MS) {
        if (state === 'change' && req.headers['x-csrf-token'] !== s.csrf) throw new HttpError(403, 'missing or wrong X-CSRF-Token header');
        if (state === 'socket' && !sameOrigin(req)) throw new HttpError(403, 'cross-site WebSocket refused');
        s.lastUsed = Date.now();
        // most recently used last: eviction takes the oldest
        this.sessions.delete(key);
        this.sessions.set(key, s);
        return { ...base, user: s.user, groups: s.groups, auth: 'password' };
      }
      if (s) this.sessions.delete(key);
    }
    if (!this.access.hasUsers && isLoopback(req.socket.remoteAddress)) {
      if (state === 'socket' && req.headers.origin && !sameOrigin(req)) throw new HttpError(403, 'cross-site WebSocket refused');
      return { ...base, user: ANONYMOUS, groups: [], auth: 'none' };
    }
    return null;
  }

  /** Check a password (throttled as over TLS); a session cookie and its CSRF token on success. */
  async login(req: http.IncomingMessage, user: string, password: string): Promise<{ cookie: string; csrf: string; user: string }> {
    const src = sourceOf(req);
    const r = await this.access.authenticate({ transport: 'web', ...src, user, password: Buffer.from(password, 'utf8'), certUser: null });
    if (!r.ok) throw new HttpError(401, r.message);
    const sid = crypto.randomBytes(32).toString('base64url');
    const csrf = crypto.randomBytes(24).toString('base64url');
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(hash(sid), { user: r.user, groups: r.groups, csrf, lastUsed: Date.now() });
    const attrs = [`${COOKIE}=${sid}`, 'HttpOnly', 'SameSite=Strict', 'Path=/', `Max-Age=${SESSION_IDLE_MS / 1000}`];
    if (this.secure()) attrs.push('Secure');
    return { cookie: attrs.join('; '), csrf, user: r.user };
  }

  /** The session's CSRF token (for a page loaded after login), or null. */
  csrfOf(req: http.IncomingMessage): string | null {
    const sid = cookies(req).get(COOKIE);
    return sid ? (this.sessions.get(hash(sid))?.csrf ?? null) : null;
  }

  /** End the request's session; the cookie that clears it. */
  logout(req: http.IncomingMessage): string {
    const sid = cookies(req).get(COOKIE);
    if (sid) this.sessions.delete(hash(sid));
    return `${COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
  }
}

/** The request's Origin is the host it was sent to (a page of ours). */
function sameOrigin(req: http.IncomingMessage): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (!origin || !host) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}
