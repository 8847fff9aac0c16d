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
//   node dist/bench/alerts.js [--sizes 2000,10000] [--seconds 60] [--warmup 10] [--reps 2]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, freePort, type Child } from './harness.js';
import { CONCHD, ROOT } from './rig.js';
import { treeCpuSeconds, treeRssMiB, withNofile } from './fleet-proc.js';

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string', default: '2000,10000' },
    seconds: { type: 'string', default: '60' },
    warmup: { type: 'string', default: '10' },
    reps: { type: 'string', default: '2' },
  },
});
const SIZES = a.sizes.split(',').map(Number);
const SECONDS = Number(a.seconds);
const WARMUP = Number(a.warmup);
const REPS = Number(a.reps);
if (SIZES.some((n) => !(n > 0)) || !(SECONDS > 0) || !(WARMUP >= 0) || !(REPS >= 1)) throw new Error('--sizes N,N…, --seconds S, --warmup S, --reps R: positive numbers');

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

async function run(n: number, mode: Mode, rep: number): Promise<Run> {
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
      mode === 'on' ? `server alerts="${rules}"` : 'server alertdefaults=off',
      // 98 characters and CRLF every 0.5 to 1.5 s: about 100 B/s
      'global testopts="b:98,n:500,m:1500"',
      'global log="%N.log"',
    ];
    for (let i = 1; i <= n; i++) lines.push(`console name="b${String(i).padStart(5, '0')}" dev="test:"`);
    fs.writeFileSync(conf, lines.join('\n') + '\n');
    const [cmd, args] = withNofile(process.execPath, [CONCHD, '-F', '-c', conf], n + 1024);
    const daemon: Child = cleanup.child(cmd, args, { cwd: dir });
    await daemon.waitOutput(`conchd started with ${n} console`, 180_000);
    const pid = daemon.proc.pid!;
    const rulesLine = /Alerts: ([^\n]*)/.exec(daemon.output)?.[1] ?? 'no rules';
    await sleep(WARMUP * 1000);
    const b0 = logBytes(dir, n);
    const c0 = treeCpuSeconds(pid);
    const t0 = performance.now();
    await sleep(SECONDS * 1000);
    const cpu = treeCpuSeconds(pid) - c0;
    const wallS = (performance.now() - t0) / 1000;
    const b1 = logBytes(dir, n);
    const rssMiB = treeRssMiB(pid);
    const alerts = daemon.output.split('\n').filter((l) => /Console \[[^\]]+\] alert /.test(l)).length;
    await daemon.stop();
    return { consoles: n, mode, rep, cpuPerMin: (cpu / wallS) * 60, logBytesPerS: (b1 - b0) / wallS, rssMiB, alerts, rules: rulesLine };
  } finally {
    await cleanup.run();
  }
}

const f2 = (x: number): string => x.toFixed(2);
const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

function table(rs: Run[]): string {
  const out = [
    '| consoles | logged | CPU s/min, alerts off | CPU s/min, alerts on | on / off | each run (off; on) | RSS off / on | alerts fired |',
    '|---:|---:|---:|---:|---:|---|---:|---:|',
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
        `${mean(off.map((r) => r.rssMiB)).toFixed(0)} / ${mean(on.map((r) => r.rssMiB)).toFixed(0)} MiB | ${on.reduce((s, r) => s + r.alerts, 0)} |`,
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
      say(`${n} consoles, alerts ${mode}, run ${rep} of ${REPS}: ${WARMUP} s warm-up, ${SECONDS} s measured`);
      const r = await run(n, mode, rep);
      say(`  ${f2(r.cpuPerMin)} CPU s/min, logs ${(r.logBytesPerS / 1024).toFixed(0)} KiB/s, RSS ${r.rssMiB.toFixed(0)} MiB, ${r.alerts} alerts (${r.rules})`);
      results.push(r);
    }
  }
}
const t = table(results);
process.stdout.write(`${t}\n`);

const date = new Date().toISOString().slice(0, 10);
const cpus = os.cpus();
const onRules = results.find((r) => r.mode === 'on')?.rules ?? '';
const report = [
  `# Pattern alerts: conchd CPU with and without (${new Date().toISOString()})`,
  '',
  `Machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}; Node.js ${process.version}; ` +
    `load average ${loadBefore} before the run, ${load()} after (a shared machine: other work runs beside it).`,
  '',
  `Each run: conchd with N \`test:\` consoles (\`testopts="b:98,n:500,m:1500"\`: 98 printable characters and CRLF every 0.5 to 1.5 s, about 100 B/s each; ` +
    `ASCII ramps, not kernel text), every console logging to its own file; ${WARMUP} s after "conchd started", conchd's CPU (all its threads) over ${SECONDS} s. ` +
    `Alerts off: \`alertdefaults=off\` and no rules file (no console tapped). Alerts on: the built-in rules and the 20 site rules of bench/alerts.ts (${onRules}). ` +
    `${REPS} run${REPS === 1 ? '' : 's'} of each, alternating.` +
    (process.env.CONCH_SEARCH_INDEX !== undefined ? ` conchd ran with CONCH_SEARCH_INDEX=${process.env.CONCH_SEARCH_INDEX} (the search time index off).` : ''),
  '',
  t,
  '',
  `Reproduce: \`npx tsc -p . && ${process.env.CONCH_SEARCH_INDEX !== undefined ? `CONCH_SEARCH_INDEX=${process.env.CONCH_SEARCH_INDEX} ` : ''}node dist/bench/alerts.js --sizes ${SIZES.join(',')} --seconds ${SECONDS} --warmup ${WARMUP} --reps ${REPS}\``,
  '',
].join('\n');
const out = path.join(ROOT, 'bench/results', `alerts-${date}.md`);
fs.writeFileSync(out, report);
say(`written to ${path.relative(ROOT, out)}`);
