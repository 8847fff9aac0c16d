// The fleets the benchmark runs daemons against, behind one interface:
//   ipmi     conch-bmcsim, N BMCs, each on its own loopback address (127.A.x.y)
//   telnet   conch-bmcsim terminal-server mode, N telnet ports on one address
//   ssh, ssh-proc  conch-bmcsim SSH mode (fleet-ssh.ts)
//   ipmi_sim real OpenIPMI ipmi_sim BMCs (calibration), hosts in this process
// Every host prints `[seq N]` lines at a steady rate from the start.

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cleanup, Child, waitFor } from './harness.js';
import { startSim } from './ipmi-sim.js';
import { bmcName } from '../src/simulator/bmc-fleet.js';
import { SimHost } from '../src/simulator/host.js';
import { BMCSIM } from './rig.js';
import { renice, withNice, withNofile } from './fleet-proc.js';

export type FleetKind = 'ipmi' | 'telnet' | 'ssh' | 'ssh-proc' | 'ipmi_sim';

export interface Finish {
  /** the last `[seq N]` each host printed */
  lastSeq: Map<string, number>;
  /** bytes each console acknowledged at its BMC (conch-bmcsim IPMI only) */
  acked?: Map<string, number>;
  /** BMC-side SOL retransmissions and output dropped while a console owned SOL (overruns) */
  retransmits?: number;
}

export interface Fleet {
  kind: FleetKind;
  names: string[];
  /** conman.conf console lines */
  consoleLines: string[];
  /** conman.conf console lines for conmand where it needs other options (FreeIPMI workarounds) */
  conmandConsoleLines?: string[];
  /** conman.conf server lines the consoles need (a pswdfile) */
  serverLines?: string[];
  /** processes whose CPU is "the simulator's" */
  pids: number[];
  /** the simulators' control channels (conch-bmcsim only): GET /counters there sums their BMCs */
  controls?: string[];
  /** a BMC beside the typed-at one, in its simulator process, that the daemon does not hold: the SOL floor's (fleet-floor.ts `sol`) */
  solFloor?: { manifest: string; name: string };
  /** a burst spec for fleet-bursts.js (null: bursts come from this process) */
  burstTarget: BurstTarget | null;
  burstHere?(name: string, bytes: number): void;
  /** someone else takes SOL of `name` for `seconds` (IPMI only) */
  steal?(name: string, seconds: number): Promise<void>;
  /** the host's last seq right now */
  lastSeqOf(name: string): Promise<number>;
  /** this host's steady output from now (IPMI only) */
  setRate?(name: string, bytesPerSec: number): Promise<void>;
  /** datagrams this BMC has received so far (IPMI only) */
  packetsIn?(name: string): Promise<number>;
  /** stop the load, then report what the hosts printed */
  finish(): Promise<Finish>;
}

/** http: POST /PATH/NAME/burst on the control channel (PATH bmcs, or ssh for SSH hosts) */
export type BurstTarget = { mode: 'http'; control: string; path?: 'bmcs' | 'ssh' } | { mode: 'telnet'; ports: Record<string, [string, number]> };

// ------------------------------------------------------------ control channel

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

export async function request(base: string, method: 'GET' | 'POST', urlPath: string, body?: unknown): Promise<any> {
  try {
    return await requestOnce(base, method, urlPath, body);
  } catch (e) {
    // a kept-alive connection the simulator closed as it idled (its 5 s keep-alive timeout) just as we reused it: a GET is asked again
    if (method !== 'GET' || (e as NodeJS.ErrnoException).code !== 'ECONNRESET') throw e;
    return requestOnce(base, method, urlPath, body);
  }
}

function requestOnce(base: string, method: 'GET' | 'POST', urlPath: string, body?: unknown): Promise<any> {
  return new Promise((resolve, reject) => {
    const req = http.request(new URL(urlPath, base), { method, agent, headers: { 'content-type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        try {
          const j = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`${method} ${urlPath}: ${res.statusCode} ${JSON.stringify(j)}`));
          else resolve(j);
        } catch (e) {
          reject(e);
        }
      });
    });
    req.setTimeout(60000, () => req.destroy(new Error(`${method} ${urlPath}: no answer in 60 s`)));
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

// ------------------------------------------------------------ conch-bmcsim

/** A /16 of loopback nobody else is likely to use, and a port below FreeIPMI's 32767 limit. */
function pickNet(): { address: string; port: number } {
  // not seeded: where the simulators listen is not what is measured, and two
  // benchmarks started alike must not pick the same network
  const a = 30 + Math.floor(Math.random() * 200);
  return { address: `127.${a}.0.1`, port: 20000 + Math.floor(Math.random() * 2000) };
}

