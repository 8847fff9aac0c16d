// A console log that cannot be opened or written is retried with backoff,
// without a SIGHUP, and says in the file what it lost; a symbolic link at a
// log path is refused (unless logsymlinks=on) and retried like any failure.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { ConsoleLog } from '../src/logging/console-log.js';
import { DaemonLog } from '../src/logging/daemon-log.js';
import { waitFor } from './helpers/wait.js';

const OPTS = { lock: false, sanitize: false, timestamp: false };
const FAST = { retryMinMs: 30, retryMaxMs: 100 };
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'conch-log-retry-'));
const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '');
const MARK = (name: string): RegExp =>
  new RegExp(`\\r\\n<ConMan> Console \\[${name}\\] log resumed at \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d \\S+: (\\d+) bytes lost while the log could not be written\\.\\r\\n`, 'g');

function daemonLog(dir: string): { dlog: DaemonLog; text: () => string } {
  const file = path.join(dir, 'conchd.log');
  return { dlog: new DaemonLog({ file, echo: false }), text: () => read(file) };
}

const count = (s: string, re: RegExp): number => s.split('\n').filter((l) => re.test(l)).length;

test('a log whose directory cannot be made yet opens by itself once it can, with a marker counting the bytes dropped meanwhile', async () => {
  const dir = tmp();
  const { dlog, text } = daemonLog(dir);
  const blocker = path.join(dir, 'sub');
  fs.writeFileSync(blocker, 'not a directory'); // works as root too, unlike chmod
  const log = new ConsoleLog(path.join(dir, 'sub', '%N.log'), OPTS, { name: 'r1', dev: 'test' }, dlog, FAST);
  log.open();
  await waitFor(() => text().includes('cannot open log'), 'the open error');
  // 2 MiB of numbered lines while the file cannot be opened: the newest 1 MiB is kept
  const lines: string[] = [];
  for (let i = 0; i < 20000; i++) lines.push(`line ${String(i).padStart(6, '0')} ${'x'.repeat(90)}\n`);
  for (const l of lines) log.write(Buffer.from(l));
  // retries fail quietly: one line for the outage
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(count(text(), /cannot open log/), 1, text());
  fs.rmSync(blocker);
  const file = path.join(dir, 'sub', 'r1.log');
  await waitFor(() => read(file).includes(lines.at(-1)!), 'the log to open without a SIGHUP', 10000);
  log.write(Buffer.from('after\n'));
  await log.close();
  const t = read(file);
  assert.match(t, /^\r\n<ConMan> Console \[r1\] log opened at [^\r]+\.\r\n/);
  const marks = [...t.matchAll(MARK('r1'))];
  assert.equal(marks.length, 1, t.slice(0, 400));
  const lost = Number(marks[0]![1]);
  const after = t.slice(marks[0]!.index! + marks[0]![0].length);
  const all = lines.join('');
  // what follows the marker is exactly the newest bytes, and the marker counts the rest
  assert.ok(after.endsWith('after\n'));
  const kept = after.slice(0, -'after\n'.length);
  assert.ok(kept.length > 0 && kept.length <= 1024 * 1024, `kept ${kept.length}`);
  assert.equal(lost + kept.length, all.length);
  assert.equal(kept, all.slice(lost));
  assert.match(text(), /Console \[r1\] log .*r1\.log opened after failing: \d+ bytes lost/);
  fs.rmSync(dir, { recursive: true });
});

