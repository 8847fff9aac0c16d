// A session of ours that died without Close Session (its exchanges timed
// out) may still hold SOL at the BMC. conch must know it as its own and take
// it back at once, not wait politely for the BMC's session timeout as it does
// for a person's session. Real ipmi_sim; the outage is our datagrams
// vanishing on the way out.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Cleanup, waitFor } from './helpers/wait.js';
import { Recorder, simOpts, solActive, solDeviceUp, startSim } from './helpers/ipmi-sim.js';
import { IpmiDevice } from '../src/devices/ipmi.js';
import * as dgram from 'node:dgram';
import { IpmiTransport, type TransportClient } from '../src/ipmi/transport.js';

/** A transport whose sends can be switched off: an outage between us and the BMC. */
class OutageTransport extends IpmiTransport {
  outage = false;
  override send(c: TransportClient, b: Buffer): void {
    if (!this.outage) super.send(c, b);
  }
}

const cleanup = new Cleanup();
after(() => cleanup.run());

test('SOL still held by our own timed-out session is taken back at once, with a notice', { timeout: 120000 }, async () => {
  const sim = await startSim(cleanup);
  const transport = new OutageTransport();
  const timing = { ownPollMs: 1000, waitPollMs: 1000, quietMs: 1000 };
  const { dev, r } = await solDeviceUp(sim, cleanup, { transport, timing, retryMs: 300 });

  // our datagrams vanish: the keepalive poll times out, the session is dropped without Close Session
  const outageAt = performance.now();
  transport.outage = true;
  await waitFor(() => r.downs.length === 1, 'console down after the outage', 30000);
  transport.outage = false;
  assert.equal(await solActive(sim.bmcPort), true, 'ipmi_sim still has SOL active for the dead session');

  // the reconnect (the engine's job after its backoff) finds SOL held: by us
  dev.connect(r);
  await waitFor(() => r.ups === 2, 'device up again');
  await waitFor(() => dev.status().state === 'ours', 'SOL ours again', 20000);
  // ipmi_sim would only have freed the old session after its 30 s timeout
  assert.ok(performance.now() - outageAt < 30000, `took ${performance.now() - outageAt} ms`);
  const notes = r.notices.join('\n');
  assert.match(notes, /SOL session was held by this daemon's earlier IPMI session \(ended without Close Session\); taken back/);
  assert.doesNotMatch(notes, /held by another client/);
  sim.host.write('after\r\n');
  await waitFor(() => r.text.includes('after\r\n'), 'host output after the reclaim');
  await dev.close();
  assert.equal(await solActive(sim.bmcPort), false);
});

/** Drops the k-th datagram from the BMC that carries a session ID (after the RAKP handshake). */
class DropNthTransport extends IpmiTransport {
  seen = 0;
  constructor(private readonly k: number) {
    super();
  }
  protected override dispatch(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    if (msg.length >= 10 && msg[4] === 0x06 && msg.readUInt32LE(6) !== 0 && ++this.seen === this.k) return;
    super.dispatch(msg, rinfo);
  }
}

test('the answer to Activate Payload is lost: the retransmission says "already active", and it is ours', { timeout: 120000 }, async () => {
  const sim = await startSim(cleanup);
  // session datagrams from the BMC: 1 Set Session Privilege, 2 Get Payload Activation Status, 3 Activate Payload
  const transport = new DropNthTransport(3);
  const dev = new IpmiDevice({ host: '127.0.0.1', port: sim.bmcPort, opts: simOpts() }, { consoleName: 'n1', transport, retryMs: 300 });
  cleanup.add(() => dev.close());
  const r = new Recorder();
  dev.connect(r);
  await waitFor(() => r.ups === 1, 'device up');
  assert.equal(dev.status().state, 'ours');
  assert.equal(dev.status().adopted, 1, 'the busy answer was recognised as our own session');
  assert.doesNotMatch(r.notices.join('\n'), /held by another client/);
  sim.host.write('through\r\n');
  await waitFor(() => r.text.includes('through\r\n'), 'host output');
  sim.host.received = Buffer.alloc(0);
  dev.write(Buffer.from('typed\r'));
  await waitFor(() => sim.host.received.toString('latin1') === 'typed\r', 'input reaches the host');
  await dev.close();
  assert.equal(await solActive(sim.bmcPort), false);
});
