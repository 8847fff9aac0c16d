// conman's notices when a client gains or loses write access to a console.
// They go to the console's log too, so they are the engine's, whatever the
// transport the client came by; scripts match on them byte for byte.

import { shortTime } from '../util/notice.js';
import { whoText, type Identity } from './session.js';

type Who = Pick<Identity, 'user' | 'host' | 'tty'>;

export const LINK_NOTE = {
  /** to the console's other clients (and its log) when a client gains write access */
  arrived: (c: string, w: Who, stolen: boolean, bcast: boolean, now = new Date()) =>
    `Console [${c}] ${stolen ? 'stolen' : 'joined'}${bcast ? ' for B/C' : ''} by ${whoText(w)} at ${shortTime(now)}`,
  /** to the new writer, one per writer already there */
  existing: (c: string, w: Who, stolen: boolean, now = new Date()) =>
    `Console [${c}] ${stolen ? 'stolen from' : 'joined with'} ${whoText(w)} at ${shortTime(now)}`,
  departed: (c: string, w: Who, now = new Date()) => `Console [${c}] departed by ${whoText(w)} at ${shortTime(now)}`,
};
