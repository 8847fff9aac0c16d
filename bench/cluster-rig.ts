// What the cluster tests and benchmark share: a real etcd (Debian's
// etcd-server) on free loopback ports with its data in a temporary
// directory, a TCP relay in front of it that a test can cut (a node
// partitioned from etcd), and conchd nodes of one cluster on one machine.

import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, waitFor, type Child, type Cleanup } from './harness.js';
import { Etcd } from '../src/cluster/etcd.js';

export const ETCD = process.env.CONCH_ETCD ?? '/usr/bin/etcd';
const CONCHD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src/bin/conchd.js');


/** etcd over https, clients proving themselves with a certificate the CA signed */
export interface EtcdTlsFiles {
  cert: string;
  key: string;
  ca: string;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export class EtcdServer {
  child: Child | null = null;
  private constructor(
    private readonly c: Cleanup,
    readonly dir: string,
    readonly clientPort: number,
    readonly peerPort: number,
    readonly tls: EtcdTlsFiles | null,
  ) {}

  get url(): string {
    return `${this.tls ? 'https' : 'http'}://127.0.0.1:${this.clientPort}`;
  }

  static async start(c: Cleanup, tls: EtcdTlsFiles | null = null): Promise<EtcdServer> {
    const e = new EtcdServer(c, c.dir('etcd-'), await freePort(), await freePort(), tls);
    await e.run();
    return e;
  }

  /** (re)start on the same ports and data: leases and keys survive, as in a real etcd restart */
  async run(): Promise<void> {
    const peer = `http://127.0.0.1:${this.peerPort}`;
    this.child = this.c.child(ETCD, [
      '--name', 'conch-test',
      '--data-dir', path.join(this.dir, 'data'),
      '--listen-client-urls', this.url,
      '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `conch-test=${peer}`,
      '--log-level', 'warn',
      ...(this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key, '--client-cert-auth', '--trusted-ca-file', this.tls.ca] : []),
    ]);
    await waitFor(async () => {
      if (this.child!.proc.exitCode !== null) throw new Error(`etcd exited: ${this.child!.output.slice(-800)}`);
      if (this.tls) return /ready to serve client requests/.test(this.child!.output) || (await portOpen(this.clientPort));
      const probe = new Etcd([this.url], null, 2000);
      try {
        await probe.range('/');
        return true;
      } catch {
        return false;
      } finally {
        probe.close();
      }
    }, `etcd on ${this.url}`, 30000);
  }

  /** kill -9 */
  async kill(): Promise<void> {
    const p = this.child?.proc;
    if (p?.pid !== undefined && p.exitCode === null) {
      process.kill(p.pid, 'SIGKILL');
      await this.child!.exited;
    }
  }

  /** every key under `prefix` with its value (UTF-8) and lease */
  async range(prefix: string): Promise<{ key: string; value: string; lease: string }[]> {
    const e = new Etcd([this.url]);
    try {
      return (await e.range(prefix)).kvs;
    } finally {
      e.close();
    }
  }


  /** console → owner node, from the cluster's owner keys */
  async owners(prefix: string): Promise<Map<string, string>> {
    return this.nodeOf(prefix, 'owner/');
  }

  /** which node last wrote each console's held/ key: its owner once it runs it (written after the console started there) */
  async holders(prefix: string): Promise<Map<string, string>> {
    return this.nodeOf(prefix, 'held/');
  }

  private async nodeOf(prefix: string, dir: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const kv of await this.range(`${prefix}${dir}`)) out.set(kv.key.slice(prefix.length + dir.length), (JSON.parse(kv.value) as { node: string }).node);
    return out;
  }
}

/**
 * A TCP relay to `target` that can be cut: cut() ends every relayed
 * connection and holds new ones open without relaying (a black hole, like a
 * partition: requests time out rather than being refused); heal() relays
 * again.
 */
export class TcpRelay {
  private server!: net.Server;
  private readonly conns = new Set<net.Socket>();
  private isCut = false;
  port = 0;
  /** connections accepted so far */
  accepted = 0;

  static async start(c: Cleanup, target: { host: string; port: number }): Promise<TcpRelay> {
    const r = new TcpRelay();
    r.server = net.createServer((sock) => r.accept(sock, target));
    await new Promise<void>((res) => r.server.listen(0, '127.0.0.1', () => res()));
    r.port = (r.server.address() as net.AddressInfo).port;
    c.add(() => r.close());
    return r;
  }

  private accept(sock: net.Socket, target: { host: string; port: number }): void {
    this.accepted++;
    this.conns.add(sock);
    sock.on('close', () => this.conns.delete(sock));
    sock.on('error', () => {});
    if (this.isCut) return; // held, never answered
    const up = net.connect(target.port, target.host);
    this.conns.add(up);
    up.on('close', () => {
      this.conns.delete(up);
      sock.destroy();
    });
    up.on('error', () => sock.destroy());
    sock.on('close', () => up.destroy());
    sock.pipe(up);
    up.pipe(sock);
  }

  cut(): void {
    this.isCut = true;
    for (const s of this.conns) s.destroy();
  }

  heal(): void {
    this.isCut = false;
    for (const s of this.conns) s.destroy(); // the held ones: the client's deadline has passed anyway
  }

  close(): Promise<void> {
    for (const s of this.conns) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export interface ClusterNode {
  name: string;
  dir: string;
  conf: string;
  port: number;
  /** its daemon log is its output (-F, no logfile) */
  child: Child;
}

/**
 * Write node `name`'s conman.conf — the shared console lines after its own
 * server lines (port, directories, node name and address) — and start it.
 * Resolves once it listens.
 */
export async function startNode(
  c: Cleanup,
  o: { name: string; dir: string; etcd: string; prefix: string; consoles: string; ttl?: number; port?: number; extra?: string },
): Promise<ClusterNode> {
  fs.mkdirSync(o.dir, { recursive: true });
  const port = o.port ?? (await freePort());
  const conf = path.join(o.dir, 'conman.conf');
  fs.writeFileSync(
    conf,
    [
      `server port=${port} loopback=on logdir="${o.dir}" statedir="${path.join(o.dir, 'state')}" pidfile="${path.join(o.dir, 'conchd.pid')}"`,
      `server cluster="etcd=${o.etcd}" clusterprefix="${o.prefix}" node=${o.name} nodeaddr=127.0.0.1:${port}${o.ttl ? ` clusterttl=${o.ttl}` : ''}`,
      o.extra ?? '',
      'global log="%N.log"',
      o.consoles,
    ].join('\n'),
    { mode: 0o600 },
  );
  // CONCH_BENCH_DAEMON_NODE_ARGS: node flags for each conchd node (e.g. --cpu-prof), as bench/start.ts gives its one conchd
  const nodeArgs = process.env.CONCH_BENCH_DAEMON_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [];
  const child = c.child(process.execPath, [...nodeArgs, CONCHD, '-F', '-c', conf], { cwd: o.dir });
  await child.waitOutput(/Listening on TCP port \d+/, 30000);
  return { name: o.name, dir: o.dir, conf, port, child };
}
