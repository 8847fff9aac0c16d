// conch --tls, passwords and `-q -v` as a user sees them, against a scripted
// daemon (node:tls or node:net with openssl-made certificates) that speaks the
// conman handshake and records what it received: certificate failures name
// their cause, a password travels only over TLS and only after the daemon
// asks (or when configured), the terminal prompt hides it, and a verbose
// query prints the daemon's status lines or falls back to the names.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { parseArgs } from '../src/client/args.js';
import { greetingLine, requestLine } from '../src/client/proto.js';
import { lexLine } from '../src/protocol/lex.js';
import { makeCerts, type TestCerts } from './helpers/certs.js';
import { Cleanup, tmpDir, waitFor, waitForFile } from './helpers/wait.js';
import { CONCH, Conmand, PtyProc, childPids, cleanEnv, conchPlain } from './client-rig.js';

const me = os.userInfo().username;
const NAMES = "OK CONSOLE='n1' CONSOLE='n2'\n";
const REQUIRED = "ERROR CODE=4 MESSAGE='Authentication required'\n";
const FAILED = "ERROR CODE=4 MESSAGE='Authentication failed'\n";

// One CA and certificate set for the whole file: openssl runs take a while.
const certDir = tmpDir('conch-certs-');
process.on('exit', () => fs.rmSync(certDir, { recursive: true, force: true }));
let certsMade: Promise<TestCerts> | undefined;
const certs = (): Promise<TestCerts> => (certsMade ??= makeCerts(certDir));

/** What one client connection sent the scripted daemon. */
interface Seen {
  bytes: Buffer; // everything, for "never on the wire" checks
  greeting?: Buffer;
  request?: Buffer;
  servername?: string | false;
  cn?: string; // client certificate subject
}

/** The PASSWORD value of a greeting, decoded like the daemon would; undefined when absent. */
function passwordIn(greeting: Buffer | undefined): string | undefined {
  const t = lexLine(greeting ?? Buffer.alloc(0));
  const at = t.findIndex((x) => x.kind === 'kw' && x.kw === 'PASSWORD');
  const v = t[at + 2];
  if (at < 0 || v?.kind !== 'str') return undefined;
  return Buffer.from(v.value, 'base64').toString('utf8');
}

interface Script {
  /** reply to the greeting; an ERROR ends the connection */
  greet?(seen: Seen, n: number): string;
  /** the whole reply to the request, after which the daemon closes */
  answer?(seen: Seen): string;
  /** instead: stay open after the reply and echo the session's bytes back, upper-cased */
  attach?: boolean;
}

/** A one-line-at-a-time daemon on 127.0.0.1: TLS when given options, else plain TCP. */
class ScriptedDaemon {
  readonly seen: Seen[] = [];
  port = 0;
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(tlsOptions: tls.TlsOptions | null, private readonly script: Script = {}) {
    const handler = (sock: net.Socket): void => this.serve(sock);
    this.server = tlsOptions
      ? tls.createServer({ allowHalfOpen: true, ...tlsOptions }, handler)
      : net.createServer({ allowHalfOpen: true }, handler);
    this.server.on('tlsClientError', () => {}); // the client refusing our certificate is the test
    // Every TCP connection, handshake finished or not, so close() can end them all.
    this.server.on('connection', (sock: net.Socket) => {
      this.sockets.add(sock);
      sock.on('close', () => this.sockets.delete(sock));
    });
  }

  static async start(c: Cleanup, tlsOptions: tls.TlsOptions | null, script?: Script): Promise<ScriptedDaemon> {
    const d = new ScriptedDaemon(tlsOptions, script);
    await new Promise<void>((resolve) => d.server.listen(0, '127.0.0.1', resolve));
    d.port = (d.server.address() as net.AddressInfo).port;
    c.add(() => d.close());
    return d;
  }

