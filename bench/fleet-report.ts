// The fleet benchmark's results file (fleet.ts): the machine and the load,
// what each column means, a table per console type, the takeovers, slow keys
// and the kernel's memory reclaim, the calibration, the targets for conchd
// and notes per run. Written after every run, so that an interrupted
// benchmark still leaves its table.

import * as os from 'node:os';
import { execFileSync } from 'node:child_process';
import { onPath, type DaemonKind } from './rig.js';
import type { RunResult, RunSpec } from './fleet-run.js';
import { reclaimTable, sshComparison, table, takeoverTable, verdict } from './fleet-table.js';
import { nofileFor } from './fleet-proc.js';
import type { FleetKind } from './fleet-sims.js';

/** fleet-wide boot bursts per second at most: the steady window grows with N beyond 8,000 */
export const BOOTS_PER_S = 100;

/** What every run of one benchmark shares; fleet.ts adds the console type, N and the daemon. */
export type BaseSpec = Omit<RunSpec, 'kind' | 'n' | 'daemon' | 'loggingTimeoutS' | 'shards' | 'cpuProfDir'>;

/** The benchmark so far: what it was asked, what it found. */
export interface FleetReport {
  /** Date.now() at the start */
  started: number;
  quick: boolean;
  kinds: FleetKind[];
  daemons: DaemonKind[];
  /** real ipmi_sim BMCs in the calibration (0: none) */
  calibrate: number;
  base: BaseSpec;
  /** VmRSS of an idle Node.js process (MiB) */
  idleNode: number;
  /** the kernel's memory-reclaim threads (kernel-reclaim.ts) */
  reclaim: string;
  results: RunResult[];
  calib: RunResult[];
}

