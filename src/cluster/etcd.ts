// A small etcd v3 client over etcd's JSON gateway (`/v3/…`, served on the
// client port by every etcd since 3.4), on node:http/https. Why not a gRPC
// client: the cluster's safety rests on knowing, to the second, when the
// node last renewed its lease, and every call here has a hard deadline
// after which its connection is destroyed — a half-open connection or an
// etcd that restarted costs one timeout, then the next endpoint is tried.
// The npm `etcd3` client is known to hang on both. Keys and values are
// base64 in the gateway's JSON; 64-bit numbers are decimal strings.

import * as http from 'node:http';
import * as https from 'node:https';
import * as fs from 'node:fs';

export interface EtcdTls {
  ca: string | null;
  cert: string | null;
  key: string | null;
}

export interface EtcdKv {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** the lease ID ("0": none) */
  lease: string;
}

/** an answer etcd's gateway gave with an error (not a transport failure) */
export class EtcdError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'EtcdError';
  }
}

/** the largest answer read (a range of every key of a 10,000-console cluster is ~3 MiB) */
const MAX_ANSWER = 64 * 1024 * 1024;

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: unknown): string => (typeof s === 'string' ? Buffer.from(s, 'base64').toString('utf8') : '');
const num = (s: unknown): number => (typeof s === 'string' || typeof s === 'number' ? Number(s) : 0);

/** the key just past every key starting with `prefix` (etcd's range_end for a prefix) */
export function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) {
      const out = Buffer.from(b.subarray(0, i + 1));
      out[i]!++;
      return out.toString('base64');
    }
  }
  return Buffer.from([0]).toString('base64');
}

function kvOf(j: Record<string, unknown>): EtcdKv {
  return {
    key: unb64(j.key),
    value: unb64(j.value),
    createRevision: num(j.create_revision),
    modRevision: num(j.mod_revision),
    lease: typeof j.lease === 'string' ? j.lease : '0',
  };
}

/** one comparison of a transaction */
export type Compare = { key: string; target: 'CREATE'; createRevision: number } | { key: string; target: 'LEASE'; lease: string };
/** one operation of a transaction */
export type Op = { put: string; value: string; lease?: string } | { del: string } | { get: string };

/** one transaction of a batch (txnMany) */
export interface SubTxn {
  compare: Compare[];
  success: Op[];
  failure?: Op[];
}

function txnBody(t: SubTxn): Record<string, unknown> {
  const cmp = t.compare.map((c) =>
    c.target === 'CREATE'
      ? { key: b64(c.key), target: 'CREATE', result: 'EQUAL', create_revision: String(c.createRevision) }
      : { key: b64(c.key), target: 'LEASE', result: 'EQUAL', lease: c.lease },
  );
  const op = (o: Op): unknown =>
    'put' in o
      ? { request_put: { key: b64(o.put), value: b64(o.value), ...(o.lease ? { lease: o.lease } : {}) } }
      : 'del' in o
        ? { request_delete_range: { key: b64(o.del) } }
        : { request_range: { key: b64(o.get) } };
  return { compare: cmp, success: t.success.map(op), failure: (t.failure ?? []).map(op) };
}

/** a (sub-)transaction's answer; `revision` is the request's */
function txnResult(j: Record<string, unknown>, revision: number): TxnResult {
  const responses = Array.isArray(j.responses) ? (j.responses as Record<string, unknown>[]) : [];
  const gets: (EtcdKv | null)[] = [];
  for (const r of responses) {
    const rr = r.response_range as Record<string, unknown> | undefined;
    if (rr) gets.push(Array.isArray(rr.kvs) && rr.kvs.length > 0 ? kvOf(rr.kvs[0] as Record<string, unknown>) : null);
  }
  return { succeeded: j.succeeded === true, revision, gets };
}

export interface TxnResult {
  succeeded: boolean;
  revision: number;
  /** the kvs of each `get` op, in order */
  gets: (EtcdKv | null)[];
}