async function spawnBmcsim(c: Cleanup, args: string[], nodeArgs: string[] = [], nice = 0): Promise<{ child: Child; control: string }> {
  for (let attempt = 1; ; attempt++) {
    const [cmd, argv] = withNofile(...withNice(process.execPath, [...nodeArgs, BMCSIM, ...args, '--quiet', '--control-port', '0'], nice), 65536);
    const child = c.child(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const out = await child.waitOutput('# ready', 600_000);
      return { child, control: /# control (\S+)/.exec(out)![1]! };
    } catch (e) {
      await child.stop();
      if (attempt >= 3 || !/EADDRINUSE/.test(child.output)) throw new Error(`conch-bmcsim did not start: ${(e as Error).message}`);
    }
  }
}

export interface SimOptions {
  rate: number;
  /** bmcsim args for the IPMI profile (e.g. --session-timeout 3600) */
  profileArgs: string[];
  /** node flags for the simulator (--cpu-prof with the benchmark's --cpu-prof) */
  nodeArgs?: string[];
  /**
   * CPU niceness of the simulated BMCs and hosts. They stand in for other
   * machines; on the daemon's cores at 0, every datagram the daemon sends
   * wakes the simulator onto the daemon's CPU, where it takes the CPU from the
   * daemon and holds it for its 20 ms fleet tick (seen with sched_switch
   * tracing: the daemon's IPMI thread lost its CPU to the simulator about 120
   * times a second at 1,000 consoles). At 19 they get all the CPU the daemon
   * leaves, but do not take it from the daemon.
   */
  nice?: number;
  /**
   * BMCs (or hosts) in the nice-0 process of their own (typedAndRest): 1,
   * the typed-at one, unless the takeover trials' consoles go there too
   * (fleet --trials-own-cpu).
   */
  ownCpu?: number;
}

/** Start the simulator on a randomly picked loopback network; once more on another if that one is taken. */
export async function spawnOnFreeNet(c: Cleanup, args: (net0: ReturnType<typeof pickNet>) => string[], o: SimOptions): Promise<{ sim: Awaited<ReturnType<typeof spawnBmcsim>>; net0: ReturnType<typeof pickNet> }> {
  let net0 = pickNet();
  try {
    return { sim: await spawnBmcsim(c, args(net0), o.nodeArgs, o.nice), net0 };
  } catch {
    net0 = pickNet();
    return { sim: await spawnBmcsim(c, args(net0), o.nodeArgs, o.nice), net0 };
  }
}

type ManifestEntry = { name: string; address: string; port: number; user: string; password: string };

/** One conch-bmcsim process with `n` IPMI BMCs named `<prefix>NN`. */
async function spawnIpmiSim(c: Cleanup, n: number, prefix: string, o: SimOptions, manifest: string): Promise<{ control: string; pid: number; entries: ManifestEntry[] }> {
  const { sim } = await spawnOnFreeNet(c, (net0) => ['--count', String(n), '--prefix', prefix, '--per-address', '--address', net0.address, '--base-port', String(net0.port), '--heartbeat', '0', '--rate', String(o.rate), '--no-boot', '--manifest', manifest, ...o.profileArgs], o);
  return { control: sim.control, pid: sim.child.proc.pid!, entries: JSON.parse(fs.readFileSync(manifest, 'utf8')) as ManifestEntry[] };
}

/**
 * The typed-at host (`typed01`) in a simulator process of its own at nice 0,
 * whatever --sim-nice says, and the other N-1 in one shared process at the
 * simulators' niceness. It does one host's work; inside the shared process,
 * or at 19, each key waited for the other hosts or for every busy thread of
 * the daemon under test before it was echoed (a real BMC or terminal server
 * answers from its own CPU). The relay floor's UDP echo process runs at 0 too.
 */
export async function typedAndRest<S>(n: number, prefix: string, o: SimOptions, spawn: (count: number, prefix: string, o: SimOptions) => Promise<S>, extra = 0): Promise<{ typed: S; rest: S | null; sims: S[] }> {
  const own = Math.min(n, o.ownCpu ?? 1);
  // `extra` more in the typed-at process, for the caller's own use (not the daemon's)
  const typed = await spawn(own + extra, 'typed', { ...o, nodeArgs: [], nice: 0 });
  const rest = n > own ? await spawn(n - own, prefix, o) : null;
  return { typed, rest, sims: rest ? [typed, rest] : [typed] };
}

/**
 * N IPMI BMCs: the first (the console the latency clients type at) in a
 * simulator process of its own, the other N-1 in one shared process. In a
 * data centre every BMC is its own machine: with the typed-at BMC inside
 * the busy process, each echo also waited for that process's garbage
 * collections and its queue of other BMCs' packets, and the echo figure
 * measured the simulator more than the daemon.
 */
export async function startBmcsimIpmi(c: Cleanup, n: number, o: SimOptions, dir: string): Promise<Fleet> {
  // one more BMC in the typed-at process, for the SOL floor: the last of its manifest, not the daemon's
  const { typed, rest, sims } = await typedAndRest(n, 'node', o, (count, prefix, so) => spawnIpmiSim(c, count, prefix, so, path.join(dir, `manifest-${prefix}.json`)), 1);
  const floorBmc = typed.entries.at(-1)!;
  const controlOf = new Map<string, string>();
  for (const s of sims) for (const e of s.entries) controlOf.set(e.name, s.control);
  const entries = sims.flatMap((s) => s.entries).filter((e) => e !== floorBmc);
  const shared = rest?.control ?? typed.control;
  const ctl = (name: string): string => controlOf.get(name) ?? shared;
  return {
    kind: 'ipmi',
    solFloor: { manifest: path.join(dir, 'manifest-typed.json'), name: floorBmc.name },
    names: entries.map((e) => e.name),
    consoleLines: entries.map((e) => `console name="${e.name}" dev="ipmi:${e.address}:${e.port}" ipmiopts="U:${e.user},P:${e.password}"`),
    pids: sims.map((s) => s.pid),
    controls: sims.map((s) => s.control),
    // bursts go to the shared process only: the typed-at console is never bursted
    burstTarget: { mode: 'http', control: shared },
    steal: async (name, seconds) => void (await request(ctl(name), 'POST', `/bmcs/${name}/steal`, { seconds })),
    lastSeqOf: async (name) => ((await request(ctl(name), 'GET', `/bmcs/${name}`)) as { host: { lastSeq: number } }).host.lastSeq,
    setRate: async (name, bytesPerSec) => void (await request(ctl(name), 'POST', `/bmcs/${name}/rate`, { bytesPerSec })),
    packetsIn: async (name) => ((await request(ctl(name), 'GET', `/bmcs/${name}`)) as { counters: { packetsIn: number } }).counters.packetsIn,
    finish: async () => {
      await Promise.all(sims.map((s) => request(s.control, 'POST', '/fleet/rate', { bytesPerSec: 0 })));
      await new Promise((r) => setTimeout(r, 1000)); // the last clock tick has run
      const lastSeq = new Map<string, number>();
      const acked = new Map<string, number>();
      let retransmits = 0;
      for (const s of sims) {
        const all = (await request(s.control, 'GET', '/bmcs')) as { name: string; host: { lastSeq: number }; counters: { bytesToConsole: number; retransmits: number } }[];
        for (const b of all) {
          lastSeq.set(b.name, b.host.lastSeq);
          acked.set(b.name, b.counters.bytesToConsole);
          retransmits += b.counters.retransmits;
        }
      }
      return { lastSeq, acked, retransmits };
    },
  };
}

// ------------------------------------------------------------ terminal server

/** What a user types at the host to make it print `lines` [seq] lines, logged in or not. */
export const burstKeys = (lines: number): string => `\x03root\r\r\x03seq ${lines}\r`;

/** Type a `seq 1` at a telnet host and read back the seq number it printed. */
function probeTelnet(address: string, port: number, name: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, address);
    let text = '';
    const re = new RegExp(`\\[seq (\\d+)\\] ${name} burst 1/1`);
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`${name}: no answer to a probe in 5 s`));
    }, 5000);
    s.on('connect', () => s.write(burstKeys(1)));
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      const m = re.exec(text);
      if (m) {
        clearTimeout(t);
        s.destroy();
        resolve(Number(m[1]));
      }
    });
    s.on('error', (e) => {
      clearTimeout(t);
      reject(new Error(`${name}: probe: ${e.message}`));
    });
  });
}

