// SSH consoles in conman.conf: dev="ssh://[user@]host[:port]", sshopts on
// GLOBAL and CONSOLE lines, server sshknownhosts/sshhostkeys, passwords from
// the pswdfile (never from conman.conf, never shown), and what a reload
// compares.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { inspect } from 'node:util';
import { loadConfig, parseConfig } from '../src/config/parse.js';
import { OptError, parseSshOpts, defaultSshOpts } from '../src/config/opts.js';
import { ConfigError, type Config, type DevSpec } from '../src/config/types.js';
import { diffConfig, SERVER_KEYS } from '../src/daemon/config-diff.js';
import { createDevice } from '../src/devices/index.js';
import { Cleanup } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-ssh-conf-');
const parse = (text: string): Config => parseConfig(text, 'conman.conf', { cwd: dir, execpathCheck: false });
const ssh = (spec: DevSpec): Extract<DevSpec, { type: 'ssh' }> => {
  assert.equal(spec.type, 'ssh');
  return spec as Extract<DevSpec, { type: 'ssh' }>;
};

test('sshopts: every key, escapes, and the defaults', () => {
  const d = defaultSshOpts();
  assert.deepEqual({ ...d, password: d.password.length }, { user: '', key: null, password: 0, entry: 'none', term: 'vt100', command: null, leave: null, breakSeq: null, timeout: 30 });
  const o = parseSshOpts('key=id_ed25519, entry=ILO ,term=xterm-256color,user=admin,leave=\\e(,break=\\x1bB,timeout=5');
  assert.equal(o.key, 'id_ed25519');
  assert.equal(o.entry, 'ilo');
  assert.equal(o.term, 'xterm-256color');
  assert.equal(o.user, 'admin');
  assert.deepEqual(o.leave, Buffer.from('\x1b('));
  assert.deepEqual(o.breakSeq, Buffer.from('\x1bB'));
  assert.equal(o.timeout, 5);
  // a command with a comma in it, and the escapes
  const c = parseSshOpts('cmd=obmc-console-client -i host0\\, --x,leave=\\r~.\\\\\\n\\t');
  assert.equal(c.command, 'obmc-console-client -i host0, --x');
  assert.deepEqual(c.leave, Buffer.from('\r~.\\\n\t'));
  // a console's options start from the global ones
  const g = parseSshOpts('entry=xcc,timeout=9');
  const both = parseSshOpts('key=k', g);
  assert.equal(both.entry, 'xcc');
  assert.equal(both.timeout, 9);
  assert.equal(both.key, 'k');
  assert.equal(g.key, null, 'the base is not changed');
});

test('sshopts: mistakes are named; a password is refused with where it goes instead', () => {
  const bad = (s: string, re: RegExp): void => assert.throws(() => parseSshOpts(s), (e: unknown) => e instanceof OptError && re.test(e.message), s);
  bad('entry=supermicro', /entry must be one of none, ilo, idrac, ilom, xcc/);
  bad('password=hunter2', /unknown sshopts item "password".*pswdfile/);
  bad('keyfile', /unknown sshopts item "keyfile"/);
  bad('timeout=0', /timeout must be 1\.\.600/);
  bad('timeout=9999', /timeout must be 1\.\.600/);
  bad('term=vt100;rm', /not a terminal type/);
  bad('user=a@b', /must not contain/);
  bad('leave=\\q', /bad escape "\\q"/);
  bad('entry=ilo,cmd=vsp', /cmd= goes with entry=none/);
  assert.ok(!inspect(parseSshOpts('entry=ilo')).includes('hunter2'));
});

