// Who may do what (issue #21), on a real conchd: TLS with certificates made
// by openssl, passwords from a users file, client certificates, the access
// rules on both ports, the audit log, the throttle on guessed passwords, and
// a TLS port under garbage. The plain port is driven by Debian's conman
// client as well as byte by byte.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { once } from 'node:events';
import { Cleanup, freePort, waitFor, waitForFile } from './helpers/wait.js';
import { ROOT, runConchd, startConchd, type RunningConchd } from './helpers/conchd.js';
import { conman } from './helpers/protocol-harness.js';
import { makeCerts, type CertPair, type TestCerts } from './helpers/certs.js';
import { RawClient } from './helpers/raw-client.js';
import { hashPassword } from '../src/access/password.js';
import { cleanEnv, conchPlain, conchPty } from './client-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const HOST = path.join(ROOT, 'dist/src/bin/conch-host.js');
// cheap scrypt parameters: these tests are about the protocol, not the hash's cost
const FAST = { ln: 10, r: 8, p: 1 };
const RULES = `# who      consoles      rights
@oncall    .*            all
alice      n0[0-9]       monitor,attach,break
mon        n0[0-9]       monitor   # read-only
*          n0[0-9]       monitor
`;

let d: RunningConchd;
let certs: TestCerts;
let tlsPort: number;
let audit: string;
let dir: string;

before(async () => {
  dir = cleanup.dir('access-');
  certs = await makeCerts(dir);
  const users = path.join(dir, 'users');
  fs.writeFileSync(
    users,
    `alice:${await hashPassword(Buffer.from('wonderland'), FAST)}:ops\n` +
      `bob:${await hashPassword(Buffer.from('builder'), FAST)}:oncall\n` +
      `mon:${await hashPassword(Buffer.from('watch'), FAST)}:\n`,
    { mode: 0o600 },
  );
  fs.writeFileSync(path.join(dir, 'rules'), RULES);
  audit = path.join(dir, 'audit.log');
  tlsPort = await freePort();
  const host = (n: string) => `console name="${n}" dev="${process.execPath} ${HOST} --name %N --interval 0 --no-boot" log="%N.log"\n`;
  d = await startConchd(cleanup, host('n01') + host('n02') + `console name="secret1" dev="test:" testopts="b:32,m:20,p:100" log="%N.log"\n`, {
    dir,
    extraHeader:
      `server tlsport=${tlsPort} tlscert="${certs.serverCert}" tlskey="${certs.serverKey}" tlsclientca="${certs.caCert}"\n` +
      `server users="${users}" access="${path.join(dir, 'rules')}" auditlog="${audit}" handshaketimeout=5\n` +
      `server resetcmd="touch ${dir}/reset-%N"\n`,
  });
  await d.child.waitOutput(`Listening on TLS port ${tlsPort}`);
});

/** A TLS connection that trusts the test CA, optionally from another loopback address or with a client certificate. */
async function overTls(opts: { cert?: CertPair; localAddress?: string } = {}): Promise<RawClient> {
  const sock = tls.connect({
    host: '127.0.0.1',
    port: tlsPort,
    servername: 'localhost',
    ca: fs.readFileSync(certs.caCert),
    ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    ...(opts.cert ? { cert: fs.readFileSync(opts.cert.cert), key: fs.readFileSync(opts.cert.key) } : {}),
  });
  await once(sock, 'secureConnect');
  return new RawClient(cleanup, sock);
}

const plain = (): RawClient => new RawClient(cleanup, net.connect(d.port, '127.0.0.1'));
const hello = (user: string, password?: string): string =>
  `HELLO USER='${user}'${password === undefined ? '' : ` PASSWORD='${Buffer.from(password).toString('base64')}'`}\n`;

/** one exchange to its end: what the server said before it closed */
async function ask(c: RawClient, lines: string): Promise<string> {
  c.send(lines);
  await c.closedByServer(30000);
  return c.text;
}

