// Option strings (logopts, seropts, testopts, ipmiopts) and %-specifier
// expansion. strftime fields are compared with GNU date(1).

import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  DEFAULT_TEST_OPTS_SPEC,
  OptError,
  parseIpmiOpts,
  parseLogOpts,
  parseSerOpts,
  parseTestOpts,
  resolveTestOpts,
} from '../src/config/opts.js';
import { deviceSpecifier, expandSpecifiers, sanitizeSpecifier } from '../src/config/specifiers.js';

/** Asserts an OptError with this message (and offset, if given). */
function optErr(fn: () => unknown, message: string | RegExp, offset?: number): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof OptError, `expected OptError, got ${String(e)}`);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    if (offset !== undefined) assert.equal(e.offset, offset);
    return true;
  });
}

describe('logopts', () => {
  test('words, separators and defaults', () => {
    assert.deepEqual(parseLogOpts('lock,nosanitize,notimestamp'), { lock: true, sanitize: false, timestamp: false });
    assert.deepEqual(parseLogOpts('NOLOCK; sanitize  timestamp'), { lock: false, sanitize: true, timestamp: true });
    assert.deepEqual(parseLogOpts('timestamp', { lock: false, sanitize: true, timestamp: false }), {
      lock: false,
      sanitize: true,
      timestamp: true,
    });
  });
  test('unknown words and empty strings are errors', () => {
    optErr(() => parseLogOpts('lock,sanitise'), /^unknown logopts word "sanitise"; expected lock\|nolock/, 5);
    optErr(() => parseLogOpts(' , '), /^logopts is empty/);
  });
});

describe('seropts', () => {
  test('partial forms keep the other defaults', () => {
    assert.deepEqual(parseSerOpts('115200'), { bps: 115200, dataBits: 8, parity: 'none', stopBits: 1 });
    assert.deepEqual(parseSerOpts('19200,7'), { bps: 19200, dataBits: 7, parity: 'none', stopBits: 1 });
    assert.deepEqual(parseSerOpts('9600,7E'), { bps: 9600, dataBits: 7, parity: 'even', stopBits: 1 });
    assert.deepEqual(parseSerOpts('57600,8o2'), { bps: 57600, dataBits: 8, parity: 'odd', stopBits: 2 });
  });
  test('unsupported speeds round down like conman; too slow is an error', () => {
    assert.equal(parseSerOpts('100000').bps, 57600);
    assert.equal(parseSerOpts('921600').bps, 460800);
    assert.equal(parseSerOpts('50').bps, 50);
    optErr(() => parseSerOpts('49'), 'seropts bps must be at least 50, got "49"', 0);
  });
  test('bad fields', () => {
    optErr(() => parseSerOpts('9600,4n1'), 'seropts databits must be 5..8, got "4"', 5);
    optErr(() => parseSerOpts('9600,8x1'), 'seropts parity must be n, e or o, got "x"', 6);
    optErr(() => parseSerOpts('9600,8n3'), 'seropts stopbits must be 1 or 2, got "3"', 7);
    optErr(() => parseSerOpts('fast'), 'bad seropts "fast": expected "bps[,databits[parity[stopbits]]]" such as "115200,8n1"');
    optErr(() => parseSerOpts('9600 8n1'), /^bad seropts "9600 8n1"/);
  });
});

describe('testopts', () => {
  test('items in any order, hex allowed, probability capped', () => {
    assert.deepEqual(parseTestOpts('p:250,n:10,b:0x10,m:20'), { bytes: 16, maxMs: 20, minMs: 10, prob: 100 });
  });
  test('delay resolution follows conman', () => {
    const r = (s: string): unknown => resolveTestOpts(parseTestOpts(s));
    assert.deepEqual(resolveTestOpts(DEFAULT_TEST_OPTS_SPEC), { bytes: 1024, maxMs: 100, minMs: 100, prob: 100 });
    assert.deepEqual(r('n:10'), { bytes: 1024, maxMs: 100, minMs: 100, prob: 100 }); // no max: fixed 100 ms
    assert.deepEqual(r('m:500'), { bytes: 1024, maxMs: 500, minMs: 500, prob: 100 });
    assert.deepEqual(r('m:50,n:80'), { bytes: 1024, maxMs: 50, minMs: 50, prob: 100 });
    assert.deepEqual(r('b:1,m:10,n:5,p:30'), { bytes: 1, maxMs: 10, minMs: 5, prob: 30 });
  });
  test('bad items', () => {
    optErr(() => parseTestOpts('b:1,q:2'), /^bad testopts item "q:2"/, 4);
    optErr(() => parseTestOpts('b:-1'), 'testopts b: needs a non-negative integer, got "-1"', 2);
    optErr(() => parseTestOpts('m:ten'), 'testopts m: needs a non-negative integer, got "ten"', 2);
    optErr(() => parseTestOpts('b1024'), /^bad testopts item "b1024"/, 0);
  });
});