test('dev="ssh://…": user, host, port, IPv6; the user in dev wins over sshopts user=; a relative key is under the cwd', () => {
  const cfg = parse(
    [
      'global sshopts="user=root,key=keys/id"',
      'console name="a" dev="ssh://bmc-a"',
      'console name="b" dev="ssh://admin@bmc-b:2200"',
      'console name="c" dev="ssh://[::1]:2222"',
      'console name="d" dev="ssh://ops@[fe80::1]" sshopts="entry=idrac,key=/abs/key"',
      'console name="e" dev="SSH://10.0.0.5/"',
      '',
    ].join('\n'),
  );
  const [a, b, c, d, e] = cfg.consoles.map((x) => ssh(x.spec));
  assert.deepEqual([a!.host, a!.port, a!.opts.user, a!.opts.key], ['bmc-a', 22, 'root', path.join(dir, 'keys/id')]);
  assert.deepEqual([b!.host, b!.port, b!.opts.user], ['bmc-b', 2200, 'admin']);
  assert.deepEqual([c!.host, c!.port], ['::1', 2222]);
  assert.deepEqual([d!.host, d!.port, d!.opts.user, d!.opts.entry, d!.opts.key], ['fe80::1', 22, 'ops', 'idrac', '/abs/key']);
  assert.deepEqual([e!.host, e!.port], ['10.0.0.5', 22]);
  // no two consoles share an options object
  a!.opts.term = 'changed';
  assert.equal(b!.opts.term, 'vt100');
  // the device module for it
  const dev = createDevice(cfg.consoles[1]!, { ...cfg.server, stateDir: dir });
  assert.equal(dev.type, 'ssh');
  assert.equal(dev.label(), '<ssh://bmc-b:2200>');
  assert.equal(createDevice(cfg.consoles[2]!, { ...cfg.server, stateDir: dir }).label(), '<ssh://[::1]:2222>');
});

