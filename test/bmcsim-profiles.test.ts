// The two behaviour profiles where they differ (docs/ipmi.md, "Simulated BMC
// profiles"): ipmi_sim-like (displaced owner not told, duplicate SOL seq
// re-ACKed, session timeout counts only IPMI messages) and OpenBMC-like
// (unsolicited SOL Activating to the displaced owner, strict in-order SOL seq,
// any traffic keeps the session). Real ipmitool works with both.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { PtyProc, cleanEnv } from './client-rig.js';
import { control, RawClient, startBmcsim, type SimFleet } from './bmcsim-rig.js';
import { Seeded, seedFrom } from './helpers/seeded.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** the raw clients' session IDs and nonces: one stream over the file, replayed with CONCH_RIG_SEED */
const SEED = seedFrom('CONCH_RIG_SEED');
console.log(`raw clients' seed ${SEED} (replay with CONCH_RIG_SEED=${SEED})`);
const rnd = new Seeded(SEED);

async function client(port: number): Promise<RawClient> {
  const c = new RawClient(port, rnd);
  cleanup.add(() => c.close());
  await c.open();
  return c;
}

async function activate(c: RawClient): Promise<void> {
  const r = await c.cmd(0x06, 0x48, [0x01, 0x01, 0xc0, 0, 0, 0]);
  assert.equal(r.cc, 0, 'Activate Payload');
  assert.equal(r.data.length, 12);
}

const hostBytesIn = async (s: SimFleet, name: string): Promise<number> => (await control(s, 'GET', `/bmcs/${name}`)).json.counters.bytesFromConsole;

