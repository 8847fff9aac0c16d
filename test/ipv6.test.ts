// IPv6, proven over ::1 (issue 28, "IPv6"; conman issue 32 asks for IPv6
// BMCs). Every far end below listens on ::1 alone, so nothing here can pass
// over IPv4 by accident:
// - an IPMI console (dev="ipmi:[::1]:PORT") on conch-bmcsim --address ::1,
//   and on OpenIPMI's ipmi_sim with `addr ::1` in its lan.conf;
// - a telnet console (dev="[::1]:PORT") on conch-bmcsim's terminal-server
//   mode bound to ::1;
// - the conch client reaching conchd with -d '[::1]:PORT', plain and --tls
//   (the certificate's IP:::1 SAN checked: one without it is refused);
// - Debian's conman 0.2.7 client, which has no IPv6 (gethostbyname, no
//   getaddrinfo): -d '[::1]:PORT' is refused by the client itself.
// The SSH console over ::1 is test/ssh-sshd.test.ts, "an SSH console over
// IPv6 (::1)" (OpenSSH sshd on ::1, dev="ssh://[::1]:PORT"): not repeated here.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cleanup, FatalWait, freePort, waitFor, waitForFile, waitForPort } from './helpers/wait.js';
import { startConchd, ROOT } from './helpers/conchd.js';
import { makeCerts } from './helpers/certs.js';
import { FakeHost, SIM_PASSWORD, SIM_USER } from './helpers/ipmi-sim.js';
import { BMCSIM, control, type SimFleet } from './bmcsim-rig.js';
import { cleanEnv, conchPlain, conchPty } from './client-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** Whether this host has an IPv6 loopback to test on (a container may not). */
async function haveIpv6Loopback(): Promise<boolean> {
  const srv = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    srv.once('error', () => resolve(false));
    srv.listen(0, '::1', () => resolve(true));
  });
  if (ok) await new Promise((r) => srv.close(r));
  return ok;
}

// IPv6 loopback belongs to the test machine like its tools: without it the tests fail
assert.ok(await haveIpv6Loopback(), 'no IPv6 loopback (::1) on this host');

/** A UDP port on ::1 that was free a moment ago (below 32768, like the IPv4 helpers'). */
async function freeUdp6Port(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    // not seeded: a port is not test input, and test files running side by
    // side must not all try the same ports first
    const port = 20000 + Math.floor(Math.random() * 12768);
    const s = dgram.createSocket('udp6');
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.bind(port, '::1', () => resolve(true));
    });
    await new Promise<void>((r) => {
      try {
        s.close(() => r());
      } catch {
        r(); // a socket whose bind failed is already closed
      }
    });
    if (ok) return port;
  }
  throw new Error('no free UDP port on ::1');
}

/** An RMCP presence ping to [::1]:port; true on the pong. */
async function pings6(port: number): Promise<boolean> {
  const s = dgram.createSocket('udp6');
  try {
    return await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      s.on('message', (m) => {
        if (m.length >= 9 && m[8] === 0x40) {
          clearTimeout(t);
          resolve(true);
        }
      });
      s.on('error', () => resolve(false));
      s.send(Buffer.from('0600ff06000011be80010000', 'hex'), port, '::1');
    });
  } finally {
    s.close();
  }
}

const readLog = (file: string): string => (fs.existsSync(file) ? fs.readFileSync(file, 'latin1') : '');

/** The `[seq N] NAME heartbeat` numbers in a log. */
const seqs = (s: string, name: string): number[] => [...s.matchAll(new RegExp(`\\[seq (\\d+)\\] ${name} heartbeat`, 'g'))].map((m) => Number(m[1]));

/** At least `n` heartbeat lines in `file`, numbered without a gap. */
async function heartbeats(file: string, name: string, n: number): Promise<void> {
  await waitFor(() => seqs(readLog(file), name).length >= n, `${n} [seq] lines of ${name} in ${file}`, 30000);
  const got = seqs(readLog(file), name);
  for (let i = 1; i < got.length; i++) assert.equal(got[i], got[i - 1] + 1, `${name}: [seq ${got[i]}] after [seq ${got[i - 1]}]`);
}

/** conch attached to console `name` through conchd's ::1 listener: Enter shows `host`'s login prompt, &B + h a SysRq; &. leaves. */
async function attachOverV6(port: number, name: string, host: string): Promise<void> {
  const p = conchPty(cleanup, ['-d', `[::1]:${port}`, name]);
  await p.waitOutput(`Connection to console [${name}] opened`);
  p.write('\r');
  await p.waitOutput(`${host} login: `, 30000);
  p.write('&B');
  p.write('h');
  await p.waitOutput('sysrq: HELP', 30000);
  p.write('&.');
  assert.equal(await p.waitExit(), 0);
}

