// The console engine on its own: state machine, backoff, fan-out, replay.
// (Devices are tested against real peers in their own files; here a scripted
// device lets the test drive every transition.)

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ALERT_CONTEXT_BYTES, Console } from '../src/engine/console.js';
import { ConsoleLog } from '../src/logging/console-log.js';
import type { Identity, KickReason, Session } from '../src/engine/session.js';
import { BackoffTimer } from '../src/engine/backoff.js';
import { Ring } from '../src/engine/ring.js';
import { naturalCompare } from '../src/engine/natural-sort.js';
import { frameNotice, timeDelta } from '../src/util/notice.js';
import { LineFilter } from '../src/logging/line-filter.js';
import { quietLog } from '../src/logging/daemon-log.js';
import type { Device, DeviceHandler } from '../src/devices/device.js';
import type { ConsoleConfig } from '../src/config/types.js';
import { waitFor } from './helpers/wait.js';
import { TimestampMarks } from '../src/daemon/timestamp-marks.js';

class ScriptedDevice implements Device {
  readonly type = 'test' as const;
  backoff = { minMs: 40, maxMs: 200, healthyMs: 100 };
  h: DeviceHandler | null = null;
  attempts = 0;
  written: Buffer[] = [];
  breaks = 0;
  label(): string {
    return '"scripted"';
  }
  connect(h: DeviceHandler): void {
    this.h = h;
    this.attempts++;
  }
  /** input the scripted peer has not taken; write() says full from `high` on */
  backlog = 0;
  high = Infinity;
  write(b: Buffer): boolean {
    this.written.push(b);
    this.backlog += b.length;
    return this.backlog < this.high;
  }
  queued(): number {
    return this.backlog;
  }
  /** the peer takes everything: the queue is empty and the engine hears of it */
  drain(): void {
    this.backlog = 0;
    this.h!.onDrain!();
  }
  sendBreak(): void {
    this.breaks++;
  }
  async close(): Promise<void> {}
}

const cfg: ConsoleConfig = {
  name: 'c1',
  dev: 'scripted',
  spec: { type: 'test', opts: { bytes: 1, maxMs: 1, minMs: 1, prob: 0 } },
  log: null,
  logOpts: { lock: true, sanitize: false, timestamp: false },
  solSteal: 'polite',
  ptyMode: 'raw',
  loc: { file: 'x', line: 1, col: 1 },
};

const ident = (user: string): Identity => ({
  user,
  host: 'localhost',
  tty: null,
  address: '127.0.0.1',
  port: 1,
  groups: [],
  auth: 'claimed',
  transport: 'conman',
});

class Recorder implements Session {
  out: Buffer[] = [];
  notices: string[] = [];
  kicks: KickReason[] = [];
  constructor(readonly identity = ident('r')) {}
  kicked(_c: Console, why: KickReason): void {
    this.kicks.push(why);
  }
  idleMs(): number {
    return 0;
  }
  output(_c: Console, d: Buffer): void {
    this.out.push(d);
  }
  notice(_c: Console, f: Buffer, _info: boolean): void {
    this.notices.push(f.toString('latin1'));
  }
}