export class Etcd {
  private next = 0;
  private readonly agentHttp = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private agentHttps: https.Agent | null = null;
  /** the lease's renewals have connections of their own: they must never queue behind a burst of claims */
  private readonly leaseHttp = new http.Agent({ keepAlive: true, maxSockets: 1 });
  private leaseHttps: https.Agent | null = null;
  private tlsFiles: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  private endpoints: string[] = [];

  constructor(
    endpoints: string[],
    tls: EtcdTls | null = null,
    /** every call's deadline (the lease's renewals: their own), ms; queueing for a connection counts */
    private readonly timeoutMs = 5000,
  ) {
    this.retarget(endpoints, tls);
  }

  /**
   * Other endpoints or TLS files (a reload): calls from now on use them.
   * The files are read here, so a file that cannot be read throws and
   * changes nothing. Connections of the old agents finish what they carry.
   */
  retarget(endpoints: string[], tls: EtcdTls | null): void {
    const files: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
    if (tls?.ca) files.ca = fs.readFileSync(tls.ca);
    if (tls?.cert) files.cert = fs.readFileSync(tls.cert);
    if (tls?.key) files.key = fs.readFileSync(tls.key);
    const old = [this.agentHttps, this.leaseHttps];
    const tlsUsed = endpoints.some((e) => e.startsWith('https:'));
    this.tlsFiles = files;
    this.endpoints = [...endpoints];
    this.next = 0;
    this.agentHttps = tlsUsed ? new https.Agent({ keepAlive: true, maxSockets: 16, ...files }) : null;
    this.leaseHttps = tlsUsed ? new https.Agent({ keepAlive: true, maxSockets: 1, ...files }) : null;
    for (const a of old) if (a) setTimeout(() => a.destroy(), this.timeoutMs).unref();
  }

  /** whether `tls` names files whose contents are not those in use */
  tlsDiffers(tls: EtcdTls | null): boolean {
    const read = (f: string | null | undefined): Buffer | undefined => {
      try {
        return f ? fs.readFileSync(f) : undefined;
      } catch {
        return Buffer.alloc(0); // unreadable: different (retarget then says why)
      }
    };
    const same = (a: Buffer | undefined, b: Buffer | undefined): boolean => (a && b ? a.equals(b) : a === b);
    return !same(read(tls?.ca), this.tlsFiles.ca) || !same(read(tls?.cert), this.tlsFiles.cert) || !same(read(tls?.key), this.tlsFiles.key);
  }

  /** the etcd cluster's ID as the endpoints answer it (two endpoint lists are the same store when it is the same) */
  async clusterId(): Promise<string> {
    const j = await this.call('/v3/maintenance/status', {});
    const id = (j.header as Record<string, unknown> | undefined)?.cluster_id;
    if (typeof id !== 'string' && typeof id !== 'number') throw new Error('etcd /v3/maintenance/status: no cluster_id');
    return String(id);
  }

  /** POST `body` to `path` on the current endpoint; on a transport failure the next endpoint is tried, each within the deadline */
  async call(path: string, body: unknown, timeoutMs = this.timeoutMs, lease = false): Promise<Record<string, unknown>> {
    let last: Error | null = null;
    for (let tries = 0; tries < this.endpoints.length; tries++) {
      const ep = this.endpoints[this.next % this.endpoints.length]!;
      try {
        return await this.post(ep, path, body, timeoutMs, lease);
      } catch (e) {
        if (e instanceof EtcdError) throw e;
        last = e as Error;
        this.next++;
      }
    }
    throw last ?? new Error('etcd: no endpoint');
  }

