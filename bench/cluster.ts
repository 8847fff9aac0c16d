// What cluster mode costs and how fast it fails over (bench/README.md,
// "Cluster"; src/cluster/). One run, on conch-bmcsim with N IPMI BMCs whose
// hosts print a `[seq N]` heartbeat line a second:
//   1. plain    ONE conchd without `cluster=` runs the share of the consoles
//               that node n1 will own (the same console lines, the same server
//               lines minus the cluster line), logging; its CPU and RSS over a
//               steady window; then it is stopped (its sessions closed).
//   2. cluster  a real etcd and K conchd nodes sharing all N consoles
//               (bench/cluster-rig.ts); once every console is owned in etcd, as
//               the assignment says, and logging on its owner: each node's and
//               etcd's CPU and RSS over the same window.
//   3. failover kill -9 of the last node; for each of its consoles, the time
//               from the kill until the new owner's log has the `taken over by
//               node X from node Y` line and a `[seq N]` line after it, and the
//               host's lines lost (first seq after the takeover line, minus the
//               last seq in the dead node's log, minus 1).
//   4. fights   the simulator's record of SOL takeovers: none may have displaced
//               a session that was still talking (silent < 2.5 s); those by
//               another client address:port (another node) are counted apart.
// Prints a summary table (one row per run), a table per process and notes
// (the start and the failover every 5-10 s: consoles owned and logging, CPU
// of each process, the BMCs' traffic; the nodes' output lines that report
// trouble, by kind), and writes them, with the command and the machine, to
// --out. CONCH_BENCH_KEEP=DIR keeps the daemons' output and samples of
// lagging logs there.
//
//   node dist/bench/cluster.js [--consoles 3000] [--nodes 3] [--runs 1]
//        [--seconds 60] [--warmup 10] [--ttl 10] [--sim-nice 19] [--victim-sim-nice N] [--quick] [--out FILE]
//
// --victim-sim-nice N: the BMCs of the node that is killed in a simulator
// process of their own at niceness N (real BMCs answer from CPUs of their
// own; in the shared process each take-back waits behind 3,000 BMCs' work).

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cleanup, freePort, waitFor } from './harness.js';
import { CONCHD } from './rig.js';
import { benchArgs } from './bench-args.js';
import { spawnOnFreeNet, request } from './fleet-sims.js';
import { seqsIn, waitAllLogging } from './fleet-logs.js';
import { treeCpuSeconds, treeRssMiB } from './fleet-proc.js';
import { percentile } from './stats.js';
import { bmcOf, startPinger, PING_TIMEOUT_MS } from './bmc-ping.js';
import { EtcdServer, startNode, type ClusterNode } from './cluster-rig.js';
import { assign } from '../src/cluster/assign.js';
import { prefixEnd } from '../src/cluster/etcd.js';

const o = benchArgs(
  process.argv.slice(2),
  'cluster',
  { consoles: 3000, nodes: 3, runs: 1, seconds: 60, warmup: 10, ttl: 10, 'sim-nice': 19, 'victim-sim-nice': -1 },
  { consoles: 60, seconds: 10, warmup: 3 },
);
const N = o.consoles;
const K = o.nodes;
if (!(Number.isInteger(N) && N >= K && Number.isInteger(K) && K >= 2 && o.runs >= 1 && o.seconds > 0 && o.warmup >= 0 && o.ttl >= 1)) {
  throw new Error('--consoles N ≥ --nodes K ≥ 2, --runs R ≥ 1, --seconds S > 0, --warmup W ≥ 0, --ttl T ≥ 1');
}
const NAMES = Array.from({ length: K }, (_, i) => `n${i + 1}`);
const VICTIM = NAMES[K - 1]!;
const PREFIX = '/conch/bench/';
/** a takeover from a session silent for less than this displaced a live one (test/cluster.test.ts) */
const LIVE_MS = 2500;
/** how long the failed-over consoles may take before the run gives up on the rest */
const FAILOVER_LIMIT_MS = 120_000;

const f1 = (x: number): string => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '–');
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const say = (m: string): void => void process.stderr.write(`# ${m}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function read(file: string, from = 0): string {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fs.fstatSync(fd).size;
    if (size <= from) return '';
    const b = Buffer.alloc(size - from);
    const got = fs.readSync(fd, b, 0, b.length, from);
    return b.subarray(0, got).toString('latin1');
  } finally {
    fs.closeSync(fd);
  }
}
const sizeOf = (file: string): number => fs.statSync(file, { throwIfNoEntry: false })?.size ?? 0;
const logOf = (dir: string, name: string): string => path.join(dir, `${name}.log`);

// ------------------------------------------------------------ the simulator

interface Sim {
  /** the simulator processes: one, or with --victim-sim-nice the victim's BMCs in a second */
  procs: { who: string; control: string; pid: number }[];
  /** console name → its conman.conf line */
  lines: Map<string, string>;
  names: string[];
  /** the simulated host behind a console, as its `[seq N] HOST` lines name it */
  host(console: string): string;
}

type ManifestEntry = { name: string; address: string; port: number; user: string; password: string };

/**
 * conch-bmcsim: N BMCs, one loopback address each, hosts printing a heartbeat
 * line a second, consoles named bmcNNNN. With --victim-sim-nice, the BMCs of
 * the consoles the victim will run (the assignment of all K nodes, as every
 * node computes it) are in a simulator process of their own at that
 * niceness, as real BMCs answer from CPUs of their own; the others share
 * one process at --sim-nice.
 */
async function startSim(c: Cleanup, dir: string): Promise<Sim> {
  const spawn = async (count: number, prefix: string, nice: number, who: string): Promise<{ who: string; control: string; pid: number; entries: ManifestEntry[] }> => {
    const manifest = path.join(dir, `manifest-${prefix}.json`);
    const { sim } = await spawnOnFreeNet(
      c,
      (net0) => ['--count', String(count), '--prefix', prefix, '--per-address', '--address', net0.address, '--base-port', String(net0.port), '--heartbeat', '1', '--no-boot', '--manifest', manifest],
      { rate: 0, profileArgs: [], nice },
    );
    return { who, control: sim.control, pid: sim.child.proc.pid!, entries: JSON.parse(fs.readFileSync(manifest, 'utf8')) as ManifestEntry[] };
  };
  const line = (name: string, e: ManifestEntry): string => `console name="${name}" dev="ipmi:${e.address}:${e.port}" ipmiopts="U:${e.user},P:${e.password}"`;
  if (o['victim-sim-nice'] < 0) {
    const one = await spawn(N, 'bmc', o['sim-nice'], 'sim');
    return { procs: [one], names: one.entries.map((e) => e.name), lines: new Map(one.entries.map((e) => [e.name, line(e.name, e)])), host: (c) => c };
  }
  const names = Array.from({ length: N }, (_, i) => `bmc${String(i + 1).padStart(String(N).length, '0')}`);
  const share = assign(names, NAMES);
  const victims = names.filter((n) => share.get(n) === VICTIM);
  const rest = await spawn(N - victims.length, 'bmc', o['sim-nice'], 'sim');
  const own = await spawn(victims.length, 'vic', o['victim-sim-nice'], `sim of ${VICTIM}'s BMCs`);
  const next = { rest: 0, own: 0 };
  const bmc = new Map(names.map((n) => [n, share.get(n) === VICTIM ? own.entries[next.own++]! : rest.entries[next.rest++]!]));
  // the hosts print their BMC's name in their lines
  return { procs: [rest, own], names, lines: new Map(names.map((n) => [n, line(n, bmc.get(n)!)])), host: (c) => bmc.get(c)?.name ?? c };
}