describe('console state machine', () => {
  test('connecting → up → backoff → retry, with notices in conman wording', async () => {
    const dev = new ScriptedDevice();
    const c = new Console(cfg, dev, null, quietLog(), 4096);
    const r = new Recorder();
    c.attach(r, 'monitor');
    c.start();
    assert.equal(c.state, 'connecting');
    dev.h!.onUp();
    assert.equal(c.state, 'up');
    assert.match(r.notices[0]!, /^\r\n<ConMan> Console \[c1\] connected to "scripted"\.\r\n$/);
    dev.h!.onData(Buffer.from('hello'));
    assert.equal(Buffer.concat(r.out).toString(), 'hello');
    dev.h!.onDown('peer closed');
    assert.equal(c.state, 'backoff');
    assert.match(r.notices[1]!, /Console \[c1\] disconnected from "scripted" after 0s\./);
    assert.ok(c.status().retryAt, 'a retry is scheduled');
    await waitFor(() => dev.attempts === 2, 'the retry after backoff');
    assert.equal(c.state, 'connecting');
    await c.stop();
    assert.equal(c.state, 'down');
  });

  test('a client attaching to a console in backoff triggers an immediate attempt', async () => {
    const dev = new ScriptedDevice();
    dev.backoff = { minMs: 60_000, maxMs: 120_000, healthyMs: 1000 };
    const c = new Console(cfg, dev, null, quietLog(), 4096);
    c.start();
    dev.h!.onDown('refused');
    assert.equal(c.state, 'backoff');
    assert.equal(c.poke(), true);
    assert.equal(dev.attempts, 2);
    assert.equal(c.poke(), false, 'already connecting');
    await c.stop();
  });

  test('onReady (e.g. a unix socket appeared) cuts the backoff short', async () => {
    const dev = new ScriptedDevice();
    dev.backoff = { minMs: 60_000, maxMs: 120_000, healthyMs: 1000 };
    const c = new Console(cfg, dev, null, quietLog(), 4096);
    c.start();
    dev.h!.onDown('no such file');
    dev.h!.onReady();
    assert.equal(dev.attempts, 2);
    await c.stop();
  });

  test('input and break reach the device only while up', async () => {
    const dev = new ScriptedDevice();
    const c = new Console(cfg, dev, null, quietLog(), 4096);
    c.start();
    c.input(Buffer.from('lost'));
    c.sendBreak();
    dev.h!.onUp();
    c.input(Buffer.from('kept'));
    c.sendBreak();
    assert.deepEqual(dev.written.map(String), ['kept']);
    assert.equal(dev.breaks, 1);
    await c.stop();
  });

  test('output reaches the session that typed last first, then every other reader once', async () => {
    const dev = new ScriptedDevice();
    const c = new Console(cfg, dev, null, quietLog(), 4096);
    const order: string[] = [];
    const reader = (name: string): Session => ({
      identity: ident(name),
      output: (_c, d) => void order.push(`${name}:${d}`),
      notice: () => {},
      kicked: () => {},
      idleMs: () => 0,
    });
    const [a, b, typist] = [reader('a'), reader('b'), reader('typist')];
    for (const s of [a, b, typist]) c.attach(s, 'monitor');
    c.start();
    dev.h!.onUp();
    dev.h!.onData(Buffer.from('1'));
    c.input(Buffer.from('k'), typist);
    dev.h!.onData(Buffer.from('2'));
    c.detach(typist); // it left: the others still get everything, in their order
    dev.h!.onData(Buffer.from('3'));
    assert.deepEqual(order, ['a:1', 'b:1', 'typist:1', 'typist:2', 'a:2', 'b:2', 'a:3', 'b:3']);
    await c.stop();
  });

  test('replay holds output and notices, newest last', async () => {
    const dev = new ScriptedDevice();
    const c = new Console(cfg, dev, null, quietLog(), 4096);
    c.start();
    dev.h!.onUp();
    dev.h!.onData(Buffer.from('x'.repeat(5000)));
    dev.h!.onData(Buffer.from('END'));
    const tail = c.replay.tail().toString();
    assert.equal(tail.length, 4096);
    assert.ok(tail.endsWith('END'));
    await c.stop();
  });

  test('a logged console keeps recent output in memory only for alerts its log cannot give back', () => {
    // its replay, and the alerts' before-lines, are read back from a log that holds the bytes as they came
    const plain = new ConsoleLog('/nonexistent/%N.log', { lock: false, sanitize: false, timestamp: false }, { name: 'c1', dev: 'test' }, quietLog());
    const c = new Console(cfg, new ScriptedDevice(), plain, quietLog(), 16384);
    c.tap = () => {};
    assert.equal(c.replay.capacity, 0);
    // a stamped log is not what the matcher saw: an alert rule's console keeps its context in memory
    const stamped = new ConsoleLog('/nonexistent/%N.log', { lock: false, sanitize: false, timestamp: true }, { name: 'c2', dev: 'test' }, quietLog());
    const d = new Console(cfg, new ScriptedDevice(), stamped, quietLog(), 16384);
    assert.equal(d.replay.capacity, 0);
    d.tap = () => {};
    assert.equal(d.replay.capacity, ALERT_CONTEXT_BYTES);
    d.tap = null;
    assert.equal(d.replay.capacity, 0);
    // without a log, the whole replay, tap or not
    assert.equal(new Console(cfg, new ScriptedDevice(), null, quietLog(), 16384).replay.capacity, 16384);
  });
});

