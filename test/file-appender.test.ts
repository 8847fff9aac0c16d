import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { FileAppender, lossMarker } from '../src/logging/file-appender.js';
import { LogWriter, type WriterClient } from '../src/logging/log-writer.js';
import { decodeWriteBatch, encodeWriteBatch } from '../src/logging/log-writer-protocol.js';
import { Batcher } from '../src/util/worker-pool.js';
import { waitFor } from './helpers/wait.js';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'conch-appender-'));

test('FileAppender: 20,000 writes of random sizes land in order, byte-exact, before end() resolves', async () => {
  const dir = tmp();
  const file = path.join(dir, 'log');
  const errors: Error[] = [];
  const a = new FileAppender(fs.openSync(file, 'a', 0o600), (e) => errors.push(e));
  const parts: Buffer[] = [];
  for (let i = 0; i < 20_000; i++) {
    const b = crypto.randomBytes(1 + (i % 300));
    parts.push(b);
    if (i % 3 === 0) a.writeAll([b]);
    else a.write(b);
    if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
  }
  await a.end();
  assert.deepEqual(errors, []);
  assert.ok(fs.readFileSync(file).equals(Buffer.concat(parts)));
  a.write(Buffer.from('after end')); // ignored, no throw
  fs.rmSync(dir, { recursive: true });
});

test('FileAppender: a failing descriptor reports one error per outage and never throws', async () => {
  const dir = tmp();
  const file = path.join(dir, 'ro');
  fs.writeFileSync(file, 'x');
  const errors: Error[] = [];
  const a = new FileAppender(fs.openSync(file, 'r'), (e) => errors.push(e));
  for (let i = 0; i < 50; i++) a.write(Buffer.from(`line ${i}\n`));
  await a.end();
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /EBADF/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'x');
  fs.rmSync(dir, { recursive: true });
});

// ---------------------------------------------------------------- outages
//
// A real descriptor that fails and recovers: the write end of a FIFO opened
// O_NONBLOCK. While nobody reads, the pipe fills and write(2) fails with
// EAGAIN (after a partial write, as a disk that fills mid-write); reading
// drains it and writes go through again, as a disk that frees space.

const { O_RDONLY, O_WRONLY, O_NONBLOCK, O_APPEND } = fs.constants;

function fifoPair(dir: string): { w: number; r: number } {
  const p = path.join(dir, 'fifo');
  execFileSync('mkfifo', [p]);
  const r = fs.openSync(p, O_RDONLY | O_NONBLOCK);
  const w = fs.openSync(p, O_WRONLY | O_NONBLOCK);
  return { w, r };
}

/** Read what is in the pipe now. */
function drain(r: number): Buffer {
  const parts: Buffer[] = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(r, buf, 0, buf.length, null);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') break;
      throw e;
    }
    if (n === 0) break;
    parts.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(parts);
}

const MARK = /\r\n<ConMan> Console \[t\] log resumed at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \S+: (\d+) bytes lost while the log could not be written\.\r\n/g;

/**
 * `out` must be `input` with gaps, each replaced by a marker counting it
 * exactly: returns the gaps. (Input bytes are lowercase letters, so a marker
 * cannot be mistaken for input.)
 */
function gaps(out: Buffer, input: Buffer): number[] {
  const text = out.toString('latin1');
  const src = input.toString('latin1');
  const found: number[] = [];
  let pos = 0;
  let last = 0;
  const check = (seg: string): void => {
    if (seg !== src.slice(pos, pos + seg.length)) {
      let k = 0;
      while (seg[k] === src[pos + k]) k++;
      assert.fail(`segment of ${seg.length} at input offset ${pos} (after gaps ${found}) differs at ${k}: ${JSON.stringify(seg.slice(Math.max(0, k - 40), k + 80))}`);
    }
    pos += seg.length;
  };
  for (const m of text.matchAll(MARK)) {
    check(text.slice(last, m.index));
    const n = Number(m[1]);
    found.push(n);
    pos += n;
    last = m.index! + m[0].length;
  }
  check(text.slice(last));
  assert.equal(pos, src.length, 'every input byte is either in the output or counted in a marker');
  return found;
}

function letters(n: number, seed: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = 0x61 + ((i * 7 + seed) % 26);
  return b;
}

/** An appender on the write end of a fresh FIFO, recording its errors and resumes, with fast retries. */
function fifoAppender(holdMax: number, retryMinMs: number, retryMaxMs: number) {
  const dir = tmp();
  const { w, r } = fifoPair(dir);
  const errors: Error[] = [];
  const resumed: number[] = [];
  const a = new FileAppender(w, (e) => errors.push(e), {
    marker: (lost, at) => lossMarker('t', lost, at),
    onResume: (n) => resumed.push(n),
    holdMax,
    retryMinMs,
    retryMaxMs,
  });
  return { dir, r, a, errors, resumed };
}

