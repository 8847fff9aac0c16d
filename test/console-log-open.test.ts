// A console log's file is opened in the background: bytes that arrive
// before the open finishes, during a reopen, or just before close() must all
// land, in order, in the right file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConsoleLog } from '../src/logging/console-log.js';
import { DaemonLog } from '../src/logging/daemon-log.js';
import { waitFor } from './helpers/wait.js';

const OPTS = { lock: false, sanitize: false, timestamp: false };
const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'conch-log-open-'));
const read = (f: string): string => (fs.existsSync(f) ? fs.readFileSync(f, 'latin1') : '');

function daemonLog(dir: string): { dlog: DaemonLog; text: () => string } {
  const file = path.join(dir, 'conchd.log');
  return { dlog: new DaemonLog({ file, echo: false }), text: () => read(file) };
}

/** a console log named `name` under `dir` (`%N.log`, or `pattern`), its open started */
function openedLog(dir: string, name: string, pattern = '%N.log'): ConsoleLog {
  const log = new ConsoleLog(path.join(dir, pattern), OPTS, { name, dev: 'test' }, daemonLog(dir).dlog);
  log.open();
  return log;
}

test('bytes written before the file is open land after the "log opened" line, in order', async () => {
  const dir = tmp();
  const log = openedLog(dir, 'n1', 'sub/%N.log');
  for (let i = 0; i < 100; i++) log.write(Buffer.from(`line ${i}\n`));
  const file = path.join(dir, 'sub', 'n1.log');
  await waitFor(() => read(file).includes('line 99\n'), 'line 99 in the log', 20000);
  const text = read(file);
  assert.match(text, /^\r?\n?<ConMan> Console \[n1\] log opened at /);
  const lines = text.split('\n').filter((l) => l.startsWith('line '));
  assert.deepEqual(lines, Array.from({ length: 100 }, (_, i) => `line ${i}`));
  await log.close();
  fs.rmSync(dir, { recursive: true });
});

test('a replay asked for while the file is still opening waits for the open and has every byte written before it', async () => {
  const dir = tmp();
  const log = openedLog(dir, 'n5');
  log.write(Buffer.from('before the open\n'));
  // the open has not finished: the file is not there yet (the open runs in the background)
  const tail = log.tail(4096);
  log.write(Buffer.from('after the ask\n'));
  const got = await tail;
  assert.ok(got, 'a replay, not null');
  assert.match(got.toString('latin1'), /log opened at .*\r?\n?before the open\n/s);
  await log.close();
  fs.rmSync(dir, { recursive: true });
});

test('close() right after open() still writes every byte before it resolves', async () => {
  const dir = tmp();
  const log = openedLog(dir, 'n2');
  log.write(Buffer.from('first\n'));
  const closed = log.close();
  log.write(Buffer.from('second\n')); // still before the close finished: kept
  await closed;
  const text = read(path.join(dir, 'n2.log'));
  assert.ok(text.endsWith('first\nsecond\n'), JSON.stringify(text));
  fs.rmSync(dir, { recursive: true });
});

test('a reopen (after mv) splits the bytes at the reopen: old file, then the new one', async () => {
  const dir = tmp();
  const { dlog } = daemonLog(dir);
  const file = path.join(dir, 'n3.log');
  const log = new ConsoleLog(file, OPTS, { name: 'n3', dev: 'test' }, dlog);
  log.open();
  let i = 0;
  for (; i < 50; i++) log.write(Buffer.from(`seq ${i}\n`));
  await waitFor(() => read(file).includes('seq 49\n'), 'seq 49 in the log', 20000);
  for (let round = 1; round <= 3; round++) {
    fs.renameSync(file, `${file}.${round}`);
    for (let k = 0; k < 20; k++, i++) log.write(Buffer.from(`seq ${i}\n`));
    log.open(); // SIGHUP
    for (let k = 0; k < 20; k++, i++) log.write(Buffer.from(`seq ${i}\n`));
    // a second reopen while the first is still opening
    if (round === 3) log.open();
    for (let k = 0; k < 20; k++, i++) log.write(Buffer.from(`seq ${i}\n`));
    const last = i - 1;
    await waitFor(() => read(file).includes(`seq ${last}\n`), `seq ${last} in the new file`, 20000);
  }
  await log.close();
  const seqs = (t: string): number[] => [...t.matchAll(/seq (\d+)\n/g)].map((m) => Number(m[1]));
  const parts = [1, 2, 3].map((r) => read(`${file}.${r}`)).concat(read(file));
  // every file but the first starts with its "log opened" line
  for (const t of parts.slice(1)) assert.match(t, /^\r?\n?<ConMan> Console \[n3\] log opened at /);
  assert.deepEqual(parts.flatMap(seqs), Array.from({ length: i }, (_, k) => k));
  // the split is where the reopen was: 50 + 20 in the first file
  assert.equal(seqs(parts[0]!).length, 70);
  fs.rmSync(dir, { recursive: true });
});

test('a log that cannot be opened is named in the daemon log and never throws', async () => {
  const dir = tmp();
  const { dlog, text } = daemonLog(dir);
  fs.writeFileSync(path.join(dir, 'afile'), 'x');
  const log = new ConsoleLog(path.join(dir, 'afile', '%N.log'), OPTS, { name: 'n4', dev: 'test' }, dlog);
  log.open();
  log.write(Buffer.from('lost\n'));
  await waitFor(() => text().includes('cannot open log'), 'the open error in the daemon log', 20000);
  assert.match(text(), /Console \[n4\] cannot open log .*afile\/n4\.log: (ENOTDIR|EEXIST)/);
  log.write(Buffer.from('also dropped\n'));
  await log.close();
  fs.rmSync(dir, { recursive: true });
});