test('bad ssh:// devices and duplicate logins', () => {
  const bad = (line: string, re: RegExp): void =>
    assert.throws(() => parse(`${line}\n`), (e: unknown) => e instanceof ConfigError && re.test(e.message), line);
  bad('console name="a" dev="ssh://"', /ssh:\/\/ needs a host/);
  bad('console name="a" dev="ssh://root@"', /bad SSH host ""/);
  bad('console name="a" dev="ssh://@bmc"', /bad user name/);
  bad('console name="a" dev="ssh://bmc:0"', /SSH port must be 1\.\.65535/);
  bad('console name="a" dev="ssh://[zz]:22"', /is not an IPv6 address/);
  bad('console name="a" dev="ssh://bmc:22 extra"', /one word/);
  bad('console name="a" dev="ssh://u@bmc"\nconsole name="b" dev="ssh://u@BMC:22"', /duplicate SSH login "u@BMC" port 22 \(first used by console "a"/);
  // other users at one console server are other consoles
  assert.equal(parse('console name="a" dev="ssh://port1@cs"\nconsole name="b" dev="ssh://port2@cs"\n').consoles.length, 2);
});

test('server sshknownhosts and sshhostkeys', () => {
  const d = parse('console name="a" dev="ssh://bmc"\n').server;
  assert.equal(d.sshKnownHosts, null);
  assert.equal(d.sshHostKeys, 'accept-new');
  const s = parse('server sshknownhosts="kh/known_hosts" sshhostkeys=STRICT\n').server;
  assert.equal(s.sshKnownHosts, path.join(dir, 'kh/known_hosts'));
  assert.equal(s.sshHostKeys, 'strict');
  assert.throws(() => parse('server sshhostkeys=ask\n'), /sshhostkeys must be one of accept-new, strict, got "ask"/);
  assert.deepEqual(SERVER_KEYS.sshKnownHosts, { key: 'sshknownhosts', apply: 'consoles' });
  assert.deepEqual(SERVER_KEYS.sshHostKeys, { key: 'sshhostkeys', apply: 'consoles' });
});

test('pswdfile: SSH logins get their user and password (any length, UTF-8 or 0x hex), never shown; IPMI keeps its limits', () => {
  const pf = path.join(dir, 'conman.pswd');
  fs.writeFileSync(
    pf,
    [
      'bmc-a : admin : a-long-ssh-passphrase-over-20-bytes-päss',
      'bmc-b : ops : 0x6869',
      'bmc-c : root : wrong-user-record',
      'bmc-c : ilo : right',
      'ipmi-bmc : ADMIN : this-is-longer-than-twenty-bytes',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const conf = path.join(dir, 'pswd.conf');
  const body = [
    `server pswdfile="${pf}"`,
    'console name="a" dev="ssh://bmc-a"',
    'console name="b" dev="ssh://bmc-b:2200"',
    'console name="c" dev="ssh://ilo@bmc-c" sshopts="entry=ilo"',
    'console name="n" dev="ssh://nobody-matches"',
    '',
  ];
  fs.writeFileSync(conf, body.join('\n'), { mode: 0o600 });
  const cfg = loadConfig(conf, { execpathCheck: false });
  const [a, b, c, n] = cfg.consoles.map((x) => ssh(x.spec));
  assert.equal(a!.opts.user, 'admin');
  assert.equal(a!.opts.password.toString('utf8'), 'a-long-ssh-passphrase-over-20-bytes-päss');
  assert.deepEqual([b!.opts.user, b!.opts.password.toString()], ['ops', 'hi']);
  assert.deepEqual([c!.opts.user, c!.opts.password.toString()], ['ilo', 'right']);
  assert.deepEqual([n!.opts.user, n!.opts.password.length], ['', 0]);
  const shown = JSON.stringify(cfg) + inspect(cfg, { depth: 10 });
  for (const secret of ['a-long-ssh', 'right', 'hi"', '0x6869']) assert.ok(!shown.includes(secret), secret);
  // the long record is an error only where an IPMI console uses it
  fs.writeFileSync(conf, [`server pswdfile="${pf}"`, 'console name="i" dev="ipmi:ipmi-bmc"', ''].join('\n'), { mode: 0o600 });
  assert.throws(
    () => loadConfig(conf, { execpathCheck: false }),
    (e: unknown) => e instanceof ConfigError && /conman\.pswd:5:1: IPMI password exceeds 20 bytes/.test(e.message) && !e.message.includes('longer-than'),
  );
});

test('a reload: sshopts, credentials and the host key settings are what changed; the rest keeps its connection', () => {
  const pf = path.join(dir, 'reload.pswd');
  fs.writeFileSync(pf, 'bmc-b : admin : one\n', { mode: 0o600 });
  const base = `server pswdfile="${pf}"\nconsole name="a" dev="ssh://root@bmc-a" sshopts="entry=ilo"\nconsole name="b" dev="ssh://bmc-b"\nconsole name="t" dev="test:"\n`;
  const before = parse(base);
  const d1 = diffConfig(before, parse(base.replace('entry=ilo', 'entry=ilo,timeout=10')));
  assert.deepEqual(d1.changed.map((c) => [c.after.name, c.keys]), [['a', ['sshopts']]]);
  fs.writeFileSync(pf, 'bmc-b : admin : two\n', { mode: 0o600 });
  const d2 = diffConfig(before, parse(base));
  assert.deepEqual(d2.changed.map((c) => [c.after.name, c.keys]), [['b', ['credentials']]]);
  assert.ok(!JSON.stringify(d2.changed[0]!.keys).includes('two'));
  fs.writeFileSync(pf, 'bmc-b : admin : one\n', { mode: 0o600 });
  const d3 = diffConfig(before, parse(`server sshhostkeys=strict sshknownhosts=/k\n${base}`));
  assert.deepEqual(d3.changed.map((c) => [c.after.name, c.keys]), [
    ['a', ['sshknownhosts', 'sshhostkeys']],
    ['b', ['sshknownhosts', 'sshhostkeys']],
  ]);
  assert.deepEqual(d3.unchanged.map((c) => c.name), ['t']);
  const d4 = diffConfig(before, parse(base.replace('root@bmc-a', 'admin@bmc-a')));
  assert.deepEqual(d4.changed.map((c) => [c.after.name, c.keys]), [['a', ['dev', 'credentials']]]);
});