describe('ipmiopts', () => {
  test('tagged form', () => {
    const o = parseIpmiOpts('U:admin,P:secret,K:0x00ff00,C:17,L:op,W:solpayloadsize,w:AUTHCAP');
    assert.equal(o.user, 'admin');
    assert.deepEqual(o.password, Buffer.from('secret'));
    assert.deepEqual(o.kg, Buffer.from([0, 0xff, 0]));
    assert.equal(o.cipherSuite, 17);
    assert.equal(o.privilege, 'operator');
    assert.deepEqual(o.workarounds, ['solpayloadsize', 'authcap']);
  });
  test('hex password stops at the first NUL; empty values mean the default', () => {
    assert.deepEqual(parseIpmiOpts('P:0x41420043').password, Buffer.from('AB'));
    const base = parseIpmiOpts('U:x,C:3,L:user,K:kg');
    const o = parseIpmiOpts('C:,L:,K:', base);
    assert.deepEqual([o.user, o.cipherSuite, o.privilege, o.kg], ['x', null, 'admin', null]);
  });
  test('workaround "none", "default" and numeric masks', () => {
    assert.deepEqual(parseIpmiOpts('W:none').workarounds, ['none']);
    assert.deepEqual(parseIpmiOpts('W:none,W:sun20').workarounds, ['sun20']);
    assert.deepEqual(parseIpmiOpts('W:sun20,W:default').workarounds, []);
    assert.deepEqual(parseIpmiOpts('W:0x03000000').workarounds, ['solpayloadsize', 'solport']);
    assert.deepEqual(parseIpmiOpts('W:0').workarounds, ['none']);
  });
  test('old positional form', () => {
    const o = parseIpmiOpts('root,pw,-,intel20,solstatus');
    assert.equal(o.user, 'root');
    assert.deepEqual(o.password, Buffer.from('pw'));
    assert.equal(o.kg, null);
    assert.deepEqual(o.workarounds, ['intel20', 'solstatus']);
  });
  test('errors never echo secrets', () => {
    optErr(() => parseIpmiOpts('U:a,W:fast'), /^unknown IPMI workaround "fast"; known: authcap, .*solchannelsupport, default, none$/, 6);
    optErr(() => parseIpmiOpts('W:0x10000000'), 'invalid IPMI workaround flags "0x10000000"', 2);
    optErr(() => parseIpmiOpts('C:4'), /^invalid IPMI cipher suite "4"; supported: 0, 1, 2, 3, 6/, 2);
    optErr(() => parseIpmiOpts('L:root'), 'invalid IPMI privilege level "root"; expected user, op or admin', 2);
    optErr(() => parseIpmiOpts(`U:${'u'.repeat(17)}`), 'IPMI username exceeds 16 bytes', 2);
    optErr(() => parseIpmiOpts(`U:a,P:${'p'.repeat(21)}`), 'IPMI password exceeds 20 bytes', 6);
    optErr(() => parseIpmiOpts(`K:0x${'ab'.repeat(21)}`), 'IPMI K_g exceeds 40 hex digits', 2);
    optErr(() => parseIpmiOpts('P:0xabc'), 'IPMI password in hex needs an even number of digits', 2);
    optErr(() => parseIpmiOpts('P:p\u00e4ss'), 'IPMI password has non-ASCII characters; write it as 0x followed by hex digits', 2);
    optErr(() => parseIpmiOpts('U:a,P:x,y,z'), /^ipmiopts item without a key; .*P:0x/, 8);
    // after a password, even a key-shaped item may be the password's tail: not echoed
    optErr(() => parseIpmiOpts('U:a,P:x,s:cret'), /^ipmiopts item without a key;/, 8);
    optErr(() => parseIpmiOpts('U:a,Q:1'), 'unknown ipmiopts key "Q:"; expected U:, P:, K:, C:, L: or W: followed by a value', 4);
  });
  test('password and K_g stay out of JSON and inspect output', () => {
    const o = parseIpmiOpts('U:admin,P:hunter2,K:kgsecret');
    assert.doesNotMatch(JSON.stringify({ o }), /hunter2|kgsecret/);
    assert.match(JSON.stringify(o), /"user":"admin"/);
    const inspected = execFileSync(process.execPath, [
      '--input-type=module',
      '-e',
      `import { parseIpmiOpts } from ${JSON.stringify(new URL('../src/config/opts.js', import.meta.url).href)};` +
        `console.log(parseIpmiOpts('P:hunter2'))`,
    ]).toString();
    assert.doesNotMatch(inspected, /hunter2/);
    assert.match(inspected, /<redacted>/);
  });
});

