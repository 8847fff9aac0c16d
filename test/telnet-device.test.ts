// TelnetDevice against real terminal servers on loopback: ser2net 4 (telnet
// accepter) and socat (raw TCP), each in front of a "host" TCP server run by
// the test; plus failure cases.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cleanup, freePort, waitFor } from './helpers/wait.js';
import { TelnetDevice } from '../src/devices/telnet.js';
import { INPUT_HIGH_WATER } from '../src/devices/device.js';
import { Recorder } from './helpers/recorder.js';

/** A DeviceHandler that records everything. */

/** The TCP timer column `ss` shows for established connections to 127.0.0.1:port (keepalive or none). */
function ssTimers(port: number): string {
  return execFileSync('ss', ['-tnoH', 'state', 'established', 'dst', `127.0.0.1:${port}`], { encoding: 'utf8' });
}

/** The machine behind the terminal server: a TCP server recording what it receives. */
class Host {
  server = net.createServer();
  sock: net.Socket | null = null;
  all = new Set<net.Socket>();
  got = Buffer.alloc(0);
  connections = 0;
  port = 0;
  async start(): Promise<void> {
    this.server.on('connection', (s) => {
      this.connections++;
      this.sock = s;
      this.all.add(s);
      s.on('close', () => this.all.delete(s));
      s.on('data', (d) => (this.got = Buffer.concat([this.got, d])));
      s.on('error', () => {});
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.port = (this.server.address() as net.AddressInfo).port;
  }
  async stop(): Promise<void> {
    const closed = new Promise<void>((r) => this.server.close(() => r()));
    for (const s of this.all) s.destroy();
    await closed;
  }
}

const cleanup = new Cleanup();
after(() => cleanup.run());

/**
 * Connect `dev` until a session reaches `host` (a new host connection), one
 * attempt at a time like the engine. No port probes: a probe would itself
 * become a session at the terminal server.
 */
async function connectThrough(dev: TelnetDevice, host: Host): Promise<Recorder> {
  let r = new Recorder();
  await waitFor(async () => {
    r = new Recorder();
    const before = host.connections;
    dev.connect(r);
    await waitFor(() => r.ups === 1 || r.downs.length > 0, 'an attempt to finish');
    if (r.ups !== 1) return false;
    await waitFor(() => host.connections > before || r.downs.length > 0, 'a session to reach the host');
    if (r.downs.length > 0) return false;
    return true;
  }, 'a session through the terminal server');
  return r;
}

async function startSer2net(hostPort: number): Promise<number> {
  const dir = cleanup.dir('conch-ser2net-');
  const port = await freePort();
  const yaml = path.join(dir, 'ser2net.yaml');
  fs.writeFileSync(
    yaml,
    [
      '%YAML 1.1',
      '---',
      'connection: &con1',
      `    accepter: telnet,tcp,127.0.0.1,${port}`,
      '    enable: on',
      `    connector: tcp,127.0.0.1,${hostPort}`,
      '',
    ].join('\n'),
  );
  cleanup.child('ser2net', ['-n', '-d', '-c', yaml, '-P', path.join(dir, 'ser2net.pid')]);
  return port;
}

describe('telnet device through ser2net (telnet accepter, tcp connector)', () => {
  test('data both ways, 0xFF exact, BREAK consumed by ser2net, host close → down', async () => {
    const host = new Host();
    await host.start();
    cleanup.add(() => host.stop());
    const port = await startSer2net(host.port);

    const dev = new TelnetDevice({ host: '127.0.0.1', port }, { keepalive: true });
    cleanup.add(() => dev.close());
    assert.equal(dev.label(), `<127.0.0.1:${port}>`);
    // ser2net opens its connector when the telnet client arrives
    const r = await connectThrough(dev, host);
    assert.match(ssTimers(port), /timer:\(keepalive/, 'SO_KEEPALIVE is set');

    // host → console: 0xFF travels as IAC IAC on the telnet leg and arrives as one byte
    const fromHost = Buffer.concat([Buffer.from('boot: ready\r\n'), Buffer.from([0xff, 0x00, 0x7f, 0xfe]), Buffer.from('end')]);
    host.sock!.write(fromHost);
    await waitFor(() => r.data.length >= fromHost.length, 'host output at onData');
    assert.deepEqual(r.data, fromHost);

    // console → host: the 0xFF we double arrives as a single 0xFF
    dev.write(Buffer.concat([Buffer.from('typed '), Buffer.from([0xff]), Buffer.from('x\r')]));
    const want1 = Buffer.concat([Buffer.from('typed '), Buffer.from([0xff]), Buffer.from('x\r')]);
    await waitFor(() => host.got.length >= want1.length, 'typed bytes at the host');
    assert.deepEqual(host.got, want1);

    // BREAK: ser2net turns a telnet BREAK into a break on its connector; a tcp
    // connector has none, so nothing reaches the host and the session goes on
    dev.sendBreak();
    dev.write(Buffer.from('after-break'));
    const want2 = Buffer.concat([want1, Buffer.from('after-break')]);
    await waitFor(() => host.got.length >= want2.length, 'bytes after the break at the host');
    assert.deepEqual(host.got, want2);
    assert.equal(r.downs.length, 0);
    assert.deepEqual(r.notices, []);

    // the host goes away: ser2net drops the telnet session and we report it once
    host.sock!.destroy();
    await waitFor(() => r.downs.length === 1, 'onDown after the host closed');
    assert.match(r.downs[0], /closed|reset/);
    // a write while down is dropped without error
    dev.write(Buffer.from('lost'));
    assert.equal(r.downs.length, 1);
  });

  test('reconnects with a fresh negotiation after a down', async () => {
    const host = new Host();
    await host.start();
    cleanup.add(() => host.stop());
    const port = await startSer2net(host.port);
    const dev = new TelnetDevice({ host: 'localhost', port }, { keepalive: false }); // name resolved by DNS
    cleanup.add(() => dev.close());
    for (let round = 1; round <= 2; round++) {
      const r = await connectThrough(dev, host);
      assert.doesNotMatch(ssTimers(port), /keepalive/, 'no SO_KEEPALIVE with keepalive off');
      host.sock!.write(`round ${round}\r\n`);
      await waitFor(() => r.data.toString() === `round ${round}\r\n`, `data round ${round}`);
      await dev.close();
      assert.equal(r.downs.length, 0, 'close() reports no onDown');
    }
  });
});

describe('telnet device through socat (raw TCP terminal server)', () => {
  test('plain data both ways; the peer closing is reported', async () => {
    const host = new Host();
    await host.start();
    cleanup.add(() => host.stop());
    const port = await freePort();
    const socat = cleanup.child('socat', [`TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, `TCP:127.0.0.1:${host.port}`]);
    const dev = new TelnetDevice({ host: '127.0.0.1', port }, { keepalive: true });
    cleanup.add(() => dev.close());
    const r = await connectThrough(dev, host);
    host.sock!.write('plain output\r\n');
    await waitFor(() => r.data.toString() === 'plain output\r\n', 'output at onData');
    dev.write(Buffer.from('plain input\r'));
    // a raw server passes our option requests through: the host sees them first
    await waitFor(() => host.got.toString('latin1').endsWith('plain input\r'), 'input at the host');
    const got = host.got;
    assert.equal(got[0], 0xff, 'the IAC requests reach a raw host (nobody answers, nothing loops)');
    assert.equal(got.length, 15 + 'plain input\r'.length);

    await socat.stop();
    await waitFor(() => r.downs.length === 1, 'onDown after socat ended');
  });
});

describe('telnet device failures', () => {
  test('connection refused', async () => {
    const port = await freePort();
    const dev = new TelnetDevice({ host: '127.0.0.1', port }, { keepalive: true });
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown');
    assert.equal(r.downs[0], 'connection refused');
    assert.equal(r.ups, 0);
    await dev.close();
  });

  test('connect timeout: a server whose accept queue is full never answers the SYN', async () => {
    // listen(0) and never accept: after one queued connection the kernel drops SYNs
    const py = cleanup.child('python3', [
      '-c',
      'import socket,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\n' +
        'print(s.getsockname()[1],flush=True)\ntime.sleep(600)\n',
    ]);
    const port = Number((await py.waitOutput(/^\d+\n/)).trim());
    const fillers: net.Socket[] = [];
    cleanup.add(() => fillers.forEach((f) => f.destroy()));
    for (let i = 0; i < 4; i++) {
      const f = net.connect(port, '127.0.0.1');
      f.on('error', () => {});
      fillers.push(f);
    }
    await waitFor(() => fillers.some((f) => !f.connecting), 'one filler to be queued');
    const dev = new TelnetDevice({ host: '127.0.0.1', port }, { keepalive: true, connectTimeoutMs: 1000 });
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown');
    assert.deepEqual(r.downs, ['connect timed out']);
    assert.equal(r.ups, 0);
    await dev.close();
  });

  test('unknown host name', async () => {
    const dev = new TelnetDevice({ host: 'no-such-host.invalid', port: 23 }, { keepalive: true });
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown');
    assert.match(r.downs[0], /host not found|host lookup failed/);
  });

  test('labels: IPv4, name, IPv6 in brackets', () => {
    assert.equal(new TelnetDevice({ host: '10.0.0.1', port: 7001 }, { keepalive: true }).label(), '<10.0.0.1:7001>');
    assert.equal(new TelnetDevice({ host: 'ts1', port: 23 }, { keepalive: true }).label(), '<ts1:23>');
    assert.equal(new TelnetDevice({ host: '::1', port: 2001 }, { keepalive: true }).label(), '<[::1]:2001>');
    assert.equal(new TelnetDevice({ host: '[fe80::1]', port: 2001 }, { keepalive: true }).label(), '<[fe80::1]:2001>');
  });
});

/** A TCP server playing the terminal server, and a TelnetDevice pointed at it; both closed at cleanup. */
async function scriptedPeer(onConn: (s: net.Socket) => void): Promise<{ dev: TelnetDevice; peer: net.Socket | null }> {
  const t: { dev: TelnetDevice | null; peer: net.Socket | null } = { dev: null, peer: null };
  const server = net.createServer((sock) => {
    t.peer = sock;
    sock.on('error', () => {});
    onConn(sock);
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  cleanup.add(() => new Promise<void>((res) => server.close(() => res())));
  const dev = new TelnetDevice({ host: '127.0.0.1', port: (server.address() as net.AddressInfo).port }, { keepalive: true });
  cleanup.add(() => dev.close());
  return Object.assign(t, { dev });
}

describe('telnet device against a scripted telnet peer', () => {
  test('a throwing handler is reported as a notice; the connection survives', async () => {
    const t = await scriptedPeer((sock) => sock.resume()); // read (and so see the end of) what we send
    const dev = t.dev;
    const r = new Recorder();
    let boom = true;
    r.onData = (b: Buffer) => {
      if (boom) {
        boom = false;
        throw new Error('handler bug');
      }
      r.chunks.push(Buffer.from(b));
    };
    dev.connect(r);
    await waitFor(() => r.ups === 1 && t.peer, 'connected');
    const peer = t.peer!;
    peer.write('first');
    await waitFor(() => r.notices.length === 1, 'a notice');
    assert.match(r.notices[0], /internal error in <127\.0\.0\.1:\d+>: handler bug/);
    peer.write('second');
    await waitFor(() => r.data.toString() === 'second', 'data after the error');
    assert.equal(r.downs.length, 0);
  });

  test('split commands, unknown DO refused once, no reply to acknowledgments, bad bytes survive', async () => {
    const peerGot: Buffer[] = [];
    const t = await scriptedPeer((s) => s.on('data', (d) => peerGot.push(d)));
    const dev = t.dev;
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.ups === 1 && t.peer, 'connected');
    const sent = () => Buffer.concat(peerGot);
    await waitFor(() => sent().length >= 15, 'our opening requests');
    assert.deepEqual(sent(), Buffer.from([255, 253, 0, 255, 253, 1, 255, 253, 3, 255, 251, 0, 255, 251, 3]));

    // acknowledge everything, ask DO TTYPE, in pieces split inside the commands
    const p = t.peer!;
    const pieces = [
      [255, 251, 0, 255, 251], [1, 255, 251, 3, 255], [253, 0, 255, 253, 3, 255, 253], [24],
      [...Buffer.from('hello '), 255], [255, 255], [250, 24, 1, 255], [240, ...Buffer.from('world')],
      [255, 0x41], // not a command: kept as data
    ];
    for (const piece of pieces) {
      await new Promise<void>((res) => p.write(Buffer.from(piece), () => res()));
      await waitFor(() => p.writableLength === 0, 'peer write flushed');
    }
    const want = Buffer.concat([Buffer.from('hello '), Buffer.from([255]), Buffer.from('world'), Buffer.from([255, 0x41])]);
    await waitFor(() => r.data.length >= want.length, 'console data');
    assert.deepEqual(r.data, want);
    // a write after the negotiation proves every reply before it was flushed
    dev.write(Buffer.from('Z'));
    await waitFor(() => sent().toString('latin1').endsWith('Z'), 'our write at the peer');
    assert.deepEqual(sent().subarray(15), Buffer.from([255, 252, 24, ...Buffer.from('Z')]), 'only WONT TTYPE was answered');
    assert.deepEqual(r.notices, []);
    assert.equal(r.downs.length, 0);
  });
});

/** Also counts onDrain. */
class DrainRecorder extends Recorder {
  drains = 0;
  onDrain(): void {
    this.drains++;
  }
}

describe('telnet device input back-pressure', () => {
  test('a peer that does not read: write() says full at the high-water mark, drain when it reads, queue gone on close', async () => {
    let got = 0;
    const t = await scriptedPeer((s) => {
      s.pause(); // accepts, never reads (until told)
      s.on('data', (d: Buffer) => (got += d.length));
    });
    const dev = t.dev;
    const r = new DrainRecorder();
    dev.connect(r);
    await waitFor(() => r.ups === 1 && t.peer, 'connected');
    const chunk = Buffer.alloc(16 * 1024, 0x41);
    let written = 0;
    // the kernel's buffers on both ends take some MB first; bounded in count
    for (let i = 0; i < 4096 && dev.write(chunk); i++) {
      written += chunk.length;
      if (i % 64 === 63) await new Promise((res) => setImmediate(res)); // let the socket flush to the kernel
    }
    written += chunk.length;
    assert.ok(dev.queued() >= INPUT_HIGH_WATER, `full at ${dev.queued()} bytes queued (after ${written} written)`);
    assert.equal(r.drains, 0);
    t.peer!.resume();
    await waitFor(() => r.drains === 1, 'the drain once the peer reads');
    assert.equal(dev.queued(), 0);
    await waitFor(() => got >= written, 'every byte at the peer');

    // stalled again, then closed: the queue is released
    t.peer!.pause();
    for (let i = 0; i < 4096 && dev.write(chunk); i++) if (i % 64 === 63) await new Promise((res) => setImmediate(res));
    assert.ok(dev.queued() >= INPUT_HIGH_WATER);
    await dev.close();
    assert.equal(dev.queued(), 0);
    assert.equal(r.drains, 1);
    assert.deepEqual(r.downs, []);
    t.peer!.destroy(); // a paused peer would not see the close, and the server would wait for it
  });
});
