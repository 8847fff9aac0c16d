// The polite steal policy against ipmi_sim and a real ipmitool: conch
// notices a takeover, does not take SOL back while ipmitool holds it, and
// resumes (with the gap) once ipmitool leaves; it never takes SOL from a
// client that held it before conch started.

import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { IpmitoolSol, ipmitool, Recorder, simOpts, solActive, solDeviceUp, startSim, type Sim } from './helpers/ipmi-sim.js';
import { IpmiDevice } from '../src/devices/ipmi.js';

describe('steal policy "polite" against ipmi_sim + ipmitool', () => {
  const cleanup = new Cleanup();
  let sim: Sim;
  before(async () => {
    sim = await startSim(cleanup);
  });
  after(() => cleanup.run());

  test('takeover detected within 20 s, not taken back, resumed after ipmitool leaves', { timeout: 180000 }, async () => {
    const { dev, r } = await solDeviceUp(sim, cleanup);

    const d = await ipmitool(sim.bmcPort, cleanup, 'sol', 'deactivate');
    assert.equal(d.proc.exitCode, 0, d.output);
    const stolenAt = performance.now();
    const it = new IpmitoolSol(sim.bmcPort, cleanup);
    await waitFor(() => it.out.includes('SOL Session operational'), `ipmitool SOL (${JSON.stringify(it.out)})`);
    await waitFor(() => r.notices.find((n) => n.startsWith('SOL session taken over by another client at ')), 'takeover notice', 25000);
    assert.ok(performance.now() - stolenAt <= 20000, `takeover noticed after ${performance.now() - stolenAt} ms`);
    assert.equal(dev.status().state, 'elsewhere');

    // conch keeps polling but leaves ipmitool alone: its console still works
    const polls = dev.status().polls;
    await waitFor(() => dev.status().polls >= polls + 3, 'three more polls', 30000);
    assert.equal(dev.status().state, 'elsewhere');
    sim.host.write('for-ipmitool\r\n');
    await waitFor(() => it.out.includes('for-ipmitool'), 'host output at ipmitool');
    assert.ok(!it.exited, 'ipmitool lost its session');
    assert.ok(!r.text.includes('for-ipmitool'));
    assert.equal(r.downs.length, 0);

    const leftAt = performance.now();
    await it.quit();
    const resumed = await waitFor(() => r.notices.find((n) => n.startsWith('SOL session resumed at ')), 'resume notice', 35000);
    assert.ok(performance.now() - leftAt <= 30000, `resumed after ${performance.now() - leftAt} ms`);
    assert.match(resumed, / after \d+s$/);
    sim.host.received = Buffer.alloc(0);
    dev.write(Buffer.from('back\r'));
    await waitFor(() => sim.host.received.toString('latin1') === 'back\r', 'input after resume');
    sim.host.write('after\r\n');
    await waitFor(() => r.text.includes('after\r\n'), 'host output after resume');
    await dev.close();
    assert.equal(await solActive(sim.bmcPort), false);
  });

  test('ipmitool already holds SOL when conch starts: conch waits and does not take it', { timeout: 120000 }, async () => {
    const it = new IpmitoolSol(sim.bmcPort, cleanup);
    await waitFor(() => it.out.includes('SOL Session operational'), `ipmitool SOL (${JSON.stringify(it.out)})`);
    const dev = new IpmiDevice({ host: '127.0.0.1', port: sim.bmcPort, opts: simOpts() }, { consoleName: 'n1' });
    cleanup.add(() => dev.close());
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.ups === 1, 'device up');
    assert.match(r.notices.join('\n'), /held by another client; waiting/);
    await waitFor(() => dev.status().polls >= 3, 'three polls', 30000);
    assert.equal(dev.status().state, 'elsewhere');
    sim.host.write('still-ipmitool\r\n');
    await waitFor(() => it.out.includes('still-ipmitool'), 'host output at ipmitool');
    assert.ok(!it.exited);
    await it.quit();
    await waitFor(() => dev.status().state === 'ours', 'conch takes the free SOL', 30000);
    await dev.close();
    assert.equal(await solActive(sim.bmcPort), false);
  });
});
