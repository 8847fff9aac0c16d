// conchd as one node of a cluster on etcd (docs/cluster.md): which consoles
// this node runs, and the handovers. Every node reads the same conman.conf,
// so every node knows every console; it runs those it owns in etcd and
// leaves the others stopped (listed, and proxied to their owner).
//
// Each second the node reads the cluster's keys (one range: no watch that
// a half-open connection could silently stall) and reconciles:
//   - a console assigned to this node (assign.ts) with no owner: claimed in
//     a transaction (owner key created only if absent, bound to our lease;
//     its create revision is the fencing token), then started;
//   - a console this node runs but that is assigned to another live node:
//     stopped (payload deactivated, log closed), then its owner key deleted
//     and a `released` mark written in one transaction — stop, then
//     handover, never both at once;
//   - a console this node runs whose owner key is gone or is not ours any
//     more: stopped at once.
// Safety against a node that cannot renew its lease is the lease's and the
// fence's (lease.ts, src/util/fence.ts).

import type { ConsoleRegistry } from '../engine/registry.js';
import type { Console } from '../engine/console.js';
import type { DaemonLog } from '../logging/daemon-log.js';
import type { SessionRecordEntry } from '../ipmi/session-record.js';
import type { SolHandover } from '../devices/index.js';
import { fenceOk, monoMs } from '../util/fence.js';
import { longTime, timeDelta } from '../util/notice.js';
import { Etcd, type EtcdKv, type EtcdTls } from './etcd.js';
import { TxnBatcher } from './txn-batch.js';
import { NodeLease } from './lease.js';
import { assign } from './assign.js';
import { heldValue, Keys, nodeValue, oneLine, ownerValue, releasedValue, type HeldValue, type NodeValue, type OwnerValue, type ReleasedValue } from './keys.js';

export interface ClusterOptions {
  endpoints: string[];
  tls: EtcdTls | null;
  prefix: string;
  node: string;
  /** host:port of this node's conman port, for peers and proxied clients */
  addr: string;
  ttlSec: number;
  /** how often the keys are read (ms) */
  pollMs?: number;
}

/** what the cluster needs of the daemon */
export interface ClusterHost {
  registry: ConsoleRegistry;
  dlog: DaemonLog;
  /** run `c` on this node: a fresh device (with `handover` for IPMI) and log; `note` is its first log line */
  own(c: Console, handover: SolHandover, note: string): void;
  /** stop `c` on this node: device released, log closed with `why` */
  disown(c: Console, why: string): Promise<void>;
}

interface Owner extends OwnerValue {
  lease: string;
  /** the key's create revision: the owner's fencing token */
  rev: number;
}

type Phase = 'joining' | 'member' | 'releasing' | 'rejoining' | 'leaving' | 'stopped';

/** claims and handovers run at most this many at once (their transactions go to etcd in batches: txn-batch.ts; a survivor's ~500 claims at once) */
const PARALLEL = 512;
/** after joining, how long the node watches the membership before it claims (nodes started together do not hand consoles back and forth) */
const SETTLE_MS = 2500;
/** a console whose holder's lease still lives after its key vanished: wait this much past the TTL */
const WAIT_MARGIN_MS = 2000;
/** how often the keys are read in full (between reads: the watch) */
const RESYNC_MS = 30_000;

