// The benchmark's console: a unix-socket server that writes every byte it
// reads straight back. Runs as its own process so that its event loop does
// not share time with the measuring client. Prints `listening` once bound and
// `connected N` whenever a daemon connects. With `tcp` instead of a path it
// listens on a free loopback port and prints `listening port N` (the fleet
// benchmark's machine floor, fleet-floor.ts).
//
// `udp` echoes datagrams instead (a BMC that does nothing), and `relay
// UDP_PORT` is a console daemon that does nothing: it sends what a TCP
// client types as a datagram to UDP_PORT and writes the answers back (both
// print `listening port N`). `sol MANIFEST NAME` is a console daemon that
// does only what an IPMI console needs: it opens SOL on the BMC NAME of a
// conch-bmcsim manifest with conch's own IPMI code (src/devices/ipmi.ts, on
// this process's one thread: no log, no threads, no protocol) and relays a
// TCP client's bytes to it and its output back (`listening port N` once SOL
// is up).
//
//   node dist/bench/echo-server.js /path/to/socket
//   node dist/bench/echo-server.js tcp
//   node dist/bench/echo-server.js udp
//   node dist/bench/echo-server.js relay UDP_PORT
//   node dist/bench/echo-server.js sol MANIFEST NAME

import * as net from 'node:net';
import * as fs from 'node:fs';
import * as dgram from 'node:dgram';
import { IpmiDevice } from '../src/devices/ipmi.js';

const file = process.argv[2];
if (!file || (file === 'relay' && !Number.isInteger(Number(process.argv[3]))) || (file === 'sol' && !process.argv[4])) {
  process.stderr.write('usage: echo-server.js SOCKET_PATH | tcp | udp | relay UDP_PORT | sol MANIFEST NAME\n');
  process.exit(1);
}
const listening = (port: number): boolean => process.stdout.write(`listening port ${port}\n`);

if (file === 'sol') solRelay(process.argv[3]!, process.argv[4]!);
else if (file === 'udp') {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(m, r.port, r.address));
  u.bind(0, '127.0.0.1', () => listening(u.address().port));
} else {
  const tcp = file === 'tcp' || file === 'relay';
  if (!tcp) fs.rmSync(file, { force: true });
  let connections = 0;
  const server = net.createServer((sock) => {
    connections++;
    process.stdout.write(`connected ${connections}\n`);
    sock.setNoDelay(true); // a one-byte echo must not wait for an ACK (no-op on a unix socket)
    sock.on('error', () => sock.destroy());
    if (file !== 'relay') {
      sock.on('data', (d: Buffer) => sock.write(d));
      return;
    }
    const u = dgram.createSocket('udp4');
    u.connect(Number(process.argv[3]), '127.0.0.1');
    u.on('message', (m) => sock.write(m));
    sock.on('data', (d: Buffer) => u.send(d));
    sock.on('close', () => u.close());
  });
  server.on('error', (e) => {
    process.stderr.write(`echo-server: ${file}: ${e.message}\n`);
    process.exit(1);
  });
  if (tcp) server.listen(0, '127.0.0.1', () => listening((server.address() as net.AddressInfo).port));
  else server.listen(file, () => process.stdout.write('listening\n'));
  const stop = (): void => {
    server.close();
    if (!tcp) fs.rmSync(file, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

/** SOL on one BMC of a conch-bmcsim manifest, relayed to and from the TCP client connected last */
function solRelay(manifest: string, name: string): void {
  const entries = JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name: string; address: string; port: number; user: string; password: string }[];
  const e = entries.find((x) => x.name === name);
  if (!e) {
    process.stderr.write(`echo-server: no BMC ${name} in ${manifest}\n`);
    process.exit(1);
  }
  const opts = { user: e.user, password: Buffer.from(e.password), kg: null, cipherSuite: 3, privilege: 'admin' as const, workarounds: [] };
  const dev = new IpmiDevice({ host: e.address, port: e.port, opts }, { consoleName: name });
  let client: net.Socket | null = null;
  const server = net.createServer((sock) => {
    client?.destroy();
    client = sock;
    sock.setNoDelay(true);
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: Buffer) => dev.write(d));
  });
  dev.connect({
    onUp: () => server.listen(0, '127.0.0.1', () => listening((server.address() as net.AddressInfo).port)),
    onDown: (why) => {
      process.stderr.write(`echo-server: SOL on ${name}: ${why}\n`);
      process.exit(1);
    },
    onData: (b) => client?.write(b),
    onNotice: () => {},
    onReady: () => {},
  });
  const stop = (): void => void dev.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
