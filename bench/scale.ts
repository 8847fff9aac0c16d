// The targets of "interactive at any scale" (bench/README.md, "Scale"), for
// conchd alone, three consecutive runs of each. First bench/start.ts at
// 10,000 IPMI consoles, three runs of conchd and three of the IPMI floor
// (before the fleet runs remove their logs). Then at 5,000 and 10,000 IPMI
// consoles and at 5,000 and the largest telnet fleet the open-file limit
// allows, the fleet benchmark's run (hosts printing 100 B/s plus a 10 KB
// burst each; a typist with 1 and with 50 clients; beside it the same typing
// through a do-nothing relay to an echoing BMC, and against a bare echo
// process): echo and attach against those floors, RSS per console, lines
// lost and doubled, CPU per minute. Every figure with its target, the worst of the runs
// marked; written to bench/results/scale-<date>-<machine>.md. At each IPMI
// size, after conchd's runs, as many runs of the IPMI floor
// (bench/ipmi-floor.ts: the fleet's IPMI work on conch's IPMI threads and
// nothing else) under the same load and typing: how far the IPMI work alone
// sits from the relay floor on this machine (--ipmi-floor 0: none, here and
// in the start).
//
//   node dist/bench/scale.js [--runs 3] [--ipmi 5000,10000] [--telnet 5000,10000] [--start 10000]
//        [--ipmi-floor 1] [--keys 400] [--steady S] [--quick] [--out FILE]

import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT } from './rig.js';
import { run, type Latency, type RunResult } from './fleet-run.js';
import { baseSpec, runSpec, telnetFit } from './fleet-plan.js';
import { nofileLimits } from './fleet-proc.js';
import { seedFrom } from './seeded.js';
import { STALL_MS, type ProbeSummary } from './daemon-probe.js';
import { slowKeysCell } from './fleet-keys.js';
import { percentile } from './stats.js';
import type { FleetKind } from './fleet-sims.js';

const { values: a } = parseArgs({
  options: {
    runs: { type: 'string' },
    ipmi: { type: 'string' },
    telnet: { type: 'string' },
    start: { type: 'string' },
    'ipmi-floor': { type: 'string' },
    keys: { type: 'string' },
    steady: { type: 'string' },
    quick: { type: 'boolean' },
    out: { type: 'string' },
  },
});
const quick = a.quick ?? false;
const sizes = (v: string | undefined, d: string): number[] => (v ?? d).split(',').filter(Boolean).map(Number);
const RUNS = Number(a.runs ?? (quick ? 2 : 3));
const IPMI = sizes(a.ipmi, quick ? '20' : '5000,10000');
const TELNET = sizes(a.telnet, quick ? '20' : '5000,10000').map(telnetFit);
const START = Number(a.start ?? (quick ? 20 : 10000));
const KEYS = Number(a.keys ?? (quick ? 20 : 400));
const IPMI_FLOOR = (a['ipmi-floor'] ?? '1') !== '0';
for (const n of [...IPMI, ...TELNET]) if (!Number.isInteger(n) || n < 3 || n > 60000) throw new Error(`scale: '${n}' is not a console count from 3 to 60000`);
if (!(Number.isInteger(RUNS) && RUNS >= 1 && Number.isInteger(START) && START >= 0 && Number.isInteger(KEYS) && KEYS >= 1)) throw new Error('scale: --runs R ≥ 1, --start N ≥ 0 (0: no start runs), --keys K ≥ 1');
const date = new Date().toISOString().slice(0, 10);
const OUT = a.out ? path.resolve(a.out) : path.join(ROOT, 'bench/results', `scale-${date}-${os.hostname()}.md`);

/** the issue's targets: echo p50 and p99 against the relay floor, attach against the bare-echo floor, RSS per console */
const P50_MAX = 1.5;
const P99_MAX = 2;
const RSS_MAX: Record<string, number> = { ipmi: 0.05, telnet: 0.03 };
const START_MAX_S = 10;

