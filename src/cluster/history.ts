// A console's history in a cluster: each node writes the log of the
// consoles it runs in its own logdir, so the history of one console is
// split between the nodes that held it (docs/cluster.md). Reading it (the
// log API, the &L replay, a browser's first screen) gathers the pieces:
//
//   1. every live node is asked for the index of its piece in the range
//      asked (`HISTORY INDEX`, src/web/log-history-serve.ts): the holding
//      periods in it, each with its lines and the latest time known of it;
//      this node takes its own index directly;
//   2. the periods of all nodes are put in time order (the fence keeps the
//      periods of different nodes from overlapping, and nodes' clocks are
//      assumed in step) and trimmed to the request: the newest N bytes or
//      lines of the whole history;
//   3. the bytes are streamed piece by piece (`HISTORY BYTES` from the node
//      that has them, this node's own from its file): memory stays bounded
//      whatever the size of the history.
//
// A node that fails, refuses or is slow is left out and named (a note);
// nothing a peer sends can throw past this module.

import * as fs from 'node:fs';
import * as net from 'node:net';
import { Writable } from 'node:stream';
import type { FileHandle } from 'node:fs/promises';
import type { Console } from '../engine/console.js';
import type { Identity } from '../engine/session.js';
import { historyLine } from '../protocol/request.js';
import { frameNotice } from '../util/notice.js';
import type { LogRange } from '../web/api-log-scan.js';
import { LogScanner } from '../web/api-log-scan.js';
import { fileId, indexBuffer, MAX_SEGMENTS, type LogIndex, type Segment } from '../web/log-index.js';
import { logFileOf } from '../web/log-file.js';
import { peerGreeting, splitAddr } from './proxy.js';
import { oneLine } from './keys.js';

export interface Peer {
  node: string;
  addr: string;
}

/** this node and the other live ones (a Cluster is one) */
export interface HistoryNodes {
  readonly node: string;
  peers(): Peer[];
}

/** who asks (the peers check the user's rights again), through which node, for which console */
export interface HistoryAsk {
  id: Identity;
  via: string;
  console: string;
}

/** how long a peer has to connect and give its index (the log API) */
export const INDEX_MS = 5000;
/** how long a replay waits for the other nodes' pieces, all of them */
export const REPLAY_MS = 2000;
/** the longest index line a peer may send */
const MAX_INDEX_LINE = 1024 * 1024;
/** a peer sending a piece's bytes may pause this long */
const STALL_MS = 10_000;

/** the nodes' pieces, gathered */
export interface Gathered {
  sources: Source[];
  /** live nodes that did not answer: `node (why)` */
  missing: string[];
}

/** one node's log of the console: its periods in the range, and how to read them */
export interface Source {
  node: string;
  /** this node's own log (first in ties) */
  local: boolean;
  index: Pick<LogIndex, 'file' | 'segments'>;
  /** write bytes [from, to) of its file to `out` */
  write(from: number, to: number, out: Writable): Promise<void>;
  /** where the last `n` lines of [from, to) begin */
  tailLines(from: number, to: number, n: number): Promise<number>;
}

/** a part of one node's log in the history */
export interface Piece {
  src: Source;
  start: number;
  end: number;
}

// ---- the wire ---------------------------------------------------------------

/** the keys of an index request for range `q` (times as ISO 8601) */
function rangeKeys(q: LogRange): Record<string, string | number | null> {
  const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());
  return { TAIL: q.tail, LINES: q.lines, SINCE: iso(q.since), UNTIL: iso(q.until) };
}

/**
 * Greet `p` as the user, send `line`; resolves (before `deadline`, a
 * Date.now() time) with the socket just past the request's OK line, paused,
 * and the bytes already read after it.
 */
