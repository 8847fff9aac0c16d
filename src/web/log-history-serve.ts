// The HISTORY request (src/protocol/request.ts) served: one console's log
// on this node, as the other nodes of a cluster ask for it to gather a
// history (src/cluster/history.ts). `INDEX`: one JSON line, the holding
// periods in the range the keys choose (chosen as the log API chooses it,
// within [FROM, TO) when given); `BYTES`: the bytes [FROM, TO) of the file
// the index described (FILE: its id), then the server closes.

import type { FileHandle } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Console } from '../engine/console.js';
import { fileSource, gather, INDEX_MS, nodesOf, plan, writePieces, type HistoryAsk, type HistoryNodes, type Piece } from '../cluster/history.js';
import { parseTime, QueryError } from '../search/query.js';
import { frameNotice } from '../util/notice.js';
import type { HistoryText } from '../protocol/request.js';
import { LogScanner, NoTimesError, rangeOf } from './api-log-scan.js';
import { HttpError } from './http-util.js';
import { logFileOf, NoLogFile, openLog } from './log-file.js';
import { fileId, indexFile, type LogIndex } from './log-index.js';
import { parseLogQuery, type LogQuery } from './log-query.js';

export type HistoryAnswer =
  | { ok: false; error: string }
  | {
      ok: true;
      /** for the audit line */
      what: string;
      /** the answer after the OK line; the file is closed when it resolves or rejects */
      write(out: Writable): Promise<void>;
    };

const offset = (v: string | null, key: string): number | null => {
  if (v === null) return null;
  if (!/^\d{1,15}$/.test(v)) throw new HttpError(400, `${key}= must be a byte offset`);
  return Number(v);
};

/** Check the request and open the log: the answer to write, or why not (before any OK). */
export async function prepareHistory(c: Console, h: HistoryText, followSymlinks: boolean): Promise<HistoryAnswer> {
  let fh: FileHandle | null = null;
  try {
    const from = offset(h.from, 'FROM');
    const to = offset(h.to, 'TO');
    if (from !== null && to !== null && from > to) throw new HttpError(400, 'FROM= is after TO=');
    const params = new URLSearchParams();
    for (const k of ['tail', 'lines', 'since', 'until'] as const) if (h[k] !== null) params.set(k, h[k]);
    const q = parseLogQuery(params);
    const file = logFileOf(c);
    if (file === null) throw new HttpError(404, `console [${c.name}] has no log (no log= in its configuration)`);
    try {
      fh = await openLog(c, file, followSymlinks);
    } catch (e) {
      // a node that never ran the console has no piece of its history: an empty index, not an error
      if (!(e instanceof NoLogFile) || h.form === 'bytes') throw e;
      const empty: LogIndex = { size: 0, mtime: 0, start: 0, end: 0, file: '', segments: [] };
      return { ok: true, what: 'history index (no log file)', write: (out) => Promise.resolve(void out.write(JSON.stringify(empty) + '\n')) };
    }
    const size = (await fh.stat()).size;
    const f = fh;
    if (h.form === 'bytes') {
      if (from === null || to === null || h.file === null) throw new HttpError(400, 'HISTORY BYTES needs FROM=, TO= and FILE=');
      if (to > size) throw new HttpError(400, `the log of console [${c.name}] has ${size} bytes, fewer than TO=${to}`);
      if ((await fileId(f, size)) !== h.file) throw new HttpError(409, `the log file of console [${c.name}] is no longer the one indexed`);
      fh = null;
      return {
        ok: true,
        what: `history bytes ${from}-${to}`,
        write: async (out) => {
          try {
            if (to > from) await pipeline(f.createReadStream({ start: from, end: to - 1, autoClose: false, highWaterMark: 64 * 1024 }), out, { end: false });
          } finally {
            await f.close().catch(() => {});
          }
        },
      };
    }
    const ix = await indexFile(f, q, from !== null || to !== null ? { start: from ?? 0, end: to ?? size } : undefined);
    return { ok: true, what: `history index ${ix.start}-${ix.end}/${ix.size}`, write: (out) => Promise.resolve(void out.write(JSON.stringify(ix) + '\n')) };
  } catch (e) {
    if (e instanceof HttpError) return { ok: false, error: e.message };
    if (e instanceof NoTimesError) return { ok: false, error: `the log of console [${c.name}] has no times to search` };
    throw e;
  } finally {
    await fh?.close().catch(() => {});
  }
}