const seed = seedFrom('CONCH_BENCH_SEED');
const steady = a.steady === undefined ? (quick ? 6 : undefined) : Number(a.steady);
// 200 attaches: their p99 is the second largest, not the largest as of 20
const base = baseSpec({ quick, keys: KEYS, attaches: quick ? 3 : 200, steady, settle: quick ? 0 : undefined, steal: quick ? 1 : undefined, simNice: 19, takeovers: 0, trialsOwnCpu: false, seed });
/** the joined readers beside the typist for the many-clients figures */
const READERS = base.readers;

const t0 = Date.now();
const say = (m: string): void => void process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(5)} s] ${m}\n`);
const f = (x: number | undefined, d = 2): string => (x === undefined || Number.isNaN(x) ? '–' : x.toFixed(d));
const pct = (l: Latency | undefined, which: 'attach' | 'echo', q: number): number | undefined => (l && l[which].length ? percentile(l[which], q) : undefined);

interface Figure {
  label: string;
  value: number | undefined;
  floor: number | undefined;
  max: number;
}

/** every figure of one run that has a target relative to a floor (ratio = value / floor) */
function figures(r: RunResult): Figure[] {
  const out: Figure[] = [];
  for (const [lat, who] of [[r.lat1, '1 client'], [r.lat50, `${r.spec.readers + 1} clients`]] as const) {
    out.push({ label: `echo p50, ${who}`, value: pct(lat, 'echo', 50), floor: pct(r.relay, 'echo', 50), max: P50_MAX });
    out.push({ label: `echo p99, ${who}`, value: pct(lat, 'echo', 99), floor: pct(r.relay, 'echo', 99), max: P99_MAX });
    out.push({ label: `attach p99, ${who}`, value: pct(lat, 'attach', 99), floor: pct(r.floor, 'attach', 99), max: P99_MAX });
  }
  // IPMI: against the SOL floor too (the relay with the BMC's own work in it), for what is the daemon's; no target
  if (r.sol) {
    for (const [lat, who] of [[r.lat1, '1 client'], [r.lat50, `${r.spec.readers + 1} clients`]] as const) {
      out.push({ label: `echo p50, ${who}, against the SOL floor`, value: pct(lat, 'echo', 50), floor: pct(r.sol, 'echo', 50), max: NaN });
      out.push({ label: `echo p99, ${who}, against the SOL floor`, value: pct(lat, 'echo', 99), floor: pct(r.sol, 'echo', 99), max: NaN });
    }
  }
  return out;
}

const ratioOf = (x: Figure): number => (x.value === undefined || x.floor === undefined || x.floor <= 0 ? NaN : x.value / x.floor);
const lost = (r: RunResult): number => (r.loss ? r.loss.missingLines + r.loss.duplicateLines : NaN);

/** one table per console type and N: a row per figure, a column per run, the worst ratio marked */
function fleetTables(results: RunResult[]): string[] {
  const out: string[] = [];
  const groups = new Map<string, RunResult[]>();
  for (const r of results) {
    const key = `${r.spec.kind} ${r.spec.n} ${r.spec.daemon}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const [key, rs] of groups) {
    const [kind, n, daemon] = key.split(' ');
    if (daemon === 'ipmi-floor') {
      out.push(...floorTable(Number(n), rs));
      continue;
    }
    out.push(`### ${Number(n).toLocaleString('en')} ${kind} consoles`, '');
    out.push(`| figure | target | ${rs.map((_, i) => `run ${i + 1}: value (floor) ratio`).join(' | ')} | worst | met |`);
    out.push(`|---|---|${rs.map(() => '---:').join('|')}|---:|:---:|`);
    for (const { fig0, cells, worst } of figureRows(rs)) {
      const target = Number.isNaN(fig0.max) ? ['–', '–'] : [`≤ ${fig0.max}× floor`, worst <= fig0.max ? 'yes' : 'no'];
      out.push(`| ${fig0.label} ms | ${target[0]} | ${cells.join(' | ')} | ${worst === Infinity ? '–' : `${f(worst)}×`} | ${target[1]} |`);
    }
    const rss = rs.map((r) => r.rssMiB / r.spec.n);
    // the memory target is the largest telnet fleet's and 10,000 IPMI consoles' (smaller fleets share the empty daemon among fewer)
    const rssMax = Number(n) === Math.max(...(kind === 'ipmi' ? IPMI : TELNET)) ? RSS_MAX[kind!] : undefined;
    out.push(`| RSS per console MiB | ${rssMax === undefined ? '–' : `≤ ${rssMax}`} | ${rss.map((x) => f(x, 3)).join(' | ')} | ${f(Math.max(...rss), 3)} | ${rssMax === undefined ? '–' : Math.max(...rss) <= rssMax ? 'yes' : 'no'} |`);
    const ls = rs.map(lost);
    out.push(`| lines lost + doubled | 0 | ${rs.map((r) => (r.loss ? `${r.loss.missingLines} + ${r.loss.duplicateLines}` : `– (${(r.error ?? 'no count').slice(0, 60)})`)).join(' | ')} | ${Math.max(...ls)} | ${ls.every((x) => x === 0) ? 'yes' : 'no'} |`);
    out.push(`| all logging after s | – | ${rs.map((r) => f(r.loggingMs / 1000, 1)).join(' | ')} | ${f(Math.max(...rs.map((r) => r.loggingMs / 1000)), 1)} | – |`);
    out.push(`| conchd CPU s/min | – | ${rs.map((r) => f(r.cpuPerMin)).join(' | ')} | ${f(Math.max(...rs.map((r) => r.cpuPerMin)))} | – |`);
    out.push(...probeRows(rs));
    out.push('');
    for (const [i, r] of rs.entries()) if (r.error) out.push(`- run ${i + 1}: ${r.error}`);
    if (rs.some((r) => r.error)) out.push('');
  }
  return out;
}

