// The client's wire pieces in isolation: greeting and request lines (option
// order, quote encoding), response parsing, option parsing and the keyboard
// escape reader (what bytes a keystroke sequence puts on the wire).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, parseHostSpec } from '../src/client/args.js';
import { EscapeReader } from '../src/client/escapes.js';
import type { SessionView } from '../src/client/messages.js';
import { greetingLine, parseResponse, requestLine } from '../src/client/proto.js';

test('greeting and request lines as conman sends them', () => {
  assert.equal(greetingLine('bob', 'pts/3').toString('latin1'), "HELLO USER='bob' TTY='pts/3'\n");
  assert.equal(greetingLine("o'neil").toString('latin1'), "HELLO USER='o\xa7neil'\n");
  const req = requestLine({
    command: 'connect', quiet: true, regex: true, force: true, join: false, broadcast: true, consoles: ['a', 'b"c'],
  });
  assert.equal(
    req.toString('latin1'),
    "CONNECT OPTION=QUIET OPTION=REGEX OPTION=FORCE OPTION=BROADCAST CONSOLE='a' CONSOLE='b\xa2c'\n",
  );
  // FORCE/JOIN/BROADCAST only on CONNECT.
  const mon = requestLine({ command: 'monitor', quiet: false, regex: false, force: true, join: true, broadcast: true, consoles: ['x'] });
  assert.equal(mon.toString('latin1'), "MONITOR CONSOLE='x'\n");
  assert.equal(requestLine({ command: 'query', quiet: false, regex: false, force: false, join: false, broadcast: false, consoles: [] }).toString(), 'QUERY\n');
});

test('responses: OK with consoles/RESET, ERROR with code/message, garbage', () => {
  assert.deepEqual(parseResponse(Buffer.from("OK OPTION=RESET CONSOLE='n1' CONSOLE='we\xa7ird'\n", 'latin1')), {
    ok: true, consoles: ['n1', "we'ird"], reset: true,
  });
  assert.deepEqual(parseResponse(Buffer.from('ok console="a" junk=1\r\n', 'latin1')), { ok: true, consoles: ['a'], reset: false });
  assert.deepEqual(parseResponse(Buffer.from("ERROR CODE=7 MESSAGE='Found console already in use'\n")), {
    ok: false, code: 7, message: 'Found console already in use',
  });
  assert.equal(parseResponse(Buffer.from('HUH\n')).ok, false);
  assert.deepEqual(parseResponse(Buffer.from('HUH\n')), { ok: false, code: 0 });
});

test('option parsing: getopt permutation, -f/-j exclusive, -m drops write options', () => {
  const r = parseArgs(['n1,n2', '-j', '-f', 'n3 n4', '-Q'], {});
  assert.equal(r.action, 'run');
  if (r.action !== 'run') return;
  assert.deepEqual(r.opts.consoles, ['n1', 'n2', 'n3', 'n4']);
  assert.equal(r.opts.force, true);
  assert.equal(r.opts.join, false);
  assert.equal(r.opts.quiet, true);
  const m = parseArgs(['-mbf', 'x'], {});
  assert.ok(m.action === 'run' && m.opts.command === 'monitor' && !m.opts.broadcast && !m.opts.force);
  assert.equal(parseArgs(['-q'], {}).action, 'run');
  assert.equal(parseArgs(['-m'], {}).action, 'help');
  assert.deepEqual(parseHostSpec('[::1]:7891'), { host: '::1', port: 7891 });
  assert.deepEqual(parseHostSpec('::1'), { host: '::1' });
  assert.deepEqual(parseHostSpec('h:0'), { host: 'h' });
  assert.deepEqual(parseHostSpec(':99'), { port: 99 });
  const env = parseArgs(['-q'], { CONMAN_HOST: 'a:1', CONMAN_PORT: '2', CONCH_HOST: 'b', CONCH_ESCAPE: '~' });
  assert.ok(env.action === 'run' && env.opts.host === 'b' && env.opts.port === 2 && env.opts.escape === 0x7e);
});

function keys(view: Partial<SessionView>, input: string, escape = 0x26): { wire: string; local: string[] } {
  const v: SessionView = {
    command: 'connect', broadcast: false, consoles: ['n1'], echo: false, quiet: false, reset: false,
    host: 'h', port: 1, ...view,
  };
  const wire: Buffer[] = [];
  const local: string[] = [];
  const r = new EscapeReader(escape, v, {
    send: (b) => wire.push(b),
    close: () => local.push('close'),
    help: () => local.push('help'),
    info: () => local.push('info'),
    toggleEcho: () => local.push('echo'),
    suspend: () => local.push('suspend'),
  });
  for (const ch of input) r.feed(Buffer.from(ch, 'latin1')); // byte at a time, like a typist
  return { wire: Buffer.concat(wire).toString('latin1'), local };
}

test('escape reader: forwarded escapes, local ones, stuffing and modes', () => {
  assert.deepEqual(keys({}, 'a&Bb&&c&xd\xff&D&L&M&Q'), { wire: 'a\xffBb&c&xd\xff\xff\xffD\xffL\xffM\xffQ', local: [] });
  assert.deepEqual(keys({}, '&?&I&E&Z&.'), { wire: '', local: ['help', 'info', 'echo', 'suspend', 'close'] });
  // &R only when the daemon offered OPTION=RESET.
  assert.equal(keys({}, '&R').wire, '');
  assert.equal(keys({ reset: true }, '&R').wire, '\xffR');
  // Monitor: no data, no break; &J makes a writer, after which data flows.
  assert.deepEqual(keys({ command: 'monitor' }, 'abc&B&E&Jxy'), { wire: '\xffJxy', local: [] });
  // Broadcast: no replay or monitor toggle.
  assert.equal(keys({ broadcast: true, consoles: ['a', 'b'] }, '&L&Mz').wire, 'z');
  // Another escape character.
  assert.equal(keys({}, '&.~B~~', 0x7e).wire, '&.\xffB~');
});
