// node-pty gives a pty 200 ms after its process exits to reach end of file,
// then destroys the reader. When the test process's event loop was held up
// longer than that (a loaded CI machine), that timer ran before the read and
// the program's last lines were lost - conman's "terminated by server", for
// one. keepPtyTail reads what the kernel still holds before the reader goes.

import * as fs from 'node:fs';
import type * as pty from 'node-pty';

export function keepPtyTail(term: pty.IPty, sink: (text: string) => void): void {
  const inner = term as unknown as { _socket?: { destroy: (...a: unknown[]) => unknown }; _fd?: number };
  const sock = inner._socket;
  const fd = inner._fd;
  if (!sock || typeof fd !== 'number') throw new Error('node-pty internals changed: no _socket/_fd to keep the last output from');
  const destroy = sock.destroy.bind(sock);
  sock.destroy = (...a: unknown[]) => {
    const buf = Buffer.alloc(65536);
    for (;;) {
      let n = 0;
      try {
        n = fs.readSync(fd, buf, 0, buf.length, null);
      } catch {
        break; // EAGAIN: nothing left; EIO: the other side closed and is drained
      }
      if (n <= 0) break;
      sink(buf.toString('utf8', 0, n));
    }
    return destroy(...a);
  };
}
