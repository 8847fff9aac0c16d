// Appends buffers to one open file descriptor, in order, through the
// process's log writer thread (log-writer.ts); end() closes the descriptor
// after the last byte. Errors (disk full, I/O error) are reported once per
// outage: a console that logs ten lines a second must not flood the daemon
// log with the same complaint.

import { logWriter, type LogWriter, type WriterClient } from './log-writer.js';

export class FileAppender implements WriterClient {
  private ended = false;
  private closed: Promise<void> | null = null;
  /** true after a failed write, until one succeeds: one message per outage */
  private failing = false;

  constructor(
    private readonly fd: number,
    /** a write failed; those bytes are gone */
    private readonly onError: (e: Error) => void,
    private readonly writer: LogWriter = logWriter(),
  ) {}

  write(b: Buffer): void {
    if (!this.ended) this.writer.write(this, this.fd, b);
  }

  /** Several buffers in order. */
  writeAll(bufs: Buffer[]): void {
    if (this.ended) return;
    for (const b of bufs) this.writer.write(this, this.fd, b);
  }

  /** Write what is queued, then close the descriptor; resolves when both are done. */
  end(): Promise<void> {
    this.ended = true;
    return (this.closed ??= this.writer.close(this, this.fd));
  }

  failed(message: string): void {
    if (!this.failing) this.onError(new Error(message));
    this.failing = true;
  }

  wrote(): void {
    this.failing = false;
  }
}
