// SerialDevice against a socat pty pair: one end is the "serial port" the
// device opens, the other end is driven by ordinary programs (cat, stty).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor, type Child } from './helpers/wait.js';
import { SerialDevice } from '../src/devices/serial.js';
import type { SerOpts } from '../src/config/types.js';
import { Recorder } from './helpers/recorder.js';


const cleanup = new Cleanup();
after(() => cleanup.run());

const FAST: SerOpts = { bps: 115200, dataBits: 8, parity: 'none', stopBits: 1 };

/** A socat pty pair: `a` for the device under test, `b` for the far end. */
async function ptyPair(): Promise<{ a: string; b: string; socat: Child }> {
  const dir = cleanup.dir('conch-serial-');
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const socat = cleanup.child('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`]);
  await socat.waitOutput('starting data transfer loop');
  await waitFor(() => fs.existsSync(a) && fs.existsSync(b), 'pty links');
  return { a, b, socat };
}

async function openDevice(p: string, opts: SerOpts = FAST): Promise<{ dev: SerialDevice; r: Recorder }> {
  const dev = new SerialDevice({ path: p, opts });
  cleanup.add(() => dev.close());
  const r = new Recorder();
  dev.connect(r);
  await waitFor(() => r.ups === 1 || r.downs.length > 0, `${p} to open`);
  assert.deepEqual(r.downs, [], 'open failed');
  return { dev, r };
}

/** Every byte value, twice, NUL and 0xFF included. */
const ALL_BYTES = Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from([...Array(256).keys()].reverse())]);

