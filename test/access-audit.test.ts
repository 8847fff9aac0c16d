// The audit log: one bounded JSON line per event, time first, mode 600,
// no symlinks followed, outages reported once and never thrown.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AuditLog, type AuditEvent } from '../src/access/audit.js';
import { tmpDir } from './helpers/wait.js';

const ev = (over: Partial<AuditEvent> = {}): AuditEvent => ({
  action: 'attach',
  user: 'alice',
  auth: 'password',
  transport: 'tls',
  source: '192.0.2.10',
  port: 51234,
  console: 'node01',
  result: 'ok',
  ...over,
});

const lines = (file: string): string[] => fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');

test('each event is one JSON line, time first, appended to a mode-600 file', () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'audit.log');
    fs.writeFileSync(file, '{"earlier":true}\n', { mode: 0o600 });
    const errors: string[] = [];
    const log = new AuditLog(file, (m) => errors.push(m), { now: () => Date.UTC(2025, 0, 2, 3, 4, 5, 678) });
    log.write(ev());
    log.write(ev({ action: 'force', result: 'ok', displaced: ['bob@198.51.100.2'], detail: 'took the console' }));
    log.write(ev({ action: 'denied', result: 'denied', missing: 'reset', console: undefined, consoles: ['a', 'b'] }));
    log.close();
    const got = lines(file);
    assert.equal(got.length, 4);
    assert.equal(got[0], '{"earlier":true}');
    assert.equal(
      got[1],
      '{"time":"2025-01-02T03:04:05.678Z","action":"attach","user":"alice","auth":"password","transport":"tls","source":"192.0.2.10","port":51234,"console":"node01","result":"ok"}',
    );
    assert.deepEqual(Object.keys(JSON.parse(got[2]!)), ['time', 'action', 'user', 'auth', 'transport', 'source', 'port', 'console', 'result', 'displaced', 'detail']);
    assert.deepEqual(JSON.parse(got[3]!), {
      time: '2025-01-02T03:04:05.678Z', action: 'denied', user: 'alice', auth: 'password', transport: 'tls',
      source: '192.0.2.10', port: 51234, consoles: ['a', 'b'], result: 'denied', missing: 'reset',
    });
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    assert.deepEqual(errors, []);
    // a new file is created mode 600
    const fresh = path.join(dir, 'new', 'audit.log');
    const l2 = new AuditLog(fresh, (m) => assert.fail(m));
    l2.write(ev());
    l2.close();
    assert.equal(fs.statSync(fresh).mode & 0o777, 0o600);
    assert.match(JSON.parse(lines(fresh)[0]!).time, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('hostile field values stay on one bounded line; unknown fields are not written', () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'audit.log');
    const log = new AuditLog(file, () => {});
    const sneaky = { ...ev({ user: 'eve\n{"action":"forged"}', detail: `x\u2028y\r\0${'z'.repeat(10_000)}` }), password: 'hunter2' } as AuditEvent;
    log.write(sneaky);
    log.write(ev({ consoles: Array.from({ length: 5000 }, (_, i) => `n${i}`), console: 'c'.repeat(1000) }));
    log.close();
    const text = fs.readFileSync(file, 'utf8');
    const got = lines(file);
    assert.equal(got.length, 2);
    assert.ok(!text.includes('hunter2'), 'no password field');
    assert.ok(!text.includes('\u2028'));
    const first = JSON.parse(got[0]!);
    assert.ok(!('password' in first));
    assert.equal(first.user, 'eve\n{"action":"forged"}');
    assert.equal(first.detail.length, 257);
    assert.ok(first.detail.endsWith('…'));
    const second = JSON.parse(got[1]!);
    assert.equal(second.consoles.length, 100);
    assert.equal(second.consolesTotal, 5000);
    assert.equal(second.console.length, 257);
    assert.ok(got[1]!.length < 2000, `line of ${got[1]!.length} characters`);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a symlink planted at the path is refused, reported once, and not written through', () => {
  const dir = tmpDir();
  try {
    const target = path.join(dir, 'target');
    fs.writeFileSync(target, '');
    const file = path.join(dir, 'audit.log');
    fs.symlinkSync(target, file);
    const errors: string[] = [];
    const log = new AuditLog(file, (m) => errors.push(m), { retryMs: 0 });
    log.write(ev());
    log.write(ev());
    log.reopen();
    assert.deepEqual(errors, [`cannot open the audit log ${file}: it is a symbolic link (refused); events are lost until it can`]);
    assert.equal(fs.readFileSync(target, 'utf8'), '');
    log.close();
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a failing write is reported once per outage and never throws', () => {
  const errors: string[] = [];
  const log = new AuditLog('/dev/full', (m) => errors.push(m));
  for (let i = 0; i < 5; i++) log.write(ev());
  log.reopen();
  log.write(ev());
  log.close();
  log.write(ev()); // after close: dropped quietly
  assert.deepEqual(errors, ['cannot write the audit log /dev/full: ENOSPC: no space left on device, write; events are lost until it can']);
});

test('an audit log that cannot be opened is retried, and the loss is told when it works again', () => {
  const dir = tmpDir();
  try {
    const blocker = path.join(dir, 'logs');
    fs.writeFileSync(blocker, 'not a directory');
    const file = path.join(blocker, 'audit.log');
    const clock = { now: 0 };
    const errors: string[] = [];
    const log = new AuditLog(file, (m) => errors.push(m), { now: () => clock.now, retryMs: 5000 });
    log.write(ev());
    clock.now += 6000;
    log.write(ev()); // retried: still failing, not reported again
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /^cannot open the audit log .*logs\/audit\.log: ENOTDIR: not a directory/);
    fs.rmSync(blocker);
    fs.mkdirSync(blocker);
    log.write(ev()); // within retryMs of the last try: counted as lost, no open yet
    clock.now += 6000;
    log.write(ev({ user: 'back' }));
    assert.deepEqual(errors.slice(1), [`audit log ${file} written again; 3 events lost meanwhile`]);
    assert.deepEqual(lines(file).map((l) => JSON.parse(l).user), ['back']);
    log.close();
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('reopen follows log rotation; no file configured means nothing happens', () => {
  const dir = tmpDir();
  try {
    const file = path.join(dir, 'audit.log');
    const log = new AuditLog(file, () => assert.fail('no error expected'));
    log.write(ev({ user: 'before' }));
    fs.renameSync(file, `${file}.1`);
    log.reopen();
    log.write(ev({ user: 'after' }));
    log.close();
    assert.deepEqual(lines(`${file}.1`).map((l) => JSON.parse(l).user), ['before']);
    assert.deepEqual(lines(file).map((l) => JSON.parse(l).user), ['after']);
    const none = new AuditLog(null, () => assert.fail('no error expected'));
    none.write(ev());
    none.reopen();
    none.close();
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