test('ipmitool SOL works on an openbmc-profile BMC (strict sequence numbers)', async () => {
  const s = await startBmcsim(cleanup, 1, ['--profile', 'openbmc', '--heartbeat', '1']);
  const p = new PtyProc('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(s.basePort), '-U', 'admin', '-P', 'password', '-C', '17', 'sol', 'activate'], cleanEnv());
  cleanup.add(() => p.kill());
  await p.waitOutput('[SOL Session operational');
  for (const l of ['\r', 'root\r', 'x\r', 'echo one\r', 'echo two\r', 'echo three\r']) p.write(l);
  await p.waitOutput(/\r\nthree\r\n/);
  assert.match(p.output, /\r\none\r\n[^]*\r\ntwo\r\n/);
  p.write('\r~.');
  assert.equal(await p.waitExit(), 0);
});

test('displaced owner: told by an unsolicited SOL Activating (openbmc), told nothing (ipmi_sim)', async () => {
  const s = await startBmcsim(cleanup, 2, ['--heartbeat', '0']);
  assert.equal((await control(s, 'POST', '/bmcs/node02/profile', { profile: 'openbmc' })).status, 200);
  for (const [name, port, told] of [
    ['node01', s.basePort, false],
    ['node02', s.basePort + 1, true],
  ] as const) {
    const owner = await client(port);
    await activate(owner);
    const thief = await client(port);
    assert.equal((await thief.cmd(0x06, 0x48, [0x01, 0x01, 0xc0, 0, 0, 0])).cc, 0x80, `${name}: second Activate is refused`);
    assert.equal((await thief.cmd(0x06, 0x49, [0x01, 0x01, 0, 0, 0, 0])).cc, 0, `${name}: Deactivate by another admin session`);
    assert.equal((await thief.cmd(0x06, 0x48, [0x01, 0x01, 0xc0, 0, 0, 0])).cc, 0, `${name}: Activate after it`);
    // the owner's own round trip orders the check after anything the BMC sent it earlier
    const info = await owner.cmd(0x06, 0x4b, [0x01, 0x01]);
    assert.equal(info.data.readUInt32LE(0), thief.sidC, `${name}: Get Payload Instance Info names the new owner`);
    const notices = owner.ipmi.filter((m) => m.cc === null && m.netFn === 0x0c && m.cmd === 0x20);
    if (told) {
      assert.equal(notices.length, 1, `${name}: one SOL Activating notice`);
      assert.deepEqual([...notices[0].data], [0x00, 0x01, 0x01, 0x00]);
    } else {
      assert.equal(notices.length, 0, `${name}: the displaced owner was told`);
      assert.equal(owner.sol.length, 0, `${name}: SOL status sent to the displaced owner`);
    }
  }
});

test('inbound SOL sequence: ipmi_sim re-ACKs a duplicate without delivering it; openbmc drops out-of-order data unACKed', async () => {
  const s = await startBmcsim(cleanup, 2, ['--heartbeat', '0', '--no-boot']);
  await control(s, 'POST', '/bmcs/node02/profile', { profile: 'openbmc' });

  const a = await client(s.basePort);
  await activate(a);
  a.sendSol({ seq: 1, data: Buffer.from('a') });
  await waitFor(() => a.sol.filter((p) => p.ackSeq === 1).length === 1, 'ACK of seq 1');
  a.sendSol({ seq: 1, data: Buffer.from('a') }); // our ACK "got lost": the same packet again
  await waitFor(() => a.sol.filter((p) => p.ackSeq === 1).length === 2, 'second ACK of seq 1');
  assert.equal(a.sol.filter((p) => p.ackSeq === 1)[1].accepted, 1);
  assert.equal(await hostBytesIn(s, 'node01'), 1, 'the duplicate reached the host');

  const b = await client(s.basePort + 1);
  await activate(b);
  b.sendSol({ seq: 3, data: Buffer.from('x') }); // out of order: first must be 1
  b.sendSol({ seq: 1, data: Buffer.from('y') });
  await waitFor(() => b.sol.some((p) => p.ackSeq === 1), 'ACK of seq 1');
  assert.equal(b.sol.filter((p) => p.ackSeq === 3).length, 0, 'out-of-order packet was ACKed');
  assert.equal(await hostBytesIn(s, 'node02'), 1, 'only the in-order byte reached the host');
});

test('session timeout: SOL traffic alone does not keep an ipmi_sim session; it keeps an openbmc one', async () => {
  const s = await startBmcsim(cleanup, 2, ['--heartbeat', '0.2', '--no-boot', '--session-timeout', '2']);
  await control(s, 'POST', '/bmcs/node02/profile', { profile: 'openbmc', sessionTimeout: 2 });
  const clients: RawClient[] = [];
  for (const port of [s.basePort, s.basePort + 1]) {
    const c = await client(port);
    await activate(c);
    clients.push(c);
  }
  // ACK every SOL data packet: a busy console that sends no IPMI message
  const done = clients.map(() => 0);
  const acker = setInterval(() => {
    clients.forEach((c, k) => {
      for (; done[k] < c.sol.length; done[k]++) {
        const p = c.sol[done[k]];
        if (p.seq !== 0) c.sendSol({ seq: 0, ackSeq: p.seq, accepted: p.data.length });
      }
    });
  }, 20);
  cleanup.add(() => clearInterval(acker));
  await waitFor(async () => (await control(s, 'GET', '/bmcs/node01')).json.sessions === 0, 'the ipmi_sim-profile session to time out', 20000);
  assert.equal((await control(s, 'GET', '/bmcs/node01')).json.solOwner, null, 'timeout frees SOL');
  // two more timeout periods of host output (0.2 s heartbeats) later the openbmc one is still there
  const seq0 = (await control(s, 'GET', '/bmcs/node02')).json.host.lastSeq;
  await waitFor(async () => (await control(s, 'GET', '/bmcs/node02')).json.host.lastSeq > seq0 + 20, '4 s of host output');
  const n2 = (await control(s, 'GET', '/bmcs/node02')).json;
  assert.equal(n2.sessions, 1, 'the openbmc-profile session survived on SOL traffic');
  assert.notEqual(n2.solOwner, null);
  assert.ok(clients[1].sol.length > 20, 'SOL data kept flowing');
  clearInterval(acker);
});
