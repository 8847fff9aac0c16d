// The vendor entry dialogs (src/devices/ssh-entry.ts) as state machines:
// prompt, command, confirmation, "in use" waited out, refusals and silence
// with the BMC's words quoted (bounded), and a BMC that floods; in the
// console, a takeover (the session put back at the CLI) told after the quiet
// time and asked for again politely, and the near misses that are not one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENTRY_PROFILES, EntryDialog, MAX_DIALOG_BYTES, quoteBmc, takeoverSign, type DialogTiming } from '../src/devices/ssh-entry.js';
import type { SshEntry } from '../src/config/types.js';
import { waitFor } from './helpers/wait.js';

const FAST: DialogTiming = { stepMs: 300, busyPollMs: 100, settleMs: 200, takeoverQuietMs: 150 };

/** a dialog with everything it does recorded */
function run(entry: SshEntry, timing = FAST): { d: EntryDialog; sent: string[]; ev: string[]; rest: Buffer[]; feed(s: string): void } {
  const sent: string[] = [];
  const ev: string[] = [];
  const rest: Buffer[] = [];
  const d = new EntryDialog(
    ENTRY_PROFILES[entry],
    timing,
    {
      send: (b) => sent.push(b.toString('latin1')),
      entered: (r, note) => {
        rest.push(r);
        ev.push(note ? `entered: ${note}` : 'entered');
      },
      busy: (said) => ev.push(`busy ${said}`),
      takenOver: (said, at) => ev.push(`taken over at ${at}: ${said}`),
      notTakenOver: (b) => ev.push(`not taken over: ${b.toString('latin1')}`),
      failed: (reason) => ev.push(`failed: ${reason}`),
    },
    () => 0.5,
  );
  d.start();
  return { d, sent, ev, rest, feed: (s) => d.feed(Buffer.from(s, 'latin1')) };
}

test('none (OpenBMC): the console at once, leaving with ~. after a CR', () => {
  const r = run('none');
  assert.deepEqual(r.ev, ['entered']);
  assert.equal(r.d.state, 'console');
  assert.deepEqual(ENTRY_PROFILES.none.leave, Buffer.from('\r~.'));
});

test('iLO: prompt, vsp, the console; the host output after the confirmation is kept', () => {
  const r = run('ilo');
  r.feed('User:admin logged-in to ILO.\r\n');
  assert.deepEqual(r.sent, []);
  r.feed('</>hpiLO-> ');
  assert.deepEqual(r.sent, ['vsp\r']);
  assert.equal(r.d.state, 'command');
  r.feed("vsp\r\n\r\nVirtual Serial Port Active: COM2\r\n\r\nStarting virtual serial port.\r\nPress 'ESC (' to");
  assert.equal(r.d.state, 'command');
  r.feed(" return to the CLI Session.\r\nlogin: ");
  assert.deepEqual(r.ev, ['entered']);
  assert.equal(r.rest[0]!.toString(), 'login: ');
  // later bytes are the device's, not the dialog's
  r.feed('</>hpiLO-> ');
  assert.deepEqual(r.ev, ['entered']);
  assert.deepEqual(ENTRY_PROFILES.ilo.leave, Buffer.from('\x1b('));
});

test('iLO: "in use" is waited out, asked again, then taken; never forced', async () => {
  const r = run('ilo');
  r.feed('</>hpiLO-> ');
  r.feed('vsp\r\n\r\nVirtual Serial Port is currently in use by another session.\r\n\r\n</>hpiLO-> ');
  assert.deepEqual(r.ev, ['busy "Virtual Serial Port is currently in use by another session."']);
  assert.equal(r.d.state, 'resting');
  await waitFor(() => r.sent.length === 2, 'asked again');
  assert.deepEqual(r.sent, ['vsp\r', 'vsp\r']);
  // busy again, the prompt in a later read this time
  r.feed('vsp\r\nVirtual Serial Port is currently in use by another session.\r\n');
  assert.equal(r.d.state, 'busy');
  r.feed('</>hpiLO-> ');
  await waitFor(() => r.sent.length === 3, 'asked a third time');
  r.feed("Press 'ESC (' to return to the CLI Session.\r\n");
  assert.deepEqual(r.ev.at(-1), 'entered');
  assert.ok(r.sent.every((s) => s === 'vsp\r'));
});

test('ILOM: start /HOST/console is confirmed with y', () => {
  const r = run('ilom');
  r.feed('Oracle(R) Integrated Lights Out Manager\r\n\r\n-> ');
  r.feed('start /HOST/console\r\nAre you sure you want to start /HOST/console (y/n)? ');
  assert.deepEqual(r.sent, ['start /HOST/console\r', 'y\r']);
  assert.equal(r.d.state, 'confirming');
  r.feed('y\r\n\r\nSerial console started.  To stop, type ESC (\r\n\r\nhost login: ');
  assert.deepEqual(r.ev, ['entered']);
  assert.equal(r.rest[0]!.toString(), '\r\nhost login: ');
});