test('FileAppender: a write outage (full pipe, partial writes) leaves a marker counting exactly the bytes lost, then goes on', async () => {
  const { dir, r, a, errors, resumed } = fifoAppender(20_000, 20, 40);
  const input: Buffer[] = [];
  const out: Buffer[] = [];
  // 300 KiB without reading: the 64 KiB pipe fills, then bytes are held (20 KB at most) and the rest dropped
  for (let i = 0; i < 300; i++) {
    const b = letters(1024 + (i % 7), i);
    input.push(b);
    a.write(b);
    if (i % 10 === 0) await new Promise((res) => setImmediate(res));
  }
  await waitFor(() => errors.length > 0, 'the write error');
  assert.match(errors[0]!.message, /EAGAIN/);
  // the disk "frees up": read until the marker and what follows it are through
  for (let i = 0; i < 50; i++) {
    const b = letters(500, 1000 + i);
    input.push(b);
    a.write(b);
  }
  const want = Buffer.concat(input);
  await waitFor(() => {
    out.push(drain(r));
    return resumed.length > 0 && Buffer.concat(out).toString('latin1').endsWith(want.subarray(-500).toString('latin1'));
  }, 'the log to resume and take the last bytes', 20000);
  await a.end();
  out.push(drain(r));
  const found = gaps(Buffer.concat(out), want);
  assert.ok(found.length >= 1 && found[0]! > 0, `a marker counts the lost bytes: ${found}`);
  assert.equal(errors.length, 1, 'one error per outage');
  assert.deepEqual(resumed, found.slice(0, resumed.length));
  fs.closeSync(r);
  fs.rmSync(dir, { recursive: true });
});

test('FileAppender: repeated outages (and retries that fail) each get their own marker; every byte is written or counted', async () => {
  const { dir, r, a, errors, resumed } = fifoAppender(8192, 10, 20);
  const input: Buffer[] = [];
  const out: Buffer[] = [];
  for (let round = 0; round < 3; round++) {
    // fill the pipe, let a few retries fail against the still-full pipe
    for (let i = 0; i < 120; i++) {
      const b = letters(1000, round * 1000 + i);
      input.push(b);
      a.write(b);
      if (i % 8 === 0) await new Promise((res) => setTimeout(res, 1));
    }
    await waitFor(() => errors.length > round, `outage ${round + 1}`);
    // drain until the log has resumed
    await waitFor(() => {
      out.push(drain(r));
      return resumed.length > round;
    }, `resume ${round + 1}`);
  }
  await a.end();
  out.push(drain(r));
  const found = gaps(Buffer.concat(out), Buffer.concat(input));
  assert.equal(errors.length, 3);
  assert.ok(found.length >= 3, `three markers at least: ${found}`);
  fs.closeSync(r);
  fs.rmSync(dir, { recursive: true });
});

test('FileAppender: bytes still held at end() get one last try; what fails is reported, not dropped', async () => {
  const dir = tmp();
  const { w, r } = fifoPair(dir);
  const endLost: number[] = [];
  const a = new FileAppender(w, () => {}, {
    marker: (lost, at) => lossMarker('t', lost, at),
    onEndLost: (n) => endLost.push(n),
    holdMax: 4096,
    retryMinMs: 60_000,
  });
  const input: Buffer[] = [];
  for (let i = 0; i < 100; i++) {
    const b = letters(1000, i);
    input.push(b);
    a.write(b);
    if (i % 10 === 0) await new Promise((res) => setImmediate(res));
  }
  // the retry is a minute away: end() must not wait for it, and the pipe is still full
  await a.end();
  const out = drain(r);
  const total = Buffer.concat(input).length;
  // written + lost (in a marker, or reported at end) = everything
  const inMarkers = [...out.toString('latin1').matchAll(MARK)].reduce((s, m) => s + Number(m[1]), 0);
  const plain = out.toString('latin1').replace(MARK, '').length;
  assert.equal(endLost.length, 1);
  assert.equal(plain + inMarkers + endLost[0]!, total);
  fs.closeSync(r);
  fs.rmSync(dir, { recursive: true });
});

