// conchd against Debian's conmand 0.2.7 on the same simulated fleet
// (bench/README.md, "The fleet benchmark").
// For each console type (IPMI SOL on conch-bmcsim, telnet on its
// terminal-server mode), each N and each daemon: a fresh fleet whose hosts
// print `[seq N]` lines at 100 B/s each plus one 10 KB burst per host spread
// over the window, the daemon logging every console. Measures CPU, RSS, time
// until every console logs, loss, attach/echo latency with 1 and 50 clients,
// and takeover darkness; prints a table with conchd/conmand ratios and writes
// it to bench/results/fleet-<date>-<machine>.md. A calibration pair runs the
// same load at small N on real ipmi_sim BMCs.
//
//   node dist/bench/fleet.js [--quick] [--sizes 100,1000,5000,10000] [--kinds ipmi,telnet]
//        [--daemons conchd,conmand] [--conmand-max 5000] [--steady S] [--keys N] [--calibrate N]
//        [--sim-nice N] [--ipmi-threads N|auto] [--takeovers K] [--cpu-prof] [--out FILE]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { ROOT, onPath, type DaemonKind } from './rig.js';
import { run, type RunResult, type RunSpec } from './fleet-run.js';
import { reclaimTable, table, takeoverTable, verdict } from './fleet-table.js';
import { reclaimDescription } from './kernel-reclaim.js';
import { summarise } from './fleet-profile.js';
import { idleNodeRssMiB, nofileLimits } from './fleet-proc.js';

/**
 * IPMI consoles one conmand 0.2.7 starts at most: past 4,096 (32 threads × 128) its
 * libipmiconsole engine fails ("Unable to start IPMI SOL engine"); conman's
 * guide has large sites run one conmand per core, each with a share.
 */
const CONMAND_IPMI_MAX = 4096;
/** a person's pause between two keys, on average (ms) */
const KEY_GAP_MS = 50;
/** fleet-wide boot bursts per second at most: the steady window grows with N beyond 8,000 */
const BOOTS_PER_S = 100;

/** the largest telnet fleet (a multiple of 500) whose 2 descriptors per console fit the hard limit */
function telnetFit(n: number): number {
  const fit = Math.floor((nofileLimits().hard - 512) / 2 / 500) * 500;
  return Math.min(n, Math.max(500, fit));
}
import { nofileFor } from './fleet-proc.js';
import type { FleetKind } from './fleet-sims.js';

const USAGE = `usage: node dist/bench/fleet.js [options]
  --quick            smoke sizes and seconds-long windows (sizes 20, steady 10 s, no calibration)
  --sizes LIST       console counts (default 100,1000,5000,10000)
  --kinds LIST       ipmi,telnet (default both)
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
  --cpu-prof         run conchd and conch-bmcsim under node --cpu-prof; the results get their top functions
  --out FILE         results file (default bench/results/fleet-<date>-<machine>.md)
`;

function list(v: string | undefined, dflt: string): string[] {
  return (v ?? dflt).split(',').map((s) => s.trim()).filter(Boolean);
}

