// What TLS and passwords cost (bench/README.md, "TLS"). One conchd holds N
// busy test consoles, logging, with its conman port and a TLS port. In the
// same run it times, interleaved:
//   attach plain        TCP connect start -> `OK CONSOLE=` (claimed user)
//   attach TLS          TLS connect start -> `OK CONSOLE=` (client certificate)
//   attach TLS+password the same with a password checked (scrypt, ln=15)
// then holds N clients attached at once, each on its own console, first over
// the plain port, then over TLS, and measures conchd's CPU and RSS with
// each, against the same daemon with no client.
//
//   node dist/bench/tls.js [--consoles N] [--attaches N] [--seconds S] [--out FILE]

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Cleanup, freePort, waitFor } from './harness.js';
import { ROOT } from './rig.js';
import { percentile } from './stats.js';
import { benchArgs } from './bench-args.js';
import { TreeMeter, withNofile } from './fleet-proc.js';
import { WireClient } from './wire-client.js';
import { hashPassword } from '../src/access/password.js';

const CONCHD = path.join(ROOT, 'dist/src/bin/conchd.js');
const OP_TIMEOUT_MS = 30000;

const options = (argv: string[]) => benchArgs(argv, 'tls', { consoles: 1000, attaches: 200, seconds: 30 }, { consoles: 100, attaches: 40, seconds: 5 });

/** A CA, a server certificate for localhost and a client certificate, by openssl. */
function certificates(dir: string): Record<'ca' | 'cert' | 'key' | 'clientCert' | 'clientKey', string> {
  const f = (n: string): string => path.join(dir, n);
  const ssl = (...a: string[]): void => void execFileSync('openssl', a, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  ssl('req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-subj', '/CN=bench CA', '-days', '2');
  for (const [name, cn, ext] of [
    ['server', 'localhost', 'subjectAltName=DNS:localhost,IP:127.0.0.1'],
    ['client', 'bench', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    ssl('req', ...ec, '-keyout', f(`${name}.key`), '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`);
    fs.writeFileSync(f(`${name}.ext`), `${ext}\n`);
    ssl('x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f(`${name}.pem`), '-days', '2', '-extfile', f(`${name}.ext`));
  }
  return { ca: f('ca.pem'), cert: f('server.pem'), key: f('server.key'), clientCert: f('client.pem'), clientKey: f('client.key') };
}

async function main(): Promise<void> {
  const o = options(process.argv.slice(2));
  const cleanup = new Cleanup();
  try {
    const dir = cleanup.dir('conch-bench-tls-');
    const c = certificates(dir);
    fs.writeFileSync(path.join(dir, 'users'), `bench:${await hashPassword(Buffer.from('bench-password'))}:\n`, { mode: 0o600 });
    const [port, tlsPort] = [await freePort(), await freePort()];
    const names = Array.from({ length: o.consoles }, (_, i) => `c${String(i + 1).padStart(5, '0')}`);
    const conf = path.join(dir, 'conman.conf');
    fs.writeFileSync(
      conf,
      `server port=${port} loopback=on logdir="${dir}/log" pidfile="${dir}/conchd.pid" statedir="${dir}/state"\n` +
        `server tlsport=${tlsPort} tlscert="${c.cert}" tlskey="${c.key}" tlsclientca="${c.ca}" users="${dir}/users"\n` +
        `server maxclients=${o.consoles * 2 + 64} maxclientsperhost=${o.consoles * 2 + 64}\n` +
        // every console prints about 100 bytes a second
        names.map((n) => `console name="${n}" dev="test:" testopts="b:100,m:1000,n:1000,p:100" log="%N.log"\n`).join(''),
    );
    fs.mkdirSync(path.join(dir, 'log'));
    const nofile = o.consoles * 4 + 256;
    const [cmd, args] = withNofile(process.execPath, [CONCHD, '-F', '-c', conf], nofile);
    const d = cleanup.child(cmd, args, { cwd: dir });
    await d.waitOutput(`Listening on TLS port ${tlsPort}`, 120000);
    const pid = d.proc.pid!;
    const ca = fs.readFileSync(c.ca);
    const withCert = { ca, servername: 'localhost', cert: fs.readFileSync(c.clientCert), key: fs.readFileSync(c.clientKey) };
    const withPassword = { ca, servername: 'localhost', greeting: `HELLO USER='bench' PASSWORD='${Buffer.from('bench-password').toString('base64')}'\n` };

    // attach latency, the three kinds interleaved so that the machine's moods hit them alike
    const kinds = { plain: undefined, 'TLS, certificate': withCert, 'TLS, password': withPassword } as const;
    const times = new Map<string, number[]>(Object.keys(kinds).map((k) => [k, []]));
    for (let i = 0; i < o.attaches; i++) {
      for (const [k, secure] of Object.entries(kinds)) {
        const { client, times: t } = await WireClient.attach(secure ? tlsPort : port, names[i % names.length]!, OP_TIMEOUT_MS, secure);
        times.get(k)!.push(t.ok);
        client.close();
      }
    }

    // N clients at once: none, plain, TLS; conchd's CPU over the window and its RSS
    /** conchd's CPU (s/min) over the window and its largest RSS meanwhile */
    const measure = async (): Promise<{ cpu: number; rss: number }> => {
      const m = new TreeMeter(pid);
      m.start();
      const end = Date.now() + o.seconds * 1000;
      await waitFor(() => {
        m.sample();
        return Date.now() >= end;
      }, 'the measuring window', o.seconds * 1000 + 10000);
      return { cpu: m.cpuPerMinute(), rss: m.peakRss };
    };
    /** one client per console, attached 50 at a time, held while measuring */
    const hold = async (secure: typeof withCert | undefined): Promise<{ cpu: number; rss: number }> => {
      const held: WireClient[] = [];
      try {
        for (let i = 0; i < names.length; i += 50) {
          const batch = names.slice(i, i + 50).map((n) => WireClient.attach(secure ? tlsPort : port, n, OP_TIMEOUT_MS, secure));
          for (const r of await Promise.all(batch)) held.push(r.client);
        }
        return await measure();
      } finally {
        for (const h of held) h.close();
      }
    };
    const none = await measure();
    const plain = await hold(undefined);
    const secure = await hold(withCert);

    const f = (x: number): string => x.toFixed(1);
    const lines = [
      `# TLS and passwords: ${o.consoles} busy consoles (${new Date().toISOString()}, ${os.cpus().length} CPUs)`,
      '',
      `Attach: connect start to \`OK CONSOLE=\`, ${o.attaches} of each, interleaved (ms).`,
      '',
      '| attach | p50 | p90 | p99 |',
      '|---|---:|---:|---:|',
      ...[...times].map(([k, xs]) => `| ${k} | ${f(percentile(xs, 50))} | ${f(percentile(xs, 90))} | ${f(percentile(xs, 99))} |`),
      '',
      `${o.consoles} clients attached at once, one per console, for ${o.seconds} s (conchd's CPU seconds per minute, largest RSS).`,
      '',
      '| clients | CPU s/min | RSS MiB |',
      '|---|---:|---:|',
      `| none | ${f(none.cpu)} | ${f(none.rss)} |`,
      `| ${o.consoles} plain | ${f(plain.cpu)} | ${f(plain.rss)} |`,
      `| ${o.consoles} TLS | ${f(secure.cpu)} | ${f(secure.rss)} |`,
      '',
    ];
    const text = lines.join('\n');
    process.stdout.write(text);
    fs.mkdirSync(path.dirname(o.out), { recursive: true });
    fs.writeFileSync(o.out, text);
  } finally {
    await cleanup.run();
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`bench/tls: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
