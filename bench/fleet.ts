// conchd against Debian's conmand 0.2.7 on the same simulated fleet
// (bench/README.md, "The fleet benchmark").
// For each console type (IPMI SOL on conch-bmcsim, telnet on its
// terminal-server mode, SSH on its SSH mode: conchd's ssh:// consoles, and
// `ssh` process consoles the old way), each N and each daemon: a fresh fleet whose hosts
// print `[seq N]` lines at 100 B/s each plus one 10 KB burst per host spread
// over the window, the daemon logging every console. Measures CPU, RSS, time
// until every console logs, loss, attach/echo latency with 1 and 50 clients,
// and takeover darkness; prints a table with conchd/conmand ratios and writes
// it to bench/results/fleet-<date>-<machine>.md. A calibration pair runs the
// same load at small N on real ipmi_sim BMCs.
//
//   node dist/bench/fleet.js [--quick] [--sizes 100,1000,5000,10000] [--kinds ipmi,telnet,ssh,ssh-proc]
//        [--daemons conchd,conmand] [--conmand-max 5000] [--steady S] [--keys N] [--calibrate N]
//        [--sim-nice N] [--ipmi-threads N|auto] [--takeovers K [--trials-own-cpu]] [--cpu-prof] [--out FILE]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, type DaemonKind } from './rig.js';
import { run, type RunResult } from './fleet-run.js';
import { report, type BaseSpec, type FleetReport } from './fleet-report.js';
import { baseSpec, runSpec, telnetFit } from './fleet-plan.js';
import { reclaimDescription } from './kernel-reclaim.js';
import { longTurns, summarise } from './fleet-profile.js';
import { idleNodeRssMiB, nofileLimits } from './fleet-proc.js';
import { seedFrom } from './seeded.js';
import type { FleetKind } from './fleet-sims.js';

/** `ssh` process consoles at most by default: each is an OpenSSH process of several MiB */
const SSH_PROC_MAX = 1000;

const USAGE = `usage: node dist/bench/fleet.js [options]
  --quick            smoke sizes and seconds-long windows (sizes 20, steady 10 s, no calibration)
  --sizes LIST       console counts (default 100,1000,5000,10000)
  --kinds LIST       ipmi,telnet,ssh,ssh-proc (default ipmi,telnet): ssh = conchd's ssh:// consoles on conch-bmcsim's
                     SSH mode; ssh-proc = the same hosts through one OpenSSH \`ssh -tt\` process console each
  --ssh-proc-max N   run ssh-proc only up to N consoles (default ${SSH_PROC_MAX})
  --daemons LIST     conchd,conmand (default both)
  --conmand-max N    run conmand only up to N consoles (default 5000)
  --steady S         steady-state window in seconds (default 60, longer for more --keys; quick 10)
  --keys N           keys each typist types (default 400; quick 20): a p99 over 400 keys is the 4th slowest,
                     and moves by a factor of two between identical runs
  --settle S         seconds between "all logging" and the window (default 10; quick 1)
  --steal S          takeover length in seconds (default 10; quick 3)
  --calibrate N      calibration on N real ipmi_sim BMCs (default 5; 0 = none; quick 0)
  --sim-nice N       CPU niceness of the simulated BMCs and hosts (default 19: they stand in for other machines and
                     get the CPU the daemon leaves; 0: they compete with the daemon for it)
  --ipmi-threads N   conchd's IPMI threads (server ipmithreads=; default auto: none below 500 IPMI consoles, then one per 500, 2 to one per CPU)
  --takeovers K      after each IPMI window: K takeovers one at a time on printing consoles and K on silent ones,
                     each --steal seconds long; reports noticed / back-after-release and the requests a silent BMC gets
  --trials-own-cpu   the takeover victims' BMCs in the typed-at console's simulator process at nice 0 (they answer
                     from a CPU of their own, as real BMCs do) instead of the shared one
  --cpu-prof         run conchd and conch-bmcsim under node --cpu-prof; the results get their top functions
  --out FILE         results file (default bench/results/fleet-<date>-<machine>.md)
`;

function list(v: string | undefined, dflt: string): string[] {
  return (v ?? dflt).split(',').map((s) => s.trim()).filter(Boolean);
}