/** every simulator's /bmcs, one list */
async function allBmcs<T>(sim: Sim): Promise<T[]> {
  return (await Promise.all(sim.procs.map((p) => request(p.control, 'GET', '/bmcs') as Promise<T[]>))).flat();
}

/**
 * The simulator's SOL takeovers since `since` (wall ms); `live`: those that
 * displaced a session still talking, `liveOther` those of them by another
 * client address:port (each node's IPMI sessions share its socket: the same
 * address:port is the same node replacing a session of its own).
 */
async function takeovers(sim: Sim, since: number): Promise<{ all: number; live: string[]; liveOther: number }> {
  const bmcs = await allBmcs<{ name: string; takeovers: { at: number; by: string; from: string; fromSilentMs: number }[] }>(sim);
  const recent = bmcs.flatMap((b) => b.takeovers.filter((t) => t.at >= since).map((t) => ({ ...t, name: b.name })));
  const live = recent.filter((t) => t.fromSilentMs < LIVE_MS);
  return { all: recent.length, live: live.map((t) => `${t.name}: ${t.by} took SOL from ${t.from}, silent only ${t.fromSilentMs} ms`), liveOther: live.filter((t) => t.by !== t.from).length };
}

/** the simulated hosts' `[seq]` lines printed so far, summed, and when */
async function hostLines(sim: Sim): Promise<{ lines: number; at: number }> {
  const bmcs = await allBmcs<{ host: { lastSeq: number } }>(sim);
  return { lines: bmcs.reduce((a, b) => a + b.host.lastSeq, 0), at: Date.now() };
}

/** host lines per second per host between two hostLines() (1 when the simulator keeps up) */
const lineRate = (a: { lines: number; at: number }, b: { lines: number; at: number }): number => (b.lines - a.lines) / N / ((b.at - a.at) / 1000);

/**
 * What the processes and the simulated BMCs did since the last look: CPU
 * s/min of each, the BMCs' datagrams in and out, and the host bytes the
 * consoles acknowledged (their SOL data arriving); "no answer" when the
 * simulator's control channel took more than 3 s.
 */
class Probe {
  private last: { t: number; cpu: number[]; c: Record<string, number> | null };
  constructor(
    private readonly sim: Sim,
    private readonly procs: { who: string; pid: number }[],
  ) {
    this.last = { t: Date.now(), cpu: procs.map((p) => treeCpuSeconds(p.pid)), c: null };
  }
  /** the counters to start from */
  async init(): Promise<this> {
    this.last.c = await this.counters();
    return this;
  }
  private async counters(): Promise<Record<string, number> | null> {
    const t = new Promise<null>((r) => setTimeout(() => r(null), 3000).unref());
    // the simulators' counters added up (null: one of them did not answer)
    const all = Promise.all(this.sim.procs.map((p) => request(p.control, 'GET', '/counters') as Promise<Record<string, number>>)).then(
      (cs) => {
        const sum: Record<string, number> = {};
        for (const c of cs) for (const [k, v] of Object.entries(c)) if (typeof v === 'number') sum[k] = (sum[k] ?? 0) + v;
        return sum;
      },
      () => null,
    );
    return Promise.race([all, t]);
  }
  async look(): Promise<string> {
    const c = await this.counters();
    const now = { t: Date.now(), cpu: this.procs.map((p) => treeCpuSeconds(p.pid)), c };
    const min = (now.t - this.last.t) / 60000;
    const cpu = this.procs.map((p, i) => `${p.who} ${((now.cpu[i]! - this.last.cpu[i]!) / min).toFixed(0)}`).join(', ');
    const d = (k: string): number => (c && this.last.c ? (c[k] ?? 0) - (this.last.c[k] ?? 0) : NaN);
    const s = (now.t - this.last.t) / 1000;
    const bmc = c ? (this.last.c ? `BMCs: ${(d('packetsIn') / s).toFixed(0)} datagrams/s in, ${(d('packetsOut') / s).toFixed(0)} out, ${(d('bytesToConsole') / s / 1024).toFixed(1)} KiB/s acknowledged, ${(d('retransmits') / s).toFixed(0)} retransmits/s` : 'BMCs: –') : 'BMCs: no answer in 3 s';
    if (c) this.last = now;
    else this.last = { ...now, c: this.last.c };
    return `CPU s/min ${cpu}; ${bmc}`;
  }
}

