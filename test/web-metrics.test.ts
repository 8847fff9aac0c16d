// GET /metrics on a real conchd (`server httpport=`): the Prometheus text
// parses and follows the naming rules; per-console counters move with the
// console's output; a console that cannot connect is down and counts its
// retries; a conman client shows in the client counts; reloads show in the
// reload metrics; and IPMI consoles on conch-bmcsim count session setups,
// retransmissions, a takeover, its resume and the time SOL was held
// elsewhere, with the sessions on the main thread and on IPMI threads.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cleanup, freePort, waitFor } from './helpers/wait.js';
import { startConchd, type RunningConchd } from './helpers/conchd.js';
import { RawClient } from './helpers/raw-client.js';
import { control, startBmcsim } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

interface Exposition {
  samples: Sample[];
  /** TYPE of each metric family */
  types: Map<string, string>;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/** The Prometheus text format (0.0.4), strictly: every line a comment, blank, or a sample of a family with a TYPE. */
function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
      assert.ok(m, where);
      assert.match(m[2]!, NAME, where);
      if (m[1] === 'TYPE') {
        assert.ok(['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(m[3]!), where);
        assert.ok(!types.has(m[2]!), `${where}: second TYPE`);
        types.set(m[2]!, m[3]!);
      }
      continue;
    }
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: -?\d+)?$/.exec(line);
    assert.ok(m, where);
    const labels: Record<string, string> = {};
    let rest = m[2] ?? '';
    while (rest !== '') {
      const l = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/.exec(rest);
      assert.ok(l, `${where}: labels at ${JSON.stringify(rest)}`);
      assert.ok(!(l[1]! in labels), `${where}: label ${l[1]} twice`);
      labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
      rest = rest.slice(l[0].length);
    }
    // (Prometheus parses values as Go's ParseFloat does: NaN and Inf in any case; prom-client writes "Nan")
    const v = m[3]!.toLowerCase();
    const value = v === '+inf' || v === 'inf' ? Infinity : v === '-inf' ? -Infinity : Number(v);
    assert.ok(v === 'nan' || !Number.isNaN(value), `${where}: value`);
    const family = [m[1]!, m[1]!.replace(/_(bucket|sum|count)$/, '')].find((f) => types.has(f));
    assert.ok(family, `${where}: no TYPE for ${m[1]}`);
    samples.push({ name: m[1]!, labels, value });
  }
  return { samples, types };
}

/** GET /metrics: the parsed exposition and its text. */
async function scrape(httpPort: number): Promise<Exposition & { text: string }> {
  const { status, type, body } = await new Promise<{ status: number; type: string; body: string }>((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: httpPort, path: '/metrics' }, (res) => {
        let s = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (s += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: s }));
      })
      .on('error', reject);
  });
  assert.equal(status, 200, body.slice(0, 300));
  assert.match(type, /^text\/plain; version=0\.0\.4/);
  return { ...parseExposition(body), text: body };
}

