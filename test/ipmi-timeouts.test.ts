// IPMI timeouts stretch with the round trip the transport measures, so a
// daemon under load does not give up on (and resend) exchanges that are
// slow but working; on an idle network they stay at their base.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpmiTransport } from '../src/ipmi/transport.js';

test('timeouts stay at their base while answers are fast', () => {
  const t = new IpmiTransport();
  assert.equal(t.timeout(1000), 1000);
  for (let i = 0; i < 50; i++) t.noteRoundTrip(3);
  assert.equal(t.timeout(1000), 1000);
  assert.equal(t.timeout(2000), 2000);
});

test('slow answers stretch timeouts to four round trips, at most eight times the base, and they shrink back', () => {
  const t = new IpmiTransport();
  for (let i = 0; i < 50; i++) t.noteRoundTrip(700);
  assert.ok(Math.abs(t.timeout(1000) - 2800) < 50, String(t.timeout(1000)));
  assert.ok(Math.abs(t.timeout(2000) - 2800) < 50, String(t.timeout(2000)));
  assert.equal(t.timeout(5000), 5000);
  for (let i = 0; i < 50; i++) t.noteRoundTrip(5000);
  assert.equal(t.timeout(1000), 8000);
  for (let i = 0; i < 80; i++) t.noteRoundTrip(2);
  assert.equal(t.timeout(1000), 1000);
});