test('an IPMI console over ::1: conch-bmcsim --address ::1, dev="ipmi:[::1]:PORT"; logged, typed into and sent a break through conch -d [::1]', async () => {
  const port = await freeUdp6Port();
  const child = cleanup.child(
    process.execPath,
    [BMCSIM, '--count', '1', '--address', '::1', '--base-port', String(port), '--heartbeat', '0.2', '--no-boot', '--control-port', '0'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = await child.waitOutput('# ready');
  assert.match(out, new RegExp(`^node01\\t::1\\t${port}\\tadmin\\t`, 'm'), 'the BMC is on ::1');
  const sim: SimFleet = { child, basePort: port, control: /# control (http:\/\/\S+)/.exec(out)?.[1] ?? null };

  const d = await startConchd(cleanup, `console name="v6ipmi" dev="ipmi:[::1]:${port}" ipmiopts="U:admin,P:password" log="%N.log"\n`);
  await d.child.waitOutput(`Console [v6ipmi] connected to <[::1]:${port}>`, 30000);
  const log = path.join(d.logdir, 'v6ipmi.log');
  await heartbeats(log, 'node01', 10);

  const before = (await control(sim, 'GET', '/bmcs/node01')).json as { sessions: number; solOwner: string | null; host: { breaks: number } };
  assert.ok(before.sessions >= 1 && before.solOwner !== null, `conchd holds SOL on the ::1 BMC: ${JSON.stringify(before)}`);
  await attachOverV6(d.port, 'v6ipmi', 'node01');
  const afterAttach = (await control(sim, 'GET', '/bmcs/node01')).json as { host: { breaks: number } };
  assert.equal(afterAttach.host.breaks, before.host.breaks + 1, 'the break went over SOL to the host');
  await waitForFile(log, 'sysrq: HELP');
});

test('an IPMI console over ::1 on a real OpenIPMI ipmi_sim (lan.conf "addr ::1")', async () => {
  // the host side of ipmi_sim's SOL (its tcp: serial port) stays on 127.0.0.1: only the BMC's network is under test
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const host = new FakeHost(server);
  cleanup.add(() => host.close());
  const hostPort = (server.address() as net.AddressInfo).port;
  const bmcPort = await freeUdp6Port();
  const dir = cleanup.dir('conch-ipmisim6-');
  const fixtures = path.join(ROOT, 'test/fixtures/ipmi');
  const template = fs.readFileSync(path.join(fixtures, 'lan.conf.in'), 'utf8');
  assert.match(template, /^\s*addr 127\.0\.0\.1 @BMC_PORT@$/m);
  const conf = template.replace(/^(\s*addr) 127\.0\.0\.1 @BMC_PORT@$/m, `$1 ::1 ${bmcPort}`).replaceAll('@HOST_PORT@', String(hostPort));
  fs.writeFileSync(path.join(dir, 'lan.conf'), conf);
  fs.mkdirSync(path.join(dir, 'state'));
  const sim = cleanup.child('ipmi_sim', ['-c', path.join(dir, 'lan.conf'), '-f', path.join(fixtures, 'sim.emu'), '-s', path.join(dir, 'state'), '-n'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  await waitFor(async () => {
    if (sim.proc.exitCode !== null || sim.proc.signalCode !== null) throw new FatalWait(`ipmi_sim exited: ${sim.output}`);
    return pings6(bmcPort);
  }, `ipmi_sim on UDP [::1]:${bmcPort}`);
  await waitFor(() => host.connected, 'ipmi_sim to connect to the fake host');

  const d = await startConchd(cleanup, `console name="sim6" dev="ipmi:[::1]:${bmcPort}" ipmiopts="U:${SIM_USER},P:${SIM_PASSWORD}" log="%N.log"\n`);
  await d.child.waitOutput(`Console [sim6] connected to <[::1]:${bmcPort}>`, 30000);
  const log = path.join(d.logdir, 'sim6.log');
  // host → SOL → conchd: the line may be written before SOL is fully up, so repeat it until it is logged
  await waitFor(() => {
    if (readLog(log).includes('hello from ipmi_sim over v6')) return true;
    host.write('hello from ipmi_sim over v6\r\n');
    return false;
  }, 'host output over SOL on ::1 in the console log', 30000, 250);
  // conch → conchd (::1) → SOL (::1) → host
  const p = conchPty(cleanup, ['-d', `[::1]:${d.port}`, 'sim6']);
  await p.waitOutput('Connection to console [sim6] opened');
  p.write('typed-over-v6');
  await waitFor(() => host.received.toString('latin1').includes('typed-over-v6'), 'typed keys at the host', 30000);
  p.write('&.');
  assert.equal(await p.waitExit(), 0);
});

test('a telnet console over ::1: conch-bmcsim terminal-server mode on ::1, dev="[::1]:PORT"', async () => {
  const port = await freePort('::1');
  const sim = cleanup.child(
    process.execPath,
    [BMCSIM, '--address', '::1', '--telnet-count', '1', '--telnet-base-port', String(port), '--heartbeat', '0.2', '--no-boot'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const out = await sim.waitOutput('# ready');
  assert.match(out, new RegExp(`^# telnet\\ttel01\\t::1\\t${port}$`, 'm'), 'the terminal server is on ::1');
  await waitForPort(port, '::1');

  const d = await startConchd(cleanup, `console name="v6tel" dev="[::1]:${port}" log="%N.log"\n`);
  await d.child.waitOutput(`Console [v6tel] connected to <[::1]:${port}>`, 30000);
  const log = path.join(d.logdir, 'v6tel.log');
  await heartbeats(log, 'tel01', 10);
  await attachOverV6(d.port, 'v6tel', 'tel01'); // the break is IAC BRK on the ::1 connection
  await waitForFile(log, 'sysrq: HELP');
});

test('the conch client reaches conchd over ::1: -d [::1]:PORT plain, and --tls checked against the IP:::1 SAN', async () => {
  const dir = cleanup.dir('conch-v6-client-');
  const certs = await makeCerts(dir); // server SANs: DNS:localhost, IP:127.0.0.1, IP:::1
  const tlsPort = await freePort();
  const d = await startConchd(cleanup, 'console name="a6" dev="test:"\nconsole name="b6" dev="test:"\n', {
    dir,
    extraHeader: `server tlsport=${tlsPort} tlscert="${certs.serverCert}" tlskey="${certs.serverKey}"\n`,
  });
  await d.child.waitOutput(`Listening on TLS port ${tlsPort}`);

  const plain = await conchPlain(cleanup, ['-q', '-d', `[::1]:${d.port}`]);
  assert.deepEqual([plain.code, plain.stdout, plain.stderr], [0, 'a6\nb6\n', '']);
  const overTls = await conchPlain(cleanup, ['-q', '--tls', '--ca', certs.caCert, '-d', `[::1]:${tlsPort}`]);
  assert.deepEqual([overTls.code, overTls.stdout, overTls.stderr], [0, 'a6\nb6\n', '']);

  // a certificate without IP:::1 is refused at [::1] (and accepted at 127.0.0.1): the v6 address is what is checked
  const v4only = await certs.serverCertFor(['DNS:localhost', 'IP:127.0.0.1'], 'localhost');
  const tlsPort2 = await freePort();
  const d2 = await startConchd(cleanup, 'console name="c6" dev="test:"\n', {
    dir: cleanup.dir('conch-v6-client2-'),
    extraHeader: `server tlsport=${tlsPort2} tlscert="${v4only.cert}" tlskey="${v4only.key}"\n`,
  });
  await d2.child.waitOutput(`Listening on TLS port ${tlsPort2}`);
  const refused = await conchPlain(cleanup, ['-q', '--tls', '--ca', certs.caCert, '-d', `[::1]:${tlsPort2}`]);
  assert.notEqual(refused.code, 0);
  assert.equal(refused.stdout, '');
  assert.match(refused.stderr, /IP: ::1 is not in the cert's list: 127\.0\.0\.1/, refused.stderr);
  const v4 = await conchPlain(cleanup, ['-q', '--tls', '--ca', certs.caCert, '-d', `127.0.0.1:${tlsPort2}`]);
  assert.deepEqual([v4.code, v4.stdout], [0, 'c6\n']);
});

test("Debian conman 0.2.7's client has no IPv6: it refuses -d [::1]:PORT itself (conchd answers it over IPv4)", async () => {
  const d = await startConchd(cleanup, 'console name="m6" dev="test:"\n');
  const run = async (dest: string): Promise<{ code: number | null; out: string }> => {
    const c = cleanup.child('/usr/bin/conman', ['-q', '-d', dest], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const code = await c.exited;
    await waitFor(() => c.proc.stdout?.readableEnded !== false && c.proc.stderr?.readableEnded !== false, 'conman output pipes to close');
    return { code, out: c.output };
  };
  // it splits host:port at the first colon and resolves with gethostbyname (IPv4 only)
  const v6 = await run(`[::1]:${d.port}`);
  assert.equal(v6.code, 2);
  assert.match(v6.out, /Unable to resolve host <\[>/);
  const v4 = await run(`127.0.0.1:${d.port}`);
  assert.deepEqual([v4.code, v4.out], [0, 'm6\n']);
});