/** A writer session that records its pause state and its notices. */
class Writer implements Session {
  readonly identity = ident('w');
  kicked(): void {}
  idleMs(): number {
    return 0;
  }
  paused = false;
  throttles = 0;
  notices: string[] = [];
  constructor(private readonly pausable = true) {}
  output(): void {}
  notice(_c: Console, f: Buffer): void {
    this.notices.push(f.toString('latin1'));
  }
  throttle(_c: Console, on: boolean): boolean {
    if (!this.pausable) return false;
    this.throttles++;
    this.paused = on;
    return on;
  }
}

describe('attaching clients', () => {
  const started = () => {
    const dev = new ScriptedDevice();
    const c = new Console(cfg, dev, null, quietLog(), 4096);
    c.start();
    dev.h!.onUp();
    return { dev, c };
  };
  const texts = (r: Recorder) => r.notices.map((n) => n.replace(/^\r\n<ConMan> /, '').replace(/ at \d\d-\d\d \d\d:\d\d\.\r\n$/, ''));

  test('monitor reads, join writes beside, force lets the writers go with conman\'s notices', async () => {
    const { c } = started();
    const [m, a, b, f] = ['mon', 'alice', 'bob', 'fred'].map((u) => new Recorder(ident(u))) as [Recorder, Recorder, Recorder, Recorder];
    c.attach(m, 'monitor');
    assert.deepEqual(c.attach(a, 'attach'), []);
    assert.deepEqual(c.attach(b, 'join'), []);
    assert.equal(c.writerCount, 2);
    assert.deepEqual(texts(b), ['Console [c1] joined with <alice@localhost>'], 'the new writer hears who is there');
    assert.deepEqual(texts(a), ['Console [c1] joined by <bob@localhost>'], 'and they hear of it');
    const displaced = c.attach(f, 'force');
    assert.deepEqual(displaced.map((i) => i.user), ['alice', 'bob']);
    assert.deepEqual(a.kicks, ['forced']);
    assert.deepEqual(b.kicks, ['forced']);
    assert.deepEqual(texts(m).slice(-3), [
      'Console [c1] stolen by <fred@localhost>',
      'Console [c1] departed by <alice@localhost>',
      'Console [c1] departed by <bob@localhost>',
    ]);
    assert.deepEqual(texts(f), ['Console [c1] stolen from <alice@localhost>', 'Console [c1] stolen from <bob@localhost>']);
    assert.deepEqual(c.clients().map((l) => [l.identity.user, l.mode]), [['mon', 'monitor'], ['fred', 'write']]);
    await c.stop();
  });

  test('setMode toggles write access; a broadcast writer gets notices but no output', async () => {
    const { dev, c } = started();
    const [r, bc] = [new Recorder(ident('ro')), new Recorder(ident('bc'))];
    c.attach(r, 'monitor');
    c.attach(bc, 'broadcast');
    assert.equal(c.isWriter(bc), true);
    c.setMode(r, 'join');
    assert.equal(c.isWriter(r), true);
    c.setMode(r, 'monitor');
    assert.equal(c.isWriter(r), false);
    assert.match(texts(bc).at(-1)!, /^Console \[c1\] departed by <ro@localhost>$/);
    dev.h!.onData(Buffer.from('out'));
    assert.equal(Buffer.concat(r.out).toString(), 'out');
    assert.equal(bc.out.length, 0);
    assert.deepEqual(c.clients().map((l) => l.mode), ['monitor', 'broadcast']);
    c.detach(bc);
    assert.equal(c.writerCount, 0);
    await c.stop();
  });

  test('a console a reload removes lets every client go, telling it why', async () => {
    const { c } = started();
    const r = new Recorder();
    c.attach(r, 'join');
    await c.retire();
    assert.deepEqual(r.kicks, ['removed']);
    assert.deepEqual(c.clients(), []);
    assert.match(texts(r).at(-1)!, /removed from the configuration/);
  });
});

