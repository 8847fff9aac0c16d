// Pattern alerts in process: the manager on a registry of stand-in consoles
// (taps, batches, recent() and its filters, counters, <ConMan> notices that
// wait for the end of a line, a backlog past its bound skipped without
// joining lines, consoles added and removed, a reload with a bad rules file),
// and the webhook and exec sinks on their own (retries with backoff, 4xx not
// retried, the bounded queue, concurrency, the timeout, the environment).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { Alert, AlertRecord } from '../src/alerts/alert.js';
import { ExecSink } from '../src/alerts/exec-sink.js';
import { AlertManager, MAX_PENDING } from '../src/alerts/manager.js';
import { WebhookSink } from '../src/alerts/webhook.js';
import { defaultServerConfig } from '../src/config/parse.js';
import type { Priority, ServerConfig } from '../src/config/types.js';
import type { Console } from '../src/engine/console.js';
import { ConsoleRegistry } from '../src/engine/registry.js';
import { Ring } from '../src/engine/ring.js';
import { DaemonLog } from '../src/logging/daemon-log.js';
import { Cleanup, freePort, waitFor } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

class CaptureLog extends DaemonLog {
  readonly lines: string[] = [];
  constructor() {
    super({ priority: 'debug', echo: false });
  }
  override write(p: Priority, msg: string): void {
    this.lines.push(`${p}: ${msg}`);
  }
}

interface Fake {
  c: Console;
  /** what went into its log (notices only: the stand-in has no device) */
  logged: Buffer[];
  /** output from the device */
  out(s: string | Buffer): void;
}

/** A stand-in for a Console: a name, a tap, a log that keeps what it is given, and the replay ring (before-context comes from it). */
function fake(name: string, replayBytes = 16384): Fake {
  const logged: Buffer[] = [];
  const raw = {
    name,
    tap: null as ((b: Buffer) => void) | null,
    log: { write: (b: Buffer) => logged.push(b) },
    events: null,
    replay: new Ring(replayBytes),
    // as Console.contextTail for a console that keeps a ring
    contextTail: () => Promise.resolve({ tail: raw.replay.tail(), cut: raw.replay.size >= raw.replay.capacity }),
  };
  const out = (s: string | Buffer): void => {
    const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    // as Console.fromDevice: the log, the tap, then the replay ring
    raw.tap?.(b);
    raw.replay.push(b);
  };
  return { c: raw as unknown as Console, logged, out };
}

function server(over: Partial<ServerConfig> = {}): ServerConfig {
  return { ...defaultServerConfig(), ...over };
}

function manager(names: string[], over: Partial<ServerConfig> = {}): { m: AlertManager; reg: ConsoleRegistry; dlog: CaptureLog; cons: Map<string, Fake> } {
  const reg = new ConsoleRegistry();
  const cons = new Map<string, Fake>();
  for (const n of names) {
    const f = fake(n);
    cons.set(n, f);
    reg.add(f.c);
  }
  const dlog = new CaptureLog();
  const m = new AlertManager({ registry: reg, dlog, server: server(over) });
  cleanup.add(() => m.stop());
  return { m, reg, dlog, cons };
}

test('manager: taps every console, matches in batches, recent() with filters, counters, the event stream', async () => {
  const { m, reg, dlog, cons } = manager(['n1', 'n2']);
  const events: string[] = [];
  reg.events.on((e) => {
    if (e.type === 'alert') events.push(`${e.console}:${e.alert.rule}:${e.phase}`);
  });
  assert.match(dlog.lines.join('\n'), /notice: Alerts: 15 rules \(15 built-in\) on 2 consoles; to daemon log, console logs/);
  const n1 = cons.get('n1')!;
  n1.out('[ 1.000] booting\r\n[ 2.000] Kernel pa');
  n1.out('nic - not syncing: Fatal exception\r\n');
  n1.out('[ 2.100] ---[ end Kernel panic - not syncing: Fatal exception ]---\r\n');
  const [a] = await waitFor(() => (m.recent().length > 0 ? m.recent() : null), 'the alert');
  assert.equal(a!.rule, 'kernel-panic');
  assert.equal(a!.console, 'n1');
  assert.equal(a!.line, '[ 2.000] Kernel panic - not syncing: Fatal exception');
  assert.deepEqual(a!.before, ['[ 1.000] booting']);
  assert.deepEqual(a!.after, ['[ 2.100] ---[ end Kernel panic - not syncing: Fatal exception ]---']);
  assert.equal(a!.complete, false);
  // copies: changing one changes nothing inside
  a!.after.push('x');
  assert.equal(m.recent()[0]!.after.length, 1);
  assert.deepEqual(m.recent({ console: 'n2' }), []);
  assert.equal(m.recent({ console: ['n2', 'n1'] }).length, 1);
  assert.equal(m.recent({ severity: 'crit' }).length, 1);
  assert.equal(m.recent({ severity: 'alert' }).length, 0);
  assert.equal(m.recent({ rule: 'kernel-oops' }).length, 0);
  assert.equal(m.recent({ since: Date.now() + 60_000 }).length, 0);
  assert.equal(m.recent({ afterId: a!.id }).length, 0);
  assert.equal(JSON.parse(JSON.stringify(m.recent()))[0].rule, 'kernel-panic', 'plain JSON');
  assert.ok(dlog.lines.includes('crit: Console [n1] alert kernel-panic (crit): [ 2.000] Kernel panic - not syncing: Fatal exception'));
  const c = m.counters();
  assert.deepEqual(c.rules.find((r) => r.rule === 'kernel-panic'), { rule: 'kernel-panic', severity: 'crit', builtin: true, fired: 1, matches: 1 });
  assert.equal(c.firedBySeverity.crit, 1);
  assert.equal(c.lines, 3);
  assert.equal(c.consoles, 2);
  assert.equal(c.webhook, null);
  assert.deepEqual(events, ['n1:kernel-panic:fired']);
});

