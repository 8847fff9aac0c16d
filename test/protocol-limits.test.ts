// The client limits' arithmetic: the soft descriptor limit from
// /proc/self/limits, the cap it leaves beside the daemon's reserve (never
// below the floor), address normalisation, and the rate-limited refusal log.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientCap, clientHost, MIN_CLIENT_CAP, RefusalLog, softFdLimit } from '../src/protocol/client-limits.js';
import type { DaemonLog } from '../src/logging/daemon-log.js';
import { waitFor } from './helpers/wait.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            1024                 4096                 files
`;

test('soft open-files limit, and the client cap it leaves', () => {
  assert.equal(softFdLimit(LIMITS), 1024);
  assert.equal(softFdLimit(LIMITS.replace('1024   ', 'unlimited')), Infinity);
  assert.equal(softFdLimit('garbage'), Infinity);
  assert.ok(softFdLimit() > 0);
  assert.equal(clientCap(2048, 1024, 300), 724);
  assert.equal(clientCap(50, 1024, 300), 50);
  assert.equal(clientCap(2048, 1024, 5000), MIN_CLIENT_CAP);
  assert.equal(clientCap(2048, Infinity, 5000), 2048);
});

test('IPv4-mapped addresses count as their IPv4 address', () => {
  assert.equal(clientHost('::ffff:10.1.2.3'), '10.1.2.3');
  assert.equal(clientHost('::1'), '::1');
  assert.equal(clientHost(undefined), 'unknown');
});

test('refusals: the first logged at once, the rest as one line per interval with counts', async () => {
  const lines: string[] = [];
  const dlog = { warn: (m: string) => lines.push(m) } as unknown as DaemonLog;
  const r = new RefusalLog(dlog, 200);
  r.refused('10.0.0.1', 'too many clients');
  assert.equal(lines.length, 1);
  for (let i = 0; i < 30; i++) r.refused(i % 3 ? '10.0.0.1' : '10.0.0.2', 'too many clients');
  assert.equal(lines.length, 1);
  await waitFor(() => lines.length === 2, 'the interval line', 5000, 20);
  assert.deepEqual(lines, [
    'Refused 1 client connection (too many clients) from 10.0.0.1 (1)',
    'Refused 30 client connections (too many clients) from 10.0.0.1 (20), 10.0.0.2 (10)',
  ]);
  r.flush();
  assert.equal(lines.length, 2);
});
