// A live reload at fleet size (bench/README.md, "Reload";
// docs/architecture.md, "Reload"): conchd logging N IPMI consoles on
// conch-bmcsim, then one SIGHUP whose file adds K, removes K and changes K
// (solsteal=always). Measures the time until the new set is in force (the
// summary line, every added and changed console logging again), `[seq]` lines
// lost on the untouched consoles (must be 0), new IPMI sessions and
// activations at the BMCs (must be exactly the 2K added or changed), and the
// dark time of the changed consoles (their hosts' lines not logged, at the
// hosts' line rate). Prints a table.
//
//   node dist/bench/reload.js [--consoles N] [--churn K] [--rate B] [--changed-rate B] [--sim-nice N] [--churn-own-cpu] [--cpu-prof]

import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, freePort, waitFor, type Child } from './harness.js';
import { CONCHD } from './rig.js';
import { startBmcsimIpmi, request, type Fleet } from './fleet-sims.js';
import { analyse, logFile, seqsIn, waitAllLogging, waitDrained } from './fleet-logs.js';
import { treeRssMiB, withNofile } from './fleet-proc.js';
import { percentile } from './stats.js';
import { summarise } from './fleet-profile.js';
import { bmcOf, startPinger, PING_TIMEOUT_MS } from './bmc-ping.js';

const { values: a } = parseArgs({
  options: {
    consoles: { type: 'string', default: '10000' },
    churn: { type: 'string', default: '100' },
    rate: { type: 'string', default: '40' },
    'changed-rate': { type: 'string', default: '400' },
    'sim-nice': { type: 'string', default: '19' },
    // conchd under node --cpu-prof: its top functions follow the table
    'cpu-prof': { type: 'boolean' },
    // the changed and added consoles' BMCs in a simulator process of their own at nice 0 (answering from a CPU of their own, as real BMCs do)
    'churn-own-cpu': { type: 'boolean' },
  },
});
const N = Number(a.consoles);
const K = Number(a.churn);
if (!(N >= 3 * K && K > 0)) throw new Error('--consoles must be at least 3 × --churn');

