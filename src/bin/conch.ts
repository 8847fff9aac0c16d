#!/usr/bin/env node
// conch: conman-compatible console client.
import { main } from '../client/main.js';

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`ERROR:     ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
