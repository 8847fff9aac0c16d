// conchd's client protocol against the real Debian `conman` 0.2.7 client:
// what a user of the conman command sees, session by session.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, freePort, waitFor, waitForFile } from './helpers/wait.js';
import { startProtocolServer, conman, CONMAN } from './helpers/protocol-harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** test: consoles that only echo (no load-test bursts) */
const quiet = (...names: string[]): string => names.map((n) => `console name="${n}" dev="test:" testopts="p:0"\n`).join('');

/** `conman -d ... <args>` without a tty (-q needs none); resolves with exit code and output. */
async function runConman(port: number, ...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const c = cleanup.child(CONMAN, ['-d', `127.0.0.1:${port}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const code = await c.exited;
  return { code, stdout: c.stdout, stderr: c.stderr };
}

const WHO = /<[^@>\s]+@localhost> on pts\/\d+/;

test('conman -q lists every console in natural order, quotes intact', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n10', 'n2', 'n1', "we'ird", 'a-b'));
  const r = await runConman(srv.port, '-q');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, "a-b\nn1\nn2\nn10\nwe'ird\n");
  // glob patterns, comma-separated arguments, union without duplicates
  const g = await runConman(srv.port, '-q', 'n?', 'n1*,a-b');
  assert.equal(g.stdout, 'a-b\nn1\nn2\nn10\n');
  // globbing is case-sensitive, like conmand's fnmatch
  const none = await runConman(srv.port, '-q', 'N1');
  assert.equal(none.code, 2);
  assert.match(none.stderr, /^ERROR: Found no matching consoles\.\n/);
});

test('conman -q -r matches whole names case-insensitively; a bad regex gets regerror text', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1', 'n2', 'n10', 'xn1'));
  const r = await runConman(srv.port, '-q', '-r', 'N1|n[2-9]');
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'n1\nn2\n');
  const bad = await runConman(srv.port, '-q', '-r', '((');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^ERROR: Unmatched \( or \\\(\.\n/);
});

test('a non-ASCII pattern is refused with a clear error instead of being mangled', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const r = await runConman(srv.port, '-q', 'nœud');
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^ERROR: Invalid console pattern "n\\xc5\\x93ud": console names are 7-bit ASCII only\.\n/);
});

test('attach, type, see the echo; a second plain attach is refused with who has it', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  a.type('hello-console\r');
  await a.waitOutput('hello-console');

  const b = conman(cleanup, srv.port, 'n1');
  assert.equal(await b.exited, 2);
  assert.match(b.output, /ERROR: Found console already in use\./);
  assert.match(b.output, new RegExp(`Console \\[n1\\] open R/W by ${WHO.source} \\(idle \\d+s\\)\\.`));
  assert.match(b.output, /Do you want to force \(-f\) or join \(-j\) the connection\?/);
  // the refused client changed nothing: the first still types
  a.type('still-mine\r');
  await a.waitOutput('still-mine');
});

test('join (-j): both writers share the console and are told about each other', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  const j = conman(cleanup, srv.port, '-j', 'n1');
  await j.opened('n1');
  await j.waitOutput(new RegExp(`<ConMan> Console \\[n1\\] joined with ${WHO.source} at \\d\\d-\\d\\d \\d\\d:\\d\\d\\.`));
  await a.waitOutput(new RegExp(`<ConMan> Console \\[n1\\] joined by ${WHO.source} at \\d\\d-\\d\\d \\d\\d:\\d\\d\\.`));
  j.type('from-joiner\r');
  await a.waitOutput('from-joiner');
  await j.waitOutput('from-joiner');
  a.type('from-first\r');
  await j.waitOutput('from-first');
  // the joiner leaves: the first writer is told
  j.type('&.');
  await j.exited;
  await a.waitOutput(/<ConMan> Console \[n1\] departed by <[^>]+> on pts\/\d+ at /);
});

test('force (-f): the old writer is told "stolen by" and its conman exits', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  const f = conman(cleanup, srv.port, '-f', 'n1');
  await f.opened('n1');
  await f.waitOutput(/<ConMan> Console \[n1\] stolen from <[^>]+> on pts\/\d+ at /);
  await a.waitOutput(/<ConMan> Console \[n1\] stolen by <[^>]+> on pts\/\d+ at /);
  // on a timeout, say whether the old client had exited (its last line lost) or was still running
  await a.waitOutput('<ConMan> Connection to console [n1] terminated by server.').catch((e: Error) => {
    throw new Error(`${e.message}; the old client ${a.exitCode === null ? 'is still running' : `exited with ${a.exitCode}`}`);
  });
  assert.equal(await a.exited, 0);
  f.type('new-owner\r');
  await f.waitOutput('new-owner');
});

test('monitor (-m) sees the console read-only; &J turns it into a writer', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const w = conman(cleanup, srv.port, 'n1');
  await w.opened('n1');
  const m = conman(cleanup, srv.port, '-m', 'n1');
  await m.opened('n1');
  w.type('seen-by-monitor\r');
  await m.waitOutput('seen-by-monitor');
  // a monitor is no writer: a refused attach names only the one writer
  const x = conman(cleanup, srv.port, 'n1');
  assert.equal(await x.exited, 2);
  assert.equal(x.output.match(/open R\/W by/g)?.length, 1, x.output);
  m.type('&J');
  await w.waitOutput(/Console \[n1\] joined by <[^>]+> on pts\/\d+ at /);
  m.type('monitor-now-writes\r');
  await w.waitOutput('monitor-now-writes');
});

test('broadcast (-b) to three consoles: each receives the keystrokes and &B', async () => {
  const srv = await startProtocolServer(cleanup, quiet('b1', 'b2', 'b3', 'other'));
  const mons = ['b1', 'b2', 'b3'].map((n) => conman(cleanup, srv.port, '-m', n));
  await Promise.all(mons.map((m, i) => m.opened(`b${i + 1}`)));
  const b = conman(cleanup, srv.port, '-b', 'b*');
  await b.waitOutput('<ConMan> Broadcast to 3 consoles opened.');
  for (const [i, m] of mons.entries()) {
    await m.waitOutput(new RegExp(`Console \\[b${i + 1}\\] joined for B/C by <[^>]+> on pts/\\d+ at `));
  }
  b.type('to-everyone\r');
  for (const m of mons) await m.waitOutput('to-everyone');
  b.type('&B');
  await waitFor(() => ['b1', 'b2', 'b3'].every((n) => srv.breaks(n) === 1), 'a break on each broadcast console');
  assert.equal(srv.breaks('other'), 0);
  // a broadcast session gets no console output of its own
  assert.ok(!b.after('opened.').includes('to-everyone'), b.output);
});

test('&B sends a break to the console; &D a DEL; a monitor cannot break', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const m = conman(cleanup, srv.port, '-m', 'n1');
  await m.opened('n1');
  m.type('&B');
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  a.type('&B');
  await waitFor(() => srv.breaks('n1') === 1, 'one break on n1');
  a.type('x&Dy\r');
  // the echo device returns the DEL byte between x and y
  await a.waitOutput('x\x7fy');
  assert.equal(srv.breaks('n1'), 1, 'the monitor\'s &B must not reach the console');
});

test('&L replays recent output between Begin/End log replay notices', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  a.type('remember-this-line\r');
  await a.waitOutput('remember-this-line');
  a.type('&L');
  const out = await a.waitOutput('<ConMan> End log replay of console [n1].');
  const replay = out.slice(out.indexOf('<ConMan> Begin log replay of console [n1].'));
  assert.ok(replay.includes('remember-this-line'), JSON.stringify(replay));
});

test('&L replays the whole replay buffer (16 KiB by default), not only conman\'s 4096 bytes', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  const long = `start-${'0123456789'.repeat(900)}-end`;
  a.type(`${long}\r`);
  await a.waitOutput('-end');
  a.type('&L');
  const out = await a.waitOutput('<ConMan> End log replay of console [n1].');
  const replay = out.slice(out.lastIndexOf('<ConMan> Begin log replay of console [n1].'));
  assert.ok(replay.includes(long), `replay of ${replay.length} bytes lacks the 9,010-byte line`);
});

test('&L on a logged console replays its log file: the log\'s own lines and logopts, the bytes of the last moment, 16 KiB of them', async () => {
  const dir = cleanup.dir('replay-log-');
  const srv = await startProtocolServer(cleanup, `console name="n1" dev="test:" testopts="p:0" log="${dir}/n1.log" logopts="timestamp"\n`);
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  // more than the 4 KiB kept in memory for the alerts: the start of it can only come from the file
  const long = `start-${'0123456789'.repeat(900)}-end`;
  a.type(`${long}\r`);
  await a.waitOutput('-end');
  // typed and replayed at once: still gathered in memory, not yet in the file (it is flushed within 200 ms)
  a.type('just-now\r&L');
  const out = await a.waitOutput('<ConMan> End log replay of console [n1].');
  const replay = out.slice(out.lastIndexOf('<ConMan> Begin log replay of console [n1].'));
  assert.match(replay, /Console \[n1\] log opened at /, 'the log file\'s own first line');
  // logopts=timestamp: each line as logged, with its stamp (conman replays the log, not the raw console)
  assert.match(replay, /\d{4}-\d\d-\d\d \d\d:\d\d:\d\d start-0123456789/);
  assert.ok(replay.includes(long), `replay of ${replay.length} bytes lacks the 9,010-byte line`);
  assert.match(replay, /just-now[\s\S]*End log replay/);
  // output after the replay was asked for comes after it, never inside it
  a.type('after-replay\r');
  const later = await a.waitOutput(/End log replay of console \[n1\][\s\S]*after-replay/);
  assert.doesNotMatch(later.slice(later.lastIndexOf('Begin log replay')), /after-replay[\s\S]*End log replay/);
});

test('&R runs server resetcmd with %N expanded and tells every client', async () => {
  const dir = cleanup.dir('reset-');
  const srv = await startProtocolServer(
    cleanup,
    `server resetcmd="echo reset %N > ${dir}/%N.reset"\n${quiet('n1', 'n2')}`,
  );
  const m = conman(cleanup, srv.port, '-m', 'n1');
  await m.opened('n1');
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  a.type('&R');
  await waitForFile(path.join(dir, 'n1.reset'), 'reset n1\n');
  await a.waitOutput(/<ConMan> Console \[n1\] reset by <[^@>]+@localhost> \(pid \d+\)\./);
  await m.waitOutput(/<ConMan> Console \[n1\] reset by <[^@>]+@localhost> \(pid \d+\)\./);
  assert.ok(!fs.existsSync(path.join(dir, 'n2.reset')));
});

test('&Q toggles quiet mode; &M drops to read-only (the console is free again)', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1'));
  const a = conman(cleanup, srv.port, 'n1');
  await a.opened('n1');
  a.type('&Q');
  await a.waitOutput('<ConMan> Quiet-mode enabled -- info msgs will be suppressed.');
  a.type('&Q');
  await a.waitOutput('<ConMan> Quiet-mode disabled -- info msgs will be displayed.');
  a.type('&M');
  await a.waitOutput(/<ConMan> Console \[n1\] departed by <[^>]+> on pts\/\d+ at /);
  const b = conman(cleanup, srv.port, 'n1');
  await b.opened('n1');
  b.type('b-has-it\r');
  await a.waitOutput('b-has-it');
});

test('attaching to a console that is down says so', async () => {
  const dead = await freePort();
  const srv = await startProtocolServer(cleanup, `console name="t1" dev="127.0.0.1:${dead}"\n`);
  const a = conman(cleanup, srv.port, 't1');
  await a.opened('t1');
  await a.waitOutput(`<ConMan> Console [t1] is currently disconnected from <127.0.0.1:${dead}>.`);
});

test('MONITOR and CONNECT of several consoles without -b list them (code 6)', async () => {
  const srv = await startProtocolServer(cleanup, quiet('n1', 'n2'));
  const a = conman(cleanup, srv.port, 'n*');
  assert.equal(await a.exited, 2);
  assert.match(a.output, /ERROR: Found 2 matching consoles\.\r\n\r\nn1\r\nn2\r\n/);
  assert.match(a.output, /Do you want to broadcast \(-b\) to multiple consoles\?/);
});
