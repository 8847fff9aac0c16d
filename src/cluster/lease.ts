// The node's etcd lease, and from it the node's permission to act
// (src/util/fence.ts). One lease per node: every ownership key the node
// writes is bound to it, so when the node dies its consoles free themselves
// after the TTL.
//
// The rule that keeps two nodes off one BMC: a renewal sent at time t (our
// monotonic clock) proves the lease lives until at least t + TTL on etcd's
// side (etcd counts from when it received it, later than t). So this node
// may act until t + TTL − SAFETY_MS, and begins releasing its consoles
// RELEASE_MS earlier, so that their payloads are deactivated and logs closed
// while it still may. A renewal that fails changes nothing until then: a
// slow or briefly absent etcd causes no churn.

import type { Etcd } from './etcd.js';
import { monoMs, setFence } from '../util/fence.js';
import { oneLine } from './keys.js';

/** kept off the end of the lease: clock-rate differences, a late timer */
export const SAFETY_MS = 1000;
/** time given to releasing every console (IPMI Deactivate + Close, closing lines) before the fence closes */
export const RELEASE_MS = 2500;

export interface LeaseEvents {
  /** renewals failed for so long that the node must release everything now (the fence closes soon) */
  onExpiring(why: string): void;
  /** etcd says the lease is gone (expired or revoked): the node holds nothing */
  onLost(why: string): void;
}

export class NodeLease {
  id: string | null = null;
  /** monotonic ms until which this node may act */
  validUntil = 0;
  private timer: NodeJS.Timeout | null = null;
  private renewing = false;
  private expiring = false;
  private lastError = '';
  /** for status: when (wall clock) the lease was last renewed */
  renewedAt = 0;

  constructor(
    private readonly etcd: Etcd,
    readonly ttlSec: number,
    private readonly events: LeaseEvents,
  ) {}

  get everyMs(): number {
    // often, so that an etcd restart finds the last renewal recent: an outage of up to TTL − 4.5 s costs nothing
    return Math.max(500, (this.ttlSec * 1000) / 10);
  }

  /** a new lease (the fence opens when it is granted) */
  async grant(): Promise<string> {
    const t0 = monoMs();
    const g = await this.etcd.grant(this.ttlSec);
    this.id = g.id;
    this.expiring = false;
    this.extend(t0, g.ttl);
    this.schedule();
    return g.id;
  }

  private extend(sentAt: number, ttl: number): void {
    this.validUntil = sentAt + Math.min(ttl, this.ttlSec) * 1000 - SAFETY_MS;
    this.renewedAt = Date.now();
    setFence(this.validUntil);
  }

  private schedule(): void {
    if (this.timer) clearInterval(this.timer);
    // renew every TTL/10; check the deadline 4 times a second
    let last = 0;
    this.timer = setInterval(() => {
      const now = monoMs();
      if (this.id && !this.expiring && now >= this.validUntil - RELEASE_MS) {
        this.expiring = true;
        this.events.onExpiring(`the etcd lease could not be renewed since ${new Date(this.renewedAt).toISOString()}${this.lastError ? ` (${this.lastError})` : ''}`);
      }
      if (now - last >= this.everyMs) {
        last = now;
        void this.renew();
      }
    }, 250);
  }

  private async renew(): Promise<void> {
    const id = this.id;
    if (!id || this.renewing || this.expiring) return;
    this.renewing = true;
    const t0 = monoMs();
    try {
      const ttl = await this.etcd.keepAlive(id, Math.min(this.everyMs, 2000));
      if (this.id !== id) return;
      if (ttl <= 0) {
        this.id = null;
        setFence(0);
        this.events.onLost('etcd says the lease no longer exists');
        return;
      }
      // an answer that took longer than the fence had left extends nothing we may still use
      if (!this.expiring) this.extend(t0, ttl);
      this.lastError = '';
    } catch (e) {
      this.lastError = oneLine((e as Error).message);
    } finally {
      this.renewing = false;
    }
  }

  /** stop renewing; the fence is closed (nothing acts any more) */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.id = null;
    setFence(0);
  }

  /** after onExpiring: the lease is given up (revoked when etcd answers) and a new one will be granted */
  async abandon(): Promise<void> {
    const id = this.id;
    this.stop();
    if (id) await this.etcd.revoke(id).catch(() => {});
  }
}
