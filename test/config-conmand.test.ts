// A realistic conman.conf, shaped like the examples in Debian's
// /etc/conman.conf, must mean the same to conch as to the real conmand:
// the same consoles, and bad lines reported on the same line numbers.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../src/config/parse.js';
import { ConfigError, type Config } from '../src/config/types.js';
import { Cleanup, freePort } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** Runs conmand in the foreground on `conf` until it reports its console count; returns its output. */
async function conmandOutput(conf: string): Promise<string> {
  const child = cleanup.child('/usr/sbin/conmand', ['-F', '-v', '-c', conf]);
  const out = await child.waitOutput(/Monitoring \d+ consoles?|exiting|No consoles/i, 30000);
  await child.stop();
  return out;
}

function realisticConf(dir: string, port: number, telnetPort: number): string {
  return `##
# ConMan daemon configuration file (lab rack)
##
# - Whitespace is ignored; comments run from '#' to the end of the line.
##
server coredump=off
server coredumpdir="${dir}"
server execpath="${dir}/exec"
server keepalive=ON
server logdir="${dir}/log"
server logfile="conmand.log,notice"
server loopback=on
server pidfile="${dir}/conmand.pid"
server port=${port}
server resetcmd="echo reset %N >> ${dir}/resets"   # run by /bin/sh
server syslog="local0"
server tcpwrappers=off
server timestamp=1h

global log="console.%N"
global logopts="lock,sanitize,timestamp"
global seropts="115200,8n1"
global ipmiopts="U:admin,P:0x70617373,C:3,L:admin,W:solpayloadsize"

console name="serial0" dev="/dev/null" seropts="9600,8n1"
console name="ts-port1" dev="127.0.0.1:${telnetPort}"
console name="vm1" dev="unix:${dir}/vm1.sock" log=""
console name="bmc1" dev="ipmi:127.0.0.1" ipmiopts="U:root,W:authcap"
console name="exp1" dev="exit.sh %N 'literal %N'" \\
    logopts="nosanitize,notimestamp"
CONSOLE NAME="exp2" DEV="${dir}/exec/exit.sh" LOG="exp2/%Y-%m-%d.log"
`;
}

describe('a realistic conman.conf', () => {
  let dir = '';
  let conf = '';
  let cfg: Config;

  test('conch reads it', async () => {
    dir = cleanup.dir('conch-conmand-');
    fs.mkdirSync(path.join(dir, 'exec'));
    // exits at once, so conmand leaves no console processes behind
    fs.writeFileSync(path.join(dir, 'exec', 'exit.sh'), '#!/bin/sh\necho "exit.sh $*"\n', { mode: 0o755 });
    conf = path.join(dir, 'conman.conf');
    fs.writeFileSync(conf, realisticConf(dir, await freePort(), await freePort()));
    cfg = loadConfig(conf);

    const s = cfg.server;
    assert.equal(s.logdir, `${dir}/log`);
    assert.deepEqual(s.logfile, { path: `${dir}/log/conmand.log`, priority: 'notice' });
    assert.equal(s.timestamp, 3600);
    assert.equal(s.syslog, 'local0');
    const byName = Object.fromEntries(cfg.consoles.map((c) => [c.name, c]));
    assert.deepEqual(Object.keys(byName), ['serial0', 'ts-port1', 'vm1', 'bmc1', 'exp1', 'exp2']);
    assert.equal(byName.serial0.spec.type, 'serial');
    assert.equal(byName['ts-port1'].spec.type, 'telnet');
    assert.equal(byName.vm1.spec.type, 'unix');
    assert.equal(byName.vm1.log, null);
    const bmc = byName.bmc1.spec;
    assert.ok(bmc.type === 'ipmi');
    assert.equal(bmc.opts.user, 'root');
    assert.deepEqual(bmc.opts.password, Buffer.from('pass'));
    assert.equal(bmc.opts.cipherSuite, 3);
    assert.deepEqual(bmc.opts.workarounds, ['solpayloadsize', 'authcap']);
    assert.deepEqual(byName.exp1.spec, {
      type: 'process',
      argv: [`${dir}/exec/exit.sh`, 'exp1', 'literal %N'],
    });
    assert.equal(byName.exp1.log, `${dir}/log/console.%N`);
    assert.deepEqual(byName.exp1.logOpts, { lock: true, sanitize: false, timestamp: false });
    assert.deepEqual(byName.serial0.logOpts, { lock: true, sanitize: true, timestamp: true });
    assert.equal(byName.exp2.log, `${dir}/log/exp2/%Y-%m-%d.log`);
    assert.deepEqual(byName.exp2.loc, { file: conf, line: 31, col: 9 });
  });

  test('conmand accepts it without complaint and monitors the same consoles', async () => {
    const out = await conmandOutput(conf);
    assert.doesNotMatch(out, /CONFIG\[/, out);
    assert.match(out, new RegExp(`Monitoring ${cfg.consoles.length} consoles`), out);
  });
});

describe('bad lines are reported on the same line as conmand does', () => {
  const cases: [string, string][] = [
    ['unknown key', 'server prot=1'],
    ['missing "="', 'server port 7890'],
    ['unmatched quote', 'server logdir="/var/log'],
    ['continued directive', 'console name="c1" \\\n  dev="127.0.0.1:9" \\\n  colour="red"'],
    ['bad on/off', 'server keepalive=perhaps'],
  ];
  for (const [what, bad] of cases) {
    test(what, async () => {
      const dir = cleanup.dir('conch-conmand-bad-');
      const conf = path.join(dir, 'conman.conf');
      const port = await freePort();
      fs.writeFileSync(
        conf,
        `# ${what}\nserver loopback=on port=${port}\n\n${bad}\nconsole name="u" dev="unix:${dir}/u.sock" log=""\n`,
      );
      let ours: ConfigError | null = null;
      try {
        loadConfig(conf);
      } catch (e) {
        if (e instanceof ConfigError) ours = e;
        else throw e;
      }
      assert.ok(ours, 'conch must reject it');
      const theirs = /CONFIG\[[^\]]*:(\d+)\]/.exec(await conmandOutput(conf));
      assert.ok(theirs, 'conmand must complain too');
      assert.equal(ours.loc.line, Number(theirs[1]), ours.message);
    });
  }
});
