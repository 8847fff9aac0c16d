// The conman wire protocol byte by byte, from a raw TCP client: replies and
// error codes, quote encoding, escapes split across reads, and what conch
// does better than conmand (handshake deadline, piggy-backed input, clear
// errors for non-ASCII patterns, slow readers that cannot hold anyone up).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { startProtocolServer } from './helpers/protocol-harness.js';
import { RawClient } from './helpers/raw-client.js';

class Raw extends RawClient {
  constructor(port: number, host = '127.0.0.1') {
    super(cleanup, net.connect(port, host));
  }
}

const cleanup = new Cleanup();
after(() => cleanup.run());

const quiet = (...names: string[]): string => names.map((n) => `console name="${n}" dev="test:" testopts="p:0"\n`).join('');
const bin = (s: string): Buffer => Buffer.from(s, 'latin1');

test('greeting and request replies, codes 2 5 6 7, quote encoding', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1', 'n2', 'n10', "we'ird"));

  const noUser = new Raw(srv.port);
  noUser.send('HELLO\n');
  await noUser.closedByServer();
  assert.equal(noUser.text, "ERROR CODE=2 MESSAGE='Invalid greeting: no user specified'\n");

  const q = new Raw(srv.port);
  q.send("hello user=bob TTY='pts/9'\nQUERY\n");
  await q.closedByServer();
  assert.equal(q.text, "OK\nOK CONSOLE='n1' CONSOLE='n2' CONSOLE='n10' CONSOLE='we\xa7ird'\n");

  // a last line without its newline, then a half-close, still gets its answer
  const unended = new Raw(srv.port);
  unended.sock.end(bin("HELLO USER='bob'\nQUERY CONSOLE='n1*'"));
  await unended.closedByServer();
  assert.equal(unended.text, "OK\nOK CONSOLE='n1' CONSOLE='n10'\n");

  const quoted = new Raw(srv.port);
  quoted.send("HELLO USER='bob'\nQUERY CONSOLE='we\xa7ird'\n");
  await quoted.closedByServer();
  assert.equal(quoted.text, "OK\nOK CONSOLE='we\xa7ird'\n");

  const none = new Raw(srv.port);
  none.send("HELLO USER='bob'\nCONNECT CONSOLE='zz*'\n");
  await none.closedByServer();
  assert.equal(none.text, "OK\nERROR CODE=5 MESSAGE='Found no matching consoles'\n");

  const many = new Raw(srv.port);
  many.send("HELLO USER='bob'\nMONITOR CONSOLE='n*'\n");
  await many.closedByServer();
  assert.equal(many.text, "OK\nERROR CODE=6 MESSAGE='Found 3 matching consoles'\nn1\nn2\nn10\n");

  const owner = new Raw(srv.port);
  owner.send("HELLO USER='alice' TTY='pts/1'\nCONNECT CONSOLE='n1'\n");
  await owner.has("OK CONSOLE='n1'\n");
  const busy = new Raw(srv.port);
  busy.send("HELLO USER='bob'\nCONNECT CONSOLE='n1'\n");
  await busy.closedByServer();
  assert.match(
    busy.text,
    /^OK\nERROR CODE=7 MESSAGE='Found console already in use'\nConsole \[n1\] open R\/W by <alice@localhost> on pts\/1 \(idle \d+s\)\.\n$/,
  );
});

test('conch refuses what conmand would mangle: non-ASCII patterns, unterminated quotes, no command', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const utf8 = new Raw(srv.port);
  utf8.send(Buffer.concat([bin("HELLO USER='bob'\nQUERY CONSOLE='"), Buffer.from('nœud', 'utf8'), bin("'\n")]));
  await utf8.closedByServer();
  assert.match(utf8.text, /^OK\nERROR CODE=2 MESSAGE='Invalid console pattern \xa2n\\xc5\\x93ud\xa2: console names are 7-bit ASCII only'\n$/);

  const open = new Raw(srv.port);
  open.send("HELLO USER='bob'\nQUERY CONSOLE='n1\n");
  await open.closedByServer();
  assert.equal(open.text, "OK\nERROR CODE=2 MESSAGE='Invalid request: unterminated quoted string'\n");

  const nocmd = new Raw(srv.port);
  nocmd.send("HELLO USER='bob'\nFETCH CONSOLE='n1'\n");
  await nocmd.closedByServer();
  assert.equal(nocmd.text, "OK\nERROR CODE=2 MESSAGE='Invalid request: expected QUERY, MONITOR or CONNECT'\n");
});

