// GET /api/v1/events: what happens to the consoles, as Server-Sent Events —
// `event: state|notice|client|console` and the event as JSON (times in ISO
// 8601), only for consoles the user may monitor; a `: keepalive` comment
// every 15 s. Events are written as they come (the engine calls listeners
// synchronously: a write is all they do). A reader slower than the events
// is not buffered for without end: past a bound it gets `event: overflow`
// and the stream ends (it reconnects and fetches the list again). Streams
// are bounded per daemon; each one's listener goes when it closes.

import type * as http from 'node:http';
import type { ConsoleEvent } from '../engine/events.js';
import type { Identity } from '../engine/session.js';
import { HttpError } from './http-util.js';
import { who } from './api-consoles.js';
import type { Router } from './router.js';
import type { WebContext } from './web-context.js';

export interface EventStreamOptions {
  /** streams open at once, daemon-wide */
  maxStreams: number;
  /** bytes a stream may have waiting for its reader before it is cut off */
  bufferBytes: number;
  keepaliveMs: number;
  /** how long a cut-off stream gets to flush its last event before its socket is destroyed */
  closeGraceMs: number;
}

export const EVENT_STREAM_DEFAULTS: EventStreamOptions = {
  maxStreams: 1000,
  bufferBytes: 1024 * 1024,
  keepaliveMs: 15_000,
  closeGraceMs: 10_000,
};

// every listener of one emit gets the same event object: it is formatted once
let lastEvent: ConsoleEvent | null = null;
let lastText = '';

function frame(e: ConsoleEvent): string {
  if (e !== lastEvent) {
    lastEvent = e;
    lastText = `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`;
  }
  return lastText;
}

class EventStream {
  private stop: (() => void) | null = null;

  constructor(
    private readonly res: http.ServerResponse,
    private readonly id: Identity,
    private readonly ctx: WebContext,
    private readonly o: EventStreamOptions,
    private readonly onEnd: (s: EventStream) => void,
  ) {}

  start(): void {
    const res = this.res;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    res.socket?.setKeepAlive(true, 30_000);
    res.write('retry: 3000\n: conchd console events\n\n');
    this.stop = this.ctx.registry.events.on((e) => this.event(e));
    res.once('close', () => this.end());
  }

  private event(e: ConsoleEvent): void {
    if (!this.ctx.access.allows(this.id, e.console, 'monitor')) return;
    this.write(frame(e));
  }

  keepalive(): void {
    this.write(': keepalive\n\n');
  }

  private write(text: string): void {
    if (!this.stop) return;
    this.res.write(text);
    if (this.res.writableLength > this.o.bufferBytes) this.overflow();
  }

  /** Too far behind: say so and end; the socket goes if even that cannot be flushed in time. */
  private overflow(): void {
    const queued = this.res.writableLength;
    this.end();
    this.ctx.dlog.info(`Web client <${this.id.user}@${this.id.address}> event stream cut off: ${queued} bytes not read`);
    this.res.end(`event: overflow\ndata: ${JSON.stringify({ queued, message: 'events came faster than this client read them: reconnect and fetch the console list again' })}\n\n`);
    const t = setTimeout(() => this.res.destroy(), this.o.closeGraceMs);
    t.unref();
    this.res.once('close', () => clearTimeout(t));
  }

  /** Stop listening (closed, cut off, or the daemon stopping). */
  end(): void {
    if (!this.stop) return;
    this.stop();
    this.stop = null;
    this.onEnd(this);
  }
}

/** Register GET /api/v1/events; returns how many streams are open (for tests and metrics). */
export function register(router: Router, ctx: WebContext, opts: Partial<EventStreamOptions> = {}): () => number {
  const o = { ...EVENT_STREAM_DEFAULTS, ...opts };
  const streams = new Set<EventStream>();
  let timer: NodeJS.Timeout | null = null;
  const ended = (s: EventStream): void => {
    streams.delete(s);
    if (streams.size === 0 && timer) {
      clearInterval(timer);
      timer = null;
    }
  };
  router.add('GET', '/api/v1/events', (r) => {
    const id = who(r);
    const { req, res } = r;
    if (req.method === 'HEAD') {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
      res.end();
      return;
    }
    if (streams.size >= o.maxStreams) throw new HttpError(503, `too many event streams open (${o.maxStreams}); try again later`, { 'retry-after': '10' });
    const s = new EventStream(res, id, ctx, o, ended);
    streams.add(s);
    s.start();
    // one timer for every stream
    timer ??= setInterval(() => {
      for (const x of streams) x.keepalive();
    }, o.keepaliveMs);
    timer.unref();
  });
  return () => streams.size;
}
