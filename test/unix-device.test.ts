// UnixDevice against socat UNIX-LISTEN (the way qemu -serial unix:...,server
// behaves) and a node net.Server; the directory watch that makes a new
// socket connect at once.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cleanup, waitFor } from './helpers/wait.js';
import { UnixDevice } from '../src/devices/unix.js';
import { Recorder } from './helpers/recorder.js';


const cleanup = new Cleanup();
after(() => cleanup.run());

/** A net.Server on a unix path whose cleanup also ends its connections (close() alone waits for them). */
async function serve(sockPath: string, onConn: (s: net.Socket) => void = () => {}): Promise<net.Server> {
  const conns = new Set<net.Socket>();
  const server = net.createServer((s) => {
    conns.add(s);
    s.on('close', () => conns.delete(s));
    s.on('error', () => {});
    onConn(s);
  });
  cleanup.add(
    () =>
      new Promise<void>((res) => {
        server.close(() => res());
        for (const c of conns) c.destroy();
      }),
  );
  await new Promise<void>((res) => server.listen(sockPath, res));
  return server;
}

/**
 * Connect after onReady. The socket file appears at bind(), a moment before
 * listen(); an attempt in between is refused (conman #28), so retry like the
 * engine would.
 */
async function connectUp(dev: UnixDevice, r: Recorder): Promise<void> {
  const ups = r.ups;
  await waitFor(async () => {
    const downs = r.downs.length;
    dev.connect(r);
    await waitFor(() => r.ups > ups || r.downs.length > downs, 'an attempt to finish');
    return r.ups > ups;
  }, `a connection (downs: ${r.downs.join(', ')})`);
}

/** Within this the watch must fire: far below any backoff the engine would use after a few failures. */
const PROMPT_MS = 5000;

describe('unix socket device', () => {
  test('socat: absent → down; socket appears → onReady at once; data both ways; server killed → down', async () => {
    const dir = cleanup.dir('conch-unix-');
    const sockPath = path.join(dir, 'vm1.sock');
    const dev = new UnixDevice({ path: sockPath });
    cleanup.add(() => dev.close());
    assert.equal(dev.label(), `"${sockPath}"`);

    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown with no server');
    assert.equal(r.downs[0], 'no such file or directory');
    dev.watch(r);

    const started = performance.now();
    const socat = cleanup.child('socat', [`UNIX-LISTEN:${sockPath}`, 'STDIO']);
    await waitFor(() => r.readies === 1, 'onReady after the socket appeared', PROMPT_MS);
    assert.ok(r.readyAt - started < PROMPT_MS);

    await connectUp(dev, r);
    socat.proc.stdin!.write('console output \xff\r\n', 'latin1');
    await waitFor(() => r.text === 'console output \xff\r\n', 'output at onData');
    dev.write(Buffer.from('typed\r'));
    await socat.waitOutput('typed\r');
    dev.sendBreak(); // nothing for unix sockets; must not disturb the session
    dev.write(Buffer.from('more'));
    await socat.waitOutput('typed\rmore');
    assert.equal(socat.stdout, 'typed\rmore');

    const downs = r.downs.length;
    await socat.stop();
    await waitFor(() => r.downs.length === downs + 1, 'onDown after the server was killed');
    assert.deepEqual(r.notices, []);
  });

  test('stale socket: refused, not reported ready; re-created by a node server → onReady', async () => {
    const dir = cleanup.dir('conch-unix-');
    const sockPath = path.join(dir, 'vm2.sock');
    // a dead VM leaves its socket file behind: socat killed with SIGKILL does not unlink
    const socat = cleanup.child('socat', [`UNIX-LISTEN:${sockPath}`, 'STDIO']);
    await waitFor(() => fs.existsSync(sockPath), 'socat socket');
    process.kill(-socat.proc.pid!, 'SIGKILL');
    await socat.exited;
    assert.ok(fs.statSync(sockPath).isSocket());

    const dev = new UnixDevice({ path: sockPath });
    cleanup.add(() => dev.close());
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown');
    assert.equal(r.downs[0], 'connection refused');
    dev.watch(r); // the stale file is there now: not reported (it just failed)

    fs.unlinkSync(sockPath); // what qemu does before binding again
    const started = performance.now();
    await serve(sockPath, (s) => {
      s.write('hello from vm2\r\n');
      s.on('data', (d) => s.write(`echo:${d.toString()}`));
    });
    await waitFor(() => r.readies === 1, 'onReady', PROMPT_MS);
    assert.ok(r.readyAt - started < PROMPT_MS);
    await connectUp(dev, r);
    await waitFor(() => r.text.includes('hello from vm2\r\n'), 'greeting');
    dev.write(Buffer.from('x'));
    await waitFor(() => r.text.endsWith('echo:x'), 'echo');
    assert.equal(r.ups, 1);
    assert.equal(r.readies, 1);
  });

  test('a socket whose directory does not exist yet: watch follows the directories as they appear', async () => {
    const base = cleanup.dir('conch-unix-');
    const sockPath = path.join(base, 'run', 'qemu', 'vm3.sock');
    const dev = new UnixDevice({ path: sockPath });
    cleanup.add(() => dev.close());
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown');
    dev.watch(r);
    fs.mkdirSync(path.dirname(sockPath), { recursive: true });
    await serve(sockPath, (s) => s.end('vm3\r\n'));
    await waitFor(() => r.readies === 1, 'onReady', PROMPT_MS);
    const downs = r.downs.length;
    await connectUp(dev, r);
    await waitFor(() => r.text === 'vm3\r\n', 'data');
    // the server closes its end: reported as a down
    await waitFor(() => r.downs.length > downs, 'onDown after the server closed');
    assert.equal(r.downs.at(-1), 'connection closed by peer');
  });

  test('close() stops the watch; other files in the directory do not fire', async () => {
    const dir = cleanup.dir('conch-unix-');
    const sockPath = path.join(dir, 'vm4.sock');
    const dev = new UnixDevice({ path: sockPath });
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown');
    dev.watch(r);
    // an unrelated file and an unrelated socket: no onReady
    fs.writeFileSync(path.join(dir, 'vm4.sock.lock'), '');
    await serve(path.join(dir, 'other.sock'));
    await dev.close();
    // our own watcher proves the directory events were delivered before we look
    const seen = new Set<string>();
    const w = fs.watch(dir, (_e, name) => seen.add(String(name)));
    cleanup.add(() => w.close());
    await serve(sockPath);
    await waitFor(() => seen.has('vm4.sock'), 'the creation event');
    await new Promise((res) => setImmediate(res));
    assert.equal(r.readies, 0);
  });
});
