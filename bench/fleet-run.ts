// One benchmark run: one daemon, one fleet of N consoles, from start to
// clean-up. Start the fleet, write conman.conf, start the daemon (t0), wait
// until every console logs, settle, then a steady window with bursts, a
// takeover and the latency clients; then stop the load and count the logs.
// With the daemon `ipmi-floor` (bench/ipmi-floor.ts: the fleet's IPMI work
// and nothing else) the run waits for every console's SOL instead of its log,
// and there are no logs to count.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, Child, FatalWait, freePort, waitFor, waitForPort } from './harness.js';
import { CONCHD, DIST_BENCH, onPath, type DaemonKind } from './rig.js';
import { now } from './wire-client.js';
import type { Latency } from './fleet-typist.js';
import { percentile } from './stats.js';
import { TreeMeter, nofileFor, treePssMiB, withNice, withNofile } from './fleet-proc.js';
import { analyse, lastSeqInLog, logFile, seqsIn, waitAllLogging, waitDrained, type Loss } from './fleet-logs.js';
import { startBmcsimIpmi, startBmcsimTelnet, startIpmiSims, type Fleet, type FleetKind } from './fleet-sims.js';
import { startBmcsimSsh } from './fleet-ssh.js';
import { takeoverTrials, type TakeoverResult } from './fleet-takeovers.js';
import { rng, streamSeed } from './seeded.js';
import { probeLines, readProbe, type ProbeSummary } from './daemon-probe.js';
import { probeEvents, slowKeys, type SlowKeys } from './fleet-keys.js';

export type { Latency };

export interface RunSpec {
  kind: FleetKind;
  n: number;
  daemon: DaemonKind | 'ipmi-floor';
  rate: number;
  burstBytes: number;
  steadyS: number;
  settleS: number;
  loggingTimeoutS: number;
  stealS: number;
  attaches: number;
  keystrokes: number;
  /** mean pause between keystrokes (ms) */
  keyGapMs: number;
  /** extra joined readers for the "50 clients" measurement */
  readers: number;
  profileArgs: string[];
  /** conmand only: run this many conmands, each with its share of the consoles (conman's advice for large sites) */
  shards?: number;
  /** write a V8 CPU profile of conchd into this directory */
  cpuProfDir?: string;
  /** CPU niceness of the simulators (fleet-sims.ts SimOptions.nice) */
  simNice: number;
  /** conchd only: `server ipmithreads=` (default: its own choice) */
  ipmiThreads?: string;
  /** after the window: this many takeovers one at a time on printing consoles, and as many on silent ones (fleet-takeovers.ts) */
  takeovers?: number;
  /** the takeover victims' BMCs in the typed-at console's nice-0 simulator process (each answers from a CPU of its own, as a real BMC) */
  trialsOwnCpu?: boolean;
  /** the typing pauses and the gaps between takeovers come from streams of this seed (seeded.ts) */
  seed: number;
}

export interface RunResult {
  spec: RunSpec;
  error?: string;
  loggingMs: number;
  logging: number;
  /** consoles logging 60 s after the daemon started */
  loggingAt60: number;
  cpuPerMin: number;
  simCpuPerMin: number;
  rssMiB: number;
  /** PSS of the daemons and their children at the end of the window (shared pages split between the processes that share them) */
  pssMiB?: number;
  windowS: number;
  loss?: Loss;
  ackedBytes?: number;
  retransmits?: number;
  drained: boolean;
  lat1?: Latency;
  lat50?: Latency;
  /** the same typing against a bare TCP echo process, beside lat1 (fleet-floor.ts) */
  floor?: Latency;
  /** the same typing through a relay process to a UDP echo process, beside lat1 (fleet-floor.ts) */
  relay?: Latency;
  /** IPMI fleets: the same typing through a relay process that speaks SOL itself to a BMC of the typed-at simulator, beside lat1 (fleet-floor.ts `sol`) */
  sol?: Latency;
  /** ms the log stayed dark after the other SOL client left; Infinity = still dark when we stopped looking */
  darkMs?: number;
  darkLookedMs?: number;
  burstsSent?: number;
  burstsFailed?: number;
  takeovers?: TakeoverResult;
  /** conchd's event-loop delay and collections in the steady window (daemon-probe.ts): the main thread, the worker that collected most */
  probe?: { main: ProbeSummary; worker: ProbeSummary | null };
  /** conchd: the keys of lat1 and lat50 slower than twice the relay floor's p99, and what they waited behind (fleet-keys.ts) */
  slow1?: SlowKeys;
  slow50?: SlowKeys;
  notes: string[];
  wallS: number;
}

