// The extra clients of the "50 clients" configuration: N sessions joined to
// one console that only read (and discard) what they receive. Run as a
// separate process so that draining N copies of every echo does not delay the
// measuring client's own event loop. Prints `ready N` once all are attached.
//
//   node dist/bench/join-readers.js PORT CONSOLE N

import { WireClient } from './wire-client.js';

const [portArg, consoleName, countArg] = process.argv.slice(2);
const port = Number(portArg);
const count = Number(countArg);
if (!Number.isInteger(port) || !consoleName || !Number.isInteger(count) || count < 0) {
  process.stderr.write('usage: join-readers.js PORT CONSOLE N\n');
  process.exit(1);
}

const clients: WireClient[] = [];
let stopping = false;
try {
  // One at a time: conmand 0.2.7 listens with a backlog of 10.
  for (let i = 0; i < count; i++) {
    const { client } = await WireClient.attach(port, consoleName, 20000);
    client.sock.on('close', () => {
      if (!stopping) process.stderr.write(`join-readers: reader ${i + 1} was disconnected by the daemon\n`);
    });
    clients.push(client);
  }
  process.stdout.write(`ready ${clients.length}\n`);
} catch (e) {
  process.stderr.write(`join-readers: attaching reader ${clients.length + 1} of ${count}: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
}

const stop = () => {
  stopping = true;
  for (const c of clients) c.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
