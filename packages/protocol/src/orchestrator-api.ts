import { z } from 'zod';
import { LEASE_ACTIONS, SERVER_ROLES, duidSchema, macSchema } from './lease-event.js';
import { EVENT_OUTCOME_KINDS } from './outcomes.js';
import { poolStatusSchema } from './agent-api.js';

/**
 * The orchestrator's API: what its routes answer (and take), once. The
 * orchestrator builds its answers typed from these and its OpenAPI document
 * from them; orchestratorctl parses the answers with them; the tests' client
 * types are inferred from them. Answers are plain objects, so a parse keeps
 * exactly the documented fields (api/contract.test.ts in the orchestrator
 * fails on any other).
 */

/** pending → provisioning → ready → deprovisioning → gone, with failed beside them. */
export const CLIENT_STATES = ['pending', 'provisioning', 'ready', 'deprovisioning', 'gone', 'failed'] as const;
export type ClientState = (typeof CLIENT_STATES)[number];

/** What a client's lease asks for: a running container, or none. */
export const DESIRED_STATES = ['running', 'removed'] as const;
export type DesiredState = (typeof DESIRED_STATES)[number];

const iso = z.string().describe('ISO 8601 time');
const clientStateSchema = z.enum(CLIENT_STATES);

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
export type InstanceView = z.infer<typeof instanceSchema>;