/** One conch-bmcsim process in terminal-server mode with `n` hosts named `<prefix>NN`, one TCP port each. */
async function spawnTelnetSim(c: Cleanup, n: number, prefix: string, o: SimOptions): Promise<{ control: string; pid: number; ports: Record<string, [string, number]> }> {
  const { sim, net0 } = await spawnOnFreeNet(c, (net0) => ['--count', '0', '--telnet-count', String(n), '--telnet-prefix', prefix, '--telnet-base-port', String(net0.port), '--address', net0.address, '--heartbeat', '0', '--rate', String(o.rate), '--no-boot'], o);
  const ports: Record<string, [string, number]> = {};
  for (let i = 0; i < n; i++) ports[bmcName(prefix, i + 1, n)] = [net0.address, net0.port + i];
  return { control: sim.control, pid: sim.child.proc.pid!, ports };
}

/** N telnet hosts, the typed-at one in a process of its own (typedAndRest). */
export async function startBmcsimTelnet(c: Cleanup, n: number, o: SimOptions): Promise<Fleet> {
  const { sims } = await typedAndRest(n, 'tel', o, (count, prefix, so) => spawnTelnetSim(c, count, prefix, so));
  const ports: Record<string, [string, number]> = Object.assign({}, ...sims.map((x) => x.ports));
  const names = Object.keys(ports);
  return {
    kind: 'telnet',
    names,
    consoleLines: names.map((name) => `console name="${name}" dev="${ports[name]![0]}:${ports[name]![1]}"`),
    pids: sims.map((x) => x.pid),
    burstTarget: { mode: 'telnet', ports },
    lastSeqOf: (name) => probeTelnet(ports[name]![0], ports[name]![1], name),
    finish: async () => {
      await Promise.all(sims.map((x) => request(x.control, 'POST', '/fleet/rate', { bytesPerSec: 0 })));
      await new Promise((r) => setTimeout(r, 1000));
      // no counters for telnet hosts: each prints one more line, and that seq is the last
      const lastSeq = new Map<string, number>();
      let failedBatches = 0;
      for (let i = 0; i < names.length; i += 100) {
        const batch = names.slice(i, i + 100);
        // a simulator out of file descriptors accepts nothing: give up instead of timing out 100 at a time
        if (failedBatches >= 3) throw new Error(`the telnet hosts stopped answering probes after ${i} of ${names.length} (simulator out of file descriptors?)`);
        const got = await Promise.all(batch.map((name) => probeTelnet(ports[name]![0], ports[name]![1], name).catch(() => 0)));
        batch.forEach((name, k) => lastSeq.set(name, got[k]!));
        if (got.every((g) => g === 0)) failedBatches++;
      }
      return { lastSeq };
    },
  };
}

