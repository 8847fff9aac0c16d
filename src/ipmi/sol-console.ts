// One SOL console: an IPMI session, its SOL link, the IPMI keepalive and the
// steal policy (issue 4). A single poll timer per console does three jobs:
// it is the IPMI-level keepalive ipmi_sim needs (≤15 s, SOL traffic does not
// count), it detects a takeover (Get Payload Instance Info names another
// owner), and while SOL is held elsewhere it watches for the instance to be
// released (Get Payload Activation Status).

import { IpmiError } from './errors.js';
import { IpmiSession, type SessionOptions } from './session.js';
import { SolLink } from './sol.js';
import type { IpmiTransport } from './transport.js';
import type { IpmiMessage } from './packet.js';

export type StealPolicy = 'polite' | 'never' | 'always';

export interface SolConsoleHandlers {
  onData(b: Buffer): void;
  /** a line for the console log and clients (takeover, resume, waiting) */
  onNotice(text: string): void;
  /** the IPMI session is gone; the console is down */
  onDown(reason: string): void;
}

export interface SolTiming {
  /** poll interval while SOL is ours (keepalive + takeover detection) */
  ownPollMs: number;
  /** poll interval while SOL is held elsewhere */
  waitPollMs: number;
  /** how long the instance must stay free before we take it (polite) */
  quietMs: number;
}

export const DEFAULT_TIMING: SolTiming = { ownPollMs: 10000, waitPollMs: 5000, quietMs: 4000 };

export type SolState = 'connecting' | 'ours' | 'elsewhere' | 'closed';

/** injected so notices carry the daemon's time format */
export interface Clock {
  now(): number;
  stamp(ms: number): string;
  delta(ms: number): string;
}

export class SolConsole {
  state: SolState = 'connecting';
  /** when SOL was lost to another client (ms), or null */
  heldElsewhereSince: number | null = null;
  readonly session: IpmiSession;
  private readonly sol: SolLink;
  private timer: NodeJS.Timeout | null = null;
  private freeSince: number | null = null;
  private polling = false;
  /** polls done (keepalive / takeover / release checks) */
  polls = 0;

  constructor(
    transport: IpmiTransport,
    opts: SessionOptions,
    private readonly policy: StealPolicy,
    private readonly h: SolConsoleHandlers,
    private readonly clock: Clock,
    private readonly timing: SolTiming = DEFAULT_TIMING,
  ) {
    this.session = new IpmiSession(transport, opts);
    this.sol = new SolLink(this.session, {
      onData: (b) => h.onData(b),
      onLost: (why) => this.suspect(why),
    });
    this.session.onUnsolicited = (m) => this.unsolicited(m);
  }

  /** Open the session and take SOL if policy allows. Rejects if the session cannot be opened. */
  async start(): Promise<void> {
    await this.session.open();
    const busy = await this.isActive();
    if (busy && this.policy !== 'always') {
      this.enterElsewhere(null, `SOL session held by another client; ${this.policy === 'never' ? 'not taking it (steal policy "never")' : 'waiting for it to be released'}`);
      return;
    }
    if (busy) await this.sol.deactivate();
    await this.tryActivate(null);
  }

  write(b: Buffer): void {
    if (this.state === 'ours') this.sol.write(b);
  }

  sendBreak(): void {
    if (this.state === 'ours') this.sol.sendBreak();
  }

  /** Operator force: take SOL even from another session. */
  async force(by: string): Promise<void> {
    if (this.state !== 'elsewhere') return;
    const cc = await this.sol.deactivate();
    if (cc === 0) this.h.onNotice(`SOL session taken back from another client by ${by}`);
    await this.tryActivate(this.heldElsewhereSince);
  }

  private async isActive(): Promise<boolean> {
    const r = await this.session.request(0x06, 0x4a, Buffer.from([0x01]));
    if (r.cc !== 0 || r.data.length < 2) throw new IpmiError(`Get Payload Activation Status failed: completion code 0x${r.cc.toString(16)}`, r.cc);
    return (r.data[1] & 0x01) !== 0;
  }

