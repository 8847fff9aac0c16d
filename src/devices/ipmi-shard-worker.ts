// An IPMI thread: runs the IpmiDevices (sessions, SOL, steal policy) of its
// share of the IPMI consoles on a UDP socket of its own, and posts what they
// say to the main thread in batches gathered over 10 ms (at once for a
// console just typed at, so that its echo does not wait for the batch). At
// 1,000 consoles a batch per event-loop turn woke the main thread ~700 times a
// second, and each wake-up took the CPU from the IPMI thread that posted it.
// The main thread keeps the logs and the clients. See ipmi-shard.ts for the other side.

import { parentPort } from 'node:worker_threads';
import type { DeviceHandler } from './device.js';
import { IpmiDevice } from './ipmi.js';
import type { ShardCtl, ShardEvents, ToShard } from './ipmi-shard-protocol.js';

const port = parentPort!;
const devices = new Map<number, IpmiDevice>();

// the batch's events, posted by flush()
let ids: number[] = [];
let lens: number[] = [];
let ctl: ShardCtl[] = [];
let bufs: Buffer[] = [];
let bytes = 0;
/** consoles with a control event in this batch: their `held` state is sent at the end of it */
let touched = new Set<number>();
let flushing = false;
/** when each console was last typed at (ms, monotonic): its output is posted at once for a while */
const typedAt = new Map<number, number>();
/** how long after a keystroke a console's output skips the batch */
const TYPED_MS = 2000;
/** how long other output gathers before it is posted: fewer wake-ups of the main thread */
const BATCH_MS = 10;

function schedule(): void {
  if (flushing) return;
  flushing = true;
  setTimeout(flush, BATCH_MS);
}

function pushCtl(id: number, c: ShardCtl): void {
  ids.push(id);
  lens.push(-1);
  ctl.push(c);
}

function control(id: number, c: ShardCtl): void {
  pushCtl(id, c);
  if (c.k !== 'done' && c.k !== 'drained') touched.add(id);
  schedule();
}

function flush(): void {
  flushing = false;
  // the state after this batch's notices (a takeover's notice comes before its state change)
  for (const id of touched) {
    const dev = devices.get(id);
    if (dev) pushCtl(id, { k: 'held', since: dev.status().heldElsewhereSince });
  }
  touched = new Set();
  if (ids.length === 0) return;
  const data = Buffer.allocUnsafeSlow(bytes);
  let off = 0;
  for (const b of bufs) off += b.copy(data, off);
  const ev: ShardEvents = { ids: Int32Array.from(ids), lens: Int32Array.from(lens), ctl, data: data.buffer as ArrayBuffer };
  ids = [];
  lens = [];
  ctl = [];
  bufs = [];
  bytes = 0;
  port.postMessage(ev, [ev.data, ev.ids.buffer as ArrayBuffer, ev.lens.buffer as ArrayBuffer]);
}

function handler(id: number): DeviceHandler {
  return {
    onData: (b) => {
      ids.push(id);
      lens.push(b.length);
      bufs.push(b);
      bytes += b.length;
      // an echo should not wait for the batch
      const t = typedAt.get(id);
      if (t !== undefined && performance.now() - t < TYPED_MS) flush();
      else schedule();
    },
    onUp: () => control(id, { k: 'up' }),
    onDown: (reason) => control(id, { k: 'down', reason }),
    onReady: () => {},
    onNotice: (text) => control(id, { k: 'notice', text }),
  };
}

const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function answer(id: number, req: number, p: Promise<void>): void {
  p.then(
    () => control(id, { k: 'done', req, error: null }),
    (e: unknown) => control(id, { k: 'done', req, error: (e as Error).message }),
  );
}

port.on('message', (m: ToShard) => {
  if (m.t === 'add') {
    // Buffers arrive as plain Uint8Arrays
    const o = m.spec.opts;
    const opts = { ...o, password: asBuffer(o.password), kg: o.kg ? asBuffer(o.kg) : null };
    devices.set(m.id, new IpmiDevice({ ...m.spec, opts }, { consoleName: m.consoleName, steal: m.steal, stateDir: m.stateDir }));
    return;
  }
  const dev = devices.get(m.id);
  if (!dev) return;
  switch (m.t) {
    case 'connect':
      return dev.connect(handler(m.id));
    case 'write':
      typedAt.set(m.id, performance.now());
      dev.write(asBuffer(m.data));
      if (m.ack !== undefined) control(m.id, { k: 'drained', upTo: m.ack });
      return;
    case 'break':
      return dev.sendBreak();
    case 'force':
      return answer(m.id, m.req, dev.force(m.by));
    case 'close':
      typedAt.delete(m.id);
      return answer(m.id, m.req, dev.close());
    case 'remove':
      typedAt.delete(m.id);
      devices.delete(m.id);
      return;
  }
});
