#!/usr/bin/env node
// conchd: the console manager daemon.
import { main } from '../daemon/main.js';

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`conchd: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
