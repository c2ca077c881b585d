import { parseHookCall, type HookCall, type HookCallContext } from '@unionize/protocol/dnsmasq-call';
import { parseKeaCall } from './kea-call.js';

/**
 * Where lease changes come from: a DHCP server that runs a script for each.
 * A source turns one such call (its arguments and environment) into the
 * lease events it means, each validated at the edge (protocol's leaseEventOf),
 * so the flusher and the orchestrator see the same events whichever server
 * runs the script.
 */
export interface LeaseSource {
  readonly name: 'dnsmasq' | 'kea';
  /** One call, the events it means in order (Kea's leases6_committed may carry several; dnsmasq's one). */
  eventsOf(argv: readonly string[], env: Readonly<Record<string, string | undefined>>, ctx: HookCallContext): HookCall[];
}

/** dnsmasq's --dhcp-script: `ACTION DUID ADDRESS [HOSTNAME]` and DNSMASQ_* (what dnsmasq/orchestrator-hook.sh spools today). */
export const dnsmasqSource: LeaseSource = {
  name: 'dnsmasq',
  eventsOf: (argv, env, ctx) => [parseHookCall(argv, env, ctx)],
};

/** Kea's run_script hook: the hook point as the argument, LEASE6_* in the environment (kea-call.ts). */
export const keaSource: LeaseSource = {
  name: 'kea',
  eventsOf: parseKeaCall,
};
