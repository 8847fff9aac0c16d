// conch-bmcsim at scale: memory per BMC (with its host) and CPU at idle and
// at a steady 100 B/s per host, for N BMCs in one process.
//
//   node dist/bench/bmcsim-scale.js [--quick] [--count N] [--window S]
//
// --quick: 1,000 BMCs and 3 s windows (default: 10,000 BMCs, 10 s windows).
// Each BMC gets its own loopback address (127.20.x.y) on one UDP port, so no
// port range has to be free. Needs `ulimit -n` above N.

import * as fs from 'node:fs';
import * as http from 'node:http';
import { parseArgs } from 'node:util';
import { Cleanup, Child } from './harness.js';
import { BMCSIM } from './rig.js';

const TICKS = 100; // USER_HZ on Linux

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) : 0;
}

function cpuTicks(pid: number): number {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]); // utime + stime
}

async function cpuPercent(pid: number, seconds: number): Promise<number> {
  const t0 = cpuTicks(pid);
  const w0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  return ((cpuTicks(pid) - t0) / TICKS / ((Date.now() - w0) / 1000)) * 100;
}

function post(url: string, body: unknown): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST' }, (res) => {
      res.resume();
      res.on('end', () => resolve());
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

async function start(c: Cleanup, n: number, port: number): Promise<{ child: Child; control: string; startSec: number }> {
  const t0 = Date.now();
  const child = c.child(process.execPath, [BMCSIM, '--count', String(n), '--per-address', '--address', '127.20.0.1', '--base-port', String(port), '--heartbeat', '0', '--quiet', '--control-port', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = await child.waitOutput('# ready', 300_000);
  const m = /# control (\S+)/.exec(out);
  return { child, control: m![1], startSec: (Date.now() - t0) / 1000 };
}

async function main(): Promise<void> {
  const { values: a } = parseArgs({ options: { quick: { type: 'boolean' }, count: { type: 'string' }, window: { type: 'string' }, port: { type: 'string' } } });
  const n = Number(a.count ?? (a.quick ? 1000 : 10000));
  const win = Number(a.window ?? (a.quick ? 3 : 10));
  const port = Number(a.port ?? 16623);
  const c = new Cleanup();
  try {
    const one = await start(c, 1, port);
    await new Promise((r) => setTimeout(r, 1000));
    const base = rssKiB(one.child.proc.pid!);
    await one.child.stop();

    const fleet = await start(c, n, port);
    const pid = fleet.child.proc.pid!;
    await new Promise((r) => setTimeout(r, 2000)); // boot logs printed, start-up garbage collected
    const idle = await cpuPercent(pid, win);
    const rssIdle = rssKiB(pid);
    await post(`${fleet.control}/fleet/rate`, { bytesPerSec: 100 });
    await new Promise((r) => setTimeout(r, 1000));
    const busy = await cpuPercent(pid, win);
    const rssBusy = rssKiB(pid);
    const lines = [
      `conch-bmcsim scale: ${n} BMCs + hosts in one process (node ${process.version}, ${win} s windows)`,
      `  start-up (bind + boot):       ${fleet.startSec.toFixed(1)} s`,
      `  RSS, 1 BMC:                   ${(base / 1024).toFixed(1)} MiB`,
      `  RSS, ${n} BMCs idle:          ${(rssIdle / 1024).toFixed(1)} MiB  → ${((rssIdle - base) / n).toFixed(1)} KiB per BMC`,
      `  RSS, ${n} BMCs at 100 B/s:    ${(rssBusy / 1024).toFixed(1)} MiB`,
      `  CPU idle:                     ${idle.toFixed(1)} % of one core`,
      `  CPU at 100 B/s per host:      ${busy.toFixed(1)} % of one core (${((n * 100) / 1e6).toFixed(2)} MB/s of host output, no SOL client attached)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await c.run();
  }
}

main().catch((e) => {
  process.stderr.write(`bmcsim-scale: ${String((e as Error)?.stack ?? e)}\n`);
  process.exit(1);
});
