// Hostile input: a client floods a console whose peer does not read. The
// daemon must push back on that client (stop reading its socket) instead of
// queueing without limit, keep everything else running meanwhile, give its
// memory back when the client leaves, and tell a broadcast writer (never
// paused) how much input it dropped.
//
// Stalled peers, all on loopback: a TCP server (telnet console) and a unix
// socket server that accept and never read, and a process console running
// `sleep`, which never reads its terminal.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cleanup, waitFor, waitForFile } from '../helpers/wait.js';
import { memoryReturns, rssKiB, startFortress, underAttack, type Fortress } from './harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const MiB = 1024 * 1024;
/** the most a flood sends before giving up on seeing back-pressure */
const FLOOD_MAX = 200 * MiB;
/** the daemon's RSS may grow this much over its level before the flood */
const RSS_SLACK_KIB = 64 * 1024;
/** a client write not drained for this long: the daemon has stopped reading us (it lets go after 10 s) */
const STALL_MS = 2000;
/** each test's bound */
const TEST_TIMEOUT_MS = 120_000;

/** A server on `at` (a TCP port on loopback, 0 for any, or a unix socket path) that accepts and never reads. */
async function deafServer(at: number | string): Promise<net.Server> {
  const socks = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    s.pause();
    s.on('error', () => {});
    socks.add(s);
  });
  await new Promise<void>((res) => (typeof at === 'string' ? srv.listen(at, res) : srv.listen(at, '127.0.0.1', res)));
  cleanup.add(
    () =>
      new Promise<void>((res) => {
        for (const s of socks) s.destroy();
        srv.close(() => res());
      }),
  );
  return srv;
}

interface Flood {
  sent: number;
  /** the daemon stopped taking our bytes (a write stayed queued STALL_MS) */
  stalled: boolean;
  /** the daemon's highest RSS seen during the flood, KiB */
  maxRssKiB: number;
  /** what the daemon sent us (notices) */
  received: () => string;
  sock: net.Socket;
}

/**
 * Attach with `request` (a CONNECT line) and write 1 MiB chunks of 'A' (no
 * 0xFF to escape) until the daemon stops reading, `until()` holds, or
 * FLOOD_MAX is sent. The socket is left open: the caller ends it.
 */
async function flood(
  f: Fortress,
  request: string,
  until: (received: string) => boolean = () => false,
  stallMs = STALL_MS,
): Promise<Flood> {
  const sock = net.connect(f.port, '127.0.0.1');
  cleanup.add(() => sock.destroy());
  sock.on('error', () => {});
  const got: Buffer[] = [];
  sock.on('data', (d: Buffer) => got.push(d));
  const received = () => Buffer.concat(got).toString('latin1');
  sock.write(`HELLO USER='flooder'\n${request}\n`);
  await waitFor(() => /^OK\n.*OK[^\n]*\n/s.test(received()), `the daemon to accept ${request} (got ${JSON.stringify(received())})`);

  let maxRssKiB = rssKiB(f.pid);
  const sampler = setInterval(() => {
    try {
      maxRssKiB = Math.max(maxRssKiB, rssKiB(f.pid));
    } catch {
      /* exited: the probes say so */
    }
  }, 100);
  const chunk = Buffer.alloc(MiB, 0x41);
  let sent = 0;
  let stalled = false;
  try {
    while (sent < FLOOD_MAX && !until(received())) {
      const more = sock.write(chunk);
      sent += chunk.length;
      if (more) continue;
      const drained = await new Promise<boolean>((res) => {
        const t = setTimeout(() => {
          sock.off('drain', ok);
          res(false);
        }, stallMs);
        const ok = () => {
          clearTimeout(t);
          res(true);
        };
        sock.once('drain', ok);
      });
      if (!drained && !until(received())) {
        stalled = true;
        break;
      }
    }
  } finally {
    clearInterval(sampler);
  }
  maxRssKiB = Math.max(maxRssKiB, rssKiB(f.pid));
  return { sent, stalled, maxRssKiB, received, sock };
}

/** Close a flooding client and wait until the daemon has let it go. */
async function leave(fl: Flood): Promise<void> {
  const closed = new Promise<void>((res) => fl.sock.once('close', () => res()));
  fl.sock.destroy();
  await closed;
}

