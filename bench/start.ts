// How fast conchd starts a fleet of IPMI consoles (bench/README.md, "Start"):
// N conch-bmcsim BMCs whose hosts print, conchd spawned with every one of
// them; the time from the spawn until every BMC has activated SOL for it and
// until every console's log holds a host line, the handshakes the simulator
// had to answer twice, the BMC round trip meanwhile, and the CPU the daemon
// and the simulator spent on the start: on 2 cores, their sum halved is the
// shortest the start could be on this machine, whatever the daemon did.
//
// Then the same start by the IPMI floor (bench/ipmi-floor.ts: SOL on every
// console with conch's IPMI threads and nothing else), --ipmi-floor runs of
// it: how long the fleet's IPMI work alone takes to activate SOL everywhere.
//
// Before all of them, --warmup starts by the IPMI floor, reported in a line
// only: the simulator's first sessions at its BMCs cost it a third more CPU
// than later ones (5.5-7.3 s against 3.7-6.5 in the same runs), which made
// the first measured start the slowest of every set.
//
//   node dist/bench/start.js [--consoles N] [--runs R] [--ipmi-floor R] [--warmup W] [--rate B] [--sim-nice N] [--cpu-prof [--hold S]]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, freePort, waitFor } from './harness.js';
import { CONCHD, DIST_BENCH } from './rig.js';
import { startBmcsimIpmi, request, type Fleet } from './fleet-sims.js';
import { waitAllLogging } from './fleet-logs.js';
import { treeCpuSeconds, treeRssMiB, withNofile } from './fleet-proc.js';
import { percentile } from './stats.js';
import { longTurns, summarise } from './fleet-profile.js';
import { bmcOf, startPinger, PING_TIMEOUT_MS } from './bmc-ping.js';

const { values: a } = parseArgs({
  options: {
    consoles: { type: 'string', default: '10000' },
    runs: { type: 'string', default: '3' },
    'ipmi-floor': { type: 'string', default: '3' },
    // unreported starts by the IPMI floor first: a simulator's first session at each of its BMCs costs it more
    warmup: { type: 'string', default: '1' },
    rate: { type: 'string', default: '100' },
    'sim-nice': { type: 'string', default: '19' },
    'cpu-prof': { type: 'boolean' },
    // keep the fleet running this long after all are logging (with --cpu-prof: the steady state's long turns)
    hold: { type: 'string', default: '0' },
  },
});
const N = Number(a.consoles);
const say = (m: string): void => void process.stderr.write(`# ${m}\n`);
/** per run: ms from the spawn to the end of the start (the hold's beginning) */
const holdFrom: number[] = [];

/** counters summed over every simulated BMC */
async function totals(f: Fleet): Promise<{ sessions: number; openRequests: number; activations: number }> {
  const t = { sessions: 0, openRequests: 0, activations: 0 };
  for (const c of f.controls ?? []) {
    const x = (await request(c, 'GET', '/counters')) as typeof t;
    t.sessions += x.sessions;
    t.openRequests += x.openRequests;
    t.activations += x.activations;
  }
  return t;
}

/**
 * What making N files costs this disk now: N files created (and closed) in a
 * fresh directory by one thread, wall seconds and system CPU. A first start
 * creates every console's log; on this VM's ext4 (no journal) a create skips
 * over every inode deleted in the last minute or more, so the same creates
 * take 0.5 s or 8 s by what ran before. The files stay until the end.
 */
function createFloor(dir: string, n: number): { wallS: number; sysS: number } {
  fs.mkdirSync(dir);
  const { O_WRONLY, O_CREAT, O_EXCL } = fs.constants;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fs.closeSync(fs.openSync(path.join(dir, `c${i}.log`), O_WRONLY | O_CREAT | O_EXCL, 0o600));
  return { wallS: (performance.now() - t0) / 1000, sysS: process.cpuUsage(c0).system / 1e6 };
}

interface Run {
  creates: { wallS: number; sysS: number };
  activatedS: number;
  loggingS: number;
  daemonCpuS: number;
  simCpuS: number;
  rssMiB: number;
  twice: number;
  rtts: number[];
}

