// How fast conchd starts a fleet of IPMI consoles (bench/README.md, "Start"):
// N conch-bmcsim BMCs whose hosts print, conchd spawned with every one of
// them; the time from the spawn until every BMC has activated SOL for it and
// until every console's log holds a host line, the handshakes the simulator
// had to answer twice, the BMC round trip meanwhile, and the CPU the daemon
// and the simulator spent on the start: on 2 cores, their sum halved is the
// shortest the start could be on this machine, whatever the daemon did.
//
//   node dist/bench/start.js [--consoles N] [--runs R] [--rate B] [--sim-nice N] [--cpu-prof [--hold S]]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, freePort, waitFor } from './harness.js';
import { CONCHD } from './rig.js';
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

interface Run {
  activatedS: number;
  loggingS: number;
  daemonCpuS: number;
  simCpuS: number;
  rssMiB: number;
  twice: number;
  rtts: number[];
}

async function oneRun(cleanup: Cleanup, fleet: Fleet, dir: string, run: number): Promise<Run> {
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
  const before = await totals(fleet);
  const simCpu0 = fleet.pids.reduce((s, p) => s + treeCpuSeconds(p), 0);
  // CONCH_BENCH_DAEMON_NODE_ARGS: node flags for conchd alone (e.g. --trace-gc, --max-semi-space-size=32), to try the runtime's settings
  const prof = [...(a['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'prof')}`] : []), ...(process.env.CONCH_BENCH_DAEMON_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])];
  // 50 BMCs spread over the fleet (not the typed-at one, in a process of its own)
  const step = Math.max(1, Math.ceil(N / 50));
  const pinger = startPinger(fleet.consoleLines.filter((_, i) => i > 0 && i % step === 0).map((l) => bmcOf(l)!));
  const [cmd, args] = withNofile(process.execPath, [...prof, CONCHD, '-F', '-c', conf], Math.max(65536, N * 4));
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
  const up = Number(a.rate) > 0 ? await waitAllLogging(logdir, fleet.names, t0, 300000, () => {}) : await waitFor(() => (Number.isNaN(activatedS) ? null : { ms: NaN, logging: 0 }), 'every BMC activated', 300000, 200);
  const daemonCpuS = treeCpuSeconds(d.proc.pid!);
  const simCpuS = fleet.pids.reduce((s, p) => s + treeCpuSeconds(p), 0) - simCpu0;
  const rtts = pinger.stop();
  clearInterval(poll);
  say(`run ${run}: all ${up.logging} logging after ${(up.ms / 1000).toFixed(1)} s (activated ${activatedS.toFixed(1)} s); conchd ${daemonCpuS.toFixed(1)} CPU s, simulator ${simCpuS.toFixed(1)}`);
  holdFrom.push(Date.now() - t0);
  if (Number(a.hold) > 0) {
    say(`run ${run}: holding ${a.hold} s`);
    await new Promise((r) => setTimeout(r, Number(a.hold) * 1000));
  }
  // the hold's start in conchd's output, then all of it, for a look at what it printed (e.g. with --trace-gc)
  const holdMark = `# hold from ${holdFrom.at(-1)} ms after the spawn\n`;
  await d.stop(60000);
  if (process.env.CONCH_BENCH_DAEMON_OUT) fs.writeFileSync(`${process.env.CONCH_BENCH_DAEMON_OUT}.${run}`, holdMark + d.output);
  fs.rmSync(logdir, { recursive: true, force: true });
  return { activatedS, loggingS: up.ms / 1000, daemonCpuS, simCpuS, rssMiB, twice, rtts };
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  process.on('SIGINT', () => void cleanup.run().then(() => process.exit(130)));
  try {
    const dir = cleanup.dir('conch-bench-start-');
    say(`starting ${N} simulated BMCs (hosts printing ${a.rate} B/s, nice ${a['sim-nice']})`);
    // ipmi_sim's behaviour, with the session timeout raised as the fleet benchmark does
    const fleet = await startBmcsimIpmi(cleanup, N, { rate: Number(a.rate), profileArgs: ['--profile', 'ipmi_sim', '--session-timeout', '3600'], nice: Number(a['sim-nice']) }, dir);
    const runs: Run[] = [];
    for (let r = 1; r <= Number(a.runs); r++) runs.push(await oneRun(cleanup, fleet, dir, r));

    const f1 = (x: number): string => (Number.isNaN(x) ? '–' : x.toFixed(1));
    const out = [
      `# Start: ${N} IPMI consoles — ${new Date().toISOString().slice(0, 10)}`,
      '',
      `Machine: ${os.hostname()}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node.js ${process.version}; conch-bmcsim at nice ${a['sim-nice']}, hosts printing ${a.rate} B/s.`,
      `Command: \`node dist/bench/start.js ${process.argv.slice(2).join(' ')}\``,
      '',
      'From spawning conchd: every BMC has activated SOL for it; every console\'s log holds a host line. CPU: seconds the daemon (all its threads) and the simulator used from the spawn until all logging; *CPU floor* is their sum over the machine\'s cores, the shortest the start could take here if both only started consoles. *Setups answered twice*: Open Session requests the simulator answered beyond the sessions it opened (setups started over). *BMC round trip*: a sessionless request from this process to 50 of the BMCs, 5 a second, during the start (unanswered in 3 s counts as 3 s).',
      '',
      '| run | → all activated s | → all logging s | conchd CPU s | simulator CPU s | CPU floor s | RSS MiB | setups answered twice | BMC round trip ms p50 / p99 / max |',
      '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
      ...runs.map(
        (r, i) =>
          `| ${i + 1} | ${f1(r.activatedS)} | ${f1(r.loggingS)} | ${f1(r.daemonCpuS)} | ${f1(r.simCpuS)} | ${f1((r.daemonCpuS + r.simCpuS) / os.cpus().length)} | ${r.rssMiB.toFixed(0)} | ${r.twice} | ${r.rtts.length === 0 ? '–' : `${percentile(r.rtts, 50).toFixed(1)} / ${percentile(r.rtts, 99).toFixed(0)} / ${Math.max(...r.rtts).toFixed(0)}`}${r.rtts.some((x) => x >= PING_TIMEOUT_MS) ? ` (${r.rtts.filter((x) => x >= PING_TIMEOUT_MS).length} unanswered)` : ''} |`,
      ),
      '',
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
