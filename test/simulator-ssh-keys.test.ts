// The simulator's SSH host key (src/simulator/ssh-keys.ts): made with
// node:crypto in OpenSSH's own format, read back by ssh2 every time (its own
// generator wrote an unreadable key about once in 250 and failed CI), and by
// ssh-keygen, the real peer, with the same public key and fingerprint.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import ssh2 from 'ssh2';
import { loadHostKey, newEd25519Key } from '../src/simulator/ssh-keys.js';
import { Cleanup } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-ssh-keys-');

test('2,000 new keys all parse, each with the public key it was made with', { timeout: 120000 }, () => {
  for (let i = 0; i < 2000; i++) {
    const k = newEd25519Key(`k${i}`);
    const parsed = ssh2.utils.parseKey(k.private);
    assert.ok(!(parsed instanceof Error), `key ${i}: ${parsed instanceof Error ? parsed.message : ''}`);
    const key = Array.isArray(parsed) ? parsed[0]! : parsed;
    assert.ok(key.isPrivateKey());
    assert.equal(key.comment, `k${i}`);
    assert.equal(`ssh-ed25519 ${key.getPublicSSH().toString('base64')} k${i}`, k.public);
    // and it signs what its public half verifies
    const sig = key.sign(Buffer.from('conch'));
    assert.ok(!(sig instanceof Error));
    assert.ok(key.verify(Buffer.from('conch'), sig as Buffer));
  }
});

/** ssh-keygen with nothing to read on stdin and no passphrase to ask for, bounded in time */
const sshKeygen = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
  const r = spawnSync('ssh-keygen', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20000 });
  return { status: r.status, stdout: r.stdout, stderr: `${r.stderr}${r.error ? ` (${r.error.message})` : ''}` };
};

test('ssh-keygen reads the host key file and agrees on its public key and fingerprint', { timeout: 120000 }, () => {
  for (let i = 0; i < 20; i++) {
    const file = path.join(dir, `host${i}`, 'ssh_host_ed25519_key');
    const hk = loadHostKey(file);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const y = sshKeygen(['-y', '-P', '', '-f', file]);
    assert.equal(y.status, 0, y.stderr);
    assert.equal(y.stdout.trim().split(' ').slice(0, 2).join(' '), hk.publicLine);
    const l = sshKeygen(['-l', '-E', 'sha256', '-f', file]);
    assert.equal(l.status, 0, l.stderr);
    assert.equal(l.stdout.split(' ')[1], hk.fingerprint);
    // a second load keeps the key
    assert.equal(loadHostKey(file).publicLine, hk.publicLine);
  }
});
