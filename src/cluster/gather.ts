// A search in a cluster reads every node's logs: a console's history is
// split between the nodes that ran it (docs/cluster.md). The node a client
// asked runs the search on its own logs and passes the same SEARCH request
// to every other live node (with VIA, so they do not pass it on again), then
// merges: the history's matches of every node in time order, one summary
// adding theirs up, and, with follow, the live matches of every node as
// they come. Each source is a stream of the JSON lines of search/serve.ts.

import * as net from 'node:net';
import type { Writable } from 'node:stream';
import { PassThrough } from 'node:stream';
import type { Identity } from '../engine/session.js';
import { peerGreeting, splitAddr } from './proxy.js';

/** a line longer than this from a peer ends that peer's part */
const MAX_LINE = 1024 * 1024;
/** how long a peer has to connect and answer the request */
const ANSWER_MS = 10_000;
/** live matches queued for a client that does not read, beyond which they are dropped */
const MAX_QUEUED = 4 * 1024 * 1024;

interface Match {
  time: string | null;
  /** which source, and its place there: the order of matches without a time, and of ties */
  src: number;
  seq: number;
  text: string;
}
interface Summary {
  matches: number;
  files: number;
  scannedBytes: number;
  stopped: string | null;
  following: boolean;
}

export interface GatherRequest {
  peers: { node: string; addr: string }[];
  id: Identity;
  via: string;
  requestLine: Buffer;
  limit: number;
  follow: boolean;
}

/** split a stream into lines, each given to `line`; `end` once (error or end) */
function lines(src: NodeJS.ReadableStream, line: (l: string) => void, end: (why: string | null) => void): void {
  let buf = '';
  let ended = false;
  const finish = (why: string | null): void => {
    if (ended) return;
    ended = true;
    end(why);
  };
  src.on('data', (d: Buffer | string) => {
    buf += typeof d === 'string' ? d : d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      line(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    if (buf.length > MAX_LINE) finish('a line too long');
  });
  src.on('end', () => finish(null));
  src.on('error', (e: Error) => finish(e.message));
  src.on('close', () => finish(null));
}

/** the same SEARCH on `addr`: its result lines from after its OK line */
function ask(r: GatherRequest, addr: string, signal: AbortSignal): PassThrough {
  const out = new PassThrough();
  const { host, port } = splitAddr(addr);
  const sock = net.connect({ host, port });
  const timer = setTimeout(() => sock.destroy(new Error(`no answer within ${ANSWER_MS / 1000} s`)), ANSWER_MS);
  const abort = (): void => void sock.destroy();
  signal.addEventListener('abort', abort, { once: true });
  sock.on('connect', () => sock.write(peerGreeting(r.id, r.via)));
  let stage = 0; // 0: greeting's OK, 1: request's OK, 2: results
  lines(
    sock,
    (l) => {
      if (stage < 2) {
        if (!/^OK\b/.test(l)) {
          out.end(JSON.stringify({ note: `node at ${addr} refused: ${l.slice(0, 200)}` }) + '\n');
          sock.destroy();
          return;
        }
        if (stage++ === 0) sock.write(r.requestLine);
        else clearTimeout(timer);
        return;
      }
      out.write(l + '\n');
    },
    (why) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', abort);
      if (why) out.write(JSON.stringify({ note: `node at ${addr}: ${why}` }) + '\n');
      out.end();
    },
  );
  return out;
}

/**
 * Run `local` (this node's search, writing its JSON lines to the stream it
 * is given) and the peers' searches, and write the merged lines to `out`.
 * Resolves when every source is done (with follow: when `signal` aborts).
 */
export async function gatherSearch(r: GatherRequest, local: (into: Writable) => Promise<void>, out: Writable, signal: AbortSignal): Promise<void> {
  const mine = new PassThrough();
  const sources: { name: string; stream: NodeJS.ReadableStream }[] = [{ name: r.via, stream: mine }];
  for (const p of r.peers) sources.push({ name: p.node, stream: ask(r, p.addr, signal) });
  const history: Match[] = [];
  const notes: string[] = [];
  const total: Summary = { matches: 0, files: 0, scannedBytes: 0, stopped: null, following: r.follow };
  let waiting = sources.length; // sources whose history is not done
  let merged = false;
  const put = (s: string): void => {
    if (!out.destroyed && out.writableLength < MAX_QUEUED) out.write(s);
  };
  const historyDone = (): void => {
    if (--waiting > 0 || merged) return;
    merged = true;
    // time order; matches without a time (no stamp found) keep their place after the dated ones
    history.sort((a, b) =>
      a.time !== b.time ? (a.time === null ? 1 : b.time === null ? -1 : a.time < b.time ? -1 : 1) : a.src !== b.src ? a.src - b.src : a.seq - b.seq,
    );
    const kept = history.slice(0, r.limit);
    for (const n of notes) put(JSON.stringify({ note: n }) + '\n');
    for (const m of kept) put(m.text);
    if (history.length > kept.length) total.stopped ??= `the limit of ${r.limit} matches across the nodes`;
    total.matches = kept.length;
    put(JSON.stringify({ summary: total }) + '\n');
  };
  const done = sources.map(
    (src, srcIndex) =>
      new Promise<void>((resolve) => {
        let summarized = false;
        lines(
          src.stream,
          (l) => {
            let j: Record<string, unknown>;
            try {
              j = JSON.parse(l) as Record<string, unknown>;
            } catch {
              return;
            }
            if (j.summary && typeof j.summary === 'object' && !summarized) {
              summarized = true;
              const s = j.summary as Partial<Summary>;
              total.files += Number(s.files) || 0;
              total.scannedBytes += Number(s.scannedBytes) || 0;
              if (typeof s.stopped === 'string') total.stopped ??= `node ${src.name}: ${s.stopped}`;
              historyDone();
            } else if (typeof j.console === 'string') {
              const line = l + '\n';
              if (!summarized) history.push({ time: typeof j.time === 'string' ? j.time : null, src: srcIndex, seq: history.length, text: line });
              else put(line); // live (follow)
            } else if (typeof j.note === 'string') {
              if (!summarized) notes.push(src.name === r.via ? j.note : `node ${src.name}: ${j.note}`);
              else put(l + '\n');
            } else if (typeof j.error === 'string') {
              notes.push(`node ${src.name}: ${j.error}`);
            }
          },
          () => {
            if (!summarized) historyDone();
            resolve();
          },
        );
      }),
  );
  await local(mine).finally(() => mine.end());
  await Promise.all(done);
}
