// The Debian package, without touching the system: scripts/build-deb.sh
// builds it into a temp dir, dpkg-deb shows what it holds, and a copy
// unpacked with `dpkg-deb -x` runs (conchd -t, a live conchd, conch -q, man).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { Cleanup, freePort, waitFor, waitForFile } from './helpers/wait.js';
import { ROOT } from './helpers/conchd.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
// the wrappers run `node` from PATH: make it this one
const env = { ...process.env, PATH: `${path.dirname(process.execPath)}:${process.env.PATH ?? '/usr/bin:/bin'}` };

let deb = '';
let unpacked = '';
let buildMs = 0;
let contents: { mode: string; owner: string; path: string }[] = [];

function run(cmd: string, args: string[], opts: { cwd?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 60000, ...opts });
}

before(async () => {
  const out = cleanup.dir('conch-deb-');
  const t0 = performance.now();
  // --skip-npm-ci: the test suite's node_modules has typescript and the built addons
  const r = run('bash', [path.join(ROOT, 'scripts/build-deb.sh'), '--skip-npm-ci', '-o', out], { cwd: ROOT });
  assert.equal(r.status, 0, `build-deb.sh failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  deb = r.stdout.trim().split('\n').pop()!;
  buildMs = performance.now() - t0;
  const arch = execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim();
  assert.equal(path.basename(deb), `conch_${pkg.version}_${arch}.deb`);
  contents = execFileSync('dpkg-deb', ['--contents', deb], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((l) => {
      const f = l.split(/\s+/);
      return { mode: f[0]!, owner: f[1]!, path: f[5]!.replace(/^\.\//, '/') };
    });
  unpacked = cleanup.dir('conch-deb-x-');
  execFileSync('dpkg-deb', ['-x', deb, unpacked]);
});

test('control data: name, version, architecture, Node 20, conffiles, maintainer scripts', (t) => {
  t.diagnostic(`build-deb.sh took ${buildMs} ms`);
  const info = execFileSync('dpkg-deb', ['--info', deb], { encoding: 'utf8' });
  const field = (name: string): string => new RegExp(`^ ${name}: (.*)$`, 'm').exec(info)?.[1] ?? '';
  assert.equal(field('Package'), 'conch');
  assert.equal(field('Version'), pkg.version);
  assert.equal(field('Architecture'), execFileSync('dpkg', ['--print-architecture'], { encoding: 'utf8' }).trim());
  assert.equal(field('Depends'), 'nodejs (>= 20)');
  assert.equal(field('Maintainer'), 'conch developers <conch@localhost>');
  assert.match(field('Installed-Size'), /^\d+$/);
  // one file of the control archive
  const ctrl = (name: string): string =>
    execFileSync('sh', ['-c', 'dpkg-deb --ctrl-tarfile "$1" | tar -xOf - "./$2"', 'sh', deb, name], { encoding: 'utf8' });
  assert.equal(ctrl('conffiles').trim(), '/etc/logrotate.d/conchd');
  for (const script of ['postinst', 'prerm', 'postrm']) assert.match(ctrl(script), /^#!\/bin\/sh\nset -e\n/, script);
  assert.doesNotMatch(ctrl('postinst'), /systemctl (enable|start)/, 'postinst must not enable or start the service');
  assert.match(ctrl('postinst'), /\[ -d \/run\/systemd\/system \]/);
  assert.match(ctrl('postrm'), /purge\)\s+rm -rf \/var\/lib\/conch/);
});

test('contents: wrappers, unit, logrotate, man pages, copyright; no tests, benchmarks or dev packages', () => {
  const byPath = new Map(contents.map((c) => [c.path, c]));
  for (const w of ['/usr/sbin/conchd', '/usr/bin/conch', '/usr/bin/conch-bmcsim']) {
    assert.equal(byPath.get(w)?.mode, '-rwxr-xr-x', `${w} mode`);
  }
  for (const f of [
    '/usr/lib/conch/package.json',
    '/usr/lib/conch/dist/src/bin/conchd.js',
    '/usr/lib/conch/dist/src/bin/conch.js',
    '/usr/lib/conch/dist/src/bin/conch-bmcsim.js',
    '/lib/systemd/system/conchd.service',
    '/etc/logrotate.d/conchd',
    '/usr/share/man/man8/conchd.8.gz',
    '/usr/share/man/man1/conch.1.gz',
    '/usr/share/man/man1/conch-bmcsim.1.gz',
    '/usr/share/man/man5/conch.conf.5.gz',
    '/usr/share/doc/conch/copyright',
  ]) {
    assert.ok(byPath.has(f), `${f} is in the package`);
  }
  assert.ok(contents.some((c) => c.path.startsWith('/usr/lib/conch/node_modules/node-pty/')), 'node-pty');
  assert.ok(contents.some((c) => c.path.startsWith('/usr/lib/conch/node_modules/serialport/')), 'serialport');
  assert.ok(contents.some((c) => /\/node-pty\/.*\.node$/.test(c.path)), 'node-pty native addon');
  for (const c of contents) {
    assert.equal(c.owner, 'root/root', c.path);
    assert.doesNotMatch(c.path, /\/dist\/(test|bench)\//, 'no tests or benchmarks');
    assert.doesNotMatch(c.path, /\/node_modules\/(typescript|@types)\//, 'no dev packages');
    assert.doesNotMatch(c.path, /^\/usr\/lib\/conch\/dist\/.*\.map$/, 'no source maps of unshipped sources');
  }
  // coexists with Debian's conman: no file in common
  const conman = ['/usr/sbin/conmand', '/usr/bin/conman', '/etc/conman.conf', '/etc/logrotate.d/conman', '/lib/systemd/system/conman.service'];
  const installed = run('dpkg-query', ['-L', 'conman']);
  if (installed.status === 0) conman.push(...installed.stdout.split('\n').filter((f) => f && !fs.statSync(f, { throwIfNoEntry: false })?.isDirectory()));
  for (const f of conman) assert.ok(!byPath.has(f) || byPath.get(f)!.mode.startsWith('d'), `${f} also in conman`);

  const unit = fs.readFileSync(path.join(unpacked, 'lib/systemd/system/conchd.service'), 'utf8');
  assert.match(unit, /^ExecStart=\/usr\/sbin\/conchd -F -c \/etc\/conman\.conf$/m);
  assert.match(unit, /^Documentation=man:conchd\(8\) man:conch\.conf\(5\)$/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(unit, /^StateDirectory=conch$/m);
  assert.match(fs.readFileSync(path.join(unpacked, 'etc/logrotate.d/conchd'), 'utf8'), /\/usr\/sbin\/conchd -r -c \/etc\/conman\.conf/);
  assert.match(fs.readFileSync(path.join(unpacked, 'usr/share/doc/conch/copyright'), 'utf8'), /^License: GPL-3\.0-or-later$/m);
});

test('the unpacked conchd checks a configuration and serves a console to the unpacked conch', async () => {
  const dir = cleanup.dir('conch-deb-run-');
  const conchd = path.join(unpacked, 'usr/sbin/conchd');
  const conch = path.join(unpacked, 'usr/bin/conch');
  const port = await freePort();
  const conf = path.join(dir, 'conman.conf');
  fs.writeFileSync(
    conf,
    [
      `server port=${port}`,
      'server loopback=on',
      `server logdir="${path.join(dir, 'log')}"`,
      `server pidfile="${path.join(dir, 'conchd.pid')}"`,
      `server statedir="${path.join(dir, 'state')}"`,
      'global log="%N.log"',
      'console name="pkgtest" dev="test:" testopts="b:64,m:200"',
      '',
    ].join('\n'),
  );

  const check = run(conchd, ['-t', '-c', conf]);
  assert.equal(check.status, 0, check.stderr);
  assert.match(check.stdout, /configuration .* is valid \(1 console/);
  assert.equal(run(conchd, ['-V']).stdout.trim(), `conch-${pkg.version}`, 'the library finds its package.json');

  const daemon = cleanup.child(conchd, ['-F', '-c', conf], { cwd: dir, env });
  await daemon.waitOutput(/Listening on TCP port \d+/, 30000);
  await waitForFile(path.join(dir, 'log', 'pkgtest.log'), 'log opened');

  const q = await waitFor(() => {
    const r = run(conch, ['-q', '-d', `127.0.0.1:${port}`]);
    return r.status === 0 ? r : null;
  }, 'conch -q to answer');
  assert.equal(q.stdout.trim(), 'pkgtest');

  assert.equal(await daemon.stop(), 0, daemon.output);
});

test('the unpacked man pages render without warnings', () => {
  for (const page of ['man8/conchd.8.gz', 'man1/conch.1.gz', 'man1/conch-bmcsim.1.gz', 'man5/conch.conf.5.gz']) {
    const r = spawnSync('man', ['--warnings', '-l', path.join(unpacked, 'usr/share/man', page)], {
      encoding: 'utf8',
      env: { ...env, MANPAGER: 'cat', PAGER: 'cat', MANWIDTH: '80' },
    });
    assert.equal(r.status, 0, `${page}: ${r.stderr}`);
    assert.equal(r.stderr, '', `${page} warnings`);
    if (page.startsWith('man8')) assert.match(r.stdout, /conchd - console manager daemon/);
  }
});
