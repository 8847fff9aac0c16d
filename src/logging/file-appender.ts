// Appends buffers to one open file descriptor, in order, through the
// process's log writer thread (log-writer.ts); end() closes the descriptor
// after the last byte. Errors (disk full, I/O error) are reported once per
// outage: a console that logs ten lines a second must not flood the daemon
// log with the same complaint.
//
// No byte is lost silently. After a failed write the writer thread skips
// this descriptor until resume(); the appender counts what was not written,
// holds new bytes (the newest HOLD_MAX; what it drops is counted too),
// retries with backoff: a retry writes a marker counting the lost bytes, and
// once that landed, the held ones (so a retry that fails costs no held
// bytes). A marker that does not land gives its count back to the next one.

import { frameNotice, longTime } from '../util/notice.js';
import { logWriter, type LogWriter, type WriterClient } from './log-writer.js';

/** bytes kept for a log that cannot be written (or opened) yet; beyond it the oldest go */
export const HOLD_MAX = 1024 * 1024;
export const RETRY_MIN_MS = 1000;
export const RETRY_MAX_MS = 60_000;

/**
 * Failures of console logs since the daemon started, for metrics: writes
 * that failed (each failed write, not the ones skipped after it during the
 * outage) and opens that failed (each try).
 */
export const logFailures = { writes: 0, opens: 0 };

/** The in-band line that says a log lost bytes: where they were and how many. */
export function lossMarker(name: string, lost: number, at = new Date()): Buffer {
  return frameNotice(`Console [${name}] log resumed at ${longTime(at)}: ${lost} bytes lost while the log could not be written`);
}

export interface AppenderOptions {
  writer?: LogWriter;
  /** the marker for `lost` bytes (default: lossMarker without a console name) */
  marker?: (lost: number, at: Date) => Buffer;
  /** writes go through again after an outage; the marker counting `lost` is in the file */
  onResume?: (lost: number) => void;
  /** end(): `lost` bytes were lost that no marker in this file counts */
  onEndLost?: (lost: number) => void;
  holdMax?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
  /** bytes that reached the file are added to `bytes` (shared by the appenders of one log) */
  counts?: { bytes: number };
}

/** a marker handed to the writer: at stream offset `start`, counting `covers` lost bytes */
interface Marker {
  start: number;
  len: number;
  covers: number;
  /** it ends an outage */
  resume: boolean;
}

export class FileAppender implements WriterClient {
  private ended = false;
  private closed: Promise<void> | null = null;
  /** a write failed and no retry has landed since: new bytes are held, not posted */
  private failing = false;
  /** a retry's marker is on its way */
  private probing = false;
  /** an error was reported and no resume marker has landed since: one message per outage */
  private outage = false;
  /** bytes lost that no marker (written or on its way) counts yet */
  private lost = 0;
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** bytes handed to the writer, and how many of them it has reported on: offsets into this appender's stream */
  private posted = 0;
  private reported = 0;
  private readonly markers: Marker[] = [];
  private timer: NodeJS.Timeout | null = null;
  private delay: number;
  /** the retry is due but earlier writes are still unreported (their losses belong in its marker) */
  private retryWhenDrained = false;
  private drainedWaiter: (() => void) | null = null;
  private readonly writer: LogWriter;
  private readonly holdMax: number;

  constructor(
    private readonly fd: number,
    /** the first failure of an outage */
    private readonly onError: (e: Error) => void,
    private readonly opts: AppenderOptions = {},
  ) {
    this.writer = opts.writer ?? logWriter();
    this.holdMax = opts.holdMax ?? HOLD_MAX;
    this.delay = opts.retryMinMs ?? RETRY_MIN_MS;
  }

  write(b: Buffer): void {
    if (this.ended || b.length === 0) return;
    if (this.failing) this.hold(b);
    else this.post(b);
  }

  /** Several buffers in order. */
  writeAll(bufs: Buffer[]): void {
    for (const b of bufs) this.write(b);
  }

  /**
   * `n` bytes meant for this file were lost elsewhere (e.g. by the appender
   * this one replaced): count them in a marker here.
   */
  noteLost(n: number): void {
    if (n <= 0) return;
    this.lost += n;
    if (!this.failing && !this.ended) this.postMarker(false);
  }

  /** The file's newest `max` bytes, read after everything posted so far (bytes held during an outage are not in it); null once ended. */
  tail(max: number): Promise<Buffer | null> {
    if (this.ended) return Promise.resolve(null);
    return this.writer.tail(this.fd, max);
  }

  /** Write what is queued (one last try for held bytes), then close the descriptor; resolves when both are done. */
  end(): Promise<void> {
    this.ended = true;
    return (this.closed ??= this.finish());
  }

