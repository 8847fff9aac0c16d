// conch-bmcsim's command line: manifest files, per-BMC credentials (checked
// with ipmitool), and errors that name the bad option or file line.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Cleanup } from './helpers/wait.js';
import { BMCSIM, startBmcsim } from './bmcsim-rig.js';

const exec = promisify(execFile);
const cleanup = new Cleanup();
after(() => cleanup.run());

test('per-BMC credentials from a file; JSON and TSV manifests say what runs', async () => {
  const dir = cleanup.dir('conch-bmcsim-cli-');
  const creds = path.join(dir, 'creds');
  fs.writeFileSync(creds, '# name user password\nnode02 ops s3cret\n');
  const json = path.join(dir, 'fleet.json');
  const s = await startBmcsim(cleanup, 2, ['--credentials', creds, '--manifest', json]);
  const m = JSON.parse(fs.readFileSync(json, 'utf8'));
  assert.deepEqual(m[1], { name: 'node02', address: '127.0.0.1', port: s.basePort + 1, user: 'ops', password: 's3cret' });
  assert.equal(m[0].user, 'admin');
  assert.match(s.child.stdout, new RegExp(`^node01\\t127\\.0\\.0\\.1\\t${s.basePort}\\tadmin\\tpassword$`, 'm'));
  const ok = await exec('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(s.basePort + 1), '-U', 'ops', '-P', 's3cret', '-C', '3', 'raw', '0x06', '0x01']);
  assert.match(ok.stdout, /^ 20 01/);
  await assert.rejects(
    exec('ipmitool', ['-I', 'lanplus', '-H', '127.0.0.1', '-p', String(s.basePort + 1), '-U', 'admin', '-P', 'password', '-C', '3', 'raw', '0x06', '0x01']),
    /Unable to establish IPMI v2/,
  );
});

test('bad options and credential files are refused with the place named', async () => {
  const dir = cleanup.dir('conch-bmcsim-cli-');
  const creds = path.join(dir, 'creds');
  fs.writeFileSync(creds, 'node01 admin\n');
  const run = async (args: string[]): Promise<{ code: number; err: string }> => {
    try {
      await exec(process.execPath, [BMCSIM, ...args]);
      return { code: 0, err: '' };
    } catch (e) {
      const x = e as { code: number; stderr: string };
      return { code: x.code, err: x.stderr };
    }
  };
  let r = await run(['--count', 'many']);
  assert.equal(r.code, 2);
  assert.match(r.err, /--count: 'many' is not a whole number/);
  r = await run(['--profile', 'dell']);
  assert.match(r.err, /--profile: unknown BMC profile 'dell'/);
  r = await run(['--credentials', creds]);
  assert.match(r.err, new RegExp(`${creds.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:1: expected "name user password"`));
});