export class Cluster {
  readonly node: string;
  addr: string;
  readonly keys: Keys;
  private readonly etcd: Etcd;
  /** the consoles' transactions (claims, handovers, SOL session lists), many per request */
  private readonly batch: TxnBatcher;
  private readonly lease: NodeLease;
  private phase: Phase = 'joining';
  private nodes = new Map<string, NodeValue>();
  /** last sign of life of every node seen (wall ms): the start of a dead node's gap */
  private readonly lastSeen = new Map<string, number>();
  private owners = new Map<string, Owner>();
  /** when each live node was first seen (monotonic ms): consoles are handed to a joining node once it is ready to claim */
  private readonly firstSeen = new Map<string, number>();
  /** the owner last seen of each console, kept after its key vanishes */
  private readonly lastOwner = new Map<string, Owner>();
  private released = new Map<string, ReleasedValue>();
  /** consoles this node runs, with their fencing tokens */
  private readonly mine = new Map<string, { rev: number; since: number }>();
  /** consoles with a claim or handover under way */
  private readonly busy = new Set<string>();
  /** consoles not to be claimed before this time (monotonic ms: a clock step must not shorten the wait), see WAIT_MARGIN_MS */
  private readonly notBefore = new Map<string, number>();
  private pollTimer: NodeJS.Timeout | null = null;
  private polling = false;
  private watcher: { close(): void } | null = null;
  /** the watch is running (else the next tick reads everything and starts one) */
  private watching = false;
  /** when the keys were last read in full (monotonic ms) */
  private readAt = 0;
  private reconcileTimer: NodeJS.Timeout | null = null;
  /** monotonic ms */
  private settleUntil = 0;
  private startedAt = Date.now();
  private readonly oldLeases: string[] = [];
  private lastPollError = '';
  private assignment: { sig: string; map: Map<string, string> } | null = null;
  private running = 0;
  private readonly queue: (() => Promise<void>)[] = [];
  /** the last range's revision, for status */
  revision = 0;
  /** the revision the owner keys in `owners` were read at: a claim after it is not in them yet */
  private ownersRev = 0;
  /** what etcd said of a lease's time to live, asked once for all the consoles it held */
  private readonly leaseLeft = new Map<string, { at: number; left: Promise<number> }>();

  constructor(
    readonly opts: ClusterOptions,
    private readonly host: ClusterHost,
  ) {
    this.node = opts.node;
    this.addr = opts.addr;
    this.keys = new Keys(opts.prefix);
    this.etcd = new Etcd(opts.endpoints, opts.tls);
    this.batch = new TxnBatcher(this.etcd);
    this.lease = new NodeLease(this.etcd, opts.ttlSec, {
      onExpiring: (why) => void this.releaseAll(why),
      onLost: (why) => void this.releaseAll(why),
    });
  }

  /** Join: a lease, our node key, then claims after SETTLE_MS. Resolves once joined (etcd retried until it answers). */
  async start(): Promise<void> {
    this.pollTimer = setInterval(() => void this.tick(), this.opts.pollMs ?? 1000);
    await this.join();
  }

