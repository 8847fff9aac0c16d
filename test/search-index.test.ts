// The time index writer (src/search/index-writer.ts) in process, against
// real files: the record rule, the sidecar's name and layout, the records
// of many logs saved in one message to its thread, a restarted log going on
// with its sidecar (a torn last record padded), a fresh log starting its
// sidecar over, the last records saved at close, and a sidecar that cannot
// be written said once.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { FP_BYTES, fingerprint, header, HEADER_BYTES, indexOfLog, indexPath, readIndex, record, RECORD_BYTES } from '../src/search/index-format.js';
import { indexWriterStats, LogIndex, saveIndex } from '../src/search/index-writer.js';
import { Cleanup, waitFor } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-search-index-');

/** A log conchd is writing: its file, descriptor and index; write() appends and tells the index, as ConsoleLog does at a flush. */
class Log {
  readonly fd: number;
  readonly ix: LogIndex;
  readonly errors: string[] = [];
  private readonly heads: Buffer[] = [];
  constructor(
    readonly file: string,
    readonly name: string,
  ) {
    this.fd = fs.openSync(file, 'a', 0o600);
    cleanup.add(() => fs.closeSync(this.fd));
    const ix = LogIndex.open(file, this.fd, { name, dev: 'test', pattern: path.join(path.dirname(file), '%N.log') }, { err: (t) => this.errors.push(t) });
    assert.ok(ix);
    this.ix = ix;
  }
  write(text: string, now: number): void {
    const b = Buffer.from(text);
    this.heads.push(b);
    fs.writeSync(this.fd, b);
    this.ix.wrote([b], b.length, now);
  }
  /** the sidecar's path (the log has its first FP_BYTES) */
  get side(): string {
    return indexPath(this.file, this.name, fingerprint(Buffer.concat(this.heads).subarray(0, FP_BYTES)));
  }
}

const opened = (name: string, t: number): string => `<ConMan> Console [${name}] log opened at ${new Date(t).toISOString()} ${'.'.repeat(FP_BYTES)}\r\n`;
const records = async (side: string): Promise<[number, number][]> => {
  const ix = await readIndex(side);
  return ix ? Array.from(ix.times, (t, i) => [t, ix.offsets[i]!]) : [];
};

test('records: the first write, then at most one a second once 1 KiB is written, or after 5 s; saved in the sidecar named by the first bytes', async () => {
  const log = new Log(path.join(dir, 'n1.log'), 'n1');
  const t0 = 1_700_000_000_000;
  const first = opened('n1', t0);
  log.write(first, t0); // record (t0, 0)
  let at = first.length;
  log.write('x'.repeat(2000), t0 + 500); // under a second: none
  at += 2000;
  log.write('y'.repeat(100), t0 + 1200); // a second, and 2100 bytes since: record
  const second = at;
  at += 100;
  log.write('z'.repeat(10), t0 + 3000); // 10 bytes, 1.8 s: none
  at += 10;
  log.write('w'.repeat(10), t0 + 6300); // 5.1 s since: record (a trickle)
  await log.ix.save();
  assert.deepEqual(await records(log.side), [
    [t0, 0],
    [t0 + 1200, second],
    [t0 + 6300, at],
  ]);
  // the search finds it by the log's first bytes
  const found = await indexOfLog(log.file, 'n1', false, saveIndex);
  assert.deepEqual(found && Array.from(found.offsets), [0, second, at]);
  assert.equal(fs.readFileSync(log.side).length, HEADER_BYTES + 3 * RECORD_BYTES);
  assert.equal(fs.statSync(log.side).mode & 0o777, 0o600);
  await log.ix.close();
  assert.deepEqual(log.errors, []);
});

