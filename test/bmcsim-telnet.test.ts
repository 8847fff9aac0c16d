// Terminal-server mode: conch-bmcsim's telnet ports with Debian conmand's
// telnet consoles on them (conmand negotiates options and sends IAC BRK for
// a break); every console logs its host's unbroken [seq N] lines, and the
// conman client's &B + key reaches the host as BREAK + SysRq.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, freePort, freeTcpRange, waitFor, waitForPort } from './helpers/wait.js';
import { PtyProc, cleanEnv } from './client-rig.js';
import { BMCSIM } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());


test('conmand telnet consoles on 3 terminal-server ports log every [seq N] line; &B + key is a SysRq', async () => {
  const dir = cleanup.dir('conch-bmcsim-telnet-');
  const base = await freeTcpRange(3);
  const sim = cleanup.child(process.execPath, [BMCSIM, '--telnet-count', '3', '--telnet-base-port', String(base), '--heartbeat', '0.2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const out = await sim.waitOutput('# ready');
  assert.match(out, new RegExp(`# telnet\\ttel01\\t127\\.0\\.0\\.1\\t${base}`));
  const port = await freePort();
  const names = ['tel01', 'tel02', 'tel03'];
  const conf = path.join(dir, 'conman.conf');
  fs.writeFileSync(
    conf,
    [`server port=${port}`, 'server loopback=on', `server logdir="${dir}"`, 'global log="%N.log"', ...names.map((n, i) => `console name="${n}" dev="127.0.0.1:${base + i}"`), ''].join('\n'),
  );
  cleanup.child('/usr/sbin/conmand', ['-F', '-c', conf], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitForPort(port);
  const log = (n: string): string => {
    const f = path.join(dir, `${n}.log`);
    return fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '';
  };
  const seqs = (s: string): number[] => [...s.matchAll(/\[seq (\d+)\] tel\d+ heartbeat/g)].map((m) => Number(m[1]));
  await waitFor(() => names.every((n) => seqs(log(n)).length >= 10), '10 [seq] lines in every log', 30000);
  for (const n of names) {
    const got = seqs(log(n));
    for (let i = 1; i < got.length; i++) assert.equal(got[i], got[i - 1] + 1, `${n}: [seq ${got[i]}] after [seq ${got[i - 1]}]`);
  }
  const p = new PtyProc('/usr/bin/conman', ['-d', `127.0.0.1:${port}`, 'tel02'], cleanEnv());
  cleanup.add(() => p.kill());
  await p.waitOutput('Connection to console [tel02] opened');
  p.write('\r');
  await p.waitOutput('tel02 login: ');
  p.write('&B');
  p.write('h');
  await p.waitOutput('sysrq: HELP');
  p.write('&.');
  await p.waitExit();
});
