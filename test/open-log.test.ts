// Log files opened in the background (src/logging/open-log.ts): one open at
// a time in a directory, in the order asked, while other directories open
// side by side; a failed open hands its turn on. Creating thousands of files
// in one directory from libuv's 4 threads at once made the kernel spin on the
// directory's lock for seconds of a 10,000-console start.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { openLog, SymlinkError } from '../src/logging/open-log.js';
import { Cleanup } from './helpers/wait.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('conch-open-log-');

/** fs.open counted per directory while under way (the module's import of node:fs sees the patch) */
function countOpens(): { most: Map<string, number>; mostAll: { n: number }; restore: () => void } {
  const cjs = createRequire(import.meta.url)('node:fs') as typeof fs;
  const real = cjs.open;
  const now = new Map<string, number>();
  const most = new Map<string, number>();
  const mostAll = { n: 0 };
  let all = 0;
  cjs.open = ((file: string, flags: number, mode: number, cb: (e: NodeJS.ErrnoException | null, fd: number) => void) => {
    const d = path.dirname(file);
    now.set(d, (now.get(d) ?? 0) + 1);
    most.set(d, Math.max(most.get(d) ?? 0, now.get(d)!));
    mostAll.n = Math.max(mostAll.n, ++all);
    real(file, flags, mode, (e, fd) => {
      now.set(d, now.get(d)! - 1);
      all--;
      cb(e, fd);
    });
  }) as typeof fs.open;
  syncBuiltinESMExports();
  return {
    most,
    mostAll,
    restore: () => {
      cjs.open = real;
      syncBuiltinESMExports();
    },
  };
}

const opened = (file: string): Promise<number> =>
  new Promise((resolve, reject) => openLog(file, { nonblock: true }, (e, fd) => (e ? reject(e) : resolve(fd))));

test('one open at a time in a directory, in order; two directories side by side', async () => {
  const a = path.join(dir, 'a');
  const b = path.join(dir, 'b');
  const c = countOpens();
  const order: string[] = [];
  try {
    const files = [...Array(200).keys()].flatMap((i) => [path.join(a, `c${i}.log`), path.join(b, `c${i}.log`)]);
    const fds = await Promise.all(
      files.map((f) =>
        opened(f).then((fd) => {
          if (path.dirname(f) === a) order.push(path.basename(f));
          return fd;
        }),
      ),
    );
    for (const fd of fds) fs.closeSync(fd);
  } finally {
    c.restore();
  }
  // every file made (the directories too), each directory's opens one at a time
  assert.equal(fs.readdirSync(a).length, 200);
  assert.equal(fs.readdirSync(b).length, 200);
  assert.equal(c.most.get(a), 1);
  assert.equal(c.most.get(b), 1);
  assert.equal(c.mostAll.n, 2, 'the two directories open side by side');
  assert.deepEqual(order, [...Array(200).keys()].map((i) => `c${i}.log`));
});

test('a refused open hands the directory on to the next', async () => {
  const d = path.join(dir, 'links');
  fs.mkdirSync(d);
  fs.symlinkSync('/etc/passwd', path.join(d, 'planted.log'));
  const results = await Promise.allSettled([opened(path.join(d, 'planted.log')), opened(path.join(d, 'after1.log')), opened(path.join(d, 'after2.log'))]);
  assert.equal(results[0].status, 'rejected');
  assert.ok((results[0] as PromiseRejectedResult).reason instanceof SymlinkError);
  for (const r of results.slice(1)) {
    assert.equal(r.status, 'fulfilled');
    fs.closeSync((r as PromiseFulfilledResult<number>).value);
  }
  assert.deepEqual(fs.readdirSync(d).sort(), ['after1.log', 'after2.log', 'planted.log']);
});
