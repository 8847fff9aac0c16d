// The benchmark's console: a unix-socket server that writes every byte it
// reads straight back. Runs as its own process so that its event loop does
// not share time with the measuring client. Prints `listening` once bound and
// `connected N` whenever a daemon connects. With `tcp` instead of a path it
// listens on a free loopback port and prints `listening port N` (the fleet
// benchmark's machine floor, fleet-floor.ts).
//
//   node dist/bench/echo-server.js /path/to/socket
//   node dist/bench/echo-server.js tcp

import * as net from 'node:net';
import * as fs from 'node:fs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: echo-server.js SOCKET_PATH | tcp\n');
  process.exit(1);
}
const tcp = file === 'tcp';
if (!tcp) fs.rmSync(file, { force: true });

let connections = 0;
const server = net.createServer((sock) => {
  connections++;
  process.stdout.write(`connected ${connections}\n`);
  sock.setNoDelay(true); // a one-byte echo must not wait for an ACK (no-op on a unix socket)
  sock.on('data', (d: Buffer) => sock.write(d));
  sock.on('error', () => sock.destroy());
});
server.on('error', (e) => {
  process.stderr.write(`echo-server: ${file}: ${e.message}\n`);
  process.exit(1);
});
if (tcp) server.listen(0, '127.0.0.1', () => process.stdout.write(`listening port ${(server.address() as net.AddressInfo).port}\n`));
else server.listen(file, () => process.stdout.write('listening\n'));

const stop = () => {
  server.close();
  if (!tcp) fs.rmSync(file, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
