// The HTTP API under /api/v1: the log range finder on files of its own; the
// list at 10,000 consoles and the event stream's bounds in process; then
// real conchd processes — the list with filters and counts, one console,
// logs by bytes, lines and times, break/reset/force with and without rights
// and their audit lines, the event stream seeing a console go down, a client
// attach and a reload remove a console, an IPMI SOL taken back, and bad
// requests answered with JSON errors while the daemon stays up.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { EventEmitter } from 'node:events';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import WebSocket from 'ws';
import { Cleanup, freePort, waitFor, waitForFile } from './helpers/wait.js';
import { CONCHD, startConchd, type RunningConchd } from './helpers/conchd.js';
import { control, startBmcsim } from './bmcsim-rig.js';
import { LogScanner, NoTimesError } from '../src/web/api-log-scan.js';
import { listConsoles } from '../src/web/api-consoles.js';
import * as events from '../src/web/api-events.js';
import { openApiDocument } from '../src/web/openapi.js';
import { Router, type RouteRequest } from '../src/web/router.js';
import { HttpError, sendError } from '../src/web/http-util.js';
import type { WebContext } from '../src/web/web-context.js';
import { ConsoleRegistry } from '../src/engine/registry.js';
import { Console } from '../src/engine/console.js';
import type { Identity } from '../src/engine/session.js';
import type { Device } from '../src/devices/device.js';
import type { ConsoleConfig } from '../src/config/types.js';
import { defaultServerConfig } from '../src/config/parse.js';
import { AccessControl } from '../src/access/access-control.js';
import { quietLog } from '../src/logging/daemon-log.js';
import { stampTime } from '../src/util/notice.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

// ---------------------------------------------------------------- the log range finder

async function scanText(text: string, chunk: number, fn: (s: LogScanner) => Promise<{ start: number; end: number } | number>): Promise<string> {
  const dir = cleanup.dir('logscan-');
  const file = path.join(dir, 'x.log');
  fs.writeFileSync(file, text, 'latin1');
  const fh = await fs.promises.open(file, 'r');
  try {
    const s = new LogScanner(fh, fs.statSync(file).size, chunk);
    const r = await fn(s);
    const { start, end } = typeof r === 'number' ? { start: r, end: s.size } : r;
    return text.slice(start, end);
  } finally {
    await fh.close();
  }
}

const T0 = new Date(2025, 0, 2, 3, 4, 0).getTime();
const mark = (name: string, t: number, what = 'log at'): string => `\r\n<ConMan> Console [${name}] ${what} ${stampTime(new Date(t))} XYZ.\r\n`;

test('log ranges: the last N lines and bytes, across chunk boundaries', async () => {
  for (const chunk of [7, 64, 65536]) {
    const tail = (text: string, n: number): Promise<string> => scanText(text, chunk, (s) => s.tailLines(0, s.size, n));
    assert.equal(await tail('a\nb\nc\n', 2), 'b\nc\n');
    assert.equal(await tail('a\nb\nc', 2), 'b\nc');
    assert.equal(await tail('a\nb\nc\n', 3), 'a\nb\nc\n');
    assert.equal(await tail('a\nb\nc\n', 50), 'a\nb\nc\n');
    assert.equal(await tail('a\nb\nc\n', 0), '');
    assert.equal(await tail('', 5), '');
    assert.equal(await tail('\n\n\n', 2), '\n\n');
    const long = Array.from({ length: 3000 }, (_, i) => `line ${i} ${'x'.repeat(i % 97)}\r\n`).join('');
    assert.equal(await tail(long, 1234), long.split('\n').slice(-1235).join('\n'));
  }
});

test('log ranges: since/until by line stamps are exact to the line, found by binary search', async () => {
  // two lines a second for 10 minutes, an unstamped "log opened" mark first and a wrapped (unstamped) line now and then
  const lines = [mark('s', T0 - 5000, 'log opened at').slice(2)];
  for (let k = 0; k < 1200; k++) {
    lines.push(`${stampTime(new Date(T0 + Math.floor(k / 2) * 1000))} output ${k}\r\n`);
    if (k % 50 === 7) lines.push(`  continued ${k}\r\n`);
  }
  const text = lines.join('');
  for (const chunk of [64, 4096]) {
    const range = (since: number | null, until: number | null): Promise<string> => scanText(text, chunk, (s) => s.timeRange(since, until));
    // since: from the first line of that second (a later millisecond in it too)
    let got = await range(T0 + 100_000 + 500, null);
    assert.match(got, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d output 200\r\n/);
    assert.ok(got.endsWith('output 1199\r\n'));
    // until: through the last line of that second; an unstamped line after a stamped one goes with it
    got = await range(T0 + 100_000, T0 + 110_000);
    assert.match(got, /output 200\r\n/);
    assert.match(got, /output 221\r\n$/);
    got = await range(null, T0 + 3_000);
    assert.ok(got.startsWith('\r\n<ConMan> Console [s] log opened at') || got.startsWith('<ConMan> Console [s] log opened at'));
    assert.match(got, /output 7\r\n  continued 7\r\n$/);
    // before everything / after everything
    assert.equal(await range(null, T0 - 60_000), '');
    assert.equal(await range(T0 + 3600_000, null), '');
    assert.equal(await range(T0 - 3600_000, null), text);
  }
});

