// Known-answer tests for RMCP+ key derivation, every HMAC and AES framing
// (IPMI v2.0 §13.28–13.32; each block names where its vectors come from:
// ipmitool, ipmiconsole and ipmi_sim captures, a public hashcat example),
// plus decode robustness. The generated cases come from a seeded stream: each
// such test prints the seed, and CONCH_FUZZ_SEED=<seed> replays it.

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import {
  CipherState,
  cipherSuite,
  deriveK,
  rakp2Code,
  rakp3Code,
  rakp4Icv,
  sessionIntegrityKey,
  type RakpInputs,
} from '../src/ipmi/crypto.js';
import { decodeDatagram, decodeMessage, encodeRequest, encodeV15, encodeV20, openV20, PT_IPMI, PT_SOL } from '../src/ipmi/packet.js';
import { encodeOpenSessionRequest, decodeOpenSessionResponse, decodeRakp2, decodeRakp4 } from '../src/ipmi/rakp.js';
import { decodeSol, encodeSol } from '../src/ipmi/sol-packet.js';
import { IpmiDecodeError } from '../src/ipmi/errors.js';
import { Seeded, seedFrom } from './helpers/seeded.js';
import { HmacSha1 } from '../src/ipmi/sha1.js';

const h = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const USER = Buffer.from('admin');
const PASS = Buffer.from('password');
const GUID = h('a123456789abcdefa123456789abcdef');
const SIDM = 0xa0a2a3a4;

const SEED = seedFrom('CONCH_FUZZ_SEED');
/** this file's seeded stream, started afresh by each test that generates cases (so each replays alone) */
function seeded(t: { diagnostic(m: string): void }): Seeded {
  t.diagnostic(`seed ${SEED} (replay with CONCH_FUZZ_SEED=${SEED})`);
  return new Seeded(SEED);
}

describe('KAT-A: suite 3 (ipmitool <-> ipmi_sim capture)', () => {
  const inp: RakpInputs = {
    sidM: SIDM,
    sidC: h('82020000').readUInt32LE(0),
    rM: h('cabf0868e7155b6ac1dcc4ee769ab446'),
    rC: h('2f4ee516f3049b862209b68820c517f4'),
    guidC: GUID,
    role: 0x14,
    user: USER,
  };
  const s = cipherSuite(3);
  const sik = sessionIntegrityKey(s.auth, PASS, inp);
  test('RAKP2, RAKP3, SIK, RAKP4, K1, K2', () => {
    assert.equal(rakp2Code(s.auth, PASS, inp).toString('hex'), 'c06f2bcaecbccc39602f70616478a71cface07ce');
    assert.equal(rakp3Code(s.auth, PASS, inp).toString('hex'), '68fed9659b4c48a31ba0b5ea28f14b02ddc42e90');
    assert.equal(sik.toString('hex'), '83698cbc39704d705b8afcf3a993f8a05cc5a547');
    assert.equal(rakp4Icv(s.auth, sik, inp).toString('hex'), 'b1557b44af89fe88e566e9ba');
    assert.equal(deriveK(s.auth, sik, 1).toString('hex'), 'c8cee67c2b86c7706b3dd357ae82b81da074783e');
    assert.equal(deriveK(s.auth, sik, 2).toString('hex'), 'b5acff4f6eb396685f7b7cc95735152481fa2630');
  });
  test('a full encrypted, authenticated SOL packet (HMAC-SHA1-96, AES-CBC-128)', () => {
    const cs = new CipherState(s, deriveK(s.auth, sik, 1), deriveK(s.auth, sik, 2));
    const wire = h(
      '0600ff0706c1820200000b0000002000729b2a7f275e5d432440de0f2b52b7ef8206f3db56124316285ef317a1c39ca3ffff0207d7fa8cb3e60de8ca443c2541',
    );
    const sol = encodeSol({ seq: 1, ackSeq: 0, accepted: 0, flags: 0, data: Buffer.from('xyz\r') });
    const built = encodeV20(PT_SOL, inp.sidC, 11, sol, cs, h('729b2a7f275e5d432440de0f2b52b7ef'));
    assert.equal(built.toString('hex'), wire.toString('hex'));
    const d = decodeDatagram(wire);
    assert.equal(d.kind, 'v20');
    if (d.kind !== 'v20') return;
    assert.equal(d.seq, 11);
    const p = decodeSol(openV20(d, cs));
    assert.equal(p.data.toString(), 'xyz\r');
    // one flipped bit anywhere fails integrity
    const bad = Buffer.from(wire);
    bad[30] ^= 1;
    const bd = decodeDatagram(bad);
    assert.throws(() => openV20(bd as Extract<typeof bd, { kind: 'v20' }>, cs), /integrity check failed/);
  });
  test('decrypted IPMI payloads of that session', () => {
    assert.equal(encodeRequest(0x06, 0x3b, 14, Buffer.from([4])).toString('hex'), '2018c881383b0408');
    const m = decodeMessage(h('811c6320043b00049d'));
    assert.deepEqual([m.netFn, m.cmd, m.rqSeq, m.cc, m.data.toString('hex')], [0x07, 0x3b, 1, 0, '04']);
    assert.equal(encodeRequest(0x06, 0x48, 6, h('010 1c6 000000'.replace(/ /g, ''))).toString('hex'), '2018c88118480101c600000057');
    const a = decodeMessage(h('811c632018480000000000200000409725ffff66'));
    assert.equal(a.cc, 0);
    assert.equal(a.data.toString('hex'), '0000000020000040' + '9725ffff');
  });
});

