import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from './temp-dir.js';

/** For unit tests: a throw-away CA and a server certificate for localhost and 127.0.0.1 (openssl CLI, EC P-256). */
export interface TestCerts {
  dir: string;
  caCert: string;
  cert: string;
  key: string;
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'ignore' });
}

export function makeTestCerts(name = 'test'): TestCerts {
  const dir = makeTempDir(`${name}-tls-`);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const caCert = join(dir, 'ca.crt');
  const caKey = join(dir, 'ca.key');
  openssl(['req', '-x509', ...ec, '-days', '1', '-subj', `/CN=${name}-ca`, '-keyout', caKey, '-out', caCert,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign']);
  const key = join(dir, 'srv.key');
  const cert = join(dir, 'srv.crt');
  openssl(['req', '-new', ...ec, '-subj', '/CN=localhost', '-keyout', key, '-out', join(dir, 'srv.csr')]);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n');
  openssl(['x509', '-req', '-in', join(dir, 'srv.csr'), '-CA', caCert, '-CAkey', caKey, '-CAcreateserial', '-days', '1',
    '-extfile', join(dir, 'san.ext'), '-out', cert]);
  return { dir, caCert, cert, key };
}
