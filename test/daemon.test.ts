// conchd as an operator runs it: config check, logs byte-exact under a
// flood, rotation by mv + SIGHUP while flooding, signals, pidfile, -k/-q/-r.

import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import * as net from 'node:net';
import { Cleanup, waitFor, waitForFile } from './helpers/wait.js';
import { CONCHD, runConchd, startConchd } from './helpers/conchd.js';
import { control, startBmcsim } from './bmcsim-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const NOTICE = /\r\n<ConMan> [^\r\n]*\.\r\n/g;
const stripNotices = (b: Buffer): Buffer => Buffer.from(b.toString('latin1').replace(NOTICE, ''), 'latin1');

const conchd = runConchd;

/** A python3 unix-socket server that sends `file` in 64 KiB chunks, pausing `pauseMs` between them. */
function floodServer(sock: string, file: string, pauseMs: number): string[] {
  const py = `
import socket, os, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(${JSON.stringify(sock)}); s.listen(1)
c, _ = s.accept()
with open(${JSON.stringify(file)}, 'rb') as f:
    while True:
        b = f.read(65536)
        if not b: break
        c.sendall(b)
        time.sleep(${pauseMs / 1000})
time.sleep(600)
`;
  return ['-c', py];
}

describe('conchd', () => {
  test('-t checks a configuration: 0 when valid, 1 with file:line:column when not', () => {
    const dir = cleanup.dir();
    const good = path.join(dir, 'good.conf');
    fs.writeFileSync(good, 'server port=7890\nconsole name="t1" dev="test:"\n');
    const ok = conchd(['-t', '-c', good]);
    assert.equal(ok.code, 0, ok.out);
    assert.match(ok.out, /valid/);
    const bad = path.join(dir, 'bad.conf');
    fs.writeFileSync(bad, 'server port=7890\nconsole name="t1" dev="test:"\nconsole nmae="t2" dev="test:"\n');
    const ko = conchd(['--check', '-c', bad]);
    assert.equal(ko.code, 1);
    assert.ok(ko.out.includes(`${bad}:3:9:`), ko.out);
  });

  test('a 12 MB random flood lands byte-exact in the log, also across mv + SIGHUP rotations', async () => {
    const c = new Cleanup();
    try {
      const dir = c.dir();
      const data = randomBytes(12 * 1024 * 1024);
      const src = path.join(dir, 'flood.bin');
      fs.writeFileSync(src, data);
      const sock = path.join(dir, 'flood.sock');
      const d = await startConchd(
        c,
        `console name="flood" dev="unix:${sock}" log="flood.log" logopts="nosanitize,notimestamp"\n`,
        { dir },
      );
      const log = path.join(d.logdir, 'flood.log');
      await waitForFile(log, 'log opened');
      // the socket appears after conchd started: it must connect at once (directory watch)
      c.child('python3', floodServer(sock, src, 15));
      const rotated: string[] = [];
      for (let i = 1; i <= 3; i++) {
        await waitFor(() => fs.existsSync(log) && fs.statSync(log).size > 2 * 1024 * 1024, `log to grow (rotation ${i})`, 60000);
        const to = `${log}.${i}`;
        fs.renameSync(log, to);
        rotated.push(to);
        process.kill(d.child.proc.pid!, 'SIGHUP');
        await waitForFile(log, 'log opened');
      }
      const total = (): number => [...rotated, log].reduce((n, f) => n + stripNotices(fs.readFileSync(f)).length, 0);
      await waitFor(() => total() >= data.length, 'every byte to reach the logs', 60000);
      const got = Buffer.concat([...rotated, log].map((f) => stripNotices(fs.readFileSync(f))));
      assert.equal(got.length, data.length, 'no byte lost or duplicated');
      assert.ok(got.equals(data), 'the logs hold exactly the bytes sent, in order');
      // each rotated file ends where the next begins: every one got data
      for (const f of rotated) assert.ok(stripNotices(fs.readFileSync(f)).length > 0, `${f} has data`);
      assert.equal(fs.statSync(log).mode & 0o777, 0o600, 'log files are 0600');
    } finally {
      await c.run();
    }
  });

  test('SIGTERM kills process consoles with their group, flushes logs and removes the pidfile', async () => {
    const c = new Cleanup();
    try {
      const dir = c.dir();
      const marker = path.join(dir, 'grandchild.pid');
      const script = path.join(dir, 'console.sh');
      fs.writeFileSync(script, `#!/bin/sh\nsleep 1000 &\necho $! > ${marker}\necho console-is-up\nexec cat\n`, { mode: 0o755 });
      const d = await startConchd(c, `console name="p1" dev="${script}" log="%N.log"\n`, { dir });
      await waitForFile(path.join(d.logdir, 'p1.log'), 'console-is-up');
      assert.ok(fs.existsSync(d.pidfile), 'pidfile written');
      assert.equal(fs.readFileSync(d.pidfile, 'utf8').trim(), String(d.child.proc.pid));
      const grandchild = Number(fs.readFileSync(marker, 'utf8').trim());
      process.kill(d.child.proc.pid!, 'SIGTERM');
      assert.equal(await d.child.exited, 0);
      assert.ok(!fs.existsSync(d.pidfile), 'pidfile removed');
      await waitFor(() => {
        try {
          process.kill(grandchild, 0);
          return false;
        } catch {
          return true;
        }
      }, 'the console program\'s background child to be gone');
      assert.match(d.child.output, /Exiting on signal SIGTERM/);
    } finally {
      await c.run();
    }
  });

  test('-q, -r and -k find the running daemon through its pidfile', async () => {
    const c = new Cleanup();
    try {
      const d = await startConchd(c, 'console name="t1" dev="test:" log="%N-%Y.log"\n');
      const q = conchd(['-q', '-c', d.conf]);
      assert.equal(q.code, 0, q.out);
      assert.equal(q.out.trim(), String(d.child.proc.pid));
      const second = conchd(['-F', '-c', d.conf]);
      assert.equal(second.code, 1);
      assert.match(second.out, /already running/);
      const r = conchd(['-r', '-c', d.conf]);
      assert.equal(r.code, 0);
      await d.child.waitOutput('Reopened logs');
      const k = conchd(['-k', '-c', d.conf]);
      assert.equal(k.code, 0);
      assert.equal(await d.child.exited, 0);
      const q2 = conchd(['-q', '-c', d.conf]);
      assert.equal(q2.code, 1);
      assert.match(q2.out, /no daemon running/);
    } finally {
      await c.run();
    }
  });

  test('a relative -c works when it daemonizes (the daemon runs in /, with the absolute path)', async () => {
    const c = new Cleanup();
    try {
      const dir = c.dir();
      const pidfile = path.join(dir, 'd.pid');
      fs.writeFileSync(
        path.join(dir, 'rel.conf'),
        `server port=0\nserver pidfile="d.pid"\nserver logdir="${dir}"\nconsole name="t1" dev="test:" testopts="b:10,m:50,n:10,p:100" log="t1.log"\n`,
      );
      const r = spawnSync(process.execPath, [CONCHD, '-c', 'rel.conf'], { cwd: dir, encoding: 'utf8', timeout: 30000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
      const pid = Number(await waitFor(() => fs.existsSync(pidfile) && fs.readFileSync(pidfile, 'utf8').trim(), 'pidfile'));
      c.add(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      });
      await waitForFile(path.join(dir, 't1.log'), /connected to "test:"/);
      const k = spawnSync(process.execPath, [CONCHD, '-k', '-c', 'rel.conf'], { cwd: dir, encoding: 'utf8', timeout: 30000 });
      assert.equal(k.status, 0, k.stdout + k.stderr);
      await waitFor(() => !fs.existsSync(pidfile), 'the daemon to exit and remove its pidfile');
    } finally {
      await c.run();
    }
  });

  test('a port in use is named, with the setting that chose it', async () => {
    const c = new Cleanup();
    try {
      const dir = c.dir();
      const busy = net.createServer();
      await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
      c.add(() => busy.close());
      const port = (busy.address() as net.AddressInfo).port;
      const conf = path.join(dir, 'c.conf');
      fs.writeFileSync(conf, `server port=${port}\nserver loopback=on\nserver pidfile="${dir}/p.pid"\nconsole name="t1" dev="test:"\n`);
      const r = conchd(['-F', '-c', conf]);
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, new RegExp(`cannot listen on TCP port ${port}: it is already in use .*"server port=${port}" in ${conf.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
      assert.doesNotMatch(r.out, /EADDRINUSE/);
      const t = conchd(['-t', '-c', conf]);
      assert.match(t.out, /is valid \(1 console\)/);
    } finally {
      await c.run();
    }
  });

  test('SIGTERM with a BMC gone silent: the daemon does not wait it out, says so, and every log gets a closing line', { timeout: 120000 }, async () => {
    const c = new Cleanup();
    try {
      const sim = await startBmcsim(c, 1, ['--heartbeat', '1']);
      const d = await startConchd(
        c,
        `console name="node01" dev="ipmi:127.0.0.1:${sim.basePort}" ipmiopts="U:admin,P:password,C:3" log="%N.log"\n` +
          'console name="t1" dev="test:" testopts="b:10,m:100,n:50,p:100" log="%N.log"\n',
      );
      await waitForFile(path.join(d.logdir, 'node01.log'), /heartbeat/, 30000);
      // the BMC stops answering (a restart that lasts a minute): Deactivate and Close Session get no answer
      const r = await control(sim, 'POST', '/bmcs/node01/restart', { seconds: 60 });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      assert.equal(await d.child.stop(30000), 0, d.child.output);
      assert.match(d.child.output, /Console \[node01\] <127\.0\.0\.1:\d+> not released within 3s; going on/);
      assert.match(d.child.output, /conchd stopped \(in \d+\.\d s\)/);
      for (const n of ['node01', 't1']) {
        assert.match(fs.readFileSync(path.join(d.logdir, `${n}.log`), 'latin1'), new RegExp(`<ConMan> Console \\[${n}\\] log closed at [^\\r\\n]*: conchd stopping\\.\\r\\n$`));
      }
    } finally {
      await c.run();
    }
  });

  test('without -F it daemonizes: the command returns, the daemon keeps logging', async () => {
    const c = new Cleanup();
    try {
      const dir = c.dir();
      const conf = path.join(dir, 'conman.conf');
      const pidfile = path.join(dir, 'd.pid');
      fs.writeFileSync(
        conf,
        `server port=0\nserver pidfile="${pidfile}"\nserver logdir="${dir}"\nconsole name="t1" dev="test:" testopts="b:10,m:50,n:10,p:100" log="t1.log"\n`,
      );
      const r = conchd(['-c', conf]);
      assert.equal(r.code, 0, r.out);
      const pid = Number(await waitFor(() => fs.existsSync(pidfile) && fs.readFileSync(pidfile, 'utf8').trim(), 'pidfile'));
      c.add(() => {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      });
      await waitForFile(path.join(dir, 't1.log'), /connected to "test:"[\s\S]+[ -~]{10}/);
      assert.equal(conchd(['-k', '-c', conf]).code, 0);
      await waitFor(() => !fs.existsSync(pidfile), 'the daemon to exit and remove its pidfile');
    } finally {
      await c.run();
    }
  });

  test('a serial console whose port goes away is reopened when it comes back (conman never retries)', async () => {
    const c = new Cleanup();
    try {
      const dir = c.dir();
      const tty = path.join(dir, 'ttyS0');
      const far = path.join(dir, 'far-end');
      const pair = (): ReturnType<Cleanup['child']> =>
        c.child('socat', [`pty,raw,echo=0,link=${tty}`, `pty,raw,echo=0,link=${far}`]);
      let socat = pair();
      await waitFor(() => fs.existsSync(tty) && fs.existsSync(far), 'the pty pair');
      const d = await startConchd(c, `console name="ser1" dev="${tty}" seropts="115200" log="%N.log"\n`, { dir });
      const log = path.join(d.logdir, 'ser1.log');
      await waitForFile(log, `connected to "${tty}"`);
      fs.appendFileSync(far, 'first-boot\r\n');
      await waitForFile(log, 'first-boot');
      await socat.stop();
      await waitForFile(log, `disconnected from "${tty}"`);
      socat = pair();
      await waitFor(() => fs.existsSync(far), 'the new pty pair');
      // reconnects on its own, within the serial backoff (1 s, 2 s, ...)
      await waitFor(() => (fs.readFileSync(log, 'latin1').match(/connected to "/g) ?? []).length >= 2, 'the reconnect', 30000);
      fs.appendFileSync(far, 'second-boot\r\n');
      await waitForFile(log, 'second-boot');
    } finally {
      await c.run();
    }
  });

  test('-z truncates console logs on start; without it they are appended to', async () => {
    const c = new Cleanup();
    try {
      const dir = c.dir();
      const logdir = path.join(dir, 'log');
      fs.mkdirSync(logdir);
      const log = path.join(logdir, 't1.log');
      fs.writeFileSync(log, 'OLD-CONTENT\n');
      const body = `console name="t1" dev="test:" testopts="p:0" log="t1.log"\n`;
      const a = await startConchd(c, body, { dir });
      await waitForFile(log, 'log opened');
      await a.child.stop();
      assert.match(fs.readFileSync(log, 'latin1'), /^OLD-CONTENT\n/, 'appended');
      const b = await startConchd(c, body, { dir, args: ['-z'] });
      // the first run's 'log opened' is in the file already: wait for this run's own open
      const reopened = (): boolean => {
        const t = fs.readFileSync(log, 'latin1');
        return !t.includes('OLD-CONTENT') && t.includes('log opened');
      };
      await waitFor(reopened, 'the log truncated by -z and opened again', 20000);
      await b.child.stop();
      assert.doesNotMatch(fs.readFileSync(log, 'latin1'), /OLD-CONTENT/, 'truncated');
    } finally {
      await c.run();
    }
  });
});
