// Takeovers at human speed (docs/ipmi.md, "Takeover timing") against a real
// ipmi_sim and ipmitool, default timing: a scripted takeover
// (`sol deactivate`, then `sol activate`) is noticed within 3 s and never
// answered by re-activating during the hold; conch is back within 3 s of
// ipmitool leaving; the notices carry the window and the true dark time; a
// plain `sol activate` while conch holds SOL is refused.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { IpmitoolSol, ipmitool, solActive, solDeviceUp, startSim } from './helpers/ipmi-sim.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** `YYYY-MM-DD HH:MM:SS ZONE` → ms (second resolution) */
const parseStamp = (s: string): number => new Date(s.replace(/ \S+$/, '').replace(' ', 'T')).getTime();

test('ipmitool takes SOL (deactivate + activate) from a silent console: noticed < 3 s, left alone, back < 3 s after it leaves', { timeout: 180000 }, async () => {
  const sim = await startSim(cleanup);
  const { dev, r } = await solDeviceUp(sim, cleanup);

  // a plain activate while conch holds SOL is refused
  const plain = await ipmitool(sim.bmcPort, cleanup, 'sol', 'activate');
  assert.notEqual(plain.proc.exitCode, 0);
  assert.match(plain.output, /already active/i);
  assert.equal(dev.status().state, 'ours');

  for (let round = 0; round < 2; round++) {
    const takenBefore = r.notices.filter((n) => n.startsWith('SOL session taken over')).length;
    const resumedBefore = r.notices.filter((n) => n.startsWith('SOL session resumed at ')).length;
    // the host is silent; the scripted takeover
    const stolenAt = Date.now();
    const d = await ipmitool(sim.bmcPort, cleanup, 'sol', 'deactivate');
    assert.equal(d.proc.exitCode, 0, d.output);
    const deactivatedAt = Date.now();
    const it = new IpmitoolSol(sim.bmcPort, cleanup);
    await it.operational();
    const taken = await waitFor(() => r.notices.filter((n) => n.startsWith('SOL session taken over by another client at some time between '))[takenBefore], 'takeover notice', 20000);
    const noticedAt = Date.now();
    assert.ok(noticedAt - stolenAt <= 3000, `takeover noticed ${noticedAt - stolenAt} ms after the deactivate`);
    const [, from, to] = /between (.+) and (.+)$/.exec(taken)!;
    assert.ok(parseStamp(from!) <= deactivatedAt && parseStamp(to!) >= Math.floor(stolenAt / 1000) * 1000, `window ${from} - ${to}`);

    // held by ipmitool for 8 s: conch checks but never activates; ipmitool's console works
    const polls = dev.status().polls;
    await waitFor(() => Date.now() - noticedAt >= 8000 && dev.status().polls >= polls + 5, 'checks during the hold', 30000);
    assert.equal(dev.status().state, 'elsewhere');
    sim.host.write(`for-ipmitool-${round}\r\n`);
    await waitFor(() => it.out.includes(`for-ipmitool-${round}`), 'host output at ipmitool');
    assert.ok(!it.exited, 'ipmitool lost its session');
    assert.ok(!r.text.includes(`for-ipmitool-${round}`));

    await it.quit();
    const leftAt = Date.now();
    const resumed = await waitFor(() => r.notices.filter((n) => n.startsWith('SOL session resumed at '))[resumedBefore], 'resume notice', 20000);
    const backMs = Date.now() - leftAt;
    assert.ok(backMs <= 3000, `back ${backMs} ms after ipmitool left`);
    // dark from the window's start, not from the notice: at least the hold
    const dark = /after (?:(\d+)m )?(\d+)s$/.exec(resumed)!;
    const darkS = Number(dark[1] ?? 0) * 60 + Number(dark[2]);
    assert.ok(darkS * 1000 >= leftAt - parseStamp(from!) - 1000 && darkS * 1000 <= Date.now() - parseStamp(from!) + 1000, `dark ${darkS} s (${resumed}; window from ${from})`);
    sim.host.write(`after-${round}\r\n`);
    await waitFor(() => r.text.includes(`after-${round}\r\n`), 'host output after resume');
  }
  assert.equal(r.downs.length, 0);
  await dev.close();
  assert.equal(await solActive(sim.bmcPort), false);
});