const readText = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '(no log file)');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function alive(c: Child, what: string): void {
  const p = c.proc;
  if (p.exitCode !== null || p.signalCode !== null) throw new FatalWait(`${what} exited (${p.exitCode ?? p.signalCode}): ${c.output.slice(-400)}`);
}

async function startFleet(c: Cleanup, s: RunSpec, dir: string): Promise<Fleet> {
  // the typed-at console first; with --trials-own-cpu the takeover victims (the window's and the trials') follow it into its process
  const ownCpu = s.trialsOwnCpu && s.kind === 'ipmi' ? 2 + 2 * (s.takeovers ?? 0) : 1;
  const o = { rate: s.rate, profileArgs: s.profileArgs, nice: s.simNice, ownCpu, nodeArgs: s.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(s.cpuProfDir, 'conch-bmcsim')}`] : [] };
  if (s.kind === 'ipmi') return startBmcsimIpmi(c, s.n, o, dir);
  if (s.kind === 'telnet') return startBmcsimTelnet(c, s.n, o);
  if (s.kind === 'ssh' || s.kind === 'ssh-proc') return startBmcsimSsh(c, s.n, o, dir, s.kind === 'ssh-proc');
  return startIpmiSims(c, s.n, o);
}

/** `typed`: the typist's console (the IPMI floor relays it alone) */
async function startDaemon(c: Cleanup, s: RunSpec, conf: string, dir: string, port: number, typed: string): Promise<Child> {
  const nofile = Math.max(65536, s.n * 8);
  if (s.daemon === 'ipmi-floor') {
    const [cmd, args] = withNofile(process.execPath, [path.join(DIST_BENCH, 'ipmi-floor.js'), conf, typed], nofile);
    const d = c.child(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    await d.waitOutput(/listening port \d+/, 120000);
    return d;
  }
  if (s.daemon === 'conchd') {
    const prof = s.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.join(s.cpuProfDir, 'conchd')}`] : [];
    // every thread's event-loop delay and collections, once a second (daemon-probe.ts)
    const probe = ['--import', path.join(DIST_BENCH, 'daemon-probe.js')];
    const [cmd, args] = withNofile(process.execPath, [...prof, ...probe, CONCHD, '-F', '-c', conf], nofile);
    const d = c.child(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CONCH_PROBE_OUT: probeFile(dir) } });
    await d.waitOutput(/Listening on TCP port \d+/, 120000);
    return d;
  }
  const [cmd, args] = withNofile(onPath('conmand'), ['-F', '-c', conf], nofile);
  const d = c.child(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitFor(async () => {
    alive(d, 'conmand');
    await waitForPort(port, '127.0.0.1', 1000);
    return true;
  }, `conmand listening on ${port}`, 120000);
  return d;
}

const probeFile = (dir: string): string => path.join(dir, 'probe.jsonl');

const failedLatency = (e: unknown): Latency => ({ attach: [], echo: [], lostFirstKeys: 0, error: (e as Error).message.slice(0, 300) });

