// The search's parts on their own: pattern literals and bounds, line
// cleaning, chunking, dating, time parsing, the SEARCH request line, the
// client's options and output, and the time index's records.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lineText } from '../src/search/line-text.js';
import { compileSearch, LineMatcher, PatternError } from '../src/search/pattern.js';
import { ChunkScan, Dating, LineChunker, markTime, stampAt, type ChunkStats } from '../src/search/scanner.js';
import { parseQuery, parseTime, QueryError } from '../src/search/query.js';
import { entryAt, header, parseIndex, record } from '../src/search/index-format.js';
import { namePattern } from '../src/search/sources.js';
import { parseRequest } from '../src/protocol/request.js';
import { parseArgs } from '../src/client/args.js';
import { searchLine } from '../src/client/proto.js';
import { formatResult, localStamp } from '../src/client/search.js';

const lit = (re: string): string => compileSearch(re).literals.map((l) => l.toString('latin1')).join(' ');

test('a pattern is found anywhere in a line, case-insensitively; its required literal is lower-cased', () => {
  assert.equal(lit('Kernel panic'), 'kernel panic');
  assert.equal(lit('(Oops|BUG):'), 'oops bug');
  assert.equal(lit('soft lockup - CPU#[0-9]+ stuck'), 'soft lockup - cpu#');
  assert.equal(lit('[0-9]+'), '');
  assert.equal(lit('[Pp]anic|[Ll]ockup'), 'panic lockup');
  assert.equal(lit('a|[0-9]'), '');
  assert.equal(lit('ab?c'), 'a');
  assert.equal(lit('x{3}y'), 'xxxy');
  const m = new LineMatcher(compileSearch('^panic$|mce: \\[hardware error\\]'));
  const all = (s: string): boolean | undefined => m.test(s, Number.MAX_SAFE_INTEGER);
  assert.equal(all('PANIC'), true);
  assert.equal(all('a panic'), false);
  assert.equal(all('[   12.5] mce: [Hardware Error]: CPU 0'), true);
});

