// How many clients the listener admits: `server maxclients=` over all
// client connections, `server maxclientsperhost=` per source address, and
// never so many that clients take the descriptors logs and devices need.
// Refusals are logged rate-limited, so a flood cannot flood the log too.

import * as fs from 'node:fs';
import type { DaemonLog } from '../logging/daemon-log.js';

/** an operator can always get in, whatever the descriptor limit says */
export const MIN_CLIENT_CAP = 16;
/** one refusal line per this long, with the count since the last */
export const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** The address a limit counts by: an IPv4-mapped IPv6 address is its IPv4 one. */
export function clientHost(addr: string | undefined): string {
  if (!addr) return 'unknown';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

/** The soft "Max open files" limit from /proc/self/limits; Infinity if unlimited or unknown. */
export function softFdLimit(limitsText?: string): number {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return Infinity;
    }
  }
  const m = /^Max open files\s+(\S+)/m.exec(text);
  if (!m || m[1] === 'unlimited') return Infinity;
  const n = Number(m[1]);
  return Number.isFinite(n) && n > 0 ? n : Infinity;
}

/** Client connections admitted at once: maxclients, less if the descriptor limit leaves less room. */
export function clientCap(maxClients: number, fdLimit: number, reservedFds: number): number {
  return Math.min(maxClients, Math.max(MIN_CLIENT_CAP, fdLimit - reservedFds));
}

/** Refusals, written as one line per interval with a count and the busiest sources. */
export class RefusalLog {
  private count = 0;
  private readonly byHost = new Map<string, number>();
  private readonly reasons = new Set<string>();
  private lastLine = -Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly dlog: DaemonLog,
    private readonly intervalMs = REFUSAL_LOG_INTERVAL_MS,
  ) {}

  refused(host: string, reason: string): void {
    this.count++;
    this.byHost.set(host, (this.byHost.get(host) ?? 0) + 1);
    this.reasons.add(reason);
    if (this.timer) return;
    const wait = this.lastLine + this.intervalMs - Date.now();
    if (wait <= 0) this.flush();
    else this.timer = setTimeout(() => this.flush(), wait).unref();
  }

  /** Write what is pending (also at shutdown). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.count === 0) return;
    const top = [...this.byHost].sort((a, b) => b[1] - a[1]);
    const from = top.slice(0, 5).map(([h, n]) => `${h} (${n})`).join(', ') + (top.length > 5 ? `, ${top.length - 5} more` : '');
    const n = this.count;
    this.dlog.warn(`Refused ${n} client connection${n === 1 ? '' : 's'} (${[...this.reasons].join('; ')}) from ${from}`);
    this.count = 0;
    this.byHost.clear();
    this.reasons.clear();
    this.lastLine = Date.now();
  }
}
