// RMCP+ sessions against the real OpenIPMI ipmi_sim: every cipher suite it
// offers opens, answers Get Device ID and closes.

import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup } from './helpers/wait.js';
import { startSim, SIM_PASSWORD, SIM_USER, type Sim } from './helpers/ipmi-sim.js';
import { IpmiSession } from '../src/ipmi/session.js';
import { IpmiTransport } from '../src/ipmi/transport.js';
import { cipherSuite } from '../src/ipmi/crypto.js';

describe('IPMI sessions against ipmi_sim', () => {
  const cleanup = new Cleanup();
  let sim: Sim;
  const transport = new IpmiTransport();
  before(async () => {
    sim = await startSim(cleanup);
  });
  after(() => cleanup.run());

  const mk = (suite: number, password = SIM_PASSWORD): IpmiSession =>
    new IpmiSession(transport, {
      address: '127.0.0.1',
      port: sim.bmcPort,
      user: Buffer.from(SIM_USER),
      password: Buffer.from(password),
      kg: null,
      suite: cipherSuite(suite),
      privilege: 'admin',
    });

  for (const suite of [3, 2, 1, 0]) {
    test(`cipher suite ${suite}: open, Get Device ID, close`, async () => {
      const s = mk(suite);
      await s.open();
      const r = await s.request(0x06, 0x01);
      assert.equal(r.cc, 0);
      // sim.emu: mc_add ... 0x1291 0xf02 = manufacturer 0x1291, product 0x0f02
      assert.equal(r.data.readUIntLE(6, 3), 0x1291);
      assert.equal(r.data.readUInt16LE(9), 0x0f02);
      await s.close();
      assert.equal(s.state, 'closed');
      // the BMC forgot the session: its ID is gone (Close Session on it now fails)
      const t = mk(3);
      await t.open();
      const sid = Buffer.alloc(4);
      sid.writeUInt32LE(s.sidC);
      const c = await t.request(0x06, 0x3c, sid);
      assert.notEqual(c.cc, 0);
      await t.close();
    });
  }

  test('a wrong password fails at RAKP 2 and the error does not contain it', async () => {
    const s = mk(3, 'not-the-pw-xyzzy');
    await assert.rejects(s.open(), (e: Error) => {
      assert.match(e.message, /RAKP 2/);
      assert.doesNotMatch(e.message, /xyzzy/);
      return true;
    });
    assert.equal(s.state, 'closed');
  });

  test('many sessions share one socket', async () => {
    const ss = Array.from({ length: 8 }, () => mk(3));
    await Promise.all(ss.map((s) => s.open()));
    const rs = await Promise.all(ss.map((s) => s.request(0x06, 0x01)));
    for (const r of rs) assert.equal(r.cc, 0);
    await Promise.all(ss.map((s) => s.close()));
    assert.equal(transport.stats.dropped, 0, transport.lastDrop);
  });
});
