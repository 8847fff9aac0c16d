// The main thread's side of IPMI threads (src/devices/ipmi-shard.ts) when a
// thread dies: its consoles go down with the reason, a reconnect starts a
// new thread, and a close still returns.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiShards } from '../src/devices/ipmi-shard.js';
import { defaultIpmiOpts } from '../src/config/opts.js';
import type { DeviceHandler } from '../src/devices/device.js';
import { waitFor } from './helpers/wait.js';

test('a dead IPMI thread takes its consoles down with the reason; they reconnect through a new one', async () => {
  const shards = new IpmiShards(1, new URL('./helpers/dying-shard.js', import.meta.url));
  const spec = { host: '127.0.0.1', port: 9, opts: { ...defaultIpmiOpts(), user: 'admin', password: Buffer.from('pw') } };
  const devs = [shards.device(spec, { consoleName: 'a', steal: 'polite' }), shards.device(spec, { consoleName: 'b', steal: 'polite' })];
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
