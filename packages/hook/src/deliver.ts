import { request } from 'node:https';
import { signRequest } from '@unionize/protocol/hmac';
import { verifiedConnection } from '@unionize/protocol/tls-pin';
import { LEASE_EVENTS_PATH, type LeaseEvent } from '@unionize/protocol/lease-event';

export interface DeliveryTarget {
  url: string;
  /** The orchestrator is verified by `ca`, `pin` (SHA-256 of its certificate: protocol's tls-pin.ts), or both. */
  ca?: Buffer;
  pin?: Buffer;
  secret: Buffer;
  timeoutMs: number;
}

export type DeliveryResult =
  | { ok: true; status: number }
  | { ok: false; retryable: boolean; status?: number; reason: string };

/**
 * POST one signed lease event. Uses node:https rather than undici: the hook is a
 * short-lived process started by dnsmasq for every lease change, and loading
 * undici costs more start-up time than the one request it would make.
 */
export function deliverEvent(event: LeaseEvent, target: DeliveryTarget): Promise<DeliveryResult> {
  const body = JSON.stringify(event);
  const url = new URL(LEASE_EVENTS_PATH, target.url);
  const headers = {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    ...signRequest({ secret: target.secret, method: 'POST', path: url.pathname, body }),
  };
  // Verifies the server (CA and/or pin) before a byte of the signed request is written.
  const createConnection = verifiedConnection({ ca: target.ca, pin: target.pin }, target.timeoutMs);
  return new Promise((resolve) => {
    const req = request(url, { method: 'POST', headers, timeout: target.timeoutMs, createConnection }, (res) => {
      const status = res.statusCode ?? 0;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (text.length < 2048) text += chunk;
      });
      res.on('end', () => {
        if (status >= 200 && status < 300) resolve({ ok: true, status });
        else resolve({ ok: false, retryable: status >= 500 || status === 429, status, reason: text.slice(0, 300) });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${target.timeoutMs} ms`)));
    req.on('error', (error) => resolve({ ok: false, retryable: true, reason: error.message }));
    req.end(body);
  });
}
