// `-l file`: everything the daemon sends (and the client's error texts and
// query output) appended to a file, framed by `Log started at <long>` and
// `Log finished at <long>` notices like conman's client log. The client's own
// status lines are not logged, as in conman.

import * as fs from 'node:fs';
import { frameNotice, longTime } from '../util/notice.js';
import { FatalError, sysText } from './errors.js';

export class SessionLog {
  private fd: number | undefined;

  constructor(private readonly file?: string) {}

  open(): void {
    if (!this.file) return;
    try {
      this.fd = fs.openSync(this.file, 'a', 0o600);
    } catch (e) {
      throw new FatalError(`Unable to open "${this.file}": ${sysText(e)}`);
    }
    this.write(frameNotice(`Log started at ${longTime()}`));
  }

  write(data: Buffer | string): void {
    if (this.fd === undefined) return;
    try {
      fs.writeSync(this.fd, typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
    } catch (e) {
      const file = this.file;
      this.fd = undefined;
      throw new FatalError(`Unable to write to "${file}": ${sysText(e)}`);
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    this.write(frameNotice(`Log finished at ${longTime()}`));
    try {
      fs.closeSync(this.fd);
    } catch {
      /* already reported by write */
    }
    this.fd = undefined;
  }
}
