#!/usr/bin/env node
// conch-host: one simulated server console, on stdio (for a process console)
// or served on a unix socket / TCP port (for unix and raw TCP consoles).
//   conch-host --name NAME [--interval SEC] [--no-boot] [--unix PATH | --tcp PORT]
// On stdio the two bytes "&B" (what conchd writes to a process console for a
// break) count as a BREAK, so &B then t shows SysRq output.

import * as net from 'node:net';
import * as fs from 'node:fs';
import { SimHost } from '../simulator/host.js';

const argv = process.argv.slice(2);
const opt = (k: string): string | undefined => {
  const i = argv.indexOf(k);
  return i >= 0 ? argv[i + 1] : undefined;
};
const name = opt('--name') ?? 'host';
const interval = Number(opt('--interval') ?? '10');
const boot = !argv.includes('--no-boot');
const unixPath = opt('--unix');
const tcpPort = opt('--tcp');

if (unixPath || tcpPort) {
  const clients = new Set<net.Socket>();
  const host = new SimHost({ name, interval, boot: false }, (s) => {
    for (const c of clients) c.write(s, 'latin1');
  });
  const srv = net.createServer((sock) => {
    clients.add(sock);
    sock.on('data', (d) => host.input(d));
    sock.on('close', () => clients.delete(sock));
    sock.on('error', () => clients.delete(sock));
  });
  if (unixPath) {
    fs.rmSync(unixPath, { force: true });
    srv.listen(unixPath);
  } else srv.listen(Number(tcpPort), '127.0.0.1');
  host.start();
  const bye = (): void => {
    host.stop();
    srv.close();
    if (unixPath) fs.rmSync(unixPath, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', bye);
  process.on('SIGINT', bye);
} else {
  if (process.stdin.isTTY) process.stdin.setRawMode(true);
  const host = new SimHost({ name, interval, boot }, (s) => process.stdout.write(s, 'latin1'));
  let amp = false;
  process.stdin.on('data', (d: Buffer) => {
    for (const b of d) {
      if (amp) {
        amp = false;
        if (b === 0x42) {
          host.breakSignal();
          continue;
        }
        host.input('&');
      }
      if (b === 0x26) amp = true;
      else host.input(String.fromCharCode(b));
    }
  });
  process.stdin.on('end', () => process.exit(0));
  host.start();
}
