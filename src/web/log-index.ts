// A console log file cut into its holding periods, for a cluster's history
// (src/cluster/history.ts): every period a node held the console begins with
// a `log opened at` notice and, unless the node was killed, ends with
// `log closed at`. The index of a range of the file lists the periods in it
// with the lines each has and the latest time known of each; the nodes'
// periods of one console never overlap in time (the cluster's fence), so
// that time puts every node's pieces in order. Read in chunks (LogScanner):
// bounded memory however long the file or its lines.

import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { anchorOf, HEAD, localTime, LogScanner, rangeOf, type LogLine, type LogRange } from './api-log-scan.js';

export interface Segment {
  /** byte offsets: [start, end) */
  start: number;
  end: number;
  /**
   * the latest time known of the holding period (ms): the time of its
   * `log closed` line; else of its newest dated line, or the file's mtime
   * when it is the file's last (a node killed, or still holding it); 0:
   * none known
   */
  until: number;
  /** lines starting in it */
  lines: number;
  /** the time of its `log opened` line; null: it began before the range */
  open: number | null;
}

export interface LogIndex {
  /** the file's size and mtime (ms) when it was read */
  size: number;
  mtime: number;
  /** the range indexed */
  start: number;
  end: number;
  /** a hash of the file's first bytes: two nodes sharing one log directory (NFS) have the same file */
  file: string;
  segments: Segment[];
}

/** more periods than this in one answer: the oldest are folded into one */
export const MAX_SEGMENTS = 2000;
/** the first bytes whose hash names the file (both notices of its first period) */
const ID_BYTES = 256;

const OPENED = /^\r*(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d )?<ConMan> Console \[[^\]\r\n]*\] log opened at (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)/;
const CLOSED = /^\r*(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d )?<ConMan> Console \[[^\]\r\n]*\] log closed at (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)/;

interface Open {
  start: number;
  lines: number;
  open: number | null;
  closed: number | null;
  latest: number | null;
}

/**
 * Fed the lines of a range in order, cuts it at each `log opened` line. A
 * notice begins with CR LF, so the bare line before that notice is its own:
 * it goes with the new period (and ends a killed node's last, unended line).
 */
class Segmenter {
  private cur: Open;
  private readonly done: (Open & { end: number })[] = [];
  /** the previous line was a bare CR LF: where it starts */
  private blank = -1;

  constructor(start: number) {
    this.cur = { start, lines: 0, open: null, closed: null, latest: null };
  }

  line(l: LogLine): void {
    const h = l.head;
    const notice = h.includes('<ConMan> Console [');
    const o = notice ? OPENED.exec(h) : null;
    if (o) {
      const cut = this.blank >= 0 ? this.blank : l.start;
      const carried = this.blank >= 0 ? 1 : 0;
      if (cut > this.cur.start) this.done.push({ ...this.cur, lines: this.cur.lines - carried, end: cut });
      this.cur = { start: cut, lines: carried, open: localTime(o), closed: null, latest: null };
    }
    this.blank = h === '\r\n' || h === '\n' ? l.start : -1;
    this.cur.lines++;
    const c = notice ? CLOSED.exec(h) : null;
    if (c) this.cur.closed = localTime(c);
    const a = anchorOf(l);
    if (a && (this.cur.latest === null || a.time > this.cur.latest)) this.cur.latest = a.time;
  }

  finish(end: number): (Open & { end: number })[] {
    if (this.cur.lines > 0) this.done.push({ ...this.cur, end });
    return this.done;
  }
}

/**
 * The segments of the range, each with its time: see Segment.until.
 * `before`: the time of the nearest dated line before the range (asked only
 * when its first period has no time of its own in the range).
 */
async function segmentsOf(raw: (Open & { end: number })[], size: number, mtime: number, before: (pos: number) => Promise<number | null>): Promise<Segment[]> {
  const out: Segment[] = [];
  for (const s of raw) {
    let until = s.closed ?? (s.end >= size ? Math.max(s.latest ?? 0, mtime) : s.latest);
    if (until === null) until = (await before(s.start)) ?? 0;
    out.push({ start: s.start, end: s.end, until, lines: s.lines, open: s.open });
  }
  return fold(out);
}

/** at most MAX_SEGMENTS: the oldest folded into one (read as one piece, in file order) */
export function fold(segs: Segment[]): Segment[] {
  if (segs.length <= MAX_SEGMENTS) return segs;
  const old = segs.slice(0, segs.length - MAX_SEGMENTS + 1);
  const first = old[0]!;
  const last = old[old.length - 1]!;
  const lines = old.reduce((n, s) => n + s.lines, 0);
  return [{ start: first.start, end: last.end, until: last.until, lines, open: first.open }, ...segs.slice(old.length)];
}

/** The hash naming a file: its first bytes. */
export async function fileId(fh: FileHandle, size: number): Promise<string> {
  const buf = Buffer.alloc(Math.min(ID_BYTES, size));
  const { bytesRead } = buf.length > 0 ? await fh.read(buf, 0, buf.length, 0) : { bytesRead: 0 };
  return createHash('sha256').update(buf.subarray(0, bytesRead)).digest('hex').slice(0, 24);
}

/** The index of the range `q` asks for (within [within.start, within.end) when given). Throws NoTimesError as LogScanner.timeRange. */
export async function indexFile(fh: FileHandle, q: LogRange, within?: { start: number; end: number }, chunk?: number): Promise<LogIndex> {
  const st = await fh.stat();
  const size = st.size;
  const scan = new LogScanner(fh, size, chunk);
  const w = within ? { start: Math.min(within.start, size), end: Math.min(within.end, size) } : undefined;
  const { start, end } = await rangeOf(scan, q, w);
  const seg = new Segmenter(start);
  if (end > start) await scan.eachLine(start, end, (l) => void seg.line(l));
  const before = async (pos: number): Promise<number | null> => (await scan.lastAnchorBefore(0, pos))?.time ?? null;
  const mtime = Math.floor(st.mtimeMs);
  const segments = await segmentsOf(seg.finish(end), size, mtime, before);
  return { size, mtime, start, end, file: await fileId(fh, size), segments };
}

/**
 * The segments of bytes in memory (a replay's newest bytes of this node's
 * log, its last period the one it holds now): `now` is their last one's
 * time; a first period with no time in them sorts first.
 */
export async function indexBuffer(buf: Buffer, now: number): Promise<Segment[]> {
  const seg = new Segmenter(0);
  let start = 0;
  while (start < buf.length) {
    const nl = buf.indexOf(0x0a, start);
    const end = nl < 0 ? buf.length : nl + 1;
    seg.line({ start, end, head: buf.toString('latin1', start, Math.min(end, start + HEAD)) });
    start = end;
  }
  return segmentsOf(seg.finish(buf.length), buf.length, now, () => Promise.resolve(null));
}
