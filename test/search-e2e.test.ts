// Search against a real conchd: consoles fed through unix sockets the test
// serves, logs rotated the way logrotate does it (rename + SIGHUP, the older
// file gzipped), with and without logopts=timestamp; `conch --grep` with a
// time range, tail and follow; access rules hiding a console; the HTTP
// route's stream; and a costly pattern that ends within its bounds while
// another client's `conch -q` keeps answering.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { CONCH, startConchd, type RunningConchd } from './helpers/conchd.js';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { cleanEnv } from './client-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

// a search's main-thread budget here: small enough that the costly pattern ends soon
process.env.CONCH_SEARCH_CPU_MS = '1500';

/** Consoles on unix sockets: the test writes what each console prints. */
class Feeds {
  private readonly socks = new Map<string, net.Socket>();
  constructor(
    readonly dir: string,
    names: string[],
  ) {
    for (const n of names) {
      const srv = net.createServer((s) => {
        s.on('error', () => {});
        s.resume();
        this.socks.set(n, s);
      });
      srv.listen(this.path(n));
      cleanup.add(() => {
        this.socks.get(n)?.destroy();
        srv.close();
      });
    }
  }
  path(n: string): string {
    return path.join(this.dir, `${n}.sock`);
  }
  async ready(n: string): Promise<void> {
    await waitFor(() => this.socks.has(n), `console ${n} to connect`);
  }
  write(n: string, text: string | Buffer): Promise<void> {
    return new Promise((r) => this.socks.get(n)!.write(text, () => r()));
  }
}

const FILLER = `${'filler line to pass the index thresholds '.repeat(3)}\r\n`.repeat(10);

