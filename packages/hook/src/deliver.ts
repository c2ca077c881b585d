import { Agent, request } from 'node:https';
import { signRequest } from '@unionize/protocol/hmac';
import { verifiedConnection } from '@unionize/protocol/tls-pin';
import { LEASE_EVENTS_PATH, type LeaseEvent } from '@unionize/protocol/lease-event';

export interface DeliveryTarget {
  url: string;
  /** The orchestrator is verified by `ca`, `pin` (SHA-256 of its certificate: protocol's tls-pin.ts), or both. */
  ca?: Buffer;
  pin?: Buffer;
  secret: Buffer;
  /** The whole request (connect, TLS, answer) must finish within this. */
  timeoutMs: number;
  /** Extra request headers, e.g. `x-hook-spool-depth`. */
  headers?: Record<string, string>;
  /** A kept-alive agent (keptAliveDelivery) instead of one connection for this request. */
  agent?: Agent;
}

export type DeliveryResult =
  | { ok: true; status: number }
  | { ok: false; retryable: boolean; status?: number; reason: string };

/** Deliver one event (signing it now) within `timeoutMs`, telling the orchestrator the spool depth. */
export type DeliverFn = (event: LeaseEvent, options: { timeoutMs: number; spoolDepth: number }) => Promise<DeliveryResult>;

/**
 * Request header: how many events wait in the hook's spool behind the one
 * delivered (0 when the spool is empty or this was its last). Informational.
 */
export const SPOOL_DEPTH_HEADER = 'x-hook-spool-depth';

/**
 * A 4xx that says "this event itself is bad" (400, 413, 422…) will never be
 * accepted: not retryable. 401/403 are about the hook's secret or clock, not
 * the event: once the operator fixes them the spool must drain by itself, so
 * they are retried like 429, 5xx, an unexpected 3xx and transport failures.
 */
export function isRetryableStatus(status: number): boolean {
  if (status === 401 || status === 403 || status === 429) return true;
  return !(status >= 400 && status < 500);
}

/**
 * POST one lease event, signed now (the HMAC window is short, so spooled
 * events are signed at delivery, never when spooled). Uses node:https rather
 * than undici: the hook is a short-lived process started by dnsmasq for every
 * lease change, and loading undici costs more start-up time than the one
 * request it would make.
 */
export async function deliverEvent(event: LeaseEvent, target: DeliveryTarget): Promise<DeliveryResult> {
  const first = await deliverOnce(event, target);
  // A kept-alive connection the server closed while idle fails at once on reuse: once more on a new one (node's http docs).
  if (!first.ok && 'reusedSocket' in first) return deliverOnce(event, target);
  return first;
}

type Attempt = DeliveryResult | (Extract<DeliveryResult, { ok: false }> & { reusedSocket: true });

function deliverOnce(event: LeaseEvent, target: DeliveryTarget): Promise<Attempt> {
  const body = JSON.stringify(event);
  const url = new URL(LEASE_EVENTS_PATH, target.url);
  const headers = {
    ...target.headers,
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(body)),
    // The event's id is its request id, from the hook through the orchestrator to the agent.
    'x-request-id': event.eventId,
    ...signRequest({ secret: target.secret, method: 'POST', path: url.pathname, body }),
  };
  // Verifies the server (CA and/or pin) before a byte of the signed request is written (the agent's connections too).
  const connection = target.agent
    ? { agent: target.agent }
    : { createConnection: verifiedConnection({ ca: target.ca, pin: target.pin }, target.timeoutMs) };
  return new Promise((resolve) => {
    let settled = false;
    const settle = (result: Attempt) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    const req = request(url, { method: 'POST', headers, timeout: target.timeoutMs, ...connection }, (res) => {
      const status = res.statusCode ?? 0;
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (text.length < 2048) text += chunk;
      });
      res.on('error', (error) => settle({ ok: false, retryable: true, status, reason: error.message }));
      res.on('end', () => {
        if (status >= 200 && status < 300) settle({ ok: true, status });
        else settle({ ok: false, retryable: isRetryableStatus(status), status, reason: text.slice(0, 300) || `HTTP ${status}` });
      });
    });
    // `timeout` above is an idle timeout; this bounds the whole exchange (a slow
    // trickle of bytes must not hold dnsmasq's script queue either).
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${target.timeoutMs} ms`)), target.timeoutMs);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${target.timeoutMs} ms`)));
    req.on('error', (error) => {
      const code = (error as NodeJS.ErrnoException).code;
      const stale = req.reusedSocket && (code === 'ECONNRESET' || code === 'EPIPE');
      settle({ ok: false, retryable: true, reason: error.message, ...(stale ? { reusedSocket: true as const } : {}) });
    });
    req.end(body);
  });
}

/** The DeliverFn the hook and the flusher use: one target, the spool depth as a header. */
export function deliverTo(target: Omit<DeliveryTarget, 'timeoutMs' | 'headers'>): DeliverFn {
  return (event, { timeoutMs, spoolDepth }) =>
    deliverEvent(event, { ...target, timeoutMs, headers: { [SPOOL_DEPTH_HEADER]: String(spoolDepth) } });
}

/**
 * Free connections are closed after this long idle: below the orchestrator's
 * keep-alive timeout (node's default, 5 s), so the server rarely closes one
 * under a new request.
 */
export const KEEP_ALIVE_IDLE_MS = 4000;

/**
 * The flusher's DeliverFn: one kept-alive, verified TLS connection reused for
 * event after event (the handshake costs more than the request).
 */
export function keptAliveDelivery(target: Omit<DeliveryTarget, 'timeoutMs' | 'headers' | 'agent'>, connectTimeoutMs = 10_000): { deliver: DeliverFn; close: () => void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, timeout: KEEP_ALIVE_IDLE_MS });
  // node's Agent calls createConnection(options, callback) and takes the socket from the callback.
  (agent as unknown as { createConnection: unknown }).createConnection = verifiedConnection({ ca: target.ca, pin: target.pin }, connectTimeoutMs);
  return {
    deliver: (event, { timeoutMs, spoolDepth }) =>
      deliverEvent(event, { ...target, agent, timeoutMs, headers: { [SPOOL_DEPTH_HEADER]: String(spoolDepth) } }),
    close: () => agent.destroy(),
  };
}
