import { signRequest } from '../hmac.js';
import { HOOK_PEER, Keyring, OPERATOR_PEER, fixedKeys, type SigningKey } from '../keys.js';
import { LEASE_EVENTS_PATH } from '../lease-event.js';

/** A key for unit tests: a fixed id and a 32-character secret made from `seed`. */
export function testKey(id: string, seed = id): SigningKey {
  return { id, secret: Buffer.from(seed.repeat(32).slice(0, 32).padEnd(32, 'x'), 'utf8') };
}

/** The orchestrator's two peers in unit tests. */
export const TEST_HOOK_KEY = testKey('hook-test');
export const TEST_OPERATOR_KEY = testKey('operator-test');

/** The keyring an orchestrator under test verifies with: the hook's and an operator's key. */
export function testOrchestratorKeyring(): Keyring {
  return new Keyring({ [HOOK_PEER]: fixedKeys([TEST_HOOK_KEY]), [OPERATOR_PEER]: fixedKeys([TEST_OPERATOR_KEY]) });
}

/**
 * Signature headers for an in-process request (`app.request(path)`: its
 * authority is `localhost`), signed as the real peer would: a lease event by
 * the hook, anything else by an operator.
 */
export function signedHeaders(method: string, path: string, body: string, options: { now?: number; key?: SigningKey } = {}): Record<string, string> {
  const key = options.key ?? (method === 'POST' && path === LEASE_EVENTS_PATH ? TEST_HOOK_KEY : TEST_OPERATOR_KEY);
  return signRequest({ key, authority: 'localhost', method, path, body, ...(options.now !== undefined ? { now: options.now } : {}) });
}