/** each figure's row of cells over the runs, the worst ratio in bold */
function figureRows(rs: RunResult[]): { fig0: Figure; cells: string[]; worst: number; best: number }[] {
  const perRun = rs.map(figures);
  return perRun[0]!.map((fig0, k) => {
    const ratios = perRun.map((fs_) => ratioOf(fs_[k]!));
    const worst = Math.max(...ratios.map((x) => (Number.isNaN(x) ? Infinity : x)));
    const best = Math.min(...ratios.map((x) => (Number.isNaN(x) ? Infinity : x)));
    const cells = perRun.map((fs_, i) => {
      const x = fs_[k]!;
      const cell = `${f(x.value)} (${f(x.floor)}) ${f(ratios[i])}×`;
      return ratios[i] === worst ? `**${cell}**` : cell;
    });
    return { fig0, cells, worst, best };
  });
}

/**
 * The IPMI floor's runs at one size: the same figures against the same
 * floors, and whether even its best run is within conchd's target (if not,
 * the target sits below what the IPMI work alone gets on this machine).
 */
function floorTable(n: number, rs: RunResult[]): string[] {
  const out = [`### ${n.toLocaleString('en')} ipmi consoles: the IPMI floor (the fleet's IPMI work alone, no daemon)`, ''];
  out.push(`| figure | conchd's target | ${rs.map((_, i) => `run ${i + 1}: value (floor) ratio`).join(' | ')} | best | within the target in its best run |`);
  out.push(`|---|---|${rs.map(() => '---:').join('|')}|---:|:---:|`);
  for (const { fig0, cells, best } of figureRows(rs)) {
    const target = Number.isNaN(fig0.max) ? ['–', '–'] : [`≤ ${fig0.max}× floor`, best <= fig0.max ? 'yes' : 'no'];
    out.push(`| ${fig0.label} ms | ${target[0]} | ${cells.join(' | ')} | ${best === Infinity ? '–' : `${f(best)}×`} | ${target[1]} |`);
  }
  const rss = rs.map((r) => r.rssMiB / r.spec.n);
  out.push(`| RSS per console MiB | – | ${rss.map((x) => f(x, 3)).join(' | ')} | ${f(Math.min(...rss), 3)} | – |`);
  out.push(`| all SOL up after s | – | ${rs.map((r) => f(r.loggingMs / 1000, 1)).join(' | ')} | ${f(Math.min(...rs.map((r) => r.loggingMs / 1000)), 1)} | – |`);
  out.push(`| the floor's CPU s/min | – | ${rs.map((r) => f(r.cpuPerMin)).join(' | ')} | ${f(Math.min(...rs.map((r) => r.cpuPerMin)))} | – |`, '');
  for (const [i, r] of rs.entries()) if (r.error) out.push(`- run ${i + 1}: ${r.error}`);
  if (rs.some((r) => r.error)) out.push('');
  return out;
}

