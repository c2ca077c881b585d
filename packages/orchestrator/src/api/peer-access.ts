import { HOOK_PEER, LEASE_EVENTS_PATH, OPERATOR_PEER } from '@unionize/protocol';

/**
 * What each peer's key may call on the orchestrator's signed routes (least
 * privilege): the hook posts lease events and nothing else, so the dnsmasq
 * host's key cannot read or delete clients; operators (`orchestratorctl`)
 * call everything else, but cannot forge lease events. A 403 otherwise.
 */
export function orchestratorPeerMayCall(peer: string, method: string, path: string): boolean {
  const postsLeaseEvent = method === 'POST' && path === LEASE_EVENTS_PATH;
  if (peer === HOOK_PEER) return postsLeaseEvent;
  if (peer === OPERATOR_PEER) return !postsLeaseEvent;
  return false;
}