test('bytes sent right after the request line are session input, at once', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const c = new Raw(srv.port);
  // one packet: greeting, request and the first keystrokes with a stuffed 0xFF
  c.send("HELLO USER='bob'\nCONNECT CONSOLE='n1'\nearly\xff\xffbird\r");
  await c.has('early\xffbird\r', 'the piggy-backed bytes echoed by the console');
  assert.ok(c.text.startsWith("OK\nOK CONSOLE='n1'\n"), c.text);
});

test('escapes split across reads: FF|FF is one data byte, FF|B a break, FF|x dropped', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const c = new Raw(srv.port);
  c.send("HELLO USER='bob'\nCONNECT CONSOLE='n1'\n");
  await c.has("OK CONSOLE='n1'\n");
  c.sock.setNoDelay(true);
  // each piece goes out once the previous one has visibly taken effect, so the
  // server sees it as a read of its own (except where nothing is visible)
  const steps: [string, string | 'break' | null][] = [
    ['a\xff', 'a'],
    ['\xffb', 'a\xffb'],
    ['\xff', null],
    ['B', 'break'],
    ['c\xff', 'a\xffbc'],
    ['x', null],
    ['d\xff', 'a\xffbcd'],
    ['D', 'a\xffbcd\x7f'],
    ['e\r', 'a\xffbcd\x7fe\r'],
  ];
  for (const [piece, effect] of steps) {
    c.send(piece);
    if (effect === 'break') await waitFor(() => srv.breaks('n1') === 1, 'the break');
    else if (effect !== null) await c.has(`OK CONSOLE='n1'\n${effect}`, `echo ${JSON.stringify(effect)}`);
  }
  assert.equal(srv.breaks('n1'), 1);
  assert.match(srv.log(), /Received invalid escape 'x'/);
});

test('&Z holds output until resumed; OPTION=QUIET suppresses info notices only', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const owner = new Raw(srv.port);
  owner.send("HELLO USER='alice'\nCONNECT CONSOLE='n1'\n");
  await owner.has("OK CONSOLE='n1'\n");

  // a quiet joiner: no "joined with" line, yet console output and the
  // quiet-mode confirmation (which quiet mode cannot suppress) arrive
  const q = new Raw(srv.port);
  q.send("HELLO USER='quiet'\nCONNECT OPTION=QUIET OPTION=JOIN CONSOLE='n1'\n");
  await q.has("OK CONSOLE='n1'\n");
  await owner.has(/Console \[n1\] joined by <quiet@localhost> at /);
  owner.send('from-owner\r');
  await q.has('from-owner\r');
  assert.equal(q.text, "OK\nOK CONSOLE='n1'\nfrom-owner\r");
  q.send('\xffQ');
  await q.has('\r\n<ConMan> Quiet-mode disabled -- info msgs will be displayed.\r\n');

  // suspended: output is held, then delivered on resume
  q.send('\xffZ');
  await waitFor(() => /Client <quiet@[^>]+> suspended/.test(srv.log()), 'the server to suspend output');
  owner.send('while-suspended\r');
  await owner.has('from-owner\rwhile-suspended\r');
  assert.ok(!q.text.includes('while-suspended'), 'held while suspended');
  q.send('\xffZ');
  await q.has('while-suspended\r');
});

test('a silent client is dropped after handshaketimeout and holds nothing', async () => {
  const srv = await startProtocolServer(cleanup, `server handshaketimeout=1\n${quiet('n1')}`);
  const silent = new Raw(srv.port);
  const halfway = new Raw(srv.port);
  halfway.send("HELLO USER='slow'\n");
  await halfway.has('OK\n');
  const started = performance.now();
  await silent.closedByServer();
  await halfway.closedByServer();
  assert.ok(performance.now() - started < 15000);
  assert.equal(silent.text, '');
  assert.match(srv.log(), /dropped: no complete request within 1s/);
  // the console is free and the server still serves
  const c = new Raw(srv.port);
  c.send("HELLO USER='bob'\nCONNECT CONSOLE='n1'\nhi\r");
  await c.has('hi\r');
});

test('IPv6 loopback is served too', async (t) => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const c = new Raw(srv.port, '::1');
  const err = await new Promise<Error | null>((resolve) => {
    c.sock.once('connect', () => resolve(null));
    c.sock.once('error', resolve);
  });
  if (err && /EADDRNOTAVAIL|EAFNOSUPPORT|ENETUNREACH/.test(err.message)) {
    t.diagnostic(`no IPv6 loopback on this host: ${err.message}`);
    return;
  }
  assert.equal(err, null);
  c.send("HELLO USER='bob'\nCONNECT CONSOLE='n1'\nv6\r");
  await c.has("OK CONSOLE='n1'\nv6\r");
});