describe('KAT-B: suite 17 (HMAC-SHA256, HMAC-SHA256-128)', () => {
  const inp: RakpInputs = {
    sidM: SIDM,
    sidC: h('44332211').readUInt32LE(0),
    rM: h('669251263709f28f261c69f641def6e8'),
    rC: h('101112131415161718191a1b1c1d1e1f'),
    guidC: GUID,
    role: 0x14,
    user: USER,
  };
  const s = cipherSuite(17);
  const sik = sessionIntegrityKey(s.auth, PASS, inp);
  const cs = new CipherState(s, deriveK(s.auth, sik, 1), deriveK(s.auth, sik, 2));
  test('RAKP2, RAKP3, SIK, RAKP4, K1, K2', () => {
    assert.equal(rakp2Code(s.auth, PASS, inp).toString('hex'), '689f971efbe86f41bca00259f2d156c0f1e7f72d463e00cdbbd3d122c373ec2c');
    assert.equal(rakp3Code(s.auth, PASS, inp).toString('hex'), '72a845290e0504673b2177d93a8dd844954778f3fe6b0476b2e7055a21663586');
    assert.equal(sik.toString('hex'), '245aaa5e375d24b463f373bd0e6566d7683f809f32def85441ec5af243dcbc9b');
    assert.equal(rakp4Icv(s.auth, sik, inp).toString('hex'), 'c694b223ecd82b26b6b9100c1fd85a2d');
    assert.equal(cs.k1.toString('hex'), 'a50990084beeaa26b05217d116f7b419c19b9e12928e83335d70c1cc3248d563');
    assert.equal(deriveK(s.auth, sik, 2).toString('hex'), '1fc37024d12ab82471df41b922e5613728488ea334b2cec8df3f577faa842541');
  });
  test('Set Session Privilege request packet and its reply', () => {
    const req = h(
      '0600ff0706c044332211030000002000f0148cbdb3b37ba1c14f3f88948c5f7a613e2f541ccfffc84339d7c65750642dffff0207794a049d305d7547738e97c38d32e520',
    );
    const built = encodeV20(PT_IPMI, inp.sidC, 3, encodeRequest(0x06, 0x3b, 1, Buffer.from([4])), cs, req.subarray(16, 32));
    assert.equal(built.toString('hex'), req.toString('hex'));
    const rsp = h(
      '0600ff0706c0a4a3a2a00b0000002000a0a1a2a3a4a5a6a7a8a9aaabacadaeafb92968fb9465ed68c2e5f29bc9f63401ffff0207f63caf5dc657c19771fa43d124922454',
    );
    const d = decodeDatagram(rsp);
    if (d.kind !== 'v20') throw new Error('not v20');
    assert.equal(d.sessionId, SIDM);
    const m = decodeMessage(openV20(d, cs));
    assert.deepEqual([m.netFn, m.cmd, m.cc, m.data.toString('hex')], [0x07, 0x3b, 0, '04']);
  });
});

