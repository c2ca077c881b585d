import { z } from 'zod';
import { LEASE_ACTIONS, SERVER_ROLES } from '@unionize/protocol';
import type { ClientView, eventView } from '../api/views.js';
import type { WhoamiView } from '../api/whoami.js';
import type { AgentHealthView } from '../metrics/agent-health.js';
import { CLIENT_STATES, type InstanceRecord, type ServerRecord, type TransitionRecord } from '../store/types.js';

/**
 * The orchestrator's answers as zod schemas, for the OpenAPI document. The
 * store's records are TypeScript interfaces; the checks at the bottom make
 * the compiler refuse a schema that no longer matches its interface.
 */

const iso = z.string().describe('ISO 8601 time');
const state = z.enum(CLIENT_STATES);

export const instanceSchema = z.object({
  clientId: z.string(),
  agent: z.string(),
  containerName: z.string(),
  containerId: z.string(),
  address: z.string().describe('eth1 address with prefix length, e.g. fd00:3::100/64'),
  mac: z.string(),
  image: z.string(),
  createdAt: iso,
});

export const clientSchema = z.object({
  id: z.string().describe('hash of (server, DUID, IAID)'),
  server: z.string(),
  role: z.enum(SERVER_ROLES),
  duid: z.string(),
  iaid: z.string(),
  address: z.string().describe("the device's leased address"),
  hostname: z.string().nullable(),
  mac: z.string().nullable(),
  state,
  desired: z.enum(['running', 'removed']),
  stateReason: z.string(),
  expiresAt: iso.nullable(),
  profile: z.string().nullable().describe('the [profiles.NAME] its container was made from; null for the default'),
  ttlExpiresAt: iso.nullable().describe("when the profile's TTL runs out"),
  cooldownUntil: iso.nullable().describe('after a TTL ran out: no new container before this time'),
  firstSeen: iso,
  lastSeen: iso,
  updatedAt: iso,
  instance: instanceSchema.nullable(),
});

export const transitionSchema = z.object({ clientId: z.string(), from: state, to: state, reason: z.string(), at: iso });

export const eventSchema = z.object({
  eventId: z.string(),
  clientId: z.string(),
  /** When dnsmasq ran the hook (the hook host's clock); receivedAt minus this is the time in the hook's spool. */
  seenAt: iso,
  receivedAt: iso,
  appliedAt: iso.nullable(),
  outcome: z.string().nullable(),
  action: z.enum(LEASE_ACTIONS),
  server: z.string(),
  duid: z.string(),
  address: z.string(),
});

export const serverSchema = z.object({ name: z.string(), role: z.enum(SERVER_ROLES), firstSeen: iso, lastSeen: iso });

export const agentSchema = z.object({
  name: z.string(),
  instances: z.number().int().describe('containers recorded on this agent'),
  healthy: z.boolean().nullable().describe('last health check; null before the first'),
  checkedAt: iso.nullable(),
});

export const whoamiSchema = z.object({
  client: z.object({ address: z.string(), hostname: z.string().nullable(), state: z.string(), expiresAt: iso.nullable() }),
  container: z.object({ name: z.string(), address: z.string() }).nullable(),
});

export const leaseEventAcceptedSchema = z.object({ eventId: z.string(), clientId: z.string(), duplicate: z.boolean() });
export const deprovisionQueuedSchema = z.object({ clientId: z.string(), queued: z.literal(true) });
export const healthSchema = z.object({ ok: z.boolean() });
export const readySchema = z.object({ ok: z.boolean(), queued: z.number().int() });

export const clientListSchema = z.object({ clients: z.array(clientSchema), next: z.string().nullable().describe('The id to pass as after for the next page; null on the last') });
export const clientDetailSchema = clientSchema.extend({ transitions: z.array(transitionSchema) });
export const instanceListSchema = z.object({ instances: z.array(instanceSchema) });
export const eventListSchema = z.object({ events: z.array(eventSchema) });
export const serverListSchema = z.object({ servers: z.array(serverSchema) });
export const agentListSchema = z.object({ agents: z.array(agentSchema) });

// Compile-time: each schema describes exactly its TypeScript type.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const schemasMatchTypes: [
  Same<z.infer<typeof clientSchema>, ClientView>,
  Same<z.infer<typeof instanceSchema>, InstanceRecord>,
  Same<z.infer<typeof transitionSchema>, TransitionRecord>,
  Same<z.infer<typeof eventSchema>, ReturnType<typeof eventView>>,
  Same<z.infer<typeof serverSchema>, ServerRecord>,
  Same<z.infer<typeof whoamiSchema>, WhoamiView>,
  Same<Omit<z.infer<typeof agentSchema>, 'instances'>, Omit<AgentHealthView, 'latencyMs'>>,
] = [true, true, true, true, true, true, true];