function memCell(p: RunResult['probe']): string {
  const m = p?.main.mem;
  if (!m) return '–';
  const w = p.worker?.mem;
  return `${f(m.young, 0)} / ${f(m.old, 0)}; ${w ? `${f(w.young, 0)} / ${f(w.old, 0)}` : '–'}; ${f(m.buffers, 0)}; ${f(m.rss, 0)}`;
}

/** the daemon's own figures of each run's window (bench/daemon-probe.ts): event-loop delay and collections, main thread and busiest worker */
function probeRows(rs: RunResult[]): string[] {
  const cell = (p: ProbeSummary | null | undefined, what: 'eld' | 'gc'): string => {
    if (!p) return '–';
    if (what === 'eld') return `${f(p.eld.p50)} / ${f(p.eld.p99)} / ${f(p.eld.max, 0)}`;
    return `${f(p.minor.count / p.seconds, 1)}/s, ${f(p.minor.meanMs, 1)} / ${f(p.minor.maxMs, 1)}; ${p.major.count}, ${f(p.major.maxMs, 1)}`;
  };
  return [
    `| main thread: event-loop delay ms, p50 / p99 (medians of the seconds) / max | – | ${rs.map((r) => cell(r.probe?.main, 'eld')).join(' | ')} | – | – |`,
    `| main thread: scavenges, mean / max ms; full collections, max ms | – | ${rs.map((r) => cell(r.probe?.main, 'gc')).join(' | ')} | – | – |`,
    `| busiest IPMI thread (else worker): event-loop delay ms | – | ${rs.map((r) => cell(r.probe?.worker, 'eld')).join(' | ')} | – | – |`,
    `| busiest IPMI thread (else worker): scavenges, mean / max ms; full collections, max ms | – | ${rs.map((r) => cell(r.probe?.worker, 'gc')).join(' | ')} | – | – |`,
    `| heap at most, MB: main thread's young generation / rest of its heap; busiest worker's the same; array buffers; RSS | – | ${rs.map((r) => memCell(r.probe)).join(' | ')} | – | – |`,
    ...(['1', '50'] as const).map((w) => {
      const ipmi = rs[0]?.spec.kind === 'ipmi';
      const what = `main thread collecting/busy/not scheduled${ipmi ? '; the same of an IPMI thread' : ''}; nothing seen`;
      return `| keys over 2× the relay p99, ${w === '1' ? '1 client' : `${READERS + 1} clients`}: what overlapped their wait (${what}) | – | ${rs.map((r) => slowKeysCell(w === '1' ? r.slow1 : r.slow50, ipmi)).join(' | ')} | – | – |`;
    }),
  ];
}

/** bench/start.ts at START consoles, RUNS runs: its report, and each run's "all logging" seconds */
async function startRuns(): Promise<{ text: string; loggingS: number[] }> {
  const child = spawn(process.execPath, [path.join(ROOT, 'dist/bench/start.js'), '--consoles', String(START), '--runs', String(RUNS), '--ipmi-floor', IPMI_FLOOR ? String(RUNS) : '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString()));
  const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? 1)));
  if (code !== 0) throw new Error(`start benchmark exited with ${code}`);
  // its first table: | run | → all activated s | → all logging s | … (the IPMI floor's follows)
  const loggingS = [...text.split("The IPMI floor's start")[0]!.matchAll(/^\| (\d+) \| [^|]+ \| ([\d.]+) \|/gm)].map((m) => Number(m[2]));
  return { text, loggingS };
}