  private async finish(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.retryWhenDrained = false;
    if (this.failing) {
      await new Promise<void>((r) => {
        this.drainedWaiter = r;
        this.checkDrained();
      });
      this.retry(true);
    }
    await this.writer.close(this, this.fd);
    // the close ran after every write was reported: the count is final
    if (this.lost > 0) this.opts.onEndLost?.(this.lost);
    this.lost = 0;
  }

  private post(b: Buffer, alone = false): void {
    this.writer.write(this, this.fd, b, alone);
    this.posted += b.length;
  }

  private hold(b: Buffer): void {
    if (b.length > this.holdMax) {
      this.lost += b.length - this.holdMax;
      b = b.subarray(b.length - this.holdMax);
    }
    this.held.push(b);
    this.heldBytes += b.length;
    while (this.heldBytes > this.holdMax) {
      const old = this.held.shift()!;
      this.heldBytes -= old.length;
      this.lost += old.length;
    }
  }

  private postMarker(resume: boolean): void {
    const covers = this.lost;
    this.lost = 0;
    const buf = this.opts.marker?.(covers, new Date()) ?? frameNotice(`log resumed at ${longTime()}: ${covers} bytes lost while the log could not be written`);
    this.markers.push({ start: this.posted, len: buf.length, covers, resume });
    this.post(buf, true);
  }

  private scheduleRetry(): void {
    if (this.ended || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.retry();
    }, this.delay);
    this.timer.unref(); // a daemon that stops does not wait for it
    this.delay = Math.min(this.delay * 2, this.opts.retryMaxMs ?? RETRY_MAX_MS);
  }

  /**
   * Resume the descriptor and write the marker; the held bytes follow once
   * it landed (`final`: at once, the descriptor is about to be closed).
   */
  private retry(final = false): void {
    if (!this.failing || this.probing) return;
    if (this.posted !== this.reported) {
      this.retryWhenDrained = true;
      return;
    }
    this.writer.resume(this.fd);
    this.probing = true;
    this.postMarker(true);
    if (final) this.release();
  }

  /** Writes go through again: the held bytes first (after a marker for any dropped since the retry's). */
  private release(): void {
    this.failing = false;
    if (this.lost > 0) this.postMarker(false);
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    for (const b of held) this.post(b);
  }

  /** Account for the markers within the reported entry [start, start+bytes) of which `written` landed; returns their unwritten bytes. */
  private settleMarkers(start: number, bytes: number, written: number): number {
    let unwritten = 0;
    const end = start + written;
    // a marker is an entry of its own
    while (this.markers.length > 0 && this.markers[0]!.start < start + bytes) {
      const m = this.markers.shift()!;
      if (m.resume) this.probing = false;
      if (end >= m.start + m.len) {
        if (m.resume) {
          this.outage = false;
          this.delay = this.opts.retryMinMs ?? RETRY_MIN_MS;
          this.opts.onResume?.(m.covers);
          if (this.failing) this.release();
        }
      } else {
        this.lost += m.covers;
        unwritten += m.len - Math.max(0, end - m.start);
      }
    }
    return unwritten;
  }

  failed(message: string | null, bytes: number, written: number): void {
    if (bytes === 0) {
      // a failed close: nothing lost, but say so (unless the outage was said)
      if (!this.outage && message) this.onError(new Error(message));
      return;
    }
    const start = this.reported;
    this.reported += bytes;
    if (message !== null) logFailures.writes++;
    if (this.opts.counts) this.opts.counts.bytes += written;
    // (settled first: it gives failed markers' counts back to this.lost)
    const markerBytes = this.settleMarkers(start, bytes, written);
    this.lost += bytes - written - markerBytes;
    if (!this.outage) {
      this.outage = true;
      this.onError(new Error(message ?? 'write skipped after an earlier failure'));
    }
    // (a failed retry leaves `failing` set: schedule the next one all the same)
    this.failing = true;
    this.scheduleRetry();
    this.checkDrained();
  }

  wrote(bytes: number): void {
    const start = this.reported;
    this.reported += bytes;
    if (this.opts.counts) this.opts.counts.bytes += bytes;
    if (this.markers.length > 0) this.settleMarkers(start, bytes, bytes);
    if (this.retryWhenDrained || this.drainedWaiter) this.checkDrained();
  }

  private checkDrained(): void {
    if (this.posted !== this.reported) return;
    if (this.retryWhenDrained) {
      this.retryWhenDrained = false;
      this.retry();
    }
    const w = this.drainedWaiter;
    this.drainedWaiter = null;
    w?.();
  }
}