/** `floor`: the IPMI floor in conchd's place (nothing logged: its start is over when all are activated) */
async function oneRun(cleanup: Cleanup, fleet: Fleet, dir: string, run: number, floor = false): Promise<Run> {
  const logdir = path.join(dir, `log${run}`);
  fs.mkdirSync(logdir);
  const port = await freePort();
  const conf = path.join(dir, `conman${run}.conf`);
  fs.writeFileSync(
    conf,
    `server port=${port}\nserver loopback=on\nserver logdir="${logdir}"\nserver pidfile="${dir}/conchd${run}.pid"\nserver statedir="${dir}/state${run}"\n` +
      fleet.consoleLines.map((l) => `${l} log="%N.log"`).join('\n') +
      '\n',
  );
  const creates = floor ? { wallS: NaN, sysS: NaN } : createFloor(path.join(dir, `creates${run}`), N);
  if (!floor) say(`run ${run}: ${N} files created in ${creates.wallS.toFixed(1)} s (${creates.sysS.toFixed(1)} s system CPU)`);
  const before = await totals(fleet);
  const simCpu0 = fleet.pids.reduce((s, p) => s + treeCpuSeconds(p), 0);
  // CONCH_BENCH_DAEMON_NODE_ARGS: node flags for conchd alone (e.g. --trace-gc, --max-semi-space-size=32), to try the runtime's settings
  const prof = [...(a['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'prof')}`] : []), ...(process.env.CONCH_BENCH_DAEMON_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])];
  // 50 BMCs spread over the fleet (not the typed-at one, in a process of its own)
  const step = Math.max(1, Math.ceil(N / 50));
  const pinger = startPinger(fleet.consoleLines.filter((_, i) => i > 0 && i % step === 0).map((l) => bmcOf(l)!));
  const daemon = floor ? [path.join(DIST_BENCH, 'ipmi-floor.js'), conf, fleet.names[0]!] : [...prof, CONCHD, '-F', '-c', conf];
  const [cmd, args] = withNofile(process.execPath, daemon, Math.max(65536, N * 4));
  const t0 = Date.now();
  const d = cleanup.child(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  let activatedS = NaN;
  let rssMiB = 0;
  let twice = 0;
  const poll = setInterval(() => {
    // every second: summing 10,000 BMCs' counters costs the simulator CPU it would otherwise spend answering
    rssMiB = Math.max(rssMiB, treeRssMiB(d.proc.pid!));
    void totals(fleet).then((t) => {
      if (Number.isNaN(activatedS) && t.activations - before.activations >= N) activatedS = (Date.now() - t0) / 1000;
      twice = t.openRequests - before.openRequests - (t.sessions - before.sessions);
    }, () => {});
  }, 1000);
  // silent hosts (--rate 0) log nothing: then the start is over when every BMC has activated SOL
  const up = Number(a.rate) > 0 && !floor ? await waitAllLogging(logdir, fleet.names, t0, 300000, () => {}) : await waitFor(() => (Number.isNaN(activatedS) ? null : { ms: NaN, logging: 0 }), 'every BMC activated', 300000, 200);
  const daemonCpuS = treeCpuSeconds(d.proc.pid!);
  const simCpuS = fleet.pids.reduce((s, p) => s + treeCpuSeconds(p), 0) - simCpu0;
  const rtts = pinger.stop();
  clearInterval(poll);
  if (floor) say(`${run > 100 ? `warm-up ${run - 100} (IPMI floor)` : `IPMI floor run ${run}`}: all activated after ${activatedS.toFixed(1)} s; ${daemonCpuS.toFixed(1)} CPU s, simulator ${simCpuS.toFixed(1)}`);
  else say(`run ${run}: all ${up.logging} logging after ${(up.ms / 1000).toFixed(1)} s (activated ${activatedS.toFixed(1)} s); conchd ${daemonCpuS.toFixed(1)} CPU s, simulator ${simCpuS.toFixed(1)}`);
  const heldFrom = Date.now() - t0;
  // conchd's runs only: their profiles (the floor writes none) are matched to these by index
  if (!floor) holdFrom.push(heldFrom);
  if (Number(a.hold) > 0 && !floor) {
    say(`run ${run}: holding ${a.hold} s`);
    await new Promise((r) => setTimeout(r, Number(a.hold) * 1000));
  }
  // the hold's start in conchd's output, then all of it, for a look at what it printed (e.g. with --trace-gc)
  const holdMark = `# hold from ${heldFrom} ms after the spawn\n`;
  await d.stop(60000);
  if (process.env.CONCH_BENCH_DAEMON_OUT) fs.writeFileSync(`${process.env.CONCH_BENCH_DAEMON_OUT}.${run}`, holdMark + d.output);
  // the logs stay until the end: on a file system without a journal (this VM's), ext4 passes over
  // inodes deleted in the last minute or more when it makes a new one, so 10,000 logs removed here
  // would slow the next run's 10,000 creates (bench/README.md, "Start")
  return { creates, activatedS, loggingS: up.ms / 1000, daemonCpuS, simCpuS, rssMiB, twice, rtts };
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  process.on('SIGINT', () => void cleanup.run().then(() => process.exit(130)));
  try {
    const dir = cleanup.dir('conch-bench-start-');
    say(`starting ${N} simulated BMCs (hosts printing ${a.rate} B/s, nice ${a['sim-nice']})`);
    // ipmi_sim's behaviour, with the session timeout raised as the fleet benchmark does
    const fleet = await startBmcsimIpmi(cleanup, N, { rate: Number(a.rate), profileArgs: ['--profile', 'ipmi_sim', '--session-timeout', '3600'], nice: Number(a['sim-nice']) }, dir);
    const warm: Run[] = [];
    for (let r = 1; r <= Number(a.warmup); r++) warm.push(await oneRun(cleanup, fleet, dir, 100 + r, true));
    const runs: Run[] = [];
    for (let r = 1; r <= Number(a.runs); r++) runs.push(await oneRun(cleanup, fleet, dir, r));
    const floors: Run[] = [];
    for (let r = 1; r <= Number(a['ipmi-floor']); r++) floors.push(await oneRun(cleanup, fleet, dir, Number(a.runs) + r, true));

    const f1 = (x: number): string => (Number.isNaN(x) ? '–' : x.toFixed(1));
    const rtt = (r: Run): string =>
      `${r.rtts.length === 0 ? '–' : `${percentile(r.rtts, 50).toFixed(1)} / ${percentile(r.rtts, 99).toFixed(0)} / ${Math.max(...r.rtts).toFixed(0)}`}${r.rtts.some((x) => x >= PING_TIMEOUT_MS) ? ` (${r.rtts.filter((x) => x >= PING_TIMEOUT_MS).length} unanswered)` : ''}`;
    const cpuFloor = (r: Run): string => f1((r.daemonCpuS + r.simCpuS) / os.cpus().length);
    const worst = (xs: number[]): number => Math.max(...xs);
    const floorRows = floors.length === 0 ? [] : [
      `The IPMI floor's start: the same fleet and conf, with \`bench/ipmi-floor.js\` in conchd's place (SOL on every console with conch's IPMI threads, as many as conchd runs; nothing logged, so its start is over when all are activated).`,
      '',
      '| run | → all activated s | floor CPU s | simulator CPU s | CPU floor s | RSS MiB | setups answered twice | BMC round trip ms p50 / p99 / max |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...floors.map((r, i) => `| ${i + 1} | ${f1(r.activatedS)} | ${f1(r.daemonCpuS)} | ${f1(r.simCpuS)} | ${cpuFloor(r)} | ${r.rssMiB.toFixed(0)} | ${r.twice} | ${rtt(r)} |`),
      '',
      `Worst of ${runs.length}: conchd all activated after ${f1(worst(runs.map((r) => r.activatedS)))} s and all logging after ${f1(worst(runs.map((r) => r.loggingS)))} s; the IPMI floor all activated after ${f1(worst(floors.map((r) => r.activatedS)))} s (worst of ${floors.length}; best ${f1(Math.min(...floors.map((r) => r.activatedS)))} s).`,
      '',
    ];
    const out = [
      `# Start: ${N} IPMI consoles — ${new Date().toISOString().slice(0, 10)}`,
      '',
      `Machine: ${os.hostname()}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node.js ${process.version}; conch-bmcsim at nice ${a['sim-nice']}, hosts printing ${a.rate} B/s.`,
      `Command: \`node dist/bench/start.js ${process.argv.slice(2).join(' ')}\``,
      '',
      `From spawning conchd: every BMC has activated SOL for it; every console's log holds a host line. CPU: seconds the daemon (all its threads) and the simulator used from the spawn until all logging; *CPU floor* is their sum over the machine's cores, the shortest the start could take here if both only started consoles. *Setups answered twice*: Open Session requests the simulator answered beyond the sessions it opened (setups started over). *BMC round trip*: a sessionless request from this process to 50 of the BMCs, 5 a second, during the start (unanswered in 3 s counts as 3 s). *${N} creates*: before the run, ${N} files made in a fresh directory by one thread, in seconds and its system CPU: what the logs a first start creates cost this disk then (on a file system without a journal, ext4 passes over the inodes deleted in the last minute or more at every create).`,
      '',
      `| run | → all activated s | → all logging s | conchd CPU s | simulator CPU s | CPU floor s | RSS MiB | setups answered twice | BMC round trip ms p50 / p99 / max | ${N} creates s / system CPU s |`,
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...runs.map(
        (r, i) =>
          `| ${i + 1} | ${f1(r.activatedS)} | ${f1(r.loggingS)} | ${f1(r.daemonCpuS)} | ${f1(r.simCpuS)} | ${cpuFloor(r)} | ${r.rssMiB.toFixed(0)} | ${r.twice} | ${rtt(r)} | ${r.creates.wallS.toFixed(2)} / ${r.creates.sysS.toFixed(2)} |`,
      ),
      '',
      ...floorRows,
      ...(warm.length ? [`Before these, ${warm.length} start${warm.length > 1 ? 's' : ''} of the IPMI floor to warm the simulator (not counted): all activated after ${warm.map((r) => f1(r.activatedS)).join(', ')} s, the simulator ${warm.map((r) => f1(r.simCpuS)).join(', ')} CPU s.`, ''] : []),
    ];
    if (a['cpu-prof']) {
      out.push(...summarise(path.join(dir, 'prof'), 25));
      // the main thread's profile is each run's first (thread ids 0)
      const mains = fs.readdirSync(path.join(dir, 'prof')).filter((f) => /\.0\.\d+\.cpuprofile$/.test(f)).sort();
      mains.forEach((f, i) => out.push('', `Run ${i + 1}, ${Number(a.hold) > 0 ? `the ${a.hold} s after all were logging` : 'the whole run'}:`, '', ...longTurns(path.join(dir, 'prof', f), 10, Number(a.hold) > 0 ? holdFrom[i]! : 0)));
    }
    process.stdout.write(out.join('\n') + '\n');
  } finally {
    await cleanup.run();
  }
}

await main();