function conmandVersion(): string {
  try {
    return execFileSync(onPath('conmand'), ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return ((e as { stdout?: string }).stdout ?? '').trim() || 'conmand not found';
  }
}

async function main(): Promise<number> {
  const { values: a } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      sizes: { type: 'string' },
      kinds: { type: 'string' },
      daemons: { type: 'string' },
      'conmand-max': { type: 'string' },
      steady: { type: 'string' },
      keys: { type: 'string' },
      settle: { type: 'string' },
      steal: { type: 'string' },
      calibrate: { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'ipmi-threads': { type: 'string' },
      'sim-nice': { type: 'string' },
      takeovers: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (a.help) {
    process.stdout.write(USAGE);
    return 0;
  }
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
  for (const k of kinds) if (k !== 'ipmi' && k !== 'telnet') throw new Error(`--kinds: '${k}' (use ipmi, telnet)`);
  for (const d of daemons) if (d !== 'conchd' && d !== 'conmand') throw new Error(`--daemons: '${d}' (use conchd, conmand)`);
  const date = new Date().toISOString().slice(0, 10);
  const out = a.out ? path.resolve(a.out) : path.join(ROOT, 'bench/results', `fleet-${date}-${os.hostname()}.md`);
  const profDir = a['cpu-prof'] ? fs.mkdtempSync(path.join(os.tmpdir(), 'conch-fleet-prof-')) : undefined;

  const base = {
    rate: 100,
    burstBytes: 10240,
    // the typing (1 client, then 50, KEY_GAP_MS apart) stays inside the window
    steadyS: Number(a.steady ?? (quick ? 10 : Math.max(60, Math.ceil((2 * keys * KEY_GAP_MS * 1.25) / 1000)))),
    settleS: Number(a.settle ?? (quick ? 1 : 10)),
    stealS: Number(a.steal ?? (quick ? 3 : 10)),
    attaches: quick ? 3 : 20,
    // 400 keys: ~20 s of typing for 1 client and again for 50, inside the 60 s window while echoes are fast
    // (where they take hundreds of ms, from 5,000 consoles, the window stretches to fit them)
    keystrokes: keys,
    keyGapMs: KEY_GAP_MS,
    readers: quick ? 9 : 49,
    // ipmi_sim-like BMCs, but sessions live 1 h: conmand sends no keepalive while SOL output flows, and the
    // ipmi_sim profile ends a session after 30 s without IPMI messages (docs/ipmi.md, "Simulated BMC profiles")
    profileArgs: ['--profile', 'ipmi_sim', '--session-timeout', '3600'],
    ipmiThreads: a['ipmi-threads'],
    simNice,
    takeovers,
  };

  let stopping = false;
  process.on('SIGINT', () => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stderr.write('fleet: interrupted; finishing the current run (its clean-up), ^C again to abandon it\n');
  });

  const writeOut = (text: string): void => {
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, text + '\n');
  };
  const started = Date.now();
  const log = (m: string): void => void process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${m}\n`);
  const results: RunResult[] = [];
  const calib: RunResult[] = [];
  const idleNode = idleNodeRssMiB();
  const reclaim = reclaimDescription();
  // the report so far: written after every run, so an interrupted benchmark still leaves its table
  const build = (final: boolean): string[] => {
    const cpus = os.cpus();
    const lines = [
      `# conchd vs conmand on a simulated fleet (${new Date().toISOString()})`,
      '',
      `Machine: ${os.hostname()}, ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${daemons.includes('conmand') ? conmandVersion() : 'conmand not run'}. ` +
        `Mode: ${quick ? 'quick' : 'full'}; took ${((Date.now() - started) / 60000).toFixed(1)} min. ` +
        `An idle Node.js process that loads no code has a VmRSS of ${idleNode.toFixed(1)} MiB here (the runtime's floor under conchd). ` +
        `Kernel memory-reclaim threads: ${reclaim}.`,
      '',
      `Reproduce: \`npx tsc -p . && node dist/bench/fleet.js ${process.argv.slice(2).join(' ')}\`.`,
      '',
      `Load: every host prints a \`[seq N]\` line of ~64 bytes every 640 ms (${base.rate} B/s) from the fleet's start, and every host but two prints one ` +
        `${base.burstBytes / 1024} KB burst of \`[seq N]\` lines, the bursts spread evenly over the first 80 % of the ${base.steadyS} s steady window (longer from N = 8,000 on: at most ${BOOTS_PER_S} bursts a second fleet-wide, e.g. 125 s at 10,000) ` +
        `(IPMI: the simulator's control channel; telnet: typed \`seq 330\` at the host through a second telnet connection). ` +
        `IPMI BMCs: conch-bmcsim, profile ipmi_sim with the session timeout raised to 3600 s (with ipmi_sim's 30 s, conmand's libipmiconsole, ` +
        `which sends no keepalive while SOL output flows, loses its session every ~30 s of steady output); each BMC on its own 127.A.x.y address, ` +
        `one UDP port below 32768 (FreeIPMI rejects higher ports). Telnet: conch-bmcsim terminal-server mode, one TCP port per host on one address. ` +
        `The simulators, and the process that sends the bursts, run at nice ${simNice} (they stand in for other machines: they get the CPU the daemon leaves, and do not take it from the daemon), ` +
        `but for the typed-at console's BMC or telnet host, a process of its own at nice 0 (it does one host's work and answers at once, as a BMC on its own CPU would). ` +
        `Daemons and simulator run with an open-file limit of ${nofileFor(1 << 20)} (raised with prlimit as far as the hard limit allows); both daemons log every console to its own file.`,
      '',
      'Columns: *start → all logging* from spawning the daemon until every console\'s log holds a `[seq` line; *CPU s/min* user+sys of the daemon ' +
        'and its children over the steady window (CPU seconds per wall minute; 60 = one core busy); *simulator CPU* the same for conch-bmcsim ' +
        '(on the same 2 cores); *RSS* the largest VmRSS of daemon + children seen in the window, per console = RSS / N; *lines lost* `[seq]` lines ' +
        'missing between each console\'s first logged line and its host\'s last line after the load stopped and the logs drained (of all expected); ' +
        '*bytes lost* IPMI: bytes the daemon acknowledged at the BMCs minus host bytes in the logs, plus missing lines × mean line length; telnet: the latter; ' +
        `*attach* TCP connect → \`OK\` of CONNECT OPTION=JOIN, *echo* one key → its echo, both on console 1 while the fleet is busy, with 1 client and with ` +
        `${base.readers} more joined readers; ${base.keystrokes} keys each, typed a person's pause apart (${base.keyGapMs} ms on average, 0.4-1.6×) so that they sample the whole busy stretch; ` +
        `*machine floor* the same typing, at the same time as the 1-client echo, against processes doing nothing else (the latency this loaded machine itself adds): *bare echo* a TCP echo process (a key wakes two processes: echo, typist); *relay echo* a relay process that sends each key as a UDP datagram to an echo process and writes the answer back, a console daemon and a BMC that do no work (a key wakes four processes in turn: relay, echo, relay, typist, as it wakes daemon, BMC, daemon, typist on a console); *takeover dark* IPMI console 2: another client takes SOL for ${base.stealS} s at the window start; seconds from its release ` +
        'until the log shows host output again. The ratio row is conchd / conmand (< 1: conchd smaller).',
      '',
    ];
    for (const kind of kinds) {
      const rs = results.filter((r) => r.spec.kind === kind);
      if (!rs.length) continue;
      lines.push(`## ${kind === 'ipmi' ? 'IPMI SOL consoles (conch-bmcsim)' : 'telnet consoles (conch-bmcsim terminal-server mode)'}`, '', table(rs, base.readers), '');
    }
    const tk = takeoverTable(results);
    if (tk) {
      lines.push(
        '## Takeovers',
        '',
        `Another client takes a console's SOL for ${base.stealS} s (the simulator's control channel), one console at a time, ${takeovers} times on consoles whose host prints 100 B/s and ${takeovers} times on consoles made silent. ` +
          '*noticed*: seconds from the steal until the "taken over" notice is in the console log; *back*: seconds from the other client\'s release until the "resumed" notice is; ' +
          'both include up to ~0.25 s of log gathering and reading. *requests/s per silent BMC*: datagrams a silent BMC whose SOL is the daemon\'s received from it over 20 s.',
        '',
        tk,
        '',
      );
    }
    const slow = kinds.map((k) => [k, reclaimTable(results.filter((r) => r.spec.kind === k), base.readers)] as const).filter(([, t]) => t);
    if (slow.length) {
      lines.push(
        '## Slow keys and the kernel\'s memory reclaim',
        '',
        'Every typist reads how long the kernel\'s memory-reclaim threads (see the machine line) ran between sending a key and reading its echo. ' +
          `A key *met reclaim* when they ran 0.1 ms or more in that time: one CPU of the ${os.cpus().length} was then theirs, and every process on the machine shared the rest.`,
        '',
      );
      for (const [k, t] of slow) lines.push(`### ${k === 'ipmi' ? 'IPMI SOL consoles' : 'telnet consoles'}`, '', t!, '');
    }
    if (calib.length) {
      lines.push(
        `## Calibration: ${calibrate} real ipmi_sim BMCs vs ${calibrate} conch-bmcsim BMCs`,
        '',
        'Same load (100 B/s + one 10 KB burst per host but the first), 15 s window, no takeover, 1 client; both with the ipmi_sim 30 s session timeout. ' +
          '"simulator CPU" for ipmi_sim is the ipmi_sim processes only (their hosts run in the benchmark process).',
        '',
      );
      for (const kind of ['ipmi_sim', 'ipmi'] as FleetKind[]) {
        lines.push(`### ${kind === 'ipmi_sim' ? 'real ipmi_sim' : 'conch-bmcsim'}`, '', table(calib.filter((r) => r.spec.kind === kind), 0), '');
      }
    }
    const v = verdict(results, idleNode);
    if (v.length) lines.push('## Targets for conchd', '', ...v, '');
    const notes = [...results, ...calib].filter((r) => r.notes.length || r.error || r.burstsSent !== undefined || r.retransmits);
    if (notes.length) {
      lines.push('## Notes per run', '');
      for (const r of notes) {
        const extra = [
          r.error ? `error: ${r.error}` : '',
          r.burstsSent !== undefined ? `${r.burstsSent} bursts sent` : '',
          r.retransmits ? `${r.retransmits} SOL retransmissions by the BMCs` : '',
          r.lat1?.error ? `1-client latency: ${r.lat1.error}` : '',
          r.lat50?.error ? `${base.readers + 1}-client latency: ${r.lat50.error}` : '',
          r.floor?.error ? `machine floor: ${r.floor.error}` : '',
          r.relay?.error ? `relay floor: ${r.relay.error}` : '',
          r.lat1?.lostFirstKeys ? `${r.lat1.lostFirstKeys} first keystrokes after attach lost (retyped)` : '',
          ...r.notes,
        ].filter(Boolean);
        lines.push(`- ${r.spec.kind} N=${r.spec.n} ${r.spec.daemon} (${r.wallS.toFixed(0)} s wall, window ${r.windowS.toFixed(0)} s): ${extra.join('; ')}`);
      }
      lines.push('');
    }
    if (!final) lines.push('(partial: the benchmark is still running or was interrupted)', '');
    return lines;
  };
  for (const kind of kinds) {
    for (const n0 of sizes) {
      for (const daemon of daemons) {
        if (stopping) break;
        if (daemon === 'conmand' && n0 > conmandMax) continue;
        // Telnet: each console costs the daemon a socket and a log file, the
        // simulator a listener and a connection; past the hard open-file
        // limit no daemon can hold them all, so run the largest N that fits.
        const n = kind === 'telnet' ? telnetFit(n0) : n0;
        // bursts (simulated reboots) come at most BOOTS_PER_S a second fleet-wide
        const steadyS = Math.max(base.steadyS, Math.ceil(n / BOOTS_PER_S / 0.8));
        // one conmand cannot start more than CONMAND_IPMI_MAX IPMI consoles: share them out, one conmand per core at least
        const shards = daemon === 'conmand' && kind === 'ipmi' && n > CONMAND_IPMI_MAX ? Math.max(os.cpus().length, Math.ceil(n / CONMAND_IPMI_MAX)) : 1;
        const spec: RunSpec = { ...base, kind, n, daemon, shards, steadyS, loggingTimeoutS: Math.max(60, n / 50), cpuProfDir: daemon === 'conchd' && profDir ? path.join(profDir, `${kind}-${n}`) : undefined };
        log(`${kind} N=${n} ${daemon}${shards > 1 ? ` ×${shards}` : ''}`);
        const r = await run(spec, log);
        if (n !== n0) r.notes.unshift(`asked for N=${n0}; ${n0} telnet consoles need 2 × ${n0} + a few file descriptors in the daemon (a socket and a log file each) and in the simulator, above this machine's hard open-file limit of ${nofileLimits().hard}: ran N=${n}, the largest that fits`);
        results.push(r);
        writeOut(build(false).join('\n'));
        log(`  done in ${r.wallS.toFixed(0)} s`);
      }
    }
  }
  if (calibrate > 0 && !stopping) {
    const cal = { ...base, n: calibrate, steadyS: 15, settleS: 2, stealS: 0, attaches: quick ? 3 : 10, keystrokes: quick ? 20 : 100, readers: 0, loggingTimeoutS: 60, profileArgs: ['--profile', 'ipmi_sim'] };
    for (const kind of ['ipmi_sim', 'ipmi'] as FleetKind[]) {
      for (const daemon of daemons) {
        log(`calibration: ${kind} N=${calibrate} ${daemon}`);
        calib.push(await run({ ...cal, kind, daemon }, log));
        writeOut(build(false).join('\n'));
      }
    }
  }

  const lines = build(true);
  if (profDir) {
    lines.push('## Where the CPU goes (node --cpu-prof, whole run)', '');
    for (const d of fs.readdirSync(profDir).sort()) {
      lines.push(`### ${d}`, '');
      for (const who of fs.readdirSync(path.join(profDir, d)).sort()) lines.push(`#### ${who}`, '', ...summarise(path.join(profDir, d, who)));
    }
    fs.rmSync(profDir, { recursive: true, force: true });
  }
  const report = lines.join('\n');
  process.stdout.write(report + '\n');
  writeOut(report);
  process.stderr.write(`written to ${out}\n`);
  return results.some((r) => r.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`fleet: ${e instanceof Error ? e.message : String(e)}\n${USAGE}`);
    process.exit(2);
  },
);