function call(p: Peer, a: HistoryAsk, line: Buffer, deadline: number, signal?: AbortSignal): Promise<{ sock: net.Socket; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const { host, port } = splitAddr(p.addr);
    const sock = net.connect({ host, port });
    let buf: Buffer = Buffer.alloc(0);
    let stage = 0;
    let done = false;
    const end = (): void => {
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      sock.off('data', onData);
      sock.off('close', onClose);
    };
    const fail = (why: string): void => {
      if (done) return;
      end();
      sock.destroy();
      reject(new Error(why));
    };
    const ms = Math.max(0, deadline - Date.now());
    const timer = setTimeout(() => fail(`no answer within ${(ms / 1000).toFixed(1)} s`), ms);
    const onAbort = (): void => fail('the request was given up');
    const onClose = (): void => fail('closed the connection');
    signal?.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (e) => fail(e.message));
    sock.on('close', onClose);
    sock.on('connect', () => sock.write(peerGreeting(a.id, a.via)));
    const onData = (d: Buffer): void => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      for (;;) {
        const nl = buf.indexOf(0x0a);
        if (nl < 0) {
          if (buf.length > 4096) fail('an answer line too long');
          return;
        }
        const l = buf.toString('latin1', 0, nl).replace(/\r$/, '');
        buf = buf.subarray(nl + 1);
        if (!/^OK\b/.test(l)) return fail(`refused: ${l.slice(0, 200)}`);
        if (stage++ === 0) {
          sock.write(line);
          continue;
        }
        end();
        sock.pause();
        resolve({ sock, rest: buf });
        return;
      }
    };
    sock.on('data', onData);
  });
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** A peer's index line, read as hostile: null if it is not one. */
export function checkIndex(j: unknown): LogIndex | null {
  if (typeof j !== 'object' || j === null) return null;
  const x = j as Record<string, unknown>;
  if (!isCount(x.size) || !isCount(x.start) || !isCount(x.end) || !isCount(x.mtime) || typeof x.file !== 'string' || x.file.length > 64) return null;
  if (x.start > x.end || x.end > x.size || !Array.isArray(x.segments) || x.segments.length > MAX_SEGMENTS) return null;
  const segments: Segment[] = [];
  let at = x.start;
  for (const s of x.segments as unknown[]) {
    if (typeof s !== 'object' || s === null) return null;
    const g = s as Record<string, unknown>;
    if (!isCount(g.start) || !isCount(g.end) || !isCount(g.until) || !isCount(g.lines) || !(g.open === null || isCount(g.open))) return null;
    // in order, within the range, not overlapping
    if (g.start < at || g.end < g.start || g.end > x.end) return null;
    at = g.end;
    segments.push({ start: g.start, end: g.end, until: g.until, lines: g.lines, open: g.open });
  }
  return { size: x.size, mtime: x.mtime, start: x.start, end: x.end, file: x.file, segments };
}

/** `p`'s index of its log of the console: the range `q` (within [from, to) if given) */
async function peerIndex(p: Peer, a: HistoryAsk, q: LogRange, deadline: number, within?: { start: number; end: number }, signal?: AbortSignal): Promise<LogIndex> {
  const keys = { ...rangeKeys(q), FROM: within?.start, TO: within?.end };
  const { sock, rest } = await call(p, a, historyLine('index', a.console, keys), deadline, signal);
  return new Promise((resolve, reject) => {
    let buf = rest;
    let done = false;
    const finish = (why: string | null, v?: LogIndex): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (why !== null) reject(new Error(why));
      else resolve(v!);
    };
    const timer = setTimeout(() => finish('no index in time'), Math.max(0, deadline - Date.now()));
    const look = (): void => {
      const nl = buf.indexOf(0x0a);
      if (nl < 0) {
        if (buf.length > MAX_INDEX_LINE) finish(`an index longer than ${MAX_INDEX_LINE} bytes`);
        return;
      }
      let j: unknown;
      try {
        j = JSON.parse(buf.toString('utf8', 0, nl));
      } catch {
        return finish('an index that is not JSON');
      }
      const ix = checkIndex(j);
      if (!ix) finish('an index not as it should be');
      else finish(null, ix);
    };
    sock.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      look();
    });
    sock.on('error', (e) => finish(e.message));
    sock.on('close', () => finish('closed the connection before its index'));
    sock.resume();
    look();
  });
}