describe('KAT-C: RAKP2 from a public hashcat -m 7300 example', () => {
  const salt = h(
    '1d828e9282000000ee08e19758b8f7ae5fad97dda696fd50494585843e868227d4aa50ca546ab3b2a123456789abcdefa123456789abcdef140561646d696e',
  );
  const inp: RakpInputs = {
    sidM: salt.readUInt32LE(0),
    sidC: salt.readUInt32LE(4),
    rM: salt.subarray(8, 24),
    rC: salt.subarray(24, 40),
    guidC: salt.subarray(40, 56),
    role: salt[56],
    user: salt.subarray(58),
  };
  test('matches with the right password only', () => {
    assert.equal(rakp2Code('hmac-sha1', Buffer.from('trinity'), inp).toString('hex'), '05aa0232b5adffddc6a6930e915029856aab3c10');
    assert.notEqual(rakp2Code('hmac-sha1', PASS, inp).toString('hex'), '05aa0232b5adffddc6a6930e915029856aab3c10');
  });
});

describe('framing vectors (suite 1, cleartext)', () => {
  test('Get Channel Auth Caps request in IPMI 1.5 framing', () => {
    const pkt = encodeV15(encodeRequest(0x06, 0x38, 0, Buffer.from([0x8e, 0x04])));
    assert.equal(pkt.toString('hex'), '0600ff07' + '00' + '00000000' + '00000000' + '09' + '2018c881' + '00388e04b5');
  });
  test('Get Channel Auth Caps reply', () => {
    const m = decodeMessage(h('811c63200038' + '000197060300000000' + '07'));
    assert.deepEqual([m.netFn, m.cmd, m.cc, m.data.toString('hex')], [0x07, 0x38, 0, '0197060300000000']);
  });
  test('Open Session request payload', () => {
    const b = encodeOpenSessionRequest(0, 0, SIDM, cipherSuite(1));
    assert.equal(b.toString('hex'), '00000000a4a3a2a0000000080100000001000008000000000200000800000000');
  });
  test('SOL packet header', () => {
    const p = decodeSol(Buffer.concat([h('05000000'), Buffer.from('host-line 10\r\n')]));
    assert.equal(p.seq, 5);
    assert.equal(encodeSol({ seq: 0, ackSeq: 5, accepted: p.data.length, flags: 0, data: Buffer.alloc(0) }).toString('hex'), '00050e00');
  });
  test('AuthCode equals HMAC-SHA1-96 / HMAC-SHA256-128 from createHmac for every length up to 600', (t) => {
    const rnd = seeded(t);
    for (const [suite, alg, len] of [[3, 'sha1', 12], [17, 'sha256', 16]] as const) {
      const k1 = rnd.bytes(alg === 'sha1' ? 20 : 32);
      const cs = new CipherState(cipherSuite(suite), k1, rnd.bytes(32));
      for (let n = 0; n <= 600; n += n < 80 ? 1 : 37) {
        const d = rnd.bytes(n);
        const want = crypto.createHmac(alg, k1).update(d).digest().subarray(0, len);
        assert.equal(cs.authCode(d).toString('hex'), want.toString('hex'), `suite ${suite} length ${n}`);
      }
    }
  });
  test('AES: the in-place CBC equals a plain AES-CBC-128 for every payload length up to 300', (t) => {
    const rnd = seeded(t);
    const cs = new CipherState(cipherSuite(3), Buffer.alloc(20, 1), rnd.bytes(20));
    for (let n = 0; n <= 300; n++) {
      const p = rnd.bytes(n);
      const iv = rnd.bytes(16);
      const padN = (16 - ((n + 1) % 16)) % 16;
      const plain = Buffer.concat([p, Buffer.from([...Array(padN).keys()].map((i) => i + 1)), Buffer.from([padN])]);
      const c = crypto.createCipheriv('aes-128-cbc', cs.aesKey, iv);
      c.setAutoPadding(false);
      const want = Buffer.concat([iv, c.update(plain), c.final()]);
      assert.equal(cs.encrypt(p, iv).toString('hex'), want.toString('hex'), `length ${n}`);
      assert.deepEqual(cs.decrypt(want), p, `length ${n}`);
    }
  });
  test('AES pad: every length round-trips, pad length 16 (OpenBMC) accepted', (t) => {
    const rnd = seeded(t);
    const cs = new CipherState(cipherSuite(3), Buffer.alloc(20, 1), Buffer.alloc(20, 2));
    for (let n = 0; n < 40; n++) {
      const p = rnd.bytes(n);
      assert.deepEqual(cs.decrypt(cs.encrypt(p)), p);
    }
    // 15 bytes + pad 01..10 + 10 = 32 bytes of plaintext
    const plain = Buffer.concat([Buffer.alloc(15, 0x41), Buffer.from([...Array(16).keys()].map((i) => i + 1)), Buffer.from([16])]);
    const iv = Buffer.alloc(16, 7);
    const c = crypto.createCipheriv('aes-128-cbc', cs.aesKey, iv);
    c.setAutoPadding(false);
    const field = Buffer.concat([iv, c.update(plain), c.final()]);
    assert.deepEqual(cs.decrypt(field), Buffer.alloc(15, 0x41));
  });
});