/** a console's history as gathered: the pieces in time order, cut to the query */
export interface GatheredHistory {
  pieces: Piece[];
  /** live nodes that did not answer, each `node (why)` */
  missing: string[];
  /** how many nodes (this one included) have a piece at all */
  sources: number;
  /** this node's own file, indexed (null: it has none) */
  mine: LogIndex | null;
  /** close this node's file (after the pieces are written) */
  close(): Promise<void>;
}

/**
 * Console `c`'s history from this node's log and every live peer's, cut to
 * `q`: the log API and `conch --log`. Without peers (a single daemon) the
 * range of this node's file, found by seeking: no index, nothing read twice.
 * Rejects with NoTimesError when since/until meet a log without times, and
 * (without peers) with NoLogFile when the file is not there yet.
 */
export async function gatherHistory(nodes: HistoryNodes, a: HistoryAsk, c: Console, q: LogQuery, followSymlinks: boolean, signal?: AbortSignal): Promise<GatheredHistory> {
  let fh: FileHandle | null = null;
  const file = logFileOf(c);
  if (file === null) throw new HttpError(404, `console [${c.name}] has no log (no log= in its configuration)`);
  const alone = nodes.peers().length === 0;
  try {
    fh = await openLog(c, file, followSymlinks);
  } catch (e) {
    // a node of a cluster may never have run the console
    if (!(e instanceof NoLogFile) || alone) throw e;
  }
  const close = async (): Promise<void> => void (await fh?.close().catch(() => {}));
  try {
    if (alone) {
      const st = await fh!.stat();
      const { start, end } = await rangeOf(new LogScanner(fh!, st.size), q);
      const mine: LogIndex = { size: st.size, mtime: Math.floor(st.mtimeMs), start, end, file: '', segments: [{ start, end, until: Math.floor(st.mtimeMs), lines: 0, open: null }] };
      const pieces = end > start ? [{ src: fileSource(nodes.node, fh!, mine), start, end }] : [];
      return { pieces, missing: [], sources: 1, mine, close };
    }
    const mine = fh ? await indexFile(fh, q) : null;
    const g = await gather(nodes, a, q, fh && mine ? fileSource(nodes.node, fh, mine) : null, Date.now() + INDEX_MS, signal);
    return { pieces: await plan(g.sources, q), missing: g.missing, sources: g.sources.length, mine, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/**
 * `HISTORY LOG` (`conch --log`): console `c`'s history gathered from every
 * live node (`nodes`; a single daemon: none), cut to TAIL= bytes or LINES=
 * lines, SINCE=/UNTIL= in the forms a search takes (ISO 8601, @epoch, now,
 * 90m ago). A live node that did not answer is named in a notice first.
 */
export async function prepareHistoryLog(nodes: HistoryNodes, a: HistoryAsk, c: Console, h: HistoryText, followSymlinks: boolean, signal: AbortSignal): Promise<HistoryAnswer> {
  let g: GatheredHistory;
  try {
    if (h.from !== null || h.to !== null || h.file !== null) throw new HttpError(400, 'HISTORY LOG takes TAIL=, LINES=, SINCE= and UNTIL= only');
    const params = new URLSearchParams();
    for (const k of ['tail', 'lines'] as const) if (h[k] !== null) params.set(k, h[k]);
    for (const k of ['since', 'until'] as const) if (h[k] !== null) params.set(k, new Date(parseTime(h[k], k.toUpperCase())).toISOString());
    g = await gatherHistory(nodes, a, c, parseLogQuery(params), followSymlinks, signal);
  } catch (e) {
    if (e instanceof HttpError || e instanceof QueryError) return { ok: false, error: e.message };
    if (e instanceof NoTimesError) return { ok: false, error: `the log of console [${c.name}] has no times to search (no line stamps, no "log at" marks): use TAIL= or LINES=` };
    throw e;
  }
  if (g.sources === 0) {
    await g.close();
    return { ok: false, error: `console [${c.name}] has no log file yet${g.missing.length ? ` on any node that answered (not answering: ${g.missing.join(', ')})` : ''}` };
  }
  const bytes = g.pieces.reduce((n, p) => n + p.end - p.start, 0);
  const from = nodesOf(g.pieces);
  return {
    ok: true,
    what: `history: ${bytes} bytes${nodes.peers().length > 0 ? ` from node${from.length === 1 ? '' : 's'} ${from.join(',') || '(none)'}` : ''}`,
    write: async (out) => {
      try {
        for (const m of g.missing) out.write(frameNotice(`Console [${c.name}] history without its log on node ${m}`));
        await writePieces(g.pieces, out);
      } finally {
        await g.close();
      }
    },
  };
}
