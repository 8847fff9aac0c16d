// Pattern alerts where the web listener shows them: GET /api/v1/alerts, the
// event stream's `alert` events, and the
// conch_alerts_total counter in /metrics, on a real conchd whose process
// console prints a kernel panic.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor } from './helpers/wait.js';
import { startConchd } from './helpers/conchd.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('a panic on a console: in /api/v1/alerts, on the event stream, and counted in /metrics', async () => {
  const dir = cleanup.dir('alerts-web-');
  const script = path.join(dir, 'panic.js');
  // prints a panic line when it reads a key, so the event stream is open first
  fs.writeFileSync(
    script,
    `process.stdin.on('data', () => process.stdout.write('[ 12.345678] Kernel panic - not syncing: Fatal exception in interrupt\\r\\n'));\nsetInterval(() => {}, 1000);\n`,
  );
  const d = await startConchd(
    cleanup,
    `console name="panicky" dev="${process.execPath} ${script}" log="%N.log"\n`,
    { dir, extraHeader: 'server httpport=0\n' },
  );
  const out = await d.child.waitOutput(/Listening on HTTP port (\d+)/);
  const base = `http://127.0.0.1:${/Listening on HTTP port (\d+)/.exec(out)![1]}`;

  // the event stream, read as it comes
  const ac = new AbortController();
  cleanup.add(() => ac.abort());
  let streamed = '';
  void fetch(`${base}/api/v1/events`, { signal: ac.signal })
    .then(async (r) => {
      for await (const chunk of r.body!) streamed += Buffer.from(chunk as Uint8Array).toString('utf8');
    })
    .catch(() => {});
  await waitFor(async () => (await fetch(`${base}/api/v1/consoles/panicky`)).ok && streamed.length > 0, 'the console and the event stream');

  // a key makes the host panic
  const { WebSocket } = await import('ws');
  const ws = new WebSocket(`ws://127.0.0.1:${base.split(':')[2]}/api/v1/consoles/panicky/stream?mode=attach`);
  cleanup.add(() => ws.terminate());
  await new Promise((r) => ws.once('open', r));
  ws.send(Buffer.from('x'), { binary: true });

  const alerts = await waitFor(async () => {
    const r = (await (await fetch(`${base}/api/v1/alerts`)).json()) as { alerts: { console: string; rule: string; severity: string; line: string }[] };
    return r.alerts.length > 0 ? r.alerts : null;
  }, 'the alert in /api/v1/alerts');
  assert.equal(alerts[0]!.console, 'panicky');
  assert.equal(alerts[0]!.rule, 'kernel-panic');
  assert.equal(alerts[0]!.severity, 'crit');
  assert.match(alerts[0]!.line, /Kernel panic - not syncing: Fatal exception in interrupt/);
  await waitFor(() => /event: alert\ndata: .*"console":"panicky".*kernel-panic/.test(streamed), 'the alert on the event stream');
  const metrics = await (await fetch(`${base}/metrics`)).text();
  assert.match(metrics, /^conch_alerts_total\{rule="kernel-panic",severity="crit"\} 1$/m);
  const bad = await fetch(`${base}/api/v1/alerts?severity=loud`);
  assert.equal(bad.status, 400);
});
