// conch-bmcsim against the real ipmitool (lanplus): SOL with cipher suites
// 3 and 17 shows host output, typed input reaches the host, ~B + key gives
// BREAK + SysRq; and the plain IPMI commands ipmitool users run.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cleanup, waitFor } from './helpers/wait.js';
import { PtyProc, cleanEnv } from './client-rig.js';
import { control, startBmcsim, type SimFleet } from './bmcsim-rig.js';

const run = promisify(execFile);
const cleanup = new Cleanup();
after(() => cleanup.run());

let simP: Promise<SimFleet> | null = null;
function sim(): Promise<SimFleet> {
  simP ??= startBmcsim(cleanup, 3, ['--heartbeat', '1']);
  return simP;
}

function ipmitool(port: number, args: string[], pw = 'password'): Promise<{ stdout: string; stderr: string }> {
  return run('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(port), '-U', 'admin', '-P', pw, ...args], { timeout: 30000 });
}

for (const [suite, node] of [
  ['3', 1],
  ['17', 2],
] as const) {
  test(`ipmitool -C ${suite} sol activate: output, input, ~B break + SysRq, ~. exits`, async () => {
    const s = await sim();
    const port = s.basePort + node - 1;
    const name = `node0${node}`;
    const p = new PtyProc('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(port), '-U', 'admin', '-P', 'password', '-C', suite, 'sol', 'activate'], cleanEnv());
    cleanup.add(() => p.kill());
    await p.waitOutput('[SOL Session operational');
    // host output: the heartbeat lines
    await p.waitOutput(new RegExp(`\\[seq \\d+\\] ${name} heartbeat`));
    // typed input reaches the host: log in and run a command
    p.write('\r');
    await p.waitOutput(`${name} login: `);
    p.write('root\r');
    await p.waitOutput('Password: ');
    p.write('secret\r');
    await p.waitOutput(`root@${name}:~# `);
    p.write('echo typed-through-sol\r');
    await p.waitOutput(/echo typed-through-sol\r\n(.*\r\n)*typed-through-sol\r\n/);
    // ~B sends a BREAK (ipmitool's escape must follow a newline, which must reach the host
    // first: ipmitool sends the BREAK before characters it still holds), then t is a SysRq key
    const prompts = (): number => p.output.split(`root@${name}:~# `).length;
    const before = prompts();
    p.write('\r');
    await waitFor(() => prompts() > before, 'a new prompt after Enter');
    p.write('~B');
    await waitFor(async () => (await control(s, 'GET', `/bmcs/${name}`)).json.host.breaks === 1, 'the host to see the BREAK');
    p.write('t');
    await p.waitOutput('sysrq: Show State');
    const st = (await control(s, 'GET', `/bmcs/${name}`)).json;
    assert.equal(st.counters.activations, 1);
    assert.ok(st.counters.bytesFromConsole > 20, 'typed bytes counted');
    assert.ok(st.counters.bytesToConsole > 100, 'host output counted');
    p.write('\r~.');
    assert.equal(await p.waitExit(), 0);
    // ipmitool deactivates SOL and closes its session on the way out
    await waitFor(async () => {
      const j = (await control(s, 'GET', `/bmcs/${name}`)).json;
      return j.solOwner === null && j.sessions === 0;
    }, 'SOL deactivated and the session closed after ~.');
  });
}

test('ipmitool: mc info, sol info, channel getciphers, wrong password rejected', async () => {
  const s = await sim();
  const port = s.basePort + 2;
  const mc = await ipmitool(port, ['-C', '3', 'mc', 'info']);
  assert.match(mc.stdout, /IPMI Version\s+: 2\.0/);
  const info = await ipmitool(port, ['-C', '17', 'sol', 'info']);
  assert.match(info.stdout, /Enabled\s+: true/);
  assert.match(info.stdout, new RegExp(`Payload Port\\s+: ${port}`));
  // without -C ipmitool asks for the cipher suites first (RMCP+ session-less) and picks 17
  const ciphers = await ipmitool(port, ['channel', 'getciphers', 'ipmi']);
  assert.match(ciphers.stdout, /^3\s+N\/A\s+hmac_sha1\s+hmac_sha1_96\s+aes_cbc_128/m);
  assert.match(ciphers.stdout, /^17\s+N\/A\s+hmac_sha256\s+sha256_128\s+aes_cbc_128/m);
  await assert.rejects(ipmitool(port, ['-C', '3', 'mc', 'info'], 'wrong-password'), /Unable to establish IPMI v2 \/ RMCP\+ session/);
});
