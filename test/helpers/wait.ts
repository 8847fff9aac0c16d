// Shared test utilities. The process harness (free ports, waiting on
// conditions, temporary directories, child processes that are always cleaned
// up) is bench/harness.ts, which the benchmarks use too; what only the tests
// need is below.

import * as fs from 'node:fs';
import { waitFor } from '../../bench/harness.js';

export { Child, Cleanup, FatalWait, freePort, freeTcpRange, tmpDir, waitFor, waitForPort } from '../../bench/harness.js';

/** Wait until a file exists and contains `needle` (string or RegExp). Returns the content. */
export async function waitForFile(file: string, needle: string | RegExp, timeoutMs = 20000): Promise<string> {
  return waitFor(
    () => {
      if (!fs.existsSync(file)) return '';
      const s = fs.readFileSync(file, 'latin1');
      return (typeof needle === 'string' ? s.includes(needle) : needle.test(s)) ? s : '';
    },
    `${file} to contain ${String(needle)}`,
    timeoutMs,
  );
}

/** Whether process `pid` exists (a zombie counts: use /proc to tell). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
