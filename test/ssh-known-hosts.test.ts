// OpenSSH known_hosts for SSH consoles (src/devices/ssh-known-hosts.ts):
// plain, `[host]:port`, wildcard and negated patterns, hashed names as
// `ssh-keygen -H` writes them, @revoked keys, fingerprints as ssh-keygen
// shows them, pinning (appending), and waiting for an operator's fix.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { blobType, fingerprint, knownHostsName, KnownHosts, parseKnownHosts } from '../src/devices/ssh-known-hosts.js';
import { Cleanup, waitFor } from './helpers/wait.js';
import { keyFingerprint, keygen } from './helpers/sshd.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-kh-');

/** a fresh key: its type, base64 and blob, and ssh-keygen's fingerprint of it */
function newKey(name: string): { type: string; b64: string; blob: Buffer; fp: string } {
  const f = path.join(dir, name);
  keygen(f);
  const [type, b64] = fs.readFileSync(`${f}.pub`, 'utf8').split(' ') as [string, string];
  return { type, b64, blob: Buffer.from(b64, 'base64'), fp: keyFingerprint(`${f}.pub`) };
}

const k1 = newKey('k1');
const k2 = newKey('k2');
const k3 = newKey('k3');

test('names, fingerprints, key types', () => {
  assert.equal(knownHostsName('BMC1.example', 22), 'bmc1.example');
  assert.equal(knownHostsName('bmc1', 2200), '[bmc1]:2200');
  assert.equal(knownHostsName('[::1]', 2222), '[::1]:2222');
  assert.equal(knownHostsName('::1', 22), '::1');
  assert.equal(fingerprint(k1.blob), k1.fp);
  assert.equal(blobType(k1.blob), 'ssh-ed25519');
  assert.equal(blobType(Buffer.from([0, 0])), '');
});

test('plain, bracketed, wildcard, negated, revoked; unreadable lines skipped', () => {
  const file = path.join(dir, 'plain');
  fs.writeFileSync(
    file,
    [
      '# comment',
      '',
      `bmc1,10.0.0.1 ${k1.type} ${k1.b64} root@bmc1`,
      `[bmc1]:2200 ${k2.type} ${k2.b64}`,
      `*.rack7,!bad.rack7 ${k3.type} ${k3.b64}`,
      `@revoked bmc9 ${k1.type} ${k1.b64}`,
      `@cert-authority * ${k2.type} ${k2.b64}`,
      `broken ${k1.type} not-base64!`,
      `mismatch ssh-rsa ${k1.b64}`,
      'short line',
      '',
    ].join('\n'),
  );
  assert.equal(parseKnownHosts(fs.readFileSync(file, 'utf8')).length, 4);
  const kh = new KnownHosts(file);
  kh.refresh();
  assert.equal(kh.error, null);
  assert.deepEqual(kh.verdict('bmc1', 22, k1.blob), { status: 'known' });
  assert.deepEqual(kh.verdict('10.0.0.1', 22, k1.blob), { status: 'known' });
  // port 2200 is another entry; port 22's key does not count there
  assert.deepEqual(kh.verdict('bmc1', 2200, k2.blob), { status: 'known' });
  const changed = kh.verdict('bmc1', 2200, k1.blob);
  assert.equal(changed.status, 'changed');
  assert.deepEqual(changed.status === 'changed' && changed.pinned.map((k) => [k.line, fingerprint(k.blob)]), [[4, k2.fp]]);
  assert.deepEqual(kh.verdict('bmc1', 2201, k2.blob), { status: 'new' });
  assert.deepEqual(kh.verdict('n1.RACK7', 22, k3.blob), { status: 'known' });
  assert.deepEqual(kh.verdict('bad.rack7', 22, k3.blob), { status: 'new' });
  assert.deepEqual(kh.verdict('bmc9', 22, k1.blob), { status: 'revoked', line: 6 });
  // the algorithms to ask a server with pinned keys for
  assert.deepEqual(kh.algorithmsFor('bmc1', 22), ['ssh-ed25519']);
  assert.equal(kh.algorithmsFor('unknown', 22), null);
});

test('hashed names as ssh-keygen -H writes them', () => {
  const file = path.join(dir, 'hashed');
  fs.writeFileSync(file, `bmc1 ${k1.type} ${k1.b64}\n[10.1.1.1]:2200 ${k2.type} ${k2.b64}\n`);
  const r = spawnSync('ssh-keygen', ['-H', '-f', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(!text.includes('bmc1') && text.startsWith('|1|'), text);
  const kh = new KnownHosts(file);
  kh.refresh();
  assert.deepEqual(kh.verdict('bmc1', 22, k1.blob), { status: 'known' });
  assert.deepEqual(kh.verdict('BMC1', 22, k1.blob), { status: 'known' });
  assert.deepEqual(kh.verdict('10.1.1.1', 2200, k2.blob), { status: 'known' });
  assert.equal(kh.verdict('10.1.1.1', 2200, k3.blob).status, 'changed');
  assert.deepEqual(kh.verdict('bmc2', 22, k1.blob), { status: 'new' });
});

test('pinning appends a line OpenSSH reads; line numbers stay right; the file is re-read when it changes', () => {
  const file = path.join(dir, 'sub', 'known_hosts');
  const kh = new KnownHosts(file);
  kh.refresh();
  assert.equal(kh.error, null, 'a missing file is an empty one');
  kh.append('bmc1', 2200, k1.blob);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  // another program adds a line without a final newline
  fs.appendFileSync(file, `bmc2 ${k2.type} ${k2.b64}`);
  kh.refresh();
  kh.append('::1', 2222, k3.blob);
  const text = fs.readFileSync(file, 'utf8');
  assert.equal(text, `[bmc1]:2200 ${k1.type} ${k1.b64}\nbmc2 ${k2.type} ${k2.b64}\n[::1]:2222 ${k3.type} ${k3.b64}\n`);
  const v = kh.verdict('::1', 2222, k1.blob);
  assert.deepEqual(v.status === 'changed' && v.pinned.map((k) => k.line), [3]);
  // ssh-keygen finds what conch wrote
  const r = spawnSync('ssh-keygen', ['-F', '[::1]:2222', '-f', file], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.ok(r.stdout.includes(k3.b64));
  // an operator's edit is seen at the next look-up
  fs.writeFileSync(file, `[bmc1]:2200 ${k2.type} ${k2.b64}\n`);
  kh.refresh();
  assert.deepEqual(kh.verdict('bmc1', 2200, k2.blob), { status: 'known' });
  assert.deepEqual(kh.verdict('::1', 2222, k1.blob), { status: 'new' });
});

test('a console waiting on a refused key hears of the file changing', async () => {
  const file = path.join(dir, 'watched');
  const kh = new KnownHosts(file);
  let told = 0;
  const cancel = kh.onChange(() => told++);
  let other = 0;
  const cancelled = kh.onChange(() => other++);
  cancelled();
  fs.writeFileSync(file, `bmc1 ${k1.type} ${k1.b64}\n`);
  await waitFor(() => told === 1, 'the change told', 10000);
  assert.equal(other, 0);
  cancel();
});
