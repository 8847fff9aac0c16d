// Console matching and the protocol lexer. conmand uses glibc's fnmatch() and
// regcomp(REG_EXTENDED|REG_ICASE); conch's own matchers are checked against
// glibc itself (called from python3 through ctypes), so "the same as conman"
// is measured, not assumed.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { globMatch } from '../src/protocol/glob.js';
import { compileEre, EreError, E } from '../src/protocol/ere.js';
import { lexLine, encodeQuoted, decodeValue } from '../src/protocol/lex.js';
import { parseGreeting, parseRequest } from '../src/protocol/request.js';

const NAMES = ['n1', 'n2', 'n10', 'N1', 'node-a', 'node.b', 'a/b', '.hidden', 'x[1]', 'x1', 'we*ird', 'rack2-n05'];

const GLOBS = [
  '*', 'n?', 'n*', 'N*', '[nN]1', '[!n]*', '[^n]*', 'n[0-9]', 'n[0-9][0-9]', 'n[[:digit:]]*', '*[[:upper:]]*',
  '[z-a]*', '[]', 'x[1]', 'x\\[1]', 'x[[]1]', '\\*', 'we\\*ird', 'we*ird', '*/*', '.*', '[a-]*', 'n[', '[[:bogus:]]',
  'rack?-n0[1-5]', '*-*', '[[.n.]]1',
];

const ERES = [
  'n1', 'N1', 'n[0-9]+', 'n.', 'n.*', '(n|x)1', 'node[-.][ab]', '.*[[:upper:]].*', 'n1|n2', 'rack[0-9]-n0{1,2}5', 'n1{2}',
  'x\\[1\\]', 'x[[]1]', '(n)\\1', 'a/b', '\\.hidden', 'n(1|10)', 'n1$', '^n1', 'n1)', 'a{,2}', 'n1**', 'n1+?',
  // errors
  '((', '(', '[a', '[[:foo:]]', '*a', 'a{2,1}', 'a{1', '\\', '[z-a]', 'a|*', '{1}', '\\1', 'a{99999}', 'a{x}', '[[.foo.]]', '[',
];

interface GlibcAnswer {
  glob: boolean[][];
  ere: (boolean[] | string)[];
}

