// The main thread's stand-in for an IPMI console on an IPMI thread bounds
// the input in flight to the thread: past the high-water mark it asks the
// thread to confirm, and reports the drain when the thread has taken it.
// The thread here is scripted (with the real messages of
// ipmi-thread-messages.ts): it confirms only once it has been "released"
// (by a break, the one other message a test can send it).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiThreads } from '../src/devices/ipmi-threads.js';
import { defaultIpmiOpts } from '../src/config/opts.js';
import { INPUT_HIGH_WATER, type DeviceHandler } from '../src/devices/device.js';
import { waitFor } from './helpers/wait.js';

const lib = (p: string): string => new URL(p, import.meta.url).href;

const THREAD = `
import { Batcher, poolThread } from '${lib('../src/util/worker-pool.js')}';
import { decodeToIpmiThread, encodeFromIpmiThread } from '${lib('../src/devices/ipmi-thread-messages.js')}';
const batch = new Batcher(() => post(batch.take()));
const say = (id, ev) => {
  encodeFromIpmiThread(batch, id, ev);
  batch.schedule();
};
let released = false;
let held = [];
const post = poolThread((w) => {
  const m = decodeToIpmiThread(w);
  if (m.t === 'connect') say(m.id, { k: 'up' });
  else if (m.t === 'write' && m.ack !== undefined) {
    if (!Buffer.isBuffer(m.data)) throw new Error('write data is not a Buffer');
    if (released) say(m.id, { k: 'drained', upTo: m.ack });
    else held.push([m.id, m.ack]);
  } else if (m.t === 'break') {
    released = true;
    for (const [id, upTo] of held) say(id, { k: 'drained', upTo });
    held = [];
  } else if (m.t === 'close') say(m.id, { k: 'done', req: m.req, error: null });
});
`;

test('input in flight to an IPMI thread: full at the high-water mark, drained when the thread has taken it', async () => {
  const threads = new IpmiThreads(1, new URL(`data:text/javascript,${encodeURIComponent(THREAD)}`));
  const spec = { host: '127.0.0.1', port: 9, opts: { ...defaultIpmiOpts(), user: 'admin', password: Buffer.from('pw') } };
  const dev = threads.device(spec, { consoleName: 'a', steal: 'polite' });
  let ups = 0;
  let drains = 0;
  const h: DeviceHandler = {
    onData: () => {},
    onUp: () => void ups++,
    onDown: (r) => assert.fail(`down: ${r}`),
    onReady: () => {},
    onNotice: () => {},
    onDrain: () => void drains++,
  };
  dev.connect(h);
  await waitFor(() => ups === 1, 'up');
  const chunk = Buffer.alloc(16 * 1024, 0x61);
  let writes = 0;
  while (dev.write(chunk) && writes < 100) writes++;
  assert.equal(writes, INPUT_HIGH_WATER / chunk.length - 1, 'full at the mark');
  assert.equal(dev.queued(), INPUT_HIGH_WATER);
  assert.equal(dev.write(chunk), false, 'still full');
  assert.equal(dev.queued(), INPUT_HIGH_WATER + chunk.length);
  assert.equal(drains, 0);
  dev.sendBreak(); // the thread takes its input from now on
  await waitFor(() => drains === 1, 'the drain');
  await waitFor(() => dev.queued() === 0, 'every write confirmed');
  assert.equal(drains, 1);
  assert.equal(dev.write(chunk), true, 'takes input again');
  await dev.close();
  assert.equal(dev.queued(), 0, 'a closed console holds nothing');
  await threads.terminate();
});
