// A fixed-size byte ring holding a console's most recent output, for the
// log-replay escape (&L). Memory is allocated on first write so idle consoles
// cost nothing.

export class Ring {
  private buf: Buffer | null = null;
  private start = 0; // index of the oldest byte
  private len = 0;

  constructor(readonly capacity: number) {}

  push(data: Buffer): void {
    if (this.capacity <= 0 || data.length === 0) return;
    if (!this.buf) this.buf = Buffer.allocUnsafe(this.capacity);
    if (data.length >= this.capacity) {
      data.copy(this.buf, 0, data.length - this.capacity);
      this.start = 0;
      this.len = this.capacity;
      return;
    }
    const end = (this.start + this.len) % this.capacity;
    const first = Math.min(data.length, this.capacity - end);
    data.copy(this.buf, end, 0, first);
    if (first < data.length) data.copy(this.buf, 0, first);
    const overflow = this.len + data.length - this.capacity;
    if (overflow > 0) {
      this.start = (this.start + overflow) % this.capacity;
      this.len = this.capacity;
    } else {
      this.len += data.length;
    }
  }

  /** The newest `max` bytes (all of them by default), oldest first. */
  tail(max = this.len): Buffer {
    if (!this.buf || this.len === 0) return Buffer.alloc(0);
    const n = Math.min(max, this.len);
    const from = (this.start + this.len - n) % this.capacity;
    if (from + n <= this.capacity) return Buffer.from(this.buf.subarray(from, from + n));
    return Buffer.concat([this.buf.subarray(from), this.buf.subarray(0, n - (this.capacity - from))]);
  }

  get size(): number {
    return this.len;
  }
}
