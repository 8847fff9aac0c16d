// IPMI consoles on IPMI threads. With a thousand SOL consoles, the UDP
// sends, integrity checks and decryption of their packets kept the main
// thread busy a third of the time, and a keystroke that arrived meanwhile
// waited for it. Each IPMI thread (ipmi-thread-worker.ts) owns a UDP socket
// and a share of the consoles and runs the same IpmiDevice as the main
// thread would; the main thread keeps the logs and the clients and gets each
// thread's output in batches of up to 10 ms (a typed-at console's at once).
//
// IpmiThreads is the daemon's pool of them; IpmiThreadDevice is the main
// thread's stand-in for one console on a thread, behind the same Device
// interface as IpmiDevice. Messages: ipmi-thread-messages.ts.

import type { SessionRecordEntry } from '../ipmi/session-record.js';
import { fenceBuffer } from '../util/fence.js';
import * as os from 'node:os';
import type { SolSteal } from '../config/types.js';
import { INPUT_HIGH_WATER, type Device, type DeviceHandler, type DeviceStats } from './device.js';
import { heldDetail, ipmiLabel, IPMI_BACKOFF, solStats, type IpmiSpec } from './ipmi.js';
import { WorkerPool } from '../util/worker-pool.js';
import { noSolCounts, type SolCounts } from '../ipmi/sol-console.js';
import { addIpmiCounts, noIpmiCounts, sharedTransport, type IpmiCounts } from '../ipmi/transport.js';
import {
  decodeFromIpmiThread,
  encodeToIpmiThread,
  type FromIpmiThreadWire,
  type IpmiThreadEvent,
  type ToIpmiThread,
  type ToIpmiThreadWire,
  THREAD_KEY,
} from './ipmi-thread-messages.js';

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

/** How a console's stand-in reaches its thread (IpmiThreads gives each its own). */
interface IpmiThreadLink {
  send(m: ToIpmiThread): void;
  /** a force or close; resolves when the thread has done it (or died) */
  request(make: (req: number) => ToIpmiThread): Promise<void>;
  /** the console is gone for good: the thread forgets it too */
  forget(): void;
}

/** What the main side keeps about one IPMI thread. */
class ThreadBook {
  /** the consoles dealt to this thread, and the message that tells a (new) thread about each */
  readonly consoles = new Map<number, { dev: IpmiThreadDevice; add: ToIpmiThread }>();
  /** consoles the running thread has been told about */
  readonly known = new Set<number>();
  /** forces and closes under way, by request number */
  readonly pending = new Map<number, (error: string | null) => void>();
  /** the running thread's IPMI counts as it last said, and those of the threads before it */
  counts = noIpmiCounts();
  readonly earlierCounts = noIpmiCounts();

  /** the thread is gone: nothing left to force or close there, and a new one knows no console */
  reset(): void {
    addIpmiCounts(this.earlierCounts, this.counts);
    this.counts = noIpmiCounts();
    this.known.clear();
    for (const done of this.pending.values()) done(null);
    this.pending.clear();
  }
}

/**
 * The daemon's IPMI threads; consoles are dealt to them in turn. Each
 * thread starts at its first console's first connect, and again if it
 * dies; an idle one does not keep the process alive.
 */
/** every pool the daemon made (a reload may make one), for ipmiCounts() */
const pools = new Set<IpmiThreads>();

/** The daemon's IPMI counts: the main thread's sessions and every IPMI thread's, as last told (within a second). */
export function ipmiCounts(): IpmiCounts {
  const { retransmissions, setups, setupFailures } = sharedTransport().stats;
  const sum = { retransmissions, setups, setupFailures };
  for (const p of pools) p.addCounts(sum);
  return sum;
}

export class IpmiThreads {
  private readonly pool: WorkerPool<ToIpmiThreadWire, FromIpmiThreadWire>;
  private readonly books: ThreadBook[];
  private nextId = 0;
  private nextReq = 1;

  /** `script`: the threads' code (tests give one that dies) */
  constructor(count: number, script = new URL('./ipmi-thread-worker.js', import.meta.url)) {
    this.books = Array.from({ length: count }, () => new ThreadBook());
    this.pool = new WorkerPool({
      script,
      size: count,
      name: (i) => `conchd ipmi ${i + 1}`,
      // the cluster's permission to act, read by the threads before a SOL activation (util/fence.ts)
      workerData: { fence: fenceBuffer() },
      onMessage: (i, w) =>
        decodeFromIpmiThread(
          w,
          (id, ev) => this.deliver(i, id, ev),
          (id, data) => this.books[i]!.consoles.get(id)?.dev.dataFromThread(data),
        ),
      onLost: (i, why) => this.lost(i, `IPMI thread stopped: ${why}`),
    });
    pools.add(this);
  }