  private serve(sock: net.Socket): void {
    this.sockets.add(sock);
    sock.on('close', () => this.sockets.delete(sock));
    sock.on('error', () => {});
    sock.on('end', () => sock.end()); // allowHalfOpen is for the reply; after it, leave no socket behind
    const seen: Seen = { bytes: Buffer.alloc(0) };
    if (sock instanceof tls.TLSSocket) {
      seen.servername = (sock as tls.TLSSocket & { servername?: string | false }).servername;
      const peer = sock.getPeerCertificate();
      if (peer?.subject) seen.cn = String(peer.subject.CN);
    }
    const n = this.seen.push(seen);
    let buf = Buffer.alloc(0);
    sock.on('data', (d: Buffer) => {
      seen.bytes = Buffer.concat([seen.bytes, d]);
      if (seen.request && this.script.attach) {
        sock.write(d.toString('latin1').toUpperCase(), 'latin1');
        return;
      }
      buf = Buffer.concat([buf, d]);
      for (let nl = buf.indexOf(0x0a); nl >= 0 && !seen.request; nl = buf.indexOf(0x0a)) {
        const line = buf.subarray(0, nl + 1);
        buf = buf.subarray(nl + 1);
        if (!seen.greeting) {
          seen.greeting = line;
          const reply = this.script.greet?.(seen, n) ?? 'OK\n';
          if (reply.startsWith('ERROR')) sock.end(reply);
          else sock.write(reply);
        } else {
          seen.request = line;
          const reply = this.script.answer?.(seen) ?? NAMES;
          if (this.script.attach) sock.write(reply);
          else sock.end(reply);
        }
      }
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

async function withCleanup(fn: (c: Cleanup) => Promise<void>): Promise<void> {
  const c = new Cleanup();
  try {
    await fn(c);
  } finally {
    await c.run();
  }
}

/** A TLS daemon with the standard localhost certificate. */
async function tlsDaemon(c: Cleanup, script?: Script, extra: tls.TlsOptions = {}): Promise<ScriptedDaemon> {
  const k = await certs();
  return ScriptedDaemon.start(c, { cert: fs.readFileSync(k.serverCert), key: fs.readFileSync(k.serverKey), ...extra }, script);
}

/** Asks for a password until one comes; accepts only `good`. */
const wantsPassword = (good: string): Script => ({
  greet: (s) => {
    const pw = passwordIn(s.greeting);
    if (pw === undefined) return REQUIRED;
    return pw === good ? 'OK\n' : FAILED;
  },
});

test('option parsing: --tls and friends anywhere, the TLS port, old flags unchanged', () => {
  const r = parseArgs(['n1', '--tls', '-j', '--ca', 'a.pem', 'n2', '--cert=c.pem', '-Q', '--key', 'k.pem'], {});
  assert.ok(r.action === 'run');
  assert.deepEqual(r.opts.consoles, ['n1', 'n2']);
  assert.equal(r.opts.tls, true);
  assert.deepEqual([r.opts.ca, r.opts.cert, r.opts.key], ['a.pem', 'c.pem', 'k.pem']);
  assert.ok(r.opts.join && r.opts.quiet);
  const port = (argv: string[], env: NodeJS.ProcessEnv = {}): number => {
    const p = parseArgs(argv, env);
    assert.ok(p.action === 'run');
    return p.opts.port;
  };
  assert.equal(port(['-q']), 7890);
  assert.equal(port(['-q', '--tls']), 7891);
  assert.equal(port(['-q', '-d', 'h']), 7890);
  assert.equal(port(['-q', '--tls', '-d', 'h']), 7891);
  assert.equal(port(['-q', '--tls', '-d', 'h:99']), 99);
  assert.equal(port(['-q', '-d', 'h:99', '--tls']), 99);
  assert.equal(port(['-q'], { CONCH_TLS: '1' }), 7891);
  assert.equal(port(['-q'], { CONCH_TLS: '0' }), 7890);
  assert.equal(port(['-q', '--tls'], { CONCH_PORT: '5000' }), 5000);
  assert.equal(port(['-q', '--tls'], { CONMAN_HOST: 'h:5001' }), 5001);
  assert.equal(port(['-q'], { CONCH_TLS: 'yes', CONMAN_PORT: '5002' }), 5002);
  const env = parseArgs(['-q'], { CONCH_TLS: '1', CONCH_CA: 'e.pem', CONCH_CERT: 'ec.pem', CONCH_KEY: 'ek.pem' });
  assert.ok(env.action === 'run' && env.opts.ca === 'e.pem' && env.opts.cert === 'ec.pem' && env.opts.key === 'ek.pem');
  // the command line wins over the environment
  const over = parseArgs(['-q', '--ca', 'cli.pem'], { CONCH_TLS: '1', CONCH_CA: 'e.pem' });
  assert.ok(over.action === 'run' && over.opts.ca === 'cli.pem');
  // old short flags as before, clustered and with attached values
  const old = parseArgs(['-qQr', '-dh:7', '-e^', 'x'], {});
  assert.ok(old.action === 'run' && old.opts.command === 'query' && old.opts.regex && old.opts.port === 7 && old.opts.escape === 0x5e);
  assert.ok(!old.opts.tls);
  assert.equal(parseArgs(['--tls'], {}).action, 'help');
  assert.throws(() => parseArgs(['--bogus', 'n1'], {}), /CMDLINE: invalid option "--bogus"/);
  assert.throws(() => parseArgs(['n1', '--ca'], {}), /CMDLINE: option "--ca" requires an argument/);
  assert.throws(() => parseArgs(['--tls=1', 'n1'], {}), /option "--tls" takes no argument/);
  assert.throws(() => parseArgs(['--ca', 'x', 'n1'], {}), /option "--ca" needs --tls/);
  assert.throws(() => parseArgs(['--tls', '--cert', 'c', 'n1'], {}), /needs both --cert and --key/);
  assert.throws(() => parseArgs(['n1'], { CONCH_TLS: 'maybe' }), /CONCH_TLS must be 1 or 0/);
  // the CA/cert variables alone do not switch TLS on, nor get in the way
  const plain = parseArgs(['-q'], { CONCH_CA: 'e.pem' });
  assert.ok(plain.action === 'run' && !plain.opts.tls);
});

test('wire: PASSWORD last in the greeting, base64 of its UTF-8; OPTION=STATUS only on a verbose QUERY', () => {
  assert.equal(
    greetingLine('bob', 'pts/3', `p'w"ü§`).toString('latin1'),
    `HELLO USER='bob' TTY='pts/3' PASSWORD='${Buffer.from(`p'w"ü§`).toString('base64')}'\n`,
  );
  assert.equal(greetingLine('bob').toString('latin1'), "HELLO USER='bob'\n");
  const req = { quiet: true, regex: true, force: false, join: false, broadcast: false, consoles: ['n*'], verbose: true };
  assert.equal(requestLine({ ...req, command: 'query' }).toString('latin1'), "QUERY OPTION=QUIET OPTION=REGEX OPTION=STATUS CONSOLE='n*'\n");
  assert.equal(requestLine({ ...req, command: 'connect' }).toString('latin1'), "CONNECT OPTION=QUIET OPTION=REGEX CONSOLE='n*'\n");
  assert.equal(requestLine({ ...req, command: 'query', verbose: false }).toString('latin1'), "QUERY OPTION=QUIET OPTION=REGEX CONSOLE='n*'\n");
});

test('--tls --ca lists the consoles; SNI for a name, none for an address; no password unasked', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const d = await tlsDaemon(c);
    // A password is configured but this daemon does not ask: it never sees it.
    const env = cleanEnv({ CONCH_PASSWORD: 'unasked' });
    const r = await conchPlain(c, ['-q', '--tls', '--ca', k.caCert, '-d', `localhost:${d.port}`], env);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'n1\nn2\n');
    assert.equal(d.seen[0].servername, 'localhost');
    assert.match(d.seen[0].greeting!.toString('latin1'), new RegExp(`^HELLO USER='${me}'\\n$`));
    assert.equal(d.seen[0].request!.toString('latin1'), 'QUERY\n');
    // By address, through the environment; the certificate's IP SAN matches.
    const byIp = await conchPlain(c, ['-q'], cleanEnv({ CONCH_TLS: '1', CONCH_CA: k.caCert, CONCH_HOST: `127.0.0.1:${d.port}` }));
    assert.equal(byIp.code, 0);
    assert.equal(byIp.stdout, 'n1\nn2\n');
    assert.ok(!d.seen[1].servername);
  }));

test('certificate failures are named: wrong CA, wrong host, expired, self-signed (exit 2)', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const other = await k.otherCa();
    const elsewhere = await k.serverCertFor(['DNS:elsewhere.example']);
    const daemon = async (pair: { cert: string; key: string }): Promise<ScriptedDaemon> =>
      ScriptedDaemon.start(c, { cert: fs.readFileSync(pair.cert), key: fs.readFileSync(pair.key) });
    const cases: [ScriptedDaemon, string, RegExp][] = [
      [await tlsDaemon(c), other.cert, /unable to verify the first certificate/],
      [await daemon(elsewhere), k.caCert, /Hostname\/IP does not match certificate's altnames: Host: localhost\. is not in the cert's altnames: DNS:elsewhere\.example/],
      [await daemon(k.expired), k.caCert, /certificate has expired/],
      [await daemon(k.selfSigned), k.caCert, /self[- ]signed certificate/],
    ];
    for (const [d, ca, why] of cases) {
      const r = await conchPlain(c, ['--tls', '--ca', ca, '-d', `localhost:${d.port}`, '-q']);
      assert.equal(r.code, 2, r.stderr);
      // the daemon as conman names it: the address's reverse name
      assert.match(r.stderr, new RegExp(`^ERROR: Unable to connect to <[^>]+:${d.port}>: `));
      assert.match(r.stderr, why);
      assert.equal(r.stdout, '');
      assert.equal(d.seen.every((s) => s.greeting === undefined), true, 'nothing sent to an unverified daemon');
    }
    // Without --ca the system CAs are used, and they do not know the test CA.
    const d = await tlsDaemon(c);
    const r = await conchPlain(c, ['--tls', '-d', `localhost:${d.port}`, '-q']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /Unable to connect to <[^>]+:\d+>: unable to (verify the first certificate|get local issuer certificate)/);
  }));

test('missing or unusable --ca/--cert/--key files are named (exit 1, before connecting)', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const dir = c.dir('conch-tls-files-');
    const run = (args: string[]): Promise<{ code: number | null; stderr: string }> =>
      conchPlain(c, ['--tls', '-d', '127.0.0.1:1', '-q', ...args]);
    let r = await run(['--ca', path.join(dir, 'nope.pem')]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `ERROR:     Unable to open CA file "${path.join(dir, 'nope.pem')}": No such file or directory\n`);
    fs.writeFileSync(path.join(dir, 'empty.pem'), 'not a certificate\n');
    r = await run(['--ca', path.join(dir, 'empty.pem')]);
    assert.equal(r.stderr, `ERROR:     CA file "${path.join(dir, 'empty.pem')}" holds no PEM certificate\n`);
    r = await run(['--ca', k.caCert, '--cert', k.serverCert, '--key', path.join(dir, 'nokey.pem')]);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `ERROR:     Unable to open key file "${path.join(dir, 'nokey.pem')}": No such file or directory\n`);
    r = await run(['--ca', k.caCert, '--cert', k.serverCert, '--key', k.caKey]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`^ERROR:     Unable to use certificate "${k.serverCert}" with key "${k.caKey}": .*key values mismatch`));
  }));

test('a client certificate is presented with --cert/--key; a daemon that needs one says so', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const alice = await k.clientCert('alice');
    const d = await tlsDaemon(c, {}, { requestCert: true, rejectUnauthorized: true, ca: fs.readFileSync(k.caCert) });
    const r = await conchPlain(c, ['-q', '--tls', '--ca', k.caCert, '--cert', alice.cert, '--key', alice.key, '-d', `localhost:${d.port}`]);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, 'n1\nn2\n');
    assert.equal(d.seen[0].cn, 'alice');
    const without = await conchPlain(c, ['-q', '--tls', '--ca', k.caCert, '-d', `localhost:${d.port}`]);
    assert.equal(without.code, 2);
    // The refusal comes after the TLS 1.3 handshake, as an alert read with the reply to the greeting.
    assert.match(
      without.stderr,
      new RegExp(
        `^ERROR: Unable to read response from <[^>]+:${d.port}>:\\n` +
          '  tlsv13 alert certificate required \\(the daemon wants a client certificate: --cert and --key\\)\\.\\n\\n$',
      ),
    );
  }));

test('password: none until asked, then from CONCH_PASSWORD_FILE on exactly one new connection', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const secret = `it's "ü" #1 =x`;
    const d = await tlsDaemon(c, wantsPassword(secret));
    const dir = c.dir('conch-pw-');
    const file = path.join(dir, 'pw');
    fs.writeFileSync(file, `${secret}\nsecond line\n`, { mode: 0o600 });
    const log = path.join(dir, 'q.log');
    const r = await conchPlain(c, ['--tls', '-q', '-l', log, '-d', `localhost:${d.port}`], cleanEnv({ CONCH_CA: k.caCert, CONCH_PASSWORD_FILE: file }));
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'n1\nn2\n');
    assert.equal(d.seen.length, 2);
    assert.equal(passwordIn(d.seen[0].greeting), undefined);
    assert.equal(passwordIn(d.seen[1].greeting), secret);
    assert.ok(d.seen[1].greeting!.includes(Buffer.from(` PASSWORD='${Buffer.from(secret).toString('base64')}'\n`)));
    const logged = await waitForFile(log, 'Log finished');
    assert.ok(!logged.includes('ü') && !logged.includes('#1'), 'the password is not in the session log');
  }));

test('password over TLS: no terminal, wrong password, a daemon that keeps asking (exit 2)', () =>
  withCleanup(async (c) => {
    const k = await certs();
    // The daemon asks although nothing was configured at start: the client
    // has no terminal here, so it says where to put the password.
    const d = await tlsDaemon(c, wantsPassword('pw'));
    const none = await conchPlain(c, ['--tls', '--ca', k.caCert, '-q', '-d', `localhost:${d.port}`]);
    assert.equal(none.code, 2);
    assert.equal(
      none.stderr,
      'ERROR: Authentication required, and there is no terminal to ask for the password on:\n' +
        '  put it in a file and name that file in CONCH_PASSWORD_FILE.\n\n',
    );
    assert.equal(d.seen.length, 1);
    assert.equal(passwordIn(d.seen[0].greeting), undefined);

    // A wrong password: "Authentication failed" as any other daemon error.
    const wrong = await conchPlain(c, ['--tls', '--ca', k.caCert, '-q', '-d', `localhost:${d.port}`], cleanEnv({ CONCH_PASSWORD: 'nope' }));
    assert.equal(wrong.code, 2);
    assert.equal(wrong.stderr, 'ERROR: Authentication failed.\n\n');
    assert.equal(d.seen.length, 3, 'one retry with the password, no more');
    assert.equal(passwordIn(d.seen[1].greeting), undefined);
    assert.equal(passwordIn(d.seen[2].greeting), 'nope');

    // A daemon that keeps asking gets one retry, not a loop.
    const nag = await tlsDaemon(c, { greet: () => REQUIRED });
    const pty = new PtyProc(process.execPath, [CONCH, '--tls', '--ca', k.caCert, '-q', '-d', `localhost:${nag.port}`], cleanEnv());
    c.add(() => pty.kill());
    await pty.waitOutput(`Password for ${me}@localhost: `);
    pty.write('pw\r');
    assert.equal(await pty.waitExit(), 2);
    assert.match(pty.output, /ERROR: Authentication required\.\r\n/);
    assert.equal(nag.seen.length, 2);
    assert.equal(passwordIn(nag.seen[0].greeting), undefined);
    assert.equal(passwordIn(nag.seen[1].greeting), 'pw');
  }));

test('a password never goes over plain TCP, even with CONCH_PASSWORD set', () =>
  withCleanup(async (c) => {
    const secret = 'plain-text-secret';
    const asks = await ScriptedDaemon.start(c, null, { greet: () => REQUIRED });
    const env = cleanEnv({ CONCH_PASSWORD: secret, CONCH_PASSWORD_FILE: '/nonexistent/never-read' });
    const r = await conchPlain(c, ['-q', '-d', `127.0.0.1:${asks.port}`], env);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, 'ERROR: Authentication required.\n\n\nconch sends a password only over TLS: connect with --tls.\n\n');
    assert.equal(asks.seen.length, 1);
    const open = await ScriptedDaemon.start(c, null);
    const ok = await conchPlain(c, ['-q', '-d', `127.0.0.1:${open.port}`], env);
    assert.equal(ok.code, 0);
    assert.equal(ok.stdout, 'n1\nn2\n');
    for (const s of [...asks.seen, ...open.seen]) {
      assert.ok(!s.bytes.includes(secret), 'password bytes on a plain connection');
      assert.doesNotMatch(s.bytes.toString('latin1'), /PASSWORD/);
    }
  }));

test('an attached session runs over TLS: keys out, console output in, &. closes (exit 0)', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const d = await tlsDaemon(c, { ...wantsPassword('pw'), answer: () => "OK CONSOLE='n1'\n", attach: true });
    const p = new PtyProc(process.execPath, [CONCH, '--tls', '--ca', k.caCert, '-d', `localhost:${d.port}`, 'n1'], cleanEnv({ CONCH_PASSWORD: 'pw' }));
    c.add(() => p.kill());
    await p.waitOutput('<ConMan> Connection to console [n1] opened.');
    p.write('tls-typed\r');
    await p.waitOutput('TLS-TYPED\r');
    p.write('&.');
    await p.waitOutput('Connection to console [n1] closed.');
    assert.equal(await p.waitExit(), 0);
    assert.equal(d.seen.length, 2);
    assert.equal(d.seen[1].request!.toString('latin1'), "CONNECT CONSOLE='n1'\n");
  }));