  private async tryActivate(lostAt: number | null): Promise<void> {
    const res = await this.sol.activate();
    if (res === 'busy') {
      this.enterElsewhere(lostAt, lostAt === null ? 'SOL session held by another client; waiting for it to be released' : null);
      return;
    }
    this.state = 'ours';
    this.freeSince = null;
    if (lostAt !== null) {
      const now = this.clock.now();
      this.h.onNotice(`SOL session resumed at ${this.clock.stamp(now)} after ${this.clock.delta(now - lostAt)}`);
    }
    this.heldElsewhereSince = null;
    this.schedule(this.timing.ownPollMs);
  }

  private enterElsewhere(since: number | null, notice: string | null): void {
    this.sol.stop();
    this.state = 'elsewhere';
    this.heldElsewhereSince = since ?? this.clock.now();
    this.freeSince = null;
    if (notice) this.h.onNotice(notice);
    this.schedule(this.timing.waitPollMs);
  }

  /** we lost SOL: never deactivate the new owner (unless policy "always") */
  private lost(): void {
    if (this.state !== 'ours') return;
    const now = this.clock.now();
    this.h.onNotice(`SOL session taken over by another client at ${this.clock.stamp(now)}`);
    this.enterElsewhere(now, null);
    if (this.policy === 'always') this.schedule(0);
  }

  /** SOL stopped ACKing or the BMC flagged deactivation: check now who owns it */
  private suspect(_why: string): void {
    if (this.state !== 'ours') return;
    this.schedule(0);
  }

  private unsolicited(m: IpmiMessage): void {
    // OpenBMC: SOL Activating (transport 0x0C / 0x20) with state 0 for instance 1 = taken away
    if (m.netFn === 0x0c && m.cmd === 0x20 && m.data.length >= 2 && (m.data[0] & 0x0f) === 0 && m.data[1] === 1) this.lost();
  }

  private schedule(ms: number): void {
    if (this.state === 'closed') return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.poll();
    }, ms);
  }

  private async poll(): Promise<void> {
    if (this.polling || this.state === 'closed') return;
    this.polling = true;
    this.polls++;
    try {
      if (this.state === 'ours') {
        const r = await this.session.request(0x06, 0x4b, Buffer.from([0x01, 0x01]));
        if (r.cc === 0 && r.data.length >= 4 && r.data.readUInt32LE(0) !== this.session.sidC) this.lost();
      } else if (this.state === 'elsewhere') {
        if (this.policy === 'always') {
          if (await this.isActive()) await this.sol.deactivate();
          await this.tryActivate(this.heldElsewhereSince);
        } else if (await this.isActive()) this.freeSince = null;
        else if (this.policy === 'polite') {
          const now = this.clock.now();
          this.freeSince ??= now;
          if (now - this.freeSince >= this.timing.quietMs) await this.tryActivate(this.heldElsewhereSince);
        }
      }
    } catch (e) {
      this.polling = false;
      if ((this.state as SolState) !== 'closed') this.fail(e instanceof IpmiError ? e.message : `IPMI error: ${(e as Error).message}`);
      return;
    }
    this.polling = false;
    if (this.state === 'ours') this.schedule(this.timing.ownPollMs);
    else if (this.state === 'elsewhere') this.schedule(this.freeSince !== null ? Math.min(this.timing.waitPollMs, this.timing.quietMs) : this.timing.waitPollMs);
  }

  private fail(reason: string): void {
    this.release();
    this.session.teardown(new IpmiError(reason));
    this.h.onDown(reason);
  }

  private release(): void {
    this.state = 'closed';
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.sol.stop();
    this.sol.clearQueue();
  }

  /** Graceful end: deactivate OUR payload only, then Close Session. */
  async close(): Promise<void> {
    const wasOurs = this.state === 'ours';
    if (this.state === 'closed' && this.session.state === 'closed') return;
    this.release();
    if (wasOurs && this.session.state === 'active') {
      try {
        await this.session.request(0x06, 0x49, Buffer.from([0x01, 0x01, 0, 0, 0, 0]));
      } catch {
        /* BMC gone: nothing left to deactivate */
      }
    }
    await this.session.close();
  }
}