async function conch(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const t0 = performance.now();
  const c = cleanup.child(process.execPath, [CONCH, ...args], { env: cleanEnv(env) });
  c.proc.stdin?.end();
  const code = await c.exited;
  await waitFor(() => c.proc.stdout?.readableEnded !== false && c.proc.stderr?.readableEnded !== false, 'output pipes to close');
  return { code, stdout: c.stdout, stderr: c.stderr, ms: performance.now() - t0 };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const iso = (ms: number): string => new Date(ms).toISOString();

/** logrotate's way: rename (the older one gzipped when `gz`), then SIGHUP; waits for the new file. */
async function rotate(d: RunningConchd, names: string[], gz: boolean): Promise<void> {
  for (const n of names) {
    const log = path.join(d.logdir, `${n}.log`);
    if (gz) {
      fs.renameSync(`${log}.1`, `${log}.2`);
      fs.writeFileSync(`${log}.2.gz`, zlib.gzipSync(fs.readFileSync(`${log}.2`)));
      fs.unlinkSync(`${log}.2`);
    }
    fs.renameSync(log, `${log}.1`);
  }
  process.kill(d.child.proc.pid!, 'SIGHUP');
  for (const n of names) await waitForFile(path.join(d.logdir, `${n}.log`), 'log opened');
}

interface Setup {
  d: RunningConchd;
  feeds: Feeds;
  tA: number;
  tB: number;
  tC: number;
  web: number;
  audit: string;
}

let setup: Promise<Setup> | null = null;

/** One daemon for the tests below: n1 (plain), s1 (stamped), secret (hidden by the rules), big. */
function daemon(): Promise<Setup> {
  setup ??= (async () => {
    const dir = cleanup.dir('search-');
    const feeds = new Feeds(dir, ['n1', 's1', 'secret', 'big']);
    const rules = path.join(dir, 'rules');
    const audit = path.join(dir, 'audit.log');
    fs.writeFileSync(rules, 'bob .* all\n* (n1|s1|big) all\n');
    const conf = [
      `console name="n1" dev="unix:${feeds.path('n1')}" log="%N.log"\n`,
      `console name="s1" dev="unix:${feeds.path('s1')}" log="%N.log" logopts="timestamp"\n`,
      `console name="secret" dev="unix:${feeds.path('secret')}" log="%N.log"\n`,
      `console name="big" dev="unix:${feeds.path('big')}" log="%N.log"\n`,
    ].join('');
    const d = await startConchd(cleanup, conf, { dir, extraHeader: `server httpport=0 access="${rules}" auditlog="${audit}"\n` });
    const web = Number(/Listening on HTTP port (\d+)/.exec(await d.child.waitOutput(/Listening on HTTP port (\d+)/))![1]);
    for (const n of ['n1', 's1', 'secret', 'big']) await feeds.ready(n);
    const both = async (text: string): Promise<number> => {
      const t = Date.now(); // a wall-clock time: it becomes --since/--until
      await Promise.all(['n1', 's1'].map((n) => feeds.write(n, text)));
      for (const n of ['n1', 's1']) await waitForFile(path.join(d.logdir, `${n}.log`), text.trim().split('\r\n').at(-1)!.slice(0, 20));
      return t;
    };
    await feeds.write('secret', `${FILLER}secret-needle here\r\n`);
    await sleep(2000);
    const tA = await both(`${FILLER}needle-A alpha\r\n`);
    await sleep(2000);
    await rotate(d, ['n1', 's1'], false);
    await sleep(2000);
    const tB = await both(`${FILLER}needle-B bravo\r\n`);
    await sleep(2000);
    await rotate(d, ['n1', 's1'], true);
    await sleep(2000);
    const tC = await both(`${FILLER}needle-C charlie\r\n\x1b[1;31mpa\x1b[0mnic-red\r\n`);
    return { d, feeds, tA, tB, tC, web, audit };
  })();
  return setup;
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l !== '');
const STAMP = /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/;

test('conch --grep finds lines across rotated logs (a .gz too), oldest first, with and without stamps', async () => {
  const { d } = await daemon();
  for (const n of ['n1', 's1']) {
    assert.ok(fs.existsSync(path.join(d.logdir, `${n}.log.2.gz`)));
    assert.ok(fs.existsSync(path.join(d.logdir, `${n}.log.1`)));
  }
  const idx = fs.readdirSync(path.join(d.logdir, '.conch-index'));
  assert.ok(idx.filter((f) => f.endsWith('.n1.idx')).length >= 3, idx.join(' '));
  const r = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'needle-[a-z]', 'n1', 's1']);
  assert.equal(r.code, 0, r.stderr);
  const got = lines(r.stdout).map((l) => l.split('\t'));
  assert.deepEqual(
    got.map(([c, , text]) => `${c} ${text}`),
    ['n1 needle-A alpha', 'n1 needle-B bravo', 'n1 needle-C charlie', 's1 needle-A alpha', 's1 needle-B bravo', 's1 needle-C charlie'],
  );
  for (const [, time] of got) assert.match(time!, STAMP);
  // escapes and CRs are not in the way of a match, nor in the line shown
  const red = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'panic-red', 'n1']);
  assert.deepEqual(lines(red.stdout).map((l) => l.split('\t')[2]), ['panic-red']);
});

test('--since/--until pick the lines of the range, in the rotated file and in the .gz, by index and by stamp', async () => {
  const { d, tA, tB, tC } = await daemon();
  const local = (ms: number): number => new Date(ms).setMilliseconds(0);
  for (const [t, want] of [
    [tC, 'needle-C charlie'], // the live log: its newest records are not saved yet, the search has them saved first
    [tB, 'needle-B bravo'],
    [tA, 'needle-A alpha'],
  ] as const) {
    // the index dates a line within a second of its writing (docs/search.md)
    const r = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'needle', '--since', iso(t - 1200), '--until', iso(t + 1500), 'n1', 's1']);
    assert.equal(r.code, 0, r.stderr);
    const got = lines(r.stdout).map((l) => l.split('\t'));
    assert.deepEqual(
      got.map(([c, , text]) => `${c} ${text}`),
      [`n1 ${want}`, `s1 ${want}`],
    );
    for (const [, time] of got) {
      const [day, clock] = time!.split(' ');
      const shown = new Date(`${day}T${clock}`).getTime(); // local time, as printed
      assert.ok(Math.abs(shown - local(t)) <= 2000, `${time} vs ${iso(t)}`);
    }
  }
  // a range before everything: nothing, exit 1
  const none = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'needle', '--until', iso(tA - 60_000), 'n1']);
  assert.equal(none.code, 1);
  assert.equal(none.stdout, '');
});