/** A shell on a pty around conch that saves `stty -g` before and after it. */
function shellAroundConch(c: Cleanup, dir: string, args: string[]): PtyProc {
  const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
  const script =
    `stty -g > ${q(path.join(dir, 'before'))}; ` +
    `${q(process.execPath)} ${q(CONCH)} ${args.map(q).join(' ')}; ` +
    `echo "conch-rc=$?"; stty -g > ${q(path.join(dir, 'after'))}; echo shell-done`;
  const p = new PtyProc('/bin/sh', ['-c', script], cleanEnv());
  c.add(() => p.kill());
  return p;
}

async function assertRestored(p: PtyProc, dir: string): Promise<void> {
  await p.waitOutput('shell-done');
  const before = await waitForFile(path.join(dir, 'before'), ':');
  const after = await waitForFile(path.join(dir, 'after'), ':');
  assert.equal(after, before, 'stty -g after conch differs from before');
}

test('the terminal prompt hides the password and restores the terminal, also on ^C and SIGTERM', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const d = await tlsDaemon(c, wantsPassword('pässwörd'));
    const args = ['--tls', '--ca', k.caCert, '-q', '-d', `localhost:${d.port}`];
    const dir = c.dir('conch-prompt-');
    const p = shellAroundConch(c, dir, args);
    await p.waitOutput(`Password for ${me}@localhost: `);
    p.write(Buffer.from('pässX\x7fwörd\r', 'utf8')); // a typo rubbed out with DEL
    await p.waitOutput('conch-rc=0');
    assert.match(p.output, new RegExp(`Password for ${me}@localhost: \\r\\nn1\\r\\nn2\\r\\n`));
    assert.ok(!p.output.includes('p\xc3\xa4ss') && !p.output.includes('w\xc3\xb6rd'), 'typed password echoed');
    await assertRestored(p, dir);
    assert.equal(passwordIn(d.seen[1].greeting), 'pässwörd');

    const dir2 = c.dir('conch-prompt-');
    const q = shellAroundConch(c, dir2, args);
    await q.waitOutput(`Password for ${me}@localhost: `);
    q.write('abc\x03');
    await q.waitOutput('conch-rc=1');
    assert.match(q.output, /ERROR:     Password prompt interrupted\r\n/);
    await assertRestored(q, dir2);
    assert.equal(d.seen.length, 3, 'no second connection after ^C');

    // Killed from elsewhere while asking: the terminal is still put back.
    const dir3 = c.dir('conch-prompt-');
    const t = shellAroundConch(c, dir3, args);
    await t.waitOutput(`Password for ${me}@localhost: `);
    process.kill(await waitFor(() => childPids(t.pid)[0], 'conch under the shell'), 'SIGTERM');
    await t.waitOutput('conch-rc=143');
    await assertRestored(t, dir3);
  }));

