// Unit tests of telnet option negotiation (RFC 1143 Q method) and of the
// streaming telnet parser/encoder.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DO,
  DONT,
  IAC,
  MAX_ANSWERS_PER_OPTION,
  OPT_BINARY,
  OPT_ECHO,
  OPT_SGA,
  SB,
  SE,
  TelnetOptions,
  WILL,
  WONT,
} from '../src/devices/telnet-options.js';
import { BREAK_BYTES, TelnetCodec } from '../src/devices/telnet-codec.js';

const TTYPE = 24;
const NAWS = 31;

/** Feed a peer message to our side and return what we answer. */
function recv(o: TelnetOptions, cmd: number, opt: number): number[] {
  return o.receive(cmd, opt);
}

describe('RFC 1143 option negotiation', () => {
  test('opening requests are what conman HEAD sends', () => {
    const o = new TelnetOptions();
    assert.deepEqual(o.start(), [
      IAC, DO, OPT_BINARY, IAC, DO, OPT_ECHO, IAC, DO, OPT_SGA,
      IAC, WILL, OPT_BINARY, IAC, WILL, OPT_SGA,
    ]);
    assert.equal(o.himState(OPT_ECHO), 'WANTYES');
    assert.equal(o.usState(OPT_SGA), 'WANTYES');
  });

  test('the peer acknowledging our DO with WILL (and WILL with DO) gets no reply', () => {
    const o = new TelnetOptions();
    o.start();
    for (const opt of [OPT_BINARY, OPT_ECHO, OPT_SGA]) assert.deepEqual(recv(o, WILL, opt), []);
    for (const opt of [OPT_BINARY, OPT_SGA]) assert.deepEqual(recv(o, DO, opt), []);
    assert.equal(o.himState(OPT_ECHO), 'YES');
    assert.equal(o.usState(OPT_BINARY), 'YES');
    // a repeated acknowledgment is still not answered
    assert.deepEqual(recv(o, WILL, OPT_ECHO), []);
    assert.deepEqual(recv(o, DO, OPT_SGA), []);
  });

  test('a refusal of our request is not answered and not retried', () => {
    const o = new TelnetOptions();
    o.start();
    assert.deepEqual(recv(o, WONT, OPT_ECHO), []);
    assert.deepEqual(recv(o, DONT, OPT_BINARY), []);
    assert.equal(o.himState(OPT_ECHO), 'NO');
    assert.equal(o.usState(OPT_BINARY), 'NO');
    assert.deepEqual(recv(o, WONT, OPT_ECHO), []);
  });

  test('DO for an unknown option is refused with exactly one WONT', () => {
    const o = new TelnetOptions();
    o.start();
    assert.deepEqual(recv(o, DO, TTYPE), [IAC, WONT, TTYPE]);
    // the peer's DONT that follows is an acknowledgment: nothing more
    assert.deepEqual(recv(o, DONT, TTYPE), []);
    assert.equal(o.usState(TTYPE), 'NO');
  });

  test('WILL for an unknown option is refused with one DONT; DO ECHO is refused (we never echo)', () => {
    const o = new TelnetOptions();
    o.start();
    assert.deepEqual(recv(o, WILL, NAWS), [IAC, DONT, NAWS]);
    assert.deepEqual(recv(o, WONT, NAWS), []);
    assert.deepEqual(recv(o, DO, OPT_ECHO), [IAC, WONT, OPT_ECHO]);
  });

  test('a peer offering an option we want before we asked gets it accepted once', () => {
    const o = new TelnetOptions();
    assert.deepEqual(recv(o, WILL, OPT_SGA), [IAC, DO, OPT_SGA]);
    assert.deepEqual(recv(o, WILL, OPT_SGA), []);
    // our own later request for it sends nothing: it is already on
    assert.deepEqual(o.askHim(OPT_SGA, true), []);
  });

  test('a peer flipping WILL/WONT forever: one reply per flip, never a new request', () => {
    const o = new TelnetOptions();
    o.start();
    recv(o, WILL, OPT_ECHO); // ECHO now YES
    let peerBytes = 0;
    let ourBytes = 0;
    for (let i = 0; i < 1000; i++) {
      const cmd = i % 2 === 0 ? WONT : WILL;
      peerBytes += 3;
      const r = recv(o, cmd, OPT_ECHO);
      ourBytes += r.length;
      // the only allowed reply is the acknowledgment of the peer's change
      if (r.length) assert.deepEqual(r, [IAC, cmd === WILL ? DO : DONT, OPT_ECHO]);
      // the peer's acknowledgment of our acknowledgment would be a repeat: never answered
      assert.deepEqual(recv(o, cmd, OPT_ECHO), []);
    }
    assert.ok(ourBytes <= peerBytes, `we sent ${ourBytes} bytes for ${peerBytes} from the peer`);
    // and a peer that never stops gets a bounded number of answers
    assert.ok(ourBytes <= 3 * MAX_ANSWERS_PER_OPTION, `we sent ${ourBytes} bytes`);
  });

  test('the queue bit: disable requested while enable is pending is sent after the answer', () => {
    const o = new TelnetOptions();
    assert.deepEqual(o.askHim(OPT_ECHO, true), [IAC, DO, OPT_ECHO]);
    assert.deepEqual(o.askHim(OPT_ECHO, false), []); // queued, not sent
    assert.deepEqual(recv(o, WILL, OPT_ECHO), [IAC, DONT, OPT_ECHO]);
    assert.equal(o.himState(OPT_ECHO), 'WANTNO');
    assert.deepEqual(recv(o, WONT, OPT_ECHO), []);
    assert.equal(o.himState(OPT_ECHO), 'NO');
  });

  // Two ends talking to each other must go quiet: the loop conman#9 had.
  type Peer = (cmd: number, opt: number) => number[];
  function converse(o: TelnetOptions, peer: Peer, opening: number[]): { rounds: number; ourBytes: number } {
    let toPeer = o.start();
    let toUs = opening;
    let ourBytes = toPeer.length;
    let rounds = 0;
    while (toPeer.length || toUs.length) {
      if (++rounds > 100) assert.fail('negotiation did not settle (loop)');
      const nextToUs: number[] = [];
      for (let i = 0; i + 2 < toPeer.length; i += 3) nextToUs.push(...peer(toPeer[i + 1], toPeer[i + 2]));
      const nextToPeer: number[] = [];
      for (let i = 0; i + 2 < toUs.length; i += 3) nextToPeer.push(...o.receive(toUs[i + 1], toUs[i + 2]));
      ourBytes += nextToPeer.length;
      toPeer = nextToPeer;
      toUs = [...nextToUs];
    }
    return { rounds, ourBytes };
  }

  test('against another RFC 1143 end with crossing requests: settles', () => {
    const them = new TelnetOptions({ us: [OPT_BINARY, OPT_SGA, OPT_ECHO], him: [OPT_BINARY, OPT_SGA] });
    const opening = [
      ...them.askUs(OPT_SGA, true), ...them.askUs(OPT_ECHO, true), ...them.askHim(OPT_SGA, true),
      ...them.askHim(OPT_BINARY, true), ...them.askUs(TTYPE, true),
    ];
    const { ourBytes } = converse(new TelnetOptions(), (c, p) => them.receive(c, p), opening);
    assert.ok(ourBytes <= 15 + 3, `sent ${ourBytes} bytes`);
  });

  test('against a naive peer that answers every message with its mirror (0.2.7 style): settles', () => {
    const mirror: Peer = (cmd, opt) => [IAC, cmd === DO ? WILL : cmd === DONT ? WONT : cmd === WILL ? DO : DONT, opt];
    const opening = [IAC, DO, TTYPE, IAC, WILL, OPT_ECHO, IAC, WONT, OPT_SGA];
    converse(new TelnetOptions(), mirror, opening);
  });

  test('against a contrary peer that refuses and re-offers everything: settles', () => {
    const contrary: Peer = (cmd, opt) => [IAC, cmd === DO ? WONT : cmd === DONT ? WILL : cmd === WILL ? DONT : DO, opt];
    converse(new TelnetOptions(), contrary, [IAC, DO, NAWS, IAC, WILL, OPT_BINARY]);
  });
});

