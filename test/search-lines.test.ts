// The line an alert matches is the line a search finds. The same raw bytes
// — escape sequences, CRs and other controls, UTF-8, cut into any pieces —
// become the same cleaned lines through the alerts' LineAssembler (the tap:
// pieces as a device delivers them) and through the search's LineChunker
// and ChunkScan (a log read in chunks, or followed live); a regex matches
// the same of them as an alert rule and as a search; and both screen on the
// same literals (search/line-text.ts serves both). A seeded differential
// test over random bytes: set SEARCH_LINES_SEED to replay.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineAssembler, MAX_LINE } from '../src/alerts/line-assembler.js';
import { Pattern, RuleScreen } from '../src/alerts/matcher.js';
import type { AlertRule } from '../src/alerts/rules.js';
import { lineText } from '../src/search/line-text.js';
import { compileSearch, LineMatcher } from '../src/search/pattern.js';
import { ChunkScan, Dating, LineChunker, type ChunkStats } from '../src/search/scanner.js';
import { rng, seedFrom } from './helpers/seeded.js';

/** `raw` cut at `cuts` (offsets, ascending) */
function pieces(raw: Buffer, cuts: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let from = 0;
  for (const c of [...cuts, raw.length]) {
    // a device never reuses a buffer it delivered: copies, as a device's reads are
    out.push(Buffer.from(raw.subarray(from, c)));
    from = c;
  }
  return out;
}

/** The lines the alert rules see. */
function alertLines(raw: Buffer, cuts: readonly number[]): string[] {
  const a = new LineAssembler();
  const lines: string[] = [];
  for (const p of pieces(raw, cuts)) a.feed(p, (l) => lines.push(l));
  return lines;
}

/** The lines a search finds with `re` (default: every line), the log read in `cuts` pieces and chunked small. */
function searchLines(raw: Buffer, cuts: readonly number[], re = '^'): string[] {
  const matcher = new LineMatcher(compileSearch(re));
  const chunker = new LineChunker(64);
  const found: string[] = [];
  const scan = (buf: Buffer, offset: number): void => {
    const stats: ChunkStats = { undated: 0, cpuMs: 0 };
    const t = new ChunkScan(buf, offset, matcher, new Dating(null), { since: null, until: null }, Number.MAX_SAFE_INTEGER, stats);
    while (t.step(Number.MAX_SAFE_INTEGER) === undefined);
    for (const f of t.found) found.push(f.text);
  };
  let at = 0;
  for (const p of pieces(raw, cuts)) {
    for (const c of chunker.push(p, at)) scan(c.buf, c.offset);
    at += p.length;
  }
  const last = chunker.end();
  if (last) scan(last.buf, last.offset);
  return found;
}

/** What a console prints: colours, a split escape, titles, charset switches, a progress line, BS/BEL/DEL, UTF-8, CRLF and bare LF. */
const RAW = Buffer.concat([
  Buffer.from('\x1b[1;31mKernel\x1b[0m pa\x1b[0mnic - not syncing: Fatal exception\r\n', 'latin1'),
  Buffer.from('\x1b]0;root@node01: ~\x07\x1b[?2004h[root@node01 ~]# dmesg\r\n', 'latin1'),
  Buffer.from('osc \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ end\x1b(B\x1b)0\x1b=\x1b7 ok\r\r\n', 'latin1'),
  Buffer.from('progress 50%\rprogress 100%\n', 'latin1'),
  Buffer.from('bell\x07 back\x08space\ttab\x7f!\r\n', 'latin1'),
  Buffer.from('CSI with a CR inside \x1b[3\r1mstill\x1b[0m here\r\n', 'latin1'),
  Buffer.from('temp\u00e9rature 42\u00b0C, a\u00e9b \u2014 \ud83d\ude00\r\n', 'utf8'),
  Buffer.from('an escape left open \x1b\r\n', 'latin1'),
  Buffer.from('a title left open \x1b]0;never ended\r\n', 'latin1'),
  Buffer.from('next\r\n\r\n\x1b[2J\x1b[H\r\n', 'latin1'),
]);

const EXPECTED = [
  'Kernel panic - not syncing: Fatal exception',
  '[root@node01 ~]# dmesg',
  'osc link end ok',
  'progress 50%progress 100%',
  'bell backspace\ttab!',
  'CSI with a CR inside still here',
  'temp\u00e9rature 42\u00b0C, a\u00e9b \u2014 \ud83d\ude00',
  'an escape left open ',
  'a title left open ',
  'next',
  '',
  '',
];

