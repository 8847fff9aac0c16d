// conch-bmcsim against FreeIPMI's ipmiconsole with cipher suites 3 and 17,
// with no -W workarounds (ipmi_sim needs three): output, input, &B + key.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { PtyProc, cleanEnv } from './client-rig.js';
import { control, startBmcsim, type SimFleet } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

let simP: Promise<SimFleet> | null = null;
function sim(): Promise<SimFleet> {
  simP ??= startBmcsim(cleanup, 2, ['--heartbeat', '1']);
  return simP;
}

for (const [suite, node] of [
  ['3', 1],
  ['17', 2],
] as const) {
  test(`ipmiconsole -I ${suite}: output, input, &B break + SysRq, &. exits`, async () => {
    const s = await sim();
    const name = `node0${node}`;
    const p = new PtyProc('ipmiconsole', ['-h', `127.0.0.1:${s.basePort + node - 1}`, '-u', 'admin', '-p', 'password', '-I', suite], cleanEnv());
    cleanup.add(() => p.kill());
    await p.waitOutput('[SOL established]');
    await p.waitOutput(new RegExp(`\\[seq \\d+\\] ${name} heartbeat`));
    p.write('\r');
    await p.waitOutput(`${name} login: `);
    p.write('root\r');
    await p.waitOutput('Password: ');
    p.write('pw\r');
    await p.waitOutput(`root@${name}:~# `);
    p.write('hostname\r');
    await p.waitOutput(new RegExp(`hostname\\r\\n(.*\\r\\n)*${name}\\r\\n`));
    p.write('&B');
    await waitFor(async () => (await control(s, 'GET', `/bmcs/${name}`)).json.host.breaks === 1, 'the host to see the BREAK');
    p.write('m');
    await p.waitOutput('sysrq: Show Memory');
    p.write('&.');
    await p.waitExit();
    assert.doesNotMatch(p.output, /error received/);
    // ipmiconsole closes its session (it never deactivates: Close Session frees SOL)
    await waitFor(async () => (await control(s, 'GET', `/bmcs/${name}`)).json.solOwner === null, 'SOL freed after &.');
  });
}