const auditLines = (): Record<string, unknown>[] =>
  fs.existsSync(audit) ? fs.readFileSync(audit, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : [];

test('over TLS a password or a client certificate proves the user; the error never says whether a user exists', async () => {
  assert.equal(await ask(await overTls(), hello('alice', 'wonderland') + 'QUERY\n'), "OK\nOK CONSOLE='n01' CONSOLE='n02'\n", 'alice sees what she may monitor');
  const wrong = await ask(await overTls(), hello('alice', 'rabbit') + 'QUERY\n');
  const nobody = await ask(await overTls(), hello('nosuchuser', 'rabbit') + 'QUERY\n');
  assert.equal(wrong, "ERROR CODE=4 MESSAGE='Authentication failed'\n");
  assert.equal(nobody, wrong, 'an unknown user reads exactly what a wrong password reads');
  assert.match(await ask(await overTls(), hello('alice') + 'QUERY\n'), /^ERROR CODE=4 MESSAGE='Authentication required: /);

  // a client certificate: its CN is the user (bob is on call: every console)
  const bobCert = await certs.clientCert('bob');
  assert.equal(await ask(await overTls({ cert: bobCert }), hello('whoever') + 'QUERY\n'), "OK\nOK OPTION=RESET CONSOLE='n01' CONSOLE='n02' CONSOLE='secret1'\n", 'bob may reset');
  // one the client CA did not sign is refused
  const other = await certs.otherCa();
  const sock = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: fs.readFileSync(certs.caCert), cert: fs.readFileSync(other.cert), key: fs.readFileSync(other.key) });
  await once(sock, 'secureConnect');
  assert.match(await ask(new RawClient(cleanup, sock), hello('bob') + 'QUERY\n'), /^ERROR CODE=4 MESSAGE='Authentication failed: client certificate not accepted/);

  const lines = auditLines();
  const failed = lines.filter((l) => l.action === 'auth-failed').map((l) => l.user);
  assert.ok(failed.includes('alice') && failed.includes('nosuchuser'), `auth-failed lines: ${JSON.stringify(failed)}`);
  assert.ok(lines.some((l) => l.action === 'connect' && l.user === 'alice' && l.auth === 'password' && l.transport === 'tls'));
  assert.ok(lines.some((l) => l.action === 'connect' && l.user === 'bob' && l.auth === 'certificate'));
  assert.ok(!fs.readFileSync(audit, 'utf8').includes('wonderland') && !fs.readFileSync(audit, 'utf8').includes('rabbit'), 'no password in the audit log');
  assert.ok(!d.child.output.includes('wonderland') && !d.child.output.includes('rabbit'), 'no password in the daemon log');
});

test('the plain port: claimed names under the same rules, and never a password', async () => {
  assert.equal(
    await ask(plain(), hello('alice', 'wonderland') + 'QUERY\n'),
    "ERROR CODE=4 MESSAGE='Passwords are accepted only over TLS (conch --tls)'\n",
  );
  // Debian's conman client, as whoever runs the tests: the `*` rule gives monitor on n0*
  const me = os.userInfo().username;
  const q = conman(cleanup, d.port, '-q');
  assert.equal(await q.exited, 0);
  assert.deepEqual(q.output.trim().split(/\r?\n/), ['n01', 'n02'], 'secret1 is not listed');
  const rw = conman(cleanup, d.port, 'n01');
  await rw.waitOutput(`Permission denied: ${me} has no attach right on console [n01]`);
  assert.notEqual(await rw.exited, 0);
  const ro = conman(cleanup, d.port, '-m', 'n01');
  await ro.opened('n01');
  ro.type('&.');
  assert.equal(await ro.exited, 0);
  assert.match(await ask(plain(), hello(me) + "CONNECT CONSOLE='secret1'\n"), /^OK\nERROR CODE=5 MESSAGE='Found no matching consoles'\n$/);
});

test('a monitor-only user cannot type, break, reset or force: the host sees nothing, the audit says denied', async () => {
  const alice = await overTls();
  alice.send(hello('alice', 'wonderland') + "CONNECT CONSOLE='n01'\n");
  await alice.has("OK CONSOLE='n01'\n");
  const mon = await overTls();
  mon.send(hello('mon', 'watch') + "MONITOR CONSOLE='n01'\n");
  await mon.has("OK CONSOLE='n01'\n");

  mon.send('echo MONTYPED\r');
  mon.send(Buffer.from([0xff, 0x42])); // &B
  mon.send('t');
  mon.send(Buffer.from([0xff, 0x52])); // &R
  mon.send(Buffer.from([0xff, 0x46])); // &F
  mon.send(Buffer.from([0xff, 0x4a])); // &J
  await mon.has('Console [n01] break refused: no break right');
  await mon.has('Console [n01] reset refused: no reset right');
  await mon.has('Console [n01] write access refused: no force right');
  await mon.has('Console [n01] write access refused: no attach right');
  const forced = await ask(await overTls(), hello('mon', 'watch') + "CONNECT OPTION=FORCE CONSOLE='n01'\n");
  assert.equal(forced, "OK\nERROR CODE=4 MESSAGE='Permission denied: mon has no force right on console [n01] (server access=)'\n");

  // alice still holds the console and types: her marker arrives, nothing of mon's did
  alice.send('echo ALICE-MARK\r');
  const log = path.join(d.logdir, 'n01.log');
  const text = await waitForFile(log, /ALICE-MARK\r\n/);
  assert.ok(!text.includes('MONTYPED'), 'mon typed nothing into the host');
  assert.ok(!/sysrq/i.test(text), 'no break reached the host');
  assert.ok(!text.includes('stolen'), 'alice was not displaced');
  assert.ok(!fs.existsSync(path.join(dir, 'reset-n01')), 'the reset command never ran');

  // alice's &B is hers to send
  alice.send(Buffer.from([0xff, 0x42]));
  alice.send('t');
  await waitForFile(log, /sysrq/i);

  await waitFor(() => auditLines().some((l) => l.action === 'denied' && l.user === 'mon' && l.missing === 'reset'), 'the audit line of the refused reset');
  const denied = auditLines().filter((l) => l.action === 'denied' && l.user === 'mon').map((l) => l.missing);
  assert.deepEqual([...new Set(denied)].sort(), ['attach', 'break', 'force', 'reset']);
  assert.ok(auditLines().some((l) => l.action === 'break' && l.user === 'alice' && l.console === 'n01' && l.result === 'ok'));
  alice.sock.destroy();
  mon.sock.destroy();
});

test('guessing a password from one address is slowed down; its owner, from another, still logs in', async () => {
  const t0 = performance.now();
  // from an address of its own: the throttle slows that address down for a while
  const guesses = await Promise.all(Array.from({ length: 20 }, () => overTls({ localAddress: '127.0.0.3' })));
  for (const g of guesses) g.send(hello('alice', 'not-it') + 'QUERY\n');
  const answered = (): number => guesses.filter((g) => g.text.includes('ERROR CODE=4')).length;
  await waitFor(() => answered() >= 3, 'the first guesses to be refused', 30000);

  // the owner, from 127.0.0.2, is not queued behind the guesses
  const owner = await overTls({ localAddress: '127.0.0.2' });
  assert.equal(await ask(owner, hello('alice', 'wonderland') + 'QUERY\n'), "OK\nOK CONSOLE='n01' CONSOLE='n02'\n");
  assert.ok(answered() <= 10, `the owner got in while most guesses still wait (${answered()} of 20 answered)`);
  // each failure doubles the next one's wait: 8 s in, at most 6 guesses were checked
  const left = 8000 - (performance.now() - t0);
  if (left > 0) await new Promise((r) => setTimeout(r, left));
  assert.ok(answered() <= 6, `${answered()} guesses answered within 8 s`);
  for (const g of guesses) g.sock.destroy();
});

test('garbage and half-open TLS handshakes do not disturb other clients or logs', async () => {
  const log = path.join(d.logdir, 'secret1.log');
  await waitFor(() => fs.existsSync(log), 'the busy console\'s log');
  const size0 = fs.statSync(log).size;
  const junk: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < 30; i++) {
    const s = net.connect(tlsPort, '127.0.0.1');
    s.on('error', () => {});
    s.on('close', () => closed++);
    s.resume();
    cleanup.add(() => s.destroy());
    if (i % 3 === 0) s.write(Buffer.from(Array.from({ length: 300 }, (_, k) => (k * 37 + i) & 0xff)));
    else if (i % 3 === 1) s.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03])); // a ClientHello cut short
    junk.push(s);
  }
  const bobCert = await certs.clientCert('bob');
  assert.equal(await ask(await overTls({ cert: bobCert }), hello('bob') + 'QUERY\n'), "OK\nOK OPTION=RESET CONSOLE='n01' CONSOLE='n02' CONSOLE='secret1'\n");
  await waitFor(() => fs.statSync(log).size > size0 + 1000, 'the busy console to go on logging');
  // every junk connection is closed by the server, the silent ones at the handshake deadline (5 s)
  await waitFor(() => closed === junk.length, 'the junk connections to be closed', 30000);
});

