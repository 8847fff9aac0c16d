// The vendor entry dialogs (src/devices/ssh-entry.ts) as state machines:
// prompt, command, confirmation, "in use" waited out, refusals and silence
// with the BMC's words quoted (bounded), and a BMC that floods.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ENTRY_PROFILES, EntryDialog, MAX_DIALOG_BYTES, quoteBmc, type DialogTiming } from '../src/devices/ssh-entry.js';
import type { SshEntry } from '../src/config/types.js';
import { waitFor } from './helpers/wait.js';

const FAST: DialogTiming = { stepMs: 300, busyPollMs: 100, settleMs: 200 };

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
