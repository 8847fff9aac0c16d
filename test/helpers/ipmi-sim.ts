// The tests' side of a real OpenIPMI ipmi_sim BMC: starting it and its fake
// host is bench/ipmi-sim.ts (re-exported here); below, what only the tests
// need (our options for it, ipmitool against it, a device proven up on it).

import assert from 'node:assert/strict';
import * as pty from 'node-pty';
import { keepPtyTail } from './pty-tail.js';
import { type Child, type Cleanup, waitFor } from './wait.js';
import { SIM_PASSWORD, SIM_USER, type Sim } from '../../bench/ipmi-sim.js';
import type { IpmiOpts } from '../../src/config/types.js';
import { IpmiSession } from '../../src/ipmi/session.js';
import { IpmiTransport } from '../../src/ipmi/transport.js';
import { cipherSuite } from '../../src/ipmi/crypto.js';

export { FakeHost, freeUdpPort, SIM_PASSWORD, SIM_USER, startSim, type Sim } from '../../bench/ipmi-sim.js';

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
