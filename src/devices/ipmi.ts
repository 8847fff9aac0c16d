// An IPMI 2.0 Serial-over-LAN console (`dev="ipmi:host[:port]"`), native
// RMCP+ on one shared UDP socket (src/ipmi/). One connect() = open a session
// and take SOL as the steal policy allows; a session that is up while SOL is
// held by another client counts as up (notices say so) and is polled until
// the instance is free.

import * as dns from 'node:dns/promises';
import * as net from 'node:net';
import type { IpmiOpts } from '../config/types.js';
import type { Backoff, Device, DeviceHandler, DeviceStats } from './device.js';
import { cipherSuite } from '../ipmi/crypto.js';
import { bankSolCounts, EarlierSessions, noSolCounts, SolConsole, DEFAULT_TIMING, type Clock, type SolCounts, type SolTiming, type StealPolicy } from '../ipmi/sol-console.js';
import { sharedTransport, type IpmiTransport } from '../ipmi/transport.js';
import type { SessionRecordEntry } from '../ipmi/session-record.js';
import { longTime, timeDelta } from '../util/notice.js';
import { stampTime } from '../util/notice.js';
import { bareHost } from './socket-util.js';

/** every IPMI console's clock: one object, so that their checks share one timer (util/deadlines.ts) */
const DAEMON_CLOCK: Clock = { now: () => Date.now(), stamp: (ms) => longTime(new Date(ms)), delta: timeDelta };

export const IPMI_DEFAULT_PORT = 623;
/** suite 3 unless configured: HMAC-SHA1 + HMAC-SHA1-96 + AES-CBC-128, offered by every IPMI 2.0 BMC */
export const IPMI_DEFAULT_SUITE = 3;

// conman: 60 s doubling to 30 min for IPMI. Takeovers do not go through
// reconnects (they are polled inside the session), so a reconnect means the
// BMC stopped answering; 15 s first retry brings a rebooted BMC back soon.
export const IPMI_BACKOFF: Backoff = { minMs: 15000, maxMs: 1800000, healthyMs: 60000 };

/** `<host>` or `<host:port>` as conman's notices name an IPMI console (an IPv6 `host` in brackets or not) */
export function ipmiLabel(host: string, port: number): string {
  const bare = bareHost(host);
  const h = bare.includes(':') ? `[${bare}]` : bare;
  return port === IPMI_DEFAULT_PORT ? `<${h}>` : `<${h}:${port}>`;
}

/** the status detail of a console whose SOL another client holds */
export function heldDetail(since: number | null | undefined): string | null {
  return since ? `SOL held elsewhere since ${stampTime(new Date(since))}` : null;
}

/** a SOL console's counts as DeviceStats, a stretch held elsewhere under way counted up to `now` */
export function solStats(c: SolCounts, now = Date.now()): DeviceStats {
  return { solTakeovers: c.takeovers, solResumes: c.resumes, solHeldElsewhereMs: c.heldMs + (c.heldFrom === null ? 0 : Math.max(0, now - c.heldFrom)) };
}

export interface IpmiSpec {
  host: string;
  port: number;
  opts: IpmiOpts;
}

export interface IpmiDeviceContext {
  consoleName: string;
  /** steal policy (conch extension); default polite */
  steal?: StealPolicy;
  /** for tests and benchmarks: another transport / faster polls */
  transport?: IpmiTransport;
  timing?: SolTiming;
  /** first IPMI retransmission timeout, ms (default 1000) */
  retryMs?: number;
  /** sessions that may still hold SOL at this BMC and are ours to take back: the previous run's (the daemon's SessionStore), another node's (a cluster's handover) */
  earlier?: SessionRecordEntry[];
  /** told the sessions that may hold SOL at the BMC (earlier ones and the live one) after each change: the daemon records them, a cluster publishes them */
  onSessions?: (list: SessionRecordEntry[]) => void;
}

export class IpmiDevice implements Device {
  readonly type = 'ipmi' as const;
  readonly backoff = IPMI_BACKOFF;
  private console: SolConsole | null = null;
  private readonly host: string;
  /** the cipher suite last told to the log (said again only when it changes) */
  private toldSuite: number | null = null;
  /** our sessions at this BMC that ended without a confirmed Close Session */
  private readonly earlier = new EarlierSessions();
  /** the BMC's ID of the session open now (0: none) */
  private liveSid = 0;
  /** what the SOL consoles of earlier attempts counted */
  private readonly banked = noSolCounts();

  constructor(
    private readonly spec: IpmiSpec,
    private readonly ctx: IpmiDeviceContext,
  ) {
    this.host = bareHost(spec.host);
    for (const e of ctx.earlier ?? []) this.earlier.add(e.sid, e.at);
    this.earlier.onChange = () => this.remember();
  }

  /** write (and tell) the sessions that may hold SOL at the BMC: the earlier ones and the live one */
  private remember(): void {
    if (!this.ctx.onSessions) return;
    const list: SessionRecordEntry[] = this.earlier.entries();
    if (this.liveSid !== 0) list.push({ sid: this.liveSid, at: Date.now(), live: true });
    this.ctx.onSessions(list);
  }

