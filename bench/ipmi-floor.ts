// The floor under an IPMI console daemon at a fleet's size: a process that
// does the IPMI work of every console of a conman.conf and nothing else. SOL
// on each console with conch's own IPMI code, on as many IPMI threads as
// conchd would run (src/devices/ipmi-threads.ts); no log, no ring of recent
// output, no alerts, no index. The consoles' output is dropped as it reaches
// the main thread, except the typed-at console's, which goes to the clients
// attached to it. Clients speak just enough of conman's protocol for the
// fleet benchmark's typist and joined readers (a greeting, then a CONNECT,
// each answered OK); from then on their bytes are the console's.
//
// What conchd does beyond this floor at the same load (its logs, the fan-out,
// its protocol) is its own; what the floor takes beyond the relay floor
// (fleet-floor.ts) is the IPMI work of the whole fleet on this machine.
//
// Listens on the conf's `server port` (loopback); prints `listening port N`,
// then `up K/N` whenever the count of consoles with SOL up changes (at most
// once a second) and once all are up.
//
//   node dist/bench/ipmi-floor.js CONF CONSOLE

import * as net from 'node:net';
import { loadConfig } from '../src/config/parse.js';
import { createDevice } from '../src/devices/index.js';
import { autoIpmiThreads, IpmiThreads } from '../src/devices/ipmi-threads.js';
import type { Device, DeviceHandler } from '../src/devices/device.js';

const [confFile, typed] = process.argv.slice(2);
if (!confFile || !typed) {
  process.stderr.write('usage: ipmi-floor.js CONF CONSOLE\n');
  process.exit(1);
}
const cfg = loadConfig(confFile);
const ipmi = cfg.consoles.filter((c) => c.spec.type === 'ipmi');
// as conchd chooses: none below 500 consoles (then SOL runs on this thread)
const nThreads = cfg.server.ipmiThreads ?? autoIpmiThreads(ipmi.length);
const threads = nThreads > 0 ? new IpmiThreads(nThreads) : null;
const clients = new Set<net.Socket>();
let typedDev: Device | null = null;
let up = 0;

/** the count of consoles with SOL up, told when it changed, at most once a second */
let told = -1;
const tell = (): void => {
  if (up === told) return;
  told = up;
  process.stdout.write(`up ${up}/${ipmi.length}\n`);
};
setInterval(tell, 1000).unref();

const devices: Device[] = [];
let stopping = false;
for (const c of ipmi) {
  const dev = createDevice(c, cfg.server, threads, undefined, null);
  devices.push(dev);
  const isTyped = c.name === typed;
  if (isTyped) typedDev = dev;
  const h: DeviceHandler = {
    onData: isTyped ? (b) => clients.forEach((s) => s.write(b)) : () => {},
    onUp: () => {
      if (++up === ipmi.length) tell();
    },
    // as a console daemon does, after a pause (the floor's consoles stay up unless the BMC ends SOL)
    onDown: (why) => {
      up--;
      process.stderr.write(`ipmi-floor: ${c.name}: ${why}\n`);
      if (!stopping) setTimeout(() => !stopping && dev.connect(h), 2000);
    },
    onReady: () => {},
    onNotice: () => {},
  };
  dev.connect(h);
}

/** a client: lines until its CONNECT (each answered OK), then the typed console's bytes both ways */
function serve(sock: net.Socket): void {
  sock.setNoDelay(true);
  sock.on('error', () => sock.destroy());
  sock.on('close', () => clients.delete(sock));
  let head = '';
  const onHead = (d: Buffer): void => {
    head += d.toString('latin1');
    if (head.length > 4096) return void sock.destroy();
    for (let nl = head.indexOf('\n'); nl >= 0; nl = head.indexOf('\n')) {
      const line = head.slice(0, nl);
      head = head.slice(nl + 1);
      if (!line.startsWith('CONNECT')) {
        sock.write('OK\n');
        continue;
      }
      sock.write(`OK CONSOLE='${typed}'\n`);
      sock.off('data', onHead);
      clients.add(sock);
      sock.on('data', (b: Buffer) => typedDev?.write(b));
      if (head) typedDev?.write(Buffer.from(head, 'latin1'));
      return;
    }
  };
  sock.on('data', onHead);
}

const server = net.createServer(serve);
server.listen(cfg.server.port, '127.0.0.1', () => process.stdout.write(`listening port ${(server.address() as net.AddressInfo).port}\n`));
// as conchd stops: every session closed (SOL deactivated) so that the next daemon on the same fleet
// finds SOL free, at most 20 s for all (a BMC that no longer answers does not hold the exit up)
const stop = (): void => {
  if (stopping) return;
  stopping = true;
  const closed = Promise.allSettled(devices.map((d) => d.close()));
  void Promise.race([closed, new Promise((r) => setTimeout(r, 20000))])
    .then(() => threads?.terminate())
    .finally(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