/** `p`'s bytes [from, to) of the file named `file`, written to `out` (with its back-pressure); exactly those or an error */
async function peerBytes(p: Peer, a: HistoryAsk, file: string, from: number, to: number, out: Writable, deadline: number, signal?: AbortSignal): Promise<void> {
  const { sock, rest } = await call(p, a, historyLine('bytes', a.console, { FROM: from, TO: to, FILE: file }), deadline, signal);
  const want = to - from;
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    let done = false;
    const finish = (why: string | null): void => {
      if (done) return;
      done = true;
      sock.destroy();
      out.off('close', gone);
      signal?.removeEventListener('abort', gone);
      if (why === null) resolve();
      else reject(new Error(why));
    };
    const gone = (): void => finish('the reader went away');
    out.once('close', gone);
    signal?.addEventListener('abort', gone, { once: true });
    const take = (d: Buffer): void => {
      if (got + d.length > want) return finish(`sent more than the ${want} bytes asked for`);
      got += d.length;
      if (!out.write(d)) {
        sock.pause();
        out.once('drain', () => sock.resume());
      }
      if (got === want) finish(null);
    };
    sock.setTimeout(STALL_MS, () => finish(`sent nothing for ${STALL_MS / 1000} s`));
    sock.on('data', take);
    sock.on('error', (e) => finish(e.message));
    sock.on('close', () => finish(got === want ? null : `sent ${got} of the ${want} bytes asked for`));
    if (rest.length > 0) take(rest);
    if (want === 0) finish(null);
    else sock.resume();
  });
}

// ---- sources ------------------------------------------------------------------

/** a peer's log as a source */
function peerSource(p: Peer, a: HistoryAsk, ix: LogIndex, deadline: () => number, signal?: AbortSignal): Source {
  const named = (e: unknown): Error => new Error(`node ${p.node}, console [${a.console}]: ${(e as Error).message}`);
  return {
    node: p.node,
    local: false,
    index: ix,
    write: (from, to, out) => peerBytes(p, a, ix.file, from, to, out, deadline(), signal).catch((e: unknown) => Promise.reject(named(e))),
    tailLines: async (from, to, n) => {
      const r = await peerIndex(p, a, { tail: null, lines: n, since: null, until: null }, deadline(), { start: from, end: to }, signal).catch((e: unknown) => Promise.reject(named(e)));
      return r.start;
    },
  };
}

/** `out` has room again (rejects if it closes first) */
function drained(out: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const ok = (): void => {
      out.off('close', gone);
      resolve();
    };
    const gone = (): void => {
      out.off('drain', ok);
      reject(new Error('the reader went away'));
    };
    out.once('drain', ok);
    out.once('close', gone);
  });
}

/** bytes [from, to) of an open file to `out`, a chunk at a time with its back-pressure (many pieces in a row: no listeners left behind) */
async function copyRange(fh: FileHandle, from: number, to: number, out: Writable): Promise<void> {
  for (let pos = from; pos < to; ) {
    if (out.destroyed) throw new Error('the reader went away');
    const buf = Buffer.allocUnsafe(Math.min(64 * 1024, to - pos));
    const { bytesRead } = await fh.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) throw new Error('the log file is shorter than its index');
    pos += bytesRead;
    if (!out.write(buf.subarray(0, bytesRead))) await drained(out);
  }
}

/** this node's log file (open) as a source */
export function fileSource(node: string, fh: FileHandle, ix: LogIndex): Source {
  return {
    node,
    local: true,
    index: ix,
    write: (from, to, out) => copyRange(fh, from, to, out),
    tailLines: (from, to, n) => new LogScanner(fh, to).tailLines(from, to, n),
  };
}

/** bytes in memory (a replay's newest bytes of this node's log) as a source */
function bufferSource(node: string, buf: Buffer, segments: Segment[], file: string): Source {
  return {
    node,
    local: true,
    index: { file, segments },
    write: (from, to, out) => {
      out.write(buf.subarray(from, to));
      return Promise.resolve();
    },
    tailLines: () => Promise.reject(new Error('not needed')),
  };
}

/**
 * Ask every peer for its index of range `q` (at once, each until
 * `deadline`); `local`: this node's own source, if it has a log. A log
 * with the same file as one before it (a shared logdir) is read once.
 * `later`: the deadline of each later request to a peer (its bytes).
 */
export async function gather(
  nodes: HistoryNodes,
  a: HistoryAsk,
  q: LogRange,
  local: Source | null,
  deadline: number,
  signal?: AbortSignal,
  later: () => number = () => Date.now() + INDEX_MS,
): Promise<Gathered> {
  const peers = nodes.peers();
  const answers = await Promise.allSettled(peers.map((p) => peerIndex(p, a, q, deadline, undefined, signal)));
  const sources: Source[] = local ? [local] : [];
  const missing: string[] = [];
  const files = new Set(local ? [local.index.file] : []);
  answers.forEach((r, i) => {
    const p = peers[i]!;
    if (r.status === 'rejected') {
      missing.push(`${p.node} (${oneLine((r.reason as Error).message)})`);
      return;
    }
    if (r.value.segments.length === 0 || files.has(r.value.file)) return;
    files.add(r.value.file);
    sources.push(peerSource(p, a, r.value, later, signal));
  });
  return { sources, missing };
}


