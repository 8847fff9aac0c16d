// The cost of a Prometheus scrape of conchd's /metrics (bench/README.md):
// conchd with N quiet test consoles (`dev="test:"`, no output, no logs) and
// `server httpport=`, scraped S times one after another. Reports the scrape
// time (request sent to last byte read, on loopback) p50 / p99 / max, the
// body size and series, and conchd's CPU per scrape (its CPU over the scrapes
// less what it spends idle over as long). Prints a markdown table and writes
// it to bench/results/metrics-scrape-<date>.md.
//
//   node dist/bench/metrics-scrape.js [--sizes 1000,10000] [--scrapes 50]

import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { Cleanup, freePort, waitFor, type Child } from './harness.js';
import { CONCHD, ROOT } from './rig.js';
import { treeCpuSeconds, treeRssMiB, withNofile } from './fleet-proc.js';
import { percentile } from './stats.js';

const { values: a } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000' },
    scrapes: { type: 'string', default: '50' },
  },
});
const SIZES = a.sizes.split(',').map(Number);
const SCRAPES = Number(a.scrapes);
if (SIZES.some((n) => !(n > 0)) || !(SCRAPES > 0)) throw new Error('--sizes: consoles per run, comma-separated; --scrapes: a positive count');

const say = (m: string): void => void process.stderr.write(`# ${m}\n`);
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Result {
  consoles: number;
  ms: number[];
  bytes: number;
  series: number;
  cpuMsPerScrape: number;
  idleCpuPct: number;
  rssMiB: number;
}

function get(port: number): Promise<{ ms: number; body: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`/metrics: HTTP ${res.statusCode}`));
          resolve({ ms: performance.now() - t0, body: Buffer.concat(chunks).toString('utf8') });
        });
      })
      .on('error', reject);
  });
}

async function run(n: number): Promise<Result> {
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('conch-bench-metrics-');
    const conf = path.join(dir, 'conman.conf');
    const lines = [
      `server port=${await freePort()}`,
      'server loopback=on',
      'server httpport=0',
      `server logdir="${dir}"`,
      `server pidfile="${path.join(dir, 'conchd.pid')}"`,
      `server statedir="${path.join(dir, 'state')}"`,
      // quiet: a tick a minute, never a burst
      'global testopts="b:0,m:60000,p:0"',
    ];
    for (let i = 1; i <= n; i++) lines.push(`console name="m${String(i).padStart(5, '0')}" dev="test:"`);
    fs.writeFileSync(conf, lines.join('\n') + '\n');
    const [cmd, args] = withNofile(process.execPath, [CONCHD, '-F', '-c', conf], n + 1024);
    const daemon: Child = cleanup.child(cmd, args, { cwd: dir });
    const out = await daemon.waitOutput(/Listening on HTTP port \d+/, 60000);
    const port = Number(/Listening on HTTP port (\d+)/.exec(out)![1]);
    await daemon.waitOutput(`conchd started with ${n} console`, 120000);
    const pid = daemonPid(daemon);
    await waitFor(async () => (await get(port)).body.includes(`conch_consoles_by_state{state="up"} ${n}\n`), `all ${n} consoles up`, 120000, 500);

    // idle CPU over a few seconds, then the scrapes (one warm-up first)
    const idleS = 5;
    const c0 = treeCpuSeconds(pid);
    await sleep(idleS * 1000);
    const idlePerS = (treeCpuSeconds(pid) - c0) / idleS;
    await get(port);
    const ms: number[] = [];
    let body = '';
    const cpu0 = treeCpuSeconds(pid);
    const t0 = performance.now();
    for (let i = 0; i < SCRAPES; i++) {
      const r = await get(port);
      ms.push(r.ms);
      body = r.body;
    }
    const wallS = (performance.now() - t0) / 1000;
    const cpu = treeCpuSeconds(pid) - cpu0 - idlePerS * wallS;
    const rssMiB = treeRssMiB(pid);
    const series = body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
    await daemon.stop();
    return { consoles: n, ms, bytes: Buffer.byteLength(body), series, cpuMsPerScrape: (cpu * 1000) / SCRAPES, idleCpuPct: idlePerS * 100, rssMiB };
  } finally {
    await cleanup.run();
  }
}

/** conchd's own pid (under prlimit it is the same process, exec'd) */
function daemonPid(c: Child): number {
  const pid = c.proc.pid;
  if (pid === undefined) throw new Error('conchd did not start');
  return pid;
}

const f1 = (x: number): string => x.toFixed(1);

function table(rs: Result[]): string {
  const out = [
    '| consoles | scrape p50 | scrape p99 | scrape max | body | series | conchd CPU per scrape | conchd idle CPU | conchd RSS |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rs) {
    out.push(
      `| ${r.consoles.toLocaleString('en')} | ${f1(percentile(r.ms, 50))} ms | ${f1(percentile(r.ms, 99))} ms | ${f1(Math.max(...r.ms))} ms | ` +
        `${(r.bytes / 1024).toFixed(0)} KiB | ${r.series.toLocaleString('en')} | ${f1(r.cpuMsPerScrape)} ms | ${f1(r.idleCpuPct)} % | ${r.rssMiB.toFixed(0)} MiB |`,
    );
  }
  return out.join('\n');
}

const load = (): string => os.loadavg().map((x) => x.toFixed(2)).join(' ');
const loadBefore = load();
const results: Result[] = [];
for (const n of SIZES) {
  say(`${n} consoles, ${SCRAPES} scrapes`);
  results.push(await run(n));
}
const t = table(results);
process.stdout.write(`${t}\n`);

const date = new Date().toISOString().slice(0, 10);
const cpus = os.cpus();
const report = [
  `# /metrics scrape cost (${new Date().toISOString()})`,
  '',
  `Machine: ${cpus.length} × ${cpus[0]?.model ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}; Node.js ${process.version}; ` +
    `load average ${loadBefore} before the run, ${load()} after (the machine is shared: scrape times carry its noise, CPU per scrape much less).`,
  `conchd with N quiet test consoles (\`dev="test:"\`, \`testopts="b:0,m:60000,p:0"\`, no logs), all up; ` +
    `${SCRAPES} scrapes of \`/metrics\` one after another on loopback, after one warm-up. ` +
    'Scrape time: request sent to last byte read. CPU per scrape: conchd\'s CPU over the scrapes less its idle CPU over as long, divided by the scrapes.',
  '',
  t,
  '',
  `Reproduce: \`npx tsc -p . && node dist/bench/metrics-scrape.js --sizes ${SIZES.join(',')} --scrapes ${SCRAPES}\``,
  '',
].join('\n');
const file = path.join(ROOT, 'bench/results', `metrics-scrape-${date}.md`);
fs.writeFileSync(file, report);
say(`wrote ${path.relative(ROOT, file)}`);
