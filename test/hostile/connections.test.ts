// Hostile connections: descriptors are the daemon's to keep. Clients that
// got their QUERY answer but never close are closed by the server; a flood
// over `server maxclientsperhost=` (from one address) or `maxclients=` (in
// all) is refused with conman's ERROR line and closed at once, logged once
// per interval with a count, while other clients keep being served.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { execFile } from 'node:child_process';
import { CONCH } from '../helpers/conchd.js';
import { Cleanup, waitFor } from '../helpers/wait.js';
import { conchQuery, startFortress, underAttack } from './harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const HEADER = 'global log="%N.log"\n';

interface Conn {
  sock: net.Socket;
  got: string;
  closed: boolean;
}

/** A raw client from `localAddress`, sending `text` (if any) and never closing on its own. */
function open(port: number, text: string | null, localAddress = '127.0.0.1'): Conn {
  const c: Conn = { sock: net.connect({ port, host: '127.0.0.1', localAddress }), got: '', closed: false };
  c.sock.on('data', (d: Buffer) => (c.got += d.toString('latin1')));
  c.sock.on('error', () => {});
  c.sock.on('close', () => (c.closed = true));
  if (text) c.sock.write(text);
  cleanup.add(() => c.sock.destroy());
  return c;
}

/** `n` connections, opened in waves so the listen backlog is not what refuses them. */
async function openMany(n: number, port: number, text: string | null, localAddress?: string): Promise<Conn[]> {
  const all: Conn[] = [];
  for (let i = 0; i < n; i += 200) {
    const wave = Array.from({ length: Math.min(200, n - i) }, () => open(port, text, localAddress));
    all.push(...wave);
    await waitFor(() => wave.every((c) => c.closed || c.sock.readyState === 'open' || c.got !== ''), 'a wave to connect', 20_000);
  }
  return all;
}

describe('hostile connections', () => {
  test('3,000 answered QUERY connections that never close are closed by the server', { timeout: 180_000 }, async () => {
    const f = await startFortress(cleanup, '', { header: `${HEADER}server maxclients=10000\nserver maxclientsperhost=10000\n` });
    const conns = await underAttack(f, async () => {
      const cs = await openMany(3000, f.port, "HELLO USER='idle'\nQUERY CONSOLE='bystander1'\n");
      await waitFor(() => cs.every((c) => c.closed), `the server to close them (${cs.filter((c) => !c.closed).length} open)`, 60_000, 100);
      return cs;
    });
    // each read its whole answer before the close
    for (const c of conns) assert.equal(c.got, "OK\nOK CONSOLE='bystander1'\n");
  });

  test('a flood from one address over maxclientsperhost is refused; others get in; the log says so once', { timeout: 120_000 }, async () => {
    const f = await startFortress(cleanup, '', { header: `${HEADER}server maxclients=50\nserver maxclientsperhost=5\n` });
    const flood = await underAttack(f, async () => {
      // silent clients: the five admitted hold their slots until the handshake deadline
      const cs = await openMany(200, f.port, null, '127.0.0.2');
      await waitFor(() => cs.filter((c) => c.closed).length >= 195, 'the refused ones to be closed', 20_000);
      return cs;
    });
    const refused = flood.filter((c) => c.closed);
    assert.equal(refused.length, 195);
    assert.equal(flood.filter((c) => !c.closed).length, 5);
    // the refusal is conman's ERROR line (under a flood some are closed without it)
    assert.ok(refused.some((c) => /^ERROR CODE=2 MESSAGE='Too many clients from your address \(5 connected\); try again later'\n$/.test(c.got)));
    // rate-limited: the first refusal at once, the rest as one line with a count
    const lines = await waitFor(
      () => {
        const ls = f.child.output.split('\n').filter((l) => l.includes('Refused '));
        const total = ls.reduce((n, l) => n + Number(/Refused (\d+)/.exec(l)![1]), 0);
        return total === 195 ? ls : null;
      },
      'the refusal lines to count all 195',
      15_000,
      100,
    );
    assert.ok(lines.length <= 3, lines.join('\n'));
    assert.match(lines[0], /Refused 1 client connection \(too many clients from one address\) from 127\.0\.0\.2 \(1\)/);
    for (const c of flood) c.sock.destroy();
  });

  test('over maxclients in all: conch -q is told "Too many clients", and gets in once they leave', { timeout: 120_000 }, async () => {
    const f = await startFortress(cleanup, '', { header: `${HEADER}server maxclients=20\nserver maxclientsperhost=5\n` });
    const hold: Conn[] = [];
    for (let h = 2; h < 6; h++) hold.push(...(await openMany(5, f.port, null, `127.0.0.${h}`)));
    await waitFor(() => hold.every((c) => c.sock.readyState === 'open'), 'twenty clients connected');
    assert.ok(hold.every((c) => !c.closed));
    const denied = await new Promise<{ code: number | null; out: string }>((resolve) => {
      execFile(process.execPath, [CONCH, '-d', `127.0.0.1:${f.port}`, '-q'], { timeout: 10_000, encoding: 'utf8' }, (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, out: stdout + stderr }),
      );
    });
    assert.notEqual(denied.code, 0);
    assert.match(denied.out, /Too many clients \(20 connected\)/);
    for (const c of hold) c.sock.destroy();
    const out = await waitFor(async () => conchQuery(f.port).catch(() => ''), 'conch -q to get in again', 10_000);
    assert.match(out, /bystander1/);
  });
});