test('iDRAC and XCC commands and leave sequences', () => {
  const i = run('idrac');
  i.feed('/admin1-> ');
  assert.deepEqual(i.sent, ['console com2\r']);
  i.feed('console com2\r\n\r\nConnected to Serial Device 2. To end type: ^\\\r\n');
  assert.deepEqual(i.ev, ['entered']);
  assert.deepEqual(ENTRY_PROFILES.idrac.leave, Buffer.from([0x1c]));
  const x = run('xcc');
  x.feed('system> ');
  assert.deepEqual(x.sent, ['console 1\r']);
  assert.deepEqual(ENTRY_PROFILES.xcc.leave, Buffer.from('\x1b('));
});

test('refused: the prompt comes back without the console; the BMC is quoted', () => {
  const r = run('ilo');
  r.feed('</>hpiLO-> ');
  r.feed('vsp\r\nstatus=2\r\nstatus_tag=COMMAND PROCESSING FAILED\r\nerror_tag=COMMAND NOT RECOGNIZED\r\n</>hpiLO-> ');
  assert.deepEqual(r.ev, ['failed: the BMC refused "vsp": "vsp status=2 status_tag=COMMAND PROCESSING FAILED error_tag=COMMAND NOT RECOGNIZED </>hpiLO->"']);
  assert.equal(r.d.state, 'failed');
});

test('no prompt in time (a changed banner): failed, saying what was waited for', async () => {
  const r = run('xcc');
  r.feed('Welcome to the new firmware\r\nXCC> ');
  await waitFor(() => r.ev.length === 1, 'the timeout');
  assert.match(r.ev[0]!, /^failed: no command-line prompt within 0\.3 s \(entry=xcc; a changed login banner or prompt\?\)$/);
});

test('an unconfirmed console after settleMs is taken, and said so; the session ending mid-dialog is quoted', async () => {
  const r = run('xcc');
  r.feed('system> ');
  r.feed('console 1\r\n');
  await waitFor(() => r.ev.length === 1, 'settled');
  assert.equal(r.ev[0], 'entered: no confirmation from the BMC after "console 1" (it printed "console 1"); taking what follows as the console');
  const c = run('ilo');
  c.feed('</>hpiLO-> ');
  c.feed('vsp\r\nConnection to BMC lost');
  c.d.closed();
  assert.deepEqual(c.ev, ['failed: the BMC ended the session after "vsp": "vsp Connection to BMC lost"']);
});

test('a BMC flooding its prompt is cut off; quotes are bounded and show control bytes', () => {
  const r = run('ilo', { ...FAST, stepMs: 60000 });
  const junk = Buffer.alloc(64 * 1024, 'x');
  for (let n = 0; n <= MAX_DIALOG_BYTES && r.ev.length === 0; n += junk.length) r.d.feed(junk);
  assert.deepEqual(r.ev, [`failed: the BMC sent ${MAX_DIALOG_BYTES} bytes without reaching the console`]);
  r.d.stop();
  const q = quoteBmc(`${'a'.repeat(500)}\x1b[1m\x07end`);
  assert.ok(q.length < 200, q);
  assert.ok(q.endsWith('^[[1m^Gend"'), q);
});

/** an iLO dialog in the console on mocked timers and clock (ms since 0) */
function inIloConsole(t: import('node:test').TestContext): ReturnType<typeof run> {
  t.mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 });
  const r = run('ilo');
  r.feed('</>hpiLO-> ');
  r.feed("vsp\r\nPress 'ESC (' to return to the CLI Session.\r\n\r\nhost login: ");
  assert.deepEqual(r.ev, ['entered']);
  return r;
}

test('iLO takeover: back at </>hpiLO-> after the host output, told after the quiet time, asked for again politely, entered again', (t) => {
  const r = inIloConsole(t);
  r.feed('root\r\nPassword: \r\n[seq 1] heartbeat\r\n');
  t.mock.timers.tick(1000);
  // another session took the port: the session is back at the prompt (split across reads)
  r.feed('\r\n</>hpi');
  r.feed('LO-> ');
  t.mock.timers.tick(149);
  assert.deepEqual(r.ev, ['entered'], 'not before the quiet time');
  t.mock.timers.tick(1);
  assert.deepEqual(r.ev, ['entered', 'taken over at 1000: the BMC is back at its prompt "</>hpiLO->"']);
  assert.equal(r.d.state, 'resting');
  // the CLI printing its prompt again is still the CLI
  r.feed('\r\n</>hpiLO-> ');
  assert.equal(r.ev.length, 2);
  // asked again after busyPollMs (±20 %), never forced; "in use" waited out
  t.mock.timers.tick(120);
  assert.deepEqual(r.sent, ['vsp\r', 'vsp\r']);
  r.feed('vsp\r\n\r\nVirtual Serial Port is currently in use by another session.\r\n\r\n</>hpiLO-> ');
  assert.equal(r.ev[2], 'busy "Virtual Serial Port is currently in use by another session."');
  t.mock.timers.tick(120);
  assert.deepEqual(r.sent, ['vsp\r', 'vsp\r', 'vsp\r']);
  r.feed("vsp\r\nPress 'ESC (' to return to the CLI Session.\r\nhost login: ");
  assert.deepEqual(r.ev.slice(3), ['entered']);
  assert.equal(r.rest.at(-1)!.toString(), 'host login: ');
  // and watched again
  r.feed('\r\n</>hpiLO-> ');
  t.mock.timers.tick(150);
  assert.match(r.ev.at(-1)!, /^taken over at \d+: the BMC is back at its prompt/);
  r.d.stop();
});