describe('malformed input is a decode error, never a crash', () => {
  const cs = new CipherState(cipherSuite(3), Buffer.alloc(20, 1), Buffer.alloc(20, 2));
  const good = encodeV20(PT_IPMI, 1234, 5, encodeRequest(6, 1, 3), cs);
  test('truncations, random bytes, bit flips', (t) => {
    const rnd = seeded(t);
    const tryAll = (b: Buffer): void => {
      try {
        const d = decodeDatagram(b);
        if (d.kind === 'v20') {
          const p = openV20(d, cs);
          decodeMessage(p);
          decodeSol(p);
          decodeOpenSessionResponse(p);
          decodeRakp2(p);
          decodeRakp4(p);
        } else if (d.kind === 'v15') decodeMessage(d.msg);
      } catch (e) {
        if (!(e instanceof IpmiDecodeError)) throw e;
      }
    };
    for (let n = 0; n <= good.length; n++) tryAll(good.subarray(0, n));
    for (let i = 0; i < 20000; i++) {
      const b = Buffer.from(good);
      b[rnd.int(b.length)] = rnd.int(256);
      tryAll(b);
      tryAll(rnd.bytes(rnd.int(80)));
    }
  });
});

test('HMAC-SHA1 of the per-packet AuthCode (sha1.ts) equals node:crypto for every length across the block boundaries, keys of 0-64 bytes', () => {
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 0xff;
  for (const keyLen of [0, 1, 20, 32, 63, 64]) {
    const key = Buffer.from(Array.from({ length: keyLen }, rnd));
    const mac = new HmacSha1(key);
    for (let len = 0; len <= 300; len++) {
      const data = Buffer.from(Array.from({ length: len }, rnd));
      const want = crypto.createHmac('sha1', key).update(data).digest();
      assert.deepEqual(mac.digest(data), want, `key ${keyLen} bytes, data ${len} bytes`);
    }
  }
  // RFC 2202 test case 2
  assert.equal(new HmacSha1(Buffer.from('Jefe')).digest(Buffer.from('what do ya want for nothing?')).toString('hex'), 'effcdf6ae5eb2fa2d27416d5f184df9c259a7c79');
});