test('a renewed certificate is served after SIGHUP without a restart', async () => {
  const fingerprint = async (): Promise<string> => {
    const s = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: 'localhost', ca: fs.readFileSync(certs.caCert) });
    await once(s, 'secureConnect');
    const f = s.getPeerCertificate().fingerprint256;
    s.destroy();
    return f;
  };
  const before = await fingerprint();
  const renewed = await certs.serverCertFor(['DNS:localhost', 'IP:127.0.0.1'], 'localhost');
  fs.copyFileSync(renewed.cert, certs.serverCert);
  fs.copyFileSync(renewed.key, certs.serverKey);
  process.kill(d.child.proc.pid!, 'SIGHUP');
  await waitFor(async () => (await fingerprint()) !== before, 'the renewed certificate to be served');
});

test('conchd -t checks the rules, users and TLS files the configuration names', () => {
  const bad = path.join(dir, 'bad-rules');
  fs.writeFileSync(bad, '# fine\nalice n0[0-9] monitor,fly\n* ( monitor\n');
  const conf = path.join(dir, 'check.conf');
  fs.writeFileSync(conf, `server access="${bad}"\nserver tlscert="${path.join(dir, 'missing.pem')}" tlskey="${certs.serverKey}"\nconsole name="x" dev="test:"\n`);
  const r = runConchd(['-t', '-c', conf]);
  assert.equal(r.code, 1, r.out);
  assert.ok(r.out.includes(`${bad}:2:`) && r.out.includes('fly'), r.out);
  assert.ok(r.out.includes(`${bad}:3:`), r.out);
  assert.ok(r.out.includes('server tlscert=') && r.out.includes('missing.pem'), r.out);
  assert.match(r.out, /configuration .* is invalid/);
});