  private post(ep: string, path: string, body: unknown, timeoutMs: number, lease: boolean): Promise<Record<string, unknown>> {
    const data = Buffer.from(JSON.stringify(body));
    const url = new URL(path, ep);
    const isHttps = url.protocol === 'https:';
    return new Promise((resolve, reject) => {
      const req = (isHttps ? https : http).request(
        url,
        {
          method: 'POST',
          agent: lease ? (isHttps ? this.leaseHttps! : this.leaseHttp) : isHttps ? this.agentHttps! : this.agentHttp,
          headers: { 'content-type': 'application/json', 'content-length': data.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          let n = 0;
          res.on('data', (c: Buffer) => {
            n += c.length;
            if (n > MAX_ANSWER) req.destroy(new Error(`etcd ${ep}: answer over ${MAX_ANSWER} bytes`));
            else chunks.push(c);
          });
          res.on('end', () => {
            clearTimeout(timer);
            let j: Record<string, unknown>;
            try {
              j = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
            } catch {
              return reject(new Error(`etcd ${ep}${path}: not JSON (HTTP ${res.statusCode})`));
            }
            if (res.statusCode !== 200 || (typeof j.error === 'string' && j.error) || j.code !== undefined) {
              const msg = typeof j.message === 'string' ? j.message : typeof j.error === 'string' ? j.error : `HTTP ${res.statusCode}`;
              return reject(new EtcdError(`etcd ${path}: ${msg}`, res.statusCode ?? 0));
            }
            resolve(j);
          });
          res.on('error', (e) => reject(e));
        },
      );
      const timer = setTimeout(() => req.destroy(new Error(`etcd ${ep}: no answer within ${timeoutMs} ms`)), timeoutMs);
      req.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      req.end(data);
    });
  }

  async grant(ttlSec: number): Promise<{ id: string; ttl: number }> {
    const j = await this.call('/v3/lease/grant', { TTL: ttlSec });
    if (typeof j.ID !== 'string') throw new Error(`etcd lease grant: ${typeof j.error === 'string' ? j.error : 'no lease ID'}`);
    return { id: j.ID, ttl: num(j.TTL) };
  }

  /** renew the lease: the TTL granted again, or 0 when the lease no longer exists */
  async keepAlive(id: string, timeoutMs?: number): Promise<number> {
    const j = await this.call('/v3/lease/keepalive', { ID: id }, timeoutMs, true);
    const r = (j.result ?? {}) as Record<string, unknown>;
    return Math.max(0, num(r.TTL));
  }

  /** seconds the lease has left, or -1 when it no longer exists */
  async timeToLive(id: string): Promise<number> {
    const j = await this.call('/v3/lease/timetolive', { ID: id });
    return num(j.TTL);
  }

  async revoke(id: string): Promise<void> {
    await this.call('/v3/lease/revoke', { ID: id }).catch((e: unknown) => {
      // a lease already gone is what revoking wanted
      if (!(e instanceof EtcdError && /not found/.test(e.message))) throw e;
    });
  }

  /** every key under `prefix`, and the store's revision */
  async range(prefix: string): Promise<{ kvs: EtcdKv[]; revision: number }> {
    const j = await this.call('/v3/kv/range', { key: b64(prefix), range_end: prefixEnd(prefix) });
    const kvs = Array.isArray(j.kvs) ? (j.kvs as Record<string, unknown>[]).map(kvOf) : [];
    return { kvs, revision: num((j.header as Record<string, unknown> | undefined)?.revision) };
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const j = await this.call('/v3/kv/put', { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
    return num((j.header as Record<string, unknown> | undefined)?.revision);
  }

  /** a transaction: if every comparison holds, `success` runs, else `failure` */
  async txn(compare: Compare[], success: Op[], failure: Op[] = []): Promise<TxnResult> {
    const j = await this.call('/v3/kv/txn', txnBody({ compare, success, failure }));
    return txnResult(j, num((j.header as Record<string, unknown> | undefined)?.revision));
  }

  /**
   * Several independent transactions in one request (etcd's nested
   * transactions: an outer one without comparisons whose every operation is
   * one of them), each with its own outcome; one revision for the request.
   * No two may write the same key (etcd refuses the whole request).
   */
  async txnMany(txns: SubTxn[]): Promise<TxnResult[]> {
    if (txns.length === 1) return [await this.txn(txns[0]!.compare, txns[0]!.success, txns[0]!.failure)];
    const j = await this.call('/v3/kv/txn', { compare: [], success: txns.map((t) => ({ request_txn: txnBody(t) })), failure: [] });
    const revision = num((j.header as Record<string, unknown> | undefined)?.revision);
    const responses = Array.isArray(j.responses) ? (j.responses as Record<string, unknown>[]) : [];
    if (responses.length !== txns.length) throw new Error(`etcd /v3/kv/txn: ${responses.length} answers to ${txns.length} transactions`);
    return responses.map((r) => txnResult((r.response_txn ?? {}) as Record<string, unknown>, revision));
  }

  /**
   * Watch every key under `prefix` from revision `fromRev` on: `onEvents`
   * gets each batch (a delete's value is empty) with the revision it brings
   * the watcher to; `onEnd` once, when the stream ends or fails (the caller
   * reads everything again and watches anew). No deadline: the caller's
   * periodic full read is what catches a stream that went quiet.
   */
  watch(prefix: string, fromRev: number, onEvents: (events: { type: 'put' | 'delete'; kv: EtcdKv }[], rev: number) => void, onEnd: (why: string) => void): { close(): void } {
    const ep = this.endpoints[this.next % this.endpoints.length]!;
    const url = new URL('/v3/watch', ep);
    const isHttps = url.protocol === 'https:';
    const body = Buffer.from(JSON.stringify({ create_request: { key: b64(prefix), range_end: prefixEnd(prefix), start_revision: String(fromRev) } }));
    let ended = false;
    const end = (why: string): void => {
      if (ended) return;
      ended = true;
      req.destroy();
      onEnd(why);
    };
    // a watch holds its connection: not one of the agent's (calls must never queue behind it)
    const req = (isHttps ? https : http).request(url, {
      method: 'POST',
      agent: false,
      ...(isHttps ? { ca: this.tlsFiles.ca, cert: this.tlsFiles.cert, key: this.tlsFiles.key } : {}),
      headers: { 'content-type': 'application/json', 'content-length': body.length },
    });
    req.on('response', (res) => {
      if (res.statusCode !== 200) return end(`etcd ${ep} watch: HTTP ${res.statusCode}`);
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        if (buf.length > MAX_ANSWER) return end(`etcd ${ep} watch: a message over ${MAX_ANSWER} bytes`);
        let nl: number;
        while (!ended && (nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          let j: Record<string, unknown>;
          try {
            j = JSON.parse(line) as Record<string, unknown>;
          } catch {
            return end(`etcd ${ep} watch: not JSON`);
          }
          const r = (j.result ?? {}) as Record<string, unknown>;
          if (j.error || r.canceled || num(r.compact_revision) > 0) return end(`etcd ${ep} watch ended: ${JSON.stringify(j.error ?? r.cancel_reason ?? 'compacted')}`);
          const rev = num((r.header as Record<string, unknown> | undefined)?.revision);
          const events = Array.isArray(r.events)
            ? (r.events as Record<string, unknown>[]).map((e) => ({ type: e.type === 'DELETE' ? ('delete' as const) : ('put' as const), kv: kvOf((e.kv ?? {}) as Record<string, unknown>) }))
            : [];
          if (events.length > 0) onEvents(events, rev);
        }
      });
      res.on('end', () => end(`etcd ${ep} closed the watch`));
      res.on('error', (e) => end(e.message));
    });
    req.on('error', (e) => {
      this.next++;
      end(e.message);
    });
    req.end(body);
    return { close: () => end('closed') };
  }

  close(): void {
    this.leaseHttp.destroy();
    this.leaseHttps?.destroy();
    this.agentHttp.destroy();
    this.agentHttps?.destroy();
  }
}
