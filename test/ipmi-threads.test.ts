// The main thread's side of IPMI threads (src/devices/ipmi-threads.ts) when a
// thread dies: its consoles go down with the reason, a reconnect starts a
// new thread, and a close still returns. And the messages each way
// (ipmi-thread-messages.ts) as they cross: Buffers arrive as Buffers.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiThreads } from '../src/devices/ipmi-threads.js';
import {
  decodeFromIpmiThread,
  decodeToIpmiThread,
  encodeFromIpmiThread,
  encodeToIpmiThread,
  type IpmiThreadBatch,
  type IpmiThreadEvent,
  type ToIpmiThread,
} from '../src/devices/ipmi-thread-messages.js';
import { Batcher, type Encoded } from '../src/util/worker-pool.js';
import { defaultIpmiOpts } from '../src/config/opts.js';
import type { DeviceHandler } from '../src/devices/device.js';
import { waitFor } from './helpers/wait.js';

const spec = { host: '127.0.0.1', port: 9, opts: { ...defaultIpmiOpts(), user: 'admin', password: Buffer.from('pw') } };

/** what the other side of postMessage gets */
const cross = <W>(m: Encoded<W>): W => structuredClone(m.wire, { transfer: m.transfer });

test('a dead IPMI thread takes its consoles down with the reason; they reconnect through a new one', async () => {
  const threads = new IpmiThreads(1, new URL('./helpers/dying-shard.js', import.meta.url));
  const devs = [threads.device(spec, { consoleName: 'a', steal: 'polite' }), threads.device(spec, { consoleName: 'b', steal: 'polite' })];
  const downs: string[][] = [[], []];
  const handler = (i: number): DeviceHandler => ({
    onData: () => assert.fail('no data from a dead thread'),
    onUp: () => assert.fail('not up'),
    onDown: (r) => downs[i]!.push(r),
    onReady: () => {},
    onNotice: () => {},
  });
  devs.forEach((d, i) => d.connect(handler(i)));
  await waitFor(() => downs.every((d) => d.length === 1), 'both consoles down', 20000);
  assert.deepEqual(downs, [['IPMI thread stopped: exit code 3'], ['IPMI thread stopped: exit code 3']]);

  devs[0]!.connect(handler(0));
  await waitFor(() => downs[0]!.length === 2, 'the reconnect reaches a new thread (which dies too)', 20000);
  assert.equal(downs[0]![1], 'IPMI thread stopped: exit code 3');
  assert.equal(downs[1]!.length, 1, 'the other console stays as it was');
  // a close on a thread that dies still returns
  await devs[1]!.close();
  assert.equal(devs[0]!.label(), '<127.0.0.1:9>');
});

test('terminated IPMI threads report no console down, and a close afterwards returns', async () => {
  const silent = 'import { parentPort } from "node:worker_threads"; parentPort.on("message", () => {});';
  const threads = new IpmiThreads(2, new URL(`data:text/javascript,${encodeURIComponent(silent)}`));
  const devs = [0, 1].map((i) => threads.device(spec, { consoleName: `c${i}`, steal: 'polite' }));
  const downs: string[] = [];
  for (const d of devs) d.connect({ onData: () => {}, onUp: () => {}, onDown: (r) => downs.push(r), onReady: () => {}, onNotice: () => {} });
  const closing = devs[0]!.close(); // its answer never comes: terminate() settles it
  await threads.terminate();
  await closing;
  await devs[1]!.close();
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(downs, []);
});

test('main → IPMI thread: Buffers cross as Buffers (the password, the key, written bytes: only those)', () => {
  const opts = { ...spec.opts, password: Buffer.from('secret'), kg: Buffer.from('0123456789', 'latin1') };
  const add: ToIpmiThread = { t: 'add', id: 3, spec: { ...spec, opts }, consoleName: 'n1', steal: 'never', earlier: [{ sid: 7, at: 1 }], tellSessions: true };
  const sent = encodeToIpmiThread(add);
  assert.ok(sent.wire.t === 'add' && sent.wire.spec.opts.password.buffer.byteLength === 6, 'the password alone, not its pool');
  const got = decodeToIpmiThread(cross(sent));
  assert.ok(got.t === 'add' && Buffer.isBuffer(got.spec.opts.password) && Buffer.isBuffer(got.spec.opts.kg));
  assert.deepEqual(got, add);
  const noKg = decodeToIpmiThread(cross(encodeToIpmiThread({ ...add, spec: { ...spec, opts: { ...opts, kg: null } } })));
  assert.ok(noKg.t === 'add' && noKg.spec.opts.kg === null);

  const big = Buffer.from('..typed..');
  const data = big.subarray(2, 7);
  const w = encodeToIpmiThread({ t: 'write', id: 3, data, ack: 70000 });
  assert.equal(w.transfer[0]!.byteLength, 5, 'a copy of just the bytes written is transferred');
  const m = decodeToIpmiThread(cross(w));
  assert.ok(m.t === 'write' && Buffer.isBuffer(m.data));
  assert.deepEqual(m, { t: 'write', id: 3, data: Buffer.from('typed'), ack: 70000 });
  assert.equal(big.toString(), '..typed..', 'the caller keeps its buffer');
  assert.deepEqual(decodeToIpmiThread(cross(encodeToIpmiThread({ t: 'force', id: 3, by: 'op', req: 9 }))), { t: 'force', id: 3, by: 'op', req: 9 });
});

test('IPMI thread → main: a batch of events arrives in order, console output as Buffers', () => {
  const sent: [number, IpmiThreadEvent][] = [
    [1, { k: 'up' }],
    [1, { k: 'data', data: Buffer.from('login: ') }],
    [2, { k: 'notice', text: 'SOL session taken over' }],
    [2, { k: 'held', since: 1234 }],
    [1, { k: 'data', data: Buffer.from('root') }],
    [2, { k: 'done', req: 5, error: null }],
    [1, { k: 'data', data: Buffer.alloc(0) }],
    [2, { k: 'down', reason: 'BMC gone' }],
  ];
  const batch: IpmiThreadBatch = new Batcher(() => {});
  for (const [id, ev] of sent) encodeFromIpmiThread(batch, id, ev);
  // whether a console has something waiting (a typed-at console's echo goes ahead of the batch only if not)
  assert.ok(batch.has(1) && batch.has(2) && !batch.has(3));
  const got: [number, IpmiThreadEvent][] = [];
  decodeFromIpmiThread(
    cross(batch.take()),
    (id, ev) => got.push([id, ev]),
    (id, data) => got.push([id, { k: 'data', data }]),
  );
  assert.deepEqual(got, sent);
  assert.ok(got.every(([, ev]) => ev.k !== 'data' || Buffer.isBuffer(ev.data)));
  assert.equal(batch.size, 0, 'the next batch starts empty');
  assert.ok(!batch.has(1), 'nothing of console 1 waits in the next batch');
});