// ------------------------------------------------------------ CPU and RSS

interface Usage {
  who: string;
  consoles: string;
  cpuPerMin: number;
  rssMiB: number;
}

/** CPU s/min and largest RSS of each process over `seconds` (RSS read every 5 s) */
async function measure(procs: { who: string; pid: number; consoles: string }[], seconds: number): Promise<Usage[]> {
  const cpu0 = procs.map((p) => treeCpuSeconds(p.pid));
  const peak = procs.map((p) => treeRssMiB(p.pid));
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await sleep(Math.min(5000, t0 + seconds * 1000 - Date.now()));
    procs.forEach((p, i) => (peak[i] = Math.max(peak[i]!, treeRssMiB(p.pid))));
  }
  const min = (Date.now() - t0) / 60000;
  return procs.map((p, i) => ({ who: p.who, consoles: p.consoles, cpuPerMin: (treeCpuSeconds(p.pid) - cpu0[i]!) / min, rssMiB: peak[i]! }));
}

// ------------------------------------------------------------ one run

interface Failover {
  victim: string;
  consoles: number;
  /** seconds from the kill to the takeover line and a [seq] line after it, per console that came back */
  seconds: number[];
  /** seconds from the kill to the new owner's claim (its owner key's `at`), per console */
  claimed: number[];
  /** host lines lost per console */
  lost: number[];
  /** consoles not back within FAILOVER_LIMIT_MS */
  missing: string[];
  /** consoles per new owner */
  to: Map<string, number>;
  /** seconds from the claim to the takeover line and a [seq] line, per console */
  claimToLog: number[];
  /** seconds from the claim until the new owner's log said `connected` (SOL active), and from then to the first [seq] line, per console */
  claimToUp: number[];
  upToLog: number[];
  /** per console back: its new owner and where that log stood at the kill */
  back: Map<string, { node: string; offset: number }>;
  /** the kill (wall ms) */
  t0: number;
  /** the victim's consoles whose held/NAME in etcd named no SOL session of the victim at the kill */
  unpublished: number;
  /** ms: a sessionless request to 50 of the dead node's BMCs, 5 a second, from the kill until every console was back (PING_TIMEOUT_MS: unanswered) */
  rtts: number[];
  /** the survivors' CPU s/min from the kill until every console was back */
  cpu: string[];
  /** every 5 s: consoles back, CPU, the BMCs' traffic */
  progress: string[];
}

interface Startup {
  /** the nodes' start → the last console owned as the assignment says and logging on its owner (s) */
  allS: number;
  /** per console: the nodes' start → its first [seq] line on its owner (s) */
  logging: number[];
  /** per console: the nodes' start → its claim (its owner key's `at`, s) */
  claimed: number[];
  /** consoles logging every 10 s */
  progress: string[];
}

interface RunResult {
  run: number;
  plainConsoles: number;
  plainUpS: number;
  startup: Startup;
  usage: Usage[];
  failover: Failover;
  /** SOL takeovers at the BMCs per phase, and those of a live session */
  takeovers: { phase: string; all: number }[];
  takeoversLive: string[];
  takeoversLiveOther: number;
  /** lines missing in the new owners' logs after the failed-over consoles' first line there */
  laterGaps: { lines: number; consoles: number };
  /** consoles a node stopped and claimed again, at the start and after the kill */
  heldAgain: { before: number; after: number };
  /** `SOL session held by another client; waiting for it to be released`: at the start, after the kill */
  waits: { before: number; after: number };
  /** the simulated hosts' [seq] lines per second each, in the cluster's window and from the kill until every console was back (1 if the simulator kept up) */
  hostRate: { window: number; failover: number };
  /** one range of the whole prefix */
  range: { keys: number; bytes: number; ms: number[] };
  /** node output lines that report trouble, by kind: node, count, first and last seconds after the nodes' start, an example */
  trouble: { node: string; kind: string; count: number; first: number; last: number; example: string }[];
}

