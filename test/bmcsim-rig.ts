// Starting conch-bmcsim for tests: a run of free UDP ports on 127.0.0.1,
// the simulator as a child process (own process group), its manifest and
// its control channel.

import * as dgram from 'node:dgram';
import * as http from 'node:http';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Child, Cleanup } from './helpers/wait.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/test
export const BMCSIM = path.resolve(here, '../src/bin/conch-bmcsim.js');

/** `n` consecutive UDP ports on 127.0.0.1 that were all free a moment ago; below 32768, since FreeIPMI
 * (ipmiconsole, conmand) calls a higher port in `host:port` "hostname invalid". */
export async function freeUdpRange(n: number): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * (32767 - 20000 - n));
    const socks: dgram.Socket[] = [];
    let ok = true;
    for (let i = 0; i < n && ok; i++) {
      const s = dgram.createSocket('udp4');
      ok = await new Promise<boolean>((resolve) => {
        s.once('error', () => resolve(false));
        s.bind(base + i, '127.0.0.1', () => resolve(true));
      });
      socks.push(s);
    }
    await Promise.all(socks.map((s) => new Promise<void>((r) => { try { s.close(() => r()); } catch { r(); } })));
    if (ok) return base;
  }
  throw new Error(`no run of ${n} free UDP ports found`);
}

export interface SimFleet {
  child: Child;
  basePort: number;
  /** control channel base URL, when --control-port was given */
  control: string | null;
}

/** Start conch-bmcsim with `--count n` on free ports; extra args are passed through. */
export async function startBmcsim(c: Cleanup, n: number, extra: string[] = []): Promise<SimFleet> {
  const basePort = await freeUdpRange(n);
  const child = c.child(process.execPath, [BMCSIM, '--count', String(n), '--base-port', String(basePort), '--control-port', '0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const out = await child.waitOutput('# ready');
  const m = /# control (http:\/\/\S+)/.exec(out);
  return { child, basePort, control: m ? m[1] : null };
}

/** A JSON request to the control channel. */
export async function control(sim: SimFleet, method: 'GET' | 'POST', urlPath: string, body?: unknown): Promise<{ status: number; json: any }> {
  if (!sim.control) throw new Error('simulator has no control channel');
  const url = new URL(urlPath, sim.control);
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: { 'content-type': 'application/json' } }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode ?? 0, json: JSON.parse(s) });
        } catch (e) {
          reject(e);
        }
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}