test('the conch client over TLS: a password from a file, a client certificate, a prompt on the terminal; -q -v', async () => {
  const pwFile = path.join(dir, 'alice.pw');
  fs.writeFileSync(pwFile, 'wonderland\n', { mode: 0o600 });
  const tlsArgs = ['--tls', '--ca', certs.caCert, '-d', `localhost:${tlsPort}`];
  const q = await conchPlain(cleanup, [...tlsArgs, '-q'], cleanEnv({ CONCH_PASSWORD_FILE: pwFile, CONCH_USER: 'alice' }));
  assert.equal(q.stderr, '');
  assert.equal(q.stdout, 'n01\nn02\n');

  const bob = await certs.clientCert('bob');
  const v = await conchPlain(cleanup, [...tlsArgs, '--cert', bob.cert, '--key', bob.key, '-q', '-v', 'n01']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stdout, /^n01  up since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \("node" \(pid \d+\)\); (no clients|clients: .*)\n$/);

  // a person at a terminal is asked; a wrong answer is refused like conman's errors
  const p = conchPty(cleanup, [...tlsArgs, '--user', 'alice', 'n01']);
  await p.waitOutput('Password for alice@localhost: ');
  p.write('wonderland\r');
  await p.waitOutput('<ConMan> Connection to console [n01] opened.');
  p.write('&.');
  await p.waitExit();
  const wrong = await conchPlain(cleanup, [...tlsArgs, '-q'], cleanEnv({ CONCH_PASSWORD: 'nope', CONCH_USER: 'alice' }));
  assert.notEqual(wrong.code, 0);
  assert.match(wrong.stderr, /Authentication failed/);
  // and a plain-port conch never sends it, even when it has one
  const plainQ = await conchPlain(cleanup, ['-d', `127.0.0.1:${d.port}`, '-q'], cleanEnv({ CONCH_PASSWORD: 'wonderland', CONCH_USER: 'alice' }));
  assert.equal(plainQ.stdout, 'n01\nn02\n');
});
