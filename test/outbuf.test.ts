// protocol/outbuf.ts: a client's output, ended. A client that closes when
// its output ends lets go of everything at once; one that never reads is
// cut off after the grace.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { once } from 'node:events';
import * as v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { OutBuf } from '../src/protocol/outbuf.js';
import { waitFor } from './helpers/wait.js';

// the collector, to see what a closed client still holds
v8.setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** a connected pair on loopback: the server's socket and the client's */
async function pair(): Promise<{ server: net.Server; ours: net.Socket; theirs: net.Socket }> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const theirs = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const [ours] = (await once(server, 'connection')) as [net.Socket];
  return { server, ours, theirs };
}

test('end(): sent, then closed; nothing holds the socket once the client has closed (a grace timer held it and its session for 10 s)', async () => {
  const { server, held } = await (async () => {
    const { server, ours, theirs } = await pair();
    const out = new OutBuf(ours, 64 * 1024, () => Buffer.alloc(0));
    let got = '';
    theirs.on('data', (d: Buffer) => (got += d.toString()));
    out.write(Buffer.from('bye\n'), 'x');
    out.end();
    // the client reads to the end and closes its side
    await once(theirs, 'end');
    theirs.end();
    await once(ours, 'close');
    assert.equal(got, 'bye\n');
    return { server, held: new WeakRef(ours) };
  })();
  try {
    await new Promise((r) => setImmediate(r));
    await waitFor(() => {
      gc();
      return held.deref() === undefined;
    }, 'the closed socket collected', 5000);
  } finally {
    server.close();
  }
});

test('end(): a client that never reads nor closes is cut off after the grace', async () => {
  const { server, ours, theirs } = await pair();
  theirs.pause();
  const out = new OutBuf(ours, 64 * 1024, () => Buffer.alloc(0));
  out.end(200);
  await once(ours, 'close');
  assert.ok(ours.destroyed);
  theirs.destroy();
  server.close();
});