/** ONE plain conchd with `names`: started, all logging, measured (with the simulator), stopped */
async function plainPhase(c: Cleanup, root: string, sim: Sim, names: string[]): Promise<{ usage: Usage[]; upS: number; output: string }> {
  const dir = path.join(root, 'plain');
  fs.mkdirSync(dir);
  const port = await freePort();
  const conf = path.join(dir, 'conman.conf');
  // the nodes' configuration (bench/cluster-rig.ts startNode) minus the cluster line
  fs.writeFileSync(
    conf,
    [
      `server port=${port} loopback=on logdir="${dir}" statedir="${path.join(dir, 'state')}" pidfile="${path.join(dir, 'conchd.pid')}"`,
      'global log="%N.log"',
      ...names.map((n) => sim.lines.get(n)!),
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  say(`plain conchd with ${names.length} consoles`);
  const t0 = Date.now();
  const d = c.child(process.execPath, [CONCHD, '-F', '-c', conf], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await d.waitOutput(/Listening on TCP port \d+/, 60000);
  const up = await waitAllLogging(dir, names, t0, 180000, () => {});
  if (up.logging < names.length) throw new Error(`plain conchd: only ${up.logging} of ${names.length} consoles logging after 180 s`);
  say(`plain: all ${names.length} logging after ${(up.ms / 1000).toFixed(1)} s; warm-up ${o.warmup} s, then ${o.seconds} s measured`);
  await sleep(o.warmup * 1000);
  const usage = await measure(
    [
      { who: 'plain conchd', pid: d.proc.pid!, consoles: `${names.length} of ${names.length}` },
      ...sim.procs.map((p) => ({ who: `conch-bmcsim${sim.procs.length > 1 ? ` (${p.who})` : ''}, plain window`, pid: p.pid, consoles: '–' })),
    ],
    o.seconds,
  );
  await d.stop(30000);
  return { usage, upS: up.ms / 1000, output: d.output };
}

/** console → its owner key's node and claim time (wall ms) */
async function ownerKeys(etcd: EtcdServer): Promise<Map<string, { node: string; at: number }>> {
  const out = new Map<string, { node: string; at: number }>();
  const p = `${PREFIX}owner/`;
  for (const kv of await etcd.range(p)) out.set(kv.key.slice(p.length), JSON.parse(kv.value) as { node: string; at: number });
  return out;
}

/** does `owners` give every console to a live node, as the assignment says? */
function isSettled(owners: Map<string, { node: string }>, all: string[], want: Map<string, string>): boolean {
  if (owners.size !== all.length) return false;
  for (const [c, v] of owners) if (want.get(c) !== v.node) return false;
  return true;
}

/** every console owned in etcd by a live node, as the assignment says */
async function settled(etcd: EtcdServer, all: string[], live: string[], timeoutMs: number): Promise<Map<string, string>> {
  const want = assign(all, [...live].sort());
  const o = await waitFor(
    async () => {
      const owners = await ownerKeys(etcd).catch(() => new Map<string, { node: string; at: number }>());
      return isSettled(owners, all, want) ? owners : null;
    },
    `every console owned by one of ${live.join(', ')}`,
    timeoutMs,
    500,
  );
  return new Map([...o].map(([c, v]) => [c, v.node]));
}

/**
 * From the nodes' start (t0): until every console is owned as the
 * assignment says and has a [seq] line in its owner's log. Each console's
 * log on each node is read again only when it has grown.
 */
async function startup(etcd: EtcdServer, nodes: Map<string, ClusterNode>, all: string[], t0: number, timeoutMs: number, probe: Probe): Promise<{ s: Startup; owners: Map<string, string> }> {
  const want = assign(all, NAMES);
  const size = new Map(NAMES.map((n) => [n, new Map<string, number>()]));
  const seen = new Map(NAMES.map((n) => [n, new Map<string, number>()])); // node → console → ms of its first [seq] there
  const progress: string[] = [];
  let owners = new Map<string, { node: string; at: number }>();
  let lastEtcd = 0;
  let lastSay = t0;
  for (;;) {
    const now = Date.now();
    if (now - lastEtcd >= 2000) {
      owners = await ownerKeys(etcd).catch(() => owners);
      lastEtcd = Date.now();
    }
    for (const n of NAMES) {
      const dir = nodes.get(n)!.dir;
      const sz = size.get(n)!;
      const sn = seen.get(n)!;
      for (const c of all) {
        if (sn.has(c)) continue;
        const f = logOf(dir, c);
        const s = sizeOf(f);
        if (s === (sz.get(c) ?? 0)) continue;
        sz.set(c, s);
        if (read(f).includes('[seq ')) sn.set(c, Date.now() - t0);
      }
    }
    const ok = isSettled(owners, all, want);
    const logging = all.filter((c) => seen.get(owners.get(c)?.node ?? '')?.has(c)).length;
    if (Date.now() - lastSay >= 10000) {
      lastSay = Date.now();
      // how far the owners' logs got: opened (the first line), and their bytes
      const sizes = all.map((c) => size.get(owners.get(c)?.node ?? '')?.get(c) ?? 0);
      const opened = sizes.filter((x) => x > 0).length;
      const kib = sizes.reduce((a, b) => a + b, 0) / 1024;
      const line = `${((lastSay - t0) / 1000).toFixed(0)} s: ${owners.size} owned, ${opened} logs opened (${kib.toFixed(0)} KiB), ${logging} logging on their owner; ${await probe.look()}`;
      progress.push(line);
      say(`cluster start, ${line}`);
      sample('start', t0, all.filter((c) => owners.has(c) && !seen.get(owners.get(c)!.node)!.has(c)).slice(0, 3).map((c) => ({ c, file: logOf(nodes.get(owners.get(c)!.node)!.dir, c), from: 0 })));
    }
    if (ok && logging === all.length) {
      const logTimes = all.map((c) => seen.get(owners.get(c)!.node)!.get(c)! / 1000);
      return {
        s: { allS: Math.max(...logTimes), logging: logTimes, claimed: all.map((c) => (owners.get(c)!.at - t0) / 1000), progress },
        owners: new Map([...owners].map(([c, v]) => [c, v.node])),
      };
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`after ${timeoutMs / 1000} s: ${owners.size} of ${all.length} owned (${ok ? '' : 'not '}as assigned), ${logging} logging on their owner`);
    await sleep(500);
  }
}

/** kill -9 the victim; each of its consoles' time to its takeover line and a [seq] line on a survivor */
async function failover(etcd: EtcdServer, nodes: Map<string, ClusterNode>, owners: Map<string, string>, sim: Sim): Promise<Failover> {
  const victim = nodes.get(VICTIM)!;
  const survivors = NAMES.filter((n) => n !== VICTIM);
  const lost = [...owners].filter(([, n]) => n === VICTIM).map(([c]) => c);
  const offset = new Map(lost.map((c) => [c, new Map(survivors.map((s) => [s, sizeOf(logOf(nodes.get(s)!.dir, c))]))]));
  /** per console: the survivor whose log has the takeover line, its log from that line on */
  const back = new Map<string, { node: string; ms: number; text: string }>();
  const takeover = (c: string): RegExp => new RegExp(`Console \\[${c}\\] taken over by node (\\S+) from node ${VICTIM} at `);
  // what the new owners will find of the victim's SOL sessions (held/NAME, the handover's `earlier`)
  let unpublished = 0;
  try {
    const held = new Map((await etcd.range(`${PREFIX}held/`)).map((kv) => [kv.key.slice(`${PREFIX}held/`.length), JSON.parse(kv.value) as { node: string; sessions?: unknown[] }]));
    unpublished = lost.filter((c) => held.get(c)?.node !== VICTIM || (held.get(c)?.sessions ?? []).length === 0).length;
  } catch (e) {
    say(`reading held/: ${(e as Error).message}`);
    unpublished = NaN;
  }
  const cpu0 = new Map(NAMES.map((n) => [n, treeCpuSeconds(nodes.get(n)!.child.proc.pid!)]));
  say(`kill -9 ${VICTIM} (${lost.length} consoles; ${unpublished} of them with no SOL session of ${VICTIM} in etcd)`);
  const seen = new Map(lost.map((c) => [c, new Map(survivors.map((s) => [s, offset.get(c)!.get(s)!]))]));
  const probe = await new Probe(sim, [...survivors.map((n) => ({ who: n, pid: nodes.get(n)!.child.proc.pid! })), { who: 'etcd', pid: etcd.child!.proc.pid! }, ...sim.procs]).init();
  const progress: string[] = [];
  /** per console: ms from the kill until its new owner's log said it is connected (polled like `back`) */
  const up = new Map<string, number>();
  // the floor under each take-back: the round trip to the dead node's BMCs while the survivors take them over
  const pinger = startPinger(lost.filter((_, i) => i % Math.ceil(lost.length / 50) === 0).map((c) => bmcOf(sim.lines.get(c)!)!));
  const t0 = Date.now();
  process.kill(victim.child.proc.pid!, 'SIGKILL');
  let lastSay = t0;
  while (back.size < lost.length && Date.now() - t0 < FAILOVER_LIMIT_MS) {
    for (const c of lost) {
      if (back.has(c)) continue;
      for (const s of survivors) {
        const f = logOf(nodes.get(s)!.dir, c);
        const size = sizeOf(f);
        if (size === seen.get(c)!.get(s)) continue;
        seen.get(c)!.set(s, size);
        const text = read(f, offset.get(c)!.get(s)!);
        const m = takeover(c).exec(text);
        if (m && m[1] === s && !up.has(c) && text.includes(`Console [${c}] connected to`, m.index)) up.set(c, Date.now() - t0);
        if (m && m[1] === s && seqsIn(text.slice(m.index), sim.host(c)).length > 0) {
          back.set(c, { node: s, ms: Date.now() - t0, text: text.slice(m.index) });
          break;
        }
      }
    }
    if (Date.now() - lastSay >= 5000) {
      lastSay = Date.now();
      const line = `${((lastSay - t0) / 1000).toFixed(0)} s: ${back.size} of ${lost.length} back; ${await probe.look()}`;
      progress.push(line);
      say(`failover, ${line}`);
      sample('failover', t0, lost.filter((c) => !back.has(c)).slice(0, 2).flatMap((c) => survivors.map((s) => ({ c, file: logOf(nodes.get(s)!.dir, c), from: offset.get(c)!.get(s)! }))));
    }
    if (back.size < lost.length) await sleep(200);
  }
  const rtts = pinger.stop();
  const busy = (Date.now() - t0) / 60000;
  const cpu = survivors.map((n) => `${n} ${((treeCpuSeconds(nodes.get(n)!.child.proc.pid!) - cpu0.get(n)!) / busy).toFixed(1)}`);
  await victim.child.exited;
  const keys = await ownerKeys(etcd).catch(() => new Map<string, { node: string; at: number }>());
  const seconds: number[] = [];
  const claimed: number[] = [];
  const lines: number[] = [];
  const claimToLog: number[] = [];
  const claimToUp: number[] = [];
  const upToLog: number[] = [];
  const to = new Map<string, number>();
  for (const c of lost) {
    const k = keys.get(c);
    if (k && k.node !== VICTIM) claimed.push((k.at - t0) / 1000);
    const b = back.get(c);
    if (!b) continue;
    seconds.push(b.ms / 1000);
    // (a console claimed again since, "held again", has a later key: left out)
    if (k && k.node === b.node && k.at - t0 <= b.ms) {
      claimToLog.push((b.ms - (k.at - t0)) / 1000);
      // (seen at the same poll as the line after it: connected then, or earlier)
      const u = up.get(c) ?? b.ms;
      claimToUp.push(Math.max(0, u - (k.at - t0)) / 1000);
      upToLog.push((b.ms - u) / 1000);
    }
    to.set(b.node, (to.get(b.node) ?? 0) + 1);
    const dead = seqsIn(read(logOf(victim.dir, c)), sim.host(c));
    const first = seqsIn(b.text, sim.host(c))[0]!;
    if (dead.length) lines.push(first - Math.max(...dead) - 1);
  }
  const missing = lost.filter((c) => !back.has(c));
  const w = seconds.length ? Math.max(...seconds) : NaN;
  say(`failover: ${seconds.length} of ${lost.length} consoles back, the last after ${w.toFixed(1)} s (claimed p50 ${f2(percentile(claimed, 50))} s, max ${f2(Math.max(...claimed))} s)${missing.length ? `; not back: ${missing.slice(0, 10).join(' ')}` : ''}`);
  const at = new Map([...back].map(([c, b]) => [c, { node: b.node, offset: offset.get(c)!.get(b.node)! }]));
  return { victim: VICTIM, consoles: lost.length, seconds, claimed, lost: lines, missing, to, claimToLog, claimToUp, upToLog, back: at, t0, unpublished, cpu, progress, rtts };
}

/**
 * The failed-over consoles' host lines missing from their new owner's log
 * after its first line there (a console stopped and started again loses its
 * lines meanwhile): lines, and consoles with any.
 */
function laterGaps(nodes: Map<string, ClusterNode>, fo: Failover, sim: Sim): { lines: number; consoles: number } {
  let lines = 0;
  let consoles = 0;
  for (const [c, b] of fo.back) {
    const text = read(logOf(nodes.get(b.node)!.dir, c), b.offset);
    const i = text.search(new RegExp(`Console \\[${c}\\] taken over by node `));
    const seqs = seqsIn(text.slice(Math.max(0, i)), sim.host(c));
    if (seqs.length === 0) continue;
    const gap = Math.max(...seqs) - Math.min(...seqs) + 1 - new Set(seqs).size;
    lines += gap;
    if (gap > 0) consoles++;
  }
  return { lines, consoles };
}

/** one range of the whole prefix as etcd's gateway serves it (JSON): its keys, size and time */
async function probeRange(url: string): Promise<{ keys: number; bytes: number; ms: number[] }> {
  const b = Buffer.from(PREFIX);
  const body = JSON.stringify({ key: b.toString('base64'), range_end: prefixEnd(PREFIX) });
  const ms: number[] = [];
  let bytes = 0;
  let keys = 0;
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.request(new URL('/v3/kv/range', url), { method: 'POST' }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      });
      req.on('error', reject);
      req.end(body);
    });
    ms.push(performance.now() - t);
    bytes = Buffer.byteLength(text);
    keys = ((JSON.parse(text) as { kvs?: unknown[] }).kvs ?? []).length;
    await sleep(200);
  }
  return { keys, bytes, ms };
}

