// Search over console logs (docs/search.md): generates a set of logs as
// conchd writes them — per console the live log, its rotation `.1` and an
// older `.2.gz`, each with its time index made by the real index writer
// (src/search/index-writer.ts) at the times the lines are dated — then starts
// conchd on them and asks over the conman port (SEARCH, as `conch --grep`
// does):
//   - a scan of every log for a literal pattern, an alternation of two, and
//     one without a literal (the NFA on every line): MB/s of log read
//     (decompressed);
//   - a one-hour window on one console, in each of its three files: time to
//     the first result and to the whole answer.
// Prints a markdown table and writes bench/results/search-<date>.md.
//
//   node dist/bench/search.js [--gb 1] [--consoles 8] [--days 6] [--keep DIR]
//
// The default is 1 GiB of logs: this shared 2-core VM's disk and page cache
// (and the minutes to generate and gzip) bound it; `--gb 10` runs the
// issue's 10 GB. Throughput is per byte scanned, so it carries over.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import { parseArgs } from 'node:util';
import { Cleanup, freePort } from './harness.js';
import { CONCHD, ROOT } from './rig.js';
import { LogIndex } from '../src/search/index-writer.js';
import { frameNotice, longTime } from '../src/util/notice.js';

const { values: a } = parseArgs({
  options: {
    gb: { type: 'string', default: '1' },
    consoles: { type: 'string', default: '8' },
    days: { type: 'string', default: '6' },
    keep: { type: 'string' },
  },
});
const GB = Number(a.gb);
const CONSOLES = Number(a.consoles);
const DAYS = Number(a.days);
if (!(GB > 0) || !(CONSOLES >= 1) || !(DAYS >= 3)) throw new Error('--gb: total GiB of logs; --consoles: at least 1; --days: at least 3');

const say = (m: string): void => void process.stderr.write(`# ${m}\n`);
const DAY = 86_400_000;

// what consoles print: kernel-style lines; a panic every 10 minutes of log time
const MESSAGES = [
  'EXT4-fs (sda1): mounted filesystem with ordered data mode. Opts: (null)',
  'e1000e 0000:00:19.0 eth0: NIC Link is Up 1000 Mbps Full Duplex, Flow Control: None',
  'systemd[1]: Started Journal Service.',
  'audit: type=1400 audit(1700000000.123:42): apparmor="STATUS" operation="profile_load"',
  'usb 1-1: new high-speed USB device number 2 using xhci_hcd',
  'nfs: server fileserver not responding, still trying',
  'CPU3: Core temperature above threshold, cpu clock throttled (total events = 1)',
  'sd 0:0:0:0: [sda] Write cache: enabled, read cache: enabled, supports DPO and FUA',
  'node login: root',
  'Last login: Mon Jan  2 03:04:05 on ttyS0',
];

interface Made {
  name: string;
  files: { file: string; from: number; to: number; bytes: number }[];
}

/** One log file spanning [from, to), indexed as conchd would, `bytes` long. */
async function makeFile(file: string, name: string, from: number, to: number, bytes: number, gz: boolean): Promise<number> {
  const plain = gz ? file.replace(/\.gz$/, '') : file;
  const fd = fs.openSync(plain, 'w', 0o600);
  const ix = LogIndex.open(plain, fd, { name, dev: 'test', pattern: '%N.log' }, { err: (t) => say(t) });
  const span = to - from;
  let written = 0;
  let block: Buffer[] = [];
  let blockBytes = 0;
  let nextPanic = from + 600_000;
  let k = 0;
  const put = (b: Buffer, t: number): void => {
    ix?.wrote([b], b.length, t);
    block.push(b);
    blockBytes += b.length;
    written += b.length;
    if (blockBytes >= 1 << 20) {
      fs.writeSync(fd, Buffer.concat(block));
      block = [];
      blockBytes = 0;
    }
  };
  put(frameNotice(`Console [${name}] log opened at ${longTime(new Date(from))}`), from);
  let turn = 4096;
  while (written < bytes) {
    // let the index open its sidecar (once it has its first bytes) and the writer thread take its records
    if (written >= turn) {
      await new Promise((r) => setTimeout(r, turn === 4096 ? 50 : 0));
      turn = written + (256 << 10);
    }
    const t = from + Math.floor((written / bytes) * span);
    const secs = ((t - from) / 1000).toFixed(6).padStart(14);
    let text: string;
    if (t >= nextPanic) {
      text = `[${secs}] Kernel panic - not syncing: Fatal exception in interrupt (bench ${name} ${k})`;
      nextPanic += 600_000;
    } else text = `[${secs}] ${MESSAGES[k % MESSAGES.length]}`;
    k++;
    put(Buffer.from(`${text}\r\n`, 'latin1'), t);
  }
  if (blockBytes) fs.writeSync(fd, Buffer.concat(block));
  await ix?.close();
  fs.closeSync(fd);
  if (gz) {
    await pipeline(fs.createReadStream(plain), zlib.createGzip(), fs.createWriteStream(file));
    fs.unlinkSync(plain);
  }
  return written;
}