/** A measuring process that prints `latency {json}` (fleet-typist.ts, fleet-floor.ts). */
async function latencyChild(c: Cleanup, script: string, args: (string | number)[], timeoutMs: number): Promise<Latency> {
  const t = c.child(process.execPath, [path.join(DIST_BENCH, script), ...args.map(String)], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const out = await t.waitOutput(/latency \{.*\}\n/, timeoutMs);
    return JSON.parse(/latency (\{.*\})\n/.exec(out)![1]!) as Latency;
  } catch (e) {
    return failedLatency(e);
  } finally {
    await t.stop();
  }
}

/** The typist: attach and echo times on `name`, its pauses from `seed`. */
function measureLatency(c: Cleanup, port: number, name: string, n: number, k: number, gapMs: number, seed: number): Promise<Latency> {
  return latencyChild(c, 'fleet-typist.js', [port, name, n, k, gapMs, seed], (n + k) * 20000 + k * 2 * gapMs + 60000);
}

/** Steal SOL of `victim` now for `stealS`; resolves with how long its log stayed dark after the release. */
async function takeover(f: Fleet, logdir: string, victim: string, stealS: number, lookUntil: number): Promise<{ darkMs: number; lookedMs: number }> {
  await f.steal!(victim, stealS);
  const release = Date.now() + stealS * 1000;
  await sleep(release - Date.now());
  const seqAtRelease = await f.lastSeqOf(victim);
  for (;;) {
    const logged = seqsIn(fs.readFileSync(logFile(logdir, victim), 'latin1'), victim);
    if (logged.some((q) => q > seqAtRelease)) return { darkMs: Date.now() - release, lookedMs: Date.now() - release };
    if (Date.now() > lookUntil) return { darkMs: Infinity, lookedMs: Date.now() - release };
    await sleep(100);
  }
}

/** conman.conf for each share of the consoles (one for conchd; conmand: one per conmand), each on a free port. */
async function writeConfs(s: RunSpec, f: Fleet, dir: string, logdir: string): Promise<{ conf: string; port: number }[]> {
  // conman's guide for large sites: one conmand per core, each with its own
  // share of the consoles, config and port; consoles 1 and 2 (typed at,
  // taken over) are in the first share
  const shards = s.daemon === 'conmand' ? Math.max(1, s.shards ?? 1) : 1;
  const consoleLines = s.daemon === 'conmand' && f.conmandConsoleLines ? f.conmandConsoleLines : f.consoleLines;
  const per = Math.ceil(consoleLines.length / shards);
  const shares: { conf: string; port: number }[] = [];
  for (let i = 0; i < shards; i++) {
    const sharePort = await freePort();
    const conf = path.join(dir, shards > 1 ? `conman-${i + 1}.conf` : 'conman.conf');
    const header = [`server port=${sharePort}`, 'server loopback=on', `server logdir="${logdir}"`, `server pidfile="${path.join(dir, `d${i}.pid`)}"`, ...(f.serverLines ?? []), 'global log="%N.log"'];
    if (s.daemon !== 'conmand' && s.ipmiThreads !== undefined) header.push(`server ipmithreads=${s.ipmiThreads}`);
    if (s.daemon === 'conchd') header.push(`server statedir="${path.join(dir, 'state')}"`);
    fs.writeFileSync(conf, [...header, ...consoleLines.slice(i * per, (i + 1) * per), ''].join('\n'));
    shares.push({ conf, port: sharePort });
  }
  return shares;
}

/** One run in progress: its spec, fleet, directories, daemons and result so far. */
interface Running {
  c: Cleanup;
  s: RunSpec;
  f: Fleet;
  dir: string;
  logdir: string;
  /** the daemons (more than one: conmand's shares) */
  ds: Child[];
  /** throws if a daemon has exited */
  aliveAll(): void;
  r: RunResult;
  log(m: string): void;
}