test('log ranges: without stamps, the "log at" marks date the lines after them; no dates at all is an error', async () => {
  // a mark a minute, 40 lines of output between marks, an opening mark first
  let text = mark('m', T0 - 1000, 'log opened at');
  for (let j = 0; j < 30; j++) {
    text += mark('m', T0 + j * 60_000);
    for (let k = 0; k < 40; k++) text += `out ${j}.${k} ${'y'.repeat(k)}\r\n`;
  }
  for (const chunk of [64, 65536]) {
    const range = (since: number | null, until: number | null): Promise<string> => scanText(text, chunk, (s) => s.timeRange(since, until));
    // 10:30 into minute 3: from minute 3's mark (its lines may be later than since) …
    let got = await range(T0 + 3 * 60_000 + 30_000, null);
    assert.match(got, /^<ConMan> Console \[m\] log at \S+ \S+ XYZ\.\r\nout 3\.0 /);
    // … to just before the first mark after until: minute 5's lines may be earlier than until
    got = await range(T0 + 3 * 60_000 + 30_000, T0 + 5 * 60_000 + 30_000);
    assert.match(got, /out 5\.39 y+\r\n\r\n$/);
    assert.ok(!got.includes('out 6.0 '));
    assert.ok(!got.includes('out 2.39 '));
    // exactly on a mark: that mark starts the range
    got = await range(T0 + 10 * 60_000, null);
    assert.match(got, /^<ConMan> Console \[m\] log at [^\r]*\r\nout 10\.0 /);
  }
  await assert.rejects(scanText('just output\r\nno dates here\r\n'.repeat(500), 64, (s) => s.timeRange(T0, null)), NoTimesError);
  await assert.rejects(scanText('', 64, (s) => s.timeRange(null, T0)), NoTimesError);
});

// ---------------------------------------------------------------- in process: 10,000 consoles, event streams

const ID: Identity = { user: 'alice', host: 'localhost', tty: null, address: '127.0.0.1', port: 1, groups: [], auth: 'token', transport: 'web' };

function stubDevice(): Device {
  return {
    type: 'test',
    backoff: { minMs: 1000, maxMs: 1000, healthyMs: 1000 },
    label: () => '"test:"',
    connect: () => {},
    write: () => true,
    queued: () => 0,
    sendBreak: () => {},
    close: async () => {},
  } as unknown as Device;
}

function fakeContext(n: number, rules: string | null): WebContext {
  const registry = new ConsoleRegistry();
  const logOpts = { lock: false, sanitize: false, timestamp: false };
  for (let i = 0; i < n; i++) {
    const name = `node${String(i).padStart(5, '0')}`;
    const cfg = { name, dev: 'test:', spec: { type: 'test' }, log: null, logOpts } as unknown as ConsoleConfig;
    registry.add(new Console(cfg, stubDevice(), null, quietLog(), 0));
  }
  const server = defaultServerConfig();
  if (rules !== null) {
    const file = path.join(cleanup.dir('rules-'), 'access');
    fs.writeFileSync(file, rules);
    server.accessFile = file;
  }
  return { registry, access: new AccessControl(server, quietLog()), dlog: quietLog(), server: () => server } as unknown as WebContext;
}

const request = (query: string): RouteRequest =>
  ({ url: new URL(`http://x/api/v1/consoles${query}`), res: new EventEmitter(), req: new EventEmitter(), params: {}, identity: ID }) as unknown as RouteRequest;

