// Output toward one client, bounded. A client that does not read (a stopped
// terminal, a dead link) must never delay the console, its log or the other
// clients: once more than `limit` bytes wait in the socket's user-space
// queue, further data FOR THIS CLIENT is dropped and counted per console, and
// when the queue has drained the client is told how much it lost.
// While the client has suspended output (&Z) the newest `limit` bytes are
// kept, like conman's overwriting ring, and sent on resume. The same holds
// output back while a replay is read from a log file: it takes its place in
// the stream where it was asked for.

import type * as net from 'node:net';

/** How often a client with lost data is checked for having drained. */
const DRAIN_POLL_MS = 50;

const EMPTY = Buffer.alloc(0);

export class OutBuf {
  private readonly lost = new Map<string, number>();
  private poll: NodeJS.Timeout | null = null;
  /** output held back (suspended, or behind a replay being read); `replay`: the place a replay goes */
  private held: { data: Buffer; tag: string; replay?: object }[] | null = null;
  private heldBytes = 0;
  /** &Z */
  private userHeld = false;
  /** a replay is being read (one at a time: asking again meanwhile is ignored) */
  private replaying = false;
  private ended = false;

  constructor(
    private readonly sock: net.Socket,
    private readonly limit: number,
    /** the framed notice telling the client it lost `n` bytes of `tag` */
    private readonly lostNotice: (tag: string, n: number) => Buffer,
  ) {
    sock.on('drain', () => this.reportLost());
  }

  /** Queue `data` (output of console `tag`), or drop it if the client is too far behind. */
  write(data: Buffer, tag: string): void {
    if (this.ended || data.length === 0 || this.sock.destroyed) return;
    if (this.held) {
      this.hold(data, tag);
      return;
    }
    if (this.sock.writableLength > this.limit) {
      this.drop(tag, data.length);
      return;
    }
    this.sock.write(data);
  }

  get suspended(): boolean {
    return this.userHeld;
  }

  /** &Z: stop or restart sending. */
  suspend(on: boolean): void {
    this.userHeld = on;
    if (on) this.held ??= [];
    else this.release();
  }

  /**
   * A replay is being read: output from now on waits behind it. Call the
   * function returned with the replay (of console `tag`) once it is read;
   * it is sent, then what waited. null: a replay is being read already (a
   * client asking ten thousand times must not queue ten thousand reads).
   */
  placeReplay(): ((data: Buffer, tag: string) => void) | null {
    if (this.replaying) return null;
    this.replaying = true;
    const place = {};
    (this.held ??= []).push({ data: EMPTY, tag: '', replay: place });
    return (data, tag) => {
      if (!this.replaying) return; // ended meanwhile
      this.replaying = false;
      const held = this.held ?? [];
      const i = held.findIndex((h) => h.replay === place);
      // not found: the output after it filled the limit and pushed its place out
      if (i >= 0) {
        held[i] = { data, tag };
        this.heldBytes += data.length;
        this.trim();
      } else this.count(tag, data.length);
      this.release();
    };
  }

  /** send what is held unless the client suspended output or a replay is still being read */
  private release(): void {
    if (this.userHeld || this.replaying) return;
    const held = this.held;
    this.held = null;
    this.heldBytes = 0;
    for (const h of held ?? []) this.write(h.data, h.tag);
    this.reportLost();
  }

  /** Send what is queued, then close. A client that never reads is cut off after `graceMs`. */
  end(graceMs = 10_000): void {
    if (this.ended) return;
    this.userHeld = false;
    this.replaying = false;
    this.release();
    this.ended = true;
    this.stopPoll();
    if (this.sock.destroyed) return;
    this.sock.end();
    // cleared at the close: a pending timer would hold the socket and its session for graceMs after it
    const t = setTimeout(() => this.sock.destroy(), graceMs).unref();
    this.sock.once('close', () => clearTimeout(t));
  }

  /** Close at once, dropping anything queued. */
  destroy(): void {
    this.ended = true;
    this.stopPoll();
    this.sock.destroy();
  }

  private hold(data: Buffer, tag: string): void {
    this.held!.push({ data, tag });
    this.heldBytes += data.length;
    this.trim();
  }

  /** keep the newest `limit` bytes held: trim from the oldest end */
  private trim(): void {
    const held = this.held!;
    while (this.heldBytes > this.limit && held.length > 0) {
      const over = this.heldBytes - this.limit;
      const first = held[0];
      if (first.data.length <= over) {
        held.shift();
        this.heldBytes -= first.data.length;
        this.count(first.tag, first.data.length);
      } else {
        first.data = first.data.subarray(over);
        this.heldBytes -= over;
        this.count(first.tag, over);
      }
    }
  }

  private drop(tag: string, n: number): void {
    this.count(tag, n);
    // 'drain' only fires if a write() returned false; poll as well for small limits
    this.poll ??= setInterval(() => {
      if (this.sock.writableLength === 0) this.reportLost();
    }, DRAIN_POLL_MS);
    this.poll.unref();
  }

  private count(tag: string, n: number): void {
    if (n <= 0) return;
    this.lost.set(tag, (this.lost.get(tag) ?? 0) + n);
  }

  private reportLost(): void {
    if (this.held || this.ended || this.sock.destroyed || this.sock.writableLength > this.limit) return;
    this.stopPoll();
    if (this.lost.size === 0) return;
    const lost = [...this.lost];
    this.lost.clear();
    for (const [tag, n] of lost) this.sock.write(this.lostNotice(tag, n));
  }

  private stopPoll(): void {
    if (this.poll) clearInterval(this.poll);
    this.poll = null;
  }
}
