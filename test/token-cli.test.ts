// `conchd token create|list|revoke`: the built command run as an operator
// would; and end to end, a revoked token refused by the running daemon at
// once.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Cleanup } from './helpers/wait.js';
import { CONCHD, startConchd } from './helpers/conchd.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

function token(conf: string, args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CONCHD, 'token', ...args, '-c', conf], { encoding: 'utf8', timeout: 30000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function setup(extra = ''): { dir: string; conf: string } {
  const dir = cleanup.dir('token-cli-');
  const conf = path.join(dir, 'conman.conf');
  fs.writeFileSync(conf, `server statedir="${path.join(dir, 'state')}"\n${extra}console name="n1" dev="test:"\n`);
  return { dir, conf };
}

test('create prints a token once and keeps only its hash (mode 600); list shows no hash; revoke deletes', () => {
  const { dir, conf } = setup();
  const file = path.join(dir, 'state', 'tokens');
  const made = token(conf, ['create', 'ci-bot', '-u', 'alice']);
  assert.equal(made.code, 0, made.stderr);
  assert.match(made.stdout, /^conch_[A-Za-z0-9_-]{43}\n$/);
  assert.match(made.stderr, /token "ci-bot" for alice stored in .*tokens; it is shown only this once/);
  const secret = made.stdout.trim();
  const text = fs.readFileSync(file, 'utf8');
  assert.ok(!text.includes(secret), 'the token itself is not stored');
  const sha = crypto.createHash('sha256').update(secret).digest('hex');
  assert.match(text, new RegExp(`^ci-bot:alice:${sha}:\\d{8}T\\d{6}Z\\n$`));
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);

  // a second one, and the same name again is refused
  assert.equal(token(conf, ['create', 'dash', '-u', 'bob']).code, 0);
  const again = token(conf, ['create', 'ci-bot', '-u', 'bob']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /a token named "ci-bot" exists already/);

  const listed = token(conf, ['list']);
  assert.equal(listed.code, 0, listed.stderr);
  const rows = listed.stdout.trimEnd().split('\n');
  assert.match(rows[0]!, /^NAME\s+USER\s+CREATED$/);
  assert.match(rows[1]!, /^ci-bot\s+alice\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  assert.match(rows[2]!, /^dash\s+bob\s+/);
  assert.ok(!listed.stdout.includes(sha), 'no hash listed');

  const gone = token(conf, ['revoke', 'ci-bot']);
  assert.equal(gone.code, 0, gone.stderr);
  assert.match(gone.stderr, /token "ci-bot" revoked/);
  assert.ok(!fs.readFileSync(file, 'utf8').includes('ci-bot'));
  assert.match(fs.readFileSync(file, 'utf8'), /^dash:bob:/);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const twice = token(conf, ['revoke', 'ci-bot']);
  assert.equal(twice.code, 1);
  assert.match(twice.stderr, /no token named "ci-bot"/);
  // no temporary files left beside it
  assert.deepEqual(fs.readdirSync(path.dirname(file)).sort(), ['tokens']);
});

test('server tokens= names the file (its directory is made); mistakes are said with the usage', () => {
  const { dir, conf } = setup();
  const file = path.join(dir, 'elsewhere', 'api-tokens');
  fs.appendFileSync(conf, `server tokens="${file}"\n`);
  assert.equal(token(conf, ['create', 'a', '-u', 'alice']).code, 0);
  assert.match(fs.readFileSync(file, 'utf8'), /^a:alice:[0-9a-f]{64}:/);
  assert.ok(!fs.existsSync(path.join(dir, 'state', 'tokens')));

  const cases: [string[], RegExp][] = [
    [['create', 'x'], /create needs -u USER/],
    [['create', 'a:b', '-u', 'alice'], /bad token name "a:b"/],
    [['create', 'x', '-u', 'al:ice'], /bad user name "al:ice"/],
    [['create', '-u', 'alice'], /create needs a token NAME/],
    [['list', 'extra'], /list takes no NAME/],
    [['revoke'], /revoke needs a token NAME/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [[], /no command given/],
    [['list', '-z'], /unknown option "-z"/],
  ];
  for (const [args, re] of cases) {
    const r = token(conf, args);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
    assert.match(r.stderr, /Usage: conchd token create NAME -u USER/, args.join(' '));
  }
  const help = token(conf, ['-h']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /conchd token revoke NAME/);
  // a tokens file the daemon could not read either is said so, not rewritten
  fs.writeFileSync(file, 'garbage line\n', { mode: 0o600 });
  const bad = token(conf, ['create', 'b', '-u', 'alice']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /cannot read the tokens file .*:1: expected name:user:sha256-hex:created/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'garbage line\n');
});

test('a user missing from the users file is warned about, not refused', () => {
  const { dir, conf } = setup();
  const users = path.join(dir, 'users');
  fs.writeFileSync(users, '', { mode: 0o600 });
  fs.appendFileSync(conf, `server users="${users}"\n`);
  const r = token(conf, ['create', 'x', '-u', 'nobody']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /warning: "nobody" is not in the users file/);
});

test('the running daemon takes a new token at once and refuses it as soon as it is revoked', async () => {
  const d = await startConchd(cleanup, 'console name="n1" dev="test:" testopts="b:8,m:60000,p:0"\n', { extraHeader: 'server httpport=0\n' });
  const port = Number(/Listening on HTTP port (\d+)/.exec(await d.child.waitOutput(/Listening on HTTP port \d+/))![1]);
  const get = async (bearer: string): Promise<{ status: number; body: any }> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/consoles/n1`, { headers: { authorization: `Bearer ${bearer}` } });
    return { status: r.status, body: await r.json() };
  };
  const made = token(d.conf, ['create', 'script', '-u', 'alice']);
  assert.equal(made.code, 0, made.stderr);
  const secret = made.stdout.trim();
  const ok = await get(secret);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.name, 'n1');
  const who = await (await fetch(`http://127.0.0.1:${port}/api/v1/session`, { headers: { authorization: `Bearer ${secret}` } })).json();
  assert.deepEqual({ user: who.user, auth: who.auth }, { user: 'alice', auth: 'token' });

  assert.equal(token(d.conf, ['revoke', 'script']).code, 0);
  // no waiting: the very next request is refused
  const refused = await get(secret);
  assert.equal(refused.status, 401);
  assert.deepEqual(refused.body, { error: 'invalid or revoked token', status: 401 });
  // a token that never existed is refused the same way
  assert.equal((await get('conch_' + 'x'.repeat(43))).status, 401);
});
