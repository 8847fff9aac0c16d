// Many consoles' small transactions in few requests. A failover hands a
// survivor hundreds of consoles at once; one etcd request per claim (and per
// published SOL session list) made the claims, not the BMCs, the slow part
// (25-110 claims a second per survivor, etcd at 20-29 CPU s/min). Requests
// gathered in one event-loop turn go out together as etcd's nested
// transactions, each still with its own comparison and outcome.

import type { Compare, Etcd, Op, SubTxn, TxnResult } from './etcd.js';

/** transactions per request: etcd allows 128 operations per level (--max-txn-ops) */
const MAX_BATCH = 64;
/** requests of batches in flight at once (a survivor's ~500 claims: one round trip) */
const MAX_IN_FLIGHT = 8;

interface Pending {
  t: SubTxn;
  later: boolean;
  keys: string[];
  resolve(r: TxnResult): void;
  reject(e: unknown): void;
}

/** the keys a transaction writes (etcd refuses a request in which two transactions write one key) */
function writes(t: SubTxn): string[] {
  const keys: string[] = [];
  for (const o of [...t.success, ...(t.failure ?? [])]) {
    if ('put' in o) keys.push(o.put);
    else if ('del' in o) keys.push(o.del);
  }
  return keys;
}

export class TxnBatcher {
  private queue: Pending[] = [];
  private scheduled = false;
  private inFlight = 0;
  /** keys written by requests in flight: a later transaction on one of them waits, so that they apply in order */
  private readonly busyKeys = new Set<string>();
  /** queued transactions that may wait behind the others (`queue`'s go first) */
  private lazy: Pending[] = [];

  constructor(private readonly etcd: Etcd) {}

  /**
   * As Etcd.txn, sent with the others of this turn. `later`: it may wait
   * behind the others (a SOL session list, wanted only by the next owner:
   * a failover's claims go first).
   */
  txn(compare: Compare[], success: Op[], failure: Op[] = [], later = false): Promise<TxnResult> {
    const t: SubTxn = { compare, success, failure };
    return new Promise((resolve, reject) => {
      (later ? this.lazy : this.queue).push({ t, keys: writes(t), resolve, reject, later });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.send();
    });
  }

  private send(): void {
    while ((this.queue.length > 0 || this.lazy.length > 0) && this.inFlight < MAX_IN_FLIGHT) {
      const batch: Pending[] = [];
      const written = new Set(this.busyKeys);
      const rest: Pending[] = [];
      const restLazy: Pending[] = [];
      for (const p of [...this.queue, ...this.lazy]) {
        if (batch.length >= MAX_BATCH || p.keys.some((k) => written.has(k))) (p.later ? restLazy : rest).push(p);
        else {
          batch.push(p);
          for (const k of p.keys) written.add(k);
        }
      }
      this.queue = rest;
      this.lazy = restLazy;
      if (batch.length === 0) return; // all wait for keys in flight
      const keys = batch.flatMap((p) => p.keys);
      for (const k of keys) this.busyKeys.add(k);
      this.inFlight++;
      this.etcd
        .txnMany(batch.map((p) => p.t))
        .then(
          (rs) => batch.forEach((p, i) => p.resolve(rs[i]!)),
          (e: unknown) => batch.forEach((p) => p.reject(e)),
        )
        .finally(() => {
          for (const k of keys) this.busyKeys.delete(k);
          this.inFlight--;
          this.send();
        });
    }
  }
}
