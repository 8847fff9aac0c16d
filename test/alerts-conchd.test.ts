// Pattern alerts against a real conchd process. Each console is a `process`
// console running a small feeder: it writes the files the test drops into
// its spool directory to its pty in random-sized pieces with small pauses
// (seeded: ALERTS_FEED_SEED replays a run), as a serial console delivers a
// panic. Proven here: a panic fires once with context before and after; the
// webhook receiver gets the JSON, the exec command gets it on stdin, the
// console log gets the <ConMan> notice and the daemon log its line; a
// receiver that is down at first gets it once it is back; a storm of 1,000
// `Call Trace:` is one alert with a count; near misses do not fire; a reload
// that changes the rules file applies (one with errors is refused); a rule
// regex too big stops the start, and a slow one stays bounded.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Cleanup, freePort, waitFor, waitForFile } from './helpers/wait.js';
import { ROOT, runConchd, startConchd, type RunningConchd } from './helpers/conchd.js';
import { seedFrom } from './helpers/seeded.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const SEED = seedFrom('ALERTS_FEED_SEED');
process.stdout.write(`# ALERTS_FEED_SEED=${SEED}\n`);
const FIXTURES = path.join(ROOT, 'test/fixtures/alerts');
const fixture = (name: string): string => fs.readFileSync(path.join(FIXTURES, name), 'utf8');

// The feeder: spool files, in name order, to stdout (the pty) in pieces of 1 to 300 bytes.
const FEEDER = `
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rng } from ${JSON.stringify(pathToFileURL(path.join(ROOT, 'dist/bench/seeded.js')).href)};
const [spool, seedText] = process.argv.slice(2);
const next = rng(Number(seedText));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let busy = false;
async function drain() {
  if (busy) return;
  busy = true;
  try {
    for (;;) {
      const files = fs.readdirSync(spool).filter((f) => f.endsWith('.txt')).sort();
      if (files.length === 0) return;
      for (const f of files) {
        const p = path.join(spool, f);
        const data = fs.readFileSync(p);
        fs.unlinkSync(p);
        for (let i = 0; i < data.length; ) {
          const n = 1 + Math.floor(next() * 300);
          process.stdout.write(data.subarray(i, i + n));
          i += n;
          if (next() < 0.5) await sleep(1 + Math.floor(next() * 4));
        }
      }
    }
  } finally {
    busy = false;
  }
}
setInterval(drain, 20);
`;

interface Feeder {
  name: string;
  spool: string;
  seq: number;
}

/** A console line running the feeder on its own spool directory. */
function feederConsole(dir: string, name: string, seed: number): { line: string; feeder: Feeder } {
  const script = path.join(dir, 'feeder.mjs');
  if (!fs.existsSync(script)) fs.writeFileSync(script, FEEDER);
  const spool = path.join(dir, `spool-${name}`);
  fs.mkdirSync(spool, { recursive: true });
  return { line: `console name="${name}" dev="${process.execPath} ${script} ${spool} ${seed}" log="%N.log"\n`, feeder: { name, spool, seq: 0 } };
}

/** Have the console print `text` (LF lines as CRLF, as a serial console's). */
function feed(f: Feeder, text: string): void {
  const base = path.join(f.spool, String(++f.seq).padStart(6, '0'));
  fs.writeFileSync(`${base}.tmp`, text.replace(/\r?\n/g, '\r\n'));
  fs.renameSync(`${base}.tmp`, `${base}.txt`);
}

interface Receiver {
  port: number;
  bodies: any[];
  close(): Promise<void>;
}

