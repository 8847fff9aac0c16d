// A real OpenIPMI ipmi_sim BMC on a free UDP port of 127.0.0.1, with a fake
// host (a TCP server in this process) behind its SOL `tcp:` device.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as dgram from 'node:dgram';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import * as pty from 'node-pty';
import { keepPtyTail } from './pty-tail.js';
import { type Child, type Cleanup, FatalWait, waitFor } from './wait.js';
import type { IpmiOpts } from '../../src/config/types.js';
import { IpmiSession } from '../../src/ipmi/session.js';
import { IpmiTransport } from '../../src/ipmi/transport.js';
import { cipherSuite } from '../../src/ipmi/crypto.js';

// dist/test/helpers → test/fixtures/ipmi in the source tree
const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/ipmi');

export const SIM_USER = 'admin';
export const SIM_PASSWORD = 'password';

/**
 * A UDP port on 127.0.0.1 that was free a moment ago, below 32768: FreeIPMI
 * (ipmiconsole, conmand) refuses higher ports in host:port.
 */
export async function freeUdpPort(): Promise<number> {
  for (;;) {
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
  private sock: net.Socket | null = null;
  constructor(readonly server: net.Server) {
    server.on('connection', (s) => {
      this.sock?.destroy();
      this.sock = s;
      s.on('data', (d) => (this.received = Buffer.concat([this.received, d])));
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

export { Recorder } from './recorder.js';
import { Recorder } from './recorder.js';
import { IpmiDevice, type IpmiDeviceContext } from '../../src/devices/ipmi.js';

export function simOpts(suite = 3, password = SIM_PASSWORD): IpmiOpts {
  return { user: SIM_USER, password: Buffer.from(password), kg: null, cipherSuite: suite, privilege: 'admin', workarounds: [] };
}

/** SOL activation status as another client sees it: true = some session holds instance 1 */
export async function solActive(port: number): Promise<boolean> {
  const s = new IpmiSession(new IpmiTransport(), {
    address: '127.0.0.1',
    port,
    user: Buffer.from(SIM_USER),
    password: Buffer.from(SIM_PASSWORD),
    kg: null,
    suite: cipherSuite(3),
    privilege: 'admin',
  });
  await s.open();
  try {
    const r = await s.request(0x06, 0x4a, Buffer.from([0x01]));
    assert.equal(r.cc, 0);
    return (r.data[1] & 1) === 1;
  } finally {
    await s.close();
  }
}


/** ipmitool lanplus arguments for the simulator's admin user (suite 3). */
export function ipmitoolArgs(port: number, ...cmd: string[]): string[] {
  return ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(port), '-U', SIM_USER, '-P', SIM_PASSWORD, '-C', '3', ...cmd];
}

/** Run one ipmitool command to its end. */
export async function ipmitool(port: number, cleanup: Cleanup, ...cmd: string[]): Promise<Child> {
  const c = cleanup.child('ipmitool', ipmitoolArgs(port, ...cmd));
  await c.exited;
  return c;
}

/** `ipmitool sol activate` on a pty (it insists on a terminal): another person's console. */
export class IpmitoolSol {
  out = '';
  exited = false;
  readonly term: pty.IPty;
  constructor(port: number, cleanup: Cleanup) {
    this.term = pty.spawn('ipmitool', ipmitoolArgs(port, 'sol', 'activate'), { name: 'xterm', cols: 200, rows: 50, env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    this.term.onData((d) => (this.out += d));
    keepPtyTail(this.term, (d) => (this.out += d));
    this.term.onExit(() => (this.exited = true));
    cleanup.add(() => {
      if (!this.exited) {
        try {
          process.kill(-this.term.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
    });
  }
  /** ~. ends the session: ipmitool deactivates SOL and closes its session */
  async quit(): Promise<void> {
    this.term.write('\r~.');
    await waitFor(() => this.exited, 'ipmitool to exit');
  }
  /** wait for ipmitool's "SOL Session operational" */
  async operational(): Promise<void> {
    await waitFor(() => this.out.includes('SOL Session operational'), `ipmitool SOL (${JSON.stringify(this.out)})`, 30000);
  }
}

/**
 * An IpmiDevice on `sim`'s BMC, up and proven to carry host output
 * (the host printed "before" and the device delivered it).
 */
export async function solDeviceUp(sim: Sim, cleanup: Cleanup, ctx: Partial<IpmiDeviceContext> = {}): Promise<{ dev: IpmiDevice; r: Recorder }> {
  const dev = new IpmiDevice({ host: '127.0.0.1', port: sim.bmcPort, opts: simOpts() }, { consoleName: 'n1', ...ctx });
  cleanup.add(() => dev.close());
  const r = new Recorder();
  dev.connect(r);
  await waitFor(() => r.ups === 1, 'device up');
  sim.host.write('before\r\n');
  await waitFor(() => r.text.includes('before\r\n'), 'host output');
  return { dev, r };
}