describe('input back-pressure', () => {
  const up = (opts: { inputCap?: number; stallMs?: number } = {}) => {
    const dev = new ScriptedDevice();
    dev.high = 100;
    const c = new Console(cfg, dev, null, quietLog(), 4096, { inputCap: 1000, ...opts });
    c.start();
    dev.h!.onUp();
    return { dev, c };
  };
  const sum = (bs: Buffer[]) => bs.reduce((n, b) => n + b.length, 0);

  test('a full device pauses its writers, each as it writes, and the drain resumes them all', async () => {
    const { dev, c } = up();
    const [a, b] = [new Writer(), new Writer()];
    c.input(Buffer.alloc(60), a);
    assert.equal(a.paused, false, 'under the high-water mark');
    c.input(Buffer.alloc(60), a);
    assert.equal(a.paused, true, 'the device said full');
    assert.equal(b.paused, false, 'a joined writer is paused when it writes');
    c.input(Buffer.alloc(10), b);
    assert.equal(b.paused, true);
    c.input(Buffer.alloc(10), a);
    assert.equal(a.throttles, 1, 'paused once per outage');
    assert.equal(sum(dev.written), 140, 'under the cap nothing is dropped');
    dev.drain();
    assert.equal(a.paused, false);
    assert.equal(b.paused, false);
    assert.deepEqual([...a.notices, ...b.notices], []);
    c.input(Buffer.alloc(10), a);
    assert.equal(a.paused, false, 'the outage is over');
    await c.stop();
  });

  test('past the cap input is dropped and its writer alone is told, once per outage plus at its end', async () => {
    const { dev, c } = up();
    const [a, other] = [new Writer(false), new Writer()];
    c.input(Buffer.alloc(200), a);
    c.input(Buffer.alloc(900), a); // 100 fit under the cap of 1000
    assert.equal(dev.queued(), 1000);
    assert.equal(a.notices.length, 1);
    assert.match(a.notices[0]!, /^\r\n<ConMan> Console \[c1\] input dropped: 100 bytes \(the console is not reading\)\.\r\n$/);
    c.input(Buffer.alloc(50), a);
    c.input(Buffer.alloc(25), a);
    assert.equal(a.notices.length, 1, 'rate-limited');
    assert.equal(other.notices.length, 0);
    dev.drain();
    assert.equal(a.notices.length, 2);
    assert.match(a.notices[1]!, /input dropped: 75 bytes/);
    assert.equal(sum(dev.written), 1000);
    await c.stop();
  });

  test('the device going down ends the outage: paused writers resume', async () => {
    const { dev, c } = up();
    const a = new Writer();
    c.input(Buffer.alloc(150), a);
    assert.equal(a.paused, true);
    dev.backlog = 0; // a device that goes down drops its queue
    dev.h!.onDown('peer closed');
    assert.equal(a.paused, false);
    await c.stop();
  });

  test('a stall lets paused writers go; their excess is then dropped with a notice', async () => {
    const { dev, c } = up({ stallMs: 50 });
    const a = new Writer();
    c.input(Buffer.alloc(150), a);
    assert.equal(a.paused, true);
    await waitFor(() => !a.paused, 'the stall to release the writer');
    c.input(Buffer.alloc(2000), a);
    assert.equal(a.paused, false, 'not paused again within the outage');
    assert.equal(dev.queued(), 1000);
    assert.match(a.notices[0]!, /input dropped: 1150 bytes/);
    await c.stop();
  });

  test('stop() releases paused writers', async () => {
    const { c } = up();
    const a = new Writer();
    c.input(Buffer.alloc(150), a);
    assert.equal(a.paused, true);
    await c.stop();
    assert.equal(a.paused, false);
  });
});

