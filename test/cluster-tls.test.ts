// A cluster node reaching etcd over https with a client certificate
// (clusterca, clustercert, clusterkey), against a real etcd that requires
// one; a renewed certificate is read again by a reload without moving a
// console; a node without a certificate is refused and says so, and keeps trying.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Cleanup, waitFor } from './helpers/wait.js';
import { makeCerts } from './helpers/certs.js';
import { CONCH } from './helpers/conchd.js';
import { EtcdServer, startNode } from '../bench/cluster-rig.js';

const cleanup = new Cleanup();
after(() => cleanup.run());

test('a node joins an https etcd with its client certificate; one without a certificate is refused and says why', async () => {
  const certs = await makeCerts(cleanup.dir('certs-'));
  // etcd's JSON gateway connects to etcd's own gRPC port with the server certificate: it must allow clientAuth too
  const dual = await certs.dualCert();
  const etcd = await EtcdServer.start(cleanup, { cert: dual.cert, key: dual.key, ca: certs.caCert });
  const client = await certs.clientCert('cons1');
  const consoles = ['a', 'b', 'c'].map((n) => `console name="${n}" dev="test:" testopts="b:40,m:200,n:1000"`).join('\n');
  const root = cleanup.dir('cluster-tls-');
  const good = await startNode(cleanup, {
    name: 'cons1',
    dir: path.join(root, 'cons1'),
    etcd: etcd.url,
    prefix: '/tls/',
    consoles,
    extra: `server clusterca="${certs.caCert}" clustercert="${client.cert}" clusterkey="${client.key}"`,
  });
  await good.child.waitOutput(/Cluster: node cons1 \(127\.0\.0\.1:\d+\) joined through https:\/\/127\.0\.0\.1:\d+/, 30000);
  await waitFor(() => {
    const q = spawnSync(process.execPath, [CONCH, '-d', `127.0.0.1:${good.port}`, '-q', '-v'], { encoding: 'utf8', timeout: 20000 });
    return q.status === 0 && q.stdout.split('\n').filter((l) => / on node cons1; up since/.test(l)).length === 3;
  }, 'the three consoles up on cons1', 30000);
  // a renewed client certificate, written over the same files, and a reload: read again, the same etcd cluster, nothing moves
  const renewed = await certs.clientCert('cons1');
  const out = good.child.output.length;
  const logs = ['a', 'b', 'c'].map((n) => path.join(good.dir, `${n}.log`));
  const sizes = logs.map((f) => fs.statSync(f).size);
  fs.copyFileSync(renewed.cert, client.cert);
  fs.copyFileSync(renewed.key, client.key);
  good.child.proc.kill('SIGHUP');
  await good.child.waitOutput(/Reload: cluster: etcd now reached through https:\/\/127\.0\.0\.1:\d+ \(TLS files read again\), the same etcd cluster: no console moves/, 30000);
  await waitFor(() => /Reloaded /.test(good.child.output.slice(out)), 'the reload to finish', 30000);
  logs.forEach((f, i) => assert.doesNotMatch(fs.readFileSync(f, 'latin1').slice(sizes[i]), /log closed/, `${f} not closed`));
  // a reload with nothing changed says nothing of the cluster
  const out2 = good.child.output.length;
  good.child.proc.kill('SIGHUP');
  await waitFor(() => /Reloaded /.test(good.child.output.slice(out2)), 'the second reload', 30000);
  assert.doesNotMatch(good.child.output.slice(out2), /Reload: cluster/);

  // the CA but no certificate of its own: etcd refuses the TLS handshake
  const bad = await startNode(cleanup, { name: 'cons2', dir: path.join(root, 'cons2'), etcd: etcd.url, prefix: '/tls/', consoles, extra: `server clusterca="${certs.caCert}"` });
  await bad.child.waitOutput(/Cluster: cannot join through https:\/\/127\.0\.0\.1:\d+: .*; trying again/, 30000);
  assert.doesNotMatch(bad.child.output, /joined through/);
});
