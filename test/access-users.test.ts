// Password hashes and the users file: what verifies, what is refused, what
// an operator is warned about, and how a flood of logins is bounded.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { hashPassword, parseHash, verifyPassword, PasswordHashError } from '../src/access/password.js';
import { Limiter } from '../src/util/limiter.js';
import { UsersFile, UsersFileError } from '../src/access/users.js';
import { tmpDir } from './helpers/wait.js';

/** cheap parameters so that the tests run fast */
const FAST = { ln: 10, r: 8, p: 1 };
const pw = (s: string): Buffer => Buffer.from(s);

test('a hash is self-describing and verifies its password only', async () => {
  const h = await hashPassword(pw('correct horse'));
  assert.match(h, /^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/);
  assert.equal(parseHash(h).salt.length, 16);
  assert.equal(parseHash(h).key.length, 32);
  assert.equal(await verifyPassword(pw('correct horse'), h), true);
  assert.equal(await verifyPassword(pw('correct horsf'), h), false);
  assert.equal(await verifyPassword(pw(''), h), false);
  const fast = await hashPassword(pw('x'), FAST);
  assert.match(fast, /^\$scrypt\$ln=10,r=8,p=1\$/);
  assert.notEqual(await hashPassword(pw('x'), FAST), fast, 'a fresh salt every time');
  assert.equal(await verifyPassword(pw('x'), fast), true);
});

test('unknown schemes and parameters out of bounds are refused before any work', async () => {
  const good = await hashPassword(pw('x'), FAST);
  const [, , , salt, key] = good.split('$');
  const cases: [string, RegExp][] = [
    [`$argon2id$v=19$${salt}$${key}`, /^unknown hash scheme "argon2id"; only scrypt is supported$/],
    ['plaintext', /^not a password hash; expected \$scrypt\$ln=N,r=N,p=N\$SALT\$KEY/],
    [`$scrypt$ln=30,r=8,p=1$${salt}$${key}`, /^scrypt parameter ln=30 out of bounds \(10 to 20\)$/],
    [`$scrypt$ln=9,r=8,p=1$${salt}$${key}`, /^scrypt parameter ln=9 out of bounds \(10 to 20\)$/],
    [`$scrypt$ln=15,r=64,p=1$${salt}$${key}`, /^scrypt parameter r=64 out of bounds \(1 to 32\)$/],
    [`$scrypt$ln=15,r=8,p=17$${salt}$${key}`, /^scrypt parameter p=17 out of bounds \(1 to 16\)$/],
    [`$scrypt$ln=20,r=32,p=1$${salt}$${key}`, /^scrypt parameters ln=20,r=32 need 4096 MiB per login \(at most 256\)$/],
    [`$scrypt$n=1024,r=8,p=1$${salt}$${key}`, /^bad scrypt parameters; expected ln=N,r=N,p=N$/],
    [`$scrypt$ln=10,r=8,p=1$${salt}$not*base64`, /^bad salt or key: not base64$/],
    [`$scrypt$ln=10,r=8,p=1$AAAA$${key}`, /^bad salt: 3 bytes \(8 to 64\)$/],
  ];
  for (const [h, msg] of cases) {
    const t0 = performance.now();
    await assert.rejects(verifyPassword(pw('x'), h), (e: unknown) => e instanceof PasswordHashError && msg.test(e.message), h);
    assert.ok(performance.now() - t0 < 200, 'refused without running scrypt');
  }
  await assert.rejects(hashPassword(pw('x'), { ln: 21, r: 8, p: 1 }), { message: 'scrypt parameter ln=21 out of bounds (10 to 20)' });
});

/** A users file in a fresh directory. */
async function usersFile(lines: string[], mode = 0o600): Promise<{ dir: string; file: string }> {
  const dir = tmpDir();
  const file = path.join(dir, 'users');
  fs.writeFileSync(file, lines.join('\n'), { mode });
  fs.chmodSync(file, mode);
  return { dir, file };
}

