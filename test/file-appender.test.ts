import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as crypto from 'node:crypto';
import { FileAppender } from '../src/logging/file-appender.js';

const tmp = (): string => fs.mkdtempSync(path.join(os.tmpdir(), 'conch-appender-'));

test('FileAppender: 20,000 writes of random sizes land in order, byte-exact, before end() resolves', async () => {
  const dir = tmp();
  const file = path.join(dir, 'log');
  const errors: Error[] = [];
  const a = new FileAppender(fs.openSync(file, 'a', 0o600), (e) => errors.push(e));
  const parts: Buffer[] = [];
  for (let i = 0; i < 20_000; i++) {
    const b = crypto.randomBytes(1 + (i % 300));
    parts.push(b);
    if (i % 3 === 0) a.writeAll([b]);
    else a.write(b);
    if (i % 1000 === 0) await new Promise((r) => setImmediate(r));
  }
  await a.end();
  assert.deepEqual(errors, []);
  assert.ok(fs.readFileSync(file).equals(Buffer.concat(parts)));
  a.write(Buffer.from('after end')); // ignored, no throw
  fs.rmSync(dir, { recursive: true });
});

test('FileAppender: a failing descriptor reports one error per outage and never throws', async () => {
  const dir = tmp();
  const file = path.join(dir, 'ro');
  fs.writeFileSync(file, 'x');
  const errors: Error[] = [];
  const a = new FileAppender(fs.openSync(file, 'r'), (e) => errors.push(e));
  for (let i = 0; i < 50; i++) a.write(Buffer.from(`line ${i}\n`));
  await a.end();
  assert.equal(errors.length, 1);
  assert.match(errors[0]!.message, /EBADF/);
  assert.equal(fs.readFileSync(file, 'utf8'), 'x');
  fs.rmSync(dir, { recursive: true });
});