test('LogWriter: after a failed write the thread skips the descriptor (reported) until resume(); a closed number reused starts clean', async () => {
  const dir = tmp();
  const file = path.join(dir, 'ro');
  fs.writeFileSync(file, 'x');
  const writer = new LogWriter();
  const reports: [string, string | null, number, number][] = [];
  const client = (name: string): WriterClient => ({
    failed: (m, bytes, written) => reports.push([name, m, bytes, written]),
    wrote: (bytes) => reports.push([name, 'ok', bytes, bytes]),
  });
  const c = client('ro');
  const ro = fs.openSync(file, 'r');
  writer.write(c, ro, Buffer.from('aaaa'));
  await new Promise((res) => setImmediate(res));
  writer.write(c, ro, Buffer.from('bbbbbb'));
  await writer.close(c, ro);
  assert.equal(reports[0]![0], 'ro');
  assert.match(String(reports[0]![1]), /EBADF/);
  assert.deepEqual(reports.slice(0, 2).map((x) => x.slice(2)), [[4, 0], [6, 0]]);
  assert.equal(reports[1]![1], null, 'the second write was skipped, not tried');
  // the number is free again: a new file likely gets it, and must be written
  const fd = fs.openSync(path.join(dir, 'new'), O_WRONLY | O_APPEND | fs.constants.O_CREAT, 0o600);
  const n = client('new');
  writer.write(n, fd, Buffer.from('fresh\n'));
  await writer.close(n, fd);
  assert.deepEqual(reports.at(-1), ['new', 'ok', 6, 6], `fd ${fd} (was ${ro})`);
  assert.equal(fs.readFileSync(path.join(dir, 'new'), 'utf8'), 'fresh\n');
  fs.rmSync(dir, { recursive: true });
});

test('LogWriter: a tail is read after every write queued before it, from a write-only descriptor; a FIFO is not read', async () => {
  const dir = tmp();
  const file = path.join(dir, 'log');
  const writer = new LogWriter();
  const c: WriterClient = { failed: () => assert.fail('no write fails here'), wrote: () => {} };
  const fd = fs.openSync(file, O_WRONLY | O_APPEND | fs.constants.O_CREAT, 0o600);
  writer.write(c, fd, Buffer.from('0123456789'));
  await new Promise((res) => setImmediate(res));
  writer.write(c, fd, Buffer.from('abcdef'));
  // same turn as the write: the thread writes it first
  const [all, last4] = await Promise.all([writer.tail(fd, 1000), writer.tail(fd, 4)]);
  assert.equal(all.toString(), '0123456789abcdef');
  assert.equal(last4.toString(), 'cdef');
  assert.ok(Buffer.isBuffer(all));
  // a FIFO at the log path (opened by a reader's presence): reading it would take the reader's bytes
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const r = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const w = fs.openSync(fifo, O_WRONLY | fs.constants.O_NONBLOCK);
  await assert.rejects(writer.tail(w, 100), /not a regular file/);
  await writer.close(c, w);
  fs.closeSync(r);
  await writer.close(c, fd);
  fs.rmSync(dir, { recursive: true });
});

test('LogWriter: a writer thread that dies fails its batches with the reason, and their closes still happen', async () => {
  const dying = 'process.exit(3);';
  const writer = new LogWriter(new URL(`data:text/javascript,${encodeURIComponent(dying)}`));
  const reports: [string | null, number, number][] = [];
  const c: WriterClient = { failed: (m, bytes, written) => reports.push([m, bytes, written]), wrote: () => assert.fail('nothing is written') };
  const dir = tmp();
  const fd = fs.openSync(path.join(dir, 'log'), 'a', 0o600);
  writer.write(c, fd, Buffer.from('abc'));
  writer.write(c, fd, Buffer.from('defg'));
  await writer.close(c, fd);
  assert.deepEqual(reports, [['log writer thread stopped: exit code 3', 7, 0]]);
  assert.throws(() => fs.fstatSync(fd), /EBADF/, 'closed');
  fs.rmSync(dir, { recursive: true });
});

test('LogWriter batches as they cross: resumes, then writes (a client\'s consecutive bytes joined), then tails, then closes', () => {
  const batch = new Batcher<never>(() => {});
  batch.addBytes(5, Buffer.from('ab'));
  batch.addBytes(5, Buffer.from('cd'), true);
  batch.addBytes(7, Buffer.from('xyz'), true); // another descriptor: an entry of its own
  batch.addBytes(5, Buffer.from('!'));
  const taken = batch.take();
  assert.deepEqual(taken.lens, [4, 3, 1]);
  const m = encodeWriteBatch(9, taken, [5], [5, 100, 7, 3], [7]);
  const steps: string[] = [];
  const { id, tails } = decodeWriteBatch(structuredClone(m.wire, { transfer: m.transfer }), {
    resume: (fd) => steps.push(`resume ${fd}`),
    write: (fd, b, i) => steps.push(`${i}: ${fd} ${Buffer.isBuffer(b) ? b.toString() : 'not a Buffer'}`),
    tail: (fd, max) => (steps.push(`tail ${fd} ${max}`), fd === 5 ? Buffer.from('abcd!') : 'no such file'),
    closing: (fd) => steps.push(`closing ${fd}`),
  });
  assert.equal(id, 9);
  assert.deepEqual(steps, ['resume 5', '0: 5 abcd', '1: 7 xyz', '2: 5 !', 'tail 5 100', 'tail 7 3', 'closing 7']);
  assert.deepEqual(tails, [Buffer.from('abcd!'), 'no such file']);
});
