// Dependencies that only some sites use are loaded at first use. Imported at
// start-up, ssh2, serialport and ws cost every conchd 13 MiB of memory
// together (an empty conchd: 80 MiB with them, 68 MiB without), whether it
// had an SSH or serial console or a web listener or not.

import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** `name` (a CommonJS package) the first time the returned function is called */
export function lazyRequire<T>(name: string): () => T {
  let m: T | undefined;
  return () => (m ??= require(name) as T);
}
