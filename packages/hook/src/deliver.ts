import type { SigningKey } from '@unionize/protocol/keys';
import { SignedClient, type SignedClientError } from '@unionize/protocol/signed-client';
import { HOOK_REJECTED_HEADER, HOOK_SPOOL_DEPTH_HEADER, LEASE_EVENTS_PATH, type LeaseEvent } from '@unionize/protocol/lease-event';

export interface DeliveryTarget {
  url: string;
  /** The orchestrator is verified by `ca`, `pin` (SHA-256 of its certificate: protocol's tls-pin.ts), or both. */
  ca?: Buffer;
  pin?: Buffer;
  /** The hook's signing key. */
  key: SigningKey;
}

export type DeliveryResult =
  | { ok: true; status: number }
  | { ok: false; retryable: boolean; status?: number; reason: string };

/** Deliver one event (signing it now) within `timeoutMs`, telling the orchestrator the spool's depth and how many it set aside. */
export type DeliverFn = (event: LeaseEvent, options: { timeoutMs: number; spoolDepth: number; rejected: number }) => Promise<DeliveryResult>;

/**
 * A 4xx that says "this event itself is bad" (400, 413, 422…) will never be
 * accepted: not retryable. 401/403 are about the hook's key or clock, not
 * the event: once the operator fixes them the spool must drain by itself, so
 * they are retried like 429, 5xx, an unexpected 3xx and transport failures.
 */
export function isRetryableStatus(status: number): boolean {
  if (status === 401 || status === 403 || status === 429) return true;
  return !(status >= 400 && status < 500);
}

/** A lease event's answer is a few bytes; an error page is read no further than this. */
const MAX_ANSWER_BYTES = 64 * 1024;

function clientFor(target: DeliveryTarget, connectTimeoutMs: number): SignedClient {
  return new SignedClient({
    url: target.url,
    // Verifies the server (CA and/or pin) before a byte of the signed request is written.
    trust: { ca: target.ca, pin: target.pin },
    key: target.key,
    connections: 1,
    keepAlive: true,
    keepAliveMs: KEEP_ALIVE_IDLE_MS,
    connectTimeoutMs,
    maxResponseBytes: MAX_ANSWER_BYTES,
  });
}

/**
 * POST one lease event, signed now (the HMAC window is short, so spooled
 * events are signed at delivery, never when spooled), through protocol's
 * SignedClient. `timeoutMs` bounds the whole exchange: a slow trickle of
 * bytes must not hold the spool either.
 */
async function deliverWith(client: SignedClient, event: LeaseEvent, timeoutMs: number, headers: Record<string, string>): Promise<DeliveryResult> {
  let status: number;
  let text: string;
  try {
    // The event's id is its request id, from the hook through the orchestrator to the agent.
    ({ status, text } = await client.request({ method: 'POST', path: LEASE_EVENTS_PATH, body: JSON.stringify(event), requestId: event.eventId, headers, timeoutMs }));
  } catch (error) {
    const failed = error as SignedClientError;
    // An answer too large to read still says what its status says.
    if (failed.kind !== 'response' || failed.status === undefined) return { ok: false, retryable: true, reason: failed.message };
    ({ status, text } = { status: failed.status, text: failed.message });
  }
  if (status >= 200 && status < 300) return { ok: true, status };
  return { ok: false, retryable: isRetryableStatus(status), status, reason: text.slice(0, 300) || `HTTP ${status}` };
}

/**
 * Free connections are closed after this long idle: below the orchestrator's
 * keep-alive timeout (node's default, 5 s), so the server rarely closes one
 * under a new request (and when it does, the client sends the event again on
 * a new connection).
 */
export const KEEP_ALIVE_IDLE_MS = 4000;

/**
 * The flusher's DeliverFn: one kept-alive, verified TLS connection reused for
 * event after event (the handshake costs more than the request).
 */
export function keptAliveDelivery(target: DeliveryTarget, connectTimeoutMs = 10_000): { deliver: DeliverFn; close: () => void } {
  const client = clientFor(target, connectTimeoutMs);
  return {
    deliver: (event, { timeoutMs, spoolDepth, rejected }) =>
      deliverWith(client, event, timeoutMs, { [HOOK_SPOOL_DEPTH_HEADER]: String(spoolDepth), [HOOK_REJECTED_HEADER]: String(rejected) }),
    close: () => void client.close(),
  };
}

/**
 * Delivery to the first of several orchestrators (a pair) that takes the
 * event: the one that took the last is tried first, and on a retryable
 * failure (unreachable, 5xx, a standby's 503, 401 from one just restarted)
 * the next, each once per event. A failure no other would change (the
 * event itself is bad: 400, 413, 422) is answered at once. The last failure is the answer when none took it:
 * the event stays spooled.
 */
export function failoverDelivery(targets: readonly DeliveryTarget[], connectTimeoutMs = 10_000): { deliver: DeliverFn; close: () => void } {
  if (targets.length === 0) throw new Error('failoverDelivery: no orchestrator to deliver to');
  const deliveries = targets.map((target) => keptAliveDelivery(target, connectTimeoutMs));
  let preferred = 0;
  return {
    deliver: async (event, options) => {
      let result: DeliveryResult | undefined;
      for (let tried = 0; tried < deliveries.length; tried++) {
        const index = (preferred + tried) % deliveries.length;
        result = await deliveries[index]!.deliver(event, options);
        if (result.ok) {
          preferred = index;
          return result;
        }
        if (!result.retryable) return result;
      }
      return result!;
    },
    close: () => {
      for (const delivery of deliveries) delivery.close();
    },
  };
}