describe('specifiers', () => {
  // GNU date(1) is the reference for the strftime fields (local time, same TZ)
  const fields = 'd g G H j m M s S u U V w W y Y'.split(' ');
  const dates = [
    '2024-01-07 05:06:09', // a Sunday in ISO week 1
    '2021-01-03 23:59:59', // ISO year 2020, week 53
    '2019-12-30 00:00:00', // ISO year 2020, week 1
    '2024-02-29 12:30:45', // leap day
    '2023-12-31 18:00:00',
    '2027-01-01 00:00:01', // a Friday: %U and %W 00
  ];
  for (const d of dates) {
    test(`strftime fields match date(1) for ${d}`, () => {
      const fmt = fields.map((f) => `%${f}`).join('|');
      const want = execFileSync('date', ['-d', d, `+${fmt}`]).toString().trim();
      const [ymd, hms] = d.split(' ');
      const [y, mo, da] = ymd.split('-').map(Number);
      const [h, mi, se] = hms.split(':').map(Number);
      assert.equal(expandSpecifiers(fmt, { now: new Date(y, mo - 1, da, h, mi, se) }), want);
    });
  }

  test('%N %D %P %% and unknown specifiers', () => {
    const now = new Date(2024, 4, 6);
    assert.equal(
      expandSpecifiers('/var/log/%N/%D-%Y%m%d.%P.log', { name: 'n1', dev: 'ttyS0', pid: 42, now }),
      '/var/log/n1/ttyS0-20240506.42.log',
    );
    assert.equal(expandSpecifiers('100%% %q %Z end%', { now }), '100% %q %Z end%');
    assert.equal(expandSpecifiers('%N-%D', {}), '%N-%D', 'no name or dev: kept as written');
    assert.equal(expandSpecifiers('%P', {}), String(process.pid));
  });

  test('%N and %D are sanitised: non-printables, spaces and "/" become "_"', () => {
    assert.equal(sanitizeSpecifier('a/b c\td\x01e\u00e9'), 'a_b_c_d_e_');
    assert.equal(expandSpecifiers('%N.log', { name: '../../etc/passwd' }), '.._.._etc_passwd.log');
    assert.equal(expandSpecifiers('%D', { dev: 'h:7001' }), 'h:7001');
  });

  test('what %D stands for per device type', () => {
    const ser = { bps: 9600, dataBits: 8, parity: 'none', stopBits: 1 } as const;
    assert.equal(deviceSpecifier({ type: 'telnet', host: 'ts1', port: 7001 }), 'ts1:7001');
    assert.equal(deviceSpecifier({ type: 'serial', path: '/dev/ttyS0', opts: ser }), 'ttyS0');
    assert.equal(deviceSpecifier({ type: 'unix', path: '/run/vm/n1.sock' }), 'n1.sock');
    assert.equal(deviceSpecifier({ type: 'process', argv: ['/usr/lib/conman/exec/ipmitool.exp', 'h'] }), 'ipmitool.exp');
    assert.equal(deviceSpecifier({ type: 'test', opts: { bytes: 1, maxMs: 1, minMs: 1, prob: 1 } }), 'test');
  });
});
