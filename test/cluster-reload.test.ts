// The cluster's settings follow a reload (docs/cluster.md, "Reload"), against
// a real etcd: a single daemon joins a cluster; the same etcd reached
// through another address is taken in place (no console moves); etcd moved
// (the old address refuses) is a leave and a join; an address that does not
// answer changes nothing; a new lease TTL is a leave and a join; cluster=
// removed runs every console alone again.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cleanup, freePort, waitFor } from './helpers/wait.js';
import { CONCHD } from './helpers/conchd.js';
import { EtcdServer, TcpRelay } from '../bench/cluster-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

const NAMES = ['r1', 'r2', 'r3'];

test('cluster settings reload: join, other endpoints in place, a bad endpoint refused, a new TTL, and leaving', async () => {
  const etcd = await EtcdServer.start(cleanup);
  const dir = cleanup.dir('cluster-reload-');
  const port = await freePort();
  const conf = path.join(dir, 'conman.conf');
  const write = (cluster: string): void =>
    fs.writeFileSync(
      conf,
      [
        `server port=${port} loopback=on logdir="${dir}" statedir="${path.join(dir, 'state')}" pidfile="${path.join(dir, 'conchd.pid')}"`,
        cluster,
        'global log="%N.log"',
        ...NAMES.map((n) => `console name="${n}" dev="test:" testopts="b:40,m:200,n:1000"`),
      ].join('\n'),
      { mode: 0o600 },
    );
  const clusterLine = (urls: string, ttl = 10): string => `server cluster="etcd=${urls}" clusterprefix="/reload/" node=n1 nodeaddr=127.0.0.1:${port} clusterttl=${ttl}`;
  const logOf = (n: string): string => {
    try {
      return fs.readFileSync(path.join(dir, `${n}.log`), 'latin1');
    } catch {
      return '';
    }
  };
  const sizes = (): Map<string, number> => new Map(NAMES.map((n) => [n, logOf(n).length]));
  const since = (at: Map<string, number>, n: string): string => logOf(n).slice(at.get(n)!);

  write('');
  const d = cleanup.child(process.execPath, [CONCHD, '-F', '-c', conf], { cwd: dir });
  await d.waitOutput(/Listening on TCP port \d+/, 30000);
  await waitFor(() => NAMES.every((n) => /log opened at/.test(logOf(n)) && logOf(n).length > 200), 'the consoles logging as a single daemon', 30000);

  // 1. a single daemon joins a cluster: its consoles stop, then it holds them as node n1
  let at = sizes();
  let out = d.output.length;
  write(clusterLine(etcd.url));
  d.proc.kill('SIGHUP');
  await waitFor(() => /Cluster: node n1 \(127\.0\.0\.1:\d+\) joined through .* \(TTL 10 s\)/.test(d.output.slice(out)), 'n1 to join', 30000);
  await waitFor(
    () => NAMES.every((n) => /log closed at .*: this node joins a cluster \(a reload\)[\s\S]*held by node n1 since/.test(since(at, n))),
    'each console stopped, then held by n1',
    30000,
  );
  assert.match(d.output.slice(out), /Reload: cluster: this daemon joins a cluster/);

  // 2. the same etcd through another address (a relay): taken in place, nothing moves
  const relay = await TcpRelay.start(cleanup, { host: '127.0.0.1', port: etcd.clientPort });
  const viaRelay = `http://127.0.0.1:${relay.port}`;
  at = sizes();
  out = d.output.length;
  write(clusterLine(viaRelay));
  d.proc.kill('SIGHUP');
  await waitFor(() => /Reload: cluster: etcd now reached through http:\/\/127\.0\.0\.1:\d+, the same etcd cluster: no console moves/.test(d.output.slice(out)), 'the endpoints taken in place', 30000);
  // its calls go through the relay now (renewals, reads, the watch)
  await waitFor(() => relay.accepted >= 2, 'n1 to call etcd through the relay', 30000);
  await waitFor(() => since(at, NAMES[0]!).length > 2000, 'output logged after the move', 30000);
  for (const n of NAMES) assert.doesNotMatch(since(at, n), /log closed|held again|taken over/, `console ${n} did not move`);

  // 2b. etcd moved: the old address (the relay) refuses, the new one answers: the node leaves and joins through the new one,
  // and its old lease (which etcd could not be told to revoke) goes before its claims: no wait-out of that lease
  await relay.close();
  at = sizes();
  out = d.output.length;
  write(clusterLine(etcd.url));
  d.proc.kill('SIGHUP');
  await waitFor(() => /Reload: cluster: http:\/\/127\.0\.0\.1:\d+ is another etcd cluster, or the old endpoints do not answer: node n1 leaves and joins through/.test(d.output.slice(out)), 'n1 to leave the unreachable endpoints', 30000);
  await waitFor(() => new RegExp(`joined through ${etcd.url} `).test(d.output.slice(out)), 'n1 to join through etcd directly', 30000);
  await waitFor(() => NAMES.every((n) => /held again by node n1 at [\s\S]*\n[^<\r\n]+\r?\n/.test(since(at, n))), 'each console held again, with output after', 30000);
  assert.doesNotMatch(d.output.slice(out), /vanished while its lease lives/);

  // 3. an address that does not answer: nothing changes, and the daemon log says why
  at = sizes();
  out = d.output.length;
  write(clusterLine(`http://127.0.0.1:${await freePort()}`));
  d.proc.kill('SIGHUP');
  await waitFor(() => /Reload: cluster: etcd through http:\/\/127\.0\.0\.1:\d+ not taken: .*; still through http:\/\/127\.0\.0\.1:\d+/.test(d.output.slice(out)), 'the bad endpoint refused', 30000);
  await waitFor(() => since(at, NAMES[0]!).length > 2000, 'output logged after the refused reload', 30000);
  for (const n of NAMES) assert.doesNotMatch(since(at, n), /log closed/, `console ${n} still runs`);

  // 4. a new TTL is a new membership: the node leaves (handing over) and joins again with it
  at = sizes();
  out = d.output.length;
  write(clusterLine(etcd.url, 7));
  d.proc.kill('SIGHUP');
  await waitFor(() => /joined through .* \(TTL 7 s\)/.test(d.output.slice(out)), 'n1 to join again with TTL 7', 30000);
  await waitFor(
    () => NAMES.every((n) => /log closed at .*: node n1 leaving the cluster[\s\S]*held again by node n1 at .* after a gap of/.test(since(at, n))),
    'each console handed over, then held again',
    30000,
  );
  assert.match(d.output.slice(out), /Reload: cluster: node n1 leaves the cluster to join again with the new settings/);

  // 5. cluster= removed: the node leaves, and runs every console alone
  at = sizes();
  out = d.output.length;
  write('');
  d.proc.kill('SIGHUP');
  await waitFor(
    () => NAMES.every((n) => /log closed at .*: node n1 leaving the cluster[\s\S]*run by this daemon alone since .*: it left its cluster/.test(since(at, n))),
    'each console run alone',
    30000,
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n--- daemon:\n${d.output.slice(out).slice(-3000)}\n--- r1:\n${since(at, 'r1').slice(-1500)}`);
  });
  await waitFor(() => NAMES.every((n) => (since(at, n).split('it left its cluster (a reload)')[1] ?? '').length > 500), 'output logged after leaving', 30000);
  assert.match(d.output.slice(out), /Cluster: node n1 left the cluster, 3 consoles handed over/);
});
