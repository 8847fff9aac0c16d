// What the web terminal costs (bench/README.md, "Web"). One conchd holds N
// busy test consoles (about 100 B/s each, logging) and an echo console; in
// the same run it measures conchd's CPU and RSS with no client and with N
// WebSocket clients each watching one console (bench/web-watchers.ts, a
// process of its own), and, while they watch, the keystroke echo through a
// WebSocket against the echo through the conman protocol, interleaved.
//
//   node dist/bench/web.js [--consoles N] [--keys N] [--seconds S] [--quick] [--out FILE]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { WebSocket } from 'ws';
import { Cleanup, freePort, waitFor } from './harness.js';
import { CONSOLE, DIST_BENCH, ROOT } from './rig.js';
import { percentile } from './stats.js';
import { benchArgs } from './bench-args.js';
import { TreeMeter, withNofile } from './fleet-proc.js';
import { NoticeFilter, WireClient, now } from './wire-client.js';

const CONCHD = path.join(ROOT, 'dist/src/bin/conchd.js');
const OP_TIMEOUT_MS = 10000;
const LETTERS = 'abcdefghijklmnopqrstuvwxyz';

const options = (argv: string[]) => benchArgs(argv, 'web', { consoles: 1000, keys: 300, seconds: 30 }, { consoles: 100, keys: 50, seconds: 5 });

/** A keystroke echo over a console's WebSocket (joined as a writer). */
class WsTypist {
  private filter = new NoticeFilter();
  private waiting: { ch: string; resolve: () => void } | null = null;
  private constructor(private readonly ws: WebSocket) {
    ws.on('message', (d: Buffer, binary) => {
      if (!binary || !this.waiting) return;
      if (this.filter.feed(d).includes(this.waiting.ch)) {
        const w = this.waiting;
        this.waiting = null;
        w.resolve();
      }
    });
  }
  static open(port: number, name: string): Promise<WsTypist> {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/consoles/${name}/stream?mode=join`);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new WsTypist(ws)));
      ws.once('error', reject);
    });
  }
  async echo(ch: string): Promise<number> {
    const t0 = now();
    const got = new Promise<void>((resolve) => (this.waiting = { ch, resolve }));
    this.ws.send(Buffer.from(ch, 'latin1'), { binary: true });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([got, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no echo of ${ch} in ${OP_TIMEOUT_MS} ms`)), OP_TIMEOUT_MS)))]);
    clearTimeout(timer);
    return now() - t0;
  }
  close(): void {
    this.ws.close();
  }
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('conch-bench-web-');
    const sock = path.join(dir, 'echo.sock');
    const echo = cleanup.child(process.execPath, [path.join(DIST_BENCH, 'echo-server.js'), sock]);
    await echo.waitOutput('listening');
    const [port, httpPort] = [await freePort(), await freePort()];
    const names = Array.from({ length: o.consoles }, (_, i) => `c${String(i + 1).padStart(5, '0')}`);
    const conf = path.join(dir, 'conman.conf');
    fs.mkdirSync(path.join(dir, 'log'));
    fs.writeFileSync(
      conf,
      `server port=${port} httpport=${httpPort} loopback=on logdir="${dir}/log" pidfile="${dir}/conchd.pid" statedir="${dir}/state"\n` +
        `server maxclients=${o.consoles * 2 + 64} maxclientsperhost=${o.consoles * 2 + 64}\n` +
        `console name="${CONSOLE}" dev="unix:${sock}" log="%N.log"\n` +
        names.map((n) => `console name="${n}" dev="test:" testopts="b:100,m:1000,n:1000,p:100" log="%N.log"\n`).join(''),
    );
    const [cmd, args] = withNofile(process.execPath, [CONCHD, '-F', '-c', conf], o.consoles * 4 + 256);
    const d = cleanup.child(cmd, args, { cwd: dir });
    await d.waitOutput(`Listening on HTTP port ${httpPort}`, 120000);
    const pid = d.proc.pid!;

    const measure = async (): Promise<{ cpu: number; rss: number }> => {
      const m = new TreeMeter(pid);
      m.start();
      const end = Date.now() + o.seconds * 1000;
      await waitFor(() => {
        m.sample();
        return Date.now() >= end;
      }, 'the measuring window', o.seconds * 1000 + 10000);
      return { cpu: m.cpuPerMinute(), rss: m.peakRss };
    };
    const none = await measure();
    const watchers = cleanup.child(process.execPath, [path.join(DIST_BENCH, 'web-watchers.js'), String(httpPort), String(o.consoles)]);
    await watchers.waitOutput(`ready ${o.consoles}`, 300000);
    const watched = await measure();

    // echo while they watch: WebSocket and conman protocol, key by key in turn
    const ws = await WsTypist.open(httpPort, CONSOLE);
    const { client: wire } = await WireClient.attach(port, CONSOLE, OP_TIMEOUT_MS);
    const wsTimes: number[] = [];
    const wireTimes: number[] = [];
    for (let i = 0; i < o.keys; i++) {
      // a letter of its own for each path: each sees the other's echo too
      const ch = LETTERS[i % LETTERS.length]!;
      wsTimes.push(await ws.echo(ch));
      wireTimes.push(await wire.echo(ch.toUpperCase(), OP_TIMEOUT_MS));
      await new Promise((r) => setTimeout(r, 20 + (i % 7) * 10)); // a person's pace, roughly
    }
    ws.close();
    wire.close();

    const f = (x: number): string => x.toFixed(1);
    const text = [
      `# The web terminal: ${o.consoles} busy consoles (${new Date().toISOString()}, ${os.cpus().length} CPUs, load ${os.loadavg()[0]!.toFixed(1)})`,
      '',
      `conchd with no client and with ${o.consoles} WebSocket clients each watching one console, ${o.seconds} s each (CPU seconds per minute, largest RSS).`,
      '',
      '| clients | CPU s/min | RSS MiB |',
      '|---|---:|---:|',
      `| none | ${f(none.cpu)} | ${f(none.rss)} |`,
      `| ${o.consoles} WebSocket | ${f(watched.cpu)} | ${f(watched.rss)} |`,
      '',
      `Keystroke echo while they watch, ${o.keys} keys each way, interleaved (ms).`,
      '',
      '| path | p50 | p90 | p99 |',
      '|---|---:|---:|---:|',
      `| WebSocket | ${f(percentile(wsTimes, 50))} | ${f(percentile(wsTimes, 90))} | ${f(percentile(wsTimes, 99))} |`,
      `| conman protocol | ${f(percentile(wireTimes, 50))} | ${f(percentile(wireTimes, 90))} | ${f(percentile(wireTimes, 99))} |`,
      '',
    ].join('\n');
    process.stdout.write(text);
    fs.mkdirSync(path.dirname(o.out), { recursive: true });
    fs.writeFileSync(o.out, text);
  } finally {
    await cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/web: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
