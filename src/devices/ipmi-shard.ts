// IPMI consoles on IPMI threads. With a thousand SOL consoles, the UDP
// sends, integrity checks and decryption of their packets kept the main
// thread busy a third of the time, and a keystroke that arrived meanwhile
// waited for it. Each IPMI thread (ipmi-shard-worker.ts) owns a UDP socket
// and a share of the consoles and runs the same IpmiDevice as the main
// thread would; the main thread keeps the logs and the clients and gets each
// thread's output in batches of up to 10 ms (a typed-at console's at once).
//
// ShardedIpmiDevice is the main thread's stand-in for one such console.

import { Worker } from 'node:worker_threads';
import * as os from 'node:os';
import type { SolSteal } from '../config/types.js';
import { INPUT_HIGH_WATER, type Device, type DeviceHandler } from './device.js';
import { heldDetail, ipmiLabel, IPMI_BACKOFF, type IpmiSpec } from './ipmi.js';
import type { ShardEvents, ToShard } from './ipmi-shard-protocol.js';

/** IPMI consoles per thread when `ipmithreads` is not set, up to one thread per CPU */
const CONSOLES_PER_THREAD = 500;

/**
 * How many IPMI threads `ipmithreads=auto` gives `n` IPMI consoles: none
 * below 500 (a thread costs ~40 MiB, and a few hundred consoles leave the
 * main thread idle enough), then one per 500, at least two, at most one per
 * CPU. Measured at 1,000 consoles on 2 CPUs (bench/fleet.ts): one thread did
 * not make keystroke echoes faster than none; two did, as each is busy half
 * as long at a time.
 */
export function autoIpmiThreads(n: number, cpus = os.availableParallelism()): number {
  if (n < CONSOLES_PER_THREAD) return 0;
  return Math.min(cpus, Math.max(2, Math.ceil(n / CONSOLES_PER_THREAD)));
}

interface Pending {
  done: (error: string | null) => void;
}

/** One IPMI thread, started at its first console's first connect and again if it dies. */
class Shard {
  private worker: Worker | null = null;
  /** consoles the running thread has been told about */
  private known = new Set<number>();
  readonly devices = new Map<number, ShardedIpmiDevice>();
  private pending = new Map<number, Pending>();
  private nextReq = 1;

  constructor(
    private readonly name: string,
    private readonly script: URL,
  ) {}

  send(dev: ShardedIpmiDevice, m: ToShard, transfer?: ArrayBuffer[]): void {
    const w = this.thread();
    if (!this.known.has(dev.id)) {
      this.known.add(dev.id);
      w.postMessage({ t: 'add', id: dev.id, spec: dev.spec, consoleName: dev.consoleName, steal: dev.steal, stateDir: dev.stateDir } satisfies ToShard);
    }
    w.postMessage(m, transfer);
  }

  /** a console is gone for good: the thread forgets it too */
  forget(dev: ShardedIpmiDevice): void {
    this.devices.delete(dev.id);
    if (this.known.delete(dev.id)) this.worker?.postMessage({ t: 'remove', id: dev.id } satisfies ToShard);
  }

  /** a force or close; resolves when the thread has done it (or died) */
  request(dev: ShardedIpmiDevice, m: (req: number) => ToShard): Promise<void> {
    const req = this.nextReq++;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { done: (e) => (e === null ? resolve() : reject(new Error(e))) });
      this.send(dev, m(req));
      this.worker?.ref(); // an answer on its way keeps the process alive
    });
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(this.script, { name: this.name });
    w.unref(); // the listener and the consoles keep the daemon alive, not an idle thread
    w.on('message', (ev: ShardEvents) => this.deliver(ev));
    w.on('error', (e) => this.lost(w, e.message));
    w.on('exit', (code) => this.lost(w, `exit code ${code}`));
    this.worker = w;
    this.known.clear();
    return w;
  }

  /** the thread died (a bug): its consoles are down and reconnect through a new thread */
  private lost(w: Worker, why: string): void {
    if (this.worker !== w) return;
    this.worker = null;
    const reason = `IPMI thread stopped: ${why}`;
    for (const p of this.pending.values()) p.done(null); // nothing left to force or close
    this.pending.clear();
    for (const d of this.devices.values()) d.threadLost(reason);
  }

  private deliver(ev: ShardEvents): void {
    const data = Buffer.from(ev.data);
    let off = 0;
    let c = 0;
    for (let i = 0; i < ev.ids.length; i++) {
      const dev = this.devices.get(ev.ids[i]!);
      const len = ev.lens[i]!;
      if (len >= 0) {
        dev?.data(data.subarray(off, off + len));
        off += len;
        continue;
      }
      const e = ev.ctl[c++]!;
      if (e.k === 'done') {
        const p = this.pending.get(e.req);
        this.pending.delete(e.req);
        p?.done(e.error);
        if (this.pending.size === 0) this.worker?.unref();
      } else dev?.control(e);
    }
  }
}