test('the same raw bytes make the same cleaned lines for an alert and a search, whatever the pieces', () => {
  assert.deepEqual(alertLines(RAW, []), EXPECTED);
  assert.deepEqual(searchLines(RAW, []), EXPECTED);
  // cut at every byte: an escape, a CRLF, a UTF-8 character split across pieces
  for (let c = 1; c < RAW.length; c++) {
    assert.deepEqual(alertLines(RAW, [c]), EXPECTED, `alerts, cut at ${c}`);
    assert.deepEqual(searchLines(RAW, [c]), EXPECTED, `search, cut at ${c}`);
  }
  // and into single bytes
  const every = Array.from({ length: RAW.length - 1 }, (_, i) => i + 1);
  assert.deepEqual(alertLines(RAW, every), EXPECTED);
  assert.deepEqual(searchLines(RAW, every), EXPECTED);
  // each line on its own is the same text too (the alert's before-context and a search's shown line)
  const ends: number[] = [];
  for (let i = RAW.indexOf(0x0a); i >= 0; i = RAW.indexOf(0x0a, i + 1)) ends.push(i);
  assert.deepEqual(
    ends.map((e, k) => lineText(RAW, k === 0 ? 0 : ends[k - 1]! + 1, e)),
    EXPECTED,
  );
});

test('a regex matches the same lines as an alert rule and as a search, screened on the same literals', () => {
  const regexes = [
    'kernel panic - not syncing:',
    'pa.ic',
    'a.b ',
    '42.c',
    '^next$',
    '^$',
    'title|never',
    'root@node01',
    'progress [0-9]+%progress',
    'tab!$',
    '(still|here)',
    'ba?ck[a-z]*',
    't.mp.rature',
  ];
  const lines = alertLines(RAW, [7, 61, 200]);
  for (const re of regexes) {
    const pattern = Pattern.compile(re);
    const screen = new RuleScreen([{ name: 'r', regex: re, pattern } as AlertRule]);
    const byAlert = lines.filter((l) => screen.match(l) !== null);
    assert.deepEqual(byAlert, lines.filter((l) => pattern.test(l)), `${re}: the screen hides nothing`);
    assert.deepEqual(searchLines(RAW, [13, 100], re), byAlert, `/${re}/`);
    assert.deepEqual(
      compileSearch(re).literals.map((b) => b.toString('latin1')),
      pattern.literals ?? [],
      `/${re}/: the literals`,
    );
  }
  // not vacuous: these find what they should
  assert.deepEqual(searchLines(RAW, [], 'pa.ic'), ['Kernel panic - not syncing: Fatal exception']);
  assert.deepEqual(searchLines(RAW, [], 'a.b '), ['temp\u00e9rature 42\u00b0C, a\u00e9b \u2014 \ud83d\ude00']);
  assert.deepEqual(searchLines(RAW, [], 'never|root@node01: ~'), []); // in escape strings only
});

test('random bytes of a terminal make the same lines for an alert and a search (seeded differential test)', () => {
  const seed = seedFrom('SEARCH_LINES_SEED');
  process.stdout.write(`# SEARCH_LINES_SEED=${seed}\n`);
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  // the bytes escape sequences are made of, controls, text, UTF-8 pieces
  const alphabet = ['\x1b', '[', ']', '(', 'P', '_', '\\', '\x07', '\r', '\n', '\r\n', '\t', '\x08', '\x7f', '\x00', '1', ';', 'm', 'H', 'a', 'B', ' ', '#', '\u00e9', '\u00b0', '\u20ac'];
  for (let round = 0; round < 300; round++) {
    const text = Array.from({ length: 1 + Math.floor(r() * 120) }, () => pick(alphabet)).join('') + '\n';
    const raw = Buffer.from(text, 'utf8');
    const cuts = [...new Set(Array.from({ length: Math.floor(r() * 6) }, () => 1 + Math.floor(r() * (raw.length - 1))))].filter((c) => c < raw.length).sort((a, b) => a - b);
    const want = alertLines(raw, []);
    assert.ok(want.every((l) => l.length <= MAX_LINE));
    const tag = `${JSON.stringify(text)} cut at ${cuts.join(',')}`;
    assert.deepEqual(alertLines(raw, cuts), want, `alerts: ${tag}`);
    assert.deepEqual(searchLines(raw, cuts), want, `search: ${tag}`);
  }
});
