// An IPMI thread with a bug: it dies (exit code 3) at the first request
// after learning its consoles. For the main side's "thread stopped" handling.

import { parentPort } from 'node:worker_threads';

parentPort!.on('message', (m: { t: string }) => {
  if (m.t !== 'add') process.exit(3);
});