async function generate(dir: string): Promise<Made[]> {
  const perConsole = (GB * 2 ** 30) / CONSOLES;
  const now = Date.now();
  const start = now - DAYS * DAY;
  const third = (DAYS * DAY) / 3;
  const out: Made[] = [];
  for (let i = 0; i < CONSOLES; i++) {
    const name = `node${String(i + 1).padStart(2, '0')}`;
    const parts = [
      { suffix: '.log.2.gz', from: start, to: start + third, gz: true },
      { suffix: '.log.1', from: start + third, to: start + 2 * third, gz: false },
      { suffix: '.log', from: start + 2 * third, to: now - 60_000, gz: false },
    ];
    const m: Made = { name, files: [] };
    for (const p of parts) {
      const file = path.join(dir, `${name}${p.suffix}`);
      const bytes = await makeFile(file, name, p.from, p.to, Math.floor(perConsole / 3), p.gz);
      m.files.push({ file, from: p.from, to: p.to, bytes });
    }
    say(`${name}: ${(perConsole / 2 ** 20).toFixed(0)} MiB in 3 files`);
    out.push(m);
  }
  return out;
}

// ---- the wire ---------------------------------------------------------------------

interface Answer {
  firstMs: number | null;
  totalMs: number;
  matches: number;
  scannedBytes: number;
  stopped: string | null;
}

const q = (v: string): string => `'${v.replace(/'/g, '\xa7')}'`;

/** One SEARCH over the conman port: time to the first match and to the summary. */
function search(port: number, args: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    let buf = '';
    let stage = 0;
    let t0 = 0;
    let first: number | null = null;
    let matches = 0;
    s.setEncoding('latin1');
    s.on('connect', () => s.write(`HELLO USER='bench'\n`));
    s.on('error', reject);
    s.on('data', (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (stage === 0) {
          if (!line.startsWith('OK')) return reject(new Error(line));
          stage = 1;
          t0 = performance.now();
          s.write(`SEARCH ${args}\n`);
        } else if (stage === 1) {
          if (!line.startsWith('OK')) return reject(new Error(line));
          stage = 2;
        } else {
          const r = JSON.parse(line) as { console?: string; summary?: { scannedBytes: number; stopped: string | null } };
          if (r.console) {
            matches++;
            first ??= performance.now() - t0;
          } else if (r.summary) {
            resolve({ firstMs: first, totalMs: performance.now() - t0, matches, scannedBytes: r.summary.scannedBytes, stopped: r.summary.stopped });
            s.destroy();
          }
        }
      }
    });
  });
}

// ---- main ---------------------------------------------------------------------------

const cleanup = new Cleanup();
process.on('SIGINT', () => void cleanup.run().then(() => process.exit(130)));

