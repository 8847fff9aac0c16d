// A conchd killed with SIGKILL leaves its SOL session open at the BMC
// (ipmi_sim keeps it for its 30 s session timeout, and SOL with it). The
// restarted daemon must know that session for its own — recorded in its
// state directory — and take SOL back at once, even with solsteal=never,
// instead of taking it for a person's and staying dark for ever.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor } from '../helpers/wait.js';
import { startConchd } from '../helpers/conchd.js';
import { startSim, SIM_PASSWORD, SIM_USER } from '../helpers/ipmi-sim.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '');

for (const threads of [0, 1]) {
  test(`after kill -9, the restarted daemon takes back its own SOL session (solsteal=never, ipmithreads=${threads})`, { timeout: 180000 }, async () => {
    const c = new Cleanup();
    try {
      const sim = await startSim(c);
      const dir = c.dir('ipmi-restart-');
      const body = `console name="bmc" dev="ipmi:127.0.0.1:${sim.bmcPort}" ipmiopts="U:${SIM_USER},P:${SIM_PASSWORD},C:3" solsteal=never log="%N.log"\n`;
      const opts = { dir, extraHeader: `server ipmithreads=${threads}\n` };
      const first = await startConchd(c, body, opts);
      const log = path.join(first.logdir, 'bmc.log');
      await waitFor(() => {
        sim.host.write('before the crash\r\n');
        return read(log).includes('before the crash');
      }, 'host output through the first daemon', 60000, 500);
      // the record holds the live session (written within a quarter second of a change)
      const record = path.join(dir, 'state', 'ipmi', 'sessions.json');
      await waitFor(() => /"live":true/.test(read(record)), 'the session record', 20000);

      first.child.proc.kill('SIGKILL');
      await first.child.exited;
      const mark = read(log).length;

      const second = await startConchd(c, body, opts);
      await waitFor(
        () => read(log).slice(mark).includes("SOL session was held by this daemon's earlier IPMI session (ended without Close Session); taken back"),
        'the take-back notice',
        60000,
      );
      await waitFor(() => {
        sim.host.write('after the restart\r\n');
        return read(log).slice(mark).includes('after the restart');
      }, 'host output through the restarted daemon', 30000, 500);
      assert.doesNotMatch(read(log).slice(mark), /not taking it \(steal policy "never"\)/, 'its own session was not taken for a person');
      await second.child.stop();
    } finally {
      await c.run();
    }
  });
}

test('a session record that is garbage, huge or a symlink is ignored, not trusted', { timeout: 120000 }, async () => {
  const c = new Cleanup();
  try {
    const sim = await startSim(c);
    const dir = c.dir('ipmi-record-');
    const records = path.join(dir, 'state', 'ipmi');
    fs.mkdirSync(records, { recursive: true });
    const outside = path.join(dir, 'outside.txt');
    fs.writeFileSync(outside, 'untouched');
    const body = `console name="bmc" dev="ipmi:127.0.0.1:${sim.bmcPort}" ipmiopts="U:${SIM_USER},P:${SIM_PASSWORD},C:3" log="%N.log"\n`;
    const record = path.join(records, 'sessions.json');
    const d = await startConchd(c, body, { dir });
    await waitFor(() => /"live":true/.test(read(record)), 'the session record', 30000);
    await d.child.stop();
    // garbage, then a file past the size bound (sparse): the restarted daemon still connects (it trusts nothing in them)
    const garbage = `{"consoles":[{"console":"bmc","bmc":"127.0.0.1:${sim.bmcPort}","sessions":[{"sid":-1},{"sid":"x","at":1},{"sid":1e12,"at":1}]},7,null]}`;
    let log = '';
    for (const [what, plant] of [
      ['garbage', () => fs.writeFileSync(record, garbage)],
      ['huge', () => fs.truncateSync(record, 65 * 1024 * 1024)],
    ] as const) {
      plant();
      const d2 = await startConchd(c, body, { dir });
      log = path.join(d2.logdir, 'bmc.log');
      const mark2 = read(log).length;
      await waitFor(() => {
        sim.host.write(`${what} ignored\r\n`);
        return read(log).slice(mark2).includes(`${what} ignored`);
      }, `host output with a ${what} record`, 60000, 500);
      await d2.child.stop();
    }
    // a symlink where the record is: never followed on write
    fs.rmSync(record, { force: true });
    fs.symlinkSync(outside, record);
    const d3 = await startConchd(c, body, { dir });
    const mark3 = read(log).length;
    await waitFor(() => {
      sim.host.write('symlink ignored\r\n');
      return read(log).slice(mark3).includes('symlink ignored');
    }, 'host output with a planted symlink', 60000, 500);
    await d3.child.stop();
    assert.equal(fs.readFileSync(outside, 'utf8'), 'untouched');
  } finally {
    await c.run();
  }
});