// ------------------------------------------------------------ real ipmi_sim (calibration)

/** N real ipmi_sim BMCs; each fake host is a SimHost printing at `rate` B/s on its own timer. */
export async function startIpmiSims(c: Cleanup, n: number, o: SimOptions): Promise<Fleet> {
  const names: string[] = [];
  const lines: string[] = [];
  const conmandLines: string[] = [];
  const pids: number[] = [];
  const hosts = new Map<string, SimHost>();
  const timers: NodeJS.Timeout[] = [];
  c.add(() => timers.forEach(clearInterval));
  for (let i = 1; i <= n; i++) {
    const sim = await startSim(c);
    if (o.nice) renice(sim.child.proc.pid!, o.nice);
    const name = bmcName('sim', i, n);
    const host = new SimHost({ name, interval: 0, boot: false }, (s) => sim.host.write(s));
    // keystrokes from the console reach the host (FakeHost only records them)
    sim.host.onReceive = (d) => host.input(d);
    await waitFor(() => sim.host.connected, `ipmi_sim ${i} connected to its host`, 20000);
    host.start();
    names.push(name);
    hosts.set(name, host);
    pids.push(sim.child.proc.pid!);
    lines.push(`console name="${name}" dev="ipmi:127.0.0.1:${sim.bmcPort}" ipmiopts="U:admin,P:password"`);
    // FreeIPMI (inside conmand) needs three workarounds for ipmi_sim: without opensesspriv "privilege
    // level cannot be obtained", without solpayloadsize no SOL, and Get Channel Payload Support must be
    // skipped (it crashes ipmi_sim); conmand 0.2.7 has no name for that one, only libipmiconsole's
    // flag value IPMICONSOLE_WORKAROUND_SKIP_CHANNEL_PAYLOAD_SUPPORT
    conmandLines.push(`console name="${name}" dev="ipmi:127.0.0.1:${sim.bmcPort}" ipmiopts="U:admin,P:password,W:opensesspriv,W:solpayloadsize,W:0x08000000"`);
  }
  // the same clock as conch-bmcsim: one line of about 64 bytes per 640 ms at 100 B/s
  const period = Math.min(1000, Math.max(100, (64 * 1000) / o.rate));
  [...hosts.values()].forEach((h, i) => {
    setTimeout(() => {
      let carry = 0;
      const t = setInterval(() => {
        carry += (o.rate * period) / 1000;
        if (carry >= 1) carry -= h.emit(Math.floor(carry));
      }, period);
      timers.push(t);
    }, (i % 50) * (period / 50));
  });
  return {
    kind: 'ipmi_sim',
    names,
    consoleLines: lines,
    conmandConsoleLines: conmandLines,
    pids, // the hosts run in the benchmark process and are not counted
    burstTarget: null,
    burstHere: (name, bytes) => void hosts.get(name)?.emit(bytes),
    lastSeqOf: async (name) => hosts.get(name)!.lastSeq,
    finish: async () => {
      timers.forEach(clearInterval);
      await new Promise((r) => setTimeout(r, 500));
      return { lastSeq: new Map([...hosts].map(([k, h]) => [k, h.lastSeq])) };
    },
  };
}