  /** this pool's IPMI counts added to `into` */
  addCounts(into: IpmiCounts): void {
    for (const b of this.books) {
      addIpmiCounts(into, b.earlierCounts);
      addIpmiCounts(into, b.counts);
    }
  }

  device(spec: IpmiSpec, ctx: { consoleName: string; steal: SolSteal; earlier?: SessionRecordEntry[]; onSessions?: (list: SessionRecordEntry[]) => void }): IpmiThreadDevice {
    const id = this.nextId++;
    const i = id % this.books.length;
    const dev = new IpmiThreadDevice(id, spec, {
      send: (m) => void this.send(i, id, m),
      request: (make) => this.request(i, id, make),
      forget: () => this.forget(i, id),
    });
    dev.onSessions = ctx.onSessions ?? null;
    const add: ToIpmiThread = {
      t: 'add',
      id,
      spec,
      consoleName: ctx.consoleName,
      steal: ctx.steal,
      earlier: ctx.earlier ?? [],
      tellSessions: ctx.onSessions !== undefined,
    };
    this.books[i]!.consoles.set(id, { dev, add });
    return dev;
  }

  /** End the threads (their consoles closed first); a force or close still waiting resolves. */
  async terminate(): Promise<void> {
    await this.pool.terminate();
    for (const b of this.books) b.reset();
  }

  /** post to thread i, telling it about console `id` first if it does not know it; false once terminated */
  private send(i: number, id: number, m: ToIpmiThread): boolean {
    const book = this.books[i]!;
    const add = book.consoles.get(id)?.add;
    if (add && !book.known.has(id)) {
      if (!this.pool.post(i, encodeToIpmiThread(add))) return false;
      book.known.add(id);
    }
    return this.pool.post(i, encodeToIpmiThread(m));
  }

  private request(i: number, id: number, make: (req: number) => ToIpmiThread): Promise<void> {
    const req = this.nextReq++;
    const book = this.books[i]!;
    return new Promise((resolve, reject) => {
      book.pending.set(req, (e) => (e === null ? resolve() : reject(new Error(e))));
      if (this.send(i, id, make(req))) {
        this.pool.hold(i); // an answer on its way keeps the process alive
        return;
      }
      book.pending.delete(req); // no threads any more: nothing to force or close
      resolve();
    });
  }

  private forget(i: number, id: number): void {
    const book = this.books[i]!;
    book.consoles.delete(id);
    if (book.known.delete(id)) this.pool.post(i, encodeToIpmiThread({ t: 'remove', id }));
  }

  private deliver(i: number, id: number, ev: Exclude<IpmiThreadEvent, { k: 'data' }>): void {
    const book = this.books[i]!;
    if (ev.k === 'counts') {
      if (id === THREAD_KEY) book.counts = ev.counts;
      return;
    }
    if (ev.k !== 'done') return book.consoles.get(id)?.dev.fromThread(ev);
    const done = book.pending.get(ev.req);
    if (!done) return;
    book.pending.delete(ev.req);
    this.pool.release(i);
    done(ev.error);
  }

  /** the thread died (a bug): its consoles are down and reconnect through a new thread */
  private lost(i: number, reason: string): void {
    const book = this.books[i]!;
    book.reset();
    for (const c of book.consoles.values()) c.dev.threadLost(reason);
  }
}

/**
 * Client input posted to a thread and not yet confirmed taken by it: the
 * main side's own count (what SOL then does with it is bounded on the
 * thread, src/ipmi/sol.ts).
 */
class InputInFlight {
  private sent = 0;
  private taken = 0;
  /** write() returned false: a drain is owed */
  private full = false;

  get queued(): number {
    return this.sent - this.taken;
  }

  /**
   * `n` more bytes are posted. `ack`: the count the thread must confirm
   * taking (asked for from the high-water mark on until the drain); `under`:
   * still below the mark.
   */
  post(n: number): { ack: number | undefined; under: boolean } {
    this.sent += n;
    const over = this.sent - this.taken >= INPUT_HIGH_WATER;
    if (over) this.full = true;
    return { ack: this.full ? this.sent : undefined, under: !over };
  }

