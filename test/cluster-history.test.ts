// A console's history in a cluster (src/cluster/history.ts): the pieces of
// three nodes' logs, written as conchd writes them, put in time order and
// trimmed as the log API and the replay ask; the index of a log file
// (src/web/log-index.ts) cut at each holding period, with lines longer than
// the chunks it is read in; a peer's index read as hostile.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { Cleanup } from './helpers/wait.js';
import { checkIndex, fileSource, plan, writePieces, type Source } from '../src/cluster/history.js';
import { historyLine, parseRequest } from '../src/protocol/request.js';
import { fold, indexFile, MAX_SEGMENTS, type Segment } from '../src/web/log-index.js';
import { LogScanner, type LogRange } from '../src/web/api-log-scan.js';
import { frameNotice, longTime, stampTime } from '../src/util/notice.js';

const cleanup = new Cleanup();
after(() => cleanup.run());
const dir = cleanup.dir('history-');

const T0 = new Date(2026, 0, 5, 10, 0, 0).getTime();
const at = (s: number): Date => new Date(T0 + s * 1000);
const C = 'node7';

interface Period {
  node: string;
  /** seconds after T0 */
  from: number;
  to: number;
  /** ends with its closing line; else the node was killed (mid-line) */
  closed: boolean;
  seqs: number[];
}

/** one holding period as conchd writes it: opening notice, handover line, output, closing notice */
function period(p: Period, prev: string | null, stamped: boolean): string {
  let s = frameNotice(`Console [${C}] log opened at ${longTime(at(p.from))}`).toString('latin1');
  s += frameNotice(prev ? `Console [${C}] taken over by node ${p.node} from node ${prev} at ${longTime(at(p.from))} after a gap of 1s` : `Console [${C}] held by node ${p.node} since ${longTime(at(p.from))}`).toString('latin1');
  p.seqs.forEach((n, i) => {
    const stamp = stamped ? `${stampTime(at(p.from + 1 + i * ((p.to - p.from - 1) / p.seqs.length)))} ` : '';
    const last = !p.closed && i === p.seqs.length - 1;
    s += last ? `${stamp}[seq ${n}] cut off` : `${stamp}[seq ${n}] heartbeat\r\n`;
  });
  if (p.closed) s += frameNotice(`Console [${C}] log closed at ${longTime(at(p.to))}: handed over`).toString('latin1');
  return s;
}

const seqs = (a: number, b: number): number[] => Array.from({ length: b - a + 1 }, (_, i) => a + i);

/**
 * n1 held the console, handed it to n2, which was killed; n3 took it over
 * and handed it to n2 back, which handed it to n1, which holds it now: n1
 * and n2 held it twice each, n2's first period has no closing line.
 */
const PERIODS: Period[] = [
  { node: 'n1', from: 0, to: 10, closed: true, seqs: seqs(1, 10) },
  { node: 'n2', from: 11, to: 20, closed: false, seqs: seqs(11, 20) },
  { node: 'n3', from: 32, to: 40, closed: true, seqs: seqs(21, 30) },
  { node: 'n2', from: 41, to: 50, closed: true, seqs: seqs(31, 40) },
  { node: 'n1', from: 51, to: 60, closed: false, seqs: seqs(41, 50) },
];

/** each node's log file (mtime: its last write), this node (n1) first */
function writeLogs(name: string, stamped: boolean, periods = PERIODS): Record<string, string> {
  const files: Record<string, string> = {};
  const texts: Record<string, string> = {};
  const last: Record<string, number> = {};
  periods.forEach((p, i) => {
    texts[p.node] = (texts[p.node] ?? '') + period(p, i > 0 ? periods[i - 1]!.node : null, stamped);
    last[p.node] = p.to;
  });
  for (const n of Object.keys(texts)) {
    const f = path.join(dir, `${name}-${n}.log`);
    fs.writeFileSync(f, texts[n]!, 'latin1');
    fs.utimesSync(f, at(last[n]!), at(last[n]!));
    files[n] = f;
  }
  return files;
}

const NONE: LogRange = { tail: null, lines: null, since: null, until: null };

/** the history the nodes' logs make for range `q`, as the log API gathers it */
async function history(files: Record<string, string>, q: LogRange, chunk?: number): Promise<string> {
  const sources: Source[] = [];
  const handles = await Promise.all(Object.values(files).map((f) => fs.promises.open(f, 'r')));
  try {
    const names = Object.keys(files);
    for (let i = 0; i < names.length; i++) sources.push(fileSource(names[i]!, handles[i]!, await indexFile(handles[i]!, q, undefined, chunk)));
    const pieces = await plan(sources, q);
    const got: Buffer[] = [];
    await writePieces(
      pieces,
      new Writable({
        write(c: Buffer, _e, cb) {
          got.push(c);
          cb();
        },
      }),
    );
    return Buffer.concat(got).toString('latin1');
  } finally {
    for (const h of handles) await h.close();
  }
}