test('-q -v asks for STATUS and prints the status lines; falls back to the names', () =>
  withCleanup(async (c) => {
    const k = await certs();
    const status =
      'node01  up since 2026-12-06 10:02:11 via ipmi 10.0.0.5; SOL held elsewhere since 10:04:00; 1 writer, 2 readers\n' +
      'node02  down since 2026-12-06 09:00:00 via ipmi 10.0.0.6\n';
    const d = await tlsDaemon(c, {
      answer: (s) => (s.request!.includes('OPTION=STATUS') ? `OK CONSOLE='node01' CONSOLE='node02'\n${status}` : "OK CONSOLE='node01' CONSOLE='node02'\n"),
    });
    const base = ['--tls', '--ca', k.caCert, '-d', `localhost:${d.port}`];
    const v = await conchPlain(c, [...base, '-q', '-v', 'node0*']);
    assert.equal(v.code, 0);
    assert.equal(v.stdout, status);
    assert.equal(d.seen[0].request!.toString('latin1'), "QUERY OPTION=STATUS CONSOLE='node0*'\n");
    const plain = await conchPlain(c, [...base, '-q', 'node0*']);
    assert.equal(plain.stdout, 'node01\nnode02\n');
    assert.equal(d.seen[1].request!.toString('latin1'), "QUERY CONSOLE='node0*'\n");
    // An older daemon answers the names only.
    const old = await ScriptedDaemon.start(c, null);
    const fallback = await conchPlain(c, ['-d', `127.0.0.1:${old.port}`, '-qv']);
    assert.equal(fallback.code, 0);
    assert.equal(fallback.stdout, 'n1\nn2\n');
    assert.equal(old.seen[0].request!.toString('latin1'), 'QUERY OPTION=STATUS\n');
  }));

test('-q -v against conmand prints the names as -q does', () =>
  withCleanup(async (c) => {
    const d = await Conmand.start(c, ['n1', 'n2']);
    const r = await conchPlain(c, ['-d', d.dest, '-q', '-v']);
    assert.equal(r.stderr, '');
    assert.equal(r.code, 0);
    assert.equal(r.stdout, 'n1\nn2\n');
  }));