test('--tail N gives the last N matches of each console; --limit stops with a message', async () => {
  const { d } = await daemon();
  const r = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'needle', '--tail', '1', '-r', 'n1|s1']);
  assert.deepEqual(lines(r.stdout).map((l) => l.split('\t')[2]), ['needle-C charlie', 'needle-C charlie']);
  const l = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'needle', '--limit', '2', 'n1']);
  assert.equal(lines(l.stdout).length, 2);
  assert.match(l.stderr, /search stopped at 2 matches \(limit\)/);
});

test('--follow prints the history, then new lines as they are written, until the client leaves', async () => {
  const { d, feeds } = await daemon();
  await feeds.write('n1', 'live-1 before\r\n');
  await waitForFile(path.join(d.logdir, 'n1.log'), 'live-1');
  const f = cleanup.child(process.execPath, [CONCH, '-d', `127.0.0.1:${d.port}`, '--grep', 'live-[0-9]+', '--follow', 'n1'], { env: cleanEnv() });
  await f.waitOutput(/n1\t[-0-9: ]+\tlive-1 before\n/);
  await feeds.write('n1', 'noise\r\nsome \x1b[32mlive-2\x1b[0m after\r\n');
  await f.waitOutput(/n1\t[-0-9: ]+\tsome live-2 after\n/);
  assert.ok(!f.stdout.includes('noise'));
  await f.stop();
});

test('rules: a console the user may not monitor is not searched, nor nameable; the search is audited', async () => {
  const { d, audit } = await daemon();
  const all = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'secret-needle']);
  assert.equal(all.code, 1, all.stdout + all.stderr);
  assert.equal(all.stdout, '');
  const named = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', 'secret-needle', 'secret']);
  assert.equal(named.code, 2);
  assert.match(named.stderr, /Found no matching consoles/);
  const bob = await conch(['-d', `127.0.0.1:${d.port}`, '--user', 'bob', '--grep', 'secret-needle']);
  assert.deepEqual(lines(bob.stdout).map((l) => l.split('\t')[0]), ['secret']);
  await waitForFile(audit, /search \/secret-needle\//);
});

test("conch --log prints a console's log as it is on disk: the newest lines, a byte tail, a time range; rules and bad options", async () => {
  const { d, tC, audit } = await daemon();
  const on = ['-d', `127.0.0.1:${d.port}`];
  const file = fs.readFileSync(path.join(d.logdir, 'n1.log'), 'latin1');
  const last = await conch([...on, '--log', '--lines', '2', 'n1']);
  assert.equal(last.code, 0, last.stderr);
  assert.equal(last.stdout, file.split('\n').slice(-3).join('\n'));
  assert.equal(lines(last.stdout).length, 2, last.stdout);
  const tail = await conch([...on, '--log', '--tail', '100', 'n1']);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, file.slice(-100));
  const whole = await conch([...on, '--log', 'n1']);
  assert.equal(whole.stdout, file);
  // a stamped log by time: the lines from a second before needle-C on, none older
  const since = await conch([...on, '--log', '--since', iso(tC - 1000), 's1']);
  assert.equal(since.code, 0, since.stderr);
  assert.match(since.stdout, /needle-C charlie/);
  for (const l of lines(since.stdout)) {
    const m = /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) /.exec(l);
    if (m) assert.ok(new Date(m[1]!.replace(' ', 'T')).getTime() >= Math.floor((tC - 1000) / 1000) * 1000 - 1000, l);
  }
  // a console the user may not monitor does not exist for it; bob may
  const hidden = await conch([...on, '--log', 'secret']);
  assert.notEqual(hidden.code, 0);
  assert.match(hidden.stderr, /Found no matching consoles/);
  const bob = await conch([...on, '--user', 'bob', '--log', 'secret']);
  assert.equal(bob.stdout, fs.readFileSync(path.join(d.logdir, 'secret.log'), 'latin1'));
  assert.match(bob.stdout, /secret-needle here/);
  await waitForFile(audit, /"console":"secret".*"detail":"history: \d+ bytes/);
  // options that do not go with --log
  for (const bad of [['--log', '--follow', 'n1'], ['--log', 'n1', 's1'], ['--log', '--lines', '2', '--tail', '9', 'n1'], ['--lines', '2', 'n1'], ['--log', '--grep', 'x', 'n1']]) {
    const r = await conch([...on, ...bad]);
    assert.notEqual(r.code, 0, bad.join(' '));
    assert.match(r.stderr, /CMDLINE/, bad.join(' '));
  }
});

