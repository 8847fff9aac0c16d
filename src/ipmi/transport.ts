// One UDP socket shared by many IPMI sessions. Datagrams are routed by the
// session ID they carry (ours, SIDm) or, for session setup and sessionless
// replies, to every session talking to that address. Nothing here keeps
// timers: sessions arm their own only while they wait for something.
//
// A person typing comes first. A datagram of a session someone typed at in
// the last seconds is handled as soon as it is read; the fleet's are queued
// and handled in slices (SLICE_MS per SLICE_PER waiting) between the loop's
// reads of the socket (and of the main thread's messages: the next key).
// Session setup and sessionless answers are handled at once. Read with the fleet's,
// an echo waited for every datagram read before it to be checked,
// decrypted, acknowledged and handed on (about 50 µs each at 5,000 consoles
// a thread), i.e. behind the whole backlog of a busy moment.

import * as dgram from 'node:dgram';
import * as crypto from 'node:crypto';
import { decodeDatagram, type Datagram } from './packet.js';
import { IpmiDecodeError } from './errors.js';
import { SetupWindow, type SetupOutcome } from './setup-window.js';

/** SO_RCVBUF / SO_SNDBUF asked for on the shared socket (the kernel caps it). */
const SOCKET_BUFFER = 8 * 1024 * 1024;
/** a timeout stretches with the measured round trip up to this many times its base */
const MAX_STRETCH = 8;
/** the fleet's queued datagrams are handled this long at a time (ms) per SLICE_PER waiting, the loop's reads between */
const SLICE_MS = 1;
const SLICE_PER = 500;
/** at most this many wait (~10 MB); beyond, the queue is handled in full first (order kept, nothing dropped) */
const MAX_WAITING = 32768;

/** What a session must offer to receive datagrams. */
export interface TransportClient {
  readonly sidM: number;
  readonly address: string;
  readonly port: number;
  /** a datagram for this session (already header-decoded) */
  receive(d: Datagram): void;
  /** performance.now() until which this session's datagrams skip the queue (its console was typed at) */
  readonly urgentUntil: number;
  /** this session's datagrams in the transport's queue (kept by the transport: an urgent one waits behind them) */
  waiting: number;
}

export interface TransportStats extends IpmiCounts {
  received: number;
  dropped: number;
  sent: number;
}

/** What the sessions on a transport count for metrics (src/web/metrics.ts). */
export interface IpmiCounts {
  /** requests sent again after a timeout, and session setups started over */
  retransmissions: number;
  /** session setups begun (Open Session … RAKP 4, Set Session Privilege) */
  setups: number;
  /** of which failed */
  setupFailures: number;
}

export const noIpmiCounts = (): IpmiCounts => ({ retransmissions: 0, setups: 0, setupFailures: 0 });

/** `from` added to `into` */
export function addIpmiCounts(into: IpmiCounts, from: IpmiCounts): void {
  into.retransmissions += from.retransmissions;
  into.setups += from.setups;
  into.setupFailures += from.setupFailures;
}

const addrKey = (address: string, port: number): string => `${address}|${port}`;

export class IpmiTransport {
  // open while at least one session is registered; closed with the last one.
  // BMCs on loopback get a socket bound to loopback, so a daemon whose BMCs
  // are all local (tests, the demo, simulators) has no port open to the
  // network; others share one bound to the wildcard, because the kernel picks
  // the source address per route (one BMC network or several). Either way a
  // datagram counts only from the address and port a session talks to.
  private sockets = new Map<SocketKind, dgram.Socket>();
  private bySid = new Map<number, TransportClient>();
  private byAddr = new Map<string, Set<TransportClient>>();
  readonly stats: TransportStats = { received: 0, dropped: 0, sent: 0, ...noIpmiCounts() };
  /** the fleet's datagrams read and not yet handled, in order, each with its session */
  private readonly queue = new DatagramQueue();
  private draining = false;
  /** last few drop reasons, for diagnostics (no secrets: only header facts) */
  lastDrop = '';

  /** A fresh non-zero SIDm that no registered session uses. */
  newSessionId(): number {
    for (;;) {
      const id = crypto.randomBytes(4).readUInt32LE(0);
      if (id !== 0 && !this.bySid.has(id)) return id;
    }
  }

  register(c: TransportClient): void {
    this.bySid.set(c.sidM, c);
    const k = addrKey(c.address, c.port);
    let s = this.byAddr.get(k);
    if (!s) this.byAddr.set(k, (s = new Set()));
    s.add(c);
  }

