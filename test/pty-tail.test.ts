// The pty harness keeps a program's last output even when node-pty's reader
// is destroyed before it read it (what a held-up event loop does to conman's
// "terminated by server" line on a loaded CI machine).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as pty from 'node-pty';
import { keepPtyTail } from './helpers/pty-tail.js';

function run(keep: boolean): Promise<string> {
  const term = pty.spawn('/bin/sh', ['-c', 'printf "last line before exit"; exit 0'], { name: 'xterm', cols: 80, rows: 24 });
  let out = '';
  term.onData((d) => (out += d));
  if (keep) keepPtyTail(term, (d) => (out += d));
  // as if this process's event loop were held up: nothing is read from the
  // pty, the program prints and exits, node-pty's 200 ms run out first
  const handle = (term as unknown as { _socket: { _handle: { readStop(): number; readStart(): number } } })._socket._handle;
  handle.readStop();
  handle.readStart = () => 0; // the stream must not start reading again
  return new Promise((resolve) => term.onExit(() => resolve(out)));
}

test('a pty program\'s last output survives its reader being destroyed unread', async () => {
  assert.equal(await run(true), 'last line before exit');
  // and the failure it guards against is real: without it the line is gone
  assert.equal(await run(false), '');
});
