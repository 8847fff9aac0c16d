// Hostile patterns: conman requests whose CONSOLE globs and EREs made the
// old backtracking matcher freeze the daemon (an 83-byte glob of `*`s: 13 s;
// `(a|aa)*c` on a long name: never). Under attack the daemon must keep
// answering others and logging, answer every attacker (OK or a clear
// ERROR), give up on work past its budget with an ERROR, and stop working
// for a client that has gone.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { Cleanup, waitFor } from '../helpers/wait.js';
import { startFortress, underAttack, type Fortress } from './harness.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

/** consoles with 1,000-character names: what the pathological patterns chew on */
const LONG_NAMES = Array.from({ length: 24 }, (_, i) => `${'a'.repeat(1000)}${i}`);
// (logged to short file names: a 1,000-character name is too long for a file)
const BODY = LONG_NAMES.map((n, i) => `console name="${n}" dev="test:" testopts="p:0" log="long-${i}.log"\n`).join('');
/** the bystanders log to logdir/%N.log */
const HEADER = 'global log="%N.log"\n';

const PATHOLOGICAL_GLOBS = [`${'*'.repeat(80)}b`, '*a'.repeat(40) + 'b', '*a*?'.repeat(40) + 'b'];
const PATHOLOGICAL_ERES = ['(a|aa)*c', '(a*)*b', '((a+)+)+b', '(x+x+)+y', '(.*)*(.*)*b', 'a{1000}{1000}'];
/** the costliest work a pattern within the size limit makes: ~60,000 live states per character */
const COSTLY_ERE = '(.?){30000}z';

/** conman's quoting: a `'` or `"` inside travels with its high bit set; our patterns have none */
const request = (cmd: string, pattern: string, regex: boolean): string =>
  `HELLO USER='mallory'\n${cmd}${regex ? ' OPTION=REGEX' : ''} CONSOLE='${pattern}'\n`;

/** Send a request; resolves with what the server sent once it closed (bounded by `timeoutMs`). */
function ask(port: number, text: string, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const t = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms to ${JSON.stringify(text.slice(0, 80))}; got ${JSON.stringify(got)}`));
    }, timeoutMs);
    sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => {
      clearTimeout(t);
      resolve(got);
    });
    sock.write(text);
  });
}

/** CPU ticks (user + system) the process has used. */
function cpuTicks(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return Number(f[11]) + Number(f[12]);
}

describe('hostile console patterns', () => {
  let f: Fortress;
  before(async () => {
    f = await startFortress(cleanup, BODY, { header: HEADER });
  });

  test('pathological globs and EREs from many clients: all answered, nobody else stalls', { timeout: 120_000 }, async () => {
    const answers = await underAttack(
      f,
      async () => {
        const asks: Promise<string>[] = [];
        for (let round = 0; round < 3; round++) {
          for (const g of PATHOLOGICAL_GLOBS) asks.push(ask(f.port, request('QUERY', g, false)));
          for (const e of PATHOLOGICAL_ERES) asks.push(ask(f.port, request('QUERY', e, true)));
        }
        return Promise.all(asks);
      },
      2,
    );
    for (const a of answers) assert.match(a, /^OK\n(OK|ERROR)/, a.slice(0, 200));
    // every name ends in a digit: none of these patterns names a console
    assert.ok(answers.every((a) => !a.includes('CONSOLE=')));
    assert.ok(answers.some((a) => a.includes('Found no matching consoles')));
    assert.ok(answers.some((a) => a.includes('Regular expression too big')), 'a{1000}{1000} is refused');
    // the patterns still work on names they do match
    const hit = await ask(f.port, request('QUERY', `${'*'.repeat(80)}1`, false));
    assert.match(hit, /^OK\nOK CONSOLE='a{1000}1' CONSOLE='a{1000}11' CONSOLE='a{1000}21' CONSOLE='bystander1'\n$/);
  });

  test('work past the budget ends in an ERROR reply, not an endless wait', { timeout: 120_000 }, async () => {
    const answer = await underAttack(f, () => ask(f.port, request('QUERY', COSTLY_ERE, true), 60_000));
    assert.match(answer, /^OK\nERROR CODE=2 MESSAGE='Console patterns too costly/);
  });

  test('a client that sends a costly pattern and leaves: the matching stops', { timeout: 120_000 }, async () => {
    const before = (f.child.output.match(/left during console matching/g) ?? []).length;
    const socks: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(f.port, '127.0.0.1');
      s.on('error', () => {});
      cleanup.add(() => s.destroy());
      s.write(request('CONNECT', COSTLY_ERE, true));
      socks.push(s);
    }
    // wait until all four are at work (their greeting was answered), then reset the connections
    await waitFor(() => socks.every((s) => s.bytesRead >= 3), 'greetings answered', 10_000);
    await new Promise((r) => setTimeout(r, 100)); // the request lines reach the daemon
    for (const s of socks) s.resetAndDestroy();
    await waitFor(
      () => (f.child.output.match(/left during console matching/g) ?? []).length >= before + 4,
      'the daemon to notice the clients left mid-match',
      10_000,
    );
    // with the matches stopped, the daemon is near idle: well under half a core over a second
    const t0 = cpuTicks(f.pid);
    const w0 = Date.now();
    await waitFor(() => Date.now() - w0 >= 1000, 'a second', 5000, 100);
    const hz = 100;
    const used = (cpuTicks(f.pid) - t0) / hz / ((Date.now() - w0) / 1000);
    assert.ok(used < 0.5, `the daemon still used ${Math.round(used * 100)} % of a core after its clients left`);
  });
});
