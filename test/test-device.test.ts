// The load-test console `test:`: burst size, charset, continuity, timing
// options, echo, and that close() stops everything.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { waitFor } from './helpers/wait.js';
import { TestDevice } from '../src/devices/test-device.js';
import type { TestOpts } from '../src/config/types.js';
import { Recorder } from './helpers/recorder.js';

class BurstRecorder extends Recorder {
  /** complete bursts: lines ended by CRLF */
  get bursts(): string[] {
    return this.text.split('\r\n').slice(0, -1);
  }
}

const opts = (o: Partial<TestOpts>): TestOpts => ({ bytes: 1024, maxMs: -1, minMs: -1, prob: 100, ...o });

/** The characters a test console emits, in order: 0x20..0x7E, round and round. */
function expected(from: number, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(0x20 + ((from + i) % 95));
  return s;
}

describe('test: device', () => {
  test('label, backoff and type', () => {
    const d = new TestDevice({ opts: opts({}) });
    assert.equal(d.label(), '"test:"');
    assert.equal(d.type, 'test');
    assert.deepEqual(d.backoff, { minMs: 1000, maxMs: 60000, healthyMs: 15000 });
  });

  test('bursts of b printable characters then CRLF, continuing the sequence', async () => {
    const d = new TestDevice({ opts: opts({ bytes: 50, maxMs: 10, minMs: 5 }) });
    const r = new BurstRecorder();
    d.connect(r);
    assert.equal(r.ups, 0, 'onUp is not called from inside connect()');
    await waitFor(() => r.bursts.length >= 5, '5 bursts');
    await d.close();
    assert.equal(r.ups, 1);
    const bursts = r.bursts;
    bursts.forEach((b, i) => {
      assert.equal(b.length, 50, `burst ${i} size`);
      assert.match(b, /^[\x20-\x7e]+$/, `burst ${i} charset`);
      assert.equal(b, expected(i * 50, 50), `burst ${i} continues the sequence`);
    });
  });

  test('a burst larger than one chunk arrives whole, in pieces', async () => {
    const d = new TestDevice({ opts: opts({ bytes: 40000, maxMs: 1000 }) });
    const r = new BurstRecorder();
    d.connect(r);
    await waitFor(() => r.bursts.length >= 1, 'first burst');
    await d.close();
    assert.ok(r.chunks.length >= 3, 'sent in several pieces');
    assert.equal(r.bursts[0], expected(0, 40000));
  });

  test('close() stops the bursts and leaves no timer behind', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((x) => x === 'Timeout').length;
    const base = timers();
    const d = new TestDevice({ opts: opts({ bytes: 10, maxMs: 5, minMs: 1 }) });
    const r = new BurstRecorder();
    d.connect(r);
    await waitFor(() => r.bursts.length >= 2, 'bursts');
    await d.close();
    const n = r.chunks.length;
    assert.equal(timers(), base, 'no timer left after close()');
    // a second device proves time passes; the closed one stays silent
    const other = new TestDevice({ opts: opts({ bytes: 10, maxMs: 5, minMs: 1 }) });
    const r2 = new BurstRecorder();
    other.connect(r2);
    await waitFor(() => r2.bursts.length >= 10, 'the other device to run for a while');
    await other.close();
    assert.equal(r.chunks.length, n);
    assert.equal(r.downs.length, 0, 'close() reports no onDown');
    // and it can be connected again
    d.connect(r);
    await waitFor(() => r.ups === 2 && r.chunks.length > n, 'bursts after reconnecting');
    await d.close();
  });

  test('p is the chance of a burst per tick; p:0 gives no output', async () => {
    const seq = [0.5, 0.9, 0.1, 0.7, 0.2, 0.95];
    let i = 0;
    // bursts happen when random*100 < p = 60: 0.5 yes, 0.9 no, 0.1 yes, 0.7 no, 0.2 yes, 0.95 no
    const d = new TestDevice({ opts: opts({ bytes: 3, maxMs: 1, prob: 60 }) }, { random: () => seq[i++ % seq.length] });
    const r = new BurstRecorder();
    d.connect(r);
    await waitFor(() => i >= 6, '6 ticks');
    await d.close();
    assert.deepEqual(r.bursts.slice(0, 3), [expected(0, 3), expected(3, 3), expected(6, 3)]);
    assert.ok(r.bursts.length <= Math.ceil(i / 2));

    let ticks = 0;
    const quiet = new TestDevice({ opts: opts({ bytes: 3, maxMs: 1, prob: 0 }) }, { random: () => (ticks++, 0) });
    const rq = new BurstRecorder();
    quiet.connect(rq);
    await waitFor(() => ticks >= 3 && rq.ups === 1, 'a few ticks');
    await quiet.close();
    assert.equal(rq.chunks.length, 0);
  });

  test('writes are discarded like conman; echo on request', async () => {
    const d = new TestDevice({ opts: opts({ bytes: 0, maxMs: 1000 }) });
    const r = new BurstRecorder();
    d.connect(r);
    await waitFor(() => r.ups === 1, 'up');
    d.write(Buffer.from('typed'));
    d.sendBreak();
    await d.close();
    assert.equal(r.text, '');

    const e = new TestDevice({ opts: opts({ bytes: 0, maxMs: 1000 }) }, { echo: true });
    const re = new BurstRecorder();
    e.write(Buffer.from('dropped while down'));
    e.connect(re);
    await waitFor(() => re.ups === 1, 'up');
    e.write(Buffer.from('typed\r'));
    await e.close();
    assert.equal(re.text, 'typed\r');
  });
});