/** lines `re` of the nodes' output (a console's) before and after `split` (wall ms) */
function countLines(outputs: Map<string, string>, split: number, re: string): { before: number; after: number } {
  const r = { before: 0, after: 0 };
  for (const text of outputs.values()) {
    for (const m of text.matchAll(new RegExp(`^(\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d) \\w+: Console \\[[^\\]]+\\] ${re}`, 'gm'))) {
      if (Date.parse(`${m[1]!.replace(' ', 'T')}Z`) >= Math.floor(split / 1000) * 1000) r.after++;
      else r.before++;
    }
  }
  return r;
}

/** the nodes' output lines (their daemon logs, -F) that report trouble, grouped by kind */
function trouble(outputs: Map<string, string>, t0: number): RunResult['trouble'] {
  const kinds = new Map<string, RunResult['trouble'][number]>();
  const day = new Date(t0).toISOString().slice(0, 10);
  for (const [node, text] of outputs) {
    for (const raw of text.split('\n')) {
      const line = raw.trim();
      const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (\w+): (.*)$/.exec(line);
      const level = m?.[2] ?? '';
      const msg = m?.[3] ?? line;
      if (!line || !(/^(WARNING|ERR|CRIT|ALERT|EMERG)$/.test(level) || /error|fail|cannot|refused|timed? ?out|no answer|vanished|releases its|stopped on node|exception|uncaught/i.test(msg))) continue;
      const kind = `${level} ${msg}`
        .replace(/\[[^\]]*\]/g, '[…]')
        .replace(/<[^>]*>/g, '<…>')
        .replace(/\d+(\.\d+)*(:\d+)?/g, 'N');
      const at = m && m[1]!.startsWith(day) ? (Date.parse(`${m[1]!.replace(' ', 'T')}Z`) - t0) / 1000 : NaN;
      const key = `${node}\0${kind}`;
      const k = kinds.get(key);
      if (k) {
        k.count++;
        if (Number.isFinite(at)) {
          k.first = Math.min(k.first, at);
          k.last = Math.max(k.last, at);
        }
      } else kinds.set(key, { node, kind, count: 1, first: at, last: at, example: line });
    }
  }
  return [...kinds.values()].sort((a, b) => b.count - a.count);
}

