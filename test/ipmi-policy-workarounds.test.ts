// W: workaround names that change behaviour (docs/ipmi.md): with
// `W:solstatus,solpayloadsize` conch never asks Get Payload Activation Status
// and sends 32 characters a packet, and the polite policy still holds: a
// takeover is noticed, SOL is taken again only once it is free, and typed
// text reaches the host whole. Against conch-bmcsim. Also the parser for
// Get Channel Cipher Suites records, standard and OEM.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { Recorder, simOpts } from './helpers/ipmi-sim.js';
import { control, startBmcsim } from './bmcsim-rig.js';
import { IpmiDevice } from '../src/devices/ipmi.js';
import { parseCipherSuiteRecords } from '../src/ipmi/session.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('W:solstatus,solpayloadsize: polite takeover and resume, long input intact', { timeout: 120000 }, async () => {
  const sim = await startBmcsim(cleanup, 1, ['--heartbeat', '1']);
  const opts = { ...simOpts(), workarounds: ['solstatus', 'solpayloadsize'] };
  const dev = new IpmiDevice({ host: '127.0.0.1', port: sim.basePort, opts }, { consoleName: 'node01', timing: { ownPollMs: 1000, waitPollMs: 1000, quietMs: 1000 } });
  cleanup.add(() => dev.close());
  const r = new Recorder();
  dev.connect(r);
  await waitFor(() => r.ups === 1, 'device up', 30000);
  await waitFor(() => /\[seq \d+\] node01 heartbeat/.test(r.text), 'heartbeats', 30000);

  const res = await control(sim, 'POST', '/bmcs/node01/steal', { seconds: 5 });
  assert.equal(res.status, 200);
  await waitFor(() => r.notices.find((n) => n.startsWith('SOL session taken over by another client at ')), 'takeover notice', 20000);
  // while the other client holds it, conch's Activate attempts get "busy" and it waits
  const polls = dev.status().polls;
  await waitFor(() => dev.status().polls >= polls + 2, 'two polls while held', 20000);
  const st = await control(sim, 'GET', '/bmcs/node01');
  if (st.json.solOwner !== null) assert.equal(st.json.solOwner, 'injected-steal', 'not taken from the other client');
  await waitFor(() => r.notices.find((n) => n.startsWith('SOL session resumed at ')), 'resume notice', 30000);

  // log in, then 200 characters in 32-character packets, echoed by the host's shell
  dev.write(Buffer.from('root\r'));
  await waitFor(() => r.text.includes('Password: '), 'password prompt', 30000);
  dev.write(Buffer.from('secret\r'));
  await waitFor(() => r.text.includes('Last login'), 'logged in', 30000);
  const word = 'x'.repeat(196);
  dev.write(Buffer.from(`echo ${word}\r`));
  await waitFor(() => r.text.includes(`\r\n${word}\r\n`) || r.text.includes(`\n${word}\r\n`), 'the echoed line', 30000);
  assert.equal(r.downs.length, 0);
});

test('Get Channel Cipher Suites records: standard, OEM, several algorithms per record', () => {
  const b = Buffer.from([
    0xc0, 0x00, 0x00, 0x40, 0x80,
    0xc0, 0x03, 0x01, 0x41, 0x81,
    0xc1, 0x80, 0xc0, 0xc1, 0xc2, 0x01, 0x41, // OEM suite 0x80 & 0x3f; IANA bytes look like record starts
    0xc0, 0x11, 0x03, 0x04, 0x44, 0x81,
  ]);
  assert.deepEqual(parseCipherSuiteRecords(b), [0, 3, 0, 17]);
  assert.deepEqual(parseCipherSuiteRecords(Buffer.from([0x01, 0x02, 0xc0])), []);
});