  /** the thread has taken the input up to `upTo`: true when the drain is due (all but a quarter of the mark taken) */
  confirmed(upTo: number): boolean {
    if (upTo > this.taken) this.taken = upTo;
    if (!this.full || this.sent - this.taken > INPUT_HIGH_WATER >> 2) return false;
    this.full = false;
    return true;
  }

  /** down or closed: input in flight is the thread's to drop */
  drop(): void {
    this.taken = this.sent;
    this.full = false;
  }
}

/**
 * An attempt under way (connect() until down or close()): its handler and
 * the one mirror the main side keeps of the device on the thread, for what
 * it reads synchronously (write() and sendBreak() while up, detail()). The
 * mirror changes only in fromThread(), from decoded events, and goes with
 * the attempt.
 */
interface Attempt {
  readonly h: DeviceHandler;
  up: boolean;
  /** when another client took SOL (ms), as the thread last said */
  heldSince: number | null;
}

/** The main thread's side of an IPMI console that runs on an IPMI thread. */
export class IpmiThreadDevice implements Device {
  readonly type = 'ipmi' as const;
  readonly backoff = IPMI_BACKOFF;
  /** null after a down or close(): late events are not passed on */
  private attempt: Attempt | null = null;
  private readonly input = new InputInFlight();
  /** the SOL counts as the thread last said */
  private sol: SolCounts = noSolCounts();
  /** told the sessions that may hold SOL (see IpmiDeviceContext.onSessions) */
  onSessions: ((list: SessionRecordEntry[]) => void) | null = null;

  constructor(
    readonly id: number,
    private readonly spec: IpmiSpec,
    private readonly thread: IpmiThreadLink,
  ) {}

  label(): string {
    return ipmiLabel(this.spec.host, this.spec.port);
  }

  detail(): string | null {
    return heldDetail(this.attempt?.heldSince);
  }

  stats(): DeviceStats {
    return solStats(this.sol);
  }

  connect(h: DeviceHandler): void {
    this.attempt = { h, up: false, heldSince: null };
    this.thread.send({ t: 'connect', id: this.id });
  }

  /**
   * Input in flight to the thread is bounded: past INPUT_HIGH_WATER not yet
   * taken by it (a thread too busy to read its messages), writes ask the
   * thread to confirm (`ack`), and the drain is reported when it has taken
   * all but a quarter of the mark.
   */
  write(buf: Buffer): boolean {
    if (!this.attempt?.up) return true;
    const { ack, under } = this.input.post(buf.length);
    this.thread.send(ack === undefined ? { t: 'write', id: this.id, data: buf } : { t: 'write', id: this.id, data: buf, ack });
    return under;
  }

  queued(): number {
    return this.input.queued;
  }

  sendBreak(): void {
    if (this.attempt?.up) this.thread.send({ t: 'break', id: this.id });
  }

  force(by: string): Promise<void> {
    return this.thread.request((req) => ({ t: 'force', id: this.id, by, req }));
  }

  close(): Promise<void> {
    this.end();
    return this.thread.request((req) => ({ t: 'close', id: this.id, req }));
  }

  dispose(): void {
    this.attempt = null;
    this.thread.forget();
  }

  /** the console's bytes from the thread (the batch's most common entry, passed without an event object) */
  dataFromThread(data: Buffer): void {
    this.attempt?.h.onData(data);
  }

  /** an event from the thread (IpmiThreads answers the `done`s) */
  fromThread(ev: Exclude<IpmiThreadEvent, { k: 'done' | 'counts' | 'data' }>): void {
    if (ev.k === 'drained') {
      if (this.input.confirmed(ev.upTo)) this.attempt?.h.onDrain?.();
      return;
    }
    if (ev.k === 'sessions') return this.onSessions?.(ev.list);
    // the counts outlive attempts (a down's come after it)
    if (ev.k === 'held' && ev.sol) this.sol = ev.sol;
    const a = this.attempt;
    if (!a) return;
    switch (ev.k) {
      case 'held':
        a.heldSince = ev.since;
        return;
      case 'up':
        a.up = true;
        return a.h.onUp();
      case 'down':
        this.end();
        return a.h.onDown(ev.reason);
      case 'notice':
        return a.h.onNotice(ev.text);
    }
  }

  /** the thread died: an attempt under way ends with `reason` */
  threadLost(reason: string): void {
    const a = this.attempt;
    if (!a) return;
    this.end();
    a.h.onDown(reason);
  }

  private end(): void {
    this.attempt = null;
    this.input.drop();
  }
}