  unregister(c: TransportClient): void {
    if (this.bySid.get(c.sidM) === c) this.bySid.delete(c.sidM);
    const k = addrKey(c.address, c.port);
    const s = this.byAddr.get(k);
    if (s) {
      s.delete(c);
      if (s.size === 0) this.byAddr.delete(k);
    }
    if (this.bySid.size === 0) this.closeSockets();
  }

  /**
   * Smoothed round trip (ms) of recent request/answer exchanges, across all
   * sessions on this socket. Under load (thousands of consoles streaming
   * while others start) answers queue for hundreds of milliseconds; fixed
   * 1-2 s timeouts then gave up on slow but working exchanges, and the
   * retransmissions added to the load. Only answers to a first try are
   * sampled (an answer to a retry cannot be matched to its try).
   */
  private srtt = 0;

  noteRoundTrip(ms: number): void {
    this.srtt = this.srtt === 0 ? ms : this.srtt + (ms - this.srtt) / 8;
  }

  /** `baseMs`, or four round trips when answers are slower than that (at most MAX_STRETCH × base) */
  timeout(baseMs: number): number {
    return Math.min(baseMs * MAX_STRETCH, Math.max(baseMs, 4 * this.srtt));
  }

  send(c: TransportClient, b: Buffer): void {
    // no per-datagram callback: a failed send surfaces as the socket's 'error'
    this.socket(socketKind(c.address)).send(b, c.port, c.address);
    this.stats.sent++;
  }

  /**
   * A slot for one session setup (Open Session … Set Session Privilege).
   * A window of them run at once (setup-window.ts), so that a daemon
   * starting thousands of consoles does not flood the socket and the BMCs;
   * the rest wait their turn.
   */
  setupSlot(): Promise<(outcome: SetupOutcome) => void> {
    return this.setups.slot();
  }
  private readonly setups = new SetupWindow();

  private socket(kind: SocketKind): dgram.Socket {
    let s = this.sockets.get(kind);
    if (s) return s;
    const fam = kind === 'udp6' || kind === 'udp6-lo' ? 'udp6' : 'udp4';
    // One socket carries every session: a start-up storm of thousands of
    // handshakes overflows the kernel's default 208 KiB queue and loses
    // datagrams, so ask for a large one (capped by net.core.rmem_max).
    // Addresses are resolved before sessions start (see the IPMI device), so
    // the per-send lookup only has to hand the literal back, synchronously:
    // dns.lookup would defer every datagram by a tick.
    s = dgram.createSocket({ type: fam, recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER, lookup: literalLookup(fam) });
    s.on('message', (msg, rinfo) => this.dispatch(msg, rinfo));
    s.on('error', (e) => {
      this.lastDrop = `socket error: ${e.message}`;
    });
    // sends made before the bind completes are queued by dgram
    if (kind === 'udp4-lo') s.bind({ address: '127.0.0.1', port: 0 });
    else if (kind === 'udp6-lo') s.bind({ address: '::1', port: 0 });
    this.sockets.set(kind, s);
    return s;
  }

  private closeSockets(): void {
    for (const s of this.sockets.values()) {
      try {
        s.close();
      } catch {
        /* already closed */
      }
    }
    this.sockets.clear();
  }

  private drop(why: string): void {
    this.stats.dropped++;
    this.lastDrop = why;
  }

  /** one datagram from the socket (protected: tests put faults in front of it) */
  protected dispatch(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    this.stats.received++;
    let d: Datagram;
    try {
      d = decodeDatagram(msg);
    } catch (e) {
      this.drop(e instanceof IpmiDecodeError ? e.message : 'undecodable datagram');
      return;
    }
    // an IPv4 peer on a dual-stack socket shows as ::ffff:a.b.c.d
    const from = rinfo.address.startsWith('::ffff:') ? rinfo.address.slice(7) : rinfo.address;
    if (d.kind === 'v20' && d.sessionId !== 0) {
      const c = this.bySid.get(d.sessionId);
      // a session ID is only honoured from the address the session talks to
      // (compared field by field: no key string per datagram on this path)
      if (!c || c.port !== rinfo.port || c.address !== from) return this.drop(`no session 0x${d.sessionId.toString(16)} for ${addrKey(from, rinfo.port)}`);
      // typed at, and nothing of its own queued (its order kept): now
      if (c.waiting === 0 && c.urgentUntil > 0 && c.urgentUntil > performance.now()) return this.safely(c, d);
      c.waiting++;
      return this.enqueue(c, d);
    }
    // session setup and sessionless answers at once: a start's thousands of
    // setups are its critical path, and no session has datagrams queued yet
    const fromKey = addrKey(from, rinfo.port);
    const peers = this.byAddr.get(fromKey);
    if (!peers) return this.drop(`datagram from unknown peer ${fromKey}`);
    for (const c of [...peers]) this.safely(c, d);
  }

