// IpmiDevice (native RMCP+ SOL) against the real OpenIPMI ipmi_sim with a
// fake host behind its SOL tcp: device: output, input, BREAK, keepalive and
// clean shutdown.

import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { freeUdpPort, Recorder, simOpts, solActive, startSim, type Sim } from './helpers/ipmi-sim.js';
import { IpmiDevice } from '../src/devices/ipmi.js';

describe('IPMI SOL device against ipmi_sim', () => {
  const cleanup = new Cleanup();
  let sim: Sim;
  before(async () => {
    sim = await startSim(cleanup);
  });
  after(() => cleanup.run());

  for (const suite of [3, 0]) {
    test(`cipher suite ${suite}: host output, typed input, BREAK, shutdown leaves nothing active`, async () => {
      const dev = new IpmiDevice({ host: '127.0.0.1', port: sim.bmcPort, opts: simOpts(suite) }, { consoleName: 'n1' });
      cleanup.add(() => dev.close());
      assert.equal(dev.label(), `<127.0.0.1:${sim.bmcPort}>`);
      const r = new Recorder();
      dev.connect(r);
      await waitFor(() => r.ups === 1 || r.downs.length > 0, 'device up');
      assert.deepEqual(r.downs, []);
      assert.equal(await solActive(sim.bmcPort), true);

      // host → console: more than one SOL packet's worth, in order
      const line = `boot message ${suite} ` + 'x'.repeat(300) + ' end\r\n';
      sim.host.write(line);
      await waitFor(() => r.text.includes(line), 'host output in onData', 20000);

      // console → host: longer than the 28 characters ipmi_sim takes per packet
      sim.host.received = Buffer.alloc(0);
      const typed = 'echo ' + 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(3) + '\r';
      dev.write(Buffer.from(typed.slice(0, 20)));
      dev.write(Buffer.from(typed.slice(20)));
      await waitFor(() => sim.host.received.toString('latin1') === typed, `typed input at the host (got ${JSON.stringify(sim.host.received.toString('latin1'))})`);

      // break then the SysRq key: the host sees telnet BREAK (ff f3) then 't'
      sim.host.received = Buffer.alloc(0);
      dev.sendBreak();
      dev.write(Buffer.from('t'));
      await waitFor(() => sim.host.received.equals(Buffer.from([0xff, 0xf3, 0x74])), `BREAK + t at the host (got ${sim.host.received.toString('hex')})`);

      await dev.close();
      assert.equal(await solActive(sim.bmcPort), false);
      assert.deepEqual(r.downs, []);
    });
  }

  test('wrong password: one failed attempt, reason without the password', async () => {
    const dev = new IpmiDevice({ host: '127.0.0.1', port: sim.bmcPort, opts: simOpts(3, 'sekrit-pw-42') }, { consoleName: 'n1' });
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'device down');
    assert.equal(r.ups, 0);
    assert.match(r.downs[0], /RAKP 2/);
    assert.doesNotMatch(r.downs[0], /sekrit/);
    await dev.close();
  });

  test('no BMC: the attempt fails with a timeout', async () => {
    const dev = new IpmiDevice({ host: '127.0.0.1', port: await freeUdpPort(), opts: simOpts() }, { consoleName: 'n1' });
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'device down', 30000);
    assert.match(r.downs[0], /no answer/);
    await dev.close();
  });

  test('keepalive: SOL stays live past ipmi_sim\'s 30 s idle timeout with host output every 5 s', { timeout: 120000 }, async () => {
    const dev = new IpmiDevice({ host: '127.0.0.1', port: sim.bmcPort, opts: simOpts() }, { consoleName: 'n1' });
    cleanup.add(() => dev.close());
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.ups === 1, 'device up');
    const t0 = performance.now();
    let n = 0;
    const tick = setInterval(() => sim.host.write(`heartbeat #${++n}\r\n`), 5000);
    cleanup.add(() => clearInterval(tick));
    await waitFor(() => r.text.includes('heartbeat #9\r\n'), 'heartbeat #9', 90000);
    clearInterval(tick);
    assert.ok(performance.now() - t0 >= 44000);
    for (let i = 1; i <= 9; i++) assert.ok(r.text.includes(`heartbeat #${i}\r\n`), `heartbeat #${i} missing`);
    assert.deepEqual(r.downs, []);
    await dev.close();
  });
});