  label(): string {
    return ipmiLabel(this.host, this.spec.port);
  }

  /** for status displays: SOL ours / held elsewhere (since when, ms), polls done, dropped datagrams */
  status(): { state: string; heldElsewhereSince: number | null; polls: number; dropped: number; adopted: number } {
    const c = this.console;
    if (!c) return { state: 'down', heldElsewhereSince: null, polls: 0, dropped: 0, adopted: 0 };
    return { state: c.state, heldElsewhereSince: c.heldElsewhereSince, polls: c.polls, dropped: c.session.stats.dropped, adopted: c.adopted };
  }

  detail(): string | null {
    return heldDetail(this.console?.heldElsewhereSince);
  }

  /** takeovers, resumes and time held elsewhere over every attempt (a stretch under way: from heldFrom on) */
  solCounts(): SolCounts {
    const b = this.banked;
    const c = this.console?.counts;
    if (!c) return { ...b };
    return { takeovers: b.takeovers + c.takeovers, resumes: b.resumes + c.resumes, heldMs: b.heldMs + c.heldMs, heldFrom: c.heldFrom };
  }

  stats(): DeviceStats {
    return solStats(this.solCounts());
  }

  /** `c` is done: its counts stay in this device's (taken when it stops being this.console) */
  private bank(c: SolConsole | null): void {
    if (c) bankSolCounts(this.banked, c.counts, Date.now());
  }

  connect(h: DeviceHandler): void {
    void this.attempt(h);
  }

  private async attempt(h: DeviceHandler): Promise<void> {
    if (this.console) await this.close();
    const o = this.spec.opts;
    let c: SolConsole | null = null;
    let up = false;
    try {
      const address = net.isIP(this.host) ? this.host : (await dns.lookup(this.host)).address;
      c = new SolConsole(
        this.ctx.transport ?? sharedTransport(),
        {
          address,
          port: this.spec.port,
          user: Buffer.from(o.user, 'latin1'),
          password: o.password,
          kg: o.kg,
          suite: cipherSuite(o.cipherSuite ?? IPMI_DEFAULT_SUITE),
          // no C: given: the best suite the BMC offers, 3 first
          fallback: o.cipherSuite === null,
          privilege: o.privilege,
          workarounds: new Set(o.workarounds.filter((w) => w !== 'none')),
          retryMs: this.ctx.retryMs,
        },
        this.ctx.steal ?? 'polite',
        {
          onData: (b) => up && h.onData(b),
          onNotice: (t) => h.onNotice(t),
          onOpened: (sid) => {
            if (this.console !== c) return;
            this.liveSid = sid;
            this.remember();
          },
          onDown: (r) => {
            if (this.console !== c) return;
            this.console = null;
            this.bank(c);
            this.abandoned(c);
            if (up) h.onDown(r);
            up = false;
          },
        },
        DAEMON_CLOCK,
        this.ctx.timing ?? DEFAULT_TIMING,
        this.earlier,
      );
      this.console = c;
      await c.start();
      if (this.console !== c) return; // closed meanwhile
      this.tellSuite(c, h);
      up = true;
      h.onUp();
    } catch (e) {
      if (c) {
        if (this.console !== c) return; // close() ended this attempt
        this.console = null;
        this.bank(c);
        await c.close().catch(() => {});
        this.abandoned(c);
      }
      // messages from src/ipmi never contain passwords or keys
      h.onDown((e as Error).message);
    }
  }

  /** remember a session that may live on at the BMC (and hold SOL there) */
  private abandoned(c: SolConsole | null): void {
    if (c && c.session.sidC === this.liveSid) this.liveSid = 0;
    if (c && c.session.sidC !== 0 && !c.session.closedAtBmc) this.earlier.add(c.session.sidC, Date.now());
    else this.remember();
  }

  /** Which cipher suite the session uses, once, and again when it changes (a BMC update, a fallback). */
  private tellSuite(c: SolConsole, h: DeviceHandler): void {
    const id = c.session.cipherSuite.id;
    if (id === this.toldSuite) return;
    this.toldSuite = id;
    let why = '';
    if (this.spec.opts.cipherSuite !== null) why = ' (configured)';
    else if (id !== IPMI_DEFAULT_SUITE) {
      const offered = c.session.offeredSuites;
      why = offered.length ? ` (the BMC does not offer suite ${IPMI_DEFAULT_SUITE}; it offers ${offered.join(' ')})` : ` (the BMC refused suite ${IPMI_DEFAULT_SUITE})`;
    }
    h.onNotice(`IPMI session uses cipher suite ${id}${why}`);
  }

  /** SOL queues input itself, bounded (64 KiB, src/ipmi/sol.ts): nothing to pause for here */
  write(buf: Buffer): boolean {
    this.console?.write(buf);
    return true;
  }

  queued(): number {
    return 0;
  }

  sendBreak(): void {
    this.console?.sendBreak();
  }

  /** operator force (`conch -f`): take SOL even if another client holds it */
  async force(by: string): Promise<void> {
    await this.console?.force(by);
  }

  async close(): Promise<void> {
    const c = this.console;
    this.console = null;
    if (!c) return;
    this.bank(c);
    await c.close();
    this.abandoned(c);
  }
}