  private enqueue(c: TransportClient, d: Datagram): void {
    // a backlog past the bound is handled in full first: late, but in order and never dropped
    if (this.queue.size >= MAX_WAITING) this.handleQueued(Infinity);
    this.queue.push(c, d);
    if (this.draining) return;
    this.draining = true;
    setImmediate(this.drain);
  }

  /**
   * One slice of the queue, after the loop's reads; the rest in the next
   * turns. The slice grows with the backlog (SLICE_MS per SLICE_PER
   * datagrams waiting) so that the handling keeps up with the reads: a
   * backlog that only grew would at last be handled in one long turn.
   */
  private readonly drain = (): void => {
    this.draining = false;
    this.handleQueued(performance.now() + SLICE_MS * Math.max(1, this.queue.size / SLICE_PER));
    if (this.queue.size === 0) return;
    this.draining = true;
    setImmediate(this.drain);
  };

  /** queued datagrams in order until `until` (performance.now() ms, looked at every 8) or the queue is empty */
  private handleQueued(until: number): void {
    let n = 0;
    while (this.queue.shift(this.handleOne)) if ((++n & 7) === 0 && performance.now() >= until) return;
  }

  private readonly handleOne = (c: TransportClient, d: Datagram): void => {
    c.waiting--;
    // a session closed while its datagram waited: as if it had come after
    if (this.bySid.get(c.sidM) === c) this.safely(c, d);
    else this.drop(`no session 0x${c.sidM.toString(16)} any more`);
  };

  /** datagrams waiting in the transport's queue (tests) */
  get queued(): number {
    return this.queue.size;
  }

  private safely(c: TransportClient, d: Datagram): void {
    try {
      c.receive(d);
    } catch (e) {
      // a session bug must not disturb the other sessions on the socket
      this.drop(`session 0x${c.sidM.toString(16)}: ${(e as Error).message}`);
    }
  }
}

/**
 * A FIFO of (session, datagram) in two parallel arrays read from a head
 * index: no object per datagram, and the arrays are reused once emptied
 * (compacted when a long backlog has been half read).
 */
class DatagramQueue {
  private cs: (TransportClient | undefined)[] = [];
  private ds: (Datagram | undefined)[] = [];
  private head = 0;

  get size(): number {
    return this.cs.length - this.head;
  }

  push(c: TransportClient, d: Datagram): void {
    this.cs.push(c);
    this.ds.push(d);
  }

  /** the oldest entry handed to `to` and taken out; false when there is none */
  shift(to: (c: TransportClient, d: Datagram) => void): boolean {
    if (this.head >= this.cs.length) return false;
    const c = this.cs[this.head]!;
    const d = this.ds[this.head]!;
    this.cs[this.head] = undefined;
    this.ds[this.head] = undefined;
    this.head++;
    if (this.head === this.cs.length) {
      this.cs.length = 0;
      this.ds.length = 0;
      this.head = 0;
    } else if (this.head >= 4096 && this.head * 2 >= this.cs.length) {
      this.cs = this.cs.slice(this.head);
      this.ds = this.ds.slice(this.head);
      this.head = 0;
    }
    to(c, d);
    return true;
  }
}

type SocketKind = 'udp4' | 'udp6' | 'udp4-lo' | 'udp6-lo';

/** Which socket carries a BMC's datagrams (the address is an IP literal). */
export function socketKind(address: string): SocketKind {
  if (address.includes(':')) return address === '::1' ? 'udp6-lo' : 'udp6';
  return address.startsWith('127.') ? 'udp4-lo' : 'udp4';
}

/** dgram's lookup hook: every address here is already an IP literal (no DNS, no regex per datagram). */
export function literalLookup(fam: 'udp4' | 'udp6'): dgram.SocketOptions['lookup'] {
  const family = fam === 'udp6' ? 6 : 4;
  return ((host: string, _opts: unknown, cb: (err: Error | null, address: string, family: number) => void) => cb(null, host, family)) as dgram.SocketOptions['lookup'];
}

/** The process-wide default transport. */
let shared: IpmiTransport | null = null;
export function sharedTransport(): IpmiTransport {
  return (shared ??= new IpmiTransport());
}
