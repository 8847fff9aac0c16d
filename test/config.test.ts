// conman.conf parsing: lexer rules, SERVER/GLOBAL/CONSOLE directives, dev=
// detection and uniqueness. Every error is checked with its exact
// file:line:column, because that is what an operator sees.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfig, loadConfig } from '../src/config/parse.js';
import { ConfigError, type Config, type DevSpec } from '../src/config/types.js';
import { Cleanup } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-config-');

/** An executable script in the temp dir. */
function exe(name: string, mode = 0o755): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, '#!/bin/sh\nexec cat\n', { mode });
  fs.chmodSync(p, mode);
  return p;
}
const echoSh = exe('echo.sh');
exe('noexec.sh', 0o644);
fs.mkdirSync(path.join(dir, 'bin'));
fs.writeFileSync(path.join(dir, 'bin', 'helper'), '#!/bin/sh\n', { mode: 0o755 });

const parse = (text: string): Config => parseConfig(text, 'conman.conf', { cwd: dir });

/** Asserts that parsing fails with exactly `msg` (file:line:col: detail), or matching a RegExp. */
function bad(text: string, msg: string | RegExp): void {
  assert.throws(
    () => parse(text),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError, `expected ConfigError, got ${String(e)}`);
      if (typeof msg === 'string') assert.equal(e.message, msg);
      else assert.match(e.message, msg);
      return true;
    },
  );
}

const spec = (text: string, i = 0): DevSpec => parse(text).consoles[i].spec;

describe('lexer', () => {
  test('comments, blank lines, CRLF and case-insensitive keywords', () => {
    const c = parse('# a comment\r\n\r\nSERVER PORT=1234 # trailing\r\nConsole NAME="a#b" Dev="127.0.0.1:23"\r\n');
    assert.equal(c.server.port, 1234);
    assert.equal(c.consoles[0].name, 'a#b');
  });

  test('single and double quotes, unquoted words', () => {
    const c = parse(`console name='it"s' dev="unix:/tmp/x.sock"\nconsole name=plain dev='127.0.0.1:7'`);
    assert.equal(c.consoles[0].name, 'it"s');
    assert.equal(c.consoles[1].name, 'plain');
  });

  test('backslash-newline continues a directive; errors on the continued line name that line', () => {
    const c = parse('console name="a" \\\n   dev="127.0.0.1:23" \\\r\n   logopts="sanitize"\n');
    assert.equal(c.consoles[0].logOpts.sanitize, true);
    bad('console name="a" \\\n   dev="127.0.0.1:23" \\\n   logopts="bogus"\n', /^conman\.conf:3:13: unknown logopts word "bogus"/);
  });

  test('several key=value pairs on one line', () => {
    const c = parse('server port=1 keepalive=off loopback=off coredump=on');
    assert.deepEqual([c.server.port, c.server.keepalive, c.server.loopback, c.server.coredump], [1, false, false, true]);
  });

  test('unterminated quotes', () => {
    bad('server logdir="/var/log\n', 'conman.conf:1:15: unterminated double quote (strings cannot span lines)');
    bad("\n  console name='n1 dev=\"x\"", 'conman.conf:2:16: unterminated single quote (strings cannot span lines)');
  });

  test('missing "=" and missing value', () => {
    bad('server port 7890', 'conman.conf:1:13: expected "=" after "port", got "7890"');
    bad('server port', 'conman.conf:1:12: expected "=" after "port", got end of file');
    bad('server port=\n', 'conman.conf:1:13: expected a value after "port=", got end of line');
    bad('console name=="x"', 'conman.conf:1:14: expected a value after "name=", got "="');
  });

  test('unknown directives and stray tokens', () => {
    bad('consol name="x" dev="y"', 'conman.conf:1:1: unknown directive "consol"; expected CONSOLE, GLOBAL or SERVER');
    bad('\n\n  "server" port=1', 'conman.conf:3:3: expected a directive (CONSOLE, GLOBAL or SERVER), got string "server"');
    bad('server', 'conman.conf:1:1: SERVER needs at least one key=value pair on the same line');
    bad(
      'server\nport=1',
      'conman.conf:1:1: SERVER needs at least one key=value pair on the same line\n' +
        'conman.conf:2:1: unknown directive "port"; expected CONSOLE, GLOBAL or SERVER',
    );
    bad('server "port"=1', 'conman.conf:1:8: expected a SERVER key, got string "port"');
  });

  test('unknown keys are errors', () => {
    bad('server prot=1', /^conman\.conf:1:8: unknown SERVER key "prot"; expected one of coredump, /);
    bad('global dev="x"', /^conman\.conf:1:8: unknown GLOBAL key "dev"; expected one of log, logopts/);
    bad('console name=a dev="x:1" color=red', /^conman\.conf:1:26: unknown CONSOLE key "color"/);
  });
});