/** A webhook receiver: keeps each POSTed JSON body. */
async function receiver(port = 0): Promise<Receiver> {
  const bodies: any[] = [];
  const server = http.createServer((req, res) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (s += d));
    req.on('end', () => {
      try {
        bodies.push({ ...JSON.parse(s), _contentType: req.headers['content-type'], _method: req.method, _url: req.url });
      } catch {
        bodies.push({ _bad: s });
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const close = (): Promise<void> =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  cleanup.add(close);
  return { port: (server.address() as { port: number }).port, bodies, close };
}

/** daemon log lines (conchd -F writes its log to stderr) */
const dlines = (d: RunningConchd, re: RegExp): string[] => d.child.output.split('\n').filter((l) => re.test(l));

const SENTINEL_RULE = 'rule sentinel notice holddown=0 after=0 /^SENTINEL [0-9]+$/';

test('a panic split across writes fires once with context; webhook, exec, console log and daemon log get it; near misses do not fire; a storm is one alert with a count', async () => {
  const dir = cleanup.dir('conch-alerts-');
  const hook = await receiver();
  const rules = path.join(dir, 'alerts.rules');
  fs.writeFileSync(rules, [SENTINEL_RULE, '# the storm console: a short hold-down', 'rule storm-trace warning console=storm before=1 after=3 holddown=4s /(^|\\] )Call Trace:$/', ''].join('\n'));
  const exec = path.join(dir, 'exec');
  fs.mkdirSync(exec);
  const [n1, storm, quiet] = ['n1', 'storm', 'quiet'].map((n, i) => feederConsole(dir, n, SEED + i));
  const d = await startConchd(cleanup, n1!.line + storm!.line + quiet!.line, {
    dir,
    extraHeader: [
      `server alerts="${rules}"`,
      `server alertwebhook="http://127.0.0.1:${hook.port}/hook?token=s3cret"`,
      `server alertexec="cat > $(mktemp ${exec}/alert.XXXXXX)"`,
      '',
    ].join('\n'),
  });
  await d.child.waitOutput(/Alerts: \d+ rules \(\d+ built-in, 2 from .*alerts\.rules\) on 3 consoles; to daemon log, console logs, webhook http:\/\/127\.0\.0\.1:\d+\/hook, exec/);
  assert.doesNotMatch(d.child.output, /s3cret/, 'the webhook URL is logged without its query');

  // ---- the panic, on n1
  feed(n1!.feeder, fixture('panic-null-deref.txt'));
  // its after-lines never reach 30: the timeout (5 s) completes it
  const panic = await waitFor(() => hook.bodies.find((b) => b.rule === 'kernel-panic'), 'the panic at the webhook', 30000);
  assert.equal(panic._method, 'POST');
  assert.equal(panic._url, '/hook?token=s3cret');
  assert.equal(panic._contentType, 'application/json');
  assert.equal(panic.phase, 'complete');
  assert.equal(panic.console, 'n1');
  assert.equal(panic.severity, 'crit');
  assert.equal(panic.complete, true);
  assert.equal(panic.count, 1);
  assert.equal(typeof panic.host, 'string');
  assert.ok(Number.isInteger(panic.id));
  assert.ok(!Number.isNaN(Date.parse(panic.time)));
  assert.equal(panic.line, '[ 1834.492311] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009');
  assert.equal(panic.before.length, 20);
  assert.equal(panic.before.at(-1), '[ 1834.480001] note: systemd[1] exited with irqs disabled');
  assert.deepEqual(panic.after, [
    '[ 1834.500101] Kernel Offset: 0x1a000000 from 0xffffffff81000000 (relocation range: 0xffffffff80000000-0xffffffffbfffffff)',
    '[ 1834.511073] ---[ end Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009 ]---',
  ]);
  // every alert of the panic has come, each once
  await waitFor(() => ['kernel-bug', 'kernel-oops', 'call-trace'].every((r) => hook.bodies.some((b) => b.rule === r && b.console === 'n1')), 'the other alerts of the panic', 30000);
  // the daemon log: one line at fire time naming console, rule and line
  const panicLines = dlines(d, /alert kernel-panic/);
  assert.equal(panicLines.length, 1);
  assert.match(panicLines[0]!, /CRIT: Console \[n1\] alert kernel-panic \(crit\): \[ 1834\.492311\] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009$/);
  // the console log: the <ConMan> notice after the line
  const log1 = await waitForFile(path.join(d.logdir, 'n1.log'), '<ConMan> Console [n1] alert kernel-panic (crit): [ 1834.492311] Kernel panic');
  assert.ok(log1.indexOf('Kernel panic - not syncing: Attempted') < log1.indexOf('<ConMan> Console [n1] alert kernel-panic'), 'the notice comes after the logged line');
  for (const l of fixture('panic-null-deref.txt').split('\n').filter(Boolean)) assert.ok(log1.includes(`${l}\r\n`), `logged whole: ${l}`);
  // the exec command got the same JSON on its stdin
  const execs = await waitFor(
    () => {
      const got = fs.readdirSync(exec).flatMap((f) => {
        try {
          return [JSON.parse(fs.readFileSync(path.join(exec, f), 'utf8'))];
        } catch {
          return [];
        }
      });
      return got.some((j) => j.rule === 'kernel-panic') ? got : null;
    },
    'the exec command to get the panic',
    30000,
  );
  const ep = execs.find((j) => j.rule === 'kernel-panic');
  assert.equal(ep.phase, 'complete');
  assert.deepEqual(ep.after, panic.after);
  assert.deepEqual(ep.before, panic.before);

  // ---- near misses, on quiet: nothing fires before the sentinel that follows them (the boot
  // banner is the console's first line: conchd came up during a boot, not a reboot seen)
  feed(quiet!.feeder, fixture('boot-normal.txt') + fixture('near-miss.txt') + 'SENTINEL 1\n');
  await d.child.waitOutput('Console [quiet] alert sentinel (notice): SENTINEL 1', 30000);
  assert.deepEqual(dlines(d, /Console \[quiet\] alert /).map((l) => l.replace(/^.*alert (\S+).*$/, '$1')), ['sentinel']);

  // ---- the panic fired once: a sentinel after it, and nothing else from n1
  feed(n1!.feeder, 'SENTINEL 2\n');
  await d.child.waitOutput('Console [n1] alert sentinel (notice): SENTINEL 2', 30000);
  const n1Rules = dlines(d, /Console \[n1\] alert \S+ \(\w+\): /).map((l) => l.replace(/^.*alert (\S+).*$/, '$1'));
  assert.deepEqual(n1Rules, ['kernel-bug', 'kernel-oops', 'call-trace', 'kernel-panic', 'sentinel']);
  assert.equal(hook.bodies.filter((b) => b.rule === 'kernel-panic').length, 1);

  // ---- a storm of 1,000 Call Trace: lines: one alert, then one repeat with the count
  feed(storm!.feeder, 'boot ok\n' + '[ 77.000001] Call Trace:\n'.repeat(1000));
  const rep = await waitFor(() => hook.bodies.find((b) => b.console === 'storm' && b.phase === 'repeat'), 'the storm\'s repeat', 30000);
  assert.equal(rep.rule, 'storm-trace');
  assert.equal(rep.count, 1000);
  const stormHooks = hook.bodies.filter((b) => b.console === 'storm');
  assert.deepEqual(stormHooks.map((b) => b.phase), ['complete', 'repeat']);
  assert.deepEqual(stormHooks[0].before, ['boot ok']);
  assert.equal(stormHooks[0].after.length, 3);
  assert.equal(dlines(d, /Console \[storm\] alert storm-trace \(warning\): /).length, 1, 'fired once');
  // the daemon log says it too (its line may reach the pipe after the webhook's POST reached us)
  await d.child.waitOutput(/Console \[storm\] alert storm-trace \(warning\) matched \d+ more times in its hold-down window \(1000 in all from /, 30000);
  const stormLog = await waitForFile(path.join(d.logdir, 'storm.log'), /<ConMan> Console \[storm\] alert storm-trace \(warning\) matched \d+ more times/);
  assert.equal(stormLog.match(/^\[ 77\.000001\] Call Trace:\r$/gm)?.length, 1000, 'every storm line logged, none split by a notice');
  await d.child.stop();
});

test('a webhook receiver that is down at first gets the alert once it is back', async () => {
  const dir = cleanup.dir('conch-alerts-down-');
  const port = await freePort(); // nothing listens there yet
  const rules = path.join(dir, 'alerts.rules');
  fs.writeFileSync(rules, SENTINEL_RULE + '\n');
  const c = feederConsole(dir, 'n1', SEED + 10);
  const d = await startConchd(cleanup, c.line, { dir, extraHeader: `server alerts="${rules}"\nserver alertwebhook="http://127.0.0.1:${port}/down"\n` });
  feed(c.feeder, 'SENTINEL 7\n');
  await d.child.waitOutput(new RegExp(`Alert webhook http://127\\.0\\.0\\.1:${port}/down: .*ECONNREFUSED.*; retrying in 1 s \\(1 waiting\\)`), 30000);
  const hook = await receiver(port);
  const got = await waitFor(() => hook.bodies[0], 'the alert after the receiver came back', 30000);
  assert.equal(got.rule, 'sentinel');
  assert.equal(got.line, 'SENTINEL 7');
  assert.equal(got.phase, 'complete');
  await d.child.waitOutput(/Alert webhook http:\/\/127\.0\.0\.1:\d+\/down: delivering again after \d+ failed attempts?/, 10000);
  assert.equal(hook.bodies.length, 1);
  await d.child.stop();
});

test('a reload that changes the rules file applies; one with errors is refused and the rules in force stay', async () => {
  const dir = cleanup.dir('conch-alerts-reload-');
  const rules = path.join(dir, 'alerts.rules');
  fs.writeFileSync(rules, SENTINEL_RULE + '\n');
  const c = feederConsole(dir, 'n1', SEED + 20);
  const d = await startConchd(cleanup, c.line, { dir, extraHeader: `server alerts="${rules}"\n` });
  feed(c.feeder, 'DISKFAIL sdb\nSENTINEL 1\n');
  await d.child.waitOutput('alert sentinel (notice): SENTINEL 1', 30000);
  assert.equal(dlines(d, /alert diskfail/).length, 0);

  const reloads = (): number => dlines(d, /Reload(ed| of)/).length;
  let before = reloads();
  fs.writeFileSync(rules, `${SENTINEL_RULE}\nrule diskfail err after=0 holddown=0 /^DISKFAIL [a-z]+$/\n`);
  process.kill(d.child.proc.pid!, 'SIGHUP');
  await waitFor(() => reloads() > before, 'the reload', 30000);
  await d.child.waitOutput(/Reload: Alerts: \d+ rules \(\d+ built-in, 2 from /, 10000);
  feed(c.feeder, 'DISKFAIL sdc\n');
  await d.child.waitOutput('Console [n1] alert diskfail (err): DISKFAIL sdc', 30000);

  // a rules file with an error: refused, the rules in force stay
  before = reloads();
  fs.writeFileSync(rules, `${SENTINEL_RULE}\nrule diskfail err /DISKFAIL (/\n`);
  process.kill(d.child.proc.pid!, 'SIGHUP');
  await d.child.waitOutput(/Reload: .*alerts\.rules:2:\d+: bad regex \/DISKFAIL \(\/: Unmatched \( or \\\(/, 30000);
  await d.child.waitOutput(/Reload: the alert rules in force stay as they were \(\d+ rules\)/, 10000);
  feed(c.feeder, 'DISKFAIL sdd\n');
  await d.child.waitOutput('Console [n1] alert diskfail (err): DISKFAIL sdd', 30000);

  // alertdefaults=off by a reload of conman.conf: only the file's rules remain
  fs.writeFileSync(rules, `${SENTINEL_RULE}\n`);
  fs.appendFileSync(d.conf, 'server alertdefaults=off\n');
  process.kill(d.child.proc.pid!, 'SIGHUP');
  await d.child.waitOutput(/Reload: Alerts: 1 rule \(0 built-in, 1 from /, 30000);
  feed(c.feeder, '[ 1.0] Kernel panic - not syncing: off\nSENTINEL 3\n');
  await d.child.waitOutput('alert sentinel (notice): SENTINEL 3', 30000);
  assert.equal(dlines(d, /alert kernel-panic/).length, 0);
  await d.child.stop();
});

test('a rule regex too big stops the start; a slow one (no literal to screen by) stays bounded and logging goes on', async () => {
  const dir = cleanup.dir('conch-alerts-patho-');
  const rules = path.join(dir, 'alerts.rules');
  fs.writeFileSync(rules, 'rule fine warning /ok/\nrule huge crit /(a{1000}){1000}/\nrule wide crit /((a|b){64}){64}/\n');
  const conf = path.join(dir, 'refused.conf');
  fs.writeFileSync(conf, `server port=${await freePort()}\nserver loopback=on\nserver pidfile="${dir}/refused.pid"\nserver statedir="${dir}/state0"\nserver alerts="${rules}"\nconsole name="x" dev="test:"\n`);
  const r = runConchd(['-F', '-c', conf], { cwd: dir });
  assert.equal(r.code, 1, r.out);
  assert.match(r.out, /alerts\.rules:2:\d+: bad regex \/\(a\{1000\}\)\{1000\}\/: Regular expression too big/);
  assert.match(r.out, /alerts\.rules:3:\d+: bad regex .*at most 4096/);

  // allowed but without a literal: every line runs its NFA. 400 lines of 1,000 a's, then a sentinel
  fs.writeFileSync(rules, `${SENTINEL_RULE}\nrule slow crit /^(a|aa)*(b|ab)*[cd]$/\n`);
  const c = feederConsole(dir, 'n1', SEED + 30);
  const d = await startConchd(cleanup, c.line, { dir, extraHeader: `server alerts="${rules}"\n` });
  const t0 = performance.now();
  feed(c.feeder, `${'a'.repeat(1000)}\n`.repeat(400) + 'SENTINEL 9\n');
  await d.child.waitOutput('alert sentinel (notice): SENTINEL 9', 30000);
  const took = performance.now() - t0;
  process.stdout.write(`# 400 lines of 1,000 a's against /^(a|aa)*(b|ab)*[cd]$/ and the built-in rules: sentinel after ${took} ms\n`);
  assert.ok(took < 15000, `took ${took} ms`);
  assert.equal(dlines(d, /alert slow/).length, 0);
  const log = await waitForFile(path.join(d.logdir, 'n1.log'), 'SENTINEL 9');
  assert.equal(log.split('a'.repeat(1000)).length - 1, 400, 'every line logged');
  await d.child.stop();
});