  private async join(): Promise<void> {
    let told = '';
    let tries = 0;
    for (;;) {
      if (this.phase === 'stopped' || this.phase === 'leaving') return;
      try {
        const id = await this.lease.grant();
        await this.putNode();
        // leases of ours from before (revoked now that etcd answers: their keys go with them)
        for (const old of this.oldLeases.splice(0)) await this.etcd.revoke(old).catch(() => this.oldLeases.push(old));
        this.phase = 'member';
        this.settleUntil = monoMs() + SETTLE_MS;
        this.host.dlog.notice(`Cluster: node ${this.node} (${this.addr}) joined through ${this.opts.endpoints.join(',')} with lease ${id} (TTL ${this.opts.ttlSec} s)`);
        return;
      } catch (e) {
        this.lease.stop();
        // said once, and again each minute or when the reason changes
        const why = oneLine((e as Error).message);
        if (why !== told || ++tries % 60 === 0) this.host.dlog.warn(`Cluster: cannot join through ${this.opts.endpoints.join(',')}: ${why}; trying again every second`);
        told = why;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private async putNode(): Promise<void> {
    const v: NodeValue = { addr: this.addr, alive: Date.now(), started: this.startedAt };
    await this.etcd.put(this.keys.node(this.node), JSON.stringify(v), this.lease.id ?? undefined);
  }

  /** the node's name and address, the live nodes, this node's consoles */
  status(): { node: string; addr: string; phase: Phase; nodes: { node: string; addr: string }[]; mine: number; revision: number; error: string } {
    return {
      node: this.node,
      addr: this.addr,
      phase: this.phase,
      nodes: [...this.nodes].map(([node, v]) => ({ node, addr: v.addr })),
      mine: this.mine.size,
      revision: this.revision,
      error: this.lastPollError,
    };
  }

  /** who holds console `name` (null: nobody now), and that node's address */
  ownerOf(name: string): { node: string; addr: string | null } | null {
    if (this.mine.has(name)) return { node: this.node, addr: this.addr };
    const o = this.owners.get(name);
    if (!o) return null;
    return { node: o.node, addr: this.nodes.get(o.node)?.addr ?? null };
  }

  /** a new device's SOL handover for console `name` this node runs (a reload replacing its device), else undefined */
  handoverFor(name: string): SolHandover | undefined {
    const m = this.mine.get(name);
    return m ? this.handover(name, m.rev, null) : undefined;
  }

  /** the other live nodes with their addresses (a search asks each of them too) */
  peers(): { node: string; addr: string }[] {
    return [...this.nodes].filter(([n]) => n !== this.node).map(([node, v]) => ({ node, addr: v.addr }));
  }

  /**
   * A reload gave other etcd endpoints or TLS files (or the files changed)
   * with the same prefix, name and lease: if the new endpoints answer as
   * the same etcd cluster, the node's calls move to them in place — the
   * lease, the ownership keys and the consoles stay. false: another etcd
   * cluster, or the old endpoints no longer answer (then the lease cannot
   * be renewed there anyway): the daemon leaves and joins through the new
   * ones. Throws when the new endpoints cannot be asked: nothing changes.
   */
  async retarget(endpoints: string[], tls: EtcdTls | null): Promise<boolean> {
    const probe = new Etcd(endpoints, tls);
    try {
      const [now, then] = await Promise.allSettled([this.etcd.clusterId(), probe.clusterId()]);
      if (then.status === 'rejected') throw then.reason;
      if (now.status === 'rejected' || now.value !== then.value) return false;
    } finally {
      probe.close();
    }
    this.etcd.retarget(endpoints, tls);
    this.opts.endpoints = [...endpoints];
    this.opts.tls = tls;
    // the watch runs on a connection of its own to the old endpoint: the next tick reads everything and watches anew
    this.watching = false;
    return true;
  }

  /** the TLS files given differ from those in use (other paths, or the same paths with new contents: a renewed certificate) */
  tlsDiffers(tls: EtcdTls | null): boolean {
    return this.etcd.tlsDiffers(tls);
  }

  /** is `name` run by this node? */
  runs(name: string): boolean {
    return this.mine.has(name);
  }

  // ---- reading the keys ----------------------------------------------------
  //
  // A full read of the `nodes/`, `owner/` and `released/` keys (the `held`
  // ones, one per console, are read only when claiming) every RESYNC_MS,
  // and between reads the changes from a watch started at the read's
  // revision. The full read also restarts the watch, so a stream that went
  // quiet (a half-open connection) costs at most one period.

  /** each second: the full read when due, the node's heartbeat, and reconciling (settling, waits) */
  private async tick(): Promise<void> {
    if (this.polling || this.phase === 'stopped') return;
    this.polling = true;
    try {
      if (!this.watching || monoMs() - this.readAt >= RESYNC_MS) await this.fullRead();
      this.reconcile();
      if (this.phase === 'member' && this.lease.id) await this.putNode();
      this.lastPollError = '';
    } catch (e) {
      // etcd slow or away: nothing changes here; the lease decides when to let go
      const msg = oneLine((e as Error).message);
      if (msg !== this.lastPollError) this.host.dlog.warn(`Cluster: reading ${this.keys.prefix} from etcd failed: ${msg}`);
      this.lastPollError = msg;
    } finally {
      this.polling = false;
    }
  }

  private async fullRead(): Promise<void> {
    const parts = await Promise.all(['nodes/', 'owner/', 'released/'].map((k) => this.etcd.range(this.keys.prefix + k)));
    const rev = Math.min(...parts.map((p) => p.revision));
    this.nodes = new Map();
    this.owners = new Map();
    this.released = new Map();
    for (const kv of parts.flatMap((p) => p.kvs)) this.apply('put', kv);
    for (const n of this.firstSeen.keys()) if (!this.nodes.has(n)) this.firstSeen.delete(n);
    this.revision = rev;
    this.ownersRev = parts[1]!.revision;
    this.readAt = monoMs();
    // the changes from the oldest of the three reads on (replaying a change already read is harmless)
    this.watcher?.close();
    this.watching = true;
    const w = this.etcd.watch(
      this.keys.prefix,
      rev + 1,
      (events, at) => {
        if (this.watcher !== w) return;
        for (const e of events) this.apply(e.type, e.kv);
        this.revision = Math.max(this.revision, at);
        this.ownersRev = Math.max(this.ownersRev, at);
        this.reconcileSoon();
      },
      (why) => {
        if (this.watcher !== w) return;
        this.watching = false; // the next tick reads everything and watches again
        if (this.phase !== 'stopped' && this.phase !== 'leaving') this.host.dlog.debug(`Cluster: watch ended: ${why}`);
      },
    );
    this.watcher = w;
  }

  /** one key as read or as changed */
  private apply(type: 'put' | 'delete', kv: EtcdKv): void {
    const k = this.keys.parse(kv.key);
    if (!k) return;
    const now = Date.now();
    if (k.kind === 'nodes') {
      const v = type === 'put' ? nodeValue(kv) : null;
      if (!v) {
        this.nodes.delete(k.name);
        this.firstSeen.delete(k.name); // when it comes back it settles again
        return;
      }
      if (!this.nodes.has(k.name) && !this.firstSeen.has(k.name)) this.firstSeen.set(k.name, monoMs());
      this.nodes.set(k.name, v);
      this.lastSeen.set(k.name, Math.min(now, v.alive));
    } else if (k.kind === 'owner') {
      const v = type === 'put' ? ownerValue(kv) : null;
      if (!v) {
        this.owners.delete(k.name);
        return;
      }
      const o = { ...v, lease: kv.lease, rev: kv.createRevision };
      this.owners.set(k.name, o);
      this.lastOwner.set(k.name, o);
    } else if (k.kind === 'released') {
      const v = type === 'put' ? releasedValue(kv) : null;
      if (v) this.released.set(k.name, v);
      else this.released.delete(k.name);
    }
  }

  /** reconcile once the current batch of changes is in (a burst of claims is one pass) */
  private reconcileSoon(): void {
    if (this.reconcileTimer) return;
    this.reconcileTimer = setTimeout(() => {
      this.reconcileTimer = null;
      if (this.phase === 'member') this.reconcile();
    }, 50);
  }

  private desired(names: string[]): Map<string, string> {
    const live = [...this.nodes.keys()].sort();
    const sig = `${live.join('\0')}\n${names.length}:${names[0] ?? ''}:${names[names.length - 1] ?? ''}`;
    if (this.assignment?.sig !== sig) this.assignment = { sig, map: assign(names, live) };
    return this.assignment.map;
  }

  private reconcile(): void {
    if (this.phase !== 'member' || !this.nodes.has(this.node)) return;
    const names = this.host.registry.list().map((c) => c.name);
    const want = this.desired(names);
    const settled = monoMs() >= this.settleUntil;
    for (const name of names) {
      if (this.busy.has(name)) continue;
      const o = this.owners.get(name);
      const m = this.mine.get(name);
      if (m) {
        // (a claim newer than the read is not in it: not a loss)
        if ((!o || o.rev !== m.rev || o.node !== this.node) && m.rev <= this.ownersRev) {
          this.run(name, () => this.lose(name, 'its ownership key in etcd was removed or replaced'));
          continue;
        }
        const to = want.get(name);
        if (settled && to !== undefined && to !== this.node && this.nodes.has(to) && monoMs() - (this.firstSeen.get(to) ?? 0) >= SETTLE_MS)
          this.run(name, () => this.handOver(name, `handed over to node ${to}`));
      } else if (!o) {
        if (settled && want.get(name) === this.node && (this.notBefore.get(name) ?? 0) <= monoMs()) this.run(name, () => this.claim(name));
      } else if (o.node === this.node) {
        // ours but not run: from an earlier lease (etcd was away and kept it), or a claim whose answer was lost: let it go, to be claimed afresh
        this.run(name, () => this.dropKey(name, o.rev));
      }
    }
    // consoles a reload removed
    for (const [name, m] of this.mine) {
      if (!this.host.registry.get(name) && !this.busy.has(name)) {
        this.mine.delete(name);
        this.run(name, () => this.dropKey(name, m.rev));
      }
    }
  }

  /** run a claim or handover for `name`, PARALLEL at most at once */
  private run(name: string, job: () => Promise<void>): void {
    this.busy.add(name);
    this.queue.push(async () => {
      try {
        await job();
      } catch (e) {
        this.host.dlog.warn(`Cluster: console [${name}]: ${(e as Error).message}`);
      } finally {
        this.busy.delete(name);
      }
    });
    this.pump();
  }

  private pump(): void {
    while (this.running < PARALLEL && this.queue.length > 0) {
      const job = this.queue.shift()!;
      this.running++;
      void job().finally(() => {
        this.running--;
        this.pump();
      });
    }
  }

  // ---- claim, handover, loss ------------------------------------------------

  private async claim(name: string): Promise<void> {
    const c = this.host.registry.get(name);
    const lease = this.lease.id;
    if (!c || !lease || this.phase !== 'member') return;
    const prev = this.lastOwner.get(name);
    const rel = this.released.get(name);
    // handed back: the released mark is the last owner's
    const graceful = prev !== undefined && rel !== undefined && rel.rev === prev.rev;
    if (prev && !graceful && prev.lease !== lease) {
      // its key is gone: by its lease's end (then the holder stopped first, lease.ts) or by hand (then it may still act)
      const left = await this.timeToLive(prev.lease);
      if (left > 0) {
        const waitMs = (left + this.opts.ttlSec) * 1000 + WAIT_MARGIN_MS;
        this.notBefore.set(name, monoMs() + waitMs);
        this.host.dlog.warn(`Console [${name}] ownership key of node ${prev.node} vanished while its lease lives: not opened before ${timeDelta(waitMs)}`);
        return;
      }
    }
    const at = Date.now();
    const t = await this.batch.txn(
      [{ key: this.keys.owner(name), target: 'CREATE', createRevision: 0 }],
      [{ put: this.keys.owner(name), value: JSON.stringify({ node: this.node, at }), lease }, { get: this.keys.held(name) }, { del: this.keys.released(name) }],
    );
    if (!t.succeeded) return; // another node was first
    const rev = t.revision;
    if (!fenceOk() || this.phase !== 'member' || this.lease.id !== lease) {
      await this.dropKey(name, rev);
      return;
    }
    this.notBefore.delete(name);
    this.mine.set(name, { rev, since: at });
    this.owners.set(name, { node: this.node, at, lease, rev });
    const held = heldValue(t.gets[0] ?? null);
    // a node new here knows no last owner: the released mark tells a handback if no holder wrote after it
    const handedBack = graceful || (prev === undefined && rel !== undefined && (!held || held.at <= rel.at));
    const from = prev?.node ?? (handedBack ? rel!.node : (held?.node ?? null));
    const ho = this.handover(name, rev, held);
    // `held` says we hold it now, still naming the sessions we inherit; queued before any the device will publish
    ho.onSessions(held?.sessions ?? []);
    this.host.own(c, ho, this.takeoverNote(name, from, at, handedBack ? rel! : null, held));
  }

  /** a lease's seconds to live (-1: gone), asked at most once a second whatever the number of consoles it held */
  private timeToLive(lease: string): Promise<number> {
    const now = monoMs();
    const known = this.leaseLeft.get(lease);
    if (known && now - known.at < 1000) return known.left;
    for (const [l, k] of this.leaseLeft) if (now - k.at >= 1000) this.leaseLeft.delete(l);
    const left = this.etcd.timeToLive(lease);
    this.leaseLeft.set(lease, { at: now, left });
    left.catch(() => this.leaseLeft.delete(lease));
    return left;
  }

  /** `Console [x] taken over by node B from node A at T after a gap of N s` (or held first) */
  private takeoverNote(name: string, from: string | null, at: number, rel: ReleasedValue | null, held: HeldValue | null): string {
    const when = longTime(new Date(at));
    if (from === null) return `Console [${name}] held by node ${this.node} since ${when}`;
    // the gap starts when the previous holder last acted: its release, else its last sign of life
    const lastAct = rel?.at ?? Math.max(this.lastSeen.get(from) ?? 0, held?.node === from ? held.at : 0);
    const gap = lastAct > 0 ? `after a gap of ${timeDelta(Math.max(0, at - lastAct))}` : 'after a gap of unknown length';
    if (from === this.node) return `Console [${name}] held again by node ${this.node} at ${when} ${gap}`;
    return `Console [${name}] taken over by node ${this.node} from node ${from} at ${when} ${gap}`;
  }

  /** what the device gets: the previous holder's SOL sessions, and where to publish ours (written one at a time, in order: a later list never loses to an earlier one) */
  private handover(name: string, rev: number, held: HeldValue | null): SolHandover {
    let pending: SessionRecordEntry[] | null = null;
    let writing = false;
    const publish = async (): Promise<void> => {
      writing = true;
      try {
        while (pending) {
          const list = pending;
          pending = null;
          if (this.mine.get(name)?.rev !== rev) return;
          await this.putHeld(name, rev, list).catch(() => {});
        }
      } finally {
        writing = false;
      }
    };
    return {
      earlier: held?.sessions ?? [],
      onSessions: (list) => {
        pending = list;
        if (!writing) void publish();
      },
    };
  }

  /** P held/NAME, only while we hold token `rev` */
  private async putHeld(name: string, rev: number, sessions: SessionRecordEntry[]): Promise<void> {
    await this.batch.txn(
      [{ key: this.keys.owner(name), target: 'CREATE', createRevision: rev }],
      [{ put: this.keys.held(name), value: JSON.stringify({ node: this.node, at: Date.now(), sessions }) }],
      [],
      true,
    );
  }

  /** graceful: stop the console here, then give the key back with a `released` mark */
  private async handOver(name: string, why: string): Promise<void> {
    const m = this.mine.get(name);
    const c = this.host.registry.get(name);
    if (!m) return;
    if (c) await this.host.disown(c, why);
    this.mine.delete(name);
    await this.batch.txn(
      [{ key: this.keys.owner(name), target: 'CREATE', createRevision: m.rev }],
      [{ del: this.keys.owner(name) }, { put: this.keys.released(name), value: JSON.stringify({ node: this.node, rev: m.rev, at: Date.now() }) }],
    );
    this.owners.delete(name);
  }

  /** our ownership ended without us: stop at once (the fence, if closed, keeps the BMC and the log untouched) */
  private async lose(name: string, why: string): Promise<void> {
    const c = this.host.registry.get(name);
    this.mine.delete(name);
    this.host.dlog.warn(`Console [${name}] stopped on node ${this.node}: ${why}`);
    if (c) await this.host.disown(c, why);
  }

  private async dropKey(name: string, rev: number): Promise<void> {
    await this.batch.txn([{ key: this.keys.owner(name), target: 'CREATE', createRevision: rev }], [{ del: this.keys.owner(name) }]);
  }

  /** the lease is ending or gone: stop every console, give the lease up, join again */
  private async releaseAll(why: string): Promise<void> {
    if (this.phase !== 'member' && this.phase !== 'joining') return;
    this.phase = 'releasing';
    this.host.dlog.err(`Cluster: node ${this.node} releases its ${this.mine.size} console${this.mine.size === 1 ? '' : 's'}: ${why}`);
    const names = [...this.mine.keys()];
    this.mine.clear();
    await Promise.all(
      names.map((n) => {
        const c = this.host.registry.get(n);
        return c ? this.host.disown(c, `this node could not renew its cluster lease`).catch(() => {}) : Promise.resolve();
      }),
    );
    if (this.lease.id) this.oldLeases.push(this.lease.id);
    this.lease.stop();
    this.phase = 'rejoining';
    await this.join();
  }

  /**
   * Leave the cluster (conchd stopping): our node key goes first, so the
   * others count us out, then every console is handed over.
   */
  async leave(): Promise<void> {
    if (this.phase === 'stopped') return;
    const wasMember = this.phase === 'member';
    this.phase = 'leaving';
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.reconcileTimer) clearTimeout(this.reconcileTimer);
    this.watcher?.close();
    this.watcher = null;
    if (wasMember && fenceOk()) {
      await this.etcd.txn([], [{ del: this.keys.node(this.node) }]).catch(() => {});
      const names = [...this.mine.keys()];
      await Promise.all(names.map((n) => this.handOver(n, `node ${this.node} leaving the cluster`).catch(() => {})));
      const id = this.lease.id;
      if (id) await this.etcd.revoke(id).then(() => void 0, () => void this.oldLeases.push(id));
      this.host.dlog.notice(`Cluster: node ${this.node} left the cluster, ${names.length} console${names.length === 1 ? '' : 's'} handed over`);
    }
    this.lease.stop();
    this.phase = 'stopped';
    this.etcd.close();
  }

  /** leases of this node etcd could not be told to revoke (a reload's next Cluster revokes them when it joins: revokeOnJoin) */
  leasesLeft(): string[] {
    return [...this.oldLeases];
  }

  /** leases of this node's earlier membership (a reload): revoked when this one joins, so their ownership keys go before any claim */
  revokeOnJoin(ids: string[]): void {
    this.oldLeases.push(...ids);
  }
}