/** Decode `input` in the given pieces; collect data and replies. */
function decodeIn(pieces: Buffer[], codec = new TelnetCodec()): { data: Buffer; reply: Buffer } {
  const data: Buffer[] = [];
  const reply: Buffer[] = [];
  for (const p of pieces) {
    const r = codec.decode(p);
    data.push(Buffer.from(r.data));
    reply.push(Buffer.from(r.reply));
  }
  return { data: Buffer.concat(data), reply: Buffer.concat(reply) };
}

describe('telnet stream parser', () => {
  const stream = Buffer.from([
    ...Buffer.from('login: '),
    IAC, IAC, // data 0xFF
    IAC, DO, TTYPE, // refused
    ...Buffer.from('a'),
    IAC, SB, TTYPE, 1, IAC, IAC, 0x41, IAC, SE, // skipped
    IAC, 0xf1, // NOP
    IAC, WILL, OPT_ECHO, // not asked on this codec: accepted
    ...Buffer.from('b\r\n'),
  ]);
  const want = Buffer.concat([Buffer.from('login: '), Buffer.from([0xff]), Buffer.from('ab\r\n')]);
  const wantReply = Buffer.from([IAC, WONT, TTYPE, IAC, DO, OPT_ECHO]);

  test('commands are removed, IAC IAC is one 0xFF, replies are produced', () => {
    const r = decodeIn([stream]);
    assert.deepEqual(r.data, want);
    assert.deepEqual(r.reply, wantReply);
  });

  test('the same stream split at every possible point gives the same result', () => {
    for (let cut = 1; cut < stream.length; cut++) {
      const r = decodeIn([stream.subarray(0, cut), stream.subarray(cut)]);
      assert.deepEqual(r.data, want, `cut at ${cut}`);
      assert.deepEqual(r.reply, wantReply, `cut at ${cut}`);
    }
    const bytes = [...stream].map((b) => Buffer.from([b]));
    const r = decodeIn(bytes);
    assert.deepEqual(r.data, want);
    assert.deepEqual(r.reply, wantReply);
  });

  test('CR NUL is CR unless the peer sends binary', () => {
    assert.deepEqual(decodeIn([Buffer.from('x\r'), Buffer.from('\0y\0')]).data, Buffer.from('x\ry\0'));
    const codec = new TelnetCodec();
    codec.options.receive(WILL, OPT_BINARY); // the peer now sends binary
    assert.deepEqual(decodeIn([Buffer.from('x\r\0y')], codec).data, Buffer.from('x\r\0y'));
  });

  test('IAC followed by a non-command byte keeps both bytes', () => {
    assert.deepEqual(decodeIn([Buffer.from([0x41, IAC]), Buffer.from([0x42, 0x43])]).data, Buffer.from([0x41, IAC, 0x42, 0x43]));
  });

  test('a subnegotiation that never ends is abandoned, later data flows', () => {
    const junk = Buffer.alloc(5000, 0x61);
    const r = decodeIn([Buffer.from([IAC, SB, TTYPE]), junk, Buffer.from('ok')]);
    assert.ok(r.data.toString().endsWith('ok'));
    assert.ok(r.data.length < 5000 - 4000 + 10, 'most of the subnegotiation is skipped');
  });

  test('random bytes in random pieces never throw', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000);
    const codec = new TelnetCodec();
    codec.start();
    for (let i = 0; i < 5000; i++) {
      const len = Math.floor(rnd() * 40);
      const b = Buffer.alloc(len);
      // plenty of IACs and command bytes
      for (let j = 0; j < len; j++) b[j] = rnd() < 0.3 ? 0xf0 + Math.floor(rnd() * 16) : Math.floor(rnd() * 256);
      const r = codec.decode(b);
      assert.ok(r.data.length <= len + 1);
      assert.equal(r.reply.length % 3, 0);
    }
  });

  test('encode doubles every 0xFF; break is IAC BRK', () => {
    assert.deepEqual(TelnetCodec.encode(Buffer.from([1, 0xff, 2, 0xff, 0xff])), Buffer.from([1, 0xff, 0xff, 2, 0xff, 0xff, 0xff, 0xff]));
    const plain = Buffer.from('abc');
    assert.equal(TelnetCodec.encode(plain), plain);
    assert.deepEqual(BREAK_BYTES, Buffer.from([0xff, 0xf3]));
  });
});
