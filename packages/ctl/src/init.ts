import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { HOOK_PEER, OPERATOR_PEER, agentPeer, certificatePin, nameSchema, peerKeyFile } from '@unionize/protocol';
import { CtlError } from './errors.js';
import { makePeerKeys } from './keys.js';

const run = promisify(execFile);

/**
 * `orchestratorctl init`: everything the two hosts need to trust each other,
 * in one directory: a key for each peer in keys/ (the hook's, the operators',
 * one per agent: protocol's keys.ts), the dashboard and metrics tokens
 * (each 32 random bytes in hex, mode 600), a CA, and server certificates for
 * the orchestrator and unionize with the given SANs (EC P-256, keys mode 600),
 * made with the openssl CLI (node's crypto cannot sign certificates), always
 * with argument arrays. An existing CA, keys and tokens are kept (so a
 * second run re-issues the server certificates from the same CA: a rotation);
 * the server certificates are made anew each time.
 */
export interface InitOptions {
  dir: string;
  orchestratorSans: string[];
  unionizeSans: string[];
  /** The `[agents.NAME]` names: each gets a key of its own. */
  agents: string[];
  days: number;
  openssl?: string;
}

export interface InitResult {
  dir: string;
  files: Record<string, string>;
  /** What was made now, as opposed to kept. */
  made: string[];
  pins: { orchestrator: string; unionize: string };
  agents: string[];
}