test('the records of many logs are saved together: one message to the thread, one append per sidecar', async () => {
  const t0 = 1_700_000_100_000;
  const logs = Array.from({ length: 40 }, (_, i) => new Log(path.join(dir, `many${i}.log`), `many${i}`));
  for (const l of logs) l.write(opened(l.name, t0), t0);
  // named and saved at once, all in this turn's message
  await Promise.all(logs.map((l) => l.ix.save()));
  const before = { ...indexWriterStats };
  for (const [k, l] of logs.entries()) l.write('x'.repeat(1500 + k), t0 + 2000);
  await Promise.all(logs.map((l) => l.ix.save()));
  assert.equal(indexWriterStats.batches - before.batches, 1);
  assert.equal(indexWriterStats.saves - before.saves, logs.length);
  for (const l of logs) assert.deepEqual(await records(l.side), [[t0, 0], [t0 + 2000, opened(l.name, t0).length]]);
  // nothing waiting: no message
  const idle = indexWriterStats.batches;
  await Promise.all(logs.map((l) => l.ix.save()));
  assert.equal(indexWriterStats.batches, idle);
  await Promise.all(logs.map((l) => l.ix.close()));
});

test('a log reopened by a restarted conchd goes on with its sidecar; a torn last record is padded and dropped', async () => {
  const file = path.join(dir, 'r1.log');
  const t0 = 1_700_000_200_000;
  const head = opened('r1', t0);
  fs.writeFileSync(file, head + 'before the restart\r\n');
  const side = indexPath(file, 'r1', fingerprint(Buffer.from(head).subarray(0, FP_BYTES)));
  fs.mkdirSync(path.dirname(side), { recursive: true });
  // a crash in the middle of a record
  fs.writeFileSync(side, Buffer.concat([header(), record(t0, 0), record(t0 + 1000, 50).subarray(0, 7)]));
  const size = fs.statSync(file).size;
  const log = new Log(file, 'r1');
  log.write('after\r\n', t0 + 9000);
  await waitFor(async () => {
    await log.ix.save();
    return (await records(side)).length === 2;
  }, 'the reopened log to save its record');
  assert.deepEqual(await records(side), [
    [t0, 0],
    [t0 + 9000, size],
  ]);
  assert.equal((fs.statSync(side).size - HEADER_BYTES) % RECORD_BYTES, 0);
  await log.ix.close();
});

test('a fresh log whose sidecar exists starts it over; close saves the last records', async () => {
  const file = path.join(dir, 'f1.log');
  const t0 = 1_700_000_300_000;
  const head = opened('f1', t0);
  const side = indexPath(file, 'f1', fingerprint(Buffer.from(head).subarray(0, FP_BYTES)));
  fs.mkdirSync(path.dirname(side), { recursive: true });
  fs.writeFileSync(side, Buffer.concat([header(), record(1, 0), record(2, 10), record(3, 20)]));
  const log = new Log(file, 'f1');
  log.write(head, t0);
  log.write('x'.repeat(4000), t0 + 1500);
  // not saved yet: close saves it
  await log.ix.close();
  assert.deepEqual(await records(side), [
    [t0, 0],
    [t0 + 1500, head.length],
  ]);
  // closed: nothing more is taken
  log.write('y'.repeat(4000), t0 + 9000);
  await log.ix.save();
  assert.equal((await records(side)).length, 2);
});

test('a sidecar that cannot be written is said once, and indexing of that log stops', async () => {
  const sub = path.join(dir, 'blocked');
  fs.mkdirSync(sub);
  // where the index directory should be, a file
  fs.writeFileSync(path.join(sub, '.conch-index'), 'not a directory');
  const log = new Log(path.join(sub, 'b1.log'), 'b1');
  const t0 = 1_700_000_400_000;
  log.write(opened('b1', t0), t0);
  await log.ix.save();
  await waitFor(() => log.errors.length > 0, 'the failure to be said');
  assert.equal(log.errors.length, 1);
  assert.match(log.errors[0]!, /^Console \[b1\] time index .*\.conch-index\/[0-9a-f]{32}\.b1\.idx: .*(not a directory|ENOTDIR).*search by time falls back to reading the log/);
  log.write('x'.repeat(5000), t0 + 2000);
  log.write('x'.repeat(5000), t0 + 4000);
  await log.ix.save();
  await log.ix.close();
  assert.equal(log.errors.length, 1);
});
