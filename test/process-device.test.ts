// ProcessDevice with real children: cat, tty, env, sh scripts, binary output,
// group kill on close, exec failures.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, waitFor } from './helpers/wait.js';
import { ProcessDevice } from '../src/devices/process.js';
import { INPUT_HIGH_WATER } from '../src/devices/device.js';
import { Recorder } from './helpers/recorder.js';

/** also notes the device label at each onDown, as the engine prints it in the disconnect notice */
class LabelRecorder extends Recorder {
  downLabels: string[] = [];
  drains = 0;
  onDrain(): void {
    this.drains++;
  }
  constructor(private readonly dev?: ProcessDevice) {
    super();
  }
  override onData(b: Buffer): void {
    assert.ok(Buffer.isBuffer(b));
    super.onData(b);
  }
  override onDown(r: string): void {
    super.onDown(r);
    if (this.dev) this.downLabels.push(this.dev.label());
  }
}

const cleanup = new Cleanup();
after(() => cleanup.run());

function start(argv: string[], killGraceMs?: number): { dev: ProcessDevice; r: LabelRecorder } {
  const dev = new ProcessDevice({ argv }, { consoleName: 'node1', killGraceMs });
  cleanup.add(() => dev.close());
  const r = new LabelRecorder(dev);
  dev.connect(r);
  return { dev, r };
}

/** true while pid names a live (not zombie) process */
function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Every byte value twice, control characters (^C ^D ^S ^Q ^Z \r \n) and 0xFF included. */
const ALL_BYTES = Buffer.concat([Buffer.from([...Array(256).keys()]), Buffer.from([...Array(256).keys()].reverse())]);