/** with CONCH_BENCH_KEEP=DIR: a few logs as they stand now (size, mtime, text from `from`) appended to DIR/cluster-samples.txt */
function sample(what: string, t0: number, files: { c: string; file: string; from: number }[]): void {
  const dir = process.env.CONCH_BENCH_KEEP;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  const out = files.map(({ c, file, from }) => {
    const st = fs.statSync(file, { throwIfNoEntry: false });
    return `--- ${what} +${((Date.now() - t0) / 1000).toFixed(1)} s: ${c} ${file} size ${st?.size ?? '-'} mtime +${st ? ((st.mtimeMs - t0) / 1000).toFixed(1) : '-'} s\n${JSON.stringify(read(file, from).slice(-600))}\n`;
  });
  fs.appendFileSync(path.join(dir, 'cluster-samples.txt'), out.join(''));
}

/** with CONCH_BENCH_KEEP=DIR: the daemons' output kept there for a closer look */
function keep(run: number, outputs: Map<string, string>): void {
  const dir = process.env.CONCH_BENCH_KEEP;
  if (!dir) return;
  fs.mkdirSync(dir, { recursive: true });
  for (const [who, text] of outputs) fs.writeFileSync(path.join(dir, `cluster-run${run}-${who}.out`), text);
  say(`daemon output kept in ${dir}`);
}