/** Ask glibc: fnmatch(p, n, 0) and regcomp/regexec whole-name matches (or the regerror text). */
function glibc(): GlibcAnswer {
  const py = `
import ctypes, ctypes.util, json, sys
libc = ctypes.CDLL(ctypes.util.find_library('c'))
q = json.load(sys.stdin)
names = [n.encode() for n in q['names']]
out = {'glob': [], 'ere': []}
for p in q['globs']:
    out['glob'].append([libc.fnmatch(p.encode(), n, 0) == 0 for n in names])
class M(ctypes.Structure):
    _fields_ = [('so', ctypes.c_int), ('eo', ctypes.c_int)]   # regoff_t is int in glibc
rx = ctypes.create_string_buffer(1024)
err = ctypes.create_string_buffer(256)
for p in q['eres']:
    rc = libc.regcomp(rx, p.encode(), 1 | 2)          # REG_EXTENDED | REG_ICASE
    if rc:
        libc.regerror(rc, rx, err, 256)
        out['ere'].append(err.value.decode())
        continue
    row = []
    for n in names:
        m = M()
        ok = libc.regexec(rx, n, 1, ctypes.byref(m), 0) == 0
        row.append(ok and m.so == 0 and m.eo == len(n))
    out['ere'].append(row)
    libc.regfree(rx)
print(json.dumps(out))
`;
  const r = spawnSync('python3', ['-c', py], {
    input: JSON.stringify({ names: NAMES, globs: GLOBS, eres: ERES }),
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout) as GlibcAnswer;
}

const want = glibc();
assert.equal(want.glob.length, GLOBS.length);
assert.equal(want.ere.length, ERES.length);

test('glob mode matches exactly what glibc fnmatch(pattern, name, 0) matches', () => {
  GLOBS.forEach((p, i) => {
    const ours = NAMES.map((n) => globMatch(p, n));
    assert.deepEqual(ours, want.glob[i], `glob ${JSON.stringify(p)} over ${NAMES.join(' ')}`);
  });
});

/** Valid in glibc, refused by conch: back-references cannot be matched in linear time. */
const REFUSED_BACKREFS = new Set(['(n)\\1']);

test('regex mode: same whole-name, case-insensitive matches and the same regerror texts as glibc', () => {
  ERES.forEach((p, i) => {
    const w = REFUSED_BACKREFS.has(p) ? E.backrefUnsupported : want.ere[i];
    let ours: boolean[] | string;
    try {
      const re = compileEre(p);
      ours = NAMES.map((n) => re.test(n));
    } catch (e) {
      if (!(e instanceof EreError)) throw e;
      ours = e.message;
    }
    assert.deepEqual(ours, w, `regex ${JSON.stringify(p)}`);
  });
});

test('lexer: keywords any case, bare words as strings, quotes, comments, CR as end of line', () => {
  const t = lexLine(Buffer.from("hello User=bob tty = \"pts/1\" 42 -7 # USER='x'\n", 'latin1'));
  assert.deepEqual(t, [
    { kind: 'kw', kw: 'HELLO' },
    { kind: 'kw', kw: 'USER' },
    { kind: 'char', ch: '=' },
    { kind: 'str', value: 'bob', quoted: false, nonAscii: false },
    { kind: 'kw', kw: 'TTY' },
    { kind: 'char', ch: '=' },
    { kind: 'str', value: 'pts/1', quoted: true, nonAscii: false },
    { kind: 'int', value: '42' },
    { kind: 'int', value: '-7' },
  ]);
  assert.deepEqual(lexLine(Buffer.from("OK\rCONSOLE='x'\n")), [{ kind: 'kw', kw: 'OK' }]);
  assert.deepEqual(lexLine(Buffer.from("X='abc\n")), [
    { kind: 'str', value: 'X', quoted: false, nonAscii: false },
    { kind: 'char', ch: '=' },
    { kind: 'error', msg: 'unterminated quoted string' },
  ]);
});

test("quote encoding: ' and \" travel with the high bit set, other high bytes are flagged", () => {
  assert.equal(encodeQuoted(`it's "x"`).toString('latin1'), "'it\xa7s \xa2x\xa2'");
  assert.deepEqual(decodeValue(Buffer.from('it\xa7s \xa2x\xa2', 'latin1')), { value: 'it\'s "x"', nonAscii: false });
  assert.equal(decodeValue(Buffer.from('caf\xc3\xa9', 'latin1')).nonAscii, true);
});

test('greeting and request parsing is as lenient as conmand, later USER wins', () => {
  const g = parseGreeting(Buffer.from("junk HELLO FOO=1 USER='a' TTY='' USER='b' TTY=pts\n"));
  assert.deepEqual(g, { ok: true, value: { user: 'b', tty: 'pts', password: null, via: null } });
  // a cluster node passing its client on says so (src/cluster/proxy.ts); conmand ignores the key
  const via = parseGreeting(Buffer.from("HELLO USER='a' VIA='n2'\n"));
  assert.ok(via.ok && via.value.via === 'n2' && via.value.user === 'a');
  // conch's addition: a password (base64 of its UTF-8; the server accepts it over TLS only)
  const pw = parseGreeting(Buffer.from(`HELLO USER='a' PASSWORD='${Buffer.from("p'§").toString('base64')}'\n`));
  assert.ok(pw.ok && pw.value.password?.toString('utf8') === "p'§");
  assert.deepEqual(parseGreeting(Buffer.from("HELLO USER=''\n")), {
    ok: false,
    error: 'Invalid greeting: no user specified',
  });
  const r = parseRequest(
    Buffer.from("CONNECT OPTION=quiet OPTION=REGEX OPTION=FORCE OPTION=JOIN OPTION=BROADCAST OPTION=BOGUS CONSOLE='a' X=1 CONSOLE=b\n"),
  );
  assert.deepEqual(r, {
    ok: true,
    value: { command: 'CONNECT', patterns: ['a', 'b'], quiet: true, regex: true, force: true, join: true, broadcast: true, status: false, search: null, history: null },
  });
  // a control character in a user name never reaches notices or logs
  const ctl = parseGreeting(Buffer.from("HELLO USER='ev\x1b[2Jil'\n", 'latin1'));
  assert.deepEqual(ctl, { ok: true, value: { user: 'ev?[2Jil', tty: null, password: null, via: null } });
});
