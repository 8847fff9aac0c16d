// The CPU cost of pattern alerts (docs/alerts.md): conchd with N busy test
// consoles (`dev="test:"`, about 100 B/s each in 98-character lines of
// printable ASCII ramps, every console logging), run with alerts off
// (`alertdefaults=off`, no rules file: no console is even tapped) and on
// (the built-in rules plus 20 site rules), one after the other, `--reps`
// times each, alternating. For each run: conchd's CPU seconds per minute
// over the window (its threads included: the log writers), the bytes its
// logs grew by per second, its RSS, and the alerts it fired (none expected:
// ramps are not kernel text). Prints a markdown table and writes it to
// bench/results/alerts-<date>.md.
//
// `--compare index` measures the search time index (src/search/index-writer.ts)
// instead: the same fleet with CONCH_SEARCH_INDEX=off and on, alternating,
// alerts as `--alerts` says (default on), written to
// bench/results/search-index-<date>.md. `--cpu-prof` runs conchd under
// `node --cpu-prof` and appends each run's top functions.
//
//   node dist/bench/alerts.js [--sizes 2000,10000] [--seconds 60] [--warmup 10] [--reps 2]
//                             [--compare alerts|index] [--alerts on|off] [--cpu-prof] [--out FILE]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, freePort, type Child } from './harness.js';
import { CONCHD, ROOT } from './rig.js';
import { procStat, treeCpuSeconds, treeRssMiB, withNofile } from './fleet-proc.js';
import { THREAD_NAME } from '../src/search/index-writer-protocol.js';
import { summarise } from './fleet-profile.js';

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string', default: '2000,10000' },
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    reps: { type: 'string', default: '2' },
    compare: { type: 'string', default: 'alerts' },
    alerts: { type: 'string', default: 'on' },
    'cpu-prof': { type: 'boolean', default: false },
    out: { type: 'string' },
  },
});
const SIZES = a.sizes.split(',').map(Number);
const SECONDS = Number(a.seconds);
const WARMUP = Number(a.warmup);
const REPS = Number(a.reps);
if (SIZES.some((n) => !(n > 0)) || !(SECONDS > 0) || !(WARMUP >= 0) || !(REPS >= 1)) throw new Error('--sizes N,N…, --seconds S, --warmup S, --reps R: positive numbers');
if (a.compare !== 'alerts' && a.compare !== 'index') throw new Error('--compare alerts|index');
if (a.alerts !== 'on' && a.alerts !== 'off') throw new Error('--alerts on|off');
/** what is switched off and on between runs */
const COMPARE: 'alerts' | 'index' = a.compare;
/** with --compare index: alerts on or off in every run */
const ALERTS: Mode = a.alerts;
const PROF = a['cpu-prof'];
const profDir = PROF ? fs.mkdtempSync(path.join(os.tmpdir(), 'conch-bench-alerts-prof-')) : '';

