// How long to hold a password attempt back before checking it. Recent
// failures count against the source address (steeply: 250 ms doubling to
// 8 s) and against the user name (gently, capped at 2 s), so someone guessing
// a password is slowed to a crawl while its owner, from another address,
// still gets in within seconds. Failures expire after the window; both tables
// are bounded, dropping the entry that failed least recently.

import { parseIp } from './cidr.js';

export interface ThrottleOptions {
  /** the first failure's delay, doubled per further failure (ms) */
  baseMs?: number;
  /** most delay for an address (ms) */
  maxMs?: number;
  /** most delay for a user name (ms) */
  userMaxMs?: number;
  /** failures older than this are forgotten (ms) */
  windowMs?: number;
  /** addresses and user names tracked, each */
  maxEntries?: number;
  /** the clock (ms), for tests */
  now?: () => number;
}

interface Failure {
  t: number;
  /** the source's key: a user's failures from one address are cleared when it logs in from there */
  from: string;
}

/** enough to reach any cap: older failures beyond it change nothing */
const KEPT = 32;

/** One source per IPv4 address or IPv6 /64 (one host usually holds a whole /64). */
export function sourceKey(address: string): string {
  const ip = parseIp(address);
  if (!ip) return address.slice(0, 64);
  if (ip.v === 4) return ip.bytes.join('.');
  return `${Buffer.from(ip.bytes.subarray(0, 8)).toString('hex')}/64`;
}

/** a claimed name can be anything a client sends: bound what a table entry holds */
const userKey = (user: string): string => user.slice(0, 128);

export class AuthThrottle {
  readonly baseMs: number;
  private readonly maxMs: number;
  private readonly userMaxMs: number;
  private readonly windowMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;
  private readonly bySource = new Map<string, Failure[]>();
  private readonly byUser = new Map<string, Failure[]>();

  constructor(opts: ThrottleOptions = {}) {
    this.baseMs = opts.baseMs ?? 250;
    this.maxMs = opts.maxMs ?? 8000;
    this.userMaxMs = opts.userMaxMs ?? 2000;
    this.windowMs = opts.windowMs ?? 15 * 60_000;
    this.maxEntries = opts.maxEntries ?? 10_000;
    this.now = opts.now ?? Date.now;
  }

  /** Milliseconds to wait before checking this attempt's password. */
  delayFor(address: string, user: string): number {
    const n = this.recent(this.bySource, sourceKey(address));
    const m = this.recent(this.byUser, userKey(user));
    const bySource = n === 0 ? 0 : Math.min(this.maxMs, this.baseMs * 2 ** (n - 1));
    const byUser = m === 0 ? 0 : Math.min(this.userMaxMs, this.baseMs * 2 ** Math.floor((m - 1) / 2));
    return Math.max(bySource, byUser);
  }

  failed(address: string, user: string): void {
    const f = { t: this.now(), from: sourceKey(address) };
    this.add(this.bySource, f.from, f);
    this.add(this.byUser, userKey(user), f);
  }

  /** Clears the address's failures and the user's failures from that address only. */
  succeeded(address: string, user: string): void {
    const from = sourceKey(address);
    this.bySource.delete(from);
    const key = userKey(user);
    const list = this.byUser.get(key)?.filter((f) => f.from !== from);
    if (list && list.length > 0) this.byUser.set(key, list);
    else this.byUser.delete(key);
  }

  /** entries tracked (addresses, user names), for tests and status */
  get size(): { sources: number; users: number } {
    return { sources: this.bySource.size, users: this.byUser.size };
  }

  /** Failures within the window, forgetting older ones. */
  private recent(map: Map<string, Failure[]>, key: string): number {
    const list = map.get(key);
    if (!list) return 0;
    const since = this.now() - this.windowMs;
    let old = 0;
    while (old < list.length && list[old]!.t <= since) old++;
    if (old === list.length) {
      map.delete(key);
      return 0;
    }
    if (old > 0) list.splice(0, old);
    return list.length;
  }

  private add(map: Map<string, Failure[]>, key: string, f: Failure): void {
    this.recent(map, key);
    const list = map.get(key) ?? [];
    list.push(f);
    if (list.length > KEPT) list.shift();
    // re-insert so that the map's order is least recently failed first
    map.delete(key);
    if (map.size >= this.maxEntries) map.delete(map.keys().next().value!);
    map.set(key, list);
  }
}
