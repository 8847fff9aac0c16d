// The time index beside a console log (docs/search.md): a small file of
// (time, offset) pairs, "the bytes at this offset of the log were written at
// this time", one pair per second of output at most (one per ten seconds
// for a trickle), so a time range can be found without reading the log.
//
// A sidecar is named after the log's content, not its name or inode: the
// SHA-256 of its first FP_BYTES (every log conchd creates starts with its
// `log opened at <time>` notice, so no two logs share them). logrotate's
// renames (node01.log → node01.log.1), its `compress` (a new file, a new
// inode: node01.log.2.gz) and an operator's copy all keep the content, so
// the index of any of them is found by reading its first bytes (a .gz: its
// first decompressed bytes). Sidecars live in `.conch-index/` in the log's
// directory; `<hash>.<console>.idx` names the console for clean-up.
//
// Layout: a 16-byte header (`CONCHIX1`, the fingerprint length as a
// float64), then 16-byte records: float64 time (ms since the epoch), float64
// offset, little-endian, in the order written (offsets never go back).

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { sanitizeSpecifier } from '../config/specifiers.js';

export const INDEX_DIR = '.conch-index';
export const MAGIC = Buffer.from('CONCHIX1', 'latin1');
export const HEADER_BYTES = 16;
export const RECORD_BYTES = 16;
/** the first bytes of a log that name its index */
export const FP_BYTES = 256;
/** a sidecar larger than this is read only in part (its last MAX_READ bytes) */
const MAX_READ = 32 * 1024 * 1024;

export function header(): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(b, 0);
  b.writeDoubleLE(FP_BYTES, 8);
  return b;
}

export function record(time: number, offset: number): Buffer {
  const b = Buffer.allocUnsafe(RECORD_BYTES);
  b.writeDoubleLE(time, 0);
  b.writeDoubleLE(offset, 8);
  return b;
}

/** The index's name part for a log whose first FP_BYTES (or all of it, if shorter and complete) are `fp`. */
export function fingerprint(fp: Buffer): string {
  return crypto.createHash('sha256').update(fp).digest('hex').slice(0, 32);
}

export const consolePart = (name: string): string => sanitizeSpecifier(name).slice(0, 100);

export function indexDir(logFile: string): string {
  return path.join(path.dirname(logFile), INDEX_DIR);
}

export function indexPath(logFile: string, console: string, fp: string): string {
  return path.join(indexDir(logFile), `${fp}.${consolePart(console)}.idx`);
}

/** The console a sidecar's file name says, or null when it is not one. */
export function indexConsole(fileName: string): { fp: string; console: string } | null {
  const m = /^([0-9a-f]{32})\.(.*)\.idx$/.exec(fileName);
  return m ? { fp: m[1]!, console: m[2]! } : null;
}

export function sameConsole(fileName: string, console: string): boolean {
  return indexConsole(fileName)?.console === consolePart(console);
}

/** A log's index: times and offsets in offset order. */
export interface TimeIndex {
  times: Float64Array;
  offsets: Float64Array;
}

/** Records of a sidecar's bytes (header checked); records that break the order are dropped. */
export function parseIndex(buf: Buffer, fromHeader: boolean): TimeIndex {
  let at = 0;
  if (fromHeader) {
    if (buf.length < HEADER_BYTES || !buf.subarray(0, 8).equals(MAGIC)) return { times: new Float64Array(0), offsets: new Float64Array(0) };
    at = HEADER_BYTES;
  }
  const n = Math.floor((buf.length - at) / RECORD_BYTES);
  const times = new Float64Array(n);
  const offsets = new Float64Array(n);
  let k = 0;
  for (let i = 0; i < n; i++) {
    const t = buf.readDoubleLE(at + i * RECORD_BYTES);
    const o = buf.readDoubleLE(at + i * RECORD_BYTES + 8);
    // a torn record (a crash mid-write) or padding: not a time and offset in order
    if (!Number.isFinite(t) || !Number.isInteger(o) || o < 0 || t < 0) continue;
    if (k > 0 && o < offsets[k - 1]!) continue;
    times[k] = t;
    offsets[k] = o;
    k++;
  }
  return { times: times.subarray(0, k), offsets: offsets.subarray(0, k) };
}

/** Read a sidecar (null: none, or unreadable). */
export async function readIndex(file: string): Promise<TimeIndex | null> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return null;
    const whole = st.size <= MAX_READ;
    // a huge one: its newest part, record-aligned
    const from = whole ? 0 : HEADER_BYTES + Math.ceil((st.size - MAX_READ - HEADER_BYTES) / RECORD_BYTES) * RECORD_BYTES;
    const buf = Buffer.alloc(st.size - from);
    const { bytesRead } = await fh.read(buf, 0, buf.length, from);
    return parseIndex(buf.subarray(0, bytesRead), whole);
  } catch {
    return null;
  } finally {
    await fh.close().catch(() => {});
  }
}

/** The last index entry at or before `offset` (-1: none). */
export function entryAt(ix: TimeIndex, offset: number): number {
  let lo = 0;
  let hi = ix.offsets.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (ix.offsets[mid]! <= offset) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}

/** The first FP_BYTES of a log (fewer if it is shorter), decompressing a .gz. */
export async function readHead(file: string, gz: boolean): Promise<Buffer | null> {
  if (!gz) {
    let fh: fs.promises.FileHandle;
    try {
      fh = await fs.promises.open(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    } catch {
      return null;
    }
    try {
      const buf = Buffer.alloc(FP_BYTES);
      const { bytesRead } = await fh.read(buf, 0, FP_BYTES, 0);
      return buf.subarray(0, bytesRead);
    } catch {
      return null;
    } finally {
      await fh.close().catch(() => {});
    }
  }
  return new Promise((resolve) => {
    const parts: Buffer[] = [];
    let got = 0;
    let done = false;
    const src = fs.createReadStream(file, { highWaterMark: 16 * 1024 });
    const gunzip = zlib.createGunzip();
    const finish = (v: Buffer | null): void => {
      if (done) return;
      done = true;
      src.destroy();
      gunzip.destroy();
      resolve(v);
    };
    gunzip.on('data', (d: Buffer) => {
      parts.push(d);
      got += d.length;
      if (got >= FP_BYTES) finish(Buffer.concat(parts).subarray(0, FP_BYTES));
    });
    gunzip.on('end', () => finish(Buffer.concat(parts)));
    gunzip.on('error', () => finish(got > 0 ? Buffer.concat(parts).subarray(0, FP_BYTES) : null));
    src.on('error', () => finish(null));
    src.pipe(gunzip);
  });
}

/**
 * The index of a log file, found by its first bytes (null: none).
 * `beforeRead`: called with the sidecar's path first (the writer saves what
 * it holds of a live log's index).
 */
export async function indexOfLog(file: string, console: string, gz: boolean, beforeRead?: (side: string) => Promise<void>): Promise<TimeIndex | null> {
  const head = await readHead(file, gz);
  if (!head || head.length < FP_BYTES) return null;
  const side = indexPath(file, console, fingerprint(head));
  await beforeRead?.(side);
  return readIndex(side);
}