describe('process device', () => {
  test('cat on a pty: label with pid, input comes back exactly once and unchanged, close → no onDown', async () => {
    const { dev, r } = start(['cat']);
    assert.equal(r.ups, 1);
    assert.match(dev.label(), /^"cat" \(pid \d+\)$/);
    const pid = Number(/pid (\d+)/.exec(dev.label())![1]);
    assert.ok(running(pid));
    // written at once after onUp: held until the pty is raw, so no echo and no CR/LF mapping
    dev.write(Buffer.from('hello\r\n'));
    dev.write(ALL_BYTES);
    const want = Buffer.concat([Buffer.from('hello\r\n'), ALL_BYTES]);
    await waitFor(() => r.bytes >= want.length, `cat to echo ${want.length} bytes (got ${r.bytes})`);
    assert.ok(r.data.equals(want), `got ${JSON.stringify(r.text)}`);
    await dev.close();
    assert.equal(running(pid), false);
    assert.deepEqual(r.downs, []);
    assert.equal(dev.label(), '"cat"');
  });

  test('ptymode=cooked: an interactive shell echoes what is typed and ends its lines with CR LF', async () => {
    const dev = new ProcessDevice({ argv: ['sh', '-i'] }, { consoleName: 'node1', ptyMode: 'cooked' });
    cleanup.add(() => dev.close());
    const r = new LabelRecorder(dev);
    dev.connect(r);
    await waitFor(() => r.ups === 1, 'the shell to start');
    dev.write(Buffer.from('echo one; echo two\r'));
    // the line discipline echoes the typed command, and maps the shell's \n to \r\n
    await waitFor(() => r.text.includes('one\r\ntwo\r\n'), `cooked output (got ${JSON.stringify(r.text)})`);
    assert.ok(r.text.includes('echo one; echo two'), 'the typed line is echoed');
    // the same in raw mode (the default): no echo, no CR added
    const raw = new ProcessDevice({ argv: ['sh', '-c', 'read l; echo "$l"; echo x'] }, { consoleName: 'node2' });
    cleanup.add(() => raw.close());
    const rr = new LabelRecorder(raw);
    raw.connect(rr);
    await waitFor(() => rr.ups === 1, 'the raw child to start');
    raw.write(Buffer.from('typed\n'));
    await waitFor(() => rr.text.includes('x\n'), `raw output (got ${JSON.stringify(rr.text)})`);
    assert.equal(rr.text, 'typed\nx\n');
    await dev.close();
    await raw.close();
  });

  test('the child has a real terminal: tty prints /dev/pts/N; exit status reported; label keeps the pid in onDown', async () => {
    const { dev, r } = start(['tty']);
    await waitFor(() => r.downs.length === 1, 'tty to exit');
    assert.match(r.text, /^\/dev\/pts\/\d+\n$/);
    assert.deepEqual(r.downs, ['exited with status 0']);
    assert.match(r.downLabels[0], /^"tty" \(pid \d+\)$/);
    assert.equal(dev.label(), '"tty"');
  });

  test('own session and process group, cwd /, clean environment', async () => {
    process.env.TZ = 'Europe/Berlin';
    try {
      const { r } = start([
        '/bin/sh',
        '-c',
        'read -r _ _ _ _ pgrp sid _ < /proc/$$/stat; echo "pid=$$ pgrp=$pgrp sid=$sid"; echo "cwd=$(pwd)"; env | sort',
      ]);
      await waitFor(() => r.downs.length === 1, 'the script to finish');
      assert.deepEqual(r.downs, ['exited with status 0']);
      const ids = /pid=(\d+) pgrp=(\d+) sid=(\d+)/.exec(r.text);
      assert.ok(ids, r.text);
      assert.equal(ids[2], ids[1], 'process group leader');
      assert.equal(ids[3], ids[1], 'session leader');
      assert.match(r.text, /^cwd=\/$/m);
      const env = r.text
        .split('\n')
        .filter((l) => /^[A-Z_]+=/.test(l))
        .map((l) => l.split('=')[0]);
      assert.ok(env.includes('PATH') && env.includes('TERM') && env.includes('TZ'), r.text);
      assert.match(r.text, /^PATH=\/usr\/bin:\/bin:\/usr\/sbin:\/sbin$/m);
      assert.match(r.text, /^TERM=dumb$/m);
      assert.match(r.text, /^TZ=Europe\/Berlin$/m);
      // nothing of the daemon's own environment leaks (HOME, USER, NODE_*, ...)
      for (const k of env) assert.ok(['PATH', 'TERM', 'TZ', 'DEBUG', 'IFS', 'PWD'].includes(k), `unexpected ${k}`);
    } finally {
      delete process.env.TZ;
    }
  });

  test('a script printing lines: output exactly as written (no \\r added), exit status', async () => {
    const { r } = start(['/usr/bin/python3', '-c', 'import sys\nfor i in range(3): print("line", i)\nsys.exit(3)']);
    await waitFor(() => r.downs.length === 1, 'python to exit');
    assert.equal(r.text, 'line 0\nline 1\nline 2\n');
    assert.deepEqual(r.downs, ['exited with status 3']);
  });

  test('binary output from the child arrives byte-exact', async () => {
    const dir = cleanup.dir('conch-proc-');
    const file = path.join(dir, 'out');
    const { r } = start(['/bin/sh', '-c', 'head -c 1000000 /dev/urandom | tee "$0"', file]);
    await waitFor(() => r.downs.length === 1, 'the pipeline to finish', 60000);
    assert.deepEqual(r.downs, ['exited with status 0']);
    const want = fs.readFileSync(file);
    assert.equal(want.length, 1000000);
    assert.equal(r.bytes, want.length);
    assert.ok(r.data.equals(want), 'content differs');
  });

  test('killed by a signal is reported by name', async () => {
    const { r } = start(['/bin/sh', '-c', 'kill -KILL $$']);
    await waitFor(() => r.downs.length === 1, 'the child to die');
    assert.deepEqual(r.downs, ['killed by signal SIGKILL']);
  });

  test('sendBreak writes "&B" to the child', async () => {
    const { dev, r } = start(['cat']);
    dev.write(Buffer.from('x'));
    dev.sendBreak();
    await waitFor(() => r.text === 'x&B', `"&B" echoed by cat (got ${JSON.stringify(r.text)})`);
  });

  test('close() kills the whole process group, grandchildren included', async () => {
    const { dev, r } = start(['/bin/sh', '-c', 'sleep 1000 & echo "bg=$!"; exec cat']);
    const m = await waitFor(() => /bg=(\d+)\n/.exec(r.text), 'the grandchild pid');
    const bg = Number(m[1]);
    const pid = Number(/pid (\d+)/.exec(dev.label())![1]);
    assert.ok(running(bg));
    await dev.close();
    assert.equal(running(pid), false, 'child gone');
    assert.equal(running(bg), false, 'grandchild gone');
    assert.deepEqual(r.downs, []);
  });

  test('close() SIGKILLs a child that ignores SIGTERM, after the grace', async () => {
    const { dev, r } = start(['/bin/sh', '-c', 'trap "" TERM HUP; echo ready; while :; do sleep 1; done'], 500);
    await waitFor(() => r.text.includes('ready'), 'the trap to be set');
    const pid = Number(/pid (\d+)/.exec(dev.label())![1]);
    await dev.close();
    assert.equal(running(pid), false);
  });

  test('when the child exits, what it left behind in its group is killed too', async () => {
    const { r } = start(['/bin/sh', '-c', 'trap "" HUP; sleep 1000 & echo "bg=$!"; exit 0']);
    await waitFor(() => r.downs.length === 1, 'the child to exit');
    const bg = Number(/bg=(\d+)/.exec(r.text)![1]);
    await waitFor(() => !running(bg), 'the leftover sleep to be killed');
  });

  test('exec failures: clear reasons, no throw, no onUp', async () => {
    const dir = cleanup.dir('conch-proc-');
    const noexec = path.join(dir, 'script');
    fs.writeFileSync(noexec, '#!/bin/sh\necho hi\n', { mode: 0o644 });
    const cases: [string[], string][] = [
      [[path.join(dir, 'missing')], `"${path.join(dir, 'missing')}" stat error: no such file or directory`],
      [[noexec], `"${noexec}": not executable`],
      [[dir], `"${dir}": not a regular file`],
      [['no-such-program-here'], '"no-such-program-here": not found in /usr/bin:/bin:/usr/sbin:/sbin'],
      [[], 'empty command'],
    ];
    for (const [argv, want] of cases) {
      const { dev, r } = start(argv);
      await waitFor(() => r.downs.length === 1, `onDown for ${argv.join(' ')}`);
      assert.equal(r.ups, 0);
      assert.deepEqual(r.downs, [want]);
      assert.doesNotThrow(() => dev.write(Buffer.from('x')));
      await dev.close();
    }
  });

  test('a bare program name is found on the children PATH; arguments pass through exactly', async () => {
    const { r } = start(['printf', '%s|', 'a b', '', '$HOME', "it's", '*']);
    await waitFor(() => r.downs.length === 1, 'printf to exit');
    assert.equal(r.text, "a b||$HOME|it's|*|");
  });

  test('a handler that throws does not break the device', async () => {
    const dev = new ProcessDevice({ argv: ['/bin/sh', '-c', 'echo one; read -r x; echo "$x"'] }, { consoleName: 'n' });
    cleanup.add(() => dev.close());
    let seen = '';
    let down = '';
    dev.connect({
      onData: (b) => {
        seen += b.toString();
        throw new Error('handler bug');
      },
      onUp: () => {
        throw new Error('handler bug');
      },
      onDown: (reason) => {
        down = reason;
        throw new Error('handler bug');
      },
      onReady: () => {},
      onNotice: () => {},
    });
    await waitFor(() => seen === 'one\n', 'the first line');
    dev.write(Buffer.from('two\n'));
    await waitFor(() => down !== '', 'onDown');
    assert.equal(seen, 'one\ntwo\n');
    assert.equal(down, 'exited with status 0');
  });

  test('reconnect after exit starts a new child with a new pid', async () => {
    const { dev, r } = start(['/bin/sh', '-c', 'echo run']);
    await waitFor(() => r.downs.length === 1, 'first run');
    const firstPid = r.downLabels[0];
    dev.connect(r);
    await waitFor(() => r.downs.length === 2, 'second run');
    assert.equal(r.ups, 2);
    assert.equal(r.text, 'run\nrun\n');
    assert.notEqual(r.downLabels[1], firstPid);
  });

  test('a program that does not read: input queues to the high-water mark, drains when it reads, is dropped on close', async () => {
    const dir = cleanup.dir('conch-proc-');
    const go = path.join(dir, 'go');
    const out = path.join(dir, 'out');
    // reads nothing until the file `go` exists, then copies its input to `out`
    const { dev, r } = start(['/bin/sh', '-c', 'echo ready; while [ ! -e "$0" ]; do sleep 0.05; done; exec cat > "$1"', go, out]);
    await waitFor(() => r.text === 'ready\n', 'the program to start');
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    let written = 0;
    for (let i = 0; i < 1024; i++) {
      written += chunk.length;
      if (!dev.write(chunk)) break;
    }
    assert.ok(dev.queued() >= INPUT_HIGH_WATER, `full at ${dev.queued()} queued after ${written}`);
    assert.ok(written < 4 * 1024 * 1024, `the pty took ${written - dev.queued()} bytes`);
    assert.equal(r.drains, 0);
    fs.writeFileSync(go, '');
    await waitFor(() => r.drains === 1, 'the drain once the program reads');
    await waitFor(() => dev.queued() === 0, 'the queue to empty');
    await waitFor(() => fs.statSync(out).size === written, `all ${written} bytes at the program`);

    // a process console whose program ignores its input entirely: close() drops the queue
    const still = start(['/bin/sh', '-c', 'echo ready; exec sleep 600']);
    await waitFor(() => still.r.text === 'ready\n', 'sleep to start');
    for (let i = 0; i < 1024 && still.dev.write(chunk); i++);
    assert.ok(still.dev.queued() >= INPUT_HIGH_WATER);
    await still.dev.close();
    assert.equal(still.dev.queued(), 0);
    assert.deepEqual(still.r.downs, []);
  });
});