test('takeover near misses: a prompt-like line followed by more output, or not at the start of a line, or with escapes around it', (t) => {
  const r = inIloConsole(t);
  // in the middle of normal output: the next line comes before the quiet time is over
  r.feed('$ cat notes.txt\r\n</>hpiLO-> vsp\r\n</>hpiLO-> ');
  t.mock.timers.tick(100);
  r.feed('\r\nroot@host:~# ');
  t.mock.timers.tick(10000);
  // at the end of the output, but not at the start of a line
  r.feed('echo </>hpiLO-> ');
  t.mock.timers.tick(10000);
  r.feed('\r\nsome </>hpiLO-> ');
  t.mock.timers.tick(10000);
  assert.deepEqual(r.ev, ['entered']);
  // escape sequences (colours) do not hide a real one, nor make one
  r.feed('\r\n\x1b[0m</>hpiLO-> \x1b[K');
  t.mock.timers.tick(150);
  assert.equal(r.ev.length, 2);
  r.d.stop();
});

test('a takeover told too soon is withdrawn when the host goes on printing before conch asks again; nothing is typed at the host', (t) => {
  const r = inIloConsole(t);
  // the host itself printed the prompt-like line and paused (an operator ssh'd from the host to an iLO…)
  r.feed('\r\n</>hpiLO-> ');
  t.mock.timers.tick(150);
  assert.match(r.ev[1]!, /^taken over at/);
  r.feed('show /map1\r\n');
  assert.deepEqual(r.ev.slice(2), ['not taken over: show /map1\r\n']);
  assert.equal(r.d.state, 'console');
  t.mock.timers.tick(10000);
  assert.deepEqual(r.sent, ['vsp\r'], 'no vsp typed at the host');
  r.d.stop();
});

test('takeover signs per vendor: iDRAC and XCC prompts, ILOM only with "Serial console stopped.", vendor words quoted', () => {
  const sign = (entry: SshEntry, tail: string): string | null => takeoverSign(ENTRY_PROFILES[entry].takeover!, tail);
  assert.equal(sign('ilo', 'x\r\n\r\n[the serial port was taken over by another session]\r\n\r\n</>hpiLO-> '), 'the BMC said "[the serial port was taken over by another session]" and is back at its prompt "</>hpiLO->"');
  assert.equal(sign('ilo', 'x\r\n</system1>hpiLO-> '), 'the BMC is back at its prompt "</system1>hpiLO->"');
  assert.equal(sign('ilo', 'x\r\n</>iLO->'), 'the BMC is back at its prompt "</>iLO->"');
  assert.equal(sign('idrac', 'login: \r\nracadm>> '), 'the BMC is back at its prompt "racadm>>"');
  assert.equal(sign('idrac', 'login: \r\n/admin1-> '), 'the BMC is back at its prompt "/admin1->"');
  assert.equal(sign('idrac', 'login: \r\n-> '), null, 'a bare -> is no sign');
  assert.equal(sign('xcc', 'login: \r\nsystem> '), 'the BMC is back at its prompt "system>"');
  assert.equal(sign('xcc', 'login: \r\nsubsystem> '), null);
  assert.equal(sign('ilom', 'login: \r\n-> '), null, "ILOM's bare -> needs its message");
  assert.equal(sign('ilom', 'stopped\r\n-> '), null);
  assert.equal(sign('ilom', 'login: \r\nSerial console stopped.\r\n\r\n-> '), 'the BMC said "Serial console stopped." and is back at its prompt "->"');
  assert.equal(sign('ilom', 'login: \r\nSerial console stopped.\r\nmore\r\n-> '), null, 'the message right before the prompt');
  assert.equal(ENTRY_PROFILES.none.takeover, null);
});

test('the vendor line is quoted only when it speaks of the serial port or session; a host line is not', () => {
  const sign = (tail: string): string | null => takeoverSign(ENTRY_PROFILES.xcc.takeover!, tail);
  assert.equal(sign('[  OK  ] Stopped target Network.\r\n\r\nsystem> '), 'the BMC is back at its prompt "system>"');
  assert.equal(sign('SOL session ended by another user.\r\nsystem> '), 'the BMC said "SOL session ended by another user." and is back at its prompt "system>"');
});