const say = (m: string): void => void process.stderr.write(`# ${m}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** each simulated BMC's sessions opened and SOL activations so far */
async function bmcCounts(f: Fleet): Promise<Map<string, { sessions: number; activations: number }>> {
  const m = new Map<string, { sessions: number; activations: number }>();
  for (const c of f.controls ?? []) {
    for (const b of (await request(c, 'GET', '/bmcs')) as { name: string; counters: { sessions: number; activations: number } }[]) m.set(b.name, b.counters);
  }
  return m;
}

/** sessions and activations opened between `before` and `after` at the BMCs of `names` */
function opened(names: string[], before: Awaited<ReturnType<typeof bmcCounts>>, after: Awaited<ReturnType<typeof bmcCounts>>): { sessions: number; activations: number; consoles: number } {
  const t = { sessions: 0, activations: 0, consoles: 0 };
  for (const n of names) {
    const b = before.get(n) ?? { sessions: 0, activations: 0 };
    const x = after.get(n)!;
    t.sessions += x.sessions - b.sessions;
    t.activations += x.activations - b.activations;
    if (x.sessions > b.sessions) t.consoles++;
  }
  return t;
}

/** The consoles by their part in the reload. */
interface Sets {
  /** the first N: in the file before the reload */
  running: string[];
  untouched: string[];
  /** given solsteal=always by the reload */
  changed: string[];
  removed: string[];
  added: string[];
}

/**
 * The fleet's first N run; of them the last 2K are changed and removed; K
 * more are added. With --churn-own-cpu the changed and added consoles are
 * the first 2K BMCs (after the one typed-at BMC the simulator keeps apart),
 * which run in the simulator process of their own at nice 0.
 */
function sets(names: string[]): Sets {
  if (a['churn-own-cpu']) {
    const own = names.slice(0, 2 * K + 1);
    const rest = [...names.slice(2 * K + 1), own[0]!];
    return {
      running: [...rest.slice(0, N - K), ...own.slice(1, K + 1)],
      untouched: rest.slice(0, N - 2 * K),
      changed: own.slice(1, K + 1),
      removed: rest.slice(N - 2 * K, N - K),
      added: own.slice(K + 1, 2 * K + 1),
    };
  }
  return {
    running: names.slice(0, N),
    untouched: names.slice(0, N - 2 * K),
    changed: names.slice(N - 2 * K, N - K),
    removed: names.slice(N - K, N),
    added: names.slice(N, N + K),
  };
}

/** What SIGHUP took: to the summary line, to the added consoles' logging and to the new set in force. */
interface Reload {
  summary: string;
  summaryMs: number;
  addedUpMs: number;
  inForceMs: number;
}

/** SIGHUP conchd and wait until the new set is in force: the summary, every added and every changed console logging. */
async function reload(d: Child, logdir: string, set: Sets, sizeAt: Map<string, number>): Promise<Reload> {
  say('SIGHUP');
  const r0 = Date.now();
  process.kill(d.proc.pid!, 'SIGHUP');
  await d.waitOutput(/Reloaded \S+: \d+ added/, 300000);
  const summaryMs = Date.now() - r0;
  const summary = /Reloaded [^\n]*/.exec(d.output)![0];
  const addedUp = await waitAllLogging(logdir, set.added, r0, 300000, () => {});
  // a changed console is in force once it logs a host line from its new session
  await waitFor(() => set.changed.every((n) => /\[seq /.test(fs.readFileSync(logFile(logdir, n), 'latin1').slice(sizeAt.get(n)!).split('configuration changed by a reload')[1] ?? '')), 'changed consoles logging again', 300000, 500);
  const inForceMs = Date.now() - r0;
  say(`new set in force after ${(inForceMs / 1000).toFixed(1)} s`);
  return { summary, summaryMs, addedUpMs: addedUp.ms, inForceMs };
}

/** Each changed console's dark time (ms): its host's lines between the last logged before the reload's notice and the first after, at its line rate. */
function darkTimes(logdir: string, changed: string[], lineRate: Map<string, number>): number[] {
  const dark: number[] = [];
  for (const n of changed) {
    const text = fs.readFileSync(logFile(logdir, n), 'latin1');
    const at = text.indexOf('configuration changed by a reload');
    const lastBefore = Math.max(0, ...seqsIn(text.slice(0, at), n));
    const firstAfter = Math.min(...seqsIn(text.slice(at), n));
    dark.push(((firstAfter - lastBefore) / lineRate.get(n)!) * 1000);
  }
  return dark;
}

/** measure | value | note, padded into columns. */
function printTable(rows: [string, string, string][]): void {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  const out = [`| ${'measure'.padEnd(w0)} | ${'value'.padEnd(w1)} | note`, `|${'-'.repeat(w0 + 2)}|${'-'.repeat(w1 + 2)}|------`];
  for (const r of rows) out.push(`| ${r[0].padEnd(w0)} | ${r[1].padEnd(w1)} | ${r[2]}`);
  process.stdout.write(out.join('\n') + '\n');
}

/** conchd with the `running` consoles (`line`: each one's console line), once every one logs; its config file and that file's server lines. */
async function startConchd(cleanup: Cleanup, dir: string, logdir: string, running: string[], line: Map<string, string>): Promise<{ d: Child; conf: string; head: string }> {
  const port = await freePort();
  const conf = path.join(dir, 'conman.conf');
  const head = `server port=${port}\nserver loopback=on\nserver logdir="${logdir}"\nserver pidfile="${dir}/conchd.pid"\nserver statedir="${dir}/state"\n`;
  fs.writeFileSync(conf, head + running.map((n) => line.get(n)!).join('\n') + '\n');

  say(`starting conchd with ${N} IPMI consoles`);
  const prof = a['cpu-prof'] ? ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, 'prof')}`] : [];
  const [cmd, args] = withNofile(process.execPath, [...prof, CONCHD, '-F', '-c', conf], Math.max(65536, N * 4));
  const d = cleanup.child(cmd, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await d.waitOutput(/conchd started/, 300000);
  const t0 = Date.now();
  const up = await waitAllLogging(logdir, running, t0, 600000, () => {});
  say(`all ${up.logging} logging after ${(up.ms / 1000).toFixed(1)} s`);
  return { d, conf, head };
}