async function oneRun(run: number): Promise<RunResult> {
  const c = new Cleanup();
  const onSig = (): void => void c.run().then(() => process.exit(130));
  process.once('SIGINT', onSig);
  try {
    const root = c.dir('conch-bench-cluster-');
    say(`run ${run}: starting ${N} simulated BMCs (heartbeat 1 s, nice ${o['sim-nice']}${o['victim-sim-nice'] >= 0 ? `; ${VICTIM}'s in a process of their own at nice ${o['victim-sim-nice']}` : ''})`);
    const sim = await startSim(c, root);
    const since = Date.now();
    const all = sim.names;
    const share = assign(all, NAMES);
    const mineN1 = all.filter((n) => share.get(n) === 'n1');
    const plain = await plainPhase(c, root, sim, mineN1);

    const etcd = await EtcdServer.start(c);
    const consoles = all.map((n) => sim.lines.get(n)!).join('\n') + '\n';
    say(`etcd on ${etcd.url}; starting ${K} nodes (TTL ${o.ttl} s)`);
    const t0 = Date.now();
    const nodes = new Map<string, ClusterNode>();
    await Promise.all(
      NAMES.map(async (name) => {
        nodes.set(name, await startNode(c, { name, dir: path.join(root, name), etcd: etcd.url, prefix: PREFIX, consoles, ttl: o.ttl }));
      }),
    );
    const procs = [...NAMES.map((n) => ({ who: n, pid: nodes.get(n)!.child.proc.pid! })), { who: 'etcd', pid: etcd.child!.proc.pid! }, ...sim.procs];
    const up = await startup(etcd, nodes, all, t0, 240000, await new Probe(sim, procs).init());
    const byNode = new Map(NAMES.map((n) => [n, all.filter((x) => up.owners.get(x) === n)]));
    say(
      `cluster: every console owned and logging after ${up.s.allS.toFixed(1)} s (${NAMES.map((n) => `${n} ${byNode.get(n)!.length}`).join(', ')}; ` +
        `claimed p50 ${f1(percentile(up.s.claimed, 50))} s, max ${f1(Math.max(...up.s.claimed))} s; logging p50 ${f1(percentile(up.s.logging, 50))} s); warm-up ${o.warmup} s, then ${o.seconds} s measured`,
    );
    await sleep(o.warmup * 1000);
    const lines0 = await hostLines(sim);
    const usage = await measure(
      [
        ...NAMES.map((n) => ({ who: `node ${n}`, pid: nodes.get(n)!.child.proc.pid!, consoles: `${byNode.get(n)!.length} of ${N}` })),
        { who: 'etcd', pid: etcd.child!.proc.pid!, consoles: '–' },
        ...sim.procs.map((p) => ({ who: `conch-bmcsim${sim.procs.length > 1 ? ` (${p.who})` : ''}`, pid: p.pid, consoles: '–' })),
      ],
      o.seconds,
    );
    const lines1 = await hostLines(sim);
    const range = await probeRange(etcd.url);
    say(`a range of ${PREFIX}: ${range.keys} keys, ${(range.bytes / 2 ** 20).toFixed(2)} MiB, ${range.ms.map((x) => x.toFixed(0)).join(' ')} ms`);
    // the owner map is read again: nothing may have moved in the window
    const stillOwners = await settled(etcd, all, NAMES, 10000);
    const lines2 = await hostLines(sim);
    const fo = await failover(etcd, nodes, stillOwners, sim);
    const lines3 = await hostLines(sim);
    if (fo.missing.length === 0) await settled(etcd, all, NAMES.filter((n) => n !== VICTIM), 60000).catch((e: Error) => say(`after the failover: ${e.message}`));
    await sleep(5000); // consoles stopped and started again after their takeover have logged again
    const gaps = laterGaps(nodes, fo, sim);
    const before = await takeovers(sim, since);
    const startT = await takeovers(sim, t0);
    const after = await takeovers(sim, fo.t0);
    const outputs = new Map([...nodes].map(([n, x]) => [n, x.child.output]));
    const bad = trouble(outputs, t0);
    const again = countLines(outputs, fo.t0, 'held again by node ');
    const waits = countLines(outputs, fo.t0, 'SOL session held by another client; waiting');
    keep(run, new Map([['plain', plain.output], ...outputs]));
    for (const l of before.live) say(`FIGHT ${l}`);
    for (const k of bad.slice(0, 15)) say(`node output: ${k.node} ×${k.count} (${f1(k.first)}–${f1(k.last)} s): ${k.example}`);
    return {
      run,
      plainConsoles: mineN1.length,
      plainUpS: plain.upS,
      startup: up.s,
      usage: [...plain.usage, ...usage],
      failover: fo,
      takeovers: [
        { phase: 'plain conchd', all: before.all - startT.all },
        { phase: 'cluster start and window', all: startT.all - after.all },
        { phase: 'failover', all: after.all },
      ],
      takeoversLive: before.live,
      takeoversLiveOther: before.liveOther,
      laterGaps: gaps,
      heldAgain: again,
      waits,
      hostRate: { window: lineRate(lines0, lines1), failover: lineRate(lines2, lines3) },
      range,
      trouble: bad,
    };
  } finally {
    process.off('SIGINT', onSig);
    await c.run();
  }
}

// ------------------------------------------------------------ the tables

function summaryTable(rs: RunResult[]): string {
  const out = [
    '| run | consoles | nodes | all owned and logging after s | plain CPU s/min | node CPU s/min, mean | CPU ratio | plain RSS MiB | node RSS MiB, mean | RSS ratio | etcd CPU s/min | failed over | claimed after s p50 / max | failover s min / p50 / p99 / max | lines lost per console min / p50 / max | live sessions displaced | … by another node |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rs) {
    const plain = r.usage.find((u) => u.who === 'plain conchd')!;
    const nodes = r.usage.filter((u) => u.who.startsWith('node '));
    const etcd = r.usage.find((u) => u.who === 'etcd')!;
    const cpu = mean(nodes.map((u) => u.cpuPerMin));
    const rss = mean(nodes.map((u) => u.rssMiB));
    const s = r.failover.seconds;
    const l = r.failover.lost;
    const cl = r.failover.claimed;
    out.push(
      `| ${r.run} | ${N} | ${K} | ${f1(r.startup.allS)} | ${f2(plain.cpuPerMin)} | ${f2(cpu)} | ${f2(cpu / plain.cpuPerMin)} | ${f1(plain.rssMiB)} | ${f1(rss)} | ${f2(rss / plain.rssMiB)} | ${f2(etcd.cpuPerMin)} | ` +
        `${s.length} of ${r.failover.consoles} | ${f2(percentile(cl, 50))} / ${f2(Math.max(...cl))} | ${f2(Math.min(...s))} / ${f2(percentile(s, 50))} / ${f2(percentile(s, 99))} / ${f2(Math.max(...s))} | ` +
        `${l.length ? `${Math.min(...l)} / ${percentile(l, 50)} / ${Math.max(...l)}` : '–'} | ${r.takeoversLive.length} | ${r.takeoversLiveOther} |`,
    );
  }
  return out.join('\n');
}

function processTable(rs: RunResult[]): string {
  const out = ['| run | process | consoles run | CPU s/min | RSS MiB |', '|---:|---|---:|---:|---:|'];
  for (const r of rs) for (const u of r.usage) out.push(`| ${r.run} | ${u.who} | ${u.consoles} | ${f2(u.cpuPerMin)} | ${f1(u.rssMiB)} |`);
  return out.join('\n');
}

const dist = (xs: number[]): string => `${f1(Math.min(...xs))} / ${f1(percentile(xs, 50))} / ${f1(percentile(xs, 99))} / ${f1(Math.max(...xs))}`;

function notes(rs: RunResult[]): string {
  const lines: string[] = [];
  for (const r of rs) {
    const fo = r.failover;
    const gone = fo.lost.reduce((a, b) => a + b, 0);
    lines.push(
      `- run ${r.run}: plain conchd: all ${r.plainConsoles} logging after ${f1(r.plainUpS)} s. ` +
        `Cluster start: consoles claimed after ${dist(r.startup.claimed)} s (min / p50 / p99 / max), logging on their owner after ${dist(r.startup.logging)} s; ` +
        `progress ${r.startup.progress.join('; ') || '–'}. ` +
        `A read of the whole prefix, as etcd serves it: ${r.range.keys} keys, ${(r.range.bytes / 2 ** 20).toFixed(2)} MiB of JSON, ${r.range.ms.map((x) => x.toFixed(0)).join(', ')} ms (5 reads after the window).`,
    );
    lines.push(
      `- run ${r.run}: ${fo.victim} killed with ${fo.consoles} consoles, taken over by ${[...fo.to].map(([n, k]) => `${n} ${k}`).join(', ') || 'nobody'}` +
        `${fo.missing.length ? `, ${fo.missing.length} NOT BACK within ${FAILOVER_LIMIT_MS / 1000} s (${fo.missing.slice(0, 5).join(' ')}…)` : ''}; ` +
        `claimed after ${dist(fo.claimed)} s, claim to logging ${dist(fo.claimToLog)} s (min / p50 / p99 / max): ` +
        `claim to connected (SOL active) ${dist(fo.claimToUp)} s, then to the first host line ${dist(fo.upToLog)} s (polled every 0.2 s); ` +
        `round trip to 50 of its BMCs meanwhile ${fo.rtts.length ? `${percentile(fo.rtts, 50).toFixed(0)} / ${percentile(fo.rtts, 99).toFixed(0)} / ${Math.max(...fo.rtts).toFixed(0)} ms (p50 / p99 / max${fo.rtts.some((x) => x >= PING_TIMEOUT_MS) ? `; ${fo.rtts.filter((x) => x >= PING_TIMEOUT_MS).length} of ${fo.rtts.length} unanswered in ${PING_TIMEOUT_MS / 1000} s` : ''})` : '–'}; ${gone} host lines lost in all until the first line on the new owner, ` +
        `${r.laterGaps.lines} more after it (${r.laterGaps.consoles} consoles). Consoles stopped by their owner and claimed again by it ("held again"): ${r.heldAgain.before} at the start, ${r.heldAgain.after} after the kill. ` +
        `At the kill, ${fo.unpublished} of ${fo.consoles} had no SOL session of ${fo.victim} in etcd (held/NAME); after it, ${r.waits.after} waited for a "SOL session held by another client" to be released (${r.waits.before} at the start). ` +
        `Progress: ${fo.progress.join('; ') || '–'}. ` +
        `Survivors' CPU s/min from the kill until all were back: ${fo.cpu.join(', ')}; the simulated hosts printed ${f2(r.hostRate.failover)} lines/s each meanwhile (${f2(r.hostRate.window)} in the window; 1 when the simulator keeps up). ` +
        `SOL takeovers at the BMCs: ${r.takeovers.map((t) => `${t.phase} ${t.all}`).join(', ')}; of a live session: ${r.takeoversLive.length}.`,
    );
    for (const l of r.takeoversLive.slice(0, 10)) lines.push(`  - displaced: ${l}`);
    const total = r.trouble.reduce((a, k) => a + k.count, 0);
    lines.push(`- run ${r.run}: node output lines reporting trouble: ${total}${total ? ', by kind (node, count, seconds after the nodes started, first example):' : ''}`);
    for (const k of r.trouble.slice(0, 15)) lines.push(`  - ${k.node} ×${k.count}, ${f1(k.first)}–${f1(k.last)} s: \`${k.example.replace(/`/g, "'")}\``);
    if (r.trouble.length > 15) lines.push(`  - … ${r.trouble.length - 15} more kinds`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  const load0 = os.loadavg();
  const results: RunResult[] = [];
  for (let r = 1; r <= o.runs; r++) results.push(await oneRun(r));
  const text = [summaryTable(results), '', processTable(results), '', notes(results), ''].join('\n');
  process.stdout.write(text);
  const head = [
    `# Cluster: ${N} IPMI consoles on ${K} nodes — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `Machine: ${os.hostname()}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Linux ${os.release()}, Node.js ${process.version}; load average at the start ${load0.map((x) => x.toFixed(2)).join(' ')}, at the end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}.`,
    `Command: \`node dist/bench/cluster.js ${process.argv.slice(2).join(' ')}\` (conch-bmcsim at nice ${o['sim-nice']}${o['victim-sim-nice'] >= 0 ? `, ${VICTIM}'s BMCs in a process of their own at nice ${o['victim-sim-nice']}` : ''}, heartbeat 1 s; TTL ${o.ttl} s; ${o.warmup} s warm-up, ${o.seconds} s measured).`,
    '',
    `CPU s/min and RSS (largest, read every 5 s) over the steady window; "plain" is one conchd without \`cluster=\` running n1's share of the consoles alone, before the cluster starts, on the same BMCs. Failover: from the kill -9 of ${VICTIM} until the new owner's log has the takeover line and a \`[seq]\` line after it (polled every 0.2 s). Lines lost: the first seq after the takeover line minus the last in the dead node's log, minus 1. Live sessions displaced: SOL takeovers at the BMCs from a session silent < ${LIVE_MS / 1000} s (must be 0); "by another node": of them, those by another client address:port.`,
    '',
    '',
  ].join('\n');
  fs.mkdirSync(path.dirname(o.out), { recursive: true });
  fs.writeFileSync(o.out, head + text);
  say(`written to ${o.out}`);
  const bad = results.some((r) => r.failover.missing.length > 0 || r.takeoversLiveOther > 0);
  process.exitCode = bad ? 1 : 0;
}

await main();
