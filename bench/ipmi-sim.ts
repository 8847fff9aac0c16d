// A real OpenIPMI ipmi_sim BMC on a free UDP port of 127.0.0.1, with a fake
// host (a TCP server in this process) behind its SOL `tcp:` device: the
// benchmark's calibration BMC, and the tests' (test/helpers/ipmi-sim.ts
// re-exports it beside what only the tests need).

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import { type Child, type Cleanup, FatalWait, waitFor } from './harness.js';
import { ROOT } from './rig.js';

// the BMC's lan.conf and sim.emu, in the source tree (the tests' fixtures: the
// benchmark's calibration runs the very BMC the tests run against)
const FIXTURES = path.join(ROOT, 'test/fixtures/ipmi');

export const SIM_USER = 'admin';
export const SIM_PASSWORD = 'password';

/**
 * A UDP port on 127.0.0.1 that was free a moment ago, below 32768: FreeIPMI
 * (ipmiconsole, conmand) refuses higher ports in host:port.
 */
export async function freeUdpPort(): Promise<number> {
  for (;;) {
    // not seeded: a port is not test input, and test files running side by
    // side must not all try the same ports first
    const port = 20000 + Math.floor(Math.random() * 12768);
    const s = dgram.createSocket('udp4');
    const ok = await new Promise<boolean>((r) => {
      s.once('error', () => r(false));
      s.bind(port, '127.0.0.1', () => r(true));
    });
    await new Promise<void>((r) => {
      try {
        s.close(() => r());
      } catch {
        r(); // a socket whose bind failed is already closed
      }
    });
    if (ok) return port;
  }
}

/** The fake host: what ipmi_sim writes to the serial port, and a way to print on it. */
export class FakeHost {
  received = Buffer.alloc(0);
  /** called with every chunk ipmi_sim writes to the serial port (the keys a console types) */
  onReceive: ((d: Buffer) => void) | null = null;
  private sock: net.Socket | null = null;
  constructor(readonly server: net.Server) {
    server.on('connection', (s) => {
      this.sock?.destroy();
      this.sock = s;
      s.on('data', (d) => {
        this.received = Buffer.concat([this.received, d]);
        this.onReceive?.(d);
      });
      s.on('error', () => {});
    });
  }
  get connected(): boolean {
    return this.sock !== null && !this.sock.destroyed;
  }
  write(s: string | Buffer): void {
    this.sock?.write(s);
  }
  close(): void {
    this.sock?.destroy();
    this.server.close();
  }
}

export interface Sim {
  bmcPort: number;
  host: FakeHost;
  child: Child;
}

/** Ask the BMC for an RMCP presence pong. */
async function pings(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp4');
  try {
    return await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      s.on('message', (m) => {
        if (m.length >= 9 && m[8] === 0x40) {
          clearTimeout(t);
          resolve(true);
        }
      });
      s.on('error', () => resolve(false));
      s.send(Buffer.from('0600ff06000011be80010000', 'hex'), port, '127.0.0.1');
    });
  } finally {
    s.close();
  }
}

/** Start the fake host and ipmi_sim; both are stopped by `cleanup`. */
export async function startSim(cleanup: Cleanup): Promise<Sim> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = new FakeHost(server);
  cleanup.add(() => host.close());
  const hostPort = (server.address() as net.AddressInfo).port;
  const bmcPort = await freeUdpPort();
  const dir = cleanup.dir('conch-ipmisim-');
  const conf = fs
    .readFileSync(path.join(FIXTURES, 'lan.conf.in'), 'utf8')
    .replaceAll('@BMC_PORT@', String(bmcPort))
    .replaceAll('@HOST_PORT@', String(hostPort));
  fs.writeFileSync(path.join(dir, 'lan.conf'), conf);
  fs.mkdirSync(path.join(dir, 'state'));
  // fresh state dir: persisted users/SOL settings would override lan.conf
  const child = cleanup.child('ipmi_sim', ['-c', path.join(dir, 'lan.conf'), '-f', path.join(FIXTURES, 'sim.emu'), '-s', path.join(dir, 'state'), '-n'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitFor(async () => {
    if (child.proc.exitCode !== null) throw new FatalWait(`ipmi_sim exited: ${child.output}`);
    return pings(bmcPort);
  }, `ipmi_sim on UDP ${bmcPort}`, 20000);
  await waitFor(() => host.connected, 'ipmi_sim to connect to the fake host', 20000);
  return { bmcPort, host, child };
}