// ---- merging ------------------------------------------------------------------

/**
 * The pieces of the whole history in time order, trimmed to the newest
 * `tail` bytes or `lines` lines (the nodes already applied since/until).
 * Periods sort by their latest time (see Segment.until), then by when they
 * opened (a period that began before its node's range first), then this
 * node's first.
 */
export async function plan(sources: Source[], q: { tail: number | null; lines: number | null }): Promise<Piece[]> {
  const all = sources.flatMap((src, rank) => src.index.segments.map((seg) => ({ src, rank, seg })));
  all.sort((x, y) => x.seg.until - y.seg.until || (x.seg.open ?? -1) - (y.seg.open ?? -1) || x.rank - y.rank || x.seg.start - y.seg.start);
  const pieces: Piece[] = [];
  let bytes = q.tail;
  let lines = q.lines;
  for (let i = all.length - 1; i >= 0; i--) {
    const { src, seg } = all[i]!;
    let start = seg.start;
    if (bytes !== null) {
      if (bytes <= 0) break;
      start = Math.max(start, seg.end - bytes);
      bytes -= seg.end - start;
    } else if (lines !== null) {
      if (lines <= 0) break;
      if (seg.lines > lines) start = await src.tailLines(seg.start, seg.end, lines);
      lines -= seg.lines;
    }
    if (seg.end > start) pieces.push({ src, start, end: seg.end });
  }
  return pieces.reverse();
}

/** the nodes whose pieces are in, in the order they first appear */
export const nodesOf = (pieces: Piece[]): string[] => [...new Set(pieces.map((p) => p.src.node))];

/** Write the pieces in order; a piece that cannot be read rejects (naming its node and the console). */
export async function writePieces(pieces: Piece[], out: Writable): Promise<void> {
  for (const p of pieces) {
    if (out.destroyed) return;
    await p.src.write(p.start, p.end, out);
  }
}

// ---- the replay ---------------------------------------------------------------

/** the id of console `c`'s log file here ('': none), to know a peer's piece from a shared logdir */
async function localFileId(c: Console): Promise<string> {
  const file = logFileOf(c);
  if (file === null) return '';
  const fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK).catch(() => null);
  if (!fh) return '';
  try {
    const st = await fh.stat();
    return st.isFile() ? await fileId(fh, st.size) : '';
  } finally {
    await fh.close().catch(() => {});
  }
}

/**
 * The newest `server replaybuffer=` bytes of console `c`'s history, for &L
 * and a browser's first screen. Without other nodes exactly
 * `Console.replayTail()`. In a cluster that too, when the period this node
 * holds now fills the replay; else the older part comes from every node
 * that held the console (within REPLAY_MS: a dead or slow node delays the
 * replay no more), a notice naming a node whose part is missing.
 */
export async function replayHistory(c: Console, nodes: HistoryNodes | null | undefined, id: Identity): Promise<Buffer> {
  const mine = await c.replayTail();
  const peers = nodes?.peers() ?? [];
  const max = c.replaySize;
  if (!nodes || peers.length === 0 || !c.log) return mine;
  const segments = await indexBuffer(mine, Date.now());
  if (mine.length >= max && segments.length <= 1) return mine;
  try {
    const a: HistoryAsk = { id, via: nodes.node, console: c.name };
    const local = bufferSource(nodes.node, mine, segments, await localFileId(c));
    const q = { tail: max, lines: null, since: null, until: null };
    const deadline = Date.now() + REPLAY_MS;
    const g = await gather({ node: nodes.node, peers: () => peers }, a, q, local, deadline, undefined, () => deadline);
    const parts: Buffer[] = g.missing.map((m) => frameNotice(`Console [${c.name}] replay without its log on node ${m}`));
    for (const p of await plan(g.sources, q)) {
      const got: Buffer[] = [];
      const into = new Writable({
        write(chunk: Buffer, _enc, cb) {
          got.push(chunk);
          cb();
        },
      });
      try {
        await p.src.write(p.start, p.end, into);
        parts.push(...got);
      } catch (e) {
        parts.push(frameNotice(`Console [${c.name}] replay without a part of its log: ${oneLine((e as Error).message)}`));
      }
    }
    return Buffer.concat(parts);
  } catch {
    // never worse than this node's own replay
    return mine;
  }
}