test('a symbolic link at the log path is refused, reported, and retried: removing it brings the log back', async () => {
  const dir = tmp();
  const { dlog, text } = daemonLog(dir);
  const outside = tmp();
  const target = path.join(outside, 'precious');
  fs.writeFileSync(target, 'precious\n');
  const file = path.join(dir, 's1.log');
  fs.symlinkSync(target, file);
  const log = new ConsoleLog(path.join(dir, '%N.log'), OPTS, { name: 's1', dev: 'test' }, dlog, FAST);
  log.open();
  log.write(Buffer.from('kept while refused\n'));
  await waitFor(() => text().includes('symbolic link'), 'the refusal in the daemon log');
  assert.match(text(), new RegExp(`Console \\[s1\\] cannot open log ${file.replace(/[.]/g, '\\.')}: it is a symbolic link`));
  await new Promise((r) => setTimeout(r, 150)); // a few retries
  assert.equal(read(target), 'precious\n');
  assert.ok(fs.lstatSync(file).isSymbolicLink());
  fs.rmSync(file);
  await waitFor(() => read(file).includes('kept while refused\n'), 'the log to open once the link is gone');
  await log.close();
  assert.equal(read(target), 'precious\n');
  assert.match(read(file), /log opened at .*\r\n\r\n<ConMan> Console \[s1\] log resumed at .*: 0 bytes lost/s);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(outside, { recursive: true });
});

test('a dangling symbolic link creates no file where it points; -z truncates no link target', async () => {
  const dir = tmp();
  const { dlog, text } = daemonLog(dir);
  const outside = tmp();
  const dangling = path.join(outside, 'created-by-conchd');
  fs.symlinkSync(dangling, path.join(dir, 'd1.log'));
  const target = path.join(outside, 'precious');
  fs.writeFileSync(target, 'precious\n');
  fs.symlinkSync(target, path.join(dir, 'd2.log'));
  const d1 = new ConsoleLog(path.join(dir, '%N.log'), OPTS, { name: 'd1', dev: 'test' }, dlog, FAST);
  const d2 = new ConsoleLog(path.join(dir, '%N.log'), OPTS, { name: 'd2', dev: 'test' }, dlog, { ...FAST, truncate: true });
  d1.open();
  d2.open();
  d1.write(Buffer.from('d1\n'));
  d2.write(Buffer.from('d2\n'));
  await waitFor(() => count(text(), /symbolic link/) >= 2, 'both refusals');
  await Promise.all([d1.close(), d2.close()]);
  assert.equal(fs.existsSync(dangling), false);
  assert.equal(read(target), 'precious\n');
  assert.match(text(), /Console \[d1\] log closed before it could be opened: \d+ bytes lost/);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(outside, { recursive: true });
});

test('logsymlinks=on: the link is followed', async () => {
  const dir = tmp();
  const { dlog } = daemonLog(dir);
  const outside = tmp();
  const target = path.join(outside, 'elsewhere.log');
  fs.writeFileSync(target, 'before\n');
  fs.symlinkSync(target, path.join(dir, 'f1.log'));
  const log = new ConsoleLog(path.join(dir, '%N.log'), OPTS, { name: 'f1', dev: 'test' }, dlog, { ...FAST, followSymlinks: true });
  log.open();
  log.write(Buffer.from('through the link\n'));
  await log.close();
  assert.match(read(target), /^before\n\r\n<ConMan> Console \[f1\] log opened at .*through the link\n$/s);
  fs.rmSync(dir, { recursive: true });
  fs.rmSync(outside, { recursive: true });
});

test('a FIFO planted at the log path does not hang the open (no reader: ENXIO, retried)', async () => {
  const dir = tmp();
  const { dlog, text } = daemonLog(dir);
  execFileSync('mkfifo', [path.join(dir, 'p1.log')]);
  const log = new ConsoleLog(path.join(dir, '%N.log'), OPTS, { name: 'p1', dev: 'test' }, dlog, FAST);
  log.open();
  await waitFor(() => text().includes('cannot open log'), 'the open error', 5000);
  assert.match(text(), /Console \[p1\] cannot open log .*p1\.log: ENXIO/);
  await log.close();
  fs.rmSync(dir, { recursive: true });
});