const OPTIONS = {
  quick: { type: 'boolean' },
  sizes: { type: 'string' },
  kinds: { type: 'string' },
  daemons: { type: 'string' },
  'conmand-max': { type: 'string' },
  'ssh-proc-max': { type: 'string' },
  steady: { type: 'string' },
  keys: { type: 'string' },
  settle: { type: 'string' },
  steal: { type: 'string' },
  calibrate: { type: 'string' },
  'cpu-prof': { type: 'boolean' },
  'ipmi-threads': { type: 'string' },
  'sim-nice': { type: 'string' },
  takeovers: { type: 'string' },
  'trials-own-cpu': { type: 'boolean' },
  out: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Args = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

/** What the command line asks for. */
interface Plan {
  quick: boolean;
  sizes: number[];
  kinds: FleetKind[];
  daemons: DaemonKind[];
  conmandMax: number;
  sshProcMax: number;
  calibrate: number;
  base: BaseSpec;
  /** the results file */
  out: string;
  /** where the CPU profiles go (--cpu-prof) */
  profDir?: string;
}

/** The command line, checked (throws on a value out of range), with the defaults of quick or full mode. */
function plan(a: Args, seed: number): Plan {
  const quick = a.quick ?? false;
  const sizes = list(a.sizes, quick ? '20' : '100,1000,5000,10000').map(Number);
  const kinds = list(a.kinds, 'ipmi,telnet') as FleetKind[];
  const daemons = list(a.daemons, 'conchd,conmand') as DaemonKind[];
  const conmandMax = Number(a['conmand-max'] ?? 5000);
  const calibrate = Number(a.calibrate ?? (quick ? 0 : 5));
  const simNice = Number(a['sim-nice'] ?? 19);
  const keys = Number(a.keys ?? (quick ? 20 : 400));
  if (!Number.isInteger(keys) || keys < 1 || keys > 100000) throw new Error(`--keys: '${a.keys}' is not a count from 1 to 100000`);
  const takeovers = Number(a.takeovers ?? 0);
  if (!Number.isInteger(takeovers) || takeovers < 0 || takeovers > 1000) throw new Error(`--takeovers: '${a.takeovers}' is not a count from 0 to 1000`);
  if (!Number.isInteger(simNice) || simNice < 0 || simNice > 19) throw new Error(`--sim-nice: '${a['sim-nice']}' is not a niceness from 0 to 19`);
  for (const n of sizes) if (!Number.isInteger(n) || n < 3 || n > 60000) throw new Error(`--sizes: '${n}' is not a count from 3 to 60000`);
  for (const k of kinds) if (!['ipmi', 'telnet', 'ssh', 'ssh-proc'].includes(k)) throw new Error(`--kinds: '${k}' (use ipmi, telnet, ssh, ssh-proc)`);
  const sshProcMax = Number(a['ssh-proc-max'] ?? SSH_PROC_MAX);
  if (!Number.isInteger(sshProcMax) || sshProcMax < 0) throw new Error(`--ssh-proc-max: '${a['ssh-proc-max']}' is not a count`);
  for (const d of daemons) if (d !== 'conchd' && d !== 'conmand') throw new Error(`--daemons: '${d}' (use conchd, conmand)`);
  const date = new Date().toISOString().slice(0, 10);
  const out = a.out ? path.resolve(a.out) : path.join(ROOT, 'bench/results', `fleet-${date}-${os.hostname()}.md`);
  const profDir = a['cpu-prof'] ? fs.mkdtempSync(path.join(os.tmpdir(), 'conch-fleet-prof-')) : undefined;

  const base = baseSpec({
    quick,
    keys,
    steady: a.steady === undefined ? undefined : Number(a.steady),
    settle: a.settle === undefined ? undefined : Number(a.settle),
    steal: a.steal === undefined ? undefined : Number(a.steal),
    ipmiThreads: a['ipmi-threads'],
    simNice,
    takeovers,
    trialsOwnCpu: a['trials-own-cpu'] === true,
    seed,
  });
  return { quick, sizes, kinds, daemons, conmandMax, sshProcMax, calibrate, base, out, profDir };
}

/** Where a run and the report go between runs. */
interface Progress {
  log(m: string): void;
  /** write the partial report */
  save(): void;
  stopping(): boolean;
}

/** Every console type, N and daemon asked for, one run at a time, until interrupted. */
async function runAll(p: Plan, results: RunResult[], at: Progress): Promise<void> {
  for (const kind of p.kinds) {
    for (const n0 of p.sizes) {
      for (const daemon of p.daemons) {
        if (at.stopping()) break;
        if (daemon === 'conmand' && n0 > p.conmandMax) continue;
        // conmand has no ssh:// consoles; thousands of ssh processes do not fit this machine
        if ((daemon === 'conmand' && kind === 'ssh') || (kind === 'ssh-proc' && n0 > p.sshProcMax)) continue;
        // Telnet and SSH: each console costs the daemon a socket and a log file, the
        // simulator a listener and a connection; past the hard open-file
        // limit no daemon can hold them all, so run the largest N that fits.
        const n = kind === 'ipmi' ? n0 : telnetFit(n0);
        const spec = runSpec(p.base, kind, n, daemon, p.profDir);
        at.log(`${kind} N=${n} ${daemon}${spec.shards! > 1 ? ` ×${spec.shards}` : ''}`);
        const r = await run(spec, at.log);
        if (n !== n0) r.notes.unshift(`asked for N=${n0}; ${n0} ${kind} consoles need 2 × ${n0} + a few file descriptors in the daemon (a socket and a log file each) and in the simulator, above this machine's hard open-file limit of ${nofileLimits().hard}: ran N=${n}, the largest that fits`);
        results.push(r);
        at.save();
        at.log(`  done in ${r.wallS.toFixed(0)} s`);
      }
    }
  }
}

/** The same load on `calibrate` real ipmi_sim BMCs and as many conch-bmcsim ones. */
async function calibrate(p: Plan, calib: RunResult[], at: Progress): Promise<void> {
  const cal = { ...p.base, n: p.calibrate, steadyS: 15, settleS: 2, stealS: 0, attaches: p.quick ? 3 : 10, keystrokes: p.quick ? 20 : 100, readers: 0, loggingTimeoutS: 60, profileArgs: ['--profile', 'ipmi_sim'] };
  for (const kind of ['ipmi_sim', 'ipmi'] as FleetKind[]) {
    for (const daemon of p.daemons) {
      at.log(`calibration: ${kind} N=${p.calibrate} ${daemon}`);
      calib.push(await run({ ...cal, kind, daemon }, at.log));
      at.save();
    }
  }
}

/** long turns are counted from this far into a profile: past a 10,000-console start and its settling */
const LONG_TURNS_FROM_S = 40;

/** The top functions of every CPU profile (--cpu-prof), and conchd's long turns in each thread; removes them. */
function cpuProfiles(profDir: string): string[] {
  const lines = ['## Where the CPU goes (node --cpu-prof, whole run)', ''];
  for (const d of fs.readdirSync(profDir).sort()) {
    lines.push(`### ${d}`, '');
    for (const who of fs.readdirSync(path.join(profDir, d)).sort()) {
      lines.push(`#### ${who}`, '', ...summarise(path.join(profDir, d, who)));
      // conchd's turns of 3 ms or more in each thread, after the start (what a typed key waits behind)
      if (who !== 'conchd') continue;
      for (const f of fs.readdirSync(path.join(profDir, d, who)).filter((x) => x.endsWith('.cpuprofile')).sort()) lines.push(`Turns in ${f}, from ${LONG_TURNS_FROM_S} s into it:`, '', ...longTurns(path.join(profDir, d, who, f), 3, LONG_TURNS_FROM_S * 1000), '');
    }
  }
  fs.rmSync(profDir, { recursive: true, force: true });
  return lines;
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({ options: OPTIONS });
  if (a.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const seed = seedFrom('CONCH_BENCH_SEED');
  const p = plan(a, seed);

  let stopping = false;
  process.on('SIGINT', () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write('fleet: interrupted; finishing the current run (its clean-up), ^C again to abandon it\n');
  });

  const writeOut = (text: string): void => {
    fs.mkdirSync(path.dirname(p.out), { recursive: true });
    fs.writeFileSync(p.out, text + '\n');
  };
  const started = Date.now();
  const log = (m: string): void => void process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${m}\n`);
  log(`seed ${seed} (CONCH_BENCH_SEED=${seed} replays the typing pauses and the takeovers' gaps)`);
  const r: FleetReport = { started, quick: p.quick, kinds: p.kinds, daemons: p.daemons, calibrate: p.calibrate, base: p.base, idleNode: idleNodeRssMiB(), reclaim: reclaimDescription(), results: [], calib: [] };
  const at: Progress = { log, save: () => writeOut(report(r, false).join('\n')), stopping: () => stopping };
  await runAll(p, r.results, at);
  if (p.calibrate > 0 && !stopping) await calibrate(p, r.calib, at);

  const lines = report(r, true);
  if (p.profDir) lines.push(...cpuProfiles(p.profDir));
  const text = lines.join('\n');
  process.stdout.write(text + '\n');
  writeOut(text);
  process.stderr.write(`written to ${p.out}\n`);
  return r.results.some((x) => x.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fleet: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    process.exit(2);
  },
);
