// A client of this node asked for a console another node of the cluster
// runs: this node (having authenticated the client and checked its rights
// with the same files as every node) greets the owner on its conman port
// as that user, passes the request line on, and from then on copies bytes
// both ways. The owner's answer (OK and the console, or ERROR) reaches the
// client unchanged. `VIA=node` in the greeting (a key conmand and conchd
// ignore otherwise) stops a second hop: the owner, if it no longer runs the
// console, refuses instead of proxying back.

import * as net from 'node:net';
import { keyQuoted } from '../protocol/lex.js';
import type { Identity } from '../engine/session.js';
import { bareHost } from '../devices/socket-util.js';

/** how long the owner has to accept and answer the greeting */
const CONNECT_MS = 5000;
/** the owner's greeting answer is one short line */
const MAX_ANSWER = 4096;

export interface ProxyRequest {
  /** host:port (IPv6 as [addr]:port) of the owner's conman port */
  addr: string;
  id: Identity;
  /** this node's name, sent as VIA */
  via: string;
  /** the client's request line as it came, with its newline */
  requestLine: Buffer;
  /** bytes the client sent after the request line */
  early: Buffer;
}

export function splitAddr(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: bareHost(addr.slice(0, i)), port: Number(addr.slice(i + 1)) };
}


/** the greeting a node sends a peer on behalf of client `id`: `HELLO USER='u'[ TTY='t'] VIA='node'` */
export function peerGreeting(id: Identity, via: string): Buffer {
  return Buffer.concat([Buffer.from('HELLO', 'latin1'), keyQuoted('USER', id.user), ...(id.tty ? [keyQuoted('TTY', id.tty)] : []), keyQuoted('VIA', via), Buffer.from('\n', 'latin1')]);
}

/**
 * Connect `client` (past its handshake's greeting) to the owner. Resolves
 * once bytes flow both ways, or rejects with why (the client is then the
 * caller's to answer); afterwards either side's end or error ends both.
 */
export function proxyToOwner(client: net.Socket, r: ProxyRequest): Promise<void> {
  const { host, port } = splitAddr(r.addr);
  return new Promise((resolve, reject) => {
    const up = net.connect({ host, port });
    let answer = Buffer.alloc(0);
    let done = false;
    const fail = (why: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      up.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`node at ${r.addr} did not answer within ${CONNECT_MS / 1000} s`), CONNECT_MS);
    up.on('error', (e) => fail(`node at ${r.addr}: ${e.message}`));
    up.on('close', () => fail(`node at ${r.addr} closed the connection`));
    up.on('connect', () => {
      up.setNoDelay(true);
      up.write(peerGreeting(r.id, r.via));
    });
    const onGreeting = (d: Buffer): void => {
      answer = Buffer.concat([answer, d]);
      const nl = answer.indexOf(0x0a);
      if (nl < 0) {
        if (answer.length > MAX_ANSWER) fail(`node at ${r.addr}: greeting answer too long`);
        return;
      }
      const line = answer.subarray(0, nl).toString('latin1');
      if (!/^OK\b/.test(line)) return fail(`node at ${r.addr} refused the greeting: ${line.slice(0, 200)}`);
      done = true;
      clearTimeout(timer);
      up.off('data', onGreeting);
      up.removeAllListeners('close');
      up.removeAllListeners('error');
      const rest = answer.subarray(nl + 1);
      if (rest.length > 0) client.write(rest);
      up.write(Buffer.concat([r.requestLine, r.early]));
      // from here on a plain pipe; each side's end ends the other
      up.pipe(client);
      client.pipe(up);
      const end = (): void => {
        up.destroy();
        client.destroy();
      };
      up.on('error', end);
      client.on('error', end);
      up.on('close', end);
      client.on('close', end);
      if (client.isPaused()) client.resume();
      resolve();
    };
    up.on('data', onGreeting);
  });
}