describe('hostile input: a console that does not read', () => {
  let f: Fortress;

  before(async () => {
    const dir = cleanup.dir('hostile-input-');
    const tel = await deafServer(0);
    const telPort = (tel.address() as net.AddressInfo).port;
    const sockPath = path.join(dir, 'vm.sock');
    await deafServer(sockPath);
    // the daemon kills its process console when it stops; this runs after that, for a daemon that died
    let sleepPid = 0;
    cleanup.add(() => {
      try {
        if (sleepPid && fs.readFileSync(`/proc/${sleepPid}/cmdline`, 'latin1').includes('sleep')) process.kill(sleepPid, 'SIGKILL');
      } catch {
        /* gone with the daemon */
      }
    });
    f = await startFortress(
      cleanup,
      [
        `console name="stuck-telnet" dev="127.0.0.1:${telPort}"`,
        `console name="stuck-bc" dev="127.0.0.1:${telPort}"`,
        `console name="stuck-unix" dev="unix:${sockPath}"`,
        `console name="stuck-proc" dev="/bin/sleep 600"`,
        `console name="quiet" dev="test:" testopts="p:0"`,
        '',
      ].join('\n'),
      // the bystanders' logs are what the probes watch; the harness does not turn logging on
      { dir, header: 'global log="%N.log"\n' },
    );
    for (const n of ['stuck-telnet', 'stuck-bc', 'stuck-unix', 'stuck-proc']) {
      const log = await waitForFile(f.log(n), `Console [${n}] connected to`, 30000);
      sleepPid ||= Number(/"sleep" \(pid (\d+)\)/.exec(log)?.[1] ?? 0);
    }
  });

  for (const name of ['stuck-telnet', 'stuck-unix', 'stuck-proc']) {
    test(`${name}: the writer is paused, memory stays bounded and returns, the daemon keeps serving`, { timeout: TEST_TIMEOUT_MS }, async (t) => {
      const base = rssKiB(f.pid);
      const fl = await underAttack(f, () => flood(f, `CONNECT CONSOLE='${name}'`));
      t.diagnostic(`${fl.sent / MiB} MiB sent before the daemon stopped reading; RSS ${Math.round(base / 1024)} → max ${Math.round(fl.maxRssKiB / 1024)} MiB`);
      assert.ok(fl.stalled, `the daemon kept reading: ${fl.sent / MiB} MiB sent`);
      assert.ok(fl.sent < FLOOD_MAX);
      assert.ok(
        fl.maxRssKiB <= base + RSS_SLACK_KIB,
        `RSS reached ${Math.round(fl.maxRssKiB / 1024)} MiB during ${fl.sent / MiB} MiB typed (base ${Math.round(base / 1024)} MiB)`,
      );
      assert.doesNotMatch(fl.received(), /input dropped/, 'a paused writer loses nothing');
      if (name === 'stuck-telnet') {
        // no drain for 10 s: the writer is let go (it may type its escape to leave); what it
        // had sent meanwhile fills the console's queue to the cap and the rest is dropped, said once
        await waitFor(() => /Console \[stuck-telnet\] input dropped: \d+ bytes/.test(fl.received()), 'the drop notice after the stall', 30000);
        assert.ok(rssKiB(f.pid) <= base + RSS_SLACK_KIB);
      }
      await leave(fl);
      await memoryReturns(f.pid, base);
    });
  }

  test('broadcast: the writer is not paused; its input to the stalled console is dropped with a notice', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const base = rssKiB(f.pid);
    const fl = await underAttack(f, () =>
      // a longer stall limit: a loaded machine must not pass for a pause here
      flood(f, "CONNECT OPTION=BROADCAST CONSOLE='stuck-bc' CONSOLE='quiet'", (got) => got.includes('input dropped'), 3 * STALL_MS),
    );
    const seen = fl.received();
    t.diagnostic(`${fl.sent / MiB} MiB sent until the notice; RSS ${Math.round(base / 1024)} → max ${Math.round(fl.maxRssKiB / 1024)} MiB`);
    assert.equal(fl.stalled, false, `the broadcast writer was paused after ${fl.sent / MiB} MiB`);
    assert.match(seen, /\r\n<ConMan> Console \[stuck-bc\] input dropped: \d+ bytes \(the console is not reading\)\.\r\n/);
    assert.doesNotMatch(seen, /Console \[quiet\] input dropped/);
    assert.ok(fl.maxRssKiB <= base + RSS_SLACK_KIB, `RSS reached ${Math.round(fl.maxRssKiB / 1024)} MiB`);
    await leave(fl);
    await memoryReturns(f.pid, base);
  });

  test('&L sent 20,000 times in a burst: one replay read at a time, memory bounded, the daemon keeps serving', { timeout: TEST_TIMEOUT_MS }, async (t) => {
    const base = rssKiB(f.pid);
    const sock = net.connect(f.port, '127.0.0.1');
    cleanup.add(() => sock.destroy());
    sock.on('error', () => {});
    let got = '';
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    sock.write("HELLO USER='replayer'\nCONNECT CONSOLE='quiet'\n");
    await waitFor(() => /^OK\n.*OK[^\n]*\n/s.test(got), 'attached to quiet');
    const ended = (): number => got.split('End log replay of console [quiet]').length - 1;
    // the escaped &L of the conman protocol (0xFF 'L')
    const ask = Buffer.from('\xff\x4c', 'latin1');
    const asks = 20_000;
    let maxRss = base;
    const replays = await underAttack(f, async () => {
      sock.write(Buffer.concat(Array.from({ length: asks }, () => ask)));
      await waitFor(() => ended() >= 1, 'a replay', 60000);
      // then one more &L, asked again each second until answered: its replay comes after the burst is done
      const before = ended();
      let last = 0;
      await waitFor(() => {
        maxRss = Math.max(maxRss, rssKiB(f.pid));
        if (ended() > before) return true;
        if (Date.now() - last >= 1000) {
          last = Date.now();
          sock.write(ask);
        }
        return false;
      }, 'a replay asked after the burst', 60000);
      return ended();
    });
    t.diagnostic(`${replays} replays for ${asks + 1}+ requests; RSS ${Math.round(base / 1024)} → max ${Math.round(maxRss / 1024)} MiB`);
    assert.ok(replays < asks / 10, `${replays} replays`);
    assert.ok(maxRss <= base + RSS_SLACK_KIB, `RSS reached ${Math.round(maxRss / 1024)} MiB`);
    sock.destroy();
    await memoryReturns(f.pid, base);
  });
});
