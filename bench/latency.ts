// Attach and keystroke-echo latency through conchd and Debian's conmand 0.2.7
// (bench/README.md, "Attach and echo latency"). For each daemon and for 1 and
// 50 attached clients it starts an echo console on a unix socket, the daemon,
// and the extra joined readers, then times with a bare conman-protocol client
// over loopback:
//   attach to OK        TCP connect start -> `OK CONSOLE=...` line received
//   attach to 1st echo  TCP connect start -> first keystroke read back
//   echo                one byte written -> the same byte read back
// Prints a markdown table and writes it to bench/results/latency-<date>.md.
//
//   node dist/bench/latency.js [--quick] [--conchd-only | --conmand-only] [--out FILE]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cleanup } from './harness.js';
import { CONSOLE, ROOT, onPath, startReaders, startRig, type DaemonKind } from './rig.js';
import { table, verdict, type Row } from './stats.js';
import { WireClient, now } from './wire-client.js';

const OP_TIMEOUT_MS = 10000;
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

interface Options {
  attaches: number;
  keystrokes: number;
  daemons: DaemonKind[];
  clients: number[];
  out: string;
  quick: boolean;
}

function parseArgs(argv: string[]): Options {
  const quick = argv.includes('--quick');
  let daemons: DaemonKind[] = ['conchd', 'conmand'];
  if (argv.includes('--conchd-only')) daemons = ['conchd'];
  if (argv.includes('--conmand-only')) daemons = ['conmand'];
  const outAt = argv.indexOf('--out');
  const date = new Date().toISOString().slice(0, 10);
  const out = outAt >= 0 && argv[outAt + 1] ? path.resolve(argv[outAt + 1]!) : path.join(ROOT, 'bench/results', `latency-${date}.md`);
  for (const a of argv) {
    if (a.startsWith('-') && !['--quick', '--conchd-only', '--conmand-only', '--out'].includes(a)) {
      throw new Error(`unknown option ${a} (use --quick, --conchd-only, --conmand-only, --out FILE)`);
    }
  }
  return { quick, daemons, clients: [1, 50], out, attaches: quick ? 5 : 20, keystrokes: quick ? 30 : 200 };
}

/** Retype after this long without an echo: conmand 0.2.7 sometimes drops the first keystroke. */
const RETYPE_MS = 2000;
const FIRST_KEYS = 'ABCDEFGH';

/** Attach `n` times; each session types until a keystroke comes back, and leaves. */
async function measureAttaches(port: number, n: number, row: Row): Promise<void> {
  for (let i = 0; i < n; i++) {
    const { client, t0, times } = await WireClient.attach(port, CONSOLE, OP_TIMEOUT_MS);
    try {
      row.lostFirstKeys += await client.firstEcho(FIRST_KEYS, RETYPE_MS, OP_TIMEOUT_MS);
      row.attachOk.push(times.ok);
      row.attachEcho.push(now() - t0);
    } finally {
      client.close();
    }
  }
}

/** One session types `n` letters one at a time, each waiting for its echo. */
async function measureEchoes(port: number, n: number, row: Row): Promise<void> {
  const { client } = await WireClient.attach(port, CONSOLE, OP_TIMEOUT_MS);
  try {
    await client.firstEcho(FIRST_KEYS, RETYPE_MS, OP_TIMEOUT_MS); // warm-up: conmand 0.2.7 starts after ~1 s
    for (let i = 0; i < n; i++) row.echo.push(await client.echo(LETTERS[i % LETTERS.length]!, OP_TIMEOUT_MS));
  } finally {
    client.close();
  }
}

async function measure(kind: DaemonKind, clients: number, opts: Options, cleanup: Cleanup): Promise<Row> {
  const row: Row = { daemon: kind, clients, attachOk: [], attachEcho: [], echo: [], lostFirstKeys: 0 };
  try {
    const rig = await startRig(cleanup, kind);
    await startReaders(cleanup, rig.port, clients - 1);
    await measureAttaches(rig.port, opts.attaches, row);
    await measureEchoes(rig.port, opts.keystrokes, row);
    if (rig.daemon.proc.exitCode !== null || rig.daemon.proc.signalCode !== null) {
      throw new Error(`${kind} exited during the run: ${rig.daemon.output.slice(-300)}`);
    }
  } catch (e) {
    row.error = e instanceof Error ? e.message : String(e);
  } finally {
    await cleanup.run();
  }
  return row;
}

/** Explanations for what the table alone does not say. */
function notes(rows: Row[]): string[] {
  const out: string[] = [];
  for (const r of rows) {
    if (r.lostFirstKeys > 0) {
      out.push(
        `- ${r.daemon}, ${r.clients} client(s): ${r.lostFirstKeys} keystroke(s) typed right after the OK never came back ` +
          `(retyped after ${RETYPE_MS} ms; attach to 1st echo counts from connect to the first echo of any of them).`,
      );
    }
  }
  return out.length ? [...out, ''] : [];
}

function conmandVersion(): string {
  try {
    return execFileSync(onPath('conmand'), ['-V'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (e) {
    const out = (e as { stdout?: string; stderr?: string }).stdout || (e as { stderr?: string }).stderr;
    return out ? out.trim() : 'conmand not found';
  }
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const cleanup = new Cleanup();
  const onSignal = (sig: NodeJS.Signals) => {
    const code = sig === 'SIGINT' ? 130 : 143;
    setTimeout(() => process.exit(code), 10000).unref(); // never hang on the way out
    void cleanup.run().finally(() => process.exit(code));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const started = Date.now();
  const loadBefore = os.loadavg()[0]!;
  const rows: Row[] = [];
  // Daemons alternate so that a change in the machine's load hits both alike.
  for (const clients of opts.clients) {
    for (const kind of opts.daemons) {
      process.stderr.write(`measuring ${kind} with ${clients} client(s)...\n`);
      rows.push(await measure(kind, clients, opts, cleanup));
    }
  }
  rows.sort((a, b) => opts.daemons.indexOf(a.daemon as DaemonKind) - opts.daemons.indexOf(b.daemon as DaemonKind) || a.clients - b.clients);

  const cpus = os.cpus();
  const report = [
    `# Attach and keystroke-echo latency (${new Date().toISOString()})`,
    '',
    `Machine: ${cpus.length} x ${cpus[0]?.model ?? 'unknown CPU'}, 1-min load ${loadBefore.toFixed(2)} before and ${os.loadavg()[0]!.toFixed(2)} after, ` +
      `Node ${process.version}, ${opts.daemons.includes('conmand') ? conmandVersion() : 'conmand not run'}.`,
    `Console: echo server on a unix socket; clients over loopback TCP with the conman protocol (CONNECT OPTION=JOIN); ` +
      `the extra clients are joined readers in a separate process. Mode: ${opts.quick ? 'quick' : 'full'}; ` +
      `p99 is nearest-rank (with few samples it is the maximum). Took ${((Date.now() - started) / 1000).toFixed(1)} s.`,
    '',
    table(rows),
    '',
    ...notes(rows),
    ...(opts.daemons.includes('conchd') ? [verdict(rows, 'conchd'), ''] : []),
  ].join('\n');
  process.stdout.write(report);
  fs.mkdirSync(path.dirname(opts.out), { recursive: true });
  fs.writeFileSync(opts.out, report);
  process.stderr.write(`written to ${opts.out}\n`);
  return rows.some((r) => r.error) ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`latency: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
