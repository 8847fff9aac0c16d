// IPMI credentials from a conman.pswd-style file (server pswdfile=).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadConfig } from '../src/config/parse.js';
import { ConfigError } from '../src/config/types.js';
import { tmpDir } from './helpers/wait.js';

function setup(pswd: string, mode = 0o600): { dir: string; conf: string; warnings: string[] } {
  const dir = tmpDir();
  const pf = path.join(dir, 'conman.pswd');
  fs.writeFileSync(pf, pswd, { mode });
  fs.chmodSync(pf, mode);
  const conf = path.join(dir, 'conman.conf');
  fs.writeFileSync(
    conf,
    [
      `server pswdfile="${pf}"`,
      'console name="a" dev="ipmi:bmc-a1.example"',
      'console name="b" dev="ipmi:10.1.2.3" ipmiopts="U:ops"',
      'console name="c" dev="ipmi:other" ipmiopts="U:root,P:inline"',
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  return { dir, conf, warnings: [] };
}

test('credentials come from the first matching record; inline passwords win', () => {
  const s = setup('# host : user : password : kg\nbmc-a\\d+\\.example : admin : s3cret\n10\\.1\\..* : ops : opspw : 0x0102\n : root : fallback\n');
  const cfg = loadConfig(s.conf, { warn: (m) => s.warnings.push(m) });
  const ipmi = (n: string) => {
    const spec = cfg.consoles.find((c) => c.name === n)!.spec;
    assert.equal(spec.type, 'ipmi');
    return spec.opts;
  };
  assert.equal(ipmi('a').user, 'admin');
  assert.equal(ipmi('a').password.toString(), 's3cret');
  assert.equal(ipmi('b').user, 'ops');
  assert.equal(ipmi('b').password.toString(), 'opspw');
  assert.deepEqual([...ipmi('b').kg!], [1, 2]);
  assert.equal(ipmi('c').password.toString(), 'inline');
  assert.deepEqual(s.warnings, []);
  fs.rmSync(s.dir, { recursive: true });
});

test('a password file others can read is warned about; a bad record names file:line without the secret', () => {
  const s = setup('bmc.* : admin : s3cret\n', 0o644);
  loadConfig(s.conf, { warn: (m) => s.warnings.push(m) });
  assert.equal(s.warnings.length, 1);
  assert.match(s.warnings[0]!, /conman\.pswd holds passwords and can be read by other users \(mode 644\)/);
  const bad = setup('ok : admin : pw\nbroken-line-with-s3cret\n');
  assert.throws(
    () => loadConfig(bad.conf),
    (e: unknown) => e instanceof ConfigError && /conman\.pswd:2:1: expected "host-regex : user : password/.test(e.message) && !e.message.includes('s3cret'),
  );
  fs.rmSync(s.dir, { recursive: true });
  fs.rmSync(bad.dir, { recursive: true });
});