test('the list at 10,000 consoles: one pass, no I/O, milliseconds', async (t) => {
  const ctx = fakeContext(10_000, 'alice node0[0-4].* monitor\n');
  const list = (q: string): ReturnType<typeof listConsoles> => listConsoles(ctx, request(q), ID);
  await list(''); // warm up
  const timed = async (q: string): Promise<{ ms: number; r: Awaited<ReturnType<typeof listConsoles>> }> => {
    const t0 = performance.now();
    const r = await list(q);
    return { ms: performance.now() - t0, r };
  };
  const all = await timed('');
  assert.equal(all.r.consoles.length, 5000, 'the rules show half');
  assert.deepEqual(all.r.counts, { up: 0, connecting: 0, backoff: 0, down: 5000, total: 5000 });
  assert.equal(all.r.consoles[0]!.name, 'node00000');
  const re = await timed('?match=node0[0-9]*7');
  assert.equal(re.r.consoles.length, 500);
  assert.ok(re.r.consoles.every((c) => /^node0[0-4]\d\d7$/.test(c.name)));
  const none = await timed('?match=node.*&state=up');
  assert.equal(none.r.consoles.length, 0);
  assert.equal(none.r.counts.total, 5000);
  t.diagnostic(`10,000 consoles: list ${all.ms.toFixed(1)} ms, regex ${re.ms.toFixed(1)} ms, regex+state ${none.ms.toFixed(1)} ms`);
  // generous for two shared cores: the point is no per-console I/O or quadratic work
  assert.ok(all.ms < 1000 && re.ms < 1500 && none.ms < 1500, `too slow: ${all.ms} ${re.ms} ${none.ms}`);
  await assert.rejects(list('?match=(node'), (e: HttpError) => e.status === 400 && /^bad console regex in match=: Unmatched \( or \\\(/.test(e.message));
  await assert.rejects(list('?state=up,sideways'), (e: HttpError) => e.status === 400 && /unknown state "sideways"/.test(e.message));
});

/** A server with just the event route, as web-server.ts runs routes. */
async function eventServer(ctx: WebContext, opts: Partial<events.EventStreamOptions>): Promise<{ port: number; open: () => number; closed: Set<number> }> {
  const router = new Router();
  const open = events.register(router, ctx, opts);
  const srv = http.createServer((req, res) => {
    void (async () => {
      try {
        const url = new URL(req.url ?? '/', 'http://x');
        const { route, params } = router.match(req.method ?? 'GET', url.pathname);
        await route.handler({ req, res, url, params, identity: ID });
      } catch (e) {
        sendError(res, e instanceof HttpError ? e : new HttpError(500, String(e)));
      }
    })();
  });
  // the client ports of the connections the server has closed
  const closed = new Set<number>();
  srv.on('connection', (sock: net.Socket) => {
    const port = sock.remotePort!;
    sock.once('close', () => closed.add(port));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  cleanup.add(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  return { port: (srv.address() as net.AddressInfo).port, open, closed };
}

/** An event-stream reader that can stop reading. */
class SseClient {
  text = '';
  status = 0;
  ended = false;
  res: http.IncomingMessage | null = null;
  readonly ready: Promise<void>;
  constructor(url: string, headers: Record<string, string> = {}) {
    this.ready = new Promise((resolve, reject) => {
      const req = http.get(url, { headers }, (res) => {
        this.res = res;
        this.status = res.statusCode ?? 0;
        res.setEncoding('utf8');
        res.on('data', (d: string) => (this.text += d));
        res.on('close', () => (this.ended = true));
        res.on('error', () => (this.ended = true));
        resolve();
      });
      req.on('error', reject);
      cleanup.add(() => req.destroy());
    });
  }
  async wait(re: RegExp, what: string, ms = 20000): Promise<void> {
    await waitFor(() => re.test(this.text), `${what} in the event stream (got ${JSON.stringify(this.text.slice(-600))})`, ms);
  }
  /** the events received, parsed */
  events(): { event: string; data: any }[] {
    return [...this.text.matchAll(/^event: (\S+)\ndata: (.*)\n\n/gm)].map((m) => ({ event: m[1]!, data: JSON.parse(m[2]!) }));
  }
}

test('event stream in process: filtered by the rules, keepalives, a bound on streams, slow readers cut off', async () => {
  const ctx = fakeContext(0, 'alice vis.* monitor\n');
  const hub = ctx.registry.events;
  const { port, open, closed } = await eventServer(ctx, { maxStreams: 2, keepaliveMs: 100, closeGraceMs: 3000, bufferBytes: 256 * 1024 });
  const url = `http://127.0.0.1:${port}/api/v1/events`;
  const a = new SseClient(url);
  const b = new SseClient(url);
  await Promise.all([a.ready, b.ready]);
  assert.equal(a.status, 200);
  assert.match(a.res!.headers['content-type']!, /^text\/event-stream/);
  await waitFor(() => open() === 2, 'two streams');
  // a third is refused while two are open
  const c = await fetch(url);
  assert.equal(c.status, 503);
  assert.match((await c.json()).error, /too many event streams open \(2\)/);

  hub.emit({ type: 'notice', console: 'hidden1', text: 'not for alice' });
  hub.emit({ type: 'state', console: 'vis1', state: 'backoff', since: new Date(T0), error: 'connection refused' });
  await a.wait(/event: state\n/, 'the state event');
  assert.ok(!a.text.includes('not for alice'));
  assert.deepEqual(a.events()[0], { event: 'state', data: { type: 'state', console: 'vis1', state: 'backoff', since: new Date(T0).toISOString(), error: 'connection refused' } });
  await a.wait(/: keepalive\n\n/, 'a keepalive');

  // both stop reading; events pour in until their buffers pass the bound
  a.res!.pause();
  b.res!.pause();
  const filler = 'z'.repeat(200);
  for (let round = 0; round < 400 && open() > 0; round++) {
    for (let i = 0; i < 1000; i++) hub.emit({ type: 'notice', console: 'vis1', text: `${round}.${i} ${filler}` });
    await new Promise((r) => setImmediate(r));
  }
  assert.equal(open(), 0, 'both streams cut off');
  assert.equal(hub.listening, false, 'their listeners are gone');
  // the one that reads again gets everything up to the overflow event, then the end
  a.res!.resume();
  await waitFor(() => a.ended, 'the stream to end after its overflow event', 20000);
  const last = a.events().at(-1)!;
  assert.equal(last.event, 'overflow');
  assert.match(last.data.message, /reconnect and fetch the console list again/);
  // the one that never reads again (and so cannot even see its socket close) is let go after the grace time
  const bPort = b.res!.socket.localPort!;
  await waitFor(() => closed.has(bPort), 'the stuck reader to be disconnected', 20000);
  // and new streams are taken again
  const d = new SseClient(url);
  await d.ready;
  assert.equal(d.status, 200);
});

test('the OpenAPI document describes every route', () => {
  const doc = openApiDocument() as any;
  assert.equal(doc.openapi, '3.0.3');
  const routes = [
    '/api/v1/session', '/api/v1/login', '/api/v1/logout', '/api/v1/consoles', '/api/v1/consoles/{name}',
    '/api/v1/consoles/{name}/log', '/api/v1/consoles/{name}/break', '/api/v1/consoles/{name}/reset',
    '/api/v1/consoles/{name}/force', '/api/v1/consoles/{name}/stream', '/api/v1/events', '/api/v1/openapi.json', '/metrics',
  ];
  assert.deepEqual(Object.keys(doc.paths).sort(), [...routes].sort());
  // every $ref resolves
  const refs = JSON.stringify(doc).match(/#\/components\/schemas\/\w+/g) ?? [];
  for (const r of refs) assert.ok(doc.components.schemas[r.split('/').at(-1)!], r);
  assert.match(doc.paths['/api/v1/consoles/{name}/stream'].get.description, /mode=monitor\|attach\|join\|force/);
});

// ---------------------------------------------------------------- real daemons

interface Web {
  d: RunningConchd;
  base: string;
}

async function startWeb(body: string, opts: { dir?: string; extraHeader?: string } = {}): Promise<Web> {
  const d = await startConchd(cleanup, body, { dir: opts.dir, extraHeader: `server httpport=0\n${opts.extraHeader ?? ''}` });
  const port = Number(/Listening on HTTP port (\d+)/.exec(await d.child.waitOutput(/Listening on HTTP port \d+/))![1]);
  return { d, base: `http://127.0.0.1:${port}` };
}

interface Reply {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

interface CallOptions {
  method?: string;
  token?: string;
  cookie?: string;
  csrf?: string;
  body?: string;
  type?: string;
}

async function call(w: Web, urlPath: string, o: CallOptions = {}): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (o.token) headers.authorization = `Bearer ${o.token}`;
  if (o.cookie) headers.cookie = o.cookie;
  if (o.csrf) headers['x-csrf-token'] = o.csrf;
  if (o.body !== undefined) headers['content-type'] = o.type ?? 'application/json';
  const r = await fetch(w.base + urlPath, { method: o.method ?? 'GET', headers, body: o.body });
  const text = await r.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: r.status, headers: r.headers, text, json };
}

const post = (w: Web, urlPath: string, o: CallOptions = {}): Promise<Reply> => call(w, urlPath, { method: 'POST', ...o });

/** The error reply of a request: status and JSON body as the contract has them. */
function assertError(r: Reply, status: number, message: RegExp): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
  assert.equal(r.json?.status, status, r.text);
  assert.match(r.json.error, message);
}

const names = (r: Reply): string[] => r.json.consoles.map((c: { name: string }) => c.name);

const idle = (name: string): string => `console name="${name}" dev="test:" testopts="b:8,m:60000,p:0"\n`;

test('a daemon open to loopback: list, filters, counts, one console, logs, actions, events, bad requests', async (t) => {
  const dir = cleanup.dir('webapi-');
  const prog = path.join(dir, 'prog.sh');
  fs.writeFileSync(prog, `#!/bin/sh\necho $$ > "${dir}/proc.pid"\nexec sleep 100000\n`, { mode: 0o755 });
  const closed = await freePort();
  const BULK = 2000;
  const conf = [
    ...Array.from({ length: 12 }, (_, i) => idle(`n${i + 1}`)),
    `console name="stamped" dev="test:" testopts="b:20,m:100,p:100" logopts="timestamp" log="%N.log"\n`,
    `console name="plain" dev="test:" testopts="b:20,m:200,p:100" log="%N.log"\n`,
    `console name="bare" dev="test:" testopts="b:20,m:100,p:100" log="%N.log"\n`,
    `console name="proc" dev="${prog}"\n`,
    `console name="dead" dev="127.0.0.1:${closed}"\n`,
    ...Array.from({ length: BULK }, (_, i) => idle(`bulk${String(i).padStart(4, '0')}`)),
  ].join('');
  const w = await startWeb(conf, { dir });
  const TOTAL = BULK + 17;

  await t.test('the list, with match= and state= filters and counts', async () => {
    const all = await waitFor(async () => {
      const r = await call(w, '/api/v1/consoles');
      return r.json.counts.up === TOTAL - 1 && r.json.counts.backoff === 1 ? r : null;
    }, 'every console up but the dead one');
    assert.equal(all.status, 200);
    assert.equal(all.json.consoles.length, TOTAL);
    assert.deepEqual(all.json.counts, { up: TOTAL - 1, connecting: 0, backoff: 1, down: 0, total: TOTAL });
    // natural order: n2 before n10
    assert.deepEqual(
      names(all).filter((n) => !n.startsWith('bulk')),
      ['bare', 'dead', ...Array.from({ length: 12 }, (_, i) => `n${i + 1}`), 'plain', 'proc', 'stamped'],
    );
    assert.deepEqual(names(all).slice(1, 4), ['bulk0000', 'bulk0001', 'bulk0002']);

    const ns = await call(w, `/api/v1/consoles?match=${encodeURIComponent('n[0-9]+')}`);
    assert.deepEqual(names(ns), Array.from({ length: 12 }, (_, i) => `n${i + 1}`));
    assert.deepEqual(ns.json.counts, { up: 12, connecting: 0, backoff: 0, down: 0, total: 12 });
    // the whole name, case-insensitively
    assert.deepEqual(names(await call(w, '/api/v1/consoles?match=N1')), ['n1']);
    assert.deepEqual(names(await call(w, `/api/v1/consoles?match=${encodeURIComponent('n1|n1.')}`)), ['n1', 'n10', 'n11', 'n12']);

    const down = await call(w, '/api/v1/consoles?state=backoff,down');
    assert.deepEqual(names(down), ['dead']);
    assert.equal(down.json.counts.total, TOTAL, 'counts are before the state filter');
    const dead = down.json.consoles[0];
    assert.equal(dead.type, 'telnet');
    assert.match(dead.lastError, /refused/i);
    assert.match(dead.retryAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const both = await call(w, `/api/v1/consoles?match=${encodeURIComponent('(dead|n1)')}&state=up`);
    assert.deepEqual(names(both), ['n1']);
    assert.deepEqual(both.json.counts, { up: 1, connecting: 0, backoff: 1, down: 0, total: 2 });

    assertError(await call(w, '/api/v1/consoles?match=(n1'), 400, /^bad console regex in match=: Unmatched \( or \\\($/);
    assertError(await call(w, `/api/v1/consoles?match=${encodeURIComponent('(a)\\1')}`), 400, /Back references/);
    assertError(await call(w, '/api/v1/consoles?state=up,sideways'), 400, /unknown state "sideways" in state=; expected a comma-separated list of up, connecting, backoff, down/);
    assertError(await call(w, `/api/v1/consoles?match=${'a'.repeat(5000)}`), 400, /longer than 4096/);
  });

  await t.test('the list stays fast with thousands of consoles', async (t2) => {
    const times: number[] = [];
    for (const q of ['', '?match=bulk1.*7', '?state=backoff']) {
      const t0 = performance.now();
      const r = await call(w, `/api/v1/consoles${q}`);
      times.push(performance.now() - t0);
      assert.equal(r.status, 200);
    }
    t2.diagnostic(`${TOTAL} consoles over HTTP: all ${times[0]!.toFixed(1)} ms, regex ${times[1]!.toFixed(1)} ms, state ${times[2]!.toFixed(1)} ms`);
    assert.ok(times.every((ms) => ms < 3000), `too slow: ${times.join(', ')}`);
  });

  await t.test('one console; a missing one is a JSON 404', async () => {
    const r = await call(w, '/api/v1/consoles/n1');
    assert.equal(r.status, 200);
    assert.deepEqual(Object.keys(r.json), ['name', 'type', 'state', 'since', 'retryAt', 'lastError', 'label', 'detail', 'clients']);
    assert.equal(r.json.name, 'n1');
    assert.equal(r.json.type, 'test');
    assert.equal(r.json.state, 'up');
    assert.equal(r.json.retryAt, null);
    assert.equal(r.json.lastError, null);
    assert.equal(r.json.label, '"test:"');
    assert.ok(Date.parse(r.json.since) <= Date.now());
    assert.deepEqual(r.json.clients, []);
    assertError(await call(w, '/api/v1/consoles/nothere'), 404, /^no console named "nothere"$/);
    assertError(await call(w, '/api/v1/consoles/%ZZ'), 400, /bad percent-encoding/);
  });

  await t.test('logs: tail by bytes and lines, since/until by stamps and marks, download, errors', async () => {
    const stamped = path.join(w.d.logdir, 'stamped.log');
    // at least four different seconds of stamped lines
    await waitFor(() => fs.existsSync(stamped) && new Set(fs.readFileSync(stamped, 'latin1').match(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/gm) ?? []).size >= 4, 'four seconds of stamped lines', 30000);
    /** the reply must be exactly the bytes of the file its x-log-range names */
    const slice = (r: Reply, file: string): { start: number; end: number; text: string } => {
      const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(r.headers.get('x-log-range') ?? '');
      assert.ok(m, `x-log-range: ${r.headers.get('x-log-range')}`);
      const [start, end] = [Number(m[1]), Number(m[2])];
      const text = fs.readFileSync(file, 'latin1');
      assert.equal(r.text, text.slice(start, end));
      return { start, end, text };
    };

    let r = await call(w, '/api/v1/consoles/stamped/log?tail=100');
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(r.text.length, 100);
    let s = slice(r, stamped);
    assert.equal(s.end - s.start, 100);

    r = await call(w, '/api/v1/consoles/stamped/log?lines=5');
    s = slice(r, stamped);
    assert.equal(r.text.split('\n').length, 6, JSON.stringify(r.text));
    assert.ok(r.text.endsWith('\n'));
    assert.equal(s.text[s.start - 1], '\n');

    // since/until: the second and third distinct seconds of the file
    const stampsOf = (text: string): { at: number; t: number }[] =>
      [...text.matchAll(/^(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) /gm)].map((m) => ({ at: m.index!, t: new Date(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!).getTime() }));
    const seconds = [...new Set(stampsOf(fs.readFileSync(stamped, 'latin1')).map((x) => x.t))];
    const [s1, s2] = [seconds[1]!, seconds[2]!];
    r = await call(w, `/api/v1/consoles/stamped/log?since=${new Date(s1).toISOString()}&until=${new Date(s2).toISOString()}`);
    assert.equal(r.status, 200, r.text);
    s = slice(r, stamped);
    const inside = stampsOf(r.text);
    assert.ok(inside.length > 2);
    assert.equal(inside[0]!.at, 0, 'starts with a stamped line');
    assert.equal(inside[0]!.t, s1);
    assert.ok(inside.every((x) => x.t >= s1 && x.t <= s2));
    const around = stampsOf(s.text);
    assert.ok(around.filter((x) => x.at < s.start).every((x) => x.t < s1), 'nothing of that second before the range');
    assert.ok(around.filter((x) => x.at >= s.end).every((x) => x.t > s2), 'nothing of those seconds after it');
    // with lines=: the last lines of the range
    r = await call(w, `/api/v1/consoles/stamped/log?until=${new Date(s1).toISOString()}&lines=2`);
    assert.equal(stampsOf(r.text).length, 2);
    assert.ok(stampsOf(r.text).every((x) => x.t === s1));

    // a log without stamps: its "log opened at" mark dates what follows
    const plain = path.join(w.d.logdir, 'plain.log');
    await waitForFile(plain, 'log opened at');
    r = await call(w, `/api/v1/consoles/plain/log?since=${new Date(Date.now() + 3600_000).toISOString()}`);
    assert.equal(r.status, 200);
    assert.match(r.text, /^<ConMan> Console \[plain\] log opened at /);
    r = await call(w, `/api/v1/consoles/plain/log?until=${new Date(Date.now() - 3600_000).toISOString()}`);
    assert.ok(!r.text.includes('log opened'), JSON.stringify(r.text));

    // a log with neither (the file was truncated under conchd): since= is refused, tail still works
    const bare = path.join(w.d.logdir, 'bare.log');
    await waitForFile(bare, 'log opened at');
    fs.truncateSync(bare, 0);
    await waitFor(() => fs.statSync(bare).size > 200, 'output after the truncation');
    assertError(await call(w, `/api/v1/consoles/bare/log?since=${new Date().toISOString()}`), 400, /has no times to search: neither line stamps \(logopts="timestamp"\) nor "log at" marks/);
    assert.equal((await call(w, '/api/v1/consoles/bare/log?tail=10')).text.length, 10);

    r = await call(w, '/api/v1/consoles/stamped/log?download=1&tail=10');
    assert.equal(r.headers.get('content-disposition'), `attachment; filename="stamped.log"; filename*=UTF-8''stamped.log`);
    // the whole log
    r = await call(w, '/api/v1/consoles/plain/log');
    assert.equal(r.status, 200);
    slice(r, plain);
    assert.match(r.text, /log opened at/);

    assertError(await call(w, '/api/v1/consoles/n1/log'), 404, /^console \[n1\] has no log \(no log= in its configuration\)$/);
    assertError(await call(w, '/api/v1/consoles/nothere/log'), 404, /^no console named "nothere"$/);
    assertError(await call(w, '/api/v1/consoles/stamped/log?tail=-1'), 400, /tail= must be a whole number of bytes/);
    assertError(await call(w, '/api/v1/consoles/stamped/log?tail=10&lines=1'), 400, /not both/);
    assertError(await call(w, `/api/v1/consoles/stamped/log?tail=${64 * 1024 * 1024 + 1}`), 400, /at most 67108864 bytes/);
    assertError(await call(w, '/api/v1/consoles/stamped/log?lines=100001'), 400, /at most 100000 lines/);
    assertError(await call(w, '/api/v1/consoles/stamped/log?since=yesterday'), 400, /since= must be an ISO 8601 time/);
    // an offset whose + was not encoded is still understood
    assert.equal((await call(w, '/api/v1/consoles/stamped/log?since=2025-01-02T03:04:05+01:00&tail=1')).status, 200);
    assertError(await call(w, '/api/v1/consoles/stamped/log?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z'), 400, /since= is after until=/);
  });

  await t.test('actions without a resetcmd, on a console that is down, and force on a non-IPMI console', async () => {
    let r = await post(w, '/api/v1/consoles/n1/break');
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json, { ok: true, console: 'n1', action: 'break' });
    assertError(await post(w, '/api/v1/consoles/dead/break'), 409, /^console \[dead\] is backoff: a break can only be sent to a console that is up$/);
    assertError(await post(w, '/api/v1/consoles/n1/reset'), 409, /no "server resetcmd=" is configured/);
    assertError(await post(w, '/api/v1/consoles/n1/force'), 409, /is a test console: only an IPMI console's SOL can be held elsewhere/);
    assertError(await post(w, '/api/v1/consoles/nothere/break'), 404, /no console named/);
    r = await call(w, '/api/v1/consoles/n1/break');
    assertError(r, 405, /method GET not allowed here \(allowed: POST\)/);
    assert.equal(r.headers.get('allow'), 'POST');
  });

  await t.test('the event stream sees a client attach, a console go down and a reload remove a console', async () => {
    const sse = new SseClient(`${w.base}/api/v1/events`);
    await sse.ready;
    assert.equal(sse.status, 200);
    await sse.wait(/: conchd console events/, 'the opening comment');

    const ws = new WebSocket(`${w.base.replace('http', 'ws')}/api/v1/consoles/n2/stream?mode=monitor`);
    ws.on('error', () => {}); // the daemon going away at the end is not this test's business
    cleanup.add(() => ws.terminate());
    await sse.wait(/event: client\ndata: .*"console":"n2"/, 'the attach');
    const attach = sse.events().find((e) => e.event === 'client')!;
    assert.deepEqual(attach.data, { type: 'client', console: 'n2', action: 'attach', client: { user: 'anonymous', transport: 'web', mode: 'monitor' } });
    // the list shows it too
    const n2 = await call(w, '/api/v1/consoles/n2');
    assert.equal(n2.json.clients.length, 1);
    assert.equal(n2.json.clients[0].user, 'anonymous');
    assert.equal(n2.json.clients[0].transport, 'web');
    assert.equal(n2.json.clients[0].mode, 'monitor');
    ws.close();
    await sse.wait(/"console":"n2","action":"detach"/, 'the detach');

    // the process console's program dies
    const pidFile = path.join(dir, 'proc.pid');
    await waitFor(() => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '', 'the program pid');
    process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL');
    await sse.wait(/event: state\ndata: \{"type":"state","console":"proc","state":"backoff"/, 'proc going down');
    const st = sse.events().find((e) => e.event === 'state' && e.data.console === 'proc')!;
    assert.match(st.data.since, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.equal(typeof st.data.error, 'string');

    // a reload removes n12
    fs.writeFileSync(w.d.conf, fs.readFileSync(w.d.conf, 'utf8').replace(idle('n12'), ''));
    process.kill(w.d.child.proc.pid!, 'SIGHUP');
    await sse.wait(/event: console\ndata: \{"type":"console","console":"n12","action":"removed"\}/, 'n12 removed');
    assertError(await call(w, '/api/v1/consoles/n12'), 404, /no console named "n12"/);
  });

  await t.test('bad requests get JSON errors and the daemon stays up', async () => {
    assertError(await post(w, '/api/v1/login', { body: '{"user": "alice", ' }), 400, /^invalid JSON body/);
    assertError(await post(w, '/api/v1/login', { body: '[1,2]' }), 400, /must be an object/);
    assertError(await post(w, '/api/v1/login', { body: '{"user": 5}' }), 400, /"user" must be a non-empty string/);
    // a body over the bound: the reply comes while the client is still sending
    const big = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = http.request(`${w.base}/api/v1/login`, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': 2_000_000 } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
        res.on('error', () => resolve({ status: res.statusCode!, body }));
      });
      req.on('error', reject);
      req.write('x'.repeat(1_000_000));
    });
    assert.equal(big.status, 413);
    assert.deepEqual(JSON.parse(big.body), { error: 'request body over 65536 bytes', status: 413 });
    assertError(await post(w, '/api/v1/login', { body: 'user=alice', type: 'application/x-www-form-urlencoded' }), 415, /expected a JSON body/);
    assertError(await call(w, '/api/v1/nothing/here'), 404, /no such resource: \/api\/v1\/nothing\/here/);
    assertError(await call(w, '/api/v1/consoles', { method: 'DELETE' }), 405, /method DELETE not allowed here \(allowed: GET\)/);
    assertError(await post(w, '/api/v1/events'), 405, /allowed: GET/);
    // a request line the HTTP parser refuses
    const raw = await new Promise<string>((resolve) => {
      const s = net.connect(Number(new URL(w.base).port), '127.0.0.1', () => s.end('BLAH /\x01 HTTP/9\r\n\r\n'));
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString('latin1')));
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    assert.match(raw, /^HTTP\/1\.1 400/);
    const openapi = await call(w, '/api/v1/openapi.json');
    assert.equal(openapi.status, 200);
    assert.equal(openapi.json.openapi, '3.0.3');
    // still up and answering
    assert.equal((await call(w, '/api/v1/consoles/n1')).status, 200);
    assert.equal(w.d.child.proc.exitCode, null);
    assert.ok(!/internal error/.test(w.d.child.output), w.d.child.output.slice(-2000));
  });
});

// ---------------------------------------------------------------- users, rules, tokens, audit

function conchd(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CONCHD, ...args], { encoding: 'utf8', timeout: 60000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('with users, rules and an audit log: who sees what, who may do what, each action audited', async () => {
  const dir = cleanup.dir('webapi-rules-');
  const users = path.join(dir, 'users');
  const rules = path.join(dir, 'access');
  const audit = path.join(dir, 'audit.log');
  fs.writeFileSync(users, '', { mode: 0o600 });
  fs.writeFileSync(rules, ['alice .* all', 'bob n1 monitor,break', 'bob n[0-9]+ monitor', ''].join('\n'));
  // the users file is read at start (and on reloads): alice's password goes in first
  const pwFile = path.join(dir, 'pw');
  fs.writeFileSync(pwFile, 'alice-secret\n', { mode: 0o600 });
  const pre = path.join(dir, 'users.conf');
  fs.writeFileSync(pre, `server users="${users}"\n`);
  const added = conchd(['passwd', '-c', pre, '--password-file', pwFile, 'alice']);
  assert.equal(added.code, 0, added.stderr);
  const closed = await freePort();
  const w = await startWeb([idle('n1').replace('\n', ' log="%N.log"\n'), idle('n2'), idle('secret1'), `console name="dead" dev="127.0.0.1:${closed}"\n`].join(''), {
    dir,
    extraHeader: `server users="${users}"\nserver access="${rules}"\nserver auditlog="${audit}"\nserver resetcmd="touch ${dir}/reset-%N"\n`,
  });
  const alice = conchd(['token', 'create', 'alice-script', '-u', 'alice', '-c', w.d.conf]).stdout.trim();
  const bob = conchd(['token', 'create', 'bob-script', '-u', 'bob', '-c', w.d.conf]).stdout.trim();
  assert.match(alice, /^conch_/);
  assert.match(bob, /^conch_/);
  const auditLines = (): any[] => (fs.existsSync(audit) ? fs.readFileSync(audit, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
  const audited = (want: Record<string, unknown>): Promise<any> =>
    waitFor(() => auditLines().find((e) => Object.entries(want).every(([k, v]) => e[k] === v)), `an audit line ${JSON.stringify(want)}`);

  // a users file: loopback is no longer open
  assertError(await call(w, '/api/v1/consoles'), 401, /log in first/);
  assertError(await call(w, '/api/v1/events'), 401, /log in first/);

  // what each sees
  await waitFor(async () => (await call(w, '/api/v1/consoles?state=up', { token: alice })).json.counts.up === 3, 'the consoles up');
  const all = await call(w, '/api/v1/consoles', { token: alice });
  assert.deepEqual(names(all), ['dead', 'n1', 'n2', 'secret1']);
  const bobs = await call(w, '/api/v1/consoles', { token: bob });
  assert.deepEqual(names(bobs), ['n1', 'n2']);
  assert.deepEqual(bobs.json.counts, { up: 2, connecting: 0, backoff: 0, down: 0, total: 2 });
  assert.deepEqual(names(await call(w, '/api/v1/consoles?match=secret.*', { token: bob })), []);
  // a console bob may not monitor is not there for him, whatever he asks of it
  const hidden = await call(w, '/api/v1/consoles/secret1', { token: bob });
  assertError(hidden, 404, /^no console named "secret1"$/);
  assert.deepEqual(hidden.json, { error: 'no console named "secret1"', status: 404 });
  assertError(await call(w, '/api/v1/consoles/secret1/log', { token: bob }), 404, /^no console named "secret1"$/);
  assertError(await post(w, '/api/v1/consoles/secret1/break', { token: bob }), 404, /^no console named "secret1"$/);
  assertError(await post(w, '/api/v1/consoles/secret1/reset', { token: bob }), 404, /^no console named "secret1"$/);

  // break: bob may on n1, not on n2
  assertError(await post(w, '/api/v1/consoles/n2/break', { token: bob }), 403, /^Permission denied: bob has no break right on console \[n2\]$/);
  let e = await audited({ action: 'denied', user: 'bob', console: 'n2', missing: 'break' });
  assert.deepEqual({ auth: e.auth, transport: e.transport, result: e.result, source: e.source }, { auth: 'token', transport: 'web', result: 'denied', source: '127.0.0.1' });
  assert.equal((await post(w, '/api/v1/consoles/n1/break', { token: bob })).status, 200);
  e = await audited({ action: 'break', user: 'bob', console: 'n1' });
  assert.equal(e.result, 'ok');
  assertError(await post(w, '/api/v1/consoles/dead/break', { token: alice }), 409, /is backoff/);

  // reset: bob may not; alice may, and the command runs
  assertError(await post(w, '/api/v1/consoles/n1/reset', { token: bob }), 403, /^Permission denied: bob has no reset right on console \[n1\]$/);
  await audited({ action: 'denied', user: 'bob', console: 'n1', missing: 'reset' });
  const reset = await post(w, '/api/v1/consoles/n1/reset', { token: alice });
  assert.deepEqual(reset.json, { ok: true, console: 'n1', action: 'reset' });
  await waitFor(() => fs.existsSync(path.join(dir, 'reset-n1')), 'the reset command to run');
  await audited({ action: 'reset', user: 'alice', console: 'n1', result: 'ok' });

  // force: bob may not; for alice a test console has nothing to take back
  assertError(await post(w, '/api/v1/consoles/n1/force', { token: bob }), 403, /^Permission denied: bob has no force right on console \[n1\]$/);
  await audited({ action: 'denied', user: 'bob', console: 'n1', missing: 'force' });
  assertError(await post(w, '/api/v1/consoles/n1/force', { token: alice }), 409, /only an IPMI console/);

  // logs are read under the monitor right, and audited
  await waitForFile(path.join(w.d.logdir, 'n1.log'), 'log opened at');
  const logReply = await call(w, '/api/v1/consoles/n1/log?lines=10', { token: bob });
  assert.equal(logReply.status, 200, logReply.text);
  assert.match(logReply.text, /Console \[n1\] log opened at/);
  e = await audited({ action: 'monitor', user: 'bob', console: 'n1' });
  assert.match(e.detail, /^log read over the web API \(lines=10\): \d+ bytes$/);
  assertError(await call(w, '/api/v1/consoles/n2/log', { token: bob }), 404, /^console \[n2\] has no log/);

  // a browser: log in, read with the cookie, and a POST needs the CSRF header too
  assertError(await post(w, '/api/v1/login', { body: JSON.stringify({ user: 'alice', password: 'wrong' }) }), 401, /Authentication failed/);
  const login = await post(w, '/api/v1/login', { body: JSON.stringify({ user: 'alice', password: 'alice-secret' }) });
  assert.equal(login.status, 200, login.text);
  const cookie = login.headers.get('set-cookie')!.split(';')[0]!;
  assert.match(cookie, /^conch_session=/);
  const csrf = login.json.csrf as string;
  assert.deepEqual(names(await call(w, '/api/v1/consoles', { cookie })), ['dead', 'n1', 'n2', 'secret1']);
  assertError(await post(w, '/api/v1/consoles/n2/break', { cookie }), 403, /X-CSRF-Token/);
  assert.equal((await post(w, '/api/v1/consoles/n2/break', { cookie, csrf })).status, 200);
  e = await audited({ action: 'break', user: 'alice', console: 'n2' });
  assert.equal(e.auth, 'password');

  // the event stream is filtered by the same rules
  const sse = new SseClient(`${w.base}/api/v1/events`, { authorization: `Bearer ${bob}` });
  await sse.ready;
  assert.equal(sse.status, 200);
  await sse.wait(/: conchd console events/, 'the opening comment');
  for (const name of ['secret1', 'n2']) {
    const ws = new WebSocket(`${w.base.replace('http', 'ws')}/api/v1/consoles/${name}/stream?mode=monitor`, { headers: { authorization: `Bearer ${alice}` } });
    ws.on('error', () => {});
    cleanup.add(() => ws.terminate());
    await new Promise((r) => ws.once('message', r));
  }
  await sse.wait(/"console":"n2","action":"attach"/, 'the attach to n2');
  assert.ok(!sse.text.includes('secret1'), 'nothing of a console bob may not monitor');
  assert.equal(w.d.child.proc.exitCode, null);
});

// ---------------------------------------------------------------- force: SOL taken back from another holder

test('force takes an IPMI console SOL back from another holder; the event stream sees the takeover', async () => {
  const sim = await startBmcsim(cleanup, 1, ['--heartbeat', '1']);
  const w = await startWeb(`console name="bmc1" dev="ipmi:127.0.0.1:${sim.basePort}" ipmiopts="U:admin,P:password,C:3" solsteal="polite" log="%N.log"\n`);
  const log = path.join(w.d.logdir, 'bmc1.log');
  await waitFor(async () => (await call(w, '/api/v1/consoles/bmc1')).json.state === 'up', 'bmc1 up', 30000);
  const sse = new SseClient(`${w.base}/api/v1/events`);
  await sse.ready;
  await sse.wait(/: conchd console events/, 'the opening comment');

  // someone else takes SOL for a long while; conch (polite) waits
  const r = await control(sim, 'POST', '/bmcs/node01/steal', { seconds: 300 });
  assert.equal(r.status, 200, JSON.stringify(r.json));
  await sse.wait(/event: notice\ndata: \{"type":"notice","console":"bmc1","text":"[^"]*taken over by another client/, 'the takeover notice', 30000);
  const held = await waitFor(async () => {
    const c = (await call(w, '/api/v1/consoles/bmc1')).json;
    return c.detail && /held elsewhere/i.test(c.detail) ? c : null;
  }, 'the detail to say SOL is held elsewhere', 30000);
  assert.equal(held.type, 'ipmi');

  const forced = await post(w, '/api/v1/consoles/bmc1/force');
  assert.equal(forced.status, 200, forced.text);
  assert.deepEqual(forced.json, { ok: true, console: 'bmc1', action: 'force' });
  await waitForFile(log, /SOL session taken back from another client by <anonymous@/, 30000);
  await waitFor(async () => (await call(w, '/api/v1/consoles/bmc1')).json.detail === null, 'the detail to clear', 30000);
  await sse.wait(/"console":"bmc1","text":"[^"]*resumed/, 'the resume notice', 30000);
});