test('manager: a <ConMan> notice waits for the end of the line the log is in', async () => {
  const { m, cons } = manager(['n1']);
  const n1 = cons.get('n1')!;
  n1.out('[ 5.0] Kernel panic - not syncing: x\r\nhalf a li');
  await waitFor(() => m.recent().length === 1, 'the alert');
  assert.equal(n1.logged.length, 0, 'not in the middle of "half a li…"');
  n1.out('ne\r\n');
  await waitFor(() => n1.logged.length === 1, 'the notice');
  assert.equal(n1.logged[0]!.toString(), '\r\n<ConMan> Console [n1] alert kernel-panic (crit): [ 5.0] Kernel panic - not syncing: x.\r\n');
});

test('manager: a backlog past its bound is skipped and counted; the line open there is not joined to later text', async () => {
  const { m, cons } = manager(['n1'], { alertsFile: null });
  const n1 = cons.get('n1')!;
  // all in one turn of the event loop: the batch has not run
  n1.out('Kernel panic - not');
  n1.out(Buffer.alloc(MAX_PENDING + 1, 0x41));
  n1.out(' syncing: joined?\r\nKernel panic - not syncing: whole\r\n');
  await waitFor(() => m.recent().length === 1, 'the alert');
  assert.equal(m.recent()[0]!.line, 'Kernel panic - not syncing: whole');
  assert.equal(m.counters().bytesSkipped, MAX_PENDING + 1);
});