describe('SERVER', () => {
  test('defaults', () => {
    const s = parse('').server;
    assert.deepEqual(s, {
      coredump: false,
      coredumpdir: null,
      execpath: [],
      keepalive: true,
      logdir: null,
      logfile: null,
      loopback: true,
      nofile: null,
      pidfile: null,
      port: 7890,
      resetcmd: null,
      syslog: null,
      tcpwrappers: false,
      timestamp: 0,
      replayBytes: 16384,
      clientBufferBytes: 262144,
      handshakeTimeout: 30,
      pswdFile: null,
      ipmiThreads: null,
      maxClients: 2048,
      maxClientsPerHost: 256,
      logSymlinks: false,
      stateDir: null,
      tlsPort: 7891,
      tlsCert: null,
      tlsKey: null,
      tlsClientCa: null,
      usersFile: null,
      accessFile: null,
      plainAccess: 'rw',
      auditLog: null,
      httpPort: null,
      tokensFile: null,
      sshKnownHosts: null,
      sshHostKeys: 'accept-new',
      alertsFile: null,
      alertDefaults: true,
      alertLog: true,
      alertNotice: true,
      alertWebhook: null,
      alertExec: null,
      clusterEtcd: null,
      clusterPrefix: '/conch/',
      node: null,
      nodeAddr: null,
      clusterTtl: 10,
      clusterCa: null,
      clusterCert: null,
      clusterKey: null,
    });
  });

  test('cluster keys', () => {
    const s = parse(
      'server cluster="etcd=http://127.0.0.1:2379,https://etcd2.example:2379/" clusterprefix="/conch/site1" node=cons-1 nodeaddr="[::1]:7890" clusterttl=15\nserver clusterca="ca.pem" clustercert="c.pem" clusterkey="k.pem"\n',
    ).server;
    assert.deepEqual(s.clusterEtcd, ['http://127.0.0.1:2379', 'https://etcd2.example:2379']);
    assert.equal(s.clusterPrefix, '/conch/site1/');
    assert.equal(s.node, 'cons-1');
    assert.equal(s.nodeAddr, '[::1]:7890');
    assert.equal(s.clusterTtl, 15);
    assert.ok(s.clusterCa!.endsWith('/ca.pem') && s.clusterCert!.endsWith('/c.pem') && s.clusterKey!.endsWith('/k.pem'));
    assert.throws(() => parse('server cluster="http://127.0.0.1:2379"\n'), /1:\d+: cluster: expected "etcd=http:\/\/host:2379/);
    assert.throws(() => parse('server cluster="etcd=ftp://x:1"\n'), /1:\d+: cluster: "ftp:\/\/x:1": expected http:\/\/host:port/);
    assert.throws(() => parse('server cluster="etcd=http://u:p@x:1"\n'), /no path, no credentials/);
    assert.throws(() => parse('server node="a b"\n'), /1:\d+: node: expected a name/);
    assert.throws(() => parse('server nodeaddr="host"\n'), /1:\d+: nodeaddr: expected host:port/);
    assert.throws(() => parse('server clusterttl=2\n'), /clusterttl/);
    assert.throws(() => parse('server clusterprefix="conch"\n'), /clusterprefix: expected a key prefix starting with "\/"/);
  });

  test('access and web keys', () => {
    const s = parse(
      `server tlsport=0 tlscert="c.pem" tlskey="k.pem" tlsclientca="ca.pem" users="u" access="a" plainaccess=RO auditlog="audit.log" httpport=8080 tokens="t"\n`,
    ).server;
    assert.equal(s.tlsPort, 0);
    assert.ok(s.tlsCert!.endsWith('/c.pem') && s.tlsKey!.endsWith('/k.pem') && s.tlsClientCa!.endsWith('/ca.pem'));
    assert.ok(s.usersFile!.endsWith('/u') && s.accessFile!.endsWith('/a') && s.auditLog!.endsWith('/audit.log') && s.tokensFile!.endsWith('/t'));
    assert.equal(s.plainAccess, 'ro');
    assert.equal(s.httpPort, 8080);
    assert.throws(() => parse('server plainaccess=maybe\n'), /1:\d+: plainaccess must be one of rw, ro, none, got "maybe"/);
    assert.throws(() => parse('server tlsport=70000\n'), /tlsport/);
  });

  test('every key with a good value', () => {
    const s = parse(
      [
        `server coredump=on coredumpdir="${dir}/" execpath="/x::${dir}/bin"`,
        'server keepalive=off logdir="logs" logfile="conmand.log,warn"',
        'server loopback=off nofile=-1 pidfile="run/conmand.pid" port=0',
        'server resetcmd="powerman -r %N" syslog="LOCAL3" tcpwrappers=off timestamp=2h',
        'server replaybuffer=64k clientbuffer=1m handshaketimeout=5 ipmithreads=3',
        'server maxclients=100 maxclientsperhost=10 logsymlinks=on statedir="state"',
      ].join('\n'),
    ).server;
    assert.equal(s.coredump, true);
    assert.equal(s.coredumpdir, dir);
    assert.deepEqual(s.execpath, ['/x', `${dir}/bin`]);
    assert.equal(s.keepalive, false);
    assert.equal(s.logdir, path.join(dir, 'logs'));
    assert.deepEqual(s.logfile, { path: path.join(dir, 'logs', 'conmand.log'), priority: 'warning' });
    assert.equal(s.loopback, false);
    assert.equal(s.nofile, -1);
    assert.equal(s.pidfile, path.join(dir, 'run', 'conmand.pid'));
    assert.equal(s.port, 0);
    assert.equal(s.resetcmd, 'powerman -r %N');
    assert.equal(s.syslog, 'local3');
    assert.equal(s.tcpwrappers, false);
    assert.equal(s.timestamp, 7200);
    assert.equal(s.replayBytes, 65536);
    assert.equal(s.clientBufferBytes, 1048576);
    assert.equal(s.handshakeTimeout, 5);
    assert.equal(s.ipmiThreads, 3);
    assert.equal(s.maxClients, 100);
    assert.equal(s.maxClientsPerHost, 10);
    assert.equal(s.logSymlinks, true);
    assert.equal(s.stateDir, path.join(dir, 'state'));
    assert.throws(() => parse('server maxclients=0'), /maxclients must be 1\.\.1000000/);
    assert.equal(parse('server ipmithreads=auto').server.ipmiThreads, null);
    assert.equal(parse('server ipmithreads=0').server.ipmiThreads, 0);
  });

  test('logfile priority defaults to info; logdir applies only to later relative names', () => {
    assert.deepEqual(parse('server logfile="/var/log/conmand.log"').server.logfile, {
      path: '/var/log/conmand.log',
      priority: 'info',
    });
    const s = parse('server logfile="early.log"\nserver logdir="/var/log/conman"').server;
    assert.equal(s.logfile?.path, path.join(dir, 'early.log'));
  });

  test('timestamp forms', () => {
    const ts = (v: string): number => parse(`server timestamp=${v}`).server.timestamp;
    assert.equal(ts('5'), 300);
    assert.equal(ts('5m'), 300);
    assert.equal(ts('2H'), 7200);
    assert.equal(ts('1d'), 86400);
    assert.equal(ts('1 h'), 3600); // conman's lexer reads the unit as a separate word
    assert.equal(ts('"3h"'), 10800);
    assert.equal(ts('0'), 0);
  });

  test('a bare timestamp=0 does not swallow the next line (conman 0.2.7 drops it)', () => {
    const c = parse('server timestamp=0\nconsole name="after" dev="127.0.0.1:7001"\n');
    assert.equal(c.server.timestamp, 0);
    assert.deepEqual(
      c.consoles.map((x) => x.name),
      ['after'],
    );
    const c2 = parse('server timestamp=5\nserver port=4000\n');
    assert.deepEqual([c2.server.timestamp, c2.server.port], [300, 4000]);
  });

  test('bad values name the value', () => {
    bad('server coredump=yes', 'conman.conf:1:17: coredump must be on or off, got "yes"');
    bad('server keepalive=1', 'conman.conf:1:18: keepalive must be on or off, got "1"');
    bad('server loopback="maybe"', 'conman.conf:1:17: loopback must be on or off, got "maybe"');
    bad('server coredumpdir="/nonexistent/dir"', 'conman.conf:1:20: coredumpdir "/nonexistent/dir" does not exist');
    bad(`server coredumpdir="${echoSh}"`, `conman.conf:1:20: coredumpdir "${echoSh}" is not a directory`);
    bad('server logfile=""', 'conman.conf:1:16: logfile must not be empty');
    bad(
      'server logfile="x.log,loud"',
      'conman.conf:1:16: invalid logfile priority "loud"; expected one of emerg, alert, crit, err, warning, notice, info, debug',
    );
    bad('server logfile=",info"', 'conman.conf:1:16: logfile needs a file name before the comma');
    bad(
      'server nofile=many',
      'conman.conf:1:15: nofile must be -1..2147483647 (0 = keep the soft limit, -1 = raise it to the hard limit), got "many"',
    );
    bad('server port=99999', 'conman.conf:1:13: port must be 0..65535 (0 = any free port), got "99999"');
    bad('server port=-1', 'conman.conf:1:13: port must be 0..65535 (0 = any free port), got "-1"');
    bad('server port=http', 'conman.conf:1:13: port must be 0..65535 (0 = any free port), got "http"');
    bad('server pidfile=""', 'conman.conf:1:16: pidfile must not be empty');
    bad('server resetcmd=""', 'conman.conf:1:17: resetcmd must not be empty');
    bad('server syslog="local9"', /^conman\.conf:1:15: invalid syslog facility "local9"; expected one of auth, /);
    bad('server tcpwrappers=sometimes', 'conman.conf:1:20: tcpwrappers must be on or off, got "sometimes"');
    bad('server timestamp=5x', 'conman.conf:1:18: timestamp unit must be m, h or d, got "x"');
    bad('server timestamp=-5', 'conman.conf:1:18: timestamp must be an integer with an optional m, h or d unit, got "-5"');
    bad('server timestamp=h', 'conman.conf:1:18: timestamp must be an integer with an optional m, h or d unit, got "h"');
    bad(
      'server replaybuffer=1024',
      'conman.conf:1:21: replaybuffer must be a byte count from 4096 to 67108864 (k and m suffixes allowed), got "1024"',
    );
    bad('server clientbuffer=lots', /^conman\.conf:1:21: clientbuffer must be a byte count from 4096 /);
    bad('server handshaketimeout=0', 'conman.conf:1:25: handshaketimeout must be 1..3600 seconds, got "0"');
    bad('server ipmithreads=many', 'conman.conf:1:20: ipmithreads must be 0..64 or "auto", got "many"');
  });

  test('tcpwrappers=on is refused and points to conch access control', () => {
    bad(
      '\nserver tcpwrappers=on',
      'conman.conf:2:20: conch does not support TCP wrappers (tcpwrappers=on); bind to loopback ' +
        '(server loopback=on) or restrict access to the port with a firewall',
    );
  });
});

describe('GLOBAL and CONSOLE', () => {
  test('global log must contain %N or %D', () => {
    bad(
      'global log="/var/log/console.log"',
      'conman.conf:1:12: global log "/var/log/console.log" must contain %N or %D, or every console would write to the same file',
    );
    assert.equal(parse('global log="%D.log"').consoles.length, 0);
  });

  test('globals are defaults for the consoles after them only', () => {
    const c = parse(
      [
        'console name="before" dev="127.0.0.1:1"',
        'global log="cons/%N.log" logopts="sanitize"',
        'server logdir="/var/log/conman"',
        'console name="after" dev="127.0.0.1:2"',
        'console name="own" dev="127.0.0.1:3" log="/abs/own.log" logopts="timestamp,nolock"',
        'console name="rel" dev="127.0.0.1:4" log="rel-%N"',
        'console name="off" dev="127.0.0.1:5" log=""',
      ].join('\n'),
    );
    const byName = Object.fromEntries(c.consoles.map((x) => [x.name, x]));
    assert.equal(byName.before.log, null);
    assert.deepEqual(byName.before.logOpts, { lock: true, sanitize: false, timestamp: false });
    assert.equal(byName.after.log, '/var/log/conman/cons/%N.log');
    assert.deepEqual(byName.after.logOpts, { lock: true, sanitize: true, timestamp: false });
    assert.equal(byName.own.log, '/abs/own.log');
    assert.deepEqual(byName.own.logOpts, { lock: false, sanitize: true, timestamp: true });
    assert.equal(byName.rel.log, '/var/log/conman/rel-%N');
    assert.equal(byName.off.log, null);
    assert.deepEqual(byName.after.loc, { file: 'conman.conf', line: 4, col: 9 });
  });

  test('global seropts/testopts/ipmiopts become console defaults', () => {
    const c = parse(
      [
        'global seropts="115200" testopts="b:10,m:50" ipmiopts="U:root,P:pw"',
        'global seropts="19200,7e"',
        'console name="s" dev="/dev/null"',
        'console name="s2" dev="/dev/ttyNOTYET0" seropts="38400,8n2"',
        'console name="t" dev="test:"',
        'console name="i" dev="ipmi:bmc1" ipmiopts="L:user"',
        'console name="j" dev="ipmi:bmc2"',
      ].join('\n'),
    );
    assert.deepEqual(c.consoles[0].spec, {
      type: 'serial',
      path: '/dev/null',
      opts: { bps: 19200, dataBits: 7, parity: 'even', stopBits: 1 },
    });
    assert.deepEqual(c.consoles[1].spec, {
      type: 'serial',
      path: '/dev/ttyNOTYET0',
      opts: { bps: 38400, dataBits: 8, parity: 'none', stopBits: 2 },
    });
    assert.deepEqual(c.consoles[2].spec, { type: 'test', opts: { bytes: 10, maxMs: 50, minMs: 50, prob: 100 } });
    const i = c.consoles[3].spec;
    const j = c.consoles[4].spec;
    assert.ok(i.type === 'ipmi' && j.type === 'ipmi');
    assert.equal(i.opts.user, 'root');
    assert.equal(i.opts.password.toString(), 'pw');
    assert.equal(i.opts.privilege, 'user');
    assert.equal(j.opts.privilege, 'admin');
    assert.notEqual(i.opts.password, j.opts.password, 'each console has its own copy');
  });

  test('missing or empty name and dev', () => {
    bad('console dev="127.0.0.1:1"', 'conman.conf:1:1: CONSOLE needs name="..."');
    bad('\nconsole name="n1"', 'conman.conf:2:1: CONSOLE "n1" needs dev="..."');
    bad('console name="" dev="127.0.0.1:1"', 'conman.conf:1:14: console name must not be empty');
    bad('console name="n1" dev=" "', 'conman.conf:1:23: dev must not be empty');
    bad(
      'console name="caf\u00e9" dev="127.0.0.1:1"',
      'conman.conf:1:14: console name must be printable 7-bit ASCII (the conman protocol cannot carry other bytes)',
    );
    bad(
      'console name="a" dev="127.0.0.1:1" name="b"',
      'conman.conf:1:36: "name" given twice in one CONSOLE directive (first at column 9)',
    );
  });

  test('bad per-console options point into the string', () => {
    bad('console name=a dev="/dev/null" seropts="9600,9n1"', 'conman.conf:1:46: seropts databits must be 5..8, got "9"');
    bad(
      'console name=a dev="test:" testopts="b:5,x:1"',
      'conman.conf:1:42: bad testopts item "x:1"; expected b:<bytes>, m:<max ms>, n:<min ms> or p:<percent>',
    );
    bad('global logopts="lock;shiny"', /^conman\.conf:1:22: unknown logopts word "shiny"/);
    bad('console name=a dev="ipmi:h" ipmiopts="U:a,W:turbo"', /^conman\.conf:1:45: unknown IPMI workaround "turbo"; known: authcap, /);
  });

  test('duplicates of each kind name both places', () => {
    bad(
      'console name="n1" dev="127.0.0.1:1"\n\nconsole name="n1" dev="127.0.0.1:2"',
      'conman.conf:3:9: duplicate console name "n1" (first defined at conman.conf:1:9)',
    );
    bad(
      'console name=a dev="/dev/null"\nconsole name=b dev="/dev/../dev/null"',
      'conman.conf:2:20: duplicate serial device "/dev/null" (first used by console "a" at conman.conf:1:9)',
    );
    bad(
      `console name=a dev="unix:${dir}/s"\nconsole name=b dev="unix:s"`,
      `conman.conf:2:20: duplicate unix socket "${dir}/s" (first used by console "a" at conman.conf:1:9)`,
    );
    bad(
      'console name=a dev="ipmi:BMC1"\nconsole name=b dev="ipmi:bmc1:623"',
      'conman.conf:2:20: duplicate IPMI host "bmc1" port 623 (first used by console "a" at conman.conf:1:9)',
    );
    // %D for telnet is host:port, so these two collide once expanded
    bad(
      'console name=a dev="127.0.0.1:1" log="/l/%D.log"\nconsole name=b dev="unix:/x/127.0.0.1:1" log="/l/%D.log"',
      'conman.conf:2:46: duplicate log file "/l/127.0.0.1:1.log" (first used by console "a" at conman.conf:1:9)',
    );
    bad(
      'global log="/l/%Y/x%D"\nconsole name=a dev="unix:/a/s"\nconsole name=b dev="unix:/b/s"',
      'conman.conf:3:9: duplicate log file "/l/2000/xs" (first used by console "a" at conman.conf:2:9)',
    );
    // the same telnet port twice is allowed, as in conman
    assert.equal(parse('console name=a dev="h:1" log=""\nconsole name=b dev="h:1" log=""').consoles.length, 2);
  });
});

describe('dev= detection', () => {
  test('unix sockets', () => {
    assert.deepEqual(spec('console name=a dev="unix:/run/a.sock"'), { type: 'unix', path: '/run/a.sock' });
    assert.deepEqual(spec('console name=a dev="UNIX:rel/%N.sock"'), { type: 'unix', path: `${dir}/rel/a.sock` });
    bad('console name=a dev="unix:"', 'conman.conf:1:21: unix: needs a socket path');
    bad(`console name=a dev="unix:/${'x'.repeat(120)}"`, /^conman\.conf:1:21: unix socket path "\/x+" is longer than 107 bytes$/);
    bad('console name=a dev="unix:/a b"', 'conman.conf:1:21: a unix socket device is one word; only program consoles take arguments');
  });

  test('ipmi hosts and ports', () => {
    const ip = (d: string): unknown => {
      const s = spec(`console name=a dev="${d}"`);
      return s.type === 'ipmi' ? [s.host, s.port] : s;
    };
    assert.deepEqual(ip('ipmi:bmc1'), ['bmc1', 623]);
    assert.deepEqual(ip('ipmi:10.0.0.5:6230'), ['10.0.0.5', 6230]);
    assert.deepEqual(ip('ipmi:[fe80::1]:1623'), ['fe80::1', 1623]);
    assert.deepEqual(ip('ipmi:[::1]'), ['::1', 623]);
    assert.deepEqual(ip('ipmi:fd00::5'), ['fd00::5', 623]);
    assert.deepEqual(ip('ipmi:%N-bmc'), ['a-bmc', 623]);
    bad('console name=a dev="ipmi:"', 'conman.conf:1:21: ipmi: needs a BMC host name or address');
    bad('console name=a dev="ipmi:h:70000"', 'conman.conf:1:28: IPMI port must be 1..65535, got "70000"');
    bad('console name=a dev="ipmi:[nothex]:1"', 'conman.conf:1:27: "nothex" is not an IPv6 address');
    bad('console name=a dev="ipmi:a:b:c"', /^conman\.conf:1:26: bad IPMI host "a:b:c"/);
  });

  test('test consoles', () => {
    assert.deepEqual(spec('console name=a dev="test:"'), {
      type: 'test',
      opts: { bytes: 1024, maxMs: 100, minMs: 100, prob: 100 },
    });
    bad('console name=a dev="test:fast"', 'conman.conf:1:21: test: takes nothing after the colon; set testopts= instead');
  });

  test('telnet host:port', () => {
    assert.deepEqual(spec('console name=a dev="ts1.example:7001"'), { type: 'telnet', host: 'ts1.example', port: 7001 });
    assert.deepEqual(spec("console name=a dev='[::1]:23'"), { type: 'telnet', host: '::1', port: 23 });
    bad('console name=a dev="ts1:0"', 'conman.conf:1:25: telnet port must be 1..65535, got "0"');
    bad('console name=a dev="ts1:99999"', 'conman.conf:1:25: telnet port must be 1..65535, got "99999"');
    bad('console name=a dev="ts1:23 x"', 'conman.conf:1:21: a telnet device is one word; only program consoles take arguments');
  });

  test('serial: existing character devices and not-yet-present /dev paths', () => {
    assert.deepEqual(spec('console name=a dev="/dev/null"'), {
      type: 'serial',
      path: '/dev/null',
      opts: { bps: 9600, dataBits: 8, parity: 'none', stopBits: 1 },
    });
    assert.equal(spec('console name=a dev="/dev/ttyUSB-conch-test"').type, 'serial');
  });

  test('ptymode (extension): raw by default, cooked per console or from GLOBAL, only for process consoles', () => {
    const c = parse(`global ptymode=cooked\nconsole name=a dev="${echoSh}"\nconsole name=b dev="${echoSh}" ptymode=raw\n`).consoles;
    assert.deepEqual(c.map((x) => x.ptyMode), ['cooked', 'raw']);
    assert.equal(parse(`console name=a dev="${echoSh}"`).consoles[0]!.ptyMode, 'raw');
    bad('console name=a dev="h:23" ptymode=cooked', 'conman.conf:1:27: ptymode applies to process consoles only (this one is telnet)');
    bad(`console name=a dev="${echoSh}" ptymode=fancy`, /ptymode must be one of raw, cooked, got "fancy"/);
  });

  test('process consoles: %N, quoting and execpath', () => {
    assert.deepEqual(spec(`console name="n1" dev="${echoSh} %N"`), { type: 'process', argv: [echoSh, 'n1'] });
    // '…' words keep %N as written; "…" words substitute it
    assert.deepEqual(spec(`console name=n1 dev="${echoSh} '%N' --id=%N-x"`), {
      type: 'process',
      argv: [echoSh, '%N', '--id=n1-x'],
    });
    assert.deepEqual(spec(`console name=n1 dev='${echoSh} "a b" "%N"'`), { type: 'process', argv: [echoSh, 'a b', 'n1'] });
    assert.deepEqual(spec('console name=n1 dev="./echo.sh"'), { type: 'process', argv: [echoSh] });
    assert.deepEqual(spec(`server execpath="/nonexistent:${dir}/bin"\nconsole name=n1 dev="helper -h %N"`), {
      type: 'process',
      argv: [`${dir}/bin/helper`, '-h', 'n1'],
    });
  });

  test('process consoles: missing or unusable programs', () => {
    bad('console name=n1 dev="/nonexistent/prog %N"', 'conman.conf:1:22: program "/nonexistent/prog" does not exist');
    bad('console name=n1 dev="./noexec.sh"', `conman.conf:1:22: program "${dir}/noexec.sh" is not executable`);
    bad('console name=n1 dev="bin"', `conman.conf:1:22: "bin" is not a unix:, ipmi:, test: or host:port device, nor a program found in server execpath (which is not set); give a path with a "/" or set server execpath`);
    bad(
      'server execpath="/usr/share/conman/exec"\nconsole name=n1 dev="bmc1:ssh"',
      'conman.conf:2:22: "bmc1:ssh" is not a unix:, ipmi:, test: or host:port device, nor a program found in server execpath "/usr/share/conman/exec"; give a path with a "/" or set server execpath',
    );
    bad(`console name=n1 dev="${echoSh} 'unterminated"`, /^conman\.conf:1:\d+: unterminated ' quote in dev$/);
    // execpathCheck=false: for tools that only need the console list
    const c = parseConfig('console name=n1 dev="ghost -x"', 'c.conf', { cwd: dir, execpathCheck: false });
    assert.deepEqual(c.consoles[0].spec, { type: 'process', argv: ['ghost', '-x'] });
  });
});

describe('loadConfig', () => {
  test('reads a file; Config.file is absolute', () => {
    const f = path.join(dir, 'load.conf');
    fs.writeFileSync(f, 'server port=7001\n');
    const c = loadConfig(f);
    assert.equal(c.file, f);
    assert.equal(c.server.port, 7001);
  });

  test('errors use the path as given', () => {
    const f = path.join(dir, 'bad.conf');
    fs.writeFileSync(f, '\n\nserver port=x\n');
    assert.throws(() => loadConfig(f), { message: `${f}:3:13: port must be 0..65535 (0 = any free port), got "x"` });
    assert.throws(() => loadConfig(path.join(dir, 'missing.conf')), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /missing\.conf: cannot read the configuration: no such file$/);
      return true;
    });
  });

  test('every error of a file is reported, each at its line:column, and good lines around them still parse', () => {
    const f = path.join(dir, 'many.conf');
    fs.writeFileSync(
      f,
      [
        'server port=x',
        'console name="a" dev="test:"',
        'console nmae="b" dev="test:"',
        'server loopback=maybe keepalive=on',
        'console name="c" dev="test:" ipmiopts="U:x,Q:1"',
        'console name="a" dev="test:"',
        'bogus',
      ].join('\n') + '\n',
    );
    assert.throws(() => loadConfig(f), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const lines = e.all.map((x) => x.message);
      assert.equal(lines.length, 6, lines.join('\n'));
      assert.deepEqual(
        lines.map((l) => l.slice(f.length + 1).split(':').slice(0, 2).join(':')),
        ['1:13', '3:9', '4:17', '5:44', '6:9', '7:1'],
      );
      assert.match(lines[3]!, /unknown ipmiopts key "Q:"/, 'the bad ipmiopts key is quoted');
      return true;
    });
  });

  test('Debian\'s shipped /etc/conman.conf (all examples commented out) parses to defaults', () => {
    const c = loadConfig('/etc/conman.conf');
    assert.equal(c.consoles.length, 0);
    assert.equal(c.server.port, 7890);
  });
});