test('a pattern too big, with back references or non-ASCII is refused with the reason', () => {
  assert.throws(() => compileSearch('(a{100}){100}'), (e: Error) => e instanceof PatternError && /too big for a search: \d+ states, at most 8192/.test(e.message));
  assert.throws(() => compileSearch('a{1000}{1000}'), /too big/);
  assert.throws(() => compileSearch('(a)\\1'), /Back references/);
  assert.throws(() => compileSearch('(unclosed'), /Unmatched \( or \\\(/);
  assert.throws(() => compileSearch('café'), /7-bit ASCII/);
  assert.throws(() => compileSearch(''), /empty/);
});

test('lines are cleaned as a person reads them: escapes, CRs and controls out, tabs in', () => {
  assert.equal(lineText(Buffer.from('\x1b[1;31mKernel\x1b[0m pa\rnic\x07\t!\r\n')), 'Kernel panic\t!');
  assert.equal(lineText(Buffer.from('\x1b]0;title\x07shown\x1b]2;t\x1b\\ too\x1b(B.\n')), 'shown too.');
});

test('stamps, marks and the index date lines', () => {
  const line = Buffer.from('\r2025-01-02 03:04:05 text\r\n');
  const s = stampAt(line, 0, line.length);
  assert.deepEqual(s, [new Date(2025, 0, 2, 3, 4, 5).getTime(), 21]);
  assert.equal(stampAt(Buffer.from('2025-01-02 03:04 x'), 0, 18), null);
  assert.equal(markTime('<conman> console [n1] log at 2025-01-02 03:00:00 utc.'), new Date(2025, 0, 2, 3, 0, 0).getTime());
  assert.equal(markTime('<conman> console [n1] connected'), null);
  const ix = parseIndex(Buffer.concat([header(), record(1000, 0), record(2000, 50), record(3000, 40), record(4000, 90)]), true);
  assert.deepEqual([...ix.offsets], [0, 50, 90]); // out of order: dropped
  assert.equal(entryAt(ix, 49), 0);
  assert.equal(entryAt(ix, 50), 1);
  assert.equal(new Dating(ix).at(95)?.[0], 4000);
});

test('chunks are whole lines with their offsets; a huge line comes in pieces', () => {
  const c = new LineChunker(16);
  const a = c.push(Buffer.from('one\ntwo\nthr'), 100);
  assert.deepEqual(a.map((x) => [x.buf.toString(), x.offset]), [['one\ntwo\n', 100]]);
  const b = c.push(Buffer.from('ee\n'), 111);
  assert.deepEqual(b.map((x) => [x.buf.toString(), x.offset]), [['three\n', 108]]);
  assert.equal(c.end(), null);
  const big = new LineChunker(256 * 1024).push(Buffer.alloc(200_000, 0x61), 0);
  assert.deepEqual(big.map((x) => x.buf.length), [65536, 65536, 65536]);
});

test('a chunk scan: matches with their times, the range, and the room left', () => {
  const text = 'boot ok\r\n2025-01-02 03:04:05 panic one\r\n2025-01-02 03:04:09 panic two\r\nPanic three\r\n';
  const stats: ChunkStats = { undated: 0, cpuMs: 0 };
  const run = (since: number | null, until: number | null, room = 100): ChunkScan => {
    const t = new ChunkScan(Buffer.from(text), 1000, new LineMatcher(compileSearch('panic')), new Dating(null), { since, until }, room, stats);
    while (t.step(Number.MAX_SAFE_INTEGER) === undefined);
    return t;
  };
  const all = run(null, null);
  assert.deepEqual(all.found.map((f) => [f.text, f.from, f.offset]), [['panic one', 'stamp', 1009], ['panic two', 'stamp', 1040], ['Panic three', null, 1071]]);
  const t5 = new Date(2025, 0, 2, 3, 4, 5).getTime();
  assert.deepEqual(run(t5 + 500, t5 + 2000).found.map((f) => f.text), ['panic one']);
  assert.equal(stats.undated, 1); // the unstamped one has no time: left out of a range
  assert.deepEqual(run(null, null, 1).found.map((f) => f.text), ['panic one']);
});

test('times: ISO with and without a zone, epoch, now, durations ago; bad ones say what is accepted', () => {
  const now = Date.UTC(2025, 5, 1, 12, 0, 0);
  assert.equal(parseTime('2025-01-02T03:04:05Z', 'since'), Date.UTC(2025, 0, 2, 3, 4, 5));
  assert.equal(parseTime('2025-01-02T03:04:05+01:00', 'since'), Date.UTC(2025, 0, 2, 2, 4, 5));
  assert.equal(parseTime('2025-01-02 03:04', 'since'), new Date(2025, 0, 2, 3, 4).getTime());
  assert.equal(parseTime('2025-01-02', 'since'), new Date(2025, 0, 2).getTime());
  assert.equal(parseTime('@1735787045', 'since'), 1735787045000);
  assert.equal(parseTime('now', 'until', now), now);
  assert.equal(parseTime('90m', 'since', now), now - 90 * 60_000);
  assert.equal(parseTime('-1d12h', 'since', now), now - 36 * 3_600_000);
  assert.throws(() => parseTime('yesterday', 'since'), /since must be a time such as/);
  assert.throws(() => parseQuery({ re: 'x', since: '2h', until: '3h', tail: null, limit: null, follow: false }), (e: Error) => e instanceof QueryError && /since is after until/.test(e.message));
  assert.throws(() => parseQuery({ re: 'x', since: null, until: null, tail: '0', limit: null, follow: false }), /tail must be between 1 and 10000/);
  assert.equal(parseQuery({ re: 'x', since: null, until: null, tail: '50', limit: '10', follow: false }).bounds.limit, 50);
});

test('SEARCH on the wire: bare keys, quoted values, FOLLOW; conman requests parse as before', () => {
  const line = searchLine({ command: 'search', quiet: false, regex: true, force: false, join: false, broadcast: false, consoles: ['n1', "it's"], search: { re: "a'b|c\"d", since: '2h', tail: '5', follow: true } });
  assert.equal(line.toString('latin1'), "SEARCH RE='a\xa7b|c\xa2d' SINCE='2h' TAIL='5' OPTION=FOLLOW OPTION=REGEX CONSOLE='n1' CONSOLE='it\xa7s'\n");
  const r = parseRequest(line);
  assert.ok(r.ok);
  assert.equal(r.value.command, 'SEARCH');
  assert.deepEqual(r.value.search, { re: 'a\'b|c"d', since: '2h', until: null, tail: '5', limit: null, follow: true });
  assert.deepEqual([r.value.regex, r.value.patterns], [true, ['n1', "it's"]]);
  const bare = parseRequest(Buffer.from('search re=panic limit=10 console=n1\n'));
  assert.ok(bare.ok && bare.value.search?.re === 'panic' && bare.value.search.limit === '10');
  const q = parseRequest(Buffer.from("QUERY CONSOLE='re' CONSOLE=tail\n"));
  assert.ok(q.ok);
  assert.deepEqual([q.value.command, q.value.search, q.value.patterns], ['QUERY', null, ['re', 'tail']]);
});

test('conch --grep: long options only, the right company, the output format', () => {
  const p = parseArgs(['--grep', 'panic', '--since', '1h', '--tail', '3', '-r', 'n.*'], {});
  assert.equal(p.action, 'run');
  if (p.action !== 'run') return;
  assert.equal(p.opts.command, 'search');
  assert.deepEqual(p.opts.search, { re: 'panic', follow: false, since: '1h', tail: '3' });
  assert.deepEqual([p.opts.regex, p.opts.consoles], [true, ['n.*']]);
  assert.equal(parseArgs(['--grep=x'], {}).action, 'run'); // no console: all of them
  assert.throws(() => parseArgs(['--since', '1h', 'n1'], {}), /"--since" needs --grep/);
  assert.throws(() => parseArgs(['--grep', 'x', '-m', 'n1'], {}), /does not go with -q, -m/);
  const t = Date.UTC(2025, 0, 2, 3, 4, 5);
  assert.deepEqual(formatResult(JSON.stringify({ console: 'n1', time: new Date(t).toISOString(), timeFrom: 'stamp', line: 'Kernel panic' })), {
    out: `n1\t${localStamp(new Date(t).toISOString())}\tKernel panic\n`,
    matched: true,
  });
  assert.equal(formatResult('{"console":"n1","time":null,"line":"x"}').out, 'n1\t-\tx\n');
  assert.deepEqual(formatResult('{"summary":{"matches":5,"stopped":"search stopped at 5 matches"}}'), { err: 'conch: search stopped at 5 matches\n' });
});

test('file names with time specifiers match every day of them', () => {
  const re = namePattern('%N-%Y%m%d.log', { name: 'n/1', dev: 'x' })!;
  assert.ok(re.test('n_1-20250102.log'));
  assert.ok(!re.test('n_1-2025.log.1'));
  assert.equal(namePattern('%N.log', { name: 'n1', dev: 'x' }), null);
});
