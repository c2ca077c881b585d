import { X509Certificate, createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isIP, type Socket } from 'node:net';
import { connect, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { ConfigError } from './config.js';

/**
 * How a client (the hook, the orchestrator's agent client, tools) decides it
 * talks to the right server: a CA file (chain and host name verified by
 * OpenSSL), a SHA-256 pin of the server's certificate, or both (both must hold).
 *
 * A pin is `sha256/` followed by the SHA-256 of the certificate's DER bytes,
 * in base64 (44 characters, as HPKP and curl write pins) or in hex (64
 * characters, colons allowed, as `openssl x509 -fingerprint -sha256` prints it).
 * It pins the certificate itself, not its public key: rotating the
 * certificate means rotating the pin (README, Security).
 *
 * With a pin only, the chain cannot be verified (there is no CA to verify it
 * against), so the connection is made with `rejectUnauthorized: false` and the
 * peer certificate is compared with the pin on `secureConnect`, before the
 * socket is handed to the HTTP client: not one byte of a signed request goes
 * to a server that does not hold the pinned certificate.
 */

export interface ServerTrust {
  /** PEM CA certificate(s) the server's chain must lead to. */
  ca?: Buffer;
  /** SHA-256 of the server certificate's DER bytes (32 bytes). */
  pin?: Buffer;
}

const PIN_PREFIX = 'sha256/';

/** Parse `sha256/<base64 or hex>`; throws an Error saying what is wrong. */
export function parsePin(text: string): Buffer {
  const value = text.trim();
  if (!value.toLowerCase().startsWith(PIN_PREFIX)) throw new Error('pin must start with sha256/');
  const body = value.slice(PIN_PREFIX.length);
  const hex = body.replace(/:/g, '');
  if (/^[0-9a-fA-F]{64}$/.test(hex)) return Buffer.from(hex, 'hex');
  if (/^[A-Za-z0-9+/]{43}=$/.test(body)) {
    const bytes = Buffer.from(body, 'base64');
    if (bytes.length === 32) return bytes;
  }
  throw new Error('pin must be sha256/ and 32 bytes in base64 (44 characters) or hex (64 characters)');
}

/** `sha256/<base64>` of a SHA-256 digest. */
export function formatPin(digest: Buffer): string {
  return `${PIN_PREFIX}${digest.toString('base64')}`;
}

/** The pin of a certificate, from its PEM (the first certificate) or DER bytes. */
export function certificatePin(certificate: Buffer | string): string {
  const der = new X509Certificate(certificate).raw;
  return formatPin(createHash('sha256').update(der).digest());
}

/** Read `ca` (a file) and parse `pin` as a config would give them; at least one is needed. */
export function loadServerTrust(options: { ca?: string | undefined; pin?: string | undefined }, where: string): ServerTrust {
  const trust: ServerTrust = {};
  if (options.ca) {
    try {
      trust.ca = readFileSync(options.ca);
    } catch (error) {
      throw new ConfigError(`${where} ca: cannot read ${options.ca}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  if (options.pin) {
    try {
      trust.pin = parsePin(options.pin);
    } catch (error) {
      throw new ConfigError(`${where} pin: ${(error as Error).message}`);
    }
  }
  if (!trust.ca && !trust.pin) throw new ConfigError(`${where}: give ca (a CA file) or pin (sha256/...), or both`);
  return trust;
}

/** TLS options for a connection that `verifyPeer` completes. */
export function tlsTrustOptions(trust: ServerTrust): Pick<ConnectionOptions, 'ca' | 'rejectUnauthorized' | 'minVersion'> {
  if (!trust.ca && !trust.pin) throw new Error('server trust needs a CA or a pin');
  return trust.ca
    ? { ca: trust.ca, rejectUnauthorized: true, minVersion: 'TLSv1.2' }
    : { rejectUnauthorized: false, minVersion: 'TLSv1.2' };
}

/** An error when the connected peer does not satisfy `trust` (call on `secureConnect`). */
export function verifyPeer(socket: TLSSocket, trust: ServerTrust): Error | undefined {
  if (trust.ca && !socket.authorized) {
    return Object.assign(new Error(`server certificate not trusted: ${String(socket.authorizationError ?? 'unknown')}`), {
      code: 'ERR_TLS_NOT_TRUSTED',
    });
  }
  if (trust.pin) {
    const raw = socket.getPeerCertificate()?.raw;
    const digest = raw && raw.length > 0 ? createHash('sha256').update(raw).digest() : undefined;
    if (!digest || !timingSafeEqual(digest, trust.pin)) {
      const seen = digest ? formatPin(digest) : 'no certificate';
      return Object.assign(new Error(`server certificate does not match the pin (${seen})`), { code: 'ERR_TLS_PIN_MISMATCH' });
    }
  }
  return undefined;
}

export interface VerifiedConnectionOptions {
  host?: string | null | undefined;
  hostname?: string | null | undefined;
  port?: number | string | null | undefined;
  servername?: string | undefined;
}

/**
 * `createConnection` for node:https (signed-client.ts's agent, or
 * `request(url, { createConnection })` with no `agent`: with `agent: false`
 * node makes an agent of its own and ignores this): connects, completes the
 * handshake, checks the peer against `trust`, and only then gives the socket
 * to the request.
 */
export function verifiedConnection(trust: ServerTrust, connectTimeoutMs = 10_000) {
  const tlsOptions = tlsTrustOptions(trust);
  return function createVerifiedConnection(
    options: VerifiedConnectionOptions,
    // node's http client passes its `oncreate`, which ignores the socket on an error.
    callback: (error: Error | null, socket: Socket) => void,
  ): undefined {
    const host = (options.hostname ?? options.host ?? 'localhost').replace(/^\[(.*)\]$/, '$1');
    // RFC 6066 §3: no IP literals in SNI.
    const servername = options.servername ?? (isIP(host) ? undefined : host);
    const socket = connect({ ...tlsOptions, host, port: Number(options.port ?? 443), ...(servername ? { servername } : {}) });
    let done = false;
    const finish = (error: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error) {
        socket.destroy();
        callback(error, socket);
      } else {
        callback(null, socket);
      }
    };
    const timer = setTimeout(
      () => finish(Object.assign(new Error(`TLS connect to ${host}: no handshake within ${connectTimeoutMs} ms`), { code: 'ERR_CONNECT_TIMEOUT' })),
      connectTimeoutMs,
    );
    socket.once('secureConnect', () => finish(verifyPeer(socket, trust) ?? null));
    socket.once('error', (error) => finish(error));
    return undefined;
  };
}