test('a write outage in the middle of a log: one daemon-log line when it starts, one when it ends, and a marker counting the gap', async () => {
  // the log path is a FIFO with a reader (opened O_NONBLOCK): when the reader
  // stops, writes fail (EAGAIN) as on a full disk; when it reads, they resume
  const dir = tmp();
  const { dlog, text } = daemonLog(dir);
  const fifo = path.join(dir, 'w1.log');
  execFileSync('mkfifo', [fifo]);
  const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const log = new ConsoleLog(path.join(dir, '%N.log'), OPTS, { name: 'w1', dev: 'test' }, dlog, FAST);
  log.open();
  const out: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  const drain = (): void => {
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(r, buf, 0, buf.length, null);
      } catch {
        return; // EAGAIN: empty
      }
      if (n === 0) return;
      out.push(Buffer.from(buf.subarray(0, n)));
    }
  };
  const lines: string[] = [];
  let i = 0;
  const burst = (n: number): void => {
    for (let k = 0; k < n; k++, i++) {
      const l = `seq ${String(i).padStart(7, '0')} ${'y'.repeat(40)}\n`;
      lines.push(l);
      log.write(Buffer.from(l));
    }
    log.flush();
  };
  // 300 KB with nobody reading: the 64 KiB pipe fills
  for (let k = 0; k < 60; k++) {
    burst(100);
    await new Promise((res) => setImmediate(res));
  }
  await waitFor(() => text().includes('cannot write log'), 'the write error');
  // the reader comes back and keeps up (the held bytes may fill the pipe again: a second outage is fine)
  const reader = setInterval(drain, 2);
  try {
    await waitFor(
      () => {
        burst(10);
        return text().includes('resumed');
      },
      'the log to resume',
      10000,
    );
    // the last line may fall into a gap of its own: write on until one lands
    let polls = 0;
    await waitFor(
      () => {
        if (Buffer.concat(out).toString('latin1').endsWith(lines.at(-1)!)) return true;
        if (polls++ % 10 === 0) burst(1);
        return false;
      },
      'the last line through',
      10000,
    );
    await log.close();
  } finally {
    clearInterval(reader);
  }
  drain();
  fs.closeSync(r);
  const t = Buffer.concat(out).toString('latin1');
  const marks = [...t.matchAll(MARK('w1'))];
  assert.ok(marks.length >= 1);
  // every line is either in the output or counted in a marker
  const all = lines.join('');
  const plain = t.replace(/^\r\n<ConMan> Console \[w1\] log opened at [^\r]*\.\r\n/, '').replace(MARK('w1'), '');
  const lost = marks.reduce((s, m) => s + Number(m[1]), 0);
  assert.equal(plain.length + lost, all.length);
  // one line per outage and one per resume, a marker per resume
  const outages = count(text(), /cannot write log/);
  assert.ok(outages >= 1);
  assert.equal(count(text(), /Console \[w1\] log .* resumed: \d+ bytes lost/), outages, text());
  assert.equal(marks.length, outages);
  fs.rmSync(dir, { recursive: true });
});

test('the daemon log refuses a symbolic link too, unless logsymlinks=on', () => {
  const dir = tmp();
  const target = path.join(dir, 'target');
  fs.writeFileSync(target, '');
  const link = path.join(dir, 'conchd.log');
  fs.symlinkSync(target, link);
  const errWrite = process.stderr.write;
  let said = '';
  process.stderr.write = ((s: string) => ((said += s), true)) as typeof process.stderr.write;
  try {
    const refused = new DaemonLog({ file: link, echo: false });
    refused.err('nope');
    refused.close();
  } finally {
    process.stderr.write = errWrite;
  }
  assert.match(said, /cannot open log file .*conchd\.log: it is a symbolic link/);
  assert.equal(read(target), '');
  const followed = new DaemonLog({ file: link, echo: false, followSymlinks: true });
  followed.err('yes');
  followed.close();
  assert.match(read(target), /ERR: yes\n$/);
  fs.rmSync(dir, { recursive: true });
});
