// Debian's conmand (libipmiconsole) holding several `ipmi:` consoles on
// conch-bmcsim, configured by the conman.conf the simulator writes: every
// console logs an unbroken run of sequence-numbered lines, without any
// FreeIPMI workaround flags.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, freePort, waitFor, waitForPort } from './helpers/wait.js';
import { control, startBmcsim } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const seqs = (s: string): number[] => [...s.matchAll(/\[seq (\d+)\] node\d+ (?:heartbeat|data)/g)].map((m) => Number(m[1]));

test('conmand logs every [seq N] line of 4 simulated BMCs, in order, none lost or doubled', async () => {
  const dir = cleanup.dir('conch-bmcsim-conman-');
  const port = await freePort();
  const conf = path.join(dir, 'conman.conf');
  const sim = await startBmcsim(cleanup, 4, [
    '--heartbeat', '0.2',
    '--rate', '300',
    '--conman-conf', conf,
    '--conman-line', `server port=${port}`,
    '--conman-line', 'server loopback=on',
    '--conman-line', `server logdir="${dir}"`,
    '--conman-line', `server pidfile="${path.join(dir, 'conmand.pid')}"`,
    '--conman-line', 'global log="%N.log"',
  ]);
  const text = fs.readFileSync(conf, 'utf8');
  assert.match(text, new RegExp(`console name="node01" dev="ipmi:127\\.0\\.0\\.1:${sim.basePort}" ipmiopts="U:admin,P:password"`));
  assert.doesNotMatch(text, /W:/, 'no workaround flags needed');

  const conmand = cleanup.child('/usr/sbin/conmand', ['-F', '-c', conf], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForPort(port);
  const names = ['node01', 'node02', 'node03', 'node04'];
  const log = (n: string): string => {
    const f = path.join(dir, `${n}.log`);
    return fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '';
  };
  await waitFor(() => names.every((n) => seqs(log(n)).length >= 40), `40 [seq] lines in every console log (conmand: ${conmand.output.slice(-300)})`, 30000);
  for (const n of names) {
    const got = seqs(log(n));
    for (let i = 1; i < got.length; i++) assert.equal(got[i], got[i - 1] + 1, `${n}: [seq ${got[i]}] after [seq ${got[i - 1]}]`);
  }
  const t = (await control(sim, 'GET', '/counters')).json;
  assert.equal(t.activeSol, 4);
  assert.equal(t.activations, 4);
  await conmand.stop(20000);
});