function conmandVersion(): string {
  try {
    return execFileSync(onPath('conmand'), ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    return ((e as { stdout?: string }).stdout ?? '').trim() || 'conmand not found';
  }
}

/** Title, machine, how to reproduce, the load and what each column means. */
function header(r: FleetReport): string[] {
  const { base } = r;
  const cpus = os.cpus();
  return [
    `# conchd vs conmand on a simulated fleet (${new Date().toISOString()})`,
    '',
    `Machine: ${os.hostname()}, ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${r.daemons.includes('conmand') ? conmandVersion() : 'conmand not run'}. ` +
      `Mode: ${r.quick ? 'quick' : 'full'}; took ${((Date.now() - r.started) / 60000).toFixed(1)} min. ` +
      `An idle Node.js process that loads no code has a VmRSS of ${r.idleNode.toFixed(1)} MiB here (the runtime's floor under conchd). ` +
      `Kernel memory-reclaim threads: ${r.reclaim}.`,
    '',
    `Reproduce: \`npx tsc -p . && CONCH_BENCH_SEED=${base.seed} node dist/bench/fleet.js ${process.argv.slice(2).join(' ')}\` (the seed replays the typing pauses and the takeovers' gaps).`,
    '',
    `Load: every host prints a \`[seq N]\` line of ~64 bytes every 640 ms (${base.rate} B/s) from the fleet's start, and every host but two prints one ` +
      `${base.burstBytes / 1024} KB burst of \`[seq N]\` lines, the bursts spread evenly over the first 80 % of the ${base.steadyS} s steady window (longer from N = 8,000 on: at most ${BOOTS_PER_S} bursts a second fleet-wide, e.g. 125 s at 10,000) ` +
      `(IPMI: the simulator's control channel; telnet: typed \`seq 330\` at the host through a second telnet connection). ` +
      `IPMI BMCs: conch-bmcsim, profile ipmi_sim with the session timeout raised to 3600 s (with ipmi_sim's 30 s, conmand's libipmiconsole, ` +
      `which sends no keepalive while SOL output flows, loses its session every ~30 s of steady output); each BMC on its own 127.A.x.y address, ` +
      `one UDP port below 32768 (FreeIPMI rejects higher ports). Telnet: conch-bmcsim terminal-server mode, one TCP port per host on one address. ` +
      `SSH: conch-bmcsim SSH mode, OpenBMC front (the console at once), one TCP port per host on one address, one ed25519 host key, bursts through the control channel; ` +
      `*ssh* is conchd's ssh:// consoles (password logins, the password from a pswdfile), *ssh-proc* the same hosts through one \`ssh -tt\` process console each (OpenSSH, key login), as conman and conserver run SSH consoles. ` +
      `The simulators, and the process that sends the bursts, run at nice ${base.simNice} (they stand in for other machines: they get the CPU the daemon leaves, and do not take it from the daemon), ` +
      `but for the typed-at console's BMC or telnet host, a process of its own at nice 0 (it does one host's work and answers at once, as a BMC on its own CPU would). ` +
      `Daemons and simulator run with an open-file limit of ${nofileFor(1 << 20)} (raised with prlimit as far as the hard limit allows); both daemons log every console to its own file.`,
    '',
    'Columns: *start → all logging* from spawning the daemon until every console\'s log holds a `[seq` line; *CPU s/min* user+sys of the daemon ' +
      'and its children over the steady window (CPU seconds per wall minute; 60 = one core busy); *simulator CPU* the same for conch-bmcsim ' +
      '(on the same 2 cores); *RSS* the largest VmRSS of daemon + children seen in the window, per console = RSS / N; *lines lost* `[seq]` lines ' +
      'missing between each console\'s first logged line and its host\'s last line after the load stopped and the logs drained (of all expected); ' +
      '*bytes lost* IPMI: bytes the daemon acknowledged at the BMCs minus host bytes in the logs, plus missing lines × mean line length; SSH: the same with the bytes the simulator wrote to the SSH sessions; telnet: missing lines × mean line length; ' +
      `*attach* TCP connect → \`OK\` of CONNECT OPTION=JOIN, *echo* one key → its echo, both on console 1 while the fleet is busy, with 1 client and with ` +
      `${base.readers} more joined readers; ${base.keystrokes} keys each, typed a person's pause apart (${base.keyGapMs} ms on average, 0.4-1.6×) so that they sample the whole busy stretch; ` +
      `*machine floor* the same typing, at the same time as the 1-client echo, against processes doing nothing else (the latency this loaded machine itself adds): *bare echo* a TCP echo process (a key wakes two processes: echo, typist); *relay echo* a relay process that sends each key as a UDP datagram to an echo process and writes the answer back, a console daemon and a BMC that do no work (a key wakes four processes in turn: relay, echo, relay, typist, as it wakes daemon, BMC, daemon, typist on a console); *takeover dark* IPMI console 2: another client takes SOL for ${base.stealS} s at the window start; seconds from its release ` +
      'until the log shows host output again. The ratio row is conchd / conmand (< 1: conchd smaller).',
    '',
  ];
}

const KIND_TITLES: Record<FleetKind, string> = {
  ipmi: 'IPMI SOL consoles (conch-bmcsim)',
  telnet: 'telnet consoles (conch-bmcsim terminal-server mode)',
  ssh: "SSH consoles, conchd's ssh:// (conch-bmcsim SSH mode, OpenBMC front)",
  'ssh-proc': 'SSH consoles the old way: one OpenSSH `ssh -tt` process console each (same hosts)',
  ipmi_sim: 'real ipmi_sim BMCs',
};

/** One table per console type; the SSH ways side by side. */
function kindTables(r: FleetReport): string[] {
  const lines: string[] = [];
  for (const kind of r.kinds) {
    const rs = r.results.filter((x) => x.spec.kind === kind);
    if (!rs.length) continue;
    lines.push(`## ${KIND_TITLES[kind]}`, '', table(rs, r.base.readers), '');
  }
  const cmp = sshComparison(r.results);
  if (cmp) {
    lines.push(
      "## SSH: conchd's ssh:// consoles vs one `ssh` process each",
      '',
      'The same N, hosts and load; per console: RSS (summed VmRSS of the daemon and its children over N: the usual figure, which counts the libraries every `ssh` process maps again in each), ' +
        "PSS (shared pages split between the processes that share them: the memory the machine really gives) and CPU (ms of CPU per wall minute over N); the ratio is the ssh processes' figure over conchd's.",
      '',
      cmp,
      '',
    );
  }
  return lines;
}

function takeoverSection(r: FleetReport): string[] {
  const tk = takeoverTable(r.results);
  if (!tk) return [];
  const { stealS, takeovers } = r.base;
  return [
    '## Takeovers',
    '',
    `Another client takes a console's SOL for ${stealS} s (the simulator's control channel), one console at a time, ${takeovers} times on consoles whose host prints 100 B/s and ${takeovers} times on consoles made silent. ` +
      (r.base.trialsOwnCpu
        ? 'Their BMCs run in the typed-at console\'s simulator process at nice 0 (--trials-own-cpu): they answer from a CPU of their own, as real BMCs do, not behind the shared process\'s fleet. '
        : 'Their BMCs run in the shared simulator process, at its niceness, behind the whole fleet\'s traffic. ') +
      '*noticed*: seconds from the steal until the "taken over" notice is in the console log; *back*: seconds from the other client\'s release until the "resumed" notice is; ' +
      'both include up to ~0.25 s of log gathering and reading. *requests/s per silent BMC*: datagrams a silent BMC whose SOL is the daemon\'s received from it over 20 s.',
    '',
    tk,
    '',
  ];
}

function reclaimSection(r: FleetReport): string[] {
  const slow = r.kinds.map((k) => [k, reclaimTable(r.results.filter((x) => x.spec.kind === k), r.base.readers)] as const).filter(([, t]) => t);
  if (!slow.length) return [];
  const lines = [
    '## Slow keys and the kernel\'s memory reclaim',
    '',
    'Every typist reads how long the kernel\'s memory-reclaim threads (see the machine line) ran between sending a key and reading its echo. ' +
      `A key *met reclaim* when they ran 0.1 ms or more in that time: one CPU of the ${os.cpus().length} was then theirs, and every process on the machine shared the rest.`,
    '',
  ];
  for (const [k, t] of slow) lines.push(`### ${KIND_TITLES[k]}`, '', t!, '');
  return lines;
}

function calibrationSection(r: FleetReport): string[] {
  if (!r.calib.length) return [];
  const lines = [
    `## Calibration: ${r.calibrate} real ipmi_sim BMCs vs ${r.calibrate} conch-bmcsim BMCs`,
    '',
    'Same load (100 B/s + one 10 KB burst per host but the first), 15 s window, no takeover, 1 client; both with the ipmi_sim 30 s session timeout. ' +
      '"simulator CPU" for ipmi_sim is the ipmi_sim processes only (their hosts run in the benchmark process).',
    '',
  ];
  for (const kind of ['ipmi_sim', 'ipmi'] as FleetKind[]) {
    lines.push(`### ${kind === 'ipmi_sim' ? 'real ipmi_sim' : 'conch-bmcsim'}`, '', table(r.calib.filter((x) => x.spec.kind === kind), 0), '');
  }
  return lines;
}

/** What went wrong or is worth knowing about each run. */
function notesSection(r: FleetReport): string[] {
  const notes = [...r.results, ...r.calib].filter((x) => x.notes.length || x.error || x.burstsSent !== undefined || x.retransmits);
  if (!notes.length) return [];
  const lines = ['## Notes per run', ''];
  for (const x of notes) {
    const extra = [
      x.error ? `error: ${x.error}` : '',
      x.burstsSent !== undefined ? `${x.burstsSent} bursts sent` : '',
      x.retransmits ? `${x.retransmits} SOL retransmissions by the BMCs` : '',
      x.lat1?.error ? `1-client latency: ${x.lat1.error}` : '',
      x.lat50?.error ? `${r.base.readers + 1}-client latency: ${x.lat50.error}` : '',
      x.floor?.error ? `machine floor: ${x.floor.error}` : '',
      x.relay?.error ? `relay floor: ${x.relay.error}` : '',
      x.lat1?.lostFirstKeys ? `${x.lat1.lostFirstKeys} first keystrokes after attach lost (retyped)` : '',
      ...x.notes,
    ].filter(Boolean);
    lines.push(`- ${x.spec.kind} N=${x.spec.n} ${x.spec.daemon} (${x.wallS.toFixed(0)} s wall, window ${x.windowS.toFixed(0)} s): ${extra.join('; ')}`);
  }
  lines.push('');
  return lines;
}

/** The results file's lines; `final` false marks it partial. */
export function report(r: FleetReport, final: boolean): string[] {
  const lines = [...header(r), ...kindTables(r), ...takeoverSection(r), ...reclaimSection(r), ...calibrationSection(r)];
  const v = verdict(r.results, r.idleNode);
  if (v.length) lines.push('## Targets for conchd', '', ...v, '');
  lines.push(...notesSection(r));
  if (!final) lines.push('(partial: the benchmark is still running or was interrupted)', '');
  return lines;
}
