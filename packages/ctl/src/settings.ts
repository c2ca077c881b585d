import { existsSync, readFileSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { z } from 'zod';
import { ConfigError, certificatePin, loadConfigFile, loadServerTrust, readSecretFile, type ServerTrust } from '@unionize/protocol';
import { CtlError } from './errors.js';

export const DEFAULT_CONFIG = '/etc/orchestrator/orchestrator.ini';

/** What the command line says about where the orchestrator is and how to trust it. */
export interface ConnectionFlags {
  config?: string;
  url?: string;
  secretFile?: string;
  ca?: string;
  pin?: string;
}

export interface Connection {
  url: string;
  secret: Buffer;
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
  auth: z.object({ secret_file: z.string().min(1) }),
});

/** The URL to reach a server listening on `listen`: the loopback address for a wildcard. */
export function localUrl(listen: string, port: number): string {
  const host = listen === '' || listen === '::' ? '::1' : listen === '0.0.0.0' ? '127.0.0.1' : listen;
  return isIPv4(host) || !host.includes(':') ? `https://${host}:${port}` : `https://[${host}]:${port}`;
}

/**
 * Flags win over the config file. From the config: the URL (its listen
 * address and port; a wildcard means the loopback address), the secret file,
 * and the server's own certificate, pinned (`[server] cert` is exactly what
 * the orchestrator presents, so no CA or host name is needed on its host).
 */
export function resolveConnection(flags: ConnectionFlags): Connection {
  const configFile = flags.config ?? (existsSync(DEFAULT_CONFIG) ? DEFAULT_CONFIG : undefined);
  const haveFlags = flags.url && flags.secretFile && (flags.ca || flags.pin);
  if (!configFile && !haveFlags) {
    throw new CtlError(
      `no orchestrator to talk to: give --config FILE (${DEFAULT_CONFIG} is not there), or --url, --secret-file and --ca or --pin`,
      2,
    );
  }
  try {
    let url = flags.url;
    let secretFile = flags.secretFile;
    let pin = flags.pin;
    if (configFile && !haveFlags) {
      const config = loadConfigFile(configFile, orchestratorIni);
      url ??= localUrl(config.server.listen, config.server.port);
      secretFile ??= config.auth.secret_file;
      if (!flags.ca && !pin) pin = certificatePin(readCert(config.server.cert, configFile));
    }
    if (!url || !/^https:\/\//.test(url)) throw new CtlError(`--url must be an https:// URL, got ${url ?? 'nothing'}`, 2);
    const trust = loadServerTrust({ ca: flags.ca, pin }, 'orchestratorctl');
    const secret = readSecretFile(secretFile!);
    return { url, secret, trust, source: configFile && !haveFlags ? configFile : 'flags' };
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
