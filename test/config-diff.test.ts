// The reload's difference (src/daemon/config-diff.ts): console identity is
// the name, `loc` never counts, GLOBAL changes reach exactly the consoles
// whose effective settings they change, credentials are named, never shown.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig } from '../src/config/parse.js';
import type { Config } from '../src/config/types.js';
import { diffConfig, serverChanges } from '../src/daemon/config-diff.js';
import { changedNotice, serverKeyLine } from '../src/daemon/reload-text.js';
import { Cleanup } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-diff-');
const parse = (text: string): Config => parseConfig(text, 'conman.conf', { cwd: dir, execpathCheck: false });
const names = (cs: { name: string }[]): string[] => cs.map((c) => c.name).sort();

test('added, removed, unchanged by name; moving or reordering lines changes nothing', () => {
  const a = parse('console name="a" dev="test:"\nconsole name="b" dev="test:"\nconsole name="c" dev="test:"\n');
  const b = parse('\n\n# moved\nconsole name="c" dev="test:"\n   console name="a"   dev="test:"\nconsole name="d" dev="test:"\n');
  const d = diffConfig(a, b);
  assert.deepEqual(names(d.added), ['d']);
  assert.deepEqual(names(d.removed), ['b']);
  assert.deepEqual(names(d.unchanged), ['a', 'c']);
  assert.equal(d.changed.length, 0);
  assert.equal(d.server.length, 0);
});

test('each console key is named when it changes', () => {
  const a = parse(
    [
      'console name="t" dev="127.0.0.1:7001"',
      'console name="u" dev="unix:/tmp/u.sock" log="u.log"',
      'console name="p" dev="/bin/cat"',
      'console name="s" dev="/dev/ttyS0" seropts="9600"',
      'console name="i" dev="ipmi:10.0.0.1" ipmiopts="U:admin,P:secret"',
      'console name="x" dev="test:" testopts="b:10"',
    ].join('\n'),
  );
  const b = parse(
    [
      'console name="t" dev="127.0.0.1:7002"',
      'console name="u" dev="unix:/tmp/u.sock" log="u2.log" logopts="timestamp"',
      'console name="p" dev="/bin/cat" ptymode=cooked',
      'console name="s" dev="/dev/ttyS0" seropts="115200"',
      'console name="i" dev="ipmi:10.0.0.1" ipmiopts="U:admin,P:other,C:17" solsteal=always',
      'console name="x" dev="test:" testopts="b:20"',
    ].join('\n'),
  );
  const keys = Object.fromEntries(diffConfig(a, b).changed.map((c) => [c.after.name, c.keys]));
  assert.deepEqual(keys, {
    t: ['dev'],
    u: ['log', 'logopts'],
    p: ['ptymode'],
    s: ['seropts'],
    i: ['ipmiopts', 'credentials', 'solsteal'],
    x: ['testopts'],
  });
  // a notice names keys, never a value
  const notice = changedNotice(diffConfig(a, b).changed.find((c) => c.after.name === 'i')!.keys);
  assert.ok(!notice.includes('other') && !notice.includes('secret'), notice);
});

test('GLOBAL changes reach only the consoles whose effective settings they change', () => {
  const a = parse('global log="%N.log"\nconsole name="a" dev="test:"\nconsole name="b" dev="test:" log="fixed.log"\nglobal log="late-%N.log"\nconsole name="c" dev="test:"\n');
  const b = parse('global log="%N.txt"\nconsole name="a" dev="test:"\nconsole name="b" dev="test:" log="fixed.log"\nglobal log="late-%N.log"\nconsole name="c" dev="test:"\n');
  const d = diffConfig(a, b);
  assert.deepEqual(d.changed.map((c) => [c.after.name, c.keys]), [['a', ['log']]]);
  assert.deepEqual(names(d.unchanged), ['b', 'c']);
  // server logdir reaches every console with a relative log, and no other
  const e = diffConfig(parse('console name="a" dev="test:" log="a.log"\nconsole name="z" dev="test:"\n'), parse('server logdir="/var/log/x"\nconsole name="a" dev="test:" log="a.log"\nconsole name="z" dev="test:"\n'));
  assert.deepEqual(e.changed.map((c) => c.after.name), ['a']);
  assert.deepEqual(e.server.map((s) => [s.key, s.apply]), [['logdir', 'consoles']]);
});

test('credentials from a pswdfile count as the console\'s own; server keepalive as a telnet console\'s', () => {
  const pf = path.join(dir, 'conman.pswd');
  const conf = (keepalive: string): string =>
    `server pswdfile="${pf}"\nserver keepalive=${keepalive}\nconsole name="i" dev="ipmi:10.0.0.1"\nconsole name="j" dev="ipmi:10.0.0.2" ipmiopts="U:u,P:inline"\nconsole name="t" dev="h:23"\n`;
  fs.writeFileSync(pf, '10\\.0\\.0\\.1 : admin : one\n', { mode: 0o600 });
  const a = parse(conf('on'));
  fs.writeFileSync(pf, '10\\.0\\.0\\.1 : admin : two\n', { mode: 0o600 });
  const b = parse(conf('off'));
  const d = diffConfig(a, b);
  assert.deepEqual(d.changed.map((c) => [c.after.name, c.keys]), [['i', ['credentials']], ['t', ['keepalive']]]);
  assert.deepEqual(names(d.unchanged), ['j']);
});

test('SERVER keys: how each is applied; a restart-only key is named with the value kept', () => {
  const a = parse('server port=7890\nserver timestamp=1h\nserver ipmithreads=2\nserver pidfile="/run/a.pid"\nserver coredump=on\n').server;
  const b = parse('server port=7891\nserver loopback=off\nserver timestamp=5m\nserver ipmithreads=4\nserver pidfile="/run/b.pid"\nserver coredump=off\nserver replaybuffer=64k\n').server;
  const ch = serverChanges(a, b);
  assert.deepEqual(Object.fromEntries(ch.map((c) => [c.key, c.apply])), {
    port: 'listener',
    loopback: 'listener',
    timestamp: 'live',
    replaybuffer: 'live',
    ipmithreads: 'restart',
    pidfile: 'restart',
    coredump: 'unused',
  });
  const line = serverKeyLine(ch.find((c) => c.key === 'ipmithreads')!, a, b);
  assert.match(line, /server ipmithreads changed \(2 → 4\) but takes a restart of conchd; 2 stays in force/);
});