async function main(): Promise<void> {
  const base = a.keep ?? cleanup.dir('conch-bench-search-');
  const logdir = path.join(base, 'log');
  fs.mkdirSync(logdir, { recursive: true });
  const t0 = Date.now();
  const made = await generate(logdir);
  const total = made.reduce((n, m) => n + m.files.reduce((k, f) => k + f.bytes, 0), 0);
  const onDisk = fs.readdirSync(logdir).reduce((n, f) => n + (fs.statSync(path.join(logdir, f)).isFile() ? fs.statSync(path.join(logdir, f)).size : 0), 0);
  const idxDir = path.join(logdir, '.conch-index');
  const idxBytes = fs.readdirSync(idxDir).reduce((n, f) => n + fs.statSync(path.join(idxDir, f)).size, 0);
  say(`generated ${(total / 2 ** 20).toFixed(0)} MiB of logs (${(onDisk / 2 ** 20).toFixed(0)} MiB on disk) in ${((Date.now() - t0) / 1000).toFixed(0)} s; index ${(idxBytes / 1024).toFixed(0)} KiB`);

  const port = await freePort();
  const conf = path.join(base, 'conman.conf');
  fs.writeFileSync(
    conf,
    [`server port=${port}`, 'server loopback=on', `server logdir="${logdir}"`, `server pidfile="${path.join(base, 'pid')}"`, `server statedir="${path.join(base, 'state')}"`]
      .concat(made.map((m) => `console name="${m.name}" dev="test:" testopts="b:0,m:60000,p:0" log="%N.log"`))
      .join('\n') + '\n',
  );
  const d = cleanup.child(process.execPath, [CONCHD, '-F', '-c', conf], {
    cwd: base,
    env: { ...process.env, CONCH_SEARCH_CPU_MS: '3600000', CONCH_SEARCH_WALL_MS: '3600000' },
  });
  await d.waitOutput(/Listening on TCP port/, 30000);
  await new Promise((r) => setTimeout(r, 1000));

  const rows: string[][] = [];
  const mbps = (r: Answer): string => `${(r.scannedBytes / 2 ** 20 / (r.totalMs / 1000)).toFixed(0)} MB/s`;
  const ms = (v: number | null): string => (v === null ? '–' : `${v.toFixed(0)} ms`);
  const all = made.map((m) => `CONSOLE=${q(m.name)}`).join(' ');

  // page cache warm for every run alike: one untimed pass first
  await search(port, `RE=${q('Kernel panic')} LIMIT=100000 ${all}`);
  for (const [what, re] of [
    ['every log, literal `Kernel panic - not syncing`', 'Kernel panic - not syncing'],
    ['every log, two literals `panic\\|lockup`', 'panic|lockup'],
    ['every log, no literal `[a-z]+[0-9]{3}[a-z]` (the NFA on every line)', '[a-z]+[0-9]{3}[a-z]'],
  ] as const) {
    const r = await search(port, `RE=${q(re)} LIMIT=100000 ${all}`);
    say(`${what}: ${JSON.stringify(r)}`);
    rows.push([what, `${(r.scannedBytes / 2 ** 20).toFixed(0)} MiB`, String(r.matches), ms(r.firstMs), ms(r.totalMs), mbps(r)]);
  }
  const one = made[0]!;
  for (const [k, label] of [
    [2, 'live log'],
    [1, 'rotated `.1`'],
    [0, 'rotated `.2.gz`'],
  ] as const) {
    const f = one.files[k]!;
    const mid = f.from + Math.floor((f.to - f.from) / 2);
    const since = new Date(mid).toISOString();
    const until = new Date(mid + 3_600_000).toISOString();
    const r = await search(port, `RE=${q('Kernel panic')} SINCE=${q(since)} UNTIL=${q(until)} CONSOLE=${q(one.name)}`);
    say(`one hour in the ${label}: ${JSON.stringify(r)}`);
    rows.push([`one hour, one console, in its ${label}`, `${(r.scannedBytes / 2 ** 20).toFixed(1)} MiB`, String(r.matches), ms(r.firstMs), ms(r.totalMs), '–']);
  }
  await d.stop();

  const date = new Date().toISOString().slice(0, 10);
  const load = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  const md = [
    `# Search over console logs (${new Date().toISOString()})`,
    '',
    `Machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}; Node.js ${process.version}; load average ${load} after the run (a shared VM).`,
    `Logs: ${CONSOLES} consoles × 3 files (live, \`.1\`, \`.2.gz\`) over ${DAYS} days, ${(total / 2 ** 30).toFixed(2)} GiB of text (${(onDisk / 2 ** 30).toFixed(2)} GiB on disk), kernel-style lines of ~80 bytes without stamps, a \`Kernel panic\` line every 10 minutes of log time; time indexes made by conchd's index writer: ${(idxBytes / 1024).toFixed(0)} KiB in all. Searches over the conman port to one conchd (SEARCH, as \`conch --grep\` sends it), page cache warm; time from the request to the first match and to the summary. MB/s: log bytes read (decompressed) per second of the whole answer.`,
    '',
    '| search | read | matches | first result | whole answer | throughput |',
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.join(' | ')} |`),
    '',
    `Reproduce: \`npx tsc -p . && node dist/bench/search.js --gb ${GB} --consoles ${CONSOLES} --days ${DAYS}\``,
    '',
  ].join('\n');
  process.stdout.write(md);
  const out = path.join(ROOT, 'bench/results', `search-${date}.md`);
  fs.writeFileSync(out, md);
  say(`wrote ${out}`);
}

main()
  .catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  })
  .finally(() => (a.keep ? undefined : cleanup.run()));