function save(results: RunResult[], start: { text: string; loggingS: number[] } | null, done: boolean): void {
  const out = [
    `# Scale: conchd alone, ${RUNS} consecutive runs of each size — ${date}${done ? '' : ' (partial)'}`,
    '',
    `Machine: ${os.hostname()}, ${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Linux ${os.release()}, Node.js ${process.version}; open files hard limit ${nofileLimits().hard}.`,
    `Command: \`node dist/bench/scale.js ${process.argv.slice(2).join(' ')}\` (${((Date.now() - t0) / 60000).toFixed(0)} min).`,
    '',
    'Each run is the fleet benchmark\'s (bench/README.md, "The fleet benchmark"): simulator at nice 19, hosts printing 100 B/s and one 10 KB burst each; ' +
      `${KEYS} keys typed with 1 client, then with ${READERS + 1} (${READERS} joined readers). Floors of the same run: *relay* is the same typing through a process that relays ` +
      'to an echoing UDP BMC and does nothing else (the echo floor); *bare echo* is a TCP echo process (the attach floor); for IPMI, *SOL floor* is the same typing through a process that ' +
      'relays to a BMC of the typed-at simulator over SOL with conch\'s own IPMI code on one thread and does nothing else (the relay floor with the BMC\'s own work in it; no target). Cells: value (floor) ratio; ' +
      'the worst of the runs in bold; "met" asks the worst run. The last rows are conchd\'s own, from bench/daemon-probe.ts loaded in each of its threads: ' +
      'how late the event loop ran (5 ms sampling; per second p50 and p99, their medians over the window, and the largest delay) and the garbage collections ' +
      '(young-generation scavenges a second with their mean and longest pause; full mark-compacts with the longest), for the main thread and for the IPMI thread that collected most (without IPMI consoles, the busiest worker: the log writer). ' +
      'Then the keys slower than twice the relay floor\'s p99, each matched (bench/fleet-keys.ts) against what overlapped its wait in any thread that carries keys: a collection of ' + STALL_MS + ' ms or more, a stall of the event loop of ' + STALL_MS + ' ms or more with the loop busy for most of it, or one with the loop mostly idle (the thread not scheduled); a key may count under several.',
    '',
    ...fleetTables(results),
  ];
  if (start) {
    const worst = Math.max(...start.loggingS);
    out.push(
      `### Start, ${START.toLocaleString('en')} IPMI consoles`,
      '',
      `All logging within ${START_MAX_S} s of the spawn: ${start.loggingS.length && worst <= START_MAX_S ? 'yes' : 'no'} (worst of ${start.loggingS.length}: ${f(worst, 1)} s). The start benchmark's report:`,
      '',
      ...start.text.split('\n').map((l) => l.replace(/^# /, '#### ')),
    );
  }
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, out.join('\n') + '\n');
}

async function main(): Promise<void> {
    const plan: [FleetKind, number][] = [...IPMI.map((n) => ['ipmi', n] as [FleetKind, number]), ...TELNET.map((n) => ['telnet', n] as [FleetKind, number])];
  const results: RunResult[] = [];
  say(`seed ${seed}; ${START ? `the start of ${START} IPMI consoles, then ` : ''}${RUNS} runs of ${plan.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  // the start first: each fleet run removes thousands of log files at its end, and on a file system
  // without a journal (this VM's ext4) the next minutes' creates pass over those inodes one by one
  const start = START > 0 ? await startRuns() : null;
  // consecutive runs of one size, as the issue asks (the spread between identical runs is the point)
  for (const [kind, n] of plan) {
    for (let i = 1; i <= RUNS; i++) {
      say(`${kind} N=${n}, run ${i} of ${RUNS}`);
      const r = await run(runSpec(base, kind, n, 'conchd'), say);
      results.push(r);
      save(results, start, false);
      say(`  done in ${r.wallS.toFixed(0)} s`);
    }
    if (kind !== 'ipmi' || !IPMI_FLOOR) continue;
    for (let i = 1; i <= RUNS; i++) {
      say(`${kind} N=${n}, the IPMI floor, run ${i} of ${RUNS}`);
      const r = await run(runSpec(base, kind, n, 'ipmi-floor'), say);
      results.push(r);
      save(results, start, false);
      say(`  done in ${r.wallS.toFixed(0)} s`);
    }
  }
  save(results, start, true);
  process.stdout.write(fs.readFileSync(OUT, 'utf8'));
  say(`written to ${OUT}`);
  if (results.some((r) => r.error)) process.exitCode = 1;
}

await main();