describe('backoff', () => {
  test('doubles from min to max with ±10 % jitter, reset goes back to min', () => {
    const fired: number[] = [];
    const b = new BackoffTimer({ minMs: 1000, maxMs: 8000, healthyMs: 1 }, () => fired.push(1), () => 1);
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) {
      const before = Date.now();
      b.schedule();
      seen.push(Math.round((b.dueAt!.getTime() - before) / 100) * 100);
      b.cancel();
    }
    assert.deepEqual(seen, [1100, 2200, 4400, 8800, 8800, 8800]);
    b.reset();
    assert.equal(b.nextDelayMs, 1000);
    b.schedule(true);
    assert.ok(b.dueAt!.getTime() - Date.now() <= 5);
    b.cancel();
    assert.equal(fired.length, 0);
  });
});

describe('helpers', () => {
  test('ring keeps the newest bytes across wrap-around', () => {
    const r = new Ring(8);
    r.push(Buffer.from('abcdef'));
    r.push(Buffer.from('ghij'));
    assert.equal(r.tail().toString(), 'cdefghij');
    assert.equal(r.tail(3).toString(), 'hij');
    r.push(Buffer.from('0123456789'));
    assert.equal(r.tail().toString(), '23456789');
  });

  test('natural order: n1 < n2 < n10', () => {
    assert.deepEqual(['n10', 'n2', 'b', 'n1', 'a9'].sort(naturalCompare), ['a9', 'b', 'n1', 'n2', 'n10']);
  });

  test('notice framing and durations as conman prints them', () => {
    assert.equal(frameNotice('Console [x] joined').toString(), '\r\n<ConMan> Console [x] joined.\r\n');
    assert.equal(timeDelta(3000), '3s');
    assert.equal(timeDelta(303_000), '5m3s');
    assert.equal(timeDelta(7_207_000), '2h0m7s');
  });

  test('log filter: timestamp stamps the first character of each line', () => {
    const f = new LineFilter(false, true);
    const now = () => new Date(2026, 0, 2, 3, 4, 5);
    assert.equal(f.apply(Buffer.from('ab\r\ncd'), now).toString(), '2026-01-02 03:04:05 ab\r\n2026-01-02 03:04:05 cd');
    assert.equal(f.apply(Buffer.from('e\n'), now).toString(), 'e\n');
    assert.equal(f.apply(Buffer.from('\n'), now).toString(), '\n', 'an empty line gets no stamp until a character arrives');
  });

  test('log filter: sanitize makes 7-bit text and normalises line ends', () => {
    const f = new LineFilter(true, false);
    const out = f.apply(Buffer.from([0x61, 0x01, 0x0a, 0x62, 0x0d, 0x0d, 0x0a, 0xe1, 0x81, 0x7f, 0x09]));
    assert.equal(out.toString('latin1'), 'a^A\r\nb\r\n\r\n`a~A^?\t');
  });
});

describe('server timestamp marks', () => {
  test('are aligned to local midnight: every 1h fires on the hour, every 15m on the quarter', () => {
    const at = (h: number, m: number, sec = 0) => new Date(2026, 10, 21, h, m, sec);
    assert.equal(TimestampMarks.nextDelay(3600, at(10, 59, 30)), 30_000);
    assert.equal(TimestampMarks.nextDelay(3600, at(11, 0, 0)), 3_600_000);
    assert.equal(TimestampMarks.nextDelay(900, at(11, 20)), 10 * 60_000);
    assert.equal(TimestampMarks.nextDelay(86400, at(23, 0)), 3_600_000);
  });
});
