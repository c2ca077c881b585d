import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mustRun } from './process.js';
import { formatKeyFile, newSigningKey, peerKeyFile } from '@unionize/protocol';

/**
 * A throw-away CA and server certificates made with the openssl CLI:
 * EC P-256 keys, key files mode 600, SANs given as openssl wants them
 * (`IP:fd12::1`, `DNS:orchestrator`).
 */

export interface CertPair {
  cert: string;
  key: string;
}

export interface Ca extends CertPair {
  dir: string;
}

const DAYS = '7';

function ecKeyArgs(keyFile: string): string[] {
  return ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', keyFile];
}

export async function makeCa(dir: string, commonName = 'unionize lab CA'): Promise<Ca> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ca: Ca = { dir, cert: join(dir, 'ca.crt'), key: join(dir, 'ca.key') };
  await mustRun([
    'openssl', 'req', '-x509', ...ecKeyArgs(ca.key), '-out', ca.cert, '-days', DAYS, '-subj', `/CN=${commonName}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  chmodSync(ca.key, 0o600);
  return ca;
}

/** A server (and client) certificate signed by `ca`, e.g. sans = ['IP:::1', 'DNS:orchestrator']. */
export async function makeServerCert(ca: Ca, name: string, sans: readonly string[]): Promise<CertPair> {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`certificate name ${name} must be [a-z0-9-]`);
  if (sans.length === 0) throw new Error(`certificate ${name} needs at least one SAN`);
  const pair: CertPair = { cert: join(ca.dir, `${name}.crt`), key: join(ca.dir, `${name}.key`) };
  const csr = join(ca.dir, `${name}.csr`);
  const ext = join(ca.dir, `${name}.ext`);
  writeFileSync(
    ext,
    [
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'extendedKeyUsage = serverAuth,clientAuth',
      `subjectAltName = ${sans.join(',')}`,
      '',
    ].join('\n'),
  );
  await mustRun(['openssl', 'req', '-new', ...ecKeyArgs(pair.key), '-out', csr, '-subj', `/CN=${name}`]);
  chmodSync(pair.key, 0o600);
  await mustRun([
    'openssl', 'x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key,
    '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', DAYS, '-extfile', ext, '-out', pair.cert,
  ]);
  rmSync(csr, { force: true });
  rmSync(ext, { force: true });
  return pair;
}

/** 64 hex characters (32 random bytes), mode 600. */
export function makeSecretFile(file: string): string {
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return file;
}

/** A key file for each peer (protocol's keys.ts format: one new key each), in `keysDir` (mode 700). */
export function makePeerKeyFiles(keysDir: string, peers: readonly string[]): void {
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  for (const peer of peers) {
    const file = peerKeyFile(keysDir, peer);
    writeFileSync(file, formatKeyFile(peer, [newSigningKey(peer)]), { mode: 0o600 });
    chmodSync(file, 0o600);
  }
}