test('users verify with their passwords and have their groups; unknown users fail', async () => {
  const alice = await hashPassword(pw('alice-pw'), FAST);
  const bob = await hashPassword(pw('bob-pw'), FAST);
  const { dir, file } = await usersFile(['# conch users', '', `alice:${alice}:oncall,ops`, `  bob:${bob}:  `, `carol:${bob}`, '']);
  try {
    const warnings: string[] = [];
    const u = UsersFile.load(file, (m) => warnings.push(m));
    assert.deepEqual(warnings, []);
    assert.equal(u.size, 3);
    assert.ok(u.has('alice') && u.has('bob') && u.has('carol') && !u.has('mallory'));
    assert.deepEqual(u.groupsOf('alice'), ['oncall', 'ops']);
    assert.deepEqual(u.groupsOf('bob'), []);
    assert.deepEqual(u.groupsOf('mallory'), []);
    u.groupsOf('alice').push('root');
    assert.deepEqual(u.groupsOf('alice'), ['oncall', 'ops'], 'callers get a copy');
    assert.equal(await u.verify('alice', pw('alice-pw')), true);
    assert.equal(await u.verify('alice', pw('bob-pw')), false);
    assert.equal(await u.verify('carol', pw('bob-pw')), true);
    assert.equal(await u.verify('mallory', pw('alice-pw')), false);
    assert.equal(await u.verify('Alice', pw('alice-pw')), false, 'names are case-sensitive');
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('an unknown user costs as much as a known one', async () => {
  const h = await hashPassword(pw('pw'), { ln: 13, r: 8, p: 1 });
  const { dir, file } = await usersFile([`alice:${h}:`]);
  try {
    const u = UsersFile.load(file, () => {});
    const once = async (name: string): Promise<number> => {
      const t0 = performance.now();
      assert.equal(await u.verify(name, pw('wrong')), false);
      return performance.now() - t0;
    };
    // alternate, and keep each one's fastest run: other load on the machine only adds time
    let known = Infinity;
    let unknown = Infinity;
    for (let i = 0; i < 5; i++) {
      known = Math.min(known, await once('alice'));
      unknown = Math.min(unknown, await once('nobody-here'));
    }
    // the same scrypt parameters run either way: within a generous factor
    assert.ok(unknown > known / 3 && unknown < known * 3, `known ${known.toFixed(1)} ms, unknown ${unknown.toFixed(1)} ms`);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('a users file others can read or write is warned about', async () => {
  const h = await hashPassword(pw('pw'), FAST);
  for (const mode of [0o640, 0o604, 0o620]) {
    const { dir, file } = await usersFile([`alice:${h}:`], mode);
    try {
      const warnings: string[] = [];
      UsersFile.load(file, (m) => warnings.push(m));
      assert.deepEqual(warnings, [`${file} holds password hashes and can be read or changed by other users (mode ${mode.toString(8)}); chmod 600 it`]);
    } finally {
      fs.rmSync(dir, { recursive: true });
    }
  }
});

test('every bad line is named as file:line:col; an unreadable file clearly', async () => {
  const h = await hashPassword(pw('pw'), FAST);
  const { dir, file } = await usersFile([
    `alice:${h}:ops`,
    'bob',
    `alice:${h}:`,
    `b@d name:${h}:`,
    'carol:$md5$abc:',
    `dave:${h}:ops,,wheel`,
    `erin:${h}:ops:more`,
    `frank:${h}:a b`,
  ]);
  try {
    assert.throws(
      () => UsersFile.load(file, () => {}),
      (e: unknown) => {
        assert.ok(e instanceof UsersFileError);
        assert.deepEqual(e.message.split('\n'), [
          `${file}:2:1: expected name:HASH:group,group (groups may be empty)`,
          `${file}:3:1: user "alice" is already defined on line 1`,
          `${file}:4:1: bad user name "b@d name"; expected letters, digits, ".", "_", "@" and "-", 1 to 64 of them, not starting with "@"`,
          `${file}:5:7: not a password hash; expected $scrypt$ln=N,r=N,p=N$SALT$KEY (made by conchd passwd)`,
          `${file}:6:${7 + h.length + 4}: bad group name ""; expected letters, digits, ".", "_" and "-", 1 to 64 of them`,
          `${file}:7:1: expected name:HASH:group,group (groups may be empty)`,
          `${file}:8:${8 + h.length}: bad group name "a b"; expected letters, digits, ".", "_" and "-", 1 to 64 of them`,
        ]);
        return true;
      },
    );
    const missing = path.join(dir, 'nope');
    assert.throws(() => UsersFile.load(missing, () => {}), { message: `${missing}: cannot read the users file: no such file` });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('at most 8 checks run at once, 256 wait in order, the rest fail at once', async () => {
  const lim = new Limiter(8, 256);
  const releases: (() => void)[] = [];
  const order: number[] = [];
  const results: Promise<boolean>[] = [];
  for (let i = 0; i < 300; i++) {
    results.push(
      lim.run(
        () =>
          new Promise<boolean>((resolve) => {
            order.push(i);
            releases.push(() => resolve(true));
          }),
        false,
      ),
    );
  }
  assert.equal(lim.active, 8);
  assert.equal(lim.waiting, 256);
  // the 36 past the queue are refused without waiting
  const settled = await Promise.all(results.slice(264).map((p) => Promise.race([p, new Promise((r) => setImmediate(() => r('pending')))])));
  assert.deepEqual(settled, Array(36).fill(false));
  while (releases.length > 0 || lim.active > 0) {
    releases.shift()?.();
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(order, Array.from({ length: 264 }, (_, i) => i), 'first come, first served');
  assert.deepEqual(await Promise.all(results.slice(0, 264)), Array(264).fill(true));
  assert.equal(lim.waiting, 0);
});

test('a flood of verifications through a UsersFile is bounded the same way', async () => {
  const h = await hashPassword(pw('pw'), FAST);
  const { dir, file } = await usersFile([`alice:${h}:`]);
  try {
    const lim = new Limiter(2, 3);
    const u = UsersFile.load(file, () => {}, { limiter: lim });
    const all = await Promise.all(Array.from({ length: 8 }, () => u.verify('alice', pw('pw'))));
    // 2 run, 3 wait, 3 are refused without a check
    assert.deepEqual(all, [true, true, true, true, true, false, false, false]);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