test('GET /api/v1/search streams JSON lines: matches with console, time and line, then a summary', async () => {
  const { web, tB } = await daemon();
  const url = `http://127.0.0.1:${web}/api/v1/search?re=${encodeURIComponent('needle-[ab]')}&consoles=n1,s1,secret&since=${encodeURIComponent(iso(tB - 300))}`;
  const res = await fetch(url);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
  const got = lines(await res.text()).map((l) => JSON.parse(l) as Record<string, unknown>);
  const matches = got.filter((g) => 'console' in g);
  assert.deepEqual(
    matches.map((m) => [m.console, m.line, m.timeFrom]),
    [
      ['n1', 'needle-B bravo', 'index'],
      ['s1', 'needle-B bravo', 'stamp'],
    ],
  );
  for (const m of matches) assert.ok(Math.abs(Date.parse(String(m.time)) - tB) < 2000);
  assert.deepEqual((got.at(-1) as { summary: { matches: number; stopped: null } }).summary.matches, 2);
  const bad = await fetch(`http://127.0.0.1:${web}/api/v1/search?re=${encodeURIComponent('(x')}`);
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /bad regular expression in re=: Unmatched \(/);
});

test('a costly pattern ends within its bounds while conch -q keeps answering; a huge one is refused at once', async () => {
  const { d, feeds } = await daemon();
  const line = `${'ab'.repeat(60)}\r\n`;
  const block = line.repeat(Math.ceil((1 << 20) / line.length));
  for (let i = 0; i < 3; i++) await feeds.write('big', block);
  await waitFor(() => fs.statSync(path.join(d.logdir, 'big.log')).size >= 3 << 20, 'big.log to reach 3 MiB', 30000);

  const huge = await conch(['-d', `127.0.0.1:${d.port}`, '--grep', '(a{100}){100}', 'big']);
  assert.equal(huge.code, 2);
  assert.match(huge.stderr, /too big for a search/);
  assert.ok(huge.ms < 5000, `${huge.ms} ms`);

  // no literal to look for, and up to hundreds of NFA states per byte
  const costly = conch(['-d', `127.0.0.1:${d.port}`, '--grep', '([ab].*[ab].*){40}[0-9]', 'big']);
  let done = false;
  void costly.then(() => (done = true));
  const waits: number[] = [];
  await sleep(300);
  while (!done && waits.length < 20) {
    const q = await conch(['-d', `127.0.0.1:${d.port}`, '-q']);
    assert.equal(q.code, 0, q.stderr);
    assert.match(q.stdout, /n1\n/);
    waits.push(q.ms);
  }
  const r = await costly;
  assert.ok(waits.length > 0);
  assert.ok(Math.max(...waits) < 3000, `conch -q took ${waits.join(', ')} ms`);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /search stopped after 1\.5s of processing time/);
  assert.ok(r.ms < 30_000, `${r.ms} ms`);
});
