// Stolen SOL sessions in the ipmi_sim-like profile: what real clients see
// must match what they see with ipmi_sim (docs/ipmi.md, "Simulated BMC
// profiles"). A second Activate gets "already active", anyone may
// Deactivate, the victim is told nothing and only fails when it types;
// ipmiconsole steals by default.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cleanup, waitFor } from './helpers/wait.js';
import { PtyProc, cleanEnv } from './client-rig.js';
import { control, startBmcsim, type SimFleet } from './bmcsim-rig.js';

const exec = promisify(execFile);
const cleanup = new Cleanup();
after(() => cleanup.run());

let simP: Promise<SimFleet> | null = null;
function sim(): Promise<SimFleet> {
  simP ??= startBmcsim(cleanup, 4, ['--heartbeat', '1']);
  return simP;
}

const args = (port: number): string[] => ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(port), '-U', 'admin', '-P', 'password', '-C', '3'];

async function ipmitool(port: number, extra: string[]): Promise<{ code: number; out: string }> {
  try {
    const r = await exec('ipmitool', [...args(port), ...extra], { timeout: 30000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof err.code === 'number' ? err.code : -1, out: (err.stdout ?? '') + (err.stderr ?? '') };
  }
}

async function solActivate(port: number): Promise<PtyProc> {
  const p = new PtyProc('ipmitool', [...args(port), 'sol', 'activate'], cleanEnv());
  cleanup.add(() => p.kill());
  await p.waitOutput('[SOL Session operational');
  return p;
}

/** The highest [seq N] seen so far in a transcript. */
const lastSeq = (s: string): number => Math.max(0, ...[...s.matchAll(/\[seq (\d+)\]/g)].map((m) => Number(m[1])));

test('second activate gets "already active"; a third session deactivates; the ipmitool victim fails only when typing', async () => {
  const s = await sim();
  const port = s.basePort;
  const victim = await solActivate(port);
  const second = await ipmitool(port, ['sol', 'activate']);
  assert.equal(second.code, 1);
  assert.match(second.out, /SOL payload already active on another session/);
  // the first client is unaffected
  const seen = lastSeq(victim.output);
  await waitFor(() => lastSeq(victim.output) > seen + 1, 'the victim to keep receiving output');
  assert.match((await ipmitool(port, ['raw', '0x06', '0x4a', '0x01'])).out, /01 01 00/);

  const deact = await ipmitool(port, ['sol', 'deactivate']);
  assert.equal(deact.code, 0, deact.out);
  assert.match((await ipmitool(port, ['raw', '0x06', '0x4a', '0x01'])).out, /01 00 00/);
  const again = await ipmitool(port, ['sol', 'deactivate']);
  assert.equal(again.code, 1);
  assert.match(again.out, /SOL payload already de-activated/);

  // the victim is told nothing: no more output, still running
  const frozen = victim.output.length;
  await waitFor(async () => (await control(s, 'GET', '/bmcs/node01')).json.host.lastSeq > lastSeq(victim.output) + 2, 'host heartbeats to go on');
  assert.equal(victim.output.length, frozen, 'the victim received something after the deactivate');
  assert.equal(victim.exitCode, undefined);
  // typing: unacknowledged retransmissions, then ipmitool gives up
  victim.write('x');
  await victim.waitOutput('SOL session closed by BMC', 20000);
  assert.equal(await victim.waitExit(), 1);
});

test('ipmiconsole --dont-steal says "SOL in use"; plain ipmiconsole steals silently from ipmitool', async () => {
  const s = await sim();
  const port = s.basePort + 1;
  const victim = await solActivate(port);
  // no tty needed to fail; a pty may lose the last output of a process that exits at once
  const polite = cleanup.child('ipmiconsole', ['-h', `127.0.0.1:${port}`, '-u', 'admin', '-p', 'password', '--dont-steal'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await polite.waitOutput('[error received]: SOL in use');
  await polite.exited;

  const thief = new PtyProc('ipmiconsole', ['-h', `127.0.0.1:${port}`, '-u', 'admin', '-p', 'password'], cleanEnv());
  cleanup.add(() => thief.kill());
  await thief.waitOutput('[SOL established]');
  await thief.waitOutput(/\[seq \d+\] node02 heartbeat/);
  const frozen = victim.output.length;
  const seen = lastSeq(thief.output);
  await waitFor(() => lastSeq(thief.output) > seen + 2, 'the thief to receive heartbeats');
  assert.equal(victim.output.length, frozen, 'the displaced ipmitool still received output');
  assert.equal(victim.exitCode, undefined, 'the displaced ipmitool was told something');
  thief.write('&.');
  await thief.waitExit();
});

test('control channel: an injected steal silences the owner for T seconds, then the instance is free', async () => {
  const s = await sim();
  const port = s.basePort + 2;
  const victim = await solActivate(port);
  await victim.waitOutput(/\[seq \d+\] node03 heartbeat/);
  const sidBefore = (await ipmitool(port, ['raw', '0x06', '0x4b', '0x01', '0x01'])).out.trim().split(/\s+/).slice(0, 4).join(' ');
  assert.notEqual(sidBefore, '00 00 00 00');
  const r = await control(s, 'POST', '/bmcs/node03/steal', { seconds: 3 });
  assert.equal(r.status, 200);
  const frozen = victim.output.length;
  const sidDuring = (await ipmitool(port, ['raw', '0x06', '0x4b', '0x01', '0x01'])).out.trim().split(/\s+/).slice(0, 4).join(' ');
  assert.notEqual(sidDuring, sidBefore, 'Get Payload Instance Info shows a new owner');
  assert.notEqual(sidDuring, '00 00 00 00');
  assert.match((await ipmitool(port, ['sol', 'activate'])).out, /already active on another session/);
  await waitFor(async () => /01 00 00/.test((await ipmitool(port, ['raw', '0x06', '0x4a', '0x01'])).out), 'the stealer to let go', 20000);
  assert.equal(victim.output.length, frozen, 'the victim got output while stolen');
  const st = (await control(s, 'GET', '/bmcs/node03')).json;
  assert.equal(st.counters.steals, 1);
  victim.kill();
});

test('control channel: bad requests are answered with an error and do not hurt the simulator', async () => {
  const s = await sim();
  assert.equal((await control(s, 'POST', '/bmcs/nosuch/steal', { seconds: 1 })).status, 404);
  assert.equal((await control(s, 'POST', '/bmcs/node04/faults', { loss: 7 })).status, 400);
  assert.equal((await control(s, 'POST', '/bmcs/node04/profile', { profile: 'nope' })).status, 400);
  const ok = await control(s, 'POST', '/bmcs/node04/burst', { bytes: 500 });
  assert.equal(ok.status, 200);
  const t = (await control(s, 'GET', '/counters')).json;
  assert.equal(t.bmcs, 4);
  assert.match((await ipmitool(s.basePort + 3, ['mc', 'info'])).out, /IPMI Version\s+: 2\.0/);
});