describe('serial device', () => {
  test('bytes from the far end reach onData, device writes reach the far end, binary-clean', async () => {
    const { a, b } = await ptyPair();
    const { dev, r } = await openDevice(a);
    assert.equal(dev.label(), `"${a}"`);

    // far end → device
    const writer = cleanup.child('sh', ['-c', 'printf "login: \\000\\377\\r\\n" > "$0"', b]);
    await writer.exited;
    await waitFor(() => r.bytes >= 11, 'login prompt at the device');
    assert.deepEqual(r.data, Buffer.from('login: \x00\xff\r\n', 'latin1'));

    // device → far end: cat on the far end prints what it receives
    const reader = cleanup.child('cat', [b]);
    // we cannot see when cat has opened the far end: probe until one arrives
    await waitFor(() => {
      dev.write(Buffer.from('?'));
      return reader.stdout.includes('?');
    }, 'the far end reader to get a probe byte', 20000, 200);
    const start = reader.stdout.length;
    dev.write(ALL_BYTES);
    await waitFor(() => reader.stdout.length - start >= ALL_BYTES.length, 'all 512 bytes at the far end');
    const got = Buffer.from(reader.stdout.slice(start), 'latin1');
    // probes still in flight when the reader started may precede the block
    const at = got.indexOf(ALL_BYTES);
    assert.ok(at >= 0 && /^\?*$/.test(got.subarray(0, at).toString('latin1')), 'the 512 bytes arrived intact');
    assert.deepEqual(r.downs, []);
  });

  test('seropts are applied: speed, framing, raw, no flow control', async () => {
    const { a } = await ptyPair();
    await openDevice(a, { bps: 19200, dataBits: 7, parity: 'odd', stopBits: 2 });
    const stty = cleanup.child('stty', ['-F', a, '-a']);
    assert.equal(await stty.exited, 0, stty.output);
    const words = new Set(stty.stdout.split(/[\s;]+/));
    assert.match(stty.stdout, /speed 19200 baud/);
    // the Linux pty driver forces cs8 and -parenb, so data bits and parity
    // enable cannot be seen on a pty; PARODD and CSTOPB survive
    for (const w of ['parodd', 'cstopb', '-crtscts', '-ixon', '-ixoff', '-icanon', '-echo', '-opost', '-isig', '-icrnl', 'clocal']) {
      assert.ok(words.has(w), `stty shows ${w}: ${stty.stdout}`);
    }
  });

  test('default seropts are 9600,8n1', async () => {
    const { a } = await ptyPair();
    const dev = new SerialDevice({ path: a });
    cleanup.add(() => dev.close());
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.ups === 1, 'open');
    const stty = cleanup.child('stty', ['-F', a, '-a']);
    assert.equal(await stty.exited, 0, stty.output);
    const words = new Set(stty.stdout.split(/[\s;]+/));
    assert.match(stty.stdout, /speed 9600 baud/);
    for (const w of ['cs8', '-parenb', '-cstopb']) assert.ok(words.has(w), `stty shows ${w}`);
  });

  test('exclusive: a second device on the same port fails and says why; the first keeps working', async () => {
    const { a, b } = await ptyPair();
    const first = await openDevice(a);
    const dev2 = new SerialDevice({ path: a, opts: FAST });
    cleanup.add(() => dev2.close());
    const r2 = new Recorder();
    dev2.connect(r2);
    await waitFor(() => r2.downs.length === 1, 'second open to fail');
    assert.equal(r2.ups, 0);
    assert.match(r2.downs[0], /in use/);
    assert.ok(r2.downs[0].includes(a), r2.downs[0]);

    const w = cleanup.child('sh', ['-c', 'printf still-here > "$0"', b]);
    await w.exited;
    await waitFor(() => first.r.data.toString() === 'still-here', 'data at the first device');
    assert.deepEqual(first.r.downs, []);

    // once the first lets go, the port can be opened again
    await first.dev.close();
    const again = new Recorder();
    dev2.connect(again);
    await waitFor(() => again.ups === 1 || again.downs.length > 0, 're-open');
    assert.deepEqual(again.downs, []);
  });

  test('a missing device: onDown names the path; no throw; a retry works once it exists', async () => {
    const dir = cleanup.dir('conch-serial-');
    const p = path.join(dir, 'ttyUSB9');
    const dev = new SerialDevice({ path: p, opts: FAST });
    cleanup.add(() => dev.close());
    const r = new Recorder();
    dev.connect(r);
    await waitFor(() => r.downs.length === 1, 'onDown');
    assert.equal(r.downs[0], `"${p}": no such file or directory`);

    // a regular file is not a serial port
    fs.writeFileSync(p, 'x');
    dev.connect(r);
    await waitFor(() => r.downs.length === 2, 'onDown for a regular file');
    assert.equal(r.downs[1], `"${p}": not a character device`);
    assert.equal(r.ups, 0);
  });

  test('the far side going away (socat killed) → onDown', async () => {
    const { a, b, socat } = await ptyPair();
    const { r } = await openDevice(a);
    const w = cleanup.child('sh', ['-c', 'printf hi > "$0"', b]);
    await w.exited;
    await waitFor(() => r.bytes === 2, 'data');
    await socat.stop();
    await waitFor(() => r.downs.length === 1, 'onDown after socat died');
    assert.match(r.downs[0], new RegExp(a.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
  });

  test('socat killed in the middle of a flood → onDown (no endless zero-byte reads)', async () => {
    const { a, b, socat } = await ptyPair();
    const { r } = await openDevice(a);
    const flood = cleanup.child('sh', ['-c', 'exec cat /dev/zero > "$0"', b]);
    await waitFor(() => r.bytes > 1_000_000, 'a flood under way');
    socat.proc.kill('SIGKILL');
    await waitFor(() => r.downs.length === 1, 'onDown after socat died mid-flood');
    await flood.stop();
  });

  test('sendBreak: never throws, the line stays usable (a pty has no break to observe)', async () => {
    // Linux ptys ignore TIOCSBRK/tcsendbreak: neither TIOCPKT on the master nor
    // PARMRK on the other slave shows anything, so only robustness is testable here.
    const { a, b } = await ptyPair();
    const { dev, r } = await openDevice(a);
    dev.sendBreak();
    dev.sendBreak();
    const reader = cleanup.child('cat', [b]);
    await waitFor(() => {
      dev.write(Buffer.from('after-break\n'));
      return reader.stdout.includes('after-break\n');
    }, 'writes after a break reach the far end', 20000, 200);
    const w = cleanup.child('sh', ['-c', 'printf back > "$0"', b]);
    await w.exited;
    await waitFor(() => r.data.toString().includes('back'), 'reads after a break');
    assert.deepEqual(r.downs, []);
  });

  test('10 MB of random bytes arrive byte-exact', async () => {
    const { a, b } = await ptyPair();
    const { r } = await openDevice(a, { bps: 4000000, dataBits: 8, parity: 'none', stopBits: 1 });
    const dir = cleanup.dir('conch-serial-');
    const file = path.join(dir, 'rand');
    const data = crypto.randomBytes(10 * 1024 * 1024);
    fs.writeFileSync(file, data);
    const w = cleanup.child('sh', ['-c', 'exec cat "$0" > "$1"', file, b]);
    await waitFor(() => r.bytes >= data.length, `10 MB at the device (got ${r.bytes})`, 120000);
    assert.equal(await w.exited, 0);
    assert.equal(r.bytes, data.length);
    assert.ok(r.data.equals(data), 'content differs');
    assert.deepEqual(r.downs, []);
  });

  test('a far end that stops reading: output backs up, input still flows, close() does not hang', async () => {
    // socat makes blocking writes, so once its far side is full it stops relaying
    // the other way too; this rig holds a pty master that it never reads and
    // writes "ping" to it for every line on its stdin.
    const rig = cleanup.child('python3', [
      '-u',
      '-c',
      [
        'import os, sys, tty',
        'm, s = os.openpty()',
        'tty.setraw(s)',
        'print(os.ttyname(s))',
        'for line in sys.stdin: os.write(m, b"ping")',
      ].join('\n'),
    ]);
    const slave = (await rig.waitOutput(/^\/dev\/pts\/\d+\n/)).trim();
    const { dev, r } = await openDevice(slave);
    // more than a pty buffers (up to 640 KiB in the kernel): the writes wait for room
    dev.write(Buffer.alloc(1024 * 1024, 0x55));
    dev.write(Buffer.alloc(1024 * 1024, 0x55));
    rig.proc.stdin!.write('\n');
    await waitFor(() => r.data.toString().includes('ping'), 'input from the far end while output is stuck');
    const t0 = performance.now();
    await dev.close();
    assert.ok(performance.now() - t0 < 5000, 'close() returned promptly');
    assert.deepEqual(r.downs, []);
  });

  test('close() releases the port and reports nothing', async () => {
    const { a } = await ptyPair();
    const { dev, r } = await openDevice(a);
    await dev.close();
    dev.write(Buffer.from('dropped'));
    dev.sendBreak();
    const other = await openDevice(a);
    assert.deepEqual(other.r.downs, []);
    assert.deepEqual(r.downs, []);

    // closed while the open is still under way: nothing reported, and the port is free afterwards
    await other.dev.close();
    const quick = new SerialDevice({ path: a, opts: FAST });
    const rq = new Recorder();
    quick.connect(rq);
    await quick.close();
    const last = await openDevice(a);
    assert.deepEqual(last.r.downs, []);
    assert.equal(rq.ups + rq.downs.length, 0);
  });

  test('a far end that does not read: write() says full at a few seconds of line time, drain when it reads', async () => {
    // holds a pty master and reads it only after a line on stdin, then counts what it read
    const rig = cleanup.child('python3', [
      '-u',
      '-c',
      [
        'import os, sys, tty',
        'm, s = os.openpty()',
        'tty.setraw(s)',
        'print(os.ttyname(s))',
        'sys.stdin.readline()',
        'n = 0',
        'while True:',
        '    n += len(os.read(m, 65536))',
        '    print(n)',
      ].join('\n'),
    ]);
    const slave = (await rig.waitOutput(/^\/dev\/pts\/\d+\n/)).trim();
    const dev = new SerialDevice({ path: slave, opts: { ...FAST, bps: 9600 } });
    cleanup.add(() => dev.close());
    const r = new (class extends Recorder {
      drains = 0;
      onDrain(): void {
        this.drains++;
      }
    })();
    dev.connect(r);
    await waitFor(() => r.ups === 1, 'open');
    const chunk = Buffer.alloc(4096, 0x55);
    let written = 0;
    // feed the pty until it stops taking input (its kernel buffer is full); bounded in count
    for (let i = 0; i < 1024; i++) {
      written += chunk.length;
      assert.equal(dev.write(chunk), false, '4 KiB is over the mark at 9600 baud');
      const taken = await waitFor(() => dev.queued() === 0, 'the pty to take it', 500).then(() => true, () => false);
      if (!taken) break;
    }
    assert.ok(dev.queued() > 0, 'stalled');
    assert.ok(written < 4 * 1024 * 1024, `the pty took ${written - dev.queued()} bytes`);
    const drainsBefore = r.drains;
    dev.write(chunk);
    written += chunk.length;
    rig.proc.stdin!.write('\n');
    await waitFor(() => r.drains === drainsBefore + 1, 'the drain once the far end reads');
    await waitFor(() => dev.queued() === 0, 'the queue to empty');
    await rig.waitOutput(new RegExp(`^${written}$`, 'm'));
    await dev.close();
    assert.equal(dev.queued(), 0);
  });
});