/** The daemon's IPMI threads; consoles are dealt to them in turn. */
export class IpmiShards {
  private readonly shards: Shard[];
  private next = 0;

  /** `script`: the thread's code (tests give one that dies) */
  constructor(count: number, script = new URL('./ipmi-shard-worker.js', import.meta.url)) {
    this.shards = Array.from({ length: count }, (_, i) => new Shard(`conchd ipmi ${i + 1}`, script));
  }

  device(spec: IpmiSpec, ctx: { consoleName: string; steal: SolSteal; stateDir?: string | null }): ShardedIpmiDevice {
    const shard = this.shards[this.next % this.shards.length]!;
    const dev = new ShardedIpmiDevice(this.next++, spec, ctx.consoleName, ctx.steal, shard, ctx.stateDir ?? null);
    shard.devices.set(dev.id, dev);
    return dev;
  }
}

/** The main thread's side of an IPMI console that runs on an IPMI thread. */
export class ShardedIpmiDevice implements Device {
  readonly type = 'ipmi' as const;
  readonly backoff = IPMI_BACKOFF;
  private h: DeviceHandler | null = null;
  /** connecting or up: events are passed on (after a down or close(), late ones are not) */
  private open = false;
  private up = false;
  private heldSince: number | null = null;
  /** input bytes posted to the thread, and how many of them it has confirmed taking */
  private sent = 0;
  private taken = 0;
  /** write() returned false: report the drain */
  private full = false;

  constructor(
    readonly id: number,
    readonly spec: IpmiSpec,
    readonly consoleName: string,
    readonly steal: SolSteal,
    private readonly shard: Shard,
    readonly stateDir: string | null = null,
  ) {}

  label(): string {
    return ipmiLabel(this.spec.host, this.spec.port);
  }

  detail(): string | null {
    return heldDetail(this.heldSince);
  }

  connect(h: DeviceHandler): void {
    this.h = h;
    this.open = true;
    this.shard.send(this, { t: 'connect', id: this.id });
  }

  /**
   * Input in flight to the thread is bounded: past INPUT_HIGH_WATER not yet
   * taken by it (a thread too busy to read its messages), writes ask the
   * thread to confirm (`ack`), and the drain is reported when it has taken
   * all but a quarter of the mark. What SOL then does with it is bounded
   * on the thread (src/ipmi/sol.ts).
   */
  write(buf: Buffer): boolean {
    if (!this.up) return true;
    // a copy of just these bytes: a view would carry its whole backing store across
    const data = new Uint8Array(buf);
    this.sent += data.length;
    const over = this.sent - this.taken >= INPUT_HIGH_WATER;
    if (over) this.full = true;
    const m: ToShard = this.full ? { t: 'write', id: this.id, data, ack: this.sent } : { t: 'write', id: this.id, data };
    this.shard.send(this, m, [data.buffer]);
    return !over;
  }

  queued(): number {
    return this.sent - this.taken;
  }

  /** the thread has taken the input up to `upTo` */
  private drained(upTo: number): void {
    if (upTo > this.taken) this.taken = upTo;
    if (!this.full || this.sent - this.taken > INPUT_HIGH_WATER >> 2) return;
    this.full = false;
    if (this.open) this.h?.onDrain?.();
  }

  /** down or closed: input in flight is the thread's to drop */
  private forgetInput(): void {
    this.taken = this.sent;
    this.full = false;
  }

  sendBreak(): void {
    if (this.up) this.shard.send(this, { t: 'break', id: this.id });
  }

  force(by: string): Promise<void> {
    return this.shard.request(this, (req) => ({ t: 'force', id: this.id, by, req }));
  }

  close(): Promise<void> {
    this.open = false;
    this.up = false;
    this.heldSince = null;
    this.forgetInput();
    return this.shard.request(this, (req) => ({ t: 'close', id: this.id, req }));
  }

  dispose(): void {
    this.open = false;
    this.shard.forget(this);
  }

  /** bytes from the thread */
  data(b: Buffer): void {
    if (this.open) this.h?.onData(b);
  }

  /** an event from the thread */
  control(e: Exclude<ShardEvents['ctl'][number], { k: 'done' }>): void {
    if (e.k === 'drained') return this.drained(e.upTo);
    if (e.k === 'held') {
      if (this.open) this.heldSince = e.since;
      return;
    }
    if (!this.open || !this.h) return;
    if (e.k === 'up') {
      this.up = true;
      this.h.onUp();
    } else if (e.k === 'down') {
      this.open = false;
      this.up = false;
      this.heldSince = null;
      this.forgetInput();
      this.h.onDown(e.reason);
    } else this.h.onNotice(e.text);
  }

  threadLost(reason: string): void {
    if (!this.open) return;
    this.open = false;
    this.heldSince = null;
    this.up = false;
    this.forgetInput();
    this.h?.onDown(reason);
  }
}