test('close() tells attached clients goodbye by closing their sockets', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const c = new Raw(srv.port);
  c.send("HELLO USER='bob'\nCONNECT CONSOLE='n1'\n");
  await c.has("OK CONSOLE='n1'\n");
  const pending = new Raw(srv.port);
  await waitFor(() => pending.sock.readyState === 'open', 'the second connection');
  await srv.stop();
  await c.closedByServer();
  await pending.closedByServer();
});

/** Printable cycle 0x20..0x7e with CRLF after each burst: the test: device's output. */
function assertContiguous(data: Buffer, what: string): void {
  let prev = -1;
  for (let i = 0; i < data.length; i++) {
    const b = data[i];
    if (b === 0x0d || b === 0x0a) continue;
    if (prev >= 0) {
      const want = prev === 0x7e ? 0x20 : prev + 1;
      if (b !== want) assert.fail(`${what}: byte ${i} is 0x${b.toString(16)}, expected 0x${want.toString(16)}`);
    }
    prev = b;
  }
}

test('a client that stops reading loses its own data only; the log and a reader get everything', async () => {
  const dir = cleanup.dir('flood-');
  const logFile = path.join(dir, 'f1.log');
  const srv = await startProtocolServer(
    cleanup,
    `server clientbuffer=65536\nconsole name="f1" dev="test:" testopts="b:262144,m:10,p:100" log="${logFile}"\n`,
  );
  const header = "OK\nOK CONSOLE='f1'\n";
  const slow = new Raw(srv.port);
  slow.send("HELLO USER='slow'\nMONITOR CONSOLE='f1'\n");
  await slow.has(header);
  slow.sock.pause();
  const fast = new Raw(srv.port);
  fast.send("HELLO USER='fast'\nMONITOR CONSOLE='f1'\n");
  await fast.has(header);

  // far more than the kernel's socket buffers can hide
  await waitFor(() => fast.size > 24 * 1024 * 1024, 'the reader to receive 24 MiB', 60000);
  await srv.console('f1').stop(); // device closed, log flushed

  // the log ends with its closing line (written to the log only), then the reader's bytes
  const closing = fs.readFileSync(logFile);
  const log = closing.subarray(0, closing.lastIndexOf(bin('\r\n<ConMan> Console [f1] log closed at ')));
  const tail = log.subarray(log.length - 4096);
  await waitFor(() => fast.data.subarray(fast.size - 4096).equals(tail), 'the reader to have the log\'s last bytes', 60000);
  const seen = fast.data.subarray(header.length);
  assertContiguous(seen, 'reader');
  assert.ok(log.indexOf(seen) >= 0, 'the log holds every byte the reader got');
  const body = log.subarray(log.lastIndexOf(bin('.\r\n')) + 3);
  assertContiguous(body, 'log');

  // the stalled client, once it reads again, is told what it missed
  slow.sock.resume();
  await slow.has(/<ConMan> Console \[f1\] lost \d+ bytes for this client \(slow reader\)\.\r\n/);
  const lost = Number(/lost (\d+) bytes/.exec(slow.text)![1]);
  assert.ok(lost > 1024 * 1024, `lost ${lost}`);
  await waitForFile(logFile, '<ConMan>');
});

test('QUERY OPTION=STATUS (conch -q -v): a line per console with its state, device and clients', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1', 'node10'));
  const w = new Raw(srv.port);
  w.send("HELLO USER='alice' TTY='pts/1'\nCONNECT CONSOLE='n1'\n");
  await w.has("OK CONSOLE='n1'\n");
  const m = new Raw(srv.port);
  m.send("HELLO USER='bob'\nMONITOR CONSOLE='n1'\n");
  await m.has("OK CONSOLE='n1'\n");
  const q = new Raw(srv.port);
  q.send("HELLO USER='carol'\nQUERY OPTION=STATUS\n");
  await q.closedByServer();
  const stamp = String.raw`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`;
  assert.match(
    q.text,
    new RegExp(
      `^OK\\nOK CONSOLE='n1' CONSOLE='node10'\\n` +
        `n1      up since ${stamp} \\("test:"\\); clients: <alice@localhost> on pts/1 write idle \\d+s, <bob@localhost> monitor\\n` +
        `node10  up since ${stamp} \\("test:"\\); no clients\\n$`,
    ),
  );
  // without the option, conman's reply exactly
  const plain = new Raw(srv.port);
  plain.send("HELLO USER='carol'\nQUERY\n");
  await plain.closedByServer();
  assert.equal(plain.text, "OK\nOK CONSOLE='n1' CONSOLE='node10'\n");
});
