// OpenBMC tells the displaced SOL owner with an unsolicited SOL Activating
// (NetFn 0x0C cmd 0x20, state 0). conch must act on it at once, not at its
// next poll: here the poll interval is two minutes, so a takeover noticed
// within a couple of seconds can only have come from that message.
// conch-bmcsim --profile openbmc, steal through its control channel.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { Recorder, simOpts } from './helpers/ipmi-sim.js';
import { control, startBmcsim } from './bmcsim-rig.js';
import { IpmiDevice } from '../src/devices/ipmi.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('openbmc profile: the unsolicited SOL Activating is a takeover, noticed within 2 s', { timeout: 120000 }, async () => {
  const sim = await startBmcsim(cleanup, 1, ['--profile', 'openbmc', '--heartbeat', '1']);
  const dev = new IpmiDevice(
    { host: '127.0.0.1', port: sim.basePort, opts: simOpts() },
    { consoleName: 'node01', timing: { ownPollMs: 120_000, silenceMs: 120_000, waitPollMs: 1000, quietMs: 1000 } },
  );
  cleanup.add(() => dev.close());
  const r = new Recorder();
  dev.connect(r);
  await waitFor(() => r.ups === 1, 'device up', 30000);
  await waitFor(() => /\[seq \d+\] node01 heartbeat/.test(r.text), 'heartbeats', 30000);
  const pollsBefore = dev.status().polls;

  const res = await control(sim, 'POST', '/bmcs/node01/steal', { seconds: 4 });
  assert.equal(res.status, 200, JSON.stringify(res.json));
  const stolenAt = performance.now();
  await waitFor(() => r.notices.find((n) => n.startsWith('SOL session taken over by another client at ')), 'takeover notice', 20000);
  const took = performance.now() - stolenAt;
  assert.ok(took <= 2000, `takeover noticed after ${took} ms`);
  assert.equal(dev.status().polls, pollsBefore, 'noticed without a poll');
  assert.equal(dev.status().state, 'elsewhere');

  // polite: back once the other client has gone, with the gap in the notice
  await waitFor(() => r.notices.find((n) => n.startsWith('SOL session resumed at ')), 'resume notice', 30000);
  const len = r.text.length;
  await waitFor(() => /\[seq \d+\] node01 heartbeat/.test(r.text.slice(len)), 'heartbeats after the resume', 30000);
  assert.equal(r.downs.length, 0);
});
