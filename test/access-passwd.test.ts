// `conchd passwd`: the built command run as an operator would, in a temp dir.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import * as pty from 'node-pty';
import { UsersFile } from '../src/access/users.js';
import { CONCHD } from './helpers/conchd.js';
import { keepPtyTail } from './helpers/pty-tail.js';
import { tmpDir } from './helpers/wait.js';

interface Setup {
  dir: string;
  conf: string;
  users: string;
}

function setup(withUsers = true): Setup {
  const dir = tmpDir();
  const users = path.join(dir, 'conch.users');
  const conf = path.join(dir, 'conman.conf');
  fs.writeFileSync(conf, `server loopback=on\n${withUsers ? `server users="${users}"\n` : ''}console name="n1" dev="test:"\n`);
  return { dir, conf, users };
}

function passwd(s: Setup, args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CONCHD, 'passwd', '-c', s.conf, ...args], { encoding: 'utf8', timeout: 30000, input, cwd: s.dir });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const load = (s: Setup): UsersFile => UsersFile.load(s.users, (m) => assert.fail(`unexpected warning: ${m}`));

test('adds a user from --password-file, creating a mode-600 file; the password verifies', async () => {
  const s = setup();
  try {
    const pwFile = path.join(s.dir, 'pw');
    fs.writeFileSync(pwFile, 's3cret pass\nsecond line ignored\n');
    const r = passwd(s, ['-g', 'oncall,ops', '--password-file', pwFile, 'alice']);
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, `added user "alice" in ${s.users} (groups: oncall,ops)\n`);
    assert.equal(r.code, 0);
    assert.equal(fs.statSync(s.users).mode & 0o777, 0o600);
    assert.match(fs.readFileSync(s.users, 'utf8'), /^alice:\$scrypt\$ln=15,r=8,p=1\$[^:]+:oncall,ops\n$/);
    const u = load(s);
    assert.deepEqual(u.groupsOf('alice'), ['oncall', 'ops']);
    assert.equal(await u.verify('alice', Buffer.from('s3cret pass')), true);
    assert.equal(await u.verify('alice', Buffer.from('s3cret pass\n')), false);
    assert.equal(await u.verify('alice', Buffer.from('wrong')), false);
    // no temp file left behind
    assert.deepEqual(fs.readdirSync(s.dir).sort(), ['conch.users', 'conman.conf', 'pw']);
  } finally {
    fs.rmSync(s.dir, { recursive: true });
  }
});

test('changes a password from a pipe, keeping groups, other users and comments as they were', async () => {
  const s = setup();
  try {
    const pwFile = path.join(s.dir, 'pw');
    fs.writeFileSync(pwFile, 'old-password');
    assert.equal(passwd(s, ['-g', 'ops', '--password-file', pwFile, 'alice']).code, 0);
    const bobLine = fs.readFileSync(s.users, 'utf8').replace('alice:', 'bob:').replace(':ops\n', ':\n');
    const before = `# conch users\n${fs.readFileSync(s.users, 'utf8')}\n  # keep me\n${bobLine}`;
    fs.writeFileSync(s.users, before, { mode: 0o644 });
    const r = passwd(s, ['alice'], 'new-password\r\nnot this\n');
    assert.equal(r.stderr, '');
    assert.equal(r.stdout, `changed the password of "alice" in ${s.users}\n`);
    const after = fs.readFileSync(s.users, 'utf8').split('\n');
    const old = before.split('\n');
    assert.equal(after.length, old.length);
    assert.deepEqual([after[0], ...after.slice(2)], [old[0], ...old.slice(2)], 'every other line unchanged');
    assert.notEqual(after[1], old[1]);
    assert.equal(fs.statSync(s.users).mode & 0o777, 0o600, 'the rewritten file is 600 again');
    const u = load(s);
    assert.deepEqual(u.groupsOf('alice'), ['ops']);
    assert.equal(await u.verify('alice', Buffer.from('new-password')), true);
    assert.equal(await u.verify('alice', Buffer.from('old-password')), false);
    assert.equal(await u.verify('bob', Buffer.from('old-password')), true);
  } finally {
    fs.rmSync(s.dir, { recursive: true });
  }
});

test('-d deletes the user; deleting an unknown user is an error', () => {
  const s = setup();
  try {
    const pwFile = path.join(s.dir, 'pw');
    fs.writeFileSync(pwFile, 'pw\n');
    assert.equal(passwd(s, ['--password-file', pwFile, 'alice']).code, 0);
    assert.equal(passwd(s, ['--password-file', pwFile, '-g', '', 'bob']).code, 0);
    const r = passwd(s, ['-d', 'alice']);
    assert.equal(r.stdout, `deleted user "alice" from ${s.users}\n`);
    assert.equal(r.code, 0);
    const u = load(s);
    assert.ok(!u.has('alice') && u.has('bob'));
    const again = passwd(s, ['-d', 'alice']);
    assert.equal(again.stderr, `conchd passwd: no user "alice" in ${s.users}\n`);
    assert.equal(again.code, 1);
  } finally {
    fs.rmSync(s.dir, { recursive: true });
  }
});