/** `fd00::1` → `IP:fd00::1`, `orch.example` → `DNS:orch.example`; anything else is refused (it would go into an openssl config). */
export function normaliseSan(value: string): string {
  const v = value.trim();
  const typed = /^(IP|DNS):(.*)$/i.exec(v);
  const kind = typed ? typed[1]!.toUpperCase() : isIP(v) ? 'IP' : 'DNS';
  const name = typed ? typed[2]! : v;
  if (kind === 'IP' && isIP(name)) return `IP:${name}`;
  if (kind === 'DNS' && /^(?=.{1,253}$)(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(name)) {
    return `DNS:${name}`;
  }
  throw new CtlError(`not a subject alternative name: ${JSON.stringify(value)} (give an IP address or a DNS name, optionally as IP:... or DNS:...)`, 2);
}

function writeToken(file: string): void {
  writeFileSync(file, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
}

export async function init(options: InitOptions): Promise<InitResult> {
  const openssl = options.openssl ?? 'openssl';
  if (!Number.isInteger(options.days) || options.days < 1 || options.days > 3650) throw new CtlError('--days must be 1..3650', 2);
  const orchestratorSans = [...new Set(['DNS:localhost', 'IP:::1', 'IP:127.0.0.1', ...options.orchestratorSans.map(normaliseSan)])];
  const unionizeSans = [...new Set(options.unionizeSans.map(normaliseSan))];
  if (unionizeSans.length === 0) {
    throw new CtlError("give --unionize-san with the docker host's address or name, as the orchestrator's [agents.NAME] url names it", 2);
  }

  const agents = [...new Set(options.agents.length ? options.agents : ['dock1'])];
  for (const agent of agents) {
    if (!nameSchema.safeParse(agent).success) throw new CtlError(`--agent ${JSON.stringify(agent)}: an agent's name is [a-z0-9_-], at most 63`, 2);
  }
  const dir = resolve(options.dir);
  // Missing parents (e.g. /etc/unionize for --dir /etc/unionize/pki) are made 755, as mkdir -p would:
  // mode 700 on them would keep the orchestrator's user out of the directory it was given.
  mkdirSync(dirname(dir), { recursive: true, mode: 0o755 });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const f = (name: string) => join(dir, name);
  const files = {
    keysDir: f('keys'),
    dashboardToken: f('dashboard-token'),
    metricsToken: f('metrics-token'),
    caCert: f('ca.crt'),
    caKey: f('ca.key'),
    orchestratorCert: f('orchestrator.crt'),
    orchestratorKey: f('orchestrator.key'),
    unionizeCert: f('unionize.crt'),
    unionizeKey: f('unionize.key'),
  };
  const made: string[] = [];
  made.push(...makePeerKeys(files.keysDir, [HOOK_PEER, OPERATOR_PEER, ...agents.map(agentPeer)]));
  for (const key of ['dashboardToken', 'metricsToken'] as const) {
    if (existsSync(files[key])) continue;
    writeToken(files[key]);
    made.push(files[key]);
  }

  const ssl = async (args: string[]) => {
    try {
      await run(openssl, args, { timeout: 30_000 });
    } catch (error) {
      const e = error as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT') throw new CtlError('openssl is not installed (Debian: apt-get install openssl)');
      throw new CtlError(`openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim().split('\n').slice(-2).join(' ')}`);
    }
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  const days = String(options.days);

  const haveCa = existsSync(files.caCert) && existsSync(files.caKey);
  if (!haveCa) {
    if (existsSync(files.caCert) || existsSync(files.caKey)) throw new CtlError(`${dir} has one of ca.crt and ca.key but not the other: move it away first`);
    await ssl(['req', '-x509', ...ec, '-keyout', files.caKey, '-out', files.caCert, '-days', String(Math.max(options.days, 3650)),
      '-subj', '/CN=unionize CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    chmodSync(files.caKey, 0o600);
    chmodSync(files.caCert, 0o644);
    made.push(files.caCert, files.caKey);
  }

  const work = mkdtempSync(join(dir, '.init-'));
  try {
    for (const [name, sans, cert, key] of [
      ['orchestrator', orchestratorSans, files.orchestratorCert, files.orchestratorKey],
      ['unionize', unionizeSans, files.unionizeCert, files.unionizeKey],
    ] as const) {
      const csr = join(work, `${name}.csr`);
      const ext = join(work, `${name}.ext`);
      writeFileSync(ext, ['basicConstraints = critical,CA:FALSE', 'keyUsage = critical,digitalSignature', 'extendedKeyUsage = serverAuth', `subjectAltName = ${sans.join(',')}`, ''].join('\n'));
      const newKey = join(work, `${name}.key`);
      await ssl(['req', '-new', ...ec, '-keyout', newKey, '-out', csr, '-subj', `/CN=${name}`]);
      await ssl(['x509', '-req', '-in', csr, '-CA', files.caCert, '-CAkey', files.caKey, '-set_serial', `0x${randomBytes(16).toString('hex')}`,
        '-days', days, '-extfile', ext, '-out', join(work, `${name}.crt`)]);
      // Into place only once both exist: a failed run leaves the old pair whole.
      writeFileSync(key, readFileSync(newKey), { mode: 0o600 });
      chmodSync(key, 0o600);
      writeFileSync(cert, readFileSync(join(work, `${name}.crt`)), { mode: 0o644 });
      chmodSync(cert, 0o644);
      made.push(cert, key);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  return {
    dir,
    files,
    made,
    pins: { orchestrator: certificatePin(readFileSync(files.orchestratorCert)), unionize: certificatePin(readFileSync(files.unionizeCert)) },
    agents,
  };
}

/** What to put in each INI file, with the pins. */
export function initReport(result: InitResult, sans: { orchestrator: string[]; unionize: string[] }): string {
  const { files, pins } = result;
  const unionizeHost = sans.unionize[0]?.replace(/^(IP|DNS):/i, '') ?? 'DOCKER-HOST';
  const unionizeUrl = isIP(unionizeHost) === 6 ? `https://[${unionizeHost}]:9443` : `https://${unionizeHost}:9443`;
  const agentSections = result.agents.map((agent) => `[agents.${agent}]
url = ${unionizeUrl}
ca = ${files.caCert}
pin = ${pins.unionize}`).join('\n');
  return `made in ${result.dir}: ${result.made.length ? result.made.map((m) => m.slice(result.dir.length + 1)).join(', ') : 'nothing (all there)'}

Orchestrator host: keep keys/, dashboard-token, metrics-token, ca.crt and
orchestrator.{crt,key} (owned by the orchestrator's user, mode 600 for keys
and tokens); the hook (root) reads keys/hook.keys and ca.crt too. Keep
ca.key offline once the certificates are made. Each key file is one peer's:
hook.keys (posts lease events only), operator.keys (orchestratorctl),
agent-NAME.keys (the orchestrator signs with it; that agent alone accepts it).

# /etc/orchestrator/orchestrator.ini
[server]
cert = ${files.orchestratorCert}
key = ${files.orchestratorKey}
[auth]
keys_dir = ${files.keysDir}
[dashboard]
token_file = ${files.dashboardToken}
[metrics]
token_file = ${files.metricsToken}
${agentSections}

# /etc/orchestrator/hook.ini
[orchestrator]
url = https://[::1]:8443
ca = ${files.caCert}
pin = ${pins.orchestrator}
key_file = ${peerKeyFile(files.keysDir!, HOOK_PEER)}

Each docker host NAME: copy keys/agent-NAME.keys to /etc/unionize/orchestrator.keys,
and metrics-token and unionize.{crt,key} (mode 600 for keys and tokens).

# /etc/unionize/unionize.ini
[server]
cert = ${files.unionizeCert}
key = ${files.unionizeKey}
[auth]
key_file = /etc/unionize/orchestrator.keys
[metrics]
token_file = ${files.metricsToken}

certificate pins (SHA-256 of each certificate; they change when it is re-issued):
orchestrator  ${pins.orchestrator}  (${sans.orchestrator.join(', ')})
unionize      ${pins.unionize}  (${sans.unionize.join(', ')})
`;
}
