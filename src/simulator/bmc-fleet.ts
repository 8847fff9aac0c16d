// A fleet of simulated BMCs in one process: naming, ports or addresses,
// credentials, and host output driven by the one fleet clock (heartbeat
// lines and a steady byte rate), batched per clock tick.

import { FleetClock } from './bmc-clock.js';
import type { BmcProfile } from './bmc-profiles.js';
import { Bmc } from './bmc-server.js';
import type { BmcUser } from './bmc-session.js';
import type { SimHost } from './host.js';

export interface FleetOptions {
  count: number;
  basePort: number;
  address: string;
  /** one loopback address per BMC (address, address+1, …) all on basePort */
  perAddress: boolean;
  prefix: string;
  user: string;
  password: string;
  /** per-BMC credentials by name */
  credentials?: Map<string, BmcUser>;
  profile: BmcProfile;
  /** seconds between `[seq N]` heartbeat lines per host; 0 = none */
  heartbeat: number;
  /** steady output per host in bytes/s; 0 = none */
  rate: number;
  boot: boolean;
}

export interface ManifestEntry {
  name: string;
  address: string;
  port: number;
  user: string;
  password: string;
}

/** 127.0.0.1 + n → dotted quad */
export function addAddress(base: string, n: number): string {
  const p = base.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`--address: '${base}' is not an IPv4 address`);
  const v = ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3] + n;
  return [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255].join('.');
}

export function bmcName(prefix: string, i: number, count: number): string {
  return `${prefix}${String(i).padStart(Math.max(2, String(count).length), '0')}`;
}

/** A host that prints on the fleet clock instead of its own timer. */
interface Driven {
  host: SimHost;
  rate: number;
  carry: number;
}

export class BmcFleet {
  readonly clock = new FleetClock();
  readonly bmcs: Bmc[] = [];
  private readonly byName = new Map<string, Bmc>();
  private heartbeat: number;
  private rate: number;
  private readonly driven = new Map<SimHost, Driven>();

  constructor(opts: FleetOptions) {
    this.heartbeat = opts.heartbeat;
    this.rate = opts.rate;
    for (let i = 1; i <= opts.count; i++) {
      const name = bmcName(opts.prefix, i, opts.count);
      const user = opts.credentials?.get(name) ?? { name: opts.user, password: opts.password };
      const bmc = new Bmc(
        {
          name,
          address: opts.perAddress ? addAddress(opts.address, i - 1) : opts.address,
          port: opts.perAddress ? opts.basePort : opts.basePort + i - 1,
          user,
          profile: opts.profile,
          boot: opts.boot,
        },
        this.clock,
      );
      this.bmcs.push(bmc);
      this.byName.set(name, bmc);
    }
  }

  get(name: string): Bmc | undefined {
    return this.byName.get(name);
  }

  /** Bind every socket (in batches, so 10,000 binds do not all wait at once), then start the hosts. */
  async start(): Promise<void> {
    const batch = 256;
    try {
      for (let i = 0; i < this.bmcs.length; i += batch) {
        await Promise.all(this.bmcs.slice(i, i + batch).map((b) => b.start()));
      }
    } catch (e) {
      this.stop();
      const msg = String((e as Error).message ?? e);
      if (/EMFILE|ENFILE/.test(msg)) throw new Error(`${msg} — raise the open-file limit (ulimit -n) above the BMC count`);
      throw e;
    }
    this.bmcs.forEach((b, i) => this.drive(b.host, i));
  }

  /** Add a host (BMC or telnet) to the clock-driven output. */
  drive(host: SimHost, index: number): void {
    const d: Driven = { host, rate: this.rate, carry: 0 };
    this.driven.set(host, d);
    if (this.heartbeat > 0) {
      // stagger hosts over one interval so the fleet does not print in lockstep
      const period = this.heartbeat * 1000;
      const beat = (): void => {
        if (!this.driven.has(host)) return;
        host.heartbeat();
        this.clock.after(period, beat);
      };
      this.clock.after(((index * 7919) % 1000) * (period / 1000), beat);
    }
    this.scheduleRate(d, index);
  }

  private scheduleRate(d: Driven, index: number): void {
    if (d.rate <= 0) return;
    // about one line per period: 100 B/s → every 640 ms, never faster than 100 ms
    const period = Math.min(1000, Math.max(100, (64 * 1000) / d.rate));
    const tick = (): void => {
      if (this.driven.get(d.host) !== d || d.rate <= 0) return;
      d.carry += (d.rate * period) / 1000;
      if (d.carry >= 1) d.carry -= d.host.emit(Math.floor(d.carry));
      this.clock.after(period, tick);
    };
    this.clock.after((index % 50) * (period / 50), tick);
  }

  /** Change the steady output rate of every host (bytes/s). */
  setRate(rate: number): void {
    this.rate = rate;
    let i = 0;
    for (const [host, old] of this.driven) {
      const d: Driven = { host, rate, carry: 0 };
      old.rate = 0;
      this.driven.set(host, d);
      this.scheduleRate(d, i++);
    }
  }

  /** Set one host's rate (bytes/s). */
  setHostRate(host: SimHost, rate: number): void {
    const old = this.driven.get(host);
    if (old) old.rate = 0;
    const d: Driven = { host, rate, carry: 0 };
    this.driven.set(host, d);
    this.scheduleRate(d, 0);
  }

  manifest(): ManifestEntry[] {
    return this.bmcs.map((b) => ({ name: b.name, address: b.address, port: b.port, user: b.user.name, password: b.user.password }));
  }

  stop(): void {
    this.clock.stop();
    this.driven.clear();
    for (const b of this.bmcs) b.close();
  }
}