test('clear errors: no users file configured, empty password, bad names, bad options', () => {
  const s = setup(false);
  const t = setup();
  try {
    const r = passwd(s, ['alice'], 'pw\n');
    assert.equal(r.stderr, `conchd passwd: ${s.conf} has no "server users=FILE": set it to say where the users file is\n`);
    assert.equal(r.code, 1);
    const cases: [string[], string | undefined, string][] = [
      [['alice'], '\n', 'empty password refused'],
      [['alice'], '', 'empty password refused'],
      [['al:ice'], 'pw\n', 'bad user name "al:ice"; expected letters, digits, ".", "_", "@" and "-", 1 to 64 of them, not starting with "@"'],
      [['-g', 'ops,wh eel', 'alice'], 'pw\n', 'bad group name "wh eel"; expected letters, digits, ".", "_" and "-", 1 to 64 of them'],
      [['alice', 'bob'], 'pw\n', 'one USER at a time (got alice bob)'],
      [[], 'pw\n', 'no USER given'],
      [['--password', 'pw', 'alice'], undefined, 'unknown option "--password"'],
      [['--password-file', path.join(t.dir, 'none'), 'alice'], undefined, `cannot read the password file ${path.join(t.dir, 'none')}: ENOENT: no such file or directory, open '${path.join(t.dir, 'none')}'`],
      [['-d', '-g', 'ops', 'alice'], undefined, '-d takes no -g or --password-file'],
    ];
    for (const [args, input, msg] of cases) {
      const e = passwd(t, args, input);
      assert.equal(e.stderr, `conchd passwd: ${msg}\n`, args.join(' '));
      assert.equal(e.code, 1);
    }
    assert.ok(!fs.existsSync(t.users), 'nothing written');
    const bad = passwd({ ...t, conf: path.join(t.dir, 'missing.conf') }, ['alice'], 'pw\n');
    assert.equal(bad.stderr, `conchd passwd: ${path.join(t.dir, 'missing.conf')}: cannot read the configuration: no such file\n`);
    assert.equal(bad.code, 1);
    const help = passwd(t, ['-h']);
    assert.match(help.stdout, /^Usage: conchd passwd \[-c CONFIG\] \[-g GROUP,GROUP\] \[--password-file FILE\] \[-d\] USER\n/);
    assert.equal(help.code, 0);
  } finally {
    fs.rmSync(s.dir, { recursive: true });
    fs.rmSync(t.dir, { recursive: true });
  }
});

/** Run `conchd passwd` at a terminal, typing each answer when its prompt shows. */
function atTerminal(s: Setup, args: string[], answers: [RegExp, string][]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const term = pty.spawn(process.execPath, [CONCHD, 'passwd', '-c', s.conf, ...args], { name: 'xterm', cols: 120, rows: 24, cwd: s.dir });
    let out = '';
    let next = 0;
    const timer = setTimeout(() => {
      term.kill();
      reject(new Error(`no exit; output so far: ${JSON.stringify(out)}`));
    }, 20000);
    const onOut = (text: string): void => {
      out += text;
      const a = answers[next];
      if (a && a[0].test(out)) {
        next++;
        term.write(a[1]);
      }
    };
    term.onData(onOut);
    keepPtyTail(term, onOut);
    term.onExit(({ exitCode }) => {
      clearTimeout(timer);
      resolve({ code: exitCode, out });
    });
  });
}

test('at a terminal the password is asked twice and never echoed', async () => {
  const s = setup();
  try {
    // a typo erased with backspace, then the real password
    const r = await atTerminal(s, ['alice'], [
      [/New password for alice: $/, 'tty-secretX\x7f\r'],
      [/Again: $/, 'tty-secret\r'],
    ]);
    assert.equal(r.code, 0, r.out);
    assert.ok(!r.out.includes('tty-secret'), `echoed: ${JSON.stringify(r.out)}`);
    assert.match(r.out, /added user "alice"/);
    assert.equal(await load(s).verify('alice', Buffer.from('tty-secret')), true);
    const typo = await atTerminal(s, ['alice'], [
      [/New password for alice: $/, 'one\r'],
      [/Again: $/, 'two\r'],
    ]);
    assert.equal(typo.code, 1);
    assert.match(typo.out, /conchd passwd: the passwords do not match; nothing changed/);
    assert.equal(await load(s).verify('alice', Buffer.from('tty-secret')), true, 'unchanged');
    // both answers typed at once, before the second prompt
    const ahead = await atTerminal(s, ['alice'], [[/New password for alice: $/, 'typed-ahead\rtyped-ahead\r']]);
    assert.equal(ahead.code, 0, ahead.out);
    assert.ok(!ahead.out.includes('typed-ahead'));
    assert.equal(await load(s).verify('alice', Buffer.from('typed-ahead')), true);
  } finally {
    fs.rmSync(s.dir, { recursive: true });
  }
});