test('manager: consoles added and removed (a reload) get and lose their tap; console= picks consoles; a bad rules file at reload keeps the rules', async () => {
  const cleanupDir = cleanup.dir('conch-alerts-mgr-');
  const file = path.join(cleanupDir, 'alerts.rules');
  fs.writeFileSync(file, 'rule db-only err console=db[0-9]+ after=0 /^DBFAIL$/\n');
  const { m, reg, dlog, cons } = manager(['web1'], { alertsFile: file, alertDefaults: false });
  // no rule applies to web1: not even tapped
  assert.equal((cons.get('web1')!.c as unknown as { tap: unknown }).tap, null);
  const db1 = fake('db1');
  reg.add(db1.c);
  db1.out('DBFAIL\r\n');
  await waitFor(() => m.recent().length === 1, 'db1 tapped when added');
  reg.remove('db1');
  assert.equal((db1.c as unknown as { tap: unknown }).tap, null, 'untapped when removed');

  fs.writeFileSync(file, 'rule db-only err /DBFAIL (/\n');
  assert.equal(m.reconfigure(server({ alertsFile: file, alertDefaults: false })), false);
  assert.match(dlog.lines.join('\n'), /err: Reload: .*alerts\.rules:1:\d+: bad regex .*Unmatched \(/);
  assert.deepEqual(m.ruleList.map((r) => r.name), ['db-only']);
  fs.writeFileSync(file, 'rule any err after=0 /^DBFAIL$/\n');
  assert.equal(m.reconfigure(server({ alertsFile: file, alertDefaults: false })), true);
  cons.get('web1')!.out('DBFAIL\r\n');
  await waitFor(() => m.recent({ console: 'web1' }).length === 1, 'web1 tapped once a rule applies to it');
});

// ---------------------------------------------------------------- sinks on their own

function alertFor(id: number, rule = 'r'): { a: Alert; snap: AlertRecord } {
  const at = new Date().toISOString();
  const record: AlertRecord = { id, time: at, console: 'n1', rule, severity: 'err', line: `line ${id}`, before: [], after: [], complete: true, count: 1, lastTime: at, holdUntil: at };
  return { a: { record, reported: 0 } as unknown as Alert, snap: record };
}

async function answering(codes: number[]): Promise<{ port: number; got: any[] }> {
  const got: any[] = [];
  const srv = http.createServer((req, res) => {
    let s = '';
    req.on('data', (d) => (s += d));
    req.on('end', () => {
      got.push(JSON.parse(s));
      res.writeHead(codes.shift() ?? 200).end();
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  cleanup.add(() => new Promise<void>((r) => {
    srv.closeAllConnections();
    srv.close(() => r());
  }));
  return { port: (srv.address() as { port: number }).port, got };
}

test('webhook: 5xx retried with backoff, 4xx given up, in order; a full queue drops the oldest', async () => {
  const dlog = new CaptureLog();
  const r = await answering([503, 503, 200, 400, 200]);
  const w = new WebhookSink(`http://127.0.0.1:${r.port}/h`, dlog, { minBackoffMs: 20, maxBackoffMs: 40 });
  cleanup.add(() => w.stop());
  for (const id of [1, 2, 3]) {
    const { a, snap } = alertFor(id);
    w.deliver('complete', a, snap);
  }
  w.deliver('fired', alertFor(9).a, alertFor(9).snap); // fired is not sent
  await waitFor(() => w.counters.queued === 0 && r.got.length === 5, 'all answered');
  assert.deepEqual(r.got.map((b) => b.id), [1, 1, 1, 2, 3]);
  assert.deepEqual(w.counters, { sent: 2, retries: 2, rejected: 1, dropped: 0, queued: 0 });
  assert.match(dlog.lines.join('\n'), /warning: Alert webhook http:\/\/127\.0\.0\.1:\d+\/h: HTTP 503; retrying in 20 ms \(3 waiting\)/);
  assert.match(dlog.lines.join('\n'), /delivering again after 2 failed attempts/);
  assert.match(dlog.lines.join('\n'), /HTTP 400; this alert is not sent again/);

  const down = new WebhookSink(`http://127.0.0.1:${await freePort()}/h`, dlog, { queueMax: 3, minBackoffMs: 60_000 });
  cleanup.add(() => down.stop());
  for (const id of [1, 2, 3, 4, 5]) down.enqueue(JSON.stringify({ id }));
  assert.equal(down.counters.dropped, 2);
  assert.equal(down.counters.queued, 3);
});

test('exec: JSON on stdin and CONCH_ALERT_* in the environment; bounded concurrency; killed at the timeout', async () => {
  const dir = cleanup.dir('conch-alerts-exec-');
  const dlog = new CaptureLog();
  const e = new ExecSink(`cat > ${dir}/in-$CONCH_ALERT_ID; env > ${dir}/env-$CONCH_ALERT_ID; sleep 0.3`, dlog, { concurrency: 2 });
  cleanup.add(() => e.stop());
  for (const id of [1, 2, 3, 4]) {
    const { a, snap } = alertFor(id, 'disk');
    e.deliver('complete', a, snap);
  }
  assert.deepEqual({ running: e.counters.running, queued: e.counters.queued }, { running: 2, queued: 2 });
  await waitFor(() => e.counters.running === 0 && e.counters.queued === 0 && e.counters.started === 4, 'all four ran', 20000);
  const j = JSON.parse(fs.readFileSync(path.join(dir, 'in-3'), 'utf8'));
  assert.deepEqual({ phase: j.phase, id: j.id, rule: j.rule, line: j.line }, { phase: 'complete', id: 3, rule: 'disk', line: 'line 3' });
  const env = fs.readFileSync(path.join(dir, 'env-3'), 'utf8');
  for (const kv of ['CONCH_ALERT_ID=3', 'CONCH_ALERT_RULE=disk', 'CONCH_ALERT_CONSOLE=n1', 'CONCH_ALERT_SEVERITY=err', 'CONCH_ALERT_PHASE=complete', 'CONCH_ALERT_COUNT=1']) assert.ok(env.includes(kv), kv);
  assert.equal(e.counters.failed, 0);

  const slow = new ExecSink('sleep 30', dlog, { timeoutMs: 200 });
  cleanup.add(() => slow.stop());
  const { a, snap } = alertFor(5);
  slow.deliver('repeat', a, snap);
  await waitFor(() => slow.counters.timedOut === 1 && slow.counters.running === 0, 'the timeout', 20000);
  assert.equal(slow.counters.failed, 1);
  assert.match(dlog.lines.join('\n'), /Alert exec \(pid \d+\): killed after 0\.2 s/);
});

test('manager: the before-lines come from the replay ring, counted back over what came after, past a notice; gone if the ring lost them', async () => {
  const { m, reg } = manager([]);
  const a = fake('a', 4096);
  reg.add(a.c);
  const lines = Array.from({ length: 30 }, (_, i) => `[ ${i}.0] line ${i}`);
  a.out(lines.join('\r\n') + '\r\n[ 31.0] Kernel panic - not syncing: a\r\nafter 1\r\n');
  // a notice reaches the ring after the panic line (Console.notify does that), then more lines and an open one
  (a.c as unknown as { replay: Ring }).replay.push(Buffer.from('\r\n<ConMan> Console [a] joined by <x@y>.\r\n'));
  a.out('after 2\r\nafter 3\r\nopen li');
  const got = await waitFor(() => m.recent({ console: 'a' })[0], 'the alert');
  assert.deepEqual(got.before, lines.slice(10), 'the 20 lines before it');

  const b = fake('b', 4096);
  reg.add(b.c);
  b.out('[ 1.0] before\r\n[ 2.0] Kernel panic - not syncing: b\r\n' + `${'x'.repeat(100)}\r\n`.repeat(80));
  const gone = await waitFor(() => m.recent({ console: 'b' })[0], 'the alert');
  assert.deepEqual(gone.before, [], 'pushed out of a 4 KiB ring by 8 KiB in the same batch: none rather than wrong ones');
});