async function main(): Promise<void> {
  const cleanup = new Cleanup();
  process.on('SIGINT', () => void cleanup.run().then(() => process.exit(130)));
  try {
    const dir = cleanup.dir('conch-bench-reload-');
    const logdir = path.join(dir, 'log');
    fs.mkdirSync(logdir);
    say(`starting ${N + K} simulated BMCs`);
    const fleet = await startBmcsimIpmi(cleanup, N + K, { rate: Number(a.rate), profileArgs: [], nice: Number(a['sim-nice']), ownCpu: a['churn-own-cpu'] ? 2 * K + 1 : 1 }, dir);
    const line = new Map(fleet.names.map((n, i) => [n, `${fleet.consoleLines[i]} log="%N.log"`]));
    const set = sets(fleet.names);
    const { untouched, changed, removed, added } = set;
    const { d, conf, head } = await startConchd(cleanup, dir, logdir, set.running, line);
    for (const n of changed) await fleet.setRate!(n, Number(a['changed-rate']));
    await sleep(3000);

    const before = await bmcCounts(fleet);
    const seqAt = new Map<string, { seq: number; t: number }>();
    for (const n of changed) seqAt.set(n, { seq: await fleet.lastSeqOf(n), t: Date.now() });
    const sizeAt = new Map(changed.map((n) => [n, fs.statSync(logFile(logdir, n)).size]));
    const rssBefore = treeRssMiB(d.proc.pid!);
    const next = [...untouched, ...changed, ...added].map((n) => (changed.includes(n) ? `${line.get(n)} solsteal=always` : line.get(n)!));
    fs.writeFileSync(conf, head + next.join('\n') + '\n');
    // the simulator's answer time meanwhile: the floor under the 2K session setups the reload needs
    const pinger = startPinger(untouched.filter((_, i) => i % Math.ceil(untouched.length / 50) === 0).map((n) => bmcOf(line.get(n)!)!));
    const rl = await reload(d, logdir, set, sizeAt);
    const rtts = pinger.stop();
    await sleep(5000);

    const lineRate = new Map<string, number>();
    for (const n of changed) {
      const s = seqAt.get(n)!;
      lineRate.set(n, ((await fleet.lastSeqOf(n)) - s.seq) / ((Date.now() - s.t) / 1000));
    }
    const after = await bmcCounts(fleet);
    const still = opened(untouched, before, after);
    const churned = opened([...changed, ...added], before, after);
    const fin = await fleet.finish();
    const drained = await waitDrained(logdir, untouched, fin.lastSeq, 120000);
    const loss = analyse(logdir, untouched, fin.lastSeq);
    const dark = darkTimes(logdir, changed, lineRate);
    const closed = removed.filter((n) => /log closed at [^\n]*: removed from the configuration/.test(fs.readFileSync(logFile(logdir, n), 'latin1'))).length;
    const rssAfter = treeRssMiB(d.proc.pid!);
    await d.stop(30000);

    printTable([
      ['consoles (IPMI, conch-bmcsim)', `${N} → ${N}`, `+${K} −${K} ~${K}; simulator at nice ${a['sim-nice']}${a['churn-own-cpu'] ? `, but the ${2 * K} changed and added BMCs in a process of their own at nice 0 (--churn-own-cpu)` : ''}`],
      ['summary line', rl.summary.replace(/^Reloaded \S+: /, ''), ''],
      ['SIGHUP → summary line', `${(rl.summaryMs / 1000).toFixed(2)} s`, ''],
      ['SIGHUP → new set in force', `${(rl.inForceMs / 1000).toFixed(2)} s`, `added all logging after ${(rl.addedUpMs / 1000).toFixed(2)} s`],
      ['lines lost on untouched consoles', String(loss.missingLines), `${loss.consoles} consoles, ${loss.expectedLines} lines expected${drained ? '' : ', NOT DRAINED'}; duplicates ${loss.duplicateLines}; must be 0`],
      ['removed consoles\' logs closed', `${closed} of ${K}`, ''],
      ['new IPMI sessions, untouched consoles', `${still.sessions} (${still.activations} SOL activations)`, 'must be 0'],
      ['new IPMI sessions, added and changed', `${churned.sessions} at ${churned.consoles} BMCs (${churned.activations} SOL activations)`, `must be ${2 * K} BMCs; more sessions than BMCs: setups started over (an answer later than the timeout)`],
      ['dark time of changed consoles', `p50 ${percentile(dark, 50).toFixed(0)} ms`, `p95 ${percentile(dark, 95).toFixed(0)} ms, max ${Math.max(...dark).toFixed(0)} ms (at ${a['changed-rate']} B/s)`],
      [
        'BMC round trip meanwhile',
        `p50 ${percentile(rtts, 50).toFixed(1)} ms`,
        `p90 ${percentile(rtts, 90).toFixed(0)}, p99 ${percentile(rtts, 99).toFixed(0)}, max ${Math.max(...rtts).toFixed(0)} ms, ${rtts.filter((r) => r >= PING_TIMEOUT_MS).length} of ${rtts.length} unanswered in ${PING_TIMEOUT_MS / 1000} s (a sessionless request to the simulator from this process; a session setup is 7 exchanges)`,
      ],
      ['conchd RSS', `${rssBefore.toFixed(0)} → ${rssAfter.toFixed(0)} MiB`, ''],
    ]);
    if (a['cpu-prof']) process.stdout.write('\n' + summarise(path.join(dir, 'prof'), 25).join('\n') + '\n');
    const ok = loss.missingLines === 0 && still.sessions === 0 && still.activations === 0 && churned.consoles === 2 * K;
    process.exitCode = ok ? 0 : 1;
  } finally {
    await cleanup.run();
  }
}

await main();