const seqsIn = (s: string): number[] => [...s.matchAll(/\[seq (\d+)\]/g)].map((m) => Number(m[1]));
/** the last n lines of s (a newline ending s ends its last line) */
const lastLines = (s: string, n: number): string => {
  const body = s.endsWith('\n') ? s.slice(0, -1) : s;
  const parts = body.split('\n');
  return parts.slice(-n).join('\n') + (s.endsWith('\n') ? '\n' : '');
};

test('the pieces of three nodes are put in time order: a node killed without its closing line, nodes holding the console twice', async () => {
  const files = writeLogs('order', false);
  const whole = await history(files, NONE);
  assert.deepEqual(seqsIn(whole), seqs(1, 50));
  // every byte of every file, once
  const total = Object.values(files).reduce((n, f) => n + fs.statSync(f).size, 0);
  assert.equal(Buffer.byteLength(whole, 'latin1'), total);
  // the killed node's unended line is ended by the notice it wrote when it came back
  assert.match(whole, /\[seq 20\] cut off\r\n\r\n<ConMan> Console \[node7\] log opened at \S+ 10:00:32/);
  // a handover line follows each opening line, in the order the handovers happened
  assert.deepEqual(
    [...whole.matchAll(/(?:taken over by|held by) node (n\d)/g)].map((m) => m[1]),
    PERIODS.map((p) => p.node),
  );
  // read in small chunks: the same
  assert.equal(await history(files, NONE, 64), whole);
});

test('tail= bytes and lines= are the newest of the whole history, cut across the nodes', async () => {
  const files = writeLogs('trim', false);
  const whole = await history(files, NONE);
  for (const n of [1, 100, 700, 1500, whole.length, whole.length + 50]) {
    assert.equal(await history(files, { ...NONE, tail: n }), whole.slice(-Math.min(n, whole.length)), `tail ${n}`);
  }
  // cuts inside n1's last piece, n2's second, n3's
  for (const n of [5, 20, 40]) {
    assert.equal(await history(files, { ...NONE, lines: n }), lastLines(whole, n), `lines ${n}`);
  }
  assert.equal(await history(files, { ...NONE, lines: 0 }), '');
});

test('since= and until= are ranges on every node: the lines stamped in between, in order', async () => {
  const files = writeLogs('times', true);
  const whole = await history(files, NONE);
  assert.deepEqual(seqsIn(whole), seqs(1, 50));
  const stampOf = new Map([...whole.matchAll(/(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) \[seq (\d+)\]/g)].map((m) => [Number(m[2]), new Date(m[1]!.replace(' ', 'T')).getTime()]));
  const since = T0 + 15_000;
  const until = T0 + 45_000;
  const got = seqsIn(await history(files, { ...NONE, since, until }));
  assert.deepEqual(
    got,
    [...stampOf].filter(([, t]) => t >= since && t <= until).map(([n]) => n),
  );
  assert.ok(got.length > 10 && got[0]! > 10 && got.at(-1)! <= 40, got.join(','));
  // with lines=: the newest lines of that range
  const last3 = seqsIn(await history(files, { ...NONE, since, until, lines: 3 }));
  assert.deepEqual(last3, got.slice(-3).filter((n) => last3.includes(n)));
  assert.ok(last3.length >= 1 && last3.at(-1) === got.at(-1));
});

