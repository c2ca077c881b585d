import { existsSync, readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import {
  ConfigError, OPERATOR_PEER, certificatePin, iniList, loadConfigFile, loadServerTrust, peerKeyFile, readKeyFile, type ServerTrust, type SigningKey,
} from '@unionize/protocol';
import { CtlError } from './errors.js';

export const DEFAULT_CONFIG = '/etc/orchestrator/orchestrator.ini';

/** What the command line says about where the orchestrator is and how to trust it. */
export interface ConnectionFlags {
  config?: string;
  url?: string;
  /** The operator's key file (default: operator.keys in the config's [auth] keys_dir). */
  keyFile?: string;
  /** The peers' key files, for `keys` and `init` (default: the config's [auth] keys_dir). */
  keysDir?: string;
  ca?: string;
  pin?: string;
}

export interface Connection {
  /** The orchestrator, or each of a pair's (tried in turn: client.ts). */
  urls: string[];
  /** The operator's signing key: the first in its file. */
  key: SigningKey;
  trust: ServerTrust;
  /** Where each setting came from, for `--verbose` and error messages. */
  source: string;
}

/** The parts of orchestrator.ini orchestratorctl needs; the rest is the daemon's to check. */
const orchestratorIni = z.object({
  server: z.object({
    listen: z.string().default('::'),
    port: z.coerce.number().int().min(1).max(65535).default(8443),
    cert: z.string().min(1),
  }),
  auth: z.object({ keys_dir: z.string().min(1) }),
  /** A pair's orchestrators and the CA of their certificates (orchestrator.ini, [pair]). */
  pair: z.object({ urls: z.string().default(''), ca: z.string().min(1).optional() }).prefault({}),
});


/** The URL to reach a server listening on `listen`: the loopback address for a wildcard. */
export function localUrl(listen: string, port: number): string {
  const host = listen === '' || listen === '::' ? '::1' : listen === '0.0.0.0' ? '127.0.0.1' : listen;
  return isIPv4(host) || !host.includes(':') ? `https://${host}:${port}` : `https://[${host}]:${port}`;
}

/**
 * Flags win over the config file. From the config: the URL (its listen
 * address and port; a wildcard means the loopback address), the operator's key file,
 * and the server's own certificate, pinned (`[server] cert` is exactly what
 * the orchestrator presents, so no CA or host name is needed on its host).
 */
export function resolveConnection(flags: ConnectionFlags): Connection {
  const configFile = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  const haveFlags = flags.url && flags.keyFile && (flags.ca || flags.pin);
  if (!configFile && !haveFlags) {
    throw new CtlError(
      `no orchestrator to talk to: give --config FILE (${DEFAULT_CONFIG} is not there), or --url, --key-file and --ca or --pin`,
      2,
    );
  }
  try {
    let urls = flags.url === undefined ? [] : iniList(flags.url);
    let keyFile = flags.keyFile;
    let pin = flags.pin;
    let ca = flags.ca;
    if (configFile && !haveFlags) {
      const config = loadConfigFile(configFile, orchestratorIni);
      const pair = iniList(config.pair.urls);
      // A pair's every orchestrator, verified by their CA (each has a certificate of its own); else this host's, by its certificate's pin.
      if (urls.length === 0 && pair.length > 0 && (config.pair.ca || ca)) {
        urls = pair;
        ca ??= config.pair.ca;
      }
      if (urls.length === 0) urls = [localUrl(config.server.listen, config.server.port)];
      keyFile ??= peerKeyFile(flags.keysDir ?? config.auth.keys_dir, OPERATOR_PEER);
      if (!ca && !pin) pin = certificatePin(readCert(config.server.cert, configFile));
    }
    const bad = urls.find((url) => !/^https:\/\//.test(url));
    if (urls.length === 0 || bad !== undefined) throw new CtlError(`--url must be an https:// URL (or several, separated by commas), got ${bad ?? 'nothing'}`, 2);
    const trust = loadServerTrust({ ca, pin }, 'orchestratorctl');
    const key = readKeyFile(keyFile!)[0]!;
    return { urls, key, trust, source: configFile && !haveFlags ? configFile : 'flags' };
  } catch (error) {
    if (error instanceof ConfigError) throw new CtlError(error.message);
    throw error;
  }
}

/** The peers' key directory: --keys-dir, or the config's [auth] keys_dir. */
export function resolveKeysDir(flags: ConnectionFlags): string {
  if (flags.keysDir) return flags.keysDir;
  const configFile = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  if (!configFile) throw new CtlError(`no keys directory: give --keys-dir DIR or --config FILE (${DEFAULT_CONFIG} is not there)`, 2);
  try {
    return loadConfigFile(configFile, z.object({ auth: z.object({ keys_dir: z.string().min(1) }) })).auth.keys_dir;
  } catch (error) {
    if (error instanceof ConfigError) throw new CtlError(error.message);
    throw error;
  }
}

function readCert(file: string, configFile: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new CtlError(`config ${configFile}: [server] cert: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