const say = (m: string): void => void process.stderr.write(`# ${m}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A site's own rules, as an operator of a cluster would write them; every console gets all of them but two. */
export const SITE_RULES = String.raw`
rule raid-fault crit /megaraid_sas [0-9a-f:.]+: FW in FAULT state/
rule disk-io err /blk_update_request: I\/O error, dev [a-z]+[0-9]*, sector [0-9]+/
rule ext4-error err /EXT4-fs error \(device [^)]+\)/
rule xfs-shutdown crit /XFS \([^)]+\): (Corruption detected|log I\/O error|Filesystem has been shut down)/
rule nvme-timeout err /nvme nvme[0-9]+: I\/O [0-9]+ QID [0-9]+ timeout/
rule scsi-timeout warning /sd [0-9:]+: \[sd[a-z]+\] tag#[0-9]+ (timing out command|abort)/
rule link-down warning /(ixgbe|i40e|ice|mlx5_core|bnxt_en) [0-9a-f:.]+ [a-z0-9]+: (NIC )?Link is Down/
rule netdev-watchdog err /NETDEV WATCHDOG: [a-z0-9]+ \([a-z0-9_]+\): transmit queue [0-9]+ timed out/
rule nfs-not-responding warning /nfs: server [^ ]+ not responding/
rule segfault notice /[a-z0-9_.-]+\[[0-9]+\]: segfault at [0-9a-f]+ ip [0-9a-f]+/
rule thermal warning /CPU[0-9]+: (Core|Package) temperature above threshold/
rule pcie-aer err /AER: (Multiple )?(Uncorrected|Corrected) (\((Fatal|Non-Fatal)\) )?error received/
rule gpu-xid err /NVRM: Xid \(PCI:[0-9a-f:.]+\): [0-9]+,/
rule lustre-evict err /LustreError: [0-9]+:[0-9]+:\(.*\) .* evicted/
rule ib-port warning /mlx[45]_core [0-9a-f:.]+: Port [0-9]+ (link|state) (down|changed)/
rule systemd-failed notice /systemd\[1\]: Failed to start /
rule kdump notice /kdump: (saving vmcore|Dumping to)/
rule fw-bug warning /\[Firmware Bug\]: /
rule db-replica err console=db[0-9]+ /replication (lag|stopped)/
rule gw-bgp warning console=gw[0-9]+ /bgpd.*(Down|Idle)/
`;

type Mode = 'off' | 'on';

interface Run {
  consoles: number;
  mode: Mode;
  rep: number;
  cpuPerMin: number;
  logBytesPerS: number;
  rssMiB: number;
  alerts: number;
  rules: string;
  /** CPU s/min of the search index writer's thread (0: none) */
  indexThread: number;
}

/** CPU seconds of `pid`'s threads named `name` */
function threadCpuSeconds(pid: number, name: string): number {
  let ticks = 0;
  let tids: string[] = [];
  try {
    tids = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) {
    const st = procStat(Number(tid), `/proc/${pid}/task`);
    if (st?.comm === name) ticks += Number(st.fields[11]) + Number(st.fields[12]);
  }
  return ticks / 100;
}

const logBytes = (dir: string, n: number): number => {
  let sum = 0;
  for (let i = 1; i <= n; i++) {
    try {
      sum += fs.statSync(path.join(dir, `b${String(i).padStart(5, '0')}.log`)).size;
    } catch {
      /* not yet */
    }
  }
  return sum;
};

/** `mode` is what --compare switches: the alerts, or the search index */
async function run(n: number, mode: Mode, rep: number): Promise<Run> {
  const alertsOn = COMPARE === 'alerts' ? mode === 'on' : ALERTS === 'on';
  const indexEnv = COMPARE === 'index' ? { CONCH_SEARCH_INDEX: mode } : {};
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('conch-bench-alerts-');
    const rules = path.join(dir, 'site.rules');
    fs.writeFileSync(rules, SITE_RULES);
    const conf = path.join(dir, 'conman.conf');
    const lines = [
      `server port=${await freePort()}`,
      'server loopback=on',
      `server logdir="${dir}"`,
      `server pidfile="${path.join(dir, 'conchd.pid')}"`,
      `server statedir="${path.join(dir, 'state')}"`,
      alertsOn ? `server alerts="${rules}"` : 'server alertdefaults=off',
      // 98 characters and CRLF every 0.5 to 1.5 s: about 100 B/s
      'global testopts="b:98,n:500,m:1500"',
      'global log="%N.log"',
    ];
    for (let i = 1; i <= n; i++) lines.push(`console name="b${String(i).padStart(5, '0')}" dev="test:"`);
    fs.writeFileSync(conf, lines.join('\n') + '\n');
    const prof = PROF ? ['--cpu-prof', `--cpu-prof-dir=${path.join(profDir, `${n}-${mode}-${rep}`)}`] : [];
    const [cmd, args] = withNofile(process.execPath, [...prof, CONCHD, '-F', '-c', conf], n + 1024);
    const daemon: Child = cleanup.child(cmd, args, { cwd: dir, env: { ...process.env, ...indexEnv } });
    await daemon.waitOutput(`conchd started with ${n} console`, 180_000);
    const pid = daemon.proc.pid!;
    const rulesLine = /Alerts: ([^\n]*)/.exec(daemon.output)?.[1] ?? 'no rules';
    await sleep(WARMUP * 1000);
    const b0 = logBytes(dir, n);
    const c0 = treeCpuSeconds(pid);
    const i0 = threadCpuSeconds(pid, THREAD_NAME);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const cpu = treeCpuSeconds(pid) - c0;
    const ixCpu = threadCpuSeconds(pid, THREAD_NAME) - i0;
    const wallS = (performance.now() - t0) / 1000;
    const b1 = logBytes(dir, n);
    const rssMiB = treeRssMiB(pid);
    const alerts = daemon.output.split('\n').filter((l) => /Console \[[^\]]+\] alert /.test(l)).length;
    // a profile is written as conchd exits: give a large one time
    await daemon.stop(PROF ? 120_000 : 5000);
    return { consoles: n, mode, rep, cpuPerMin: (cpu / wallS) * 60, logBytesPerS: (b1 - b0) / wallS, rssMiB, alerts, rules: rulesLine, indexThread: (ixCpu / wallS) * 60 };
  } finally {
    await cleanup.run();
  }
}

const f2 = (x: number): string => x.toFixed(2);
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

function table(rs: Run[]): string {
  const what = COMPARE === 'alerts' ? 'alerts' : 'index';
  // with --compare index: the index writer's own thread, measured apart from the run-to-run noise of the rest
  const ixCol = COMPARE === 'index';
  const out = [
    `| consoles | logged | CPU s/min, ${what} off | CPU s/min, ${what} on | on / off | each run (off; on) | RSS off / on | alerts fired |${ixCol ? ' index thread, CPU s/min (of off) |' : ''}`,
    `|---:|---:|---:|---:|---:|---|---:|---:|${ixCol ? '---:|' : ''}`,
  ];
  for (const n of SIZES) {
    const off = rs.filter((r) => r.consoles === n && r.mode === 'off');
    const on = rs.filter((r) => r.consoles === n && r.mode === 'on');
    if (off.length === 0 || on.length === 0) continue;
    const [mo, mn] = [mean(off.map((r) => r.cpuPerMin)), mean(on.map((r) => r.cpuPerMin))];
    const logged = mean([...off, ...on].map((r) => r.logBytesPerS));
    out.push(
      `| ${n.toLocaleString('en')} | ${(logged / 1024).toFixed(0)} KiB/s | ${f2(mo)} | ${f2(mn)} | ${f2(mn / mo)} (${mn >= mo ? '+' : ''}${(((mn - mo) / mo) * 100).toFixed(1)} %) | ` +
        `${off.map((r) => f2(r.cpuPerMin)).join(', ')}; ${on.map((r) => f2(r.cpuPerMin)).join(', ')} | ` +
        `${mean(off.map((r) => r.rssMiB)).toFixed(0)} / ${mean(on.map((r) => r.rssMiB)).toFixed(0)} MiB | ${on.reduce((s, r) => s + r.alerts, 0)} |` +
        (ixCol ? ` ${f2(mean(on.map((r) => r.indexThread)))} (${((mean(on.map((r) => r.indexThread)) / mo) * 100).toFixed(1)} %) |` : ''),
    );
  }
  return out.join('\n');
}

const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const loadBefore = load();
const results: Run[] = [];
for (const n of SIZES) {
  for (let rep = 1; rep <= REPS; rep++) {
    // alternate which goes first, so that a drift in the machine's load weighs on both
    const order: Mode[] = rep % 2 === 1 ? ['off', 'on'] : ['on', 'off'];
    for (const mode of order) {
      say(`${n} consoles, ${COMPARE} ${mode}, run ${rep} of ${REPS}: ${WARMUP} s warm-up, ${SECONDS} s measured`);
      const r = await run(n, mode, rep);
      say(`  ${f2(r.cpuPerMin)} CPU s/min${r.indexThread > 0 ? ` (index thread ${f2(r.indexThread)})` : ''}, logs ${(r.logBytesPerS / 1024).toFixed(0)} KiB/s, RSS ${r.rssMiB.toFixed(0)} MiB, ${r.alerts} alerts (${r.rules})`);
      results.push(r);
    }
  }
}
const t = table(results);
process.stdout.write(`${t}\n`);

const date = new Date().toISOString().slice(0, 10);
const cpus = os.cpus();
const onRules = results.find((r) => COMPARE === 'index' || r.mode === 'on')?.rules ?? '';
const rulesText = `the built-in rules and the 20 site rules of bench/alerts.ts (${onRules})`;
const envText = process.env.CONCH_SEARCH_INDEX !== undefined ? `CONCH_SEARCH_INDEX=${process.env.CONCH_SEARCH_INDEX} ` : '';
const setup =
  COMPARE === 'alerts'
    ? `Alerts off: \`alertdefaults=off\` and no rules file (no console tapped). Alerts on: ${rulesText}. ` +
      `${REPS} run${REPS === 1 ? '' : 's'} of each, alternating.` +
      (process.env.CONCH_SEARCH_INDEX !== undefined ? ` conchd ran with CONCH_SEARCH_INDEX=${process.env.CONCH_SEARCH_INDEX} (the search time index off).` : '')
    : `Index off: conchd with \`CONCH_SEARCH_INDEX=off\`; index on: \`CONCH_SEARCH_INDEX=on\` (every log gets its sidecar in \`.conch-index/\`). ` +
      `Alerts ${ALERTS === 'on' ? `on in every run: ${rulesText}` : 'off in every run (`alertdefaults=off`)'}. ${REPS} run${REPS === 1 ? '' : 's'} of each, alternating.`;