test('the index of a file with lines longer than a chunk: its periods, lines and times', async () => {
  const f = path.join(dir, 'long.log');
  const long = 'x'.repeat(1000);
  const a = period({ node: 'n1', from: 0, to: 10, closed: true, seqs: [1] }, null, false).replace('[seq 1] heartbeat', `[seq 1] ${long}`);
  const text = a + period({ node: 'n1', from: 20, to: 30, closed: false, seqs: [2, 3] }, 'n2', false).replace('[seq 2] heartbeat', `[seq 2] ${long}`);
  fs.writeFileSync(f, text, 'latin1');
  fs.utimesSync(f, at(35.25), at(35.25));
  const fh = await fs.promises.open(f, 'r');
  try {
    for (const chunk of [16, 64, 4096]) {
      const ix = await indexFile(fh, NONE, undefined, chunk);
      assert.equal(ix.segments.length, 2, `chunk ${chunk}`);
      const [s1, s2] = ix.segments as [Segment, Segment];
      assert.equal(s1.start, 0);
      assert.equal(s1.end, a.length);
      assert.equal(s2.end, text.length);
      // blank+opened, blank+held, the output, blank+closed
      assert.equal(s1.lines, 7);
      assert.equal(s1.open, T0);
      assert.equal(s1.until, T0 + 10_000); // its closing line
      assert.equal(s2.open, T0 + 20_000);
      assert.equal(s2.until, T0 + 35_250); // the file's last, killed: its mtime
      assert.deepEqual(checkIndex(JSON.parse(JSON.stringify(ix))), ix, 'an index as a peer sends it passes the check');
      // a range inside the second period: its own time (its opening line is out of range)
      const tail = await indexFile(fh, { ...NONE, tail: 700 }, undefined, chunk);
      assert.equal(tail.segments.length, 1);
      assert.equal(tail.segments[0]!.open, null);
      // a range inside the first period with no time of its own: the nearest before it
      const inner = await indexFile(fh, NONE, { start: a.indexOf('[seq 1]') + 10, end: a.indexOf('[seq 1]') + 500 }, chunk);
      assert.equal(inner.segments[0]!.until, T0);
    }
    assert.equal((await new LogScanner(fh, text.length, 16).lastAnchorBefore(0, a.indexOf('[seq 1]') + 500))?.time, T0);
    assert.equal((await new LogScanner(fh, text.length, 16).lastAnchorBefore(0, a.length - 5))?.time, T0 + 10_000); // the closing line starts before
  } finally {
    await fh.close();
  }
});

test("a peer's index is read as hostile; more periods than the limit are folded", () => {
  const ok = { size: 100, mtime: 5, start: 10, end: 90, file: 'abc', segments: [{ start: 10, end: 50, until: 3, lines: 2, open: null }, { start: 50, end: 90, until: 4, lines: 1, open: 4 }] };
  assert.deepEqual(checkIndex(ok), ok);
  const bad: unknown[] = [
    null,
    'x',
    { ...ok, end: 101 },
    { ...ok, start: 95 },
    { ...ok, file: 'f'.repeat(65) },
    { ...ok, segments: [{ ...ok.segments[1] }, { ...ok.segments[0] }] },
    { ...ok, segments: [{ ...ok.segments[0], end: 95 }] },
    { ...ok, segments: [{ ...ok.segments[0], lines: -1 }] },
    { ...ok, segments: [{ ...ok.segments[0], until: 1.5 }] },
    { ...ok, segments: [{ ...ok.segments[0], open: '1' }] },
    { ...ok, segments: Array.from({ length: MAX_SEGMENTS + 1 }, () => ({ start: 10, end: 10, until: 1, lines: 0, open: null })) },
  ];
  for (const b of bad) assert.equal(checkIndex(b), null, JSON.stringify(b).slice(0, 200));
  const many: Segment[] = Array.from({ length: MAX_SEGMENTS + 10 }, (_, i) => ({ start: i * 10, end: i * 10 + 10, until: i, lines: 1, open: i }));
  const f = fold(many);
  assert.equal(f.length, MAX_SEGMENTS);
  assert.deepEqual(f[0], { start: 0, end: 110, until: 10, lines: 11, open: 0 });
  assert.deepEqual(f.at(-1), many.at(-1));
});

test('HISTORY requests: what a node sends is what the other parses; conman requests are lexed as before', () => {
  const ix = parseRequest(historyLine('index', "it's", { TAIL: 16384, LINES: null, SINCE: '2026-01-05T10:00:00.000Z', UNTIL: undefined, FROM: 0, TO: 99 }));
  assert.ok(ix.ok);
  assert.equal(ix.value.command, 'HISTORY');
  assert.deepEqual(ix.value.patterns, ["it's"]);
  assert.deepEqual(ix.value.history, { form: 'index', tail: '16384', lines: null, since: '2026-01-05T10:00:00.000Z', until: null, from: '0', to: '99', file: null });
  const b = parseRequest(historyLine('bytes', 'n1', { FROM: 10, TO: 20, FILE: '0a1b' }));
  assert.ok(b.ok);
  assert.deepEqual(b.value.history, { form: 'bytes', tail: null, lines: null, since: null, until: null, from: '10', to: '20', file: '0a1b' });
  const bare = parseRequest(Buffer.from('history bytes from=1 to=2 file=ab console=n1\n'));
  assert.ok(bare.ok && bare.value.history?.form === 'bytes' && bare.value.history.from === '1' && bare.value.patterns[0] === 'n1');
  // the words are bare: a console pattern written without quotes is still a pattern
  const q = parseRequest(Buffer.from('MONITOR CONSOLE=history\n'));
  assert.ok(q.ok);
  assert.deepEqual([q.value.command, q.value.history, q.value.patterns], ['MONITOR', null, ['history']]);
  assert.equal(parseRequest(Buffer.from("HISTORY SINCE='\xe9' CONSOLE='n1'\n", 'latin1')).ok, false);
});
