// Throwaway TLS material for tests, made by the real `openssl` tool in a
// directory the caller owns (and removes): a CA, a server certificate for
// localhost, client certificates by common name, and broken server
// certificates (expired, self-signed, wrong name) for the negative paths.
// EC P-256 keys: quick to generate, accepted at OpenSSL's default security level.

import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A certificate and its private key, as PEM file paths. */
export interface CertPair {
  cert: string;
  key: string;
}

export interface TestCerts {
  dir: string;
  /** the CA certificate that signed everything below except `selfSigned` */
  caCert: string;
  caKey: string;
  /** CN=localhost, SANs DNS:localhost, IP:127.0.0.1, IP:::1 */
  serverCert: string;
  serverKey: string;
  /** same names as the server certificate, valid only in 2020 */
  expired: CertPair;
  /** same names, signed by its own key */
  selfSigned: CertPair;
  /** a client certificate (clientAuth) with this CN, signed by the CA */
  clientCert(cn: string): Promise<CertPair>;
  /** a server certificate for other names (`DNS:x`, `IP:y`), signed by the CA */
  serverCertFor(sans: string[], cn?: string): Promise<CertPair>;
  /** a certificate for localhost usable as server and as client (what etcd's server certificate must be) */
  dualCert(): Promise<CertPair>;
  /** a second, unrelated CA, for "wrong CA" tests */
  otherCa(): Promise<CertPair>;
}

const LOCALHOST_SANS = ['DNS:localhost', 'IP:127.0.0.1', 'IP:::1'];
/** extendedKeyUsage: a server, a client, or both (etcd's server certificate: its own gateway connects with it) */
type Usage = 'serverAuth' | 'clientAuth' | 'serverAuth, clientAuth';

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`openssl ${args[0]} failed: ${err.stderr || err.message}`);
  }
}

async function newKey(dir: string, name: string): Promise<string> {
  const key = path.join(dir, `${name}.key`);
  await openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]);
  return key;
}

/** Extensions for a leaf certificate, written to a file for `-extfile`. */
function leafExtensions(dir: string, name: string, usage: Usage, sans: string[]): string {
  const file = path.join(dir, `${name}.ext`);
  const lines = ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature', `extendedKeyUsage = ${usage}`];
  if (sans.length) lines.push(`subjectAltName = ${sans.join(', ')}`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
}

/** `-subj` text for a CN; `/`, `=` and `+` would otherwise start new fields. */
const subject = (cn: string): string => `/CN=${cn.replace(/[\\/=+]/g, (c) => `\\${c}`)}`;

async function makeCa(dir: string, name: string, cn: string): Promise<CertPair> {
  const key = await newKey(dir, name);
  const cert = path.join(dir, `${name}.pem`);
  await openssl(dir, [
    'req', '-x509', '-new', '-key', key, '-subj', subject(cn), '-days', '2', '-out', cert,
    '-addext', 'basicConstraints = critical, CA:TRUE',
    '-addext', 'keyUsage = critical, keyCertSign, cRLSign',
  ]);
  return { cert, key };
}

/** A CSR for `cn` with a fresh key. */
async function request(dir: string, name: string, cn: string): Promise<{ csr: string; key: string }> {
  const key = await newKey(dir, name);
  const csr = path.join(dir, `${name}.csr`);
  await openssl(dir, ['req', '-new', '-key', key, '-subj', subject(cn), '-out', csr]);
  return { csr, key };
}

async function signLeaf(
  dir: string, ca: CertPair, name: string, cn: string, usage: Usage, sans: string[],
): Promise<CertPair> {
  const { csr, key } = await request(dir, name, cn);
  const cert = path.join(dir, `${name}.pem`);
  await openssl(dir, [
    'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial()),
    '-days', '2', '-extfile', leafExtensions(dir, name, usage, sans), '-out', cert,
  ]);
  return { cert, key };
}

let serialCounter = 0;
/** Distinct serial numbers within a run (the CA never repeats one). */
function serial(): number {
  return Date.now() % 1_000_000_000 * 100 + (serialCounter++ % 100);
}

/**
 * A certificate from the CA dated in the past: `openssl x509` in OpenSSL 3.0
 * cannot back-date, `openssl ca` can, given a minimal database.
 */
async function signExpired(dir: string, ca: CertPair, name: string, sans: string[]): Promise<CertPair> {
  const { csr, key } = await request(dir, name, 'localhost');
  const db = path.join(dir, `${name}-db`);
  fs.mkdirSync(db);
  fs.writeFileSync(path.join(db, 'index.txt'), '');
  fs.writeFileSync(path.join(db, 'serial'), '1000\n');
  const conf = path.join(db, 'ca.cnf');
  fs.writeFileSync(conf, [
    '[ca]', 'default_ca = test_ca',
    '[test_ca]', `database = ${db}/index.txt`, `new_certs_dir = ${db}`, `serial = ${db}/serial`,
    'default_md = sha256', 'policy = any_name', 'unique_subject = no',
    '[any_name]', 'commonName = supplied', '',
  ].join('\n'));
  const cert = path.join(dir, `${name}.pem`);
  await openssl(dir, [
    'ca', '-batch', '-notext', '-config', conf, '-cert', ca.cert, '-keyfile', ca.key, '-in', csr, '-out', cert,
    '-startdate', '20200101000000Z', '-enddate', '20200102000000Z',
    '-extfile', leafExtensions(dir, name, 'serverAuth', sans),
  ]);
  return { cert, key };
}

async function makeSelfSigned(dir: string, name: string, sans: string[]): Promise<CertPair> {
  const key = await newKey(dir, name);
  const cert = path.join(dir, `${name}.pem`);
  await openssl(dir, [
    'req', '-x509', '-new', '-key', key, '-subj', '/CN=localhost', '-days', '2', '-out', cert,
    '-addext', `subjectAltName = ${sans.join(', ')}`,
  ]);
  return { cert, key };
}

/** Make a CA and the standard certificates in `dir` (which must exist). */
export async function makeCerts(dir: string): Promise<TestCerts> {
  const ca = await makeCa(dir, 'ca', 'conch test CA');
  const server = await signLeaf(dir, ca, 'server', 'localhost', 'serverAuth', LOCALHOST_SANS);
  const expired = await signExpired(dir, ca, 'expired', LOCALHOST_SANS);
  const selfSigned = await makeSelfSigned(dir, 'self-signed', LOCALHOST_SANS);
  let n = 0;
  const unique = (base: string): string => `${base}-${++n}`;
  return {
    dir,
    caCert: ca.cert,
    caKey: ca.key,
    serverCert: server.cert,
    serverKey: server.key,
    expired,
    selfSigned,
    clientCert: (cn) => signLeaf(dir, ca, unique('client'), cn, 'clientAuth', []),
    serverCertFor: (sans, cn = 'server') => signLeaf(dir, ca, unique('server'), cn, 'serverAuth', sans),
    dualCert: () => signLeaf(dir, ca, unique('dual'), 'localhost', 'serverAuth, clientAuth', LOCALHOST_SANS),
    otherCa: () => makeCa(dir, unique('other-ca'), 'unrelated test CA'),
  };
}
