// 100,000 mutated and random datagrams, apparently from the BMC, thrown at a
// live SOL session (through a UDP relay in front of ipmi_sim): each is
// dropped and counted, and the console keeps working. The cases come from a
// seeded stream: the test prints its seed, and CONCH_FUZZ_SEED=<seed> replays
// the same random bytes and mutations (of the same BMC packets, as far as
// ipmi_sim's session IDs and sequence numbers repeat).

import { test, describe, after, before } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import { Cleanup, waitFor } from './helpers/wait.js';
import { Recorder, simOpts, startSim, type Sim } from './helpers/ipmi-sim.js';
import { IpmiDevice } from '../src/devices/ipmi.js';
import { IpmiTransport } from '../src/ipmi/transport.js';
import { Seeded, seedFrom } from './helpers/seeded.js';

describe('fuzzing a live IPMI SOL session', () => {
  const cleanup = new Cleanup();
  let sim: Sim;
  before(async () => {
    sim = await startSim(cleanup);
  });
  after(() => cleanup.run());

  test('100,000 bad datagrams are dropped; output and input still flow', { timeout: 180000 }, async (t) => {
    const rnd = new Seeded(seedFrom('CONCH_FUZZ_SEED'));
    t.diagnostic(`seed ${rnd.seed} (replay with CONCH_FUZZ_SEED=${rnd.seed})`);
    // relay: device <-> relay <-> ipmi_sim; it remembers real BMC packets to mutate
    const relay = dgram.createSocket('udp4');
    cleanup.add(() => relay.close());
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', r));
    let client: dgram.RemoteInfo | null = null;
    const samples: Buffer[] = [];
    relay.on('message', (m, ri) => {
      if (ri.port === sim.bmcPort) {
        if (samples.length < 64) samples.push(m);
        if (client) relay.send(m, client.port, client.address);
      } else {
        client = ri;
        relay.send(m, sim.bmcPort, '127.0.0.1');
      }
    });
    const transport = new IpmiTransport();
    const dev = new IpmiDevice({ host: '127.0.0.1', port: relay.address().port, opts: simOpts() }, { consoleName: 'fz', transport });
    cleanup.add(() => dev.close());
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.ups === 1, 'device up');
    sim.host.write('warmup\r\n');
    await waitFor(() => r.text.includes('warmup\r\n') && samples.length > 3, 'warm-up traffic');

    const N = 100000;
    const to = client as unknown as dgram.RemoteInfo;
    for (let i = 0; i < N; i++) {
      let b: Buffer;
      if (i % 4 === 0) b = rnd.bytes(rnd.int(0, 120));
      else {
        b = Buffer.from(samples[i % samples.length]);
        const k = i % 4 === 1 ? 1 : rnd.int(1, 8);
        for (let j = 0; j < k; j++) b[rnd.int(b.length)] = rnd.int(256);
        if (i % 4 === 3) b = b.subarray(0, rnd.int(b.length + 1));
      }
      relay.send(b, to.port, to.address);
      // libuv reads at most 32 datagrams per loop turn: pace so the socket buffer never overflows
      if (i % 16 === 15) await new Promise((res) => setImmediate(res));
    }
    // (the kernel may lose a few under load; nearly all must have been seen and dropped)
    const seen = (): number => transport.stats.dropped + dev.status().dropped;
    await waitFor(() => seen() >= N * 0.9, `bad datagrams dropped (${seen()} of ${N}; received ${transport.stats.received}, transport drops ${transport.stats.dropped}: ${transport.lastDrop})`, 60000);
    assert.deepEqual(r.downs, []);

    sim.host.write('after-fuzz\r\n');
    await waitFor(() => r.text.includes('after-fuzz\r\n'), 'host output after the fuzz');
    sim.host.received = Buffer.alloc(0);
    dev.write(Buffer.from('still-typing\r'));
    await waitFor(() => sim.host.received.toString('latin1').includes('still-typing\r'), 'input after the fuzz');
    await dev.close();
  });
});
