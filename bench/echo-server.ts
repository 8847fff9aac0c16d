// The benchmark's console: a unix-socket server that writes every byte it
// reads straight back. Runs as its own process so that its event loop does
// not share time with the measuring client. Prints `listening` once bound and
// `connected N` whenever a daemon connects.
//
//   node dist/bench/echo-server.js /path/to/socket

import * as net from 'node:net';
import * as fs from 'node:fs';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: echo-server.js SOCKET_PATH\n');
  process.exit(1);
}
fs.rmSync(file, { force: true });

let connections = 0;
const server = net.createServer((sock) => {
  connections++;
  process.stdout.write(`connected ${connections}\n`);
  sock.on('data', (d: Buffer) => sock.write(d));
  sock.on('error', () => sock.destroy());
});
server.on('error', (e) => {
  process.stderr.write(`echo-server: ${file}: ${e.message}\n`);
  process.exit(1);
});
server.listen(file, () => process.stdout.write('listening\n'));

const stop = () => {
  server.close();
  fs.rmSync(file, { force: true });
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
