// The IPMI transport hands a typed-at session's datagrams on as soon as they
// are read, and the fleet's in slices between the loop's reads: an echo never
// waits behind a burst, a burst larger than a slice is finished in later
// turns with nothing lost, and each session's datagrams keep their order.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type * as dgram from 'node:dgram';
import { IpmiTransport, type TransportClient } from '../src/ipmi/transport.js';
import { encodeV20, PT_SOL, type Datagram } from '../src/ipmi/packet.js';

/** a transport fed by the test instead of a socket */
class FedTransport extends IpmiTransport {
  feed(sid: number, seq: number, port: number): void {
    const b = encodeV20(PT_SOL, sid, seq, Buffer.from([seq & 0xff]), null);
    const rinfo: dgram.RemoteInfo = { address: '127.0.0.1', port, family: 'IPv4', size: b.length };
    this.dispatch(b, rinfo);
  }
}

/** a session that records what it receives, optionally spending `costUs` on each (a session's work on a datagram) */
class Recorder implements TransportClient {
  readonly address = '127.0.0.1';
  urgentUntil = 0;
  waiting = 0;
  readonly got: number[] = [];
  constructor(
    readonly sidM: number,
    readonly port: number,
    private readonly log: string[],
    private readonly costUs = 0,
  ) {}
  receive(d: Datagram): void {
    assert.equal(d.kind, 'v20');
    const seq = d.kind === 'v20' ? d.seq : -1;
    this.got.push(seq);
    this.log.push(`${this.sidM}:${seq}`);
    const end = performance.now() + this.costUs / 1000;
    while (performance.now() < end) {
      /* the work of checking, decrypting and acknowledging */
    }
  }
}

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));
const until = async (cond: () => boolean, what: string): Promise<void> => {
  const end = Date.now() + 30000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

test("a typed-at session's datagram is handled at once, ahead of a burst read before it", async () => {
  const t = new FedTransport();
  const log: string[] = [];
  const fleet = Array.from({ length: 100 }, (_, i) => new Recorder(1000 + i, 20000 + i, log, 20));
  const typed = new Recorder(7, 30000, log);
  for (const c of [...fleet, typed]) t.register(c);
  typed.urgentUntil = performance.now() + 60000;

  // one read turn: 5,000 of the fleet's datagrams (100 ms of their work), then the echo
  for (let k = 1; k <= 50; k++) for (const c of fleet) t.feed(c.sidM, k, c.port);
  t.feed(typed.sidM, 1, typed.port);
  assert.deepEqual(typed.got, [1], 'the echo was handed on as it was read');
  assert.equal(log.length, 1, 'none of the burst before it');
  assert.equal(t.queued, 5000);

  // the burst is finished in later turns, the loop running between them
  let timerRanAt = -1;
  setTimeout(() => (timerRanAt = log.length), 0);
  await turn();
  assert.ok(t.queued > 0 && t.queued < 5000, `one slice handles part of the burst (${5000 - t.queued} of 5000)`);
  // a key read meanwhile is handled at once too
  t.feed(typed.sidM, 2, typed.port);
  assert.deepEqual(typed.got, [1, 2]);
  await until(() => t.queued === 0, 'the burst handled');
  assert.ok(timerRanAt > 0 && timerRanAt < 5002, `a timer ran between slices (after ${timerRanAt} datagrams)`);
  for (const c of fleet) assert.deepEqual(c.got, Array.from({ length: 50 }, (_, i) => i + 1), `session ${c.sidM}: every datagram once, in order`);
  for (const c of fleet) assert.equal(c.waiting, 0);
});

test("a session typed at while its own datagrams wait keeps its order; a closed session's waiting datagrams are dropped", async () => {
  const t = new FedTransport();
  const log: string[] = [];
  const a = new Recorder(11, 21000, log);
  const b = new Recorder(12, 21001, log);
  t.register(a);
  t.register(b);
  t.feed(a.sidM, 1, a.port);
  t.feed(a.sidM, 2, a.port);
  t.feed(b.sidM, 1, b.port);
  // typed at now: its next datagram must not overtake the two queued
  a.urgentUntil = performance.now() + 60000;
  t.feed(a.sidM, 3, a.port);
  assert.deepEqual(a.got, []);
  t.unregister(b);
  const dropped = t.stats.dropped;
  await until(() => t.queued === 0, 'queue handled');
  assert.deepEqual(a.got, [1, 2, 3]);
  assert.deepEqual(b.got, [], 'nothing delivered to a closed session');
  assert.equal(t.stats.dropped, dropped + 1);
  // with nothing of its own queued, the typed-at session's datagrams go at once again
  t.feed(a.sidM, 4, a.port);
  assert.deepEqual(a.got, [1, 2, 3, 4]);
});

test('a backlog past the bound is handled in full, in order, nothing lost', async () => {
  const t = new FedTransport();
  const log: string[] = [];
  const c = new Recorder(21, 22000, log);
  t.register(c);
  const n = 40000;
  for (let k = 1; k <= n; k++) t.feed(c.sidM, k, c.port);
  assert.ok(c.got.length > 0 && t.queued < n, 'the bound made the backlog be handled before more was queued');
  await until(() => t.queued === 0, 'backlog handled');
  assert.equal(c.got.length, n);
  assert.ok(
    c.got.every((q, i) => q === i + 1),
    'in order',
  );
});

test('a datagram from an unknown peer is dropped and counted', async () => {
  const t = new FedTransport();
  const log: string[] = [];
  const c = new Recorder(31, 23000, log);
  t.register(c);
  const dropped = t.stats.dropped;
  // session ID 0: routed by its peer, which no session talks to
  const b = encodeV20(PT_SOL, 0, 0, Buffer.alloc(1), null);
  (t as unknown as { dispatch(b: Buffer, r: dgram.RemoteInfo): void }).dispatch(b, { address: '127.0.0.9', port: 9, family: 'IPv4', size: b.length });
  await until(() => t.queued === 0, 'queue handled');
  assert.equal(t.stats.dropped, dropped + 1);
  assert.match(t.lastDrop, /unknown peer 127\.0\.0\.9\|9/);
});