/** The value of `name` with these labels (the sample's other labels are not compared); undefined when absent. */
function valueOf(e: Exposition, name: string, labels: Record<string, string> = {}): number | undefined {
  return e.samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

async function httpPortOf(d: RunningConchd): Promise<number> {
  const out = await d.child.waitOutput(/Listening on HTTP port \d+/, 30000);
  return Number(/Listening on HTTP port (\d+)/.exec(out)![1]);
}

/** Scrape until `cond` holds for the exposition; returns it. */
async function scrapeUntil(port: number, what: string, cond: (e: Exposition) => boolean, timeoutMs = 20000): Promise<Exposition & { text: string }> {
  let last: (Exposition & { text: string }) | null = null;
  try {
    return await waitFor(
      async () => {
        last = await scrape(port);
        return cond(last) ? last : null;
      },
      what,
      timeoutMs,
      100,
    );
  } catch (e) {
    const lines = (last as (Exposition & { text: string }) | null)?.text.split('\n').filter((l) => l.startsWith('conch_')) ?? [];
    throw new Error(`${(e as Error).message}\n${lines.join('\n')}`);
  }
}

/** The conventions every conch_ family follows. */
function checkConventions(e: Exposition): void {
  // never a user or client: the alerts' rule and severity come from the configuration
  const allowed = new Set(['console', 'type', 'state', 'transport', 'version', 'rule', 'severity']);
  for (const [name, type] of e.types) {
    if (!name.startsWith('conch_')) continue;
    if (type === 'counter') assert.match(name, /_total$/, `counter ${name}`);
    else assert.doesNotMatch(name, /_total$/, `${type} ${name}`);
  }
  for (const s of e.samples) {
    if (!s.name.startsWith('conch_')) continue;
    for (const l of Object.keys(s.labels)) assert.ok(allowed.has(l), `${s.name}: label ${l}`);
  }
  // Node.js's and the process's own, under their usual names
  for (const n of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds']) assert.ok(e.types.has(n), n);
}

/** `lines` of the daemon's output matching `re` */
const count = (text: string, re: RegExp): number => [...text.matchAll(re)].length;

test('counters move with output, down consoles count retries, clients and reloads show', async () => {
  const closed = await freePort();
  const dir = cleanup.dir('conchd-metrics-');
  const missing = path.join(dir, 'missing.sock');
  const consoles = [
    'console name="n1" dev="test:" testopts="b:10,m:100,p:100" log="%N.log"',
    'console name="quiet" dev="test:" testopts="b:1,m:3600000,p:0"',
    `console name="t1" dev="127.0.0.1:${closed}"`,
    `console name="u1" dev="unix:${missing}"`,
  ];
  const d = await startConchd(cleanup, consoles.join('\n') + '\n', { dir, extraHeader: 'server httpport=0\n' });
  const hp = await httpPortOf(d);

  let e = await scrapeUntil(hp, 'n1 up and logging', (x) => valueOf(x, 'conch_console_up', { console: 'n1' }) === 1 && (valueOf(x, 'conch_console_logged_bytes_total', { console: 'n1' }) ?? 0) > 0);
  checkConventions(e);
  assert.equal(valueOf(e, 'conch_console_up', { console: 'n1', type: 'test' }), 1);
  assert.equal(valueOf(e, 'conch_console_up', { console: 't1', type: 'telnet' }), 0);
  assert.equal(valueOf(e, 'conch_console_up', { console: 'u1', type: 'unix' }), 0);
  assert.equal(valueOf(e, 'conch_consoles'), 4);
  const info = e.samples.find((s) => s.name === 'conch_build_info');
  assert.ok(info && info.value === 1 && /^\d+\.\d+\.\d+/.test(info.labels.version ?? ''), JSON.stringify(info));
  // only consoles with a log have a logged-bytes series, only IPMI consoles SOL ones
  assert.equal(valueOf(e, 'conch_console_logged_bytes_total', { console: 'quiet' }), undefined);
  assert.equal(e.samples.filter((s) => s.name.startsWith('conch_console_sol_')).length, 0);
  assert.equal(valueOf(e, 'conch_console_received_bytes_total', { console: 'quiet' }), 0);

  // the counters follow the output
  const rx = valueOf(e, 'conch_console_received_bytes_total', { console: 'n1' })!;
  const logged = valueOf(e, 'conch_console_logged_bytes_total', { console: 'n1' })!;
  e = await scrapeUntil(hp, 'n1 counters moving', (x) => valueOf(x, 'conch_console_received_bytes_total', { console: 'n1' })! >= rx + 100 && valueOf(x, 'conch_console_logged_bytes_total', { console: 'n1' })! > logged);

  // the unix console retries from 1 s, doubling: each retry counts, the first attempt does not
  e = await scrapeUntil(hp, 'u1 retrying', (x) => valueOf(x, 'conch_console_reconnects_total', { console: 'u1' })! >= 2, 20000);
  for (const name of ['u1', 't1']) {
    const failedRe = new RegExp(`Console \\[${name}\\] connection to .* failed`, 'g');
    const before = count(d.child.output, failedRe);
    const x = await scrape(hp);
    const after = count(d.child.output, failedRe);
    const retries = valueOf(x, 'conch_console_reconnects_total', { console: name })!;
    // (an attempt under way counts before its failure is logged)
    assert.ok(retries >= before - 1 && retries <= after, `${name}: ${retries} reconnects for ${before}..${after} failed attempts`);
    assert.equal(valueOf(x, 'conch_console_up', { console: name }), 0);
  }
  assert.ok(valueOf(e, 'conch_consoles_by_state', { state: 'backoff' })! + valueOf(e, 'conch_consoles_by_state', { state: 'connecting' })! >= 2);
  assert.equal(valueOf(e, 'conch_consoles_by_state', { state: 'up' }), 2);

  // a client attaching to t1 makes conchd try it at once: one more reconnect (telnet retries only every 15 s)
  const t1Before = valueOf(await scrape(hp), 'conch_console_reconnects_total', { console: 't1' })!;
  const c = new RawClient(cleanup, net.connect(d.port, '127.0.0.1'));
  c.send("HELLO USER='alice-metrics'\nCONNECT CONSOLE='t1'\n");
  await c.has(/OK/);
  e = await scrapeUntil(hp, 't1 poked', (x) => valueOf(x, 'conch_console_reconnects_total', { console: 't1' })! >= t1Before + 1);
  assert.ok(valueOf(e, 'conch_console_reconnects_total', { console: 't1' })! <= t1Before + 2);
  c.sock.destroy();

  // a conman client on n1 is counted, by transport and on the console, and never named
  const a = new RawClient(cleanup, net.connect(d.port, '127.0.0.1'));
  a.send("HELLO USER='alice-metrics'\nCONNECT CONSOLE='n1'\n");
  await a.has(/OK/);
  e = await scrapeUntil(hp, 'a conman client', (x) => valueOf(x, 'conch_clients', { transport: 'conman' }) === 1 && valueOf(x, 'conch_console_clients', { console: 'n1' }) === 1);
  assert.equal(valueOf(e, 'conch_clients', { transport: 'web' }), 0);
  assert.equal(valueOf(e, 'conch_clients', { transport: 'tls' }), 0);
  assert.equal(valueOf(e, 'conch_console_clients', { console: 'quiet' }), 0);
  assert.ok(!e.text.includes('alice-metrics'), 'no user name in /metrics');
  a.sock.destroy();
  await scrapeUntil(hp, 'the client gone', (x) => valueOf(x, 'conch_clients', { transport: 'conman' }) === 0 && valueOf(x, 'conch_console_clients', { console: 'n1' }) === 0);

  // reloads: none yet counts as a success at the start
  e = await scrape(hp);
  assert.equal(valueOf(e, 'conch_config_last_reload_successful'), 1);
  const startedAt = valueOf(e, 'conch_config_last_reload_success_timestamp_seconds')!;
  assert.ok(Math.abs(startedAt - Date.now() / 1000) < 120, `start time ${startedAt}`);
  assert.equal(valueOf(e, 'conch_log_write_errors_total'), 0);
  const rxBeforeReload = valueOf(e, 'conch_console_received_bytes_total', { console: 'n1' })!;

  const conf = fs.readFileSync(d.conf, 'utf8');
  fs.writeFileSync(d.conf, conf + 'console name="n2" dev="test:" testopts="b:1,m:3600000,p:0"\n');
  process.kill(d.child.proc.pid!, 'SIGHUP');
  e = await scrapeUntil(hp, 'the good reload', (x) => valueOf(x, 'conch_consoles') === 5 && valueOf(x, 'conch_config_last_reload_success_timestamp_seconds')! > startedAt);
  assert.equal(valueOf(e, 'conch_config_last_reload_successful'), 1);
  const goodAt = valueOf(e, 'conch_config_last_reload_success_timestamp_seconds')!;
  // a console the reload left alone keeps its counts
  assert.ok(valueOf(e, 'conch_console_received_bytes_total', { console: 'n1' })! >= rxBeforeReload);

  fs.writeFileSync(d.conf, conf + 'console name="n2" dev="test:" nonsense="x"\n');
  process.kill(d.child.proc.pid!, 'SIGHUP');
  e = await scrapeUntil(hp, 'the bad reload', (x) => valueOf(x, 'conch_config_last_reload_successful') === 0);
  assert.equal(valueOf(e, 'conch_config_last_reload_success_timestamp_seconds'), goodAt);
  assert.equal(valueOf(e, 'conch_consoles'), 5);
  checkConventions(e);
  await d.child.stop();
});

test('with access rules, a scraper sees the series of the consoles it may monitor only', async () => {
  const dir = cleanup.dir('conchd-metrics-rules-');
  const rules = path.join(dir, 'access');
  // no users file: a loopback client is "anonymous", and the rules apply to that name
  fs.writeFileSync(rules, 'anonymous  n1  monitor\n', { mode: 0o600 });
  const consoles = ['console name="n1" dev="test:" testopts="b:1,m:3600000,p:0"', 'console name="n2" dev="test:" testopts="b:1,m:3600000,p:0"'];
  const d = await startConchd(cleanup, consoles.join('\n') + '\n', { dir, extraHeader: `server httpport=0\nserver access="${rules}"\n` });
  const hp = await httpPortOf(d);
  const e = await scrapeUntil(hp, 'n1 up', (x) => valueOf(x, 'conch_console_up', { console: 'n1' }) === 1);
  assert.equal(valueOf(e, 'conch_consoles'), 1);
  assert.deepEqual([...new Set(e.samples.filter((s) => s.labels.console !== undefined).map((s) => s.labels.console))], ['n1']);
  assert.ok(!e.text.includes('n2'), 'nothing about n2');
  await d.child.stop();
});

for (const threads of [0, 2])
  test(`IPMI: session setups, retransmissions, a takeover, its resume and the time held elsewhere (ipmithreads=${threads})`, async () => {
    const sim = await startBmcsim(cleanup, 2, ['--heartbeat', '1']);
    const conf = [1, 2].map((i) => `console name="node0${i}" dev="ipmi:127.0.0.1:${sim.basePort + i - 1}" ipmiopts="U:admin,P:password" log="%N.log"\n`).join('');
    const d = await startConchd(cleanup, conf, { extraHeader: `server httpport=0\nserver ipmithreads=${threads}\n` });
    const hp = await httpPortOf(d);
    const up = (x: Exposition, n: string): boolean => valueOf(x, 'conch_console_up', { console: n, type: 'ipmi' }) === 1;
    let e = await scrapeUntil(hp, 'both consoles up and logging', (x) => up(x, 'node01') && up(x, 'node02') && valueOf(x, 'conch_console_logged_bytes_total', { console: 'node02' })! > 0, 30000);
    checkConventions(e);
    e = await scrapeUntil(hp, 'two session setups', (x) => valueOf(x, 'conch_ipmi_session_setups_total')! >= 2);
    assert.equal(valueOf(e, 'conch_ipmi_session_setup_failures_total'), 0);
    for (const n of ['node01', 'node02']) {
      assert.equal(valueOf(e, 'conch_console_sol_takeovers_total', { console: n }), 0);
      assert.equal(valueOf(e, 'conch_console_sol_resumes_total', { console: n }), 0);
      assert.equal(valueOf(e, 'conch_console_sol_held_elsewhere_seconds_total', { console: n }), 0);
    }

    // someone else takes node02's SOL for 5 seconds: a takeover, time held elsewhere growing, then the resume
    const r = await control(sim, 'POST', '/bmcs/node02/steal', { seconds: 5 });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    e = await scrapeUntil(hp, 'the takeover', (x) => valueOf(x, 'conch_console_sol_takeovers_total', { console: 'node02' }) === 1, 25000);
    const heldAtTakeover = valueOf(e, 'conch_console_sol_held_elsewhere_seconds_total', { console: 'node02' })!;
    e = await scrapeUntil(hp, 'the resume', (x) => valueOf(x, 'conch_console_sol_resumes_total', { console: 'node02' }) === 1, 40000);
    const held = valueOf(e, 'conch_console_sol_held_elsewhere_seconds_total', { console: 'node02' })!;
    assert.ok(held > heldAtTakeover && held >= 1 && held < 30, `held elsewhere ${held} s (at the takeover ${heldAtTakeover} s)`);
    assert.equal(valueOf(e, 'conch_console_sol_takeovers_total', { console: 'node02' }), 1);
    assert.equal(valueOf(e, 'conch_console_sol_takeovers_total', { console: 'node01' }), 0);
    assert.equal(valueOf(e, 'conch_console_up', { console: 'node02' }), 1, 'a takeover is not a disconnection');
    // after the resume the time held elsewhere stays put
    const again = await scrape(hp);
    assert.equal(valueOf(again, 'conch_console_sol_held_elsewhere_seconds_total', { console: 'node02' }), held);

    // every datagram to and from node01's BMC lost for a while: its checks are sent again
    const before = valueOf(e, 'conch_ipmi_retransmissions_total')!;
    assert.equal((await control(sim, 'POST', '/bmcs/node01/faults', { loss: 1 })).status, 200);
    try {
      await scrapeUntil(hp, 'a retransmission', (x) => valueOf(x, 'conch_ipmi_retransmissions_total')! > before, 15000);
    } finally {
      await control(sim, 'POST', '/bmcs/node01/faults', { loss: 0 });
    }
    await d.child.stop();
  });