/** Until every console logs (or the timeout): the figures into `r`, and what the silent ones said into its notes. */
async function awaitLogging({ s, f, logdir, ds, aliveAll, r, log }: Running, t0: number): Promise<void> {
  const d = ds[0]!;
  if (s.daemon === 'ipmi-floor') {
    await d.waitOutput(`up ${s.n}/${s.n}`, s.loggingTimeoutS * 1000);
    r.loggingMs = Date.now() - t0;
    r.logging = s.n;
    log(`  ${s.n}/${s.n} consoles with SOL up after ${(r.loggingMs / 1000).toFixed(1)} s`);
    return;
  }
  const lg = await waitAllLogging(logdir, f.names, t0, s.loggingTimeoutS * 1000, aliveAll);
  r.loggingMs = lg.ms;
  r.logging = lg.logging;
  r.loggingAt60 = lg.at60;
  log(`  ${lg.logging}/${s.n} consoles logging after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (lg.logging < s.n) {
    // what the silent consoles' logs and the daemon say, for the notes
    const silent = f.names.filter((n) => !readText(logFile(logdir, n)).includes('[seq ')).slice(0, 2);
    const said = silent.map((n) => `${n}: ${JSON.stringify(readText(logFile(logdir, n)).slice(-300))}`).join('; ');
    r.notes.push(`only ${lg.logging} of ${s.n} consoles logged within ${s.loggingTimeoutS} s (${lg.at60} at 60 s); ${said}; daemon said: ${JSON.stringify(d.output.slice(-400))}`);
  }
}

/** The hosts' bursts over the window (from fleet-bursts.js, or from this process); resolves when they are sent. */
function startBursts({ c, s, f, dir, r }: Running, bursted: string[]): Promise<void> {
  if (s.burstBytes > 0 && f.burstTarget) {
    const specFile = path.join(dir, 'bursts.json');
    fs.writeFileSync(specFile, JSON.stringify({ target: f.burstTarget, names: bursted, windowMs: s.steadyS * 1000 * 0.8, bytes: s.burstBytes }));
    // the bursts stand for the hosts' own events (reboots): at the simulators' niceness
    const b = c.child(...withNice(process.execPath, [path.join(DIST_BENCH, 'fleet-bursts.js'), specFile], s.simNice), { stdio: ['ignore', 'pipe', 'pipe'] });
    return b.waitOutput(/done \d+ \d+/, s.steadyS * 1000 + 120000).then((out) => {
      const m = /done (\d+) (\d+)(.*)/.exec(out)!;
      r.burstsSent = Number(m[1]);
      r.burstsFailed = Number(m[2]);
      if (r.burstsFailed) r.notes.push(`${r.burstsFailed} bursts failed:${m[3]}`);
    }, (e: Error) => void r.notes.push(`bursts: ${e.message}`));
  }
  if (s.burstBytes > 0 && f.burstHere) {
    const gap = (s.steadyS * 800) / Math.max(1, bursted.length);
    bursted.forEach((n, i) => {
      const t = setTimeout(() => f.burstHere!(n, s.burstBytes), i * gap);
      c.add(() => clearTimeout(t));
    });
  }
  return Promise.resolve();
}

/** Echo with 1 client beside the machine's floor (bare and relay), then with the extra joined readers. */
async function measureLatencies({ c, s, f, r, log }: Running, port: number, echoName: string): Promise<void> {
  log(`  latency, 1 client, and the machine's floor beside it`);
  const floorTimeout = s.keystrokes * (2 * s.keyGapMs + 10000) + 60000;
  const floor = latencyChild(c, 'fleet-floor.js', [s.keystrokes, s.keyGapMs, 'bare', streamSeed(s.seed, 'floor-bare'), s.attaches], floorTimeout);
  const relay = latencyChild(c, 'fleet-floor.js', [s.keystrokes, s.keyGapMs, 'relay', streamSeed(s.seed, 'floor-relay')], floorTimeout);
  const sol = f.solFloor ? latencyChild(c, 'fleet-floor.js', [s.keystrokes, s.keyGapMs, 'sol', streamSeed(s.seed, 'floor-sol'), 0, f.solFloor.manifest, f.solFloor.name], floorTimeout) : null;
  r.lat1 = await measureLatency(c, port, echoName, s.attaches, s.keystrokes, s.keyGapMs, streamSeed(s.seed, 'typist-1'));
  r.floor = await floor;
  r.relay = await relay;
  if (sol) r.sol = await sol;
  if (s.readers > 0) {
    const readers = c.child(process.execPath, [path.join(DIST_BENCH, 'join-readers.js'), String(port), echoName, String(s.readers)], { stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await readers.waitOutput(`ready ${s.readers}`, 120000);
      log(`  latency, ${s.readers + 1} clients`);
      r.lat50 = await measureLatency(c, port, echoName, s.attaches, s.keystrokes, s.keyGapMs, streamSeed(s.seed, `typist-${s.readers + 1}`));
    } catch (e) {
      r.lat50 = failedLatency(e);
    }
    await readers.stop();
  }
}

/**
 * The steady window: CPU and RSS of the daemons and the simulators, the
 * bursts, a takeover of `victim` at its start and the latency clients.
 */
async function steadyWindow(x: Running, port: number, victim: string | null): Promise<void> {
  const { c, s, f, logdir, ds, r } = x;
  const dms = ds.map((d) => new TreeMeter(d.proc.pid!));
  const sims = f.pids.map((p) => new TreeMeter(p));
  dms.forEach((m) => m.start());
  sims.forEach((m) => m.start());
  const rssTimer = setInterval(() => dms.forEach((m) => m.sample()), 5000);
  c.add(() => clearInterval(rssTimer));
  const w0 = Date.now();
  const wEnd = w0 + s.steadyS * 1000;
  const echoName = f.names[0]!;
  const bursted = f.names.filter((n) => n !== echoName && n !== victim);
  const bursts = startBursts(x, bursted);
  const steal = victim ? takeover(f, logdir, victim, s.stealS, wEnd).catch((e: Error) => void r.notes.push(`takeover: ${e.message}`)) : Promise.resolve();

  await sleep(1000);
  await measureLatencies(x, port, echoName);
  x.aliveAll();
  await sleep(wEnd - Date.now());
  await bursts;
  const st = await steal;
  if (st) {
    r.darkMs = st.darkMs;
    r.darkLookedMs = st.lookedMs;
  }
  dms.forEach((m) => m.sample());
  r.cpuPerMin = dms.reduce((a, m) => a + m.cpuPerMinute(), 0);
  r.simCpuPerMin = sims.reduce((a, m) => a + m.cpuPerMinute(), 0);
  r.rssMiB = dms.reduce((a, m) => a + m.peakRss, 0);
  r.pssMiB = ds.reduce((a, d) => a + treePssMiB(d.proc.pid!), 0);
  if (s.daemon === 'conchd') {
    const lines = probeLines(probeFile(x.dir));
    r.probe = readProbe(lines, w0, Date.now()) ?? undefined;
    // the keys over the issue's p99 bound (twice the relay floor's), each matched against the daemon's stalls
    const events = probeEvents(lines);
    const bound = r.relay?.echo.length ? 2 * percentile(r.relay.echo, 99) : 20;
    r.slow1 = slowKeys(r.lat1, events, bound);
    r.slow50 = slowKeys(r.lat50, events, bound);
  }
  r.windowS = (Date.now() - w0) / 1000;
  clearInterval(rssTimer);
}

/** Stop the load, wait for the logs to drain and count the `[seq]` lines of the `counted` consoles. */
async function countLoss({ f, logdir, r }: Running, counted: string[]): Promise<void> {
  const fin = await f.finish();
  r.drained = await waitDrained(logdir, counted, fin.lastSeq, 30000);
  if (!r.drained) r.notes.push('some logs still lacked their host\'s last line 30 s after the load stopped');
  r.loss = analyse(logdir, counted, fin.lastSeq);
  if (fin.acked) r.ackedBytes = counted.reduce((a, n) => a + (fin.acked!.get(n) ?? 0), 0);
  r.retransmits = fin.retransmits;
  if (r.loss.badConsoles.length) {
    const ex = r.loss.badConsoles.slice(0, 3).map((n) => `${n} (last seq host ${fin.lastSeq.get(n)}, log ${lastSeqInLog(logdir, n)})`);
    r.notes.push(`${r.loss.badConsoles.length} consoles with gaps or duplicates, e.g. ${ex.join(', ')}`);
  }
}

export async function run(s: RunSpec, log: (m: string) => void): Promise<RunResult> {
  const started = Date.now();
  const r: RunResult = { spec: s, loggingMs: NaN, logging: 0, loggingAt60: 0, cpuPerMin: NaN, simCpuPerMin: NaN, rssMiB: NaN, windowS: 0, drained: false, notes: [], wallS: 0 };
  const c = new Cleanup();
  try {
    const dir = c.dir(`conch-fleet-${s.daemon}-`);
    const logdir = path.join(dir, 'log');
    fs.mkdirSync(logdir);
    log(`  starting the ${s.kind} fleet of ${s.n}`);
    const f = await startFleet(c, s, dir);
    // terminal-server and SSH mode hold a listening socket and the daemon's connection per host
    const fds = nofileFor(Infinity);
    if (s.kind !== 'ipmi' && s.kind !== 'ipmi_sim' && 2 * s.n + 64 > fds) r.notes.push(`the simulator needs ${2 * s.n}+ file descriptors for ${s.n} ${s.kind} hosts but may open only ${fds} here: some hosts cannot accept the daemon, so not all consoles can log`);
    const shares = await writeConfs(s, f, dir, logdir);
    const port = shares[0]!.port;

    const t0 = Date.now();
    log(`  starting ${s.daemon}`);
    const ds: Child[] = [];
    for (const sh of shares) ds.push(await startDaemon(c, s, sh.conf, dir, sh.port, f.names[0]!));
    const aliveAll = (): void => ds.forEach((d) => alive(d, s.daemon));
    const x: Running = { c, s, f, dir, logdir, ds, aliveAll, r, log };
    await awaitLogging(x, t0);
    await sleep(s.settleS * 1000);
    aliveAll();

    const echoName = f.names[0]!;
    const victim = f.steal && f.names.length > 2 && s.stealS > 0 && s.daemon !== 'ipmi-floor' ? f.names[1]! : null;
    await steadyWindow(x, port, victim);
    aliveAll();

    // takeover trials, one at a time, after the window (their CPU is not in it)
    const k = s.takeovers ?? 0;
    const trialVictims = k > 0 ? f.names.filter((n) => n !== echoName && n !== victim).slice(0, 2 * k) : [];
    if (k > 0 && f.steal) {
      log(`  ${k} takeovers on printing consoles, ${k} on silent ones`);
      r.takeovers = await takeoverTrials(f, logdir, trialVictims, k, s.stealS, log, rng(streamSeed(s.seed, 'takeovers')));
      r.notes.push(...r.takeovers.errors);
      aliveAll();
    }

    if (s.daemon === 'ipmi-floor') await f.finish();
    else {
      log(`  stopping the load, counting the logs`);
      await countLoss(x, f.names.filter((n) => n !== victim && !trialVictims.includes(n)));
    }
    log(`  stopping ${s.daemon}`);
    for (const d of ds) await d.stop(30000);
  } catch (e) {
    r.error = (e as Error).message.slice(0, 500);
    log(`  FAILED: ${r.error}`);
  } finally {
    await c.run();
    r.wallS = (Date.now() - started) / 1000;
  }
  return r;
}

export { percentile };
export const latStr = (xs: number[]): string => {
  if (!xs.length) return '-';
  const f = (x: number): string => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
  return `${f(percentile(xs, 50))} / ${f(percentile(xs, 99))}`;
};
export const nowMs = now;