export const clientSchema = z.object({
  id: z.string().describe('hash of (server, DUID, IAID)'),
  server: z.string(),
  role: z.enum(SERVER_ROLES),
  duid: z.string(),
  iaid: z.string(),
  address: z.string().describe("the device's leased address"),
  hostname: z.string().nullable(),
  mac: z.string().nullable(),
  state: clientStateSchema,
  desired: z.enum(DESIRED_STATES),
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
export type ClientView = z.infer<typeof clientSchema>;

export const transitionSchema = z.object({ clientId: z.string(), from: clientStateSchema, to: clientStateSchema, reason: z.string(), at: iso });
export type TransitionView = z.infer<typeof transitionSchema>;

export const eventSchema = z.object({
  eventId: z.string(),
  clientId: z.string(),
  /** When dnsmasq ran the hook (the hook host's clock); receivedAt minus this is the time in the hook's spool. */
  seenAt: iso,
  receivedAt: iso,
  appliedAt: iso.nullable(),
  outcome: z.string().nullable().describe('what applying it did, in words; null until applied'),
  outcomeKind: z.enum(EVENT_OUTCOME_KINDS).nullable().describe('the same as a kind, for programs: read this, not the words'),
  action: z.enum(LEASE_ACTIONS),
  server: z.string(),
  duid: z.string(),
  address: z.string(),
});
export type EventView = z.infer<typeof eventSchema>;

export const serverSchema = z.object({ name: z.string(), role: z.enum(SERVER_ROLES), firstSeen: iso, lastSeen: iso });
export type ServerView = z.infer<typeof serverSchema>;

export const agentSchema = z.object({
  name: z.string(),
  instances: z.number().int().describe('containers recorded on this agent'),
  healthy: z.boolean().nullable().describe('last health check; null before the first'),
  checkedAt: iso.nullable(),
  pools: z.array(poolStatusSchema).nullable().default(null).describe("its warm pools as it last answered PUT /v1/pools; null before it answered (or from an orchestrator without pools)"),
});
export type AgentView = z.infer<typeof agentSchema>;

export const whoamiSchema = z.object({
  client: z.object({ address: z.string(), hostname: z.string().nullable(), state: z.string(), expiresAt: iso.nullable() }),
  container: z.object({ name: z.string(), address: z.string() }).nullable(),
});
export type WhoamiView = z.infer<typeof whoamiSchema>;

/** The 202 answer to POST /v1/lease-events; `duplicate`: this eventId was already journaled (a retried delivery). */
export const leaseEventAcceptedSchema = z.object({ eventId: z.string(), clientId: z.string(), duplicate: z.boolean() });
export type LeaseEventAccepted = z.infer<typeof leaseEventAcceptedSchema>;
export const deprovisionQueuedSchema = z.object({ clientId: z.string(), queued: z.literal(true) });
export type DeprovisionQueued = z.infer<typeof deprovisionQueuedSchema>;
export const healthSchema = z.object({ ok: z.boolean() });
export type Health = z.infer<typeof healthSchema>;
export const readySchema = z.object({ ok: z.boolean(), queued: z.number().int() });
export type Ready = z.infer<typeof readySchema>;

/** What an orchestrator is among those on one database: the leader, a standby, or alone (a memory or SQLite store). */
export const ORCHESTRATOR_ROLES = ['leader', 'standby', 'single'] as const;
export const leaderSchema = z.object({ name: z.string(), url: z.string().nullable(), epoch: z.number().int(), since: iso });
/** GET /v1/leadership: this orchestrator's role, and who leads as the shared database says (null: alone, or nobody yet). */
export const leadershipSchema = z.object({
  name: z.string(),
  role: z.enum(ORCHESTRATOR_ROLES),
  leader: leaderSchema.nullable(),
});
export type LeadershipView = z.infer<typeof leadershipSchema>;

export const clientListSchema = z.object({ clients: z.array(clientSchema), next: z.string().nullable().describe('The id to pass as after for the next page; null on the last') });
export type ClientList = z.infer<typeof clientListSchema>;
export const clientDetailSchema = clientSchema.extend({ transitions: z.array(transitionSchema) });
export type ClientDetail = z.infer<typeof clientDetailSchema>;
export const instanceListSchema = z.object({ instances: z.array(instanceSchema) });
export type InstanceList = z.infer<typeof instanceListSchema>;
export const eventListSchema = z.object({ events: z.array(eventSchema) });
export type EventList = z.infer<typeof eventListSchema>;
export const serverListSchema = z.object({ servers: z.array(serverSchema) });
export type ServerList = z.infer<typeof serverListSchema>;
export const agentListSchema = z.object({ agents: z.array(agentSchema) });

/** A device's container kept as an image on its agent when its lease ended (a profile's `keep = true`). */
export const keptSchema = z.object({
  image: z.string().describe('unionize-kept/CLIENT:TAG'),
  imageId: z.string().describe("Docker's image id, without sha256:"),
  clientId: z.string(),
  agent: z.string(),
  hostname: z.string(),
  profile: z.string(),
  sizeBytes: z.number().int(),
  createdAt: iso,
  expiresAt: iso.nullable().describe('When keep_days removes it; null: no time bound'),
});
export type KeptView = z.infer<typeof keptSchema>;
export const keptListSchema = z.object({ kept: z.array(keptSchema) });
export type KeptList = z.infer<typeof keptListSchema>;
export type AgentList = z.infer<typeof agentListSchema>;

/** Query strings are checked like bodies: unknown parameters and bad values are a 400. */
export const noQuery = z.object({}).strict();

/** `?limit=N`, N in 1..max, digits only. */
function limitParam(max: number, description: string) {
  return z
    .string()
    .regex(new RegExp(`^[0-9]{1,${String(max).length}}$`), `must be a number 1..${max}`)
    .transform(Number)
    .pipe(z.number().int().min(1).max(max))
    .optional()
    .describe(description);
}

export const eventsQuery = z.object({ limit: limitParam(1000, 'How many of the newest events (1..1000, default 100)') }).strict();

/** Paging through clients: ordered by id; `after` is the last id of the previous page. */
export const clientsQuery = z
  .object({
    limit: limitParam(10_000, 'Clients per page (1..10000); without it, every client'),
    after: z.string().regex(/^[0-9a-f]{20}$/, 'must be a client id').optional().describe('The last client id of the previous page'),
  })
  .strict();

export const drainRequestSchema = z
  .object({
    drain: z.boolean().describe('true: no new clients on this agent; false: it takes new clients again'),
    move: z.boolean().default(false).describe('with drain: also move its clients to other agents now, one by one'),
  })
  .strict();
export type DrainRequest = z.input<typeof drainRequestSchema>;

export const drainAcceptedSchema = z.object({ agent: z.string(), draining: z.boolean(), moving: z.number().int() });
export type DrainAccepted = z.infer<typeof drainAcceptedSchema>;

/**
 * Bans (orchestratorctl ban): a device named by its MAC or its DUID gets no
 * container, and its DHCP server no longer answers it. A target of six bytes
 * is a MAC, a longer one a DUID (a DUID is 7 to 130 bytes in practice: DUID-EN
 * is at least 7, DUID-LL of an Ethernet MAC 10), both colon-separated hex as
 * dnsmasq prints them; `id:` before a target makes it a DUID whatever its length.
 */
export const BAN_KINDS = ['mac', 'duid'] as const;
export type BanKind = (typeof BAN_KINDS)[number];
export interface BanTarget {
  kind: BanKind;
  /** Lower case, colon-separated. */
  value: string;
}

/** The device a ban names, from what an operator typed; an error that says what is wrong otherwise. */
export function parseBanTarget(text: string): { ok: true; target: BanTarget } | { ok: false; error: string } {
  const trimmed = text.trim();
  const forcedDuid = trimmed.toLowerCase().startsWith('id:');
  const bare = forcedDuid ? trimmed.slice(3) : trimmed;
  if (!forcedDuid && bare.split(':').length === 6) {
    const mac = macSchema.safeParse(bare);
    return mac.success ? { ok: true, target: { kind: 'mac', value: mac.data } } : { ok: false, error: `${JSON.stringify(text.slice(0, 64))} is not a MAC: ${mac.error.issues[0]!.message}` };
  }
  const duid = duidSchema.safeParse(bare);
  if (duid.success) return { ok: true, target: { kind: 'duid', value: duid.data } };
  return { ok: false, error: `${JSON.stringify(text.slice(0, 64))} is neither a MAC (six colon-separated hex bytes, e.g. 52:54:00:12:34:56) nor a DUID (colon-separated hex bytes, e.g. 00:03:00:01:52:54:00:12:34:56)` };
}

/** How it is written in the API and by orchestratorctl: a MAC as is, a DUID with `id:` when it has six bytes (or it would read as a MAC). */
export function banTargetText(target: BanTarget): string {
  return target.kind === 'duid' && target.value.split(':').length === 6 ? `id:${target.value}` : target.value;
}

/** The longest ban with an end: ten years (a longer one is a ban without --for). */
export const MAX_BAN_SECONDS = 10 * 365 * 86_400;

export const banRequestSchema = z
  .object({
    target: z.string().max(400).describe('the device: its MAC (six bytes) or its DUID, colon-separated hex'),
    seconds: z.number().int().min(1).max(MAX_BAN_SECONDS).optional().describe('ends after this many seconds; without it, until unbanned'),
  })
  .strict();
export type BanRequest = z.input<typeof banRequestSchema>;

export const banSchema = z.object({
  target: z.string().describe('the MAC or DUID, as banTargetText writes it'),
  kind: z.enum(BAN_KINDS),
  since: iso,
  until: iso.nullable().describe('when the ban ends; null: until unbanned'),
});
export type BanView = z.infer<typeof banSchema>;
export const banListSchema = z.object({ bans: z.array(banSchema) });
export type BanList = z.infer<typeof banListSchema>;
export const banAddedSchema = z.object({ ban: banSchema, removing: z.number().int().describe("clients of the device whose containers are being removed") });
export type BanAdded = z.infer<typeof banAddedSchema>;
export const banRemovedSchema = z.object({ target: z.string(), removed: z.literal(true) });
export type BanRemoved = z.infer<typeof banRemovedSchema>;

/** The longest a share link may live: 90 days ([share] max_days may lower it). */
export const MAX_SHARE_SECONDS = 90 * 86_400;

/** POST /v1/clients/{id}/shares: a one-time download link of the client's export. */
export const shareRequestSchema = z
  .object({
    seconds: z.number().int().min(60).max(MAX_SHARE_SECONDS).describe('the link expires after this many seconds'),
  })
  .strict();
export type ShareRequest = z.input<typeof shareRequestSchema>;

export const shareCreatedSchema = z.object({
  url: z.string().describe('serves the export once, until expiresAt, to whoever has it: hand it to the visitor only'),
  clientId: z.string(),
  filename: z.string(),
  sizeBytes: z.number().int().describe('the gzipped docker save tarball, spooled on the orchestrator until downloaded or expired'),
  expiresAt: iso,
});
export type ShareCreated = z.infer<typeof shareCreatedSchema>;

/** POST /v1/clients/{id}/restore: the device's container made again from its newest kept image (queued). */
export const restoreQueuedSchema = z.object({
  clientId: z.string(),
  image: z.string().describe('the kept image the container is made from'),
  queued: z.literal(true),
});
export type RestoreQueued = z.infer<typeof restoreQueuedSchema>;