const flags = `--sizes ${SIZES.join(',')} --seconds ${SECONDS} --warmup ${WARMUP} --reps ${REPS}${COMPARE === 'index' ? ` --compare index --alerts ${ALERTS}` : ''}${PROF ? ' --cpu-prof' : ''}`;
const title = COMPARE === 'alerts' ? 'Pattern alerts: conchd CPU with and without' : 'Search time index: conchd CPU with and without';
const report = [
  `# ${title} (${new Date().toISOString()})`,
  '',
  `Machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}; Node.js ${process.version}; ` +
    `load average ${loadBefore} before the run, ${load()} after (a shared machine: other work runs beside it).`,
  '',
  `Each run: conchd with N \`test:\` consoles (\`testopts="b:98,n:500,m:1500"\`: 98 printable characters and CRLF every 0.5 to 1.5 s, about 100 B/s each; ` +
    `ASCII ramps, not kernel text), every console logging to its own file; ${WARMUP} s after "conchd started", conchd's CPU (all its threads) over ${SECONDS} s. ` +
    setup,
  '',
  t,
  '',
  `Reproduce: \`npx tsc -p . && ${COMPARE === 'alerts' ? envText : ''}node dist/bench/alerts.js ${flags}\``,
  '',
];
if (PROF) {
  report.push('## Where the CPU goes (node --cpu-prof, the whole life of each conchd)', '');
  for (const d of fs.readdirSync(profDir).sort()) report.push(`### ${d}`, '', ...summarise(path.join(profDir, d)));
  fs.rmSync(profDir, { recursive: true, force: true });
}
const out = a.out ?? path.join(ROOT, 'bench/results', `${COMPARE === 'alerts' ? 'alerts' : 'search-index'}-${date}.md`);
fs.writeFileSync(out, report.join('\n'));
say(`written to ${path.relative(ROOT, out)}`);
