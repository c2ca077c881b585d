import { z } from 'zod';
import { ipv6Schema, macSchema } from './lease-event.js';
import type { AddressingMode } from './outcomes.js';

/** The unionize agent's API: what the orchestrator asks of a docker host. */

export const containerNameSchema = z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/, 'container name is not valid');

const labelKey = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,127}$/, 'label key is not valid');
const envKey = z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}$/, 'environment name is not valid');

/** `address: "dhcp"` asks for DHCP addressing instead of a static address. */
export const DHCP_ADDRESS = 'dhcp' satisfies AddressingMode;

export const isDhcpAddress = (address: string): address is typeof DHCP_ADDRESS => address === DHCP_ADDRESS;

const staticAddressSchema = z
  .string()
  .regex(/^[0-9a-fA-F:]{2,39}\/[0-9]{1,3}$/, 'address must be IPV6/PREFIXLEN or dhcp')
  .refine((s) => ipv6Schema.safeParse(s.split('/')[0]).success, 'address must be IPv6')
  .refine((s) => Number(s.split('/')[1]) <= 128, 'prefix length must be at most 128');

/** Either IPV6/PREFIXLEN (static) or the literal `dhcp`: old callers, which only send the former, are unaffected. */
export const addressSchema = z.union([z.literal(DHCP_ADDRESS), staticAddressSchema], {
  error: 'address must be IPV6/PREFIXLEN or dhcp',
});

/** Most addresses one device may have in a container request (one per IA_NA it holds). */
export const MAX_DEVICE_ADDRESSES = 16;

/**
 * A Docker image reference: a lower-case repository (registry host and port,
 * path) and a tag, which may have capitals (a kept image's
 * `unionize-kept/CLIENT:20260101T000000000Z`), or a digest.
 */
export const imageRefSchema = z
  .string()
  .max(255)
  .regex(/^[a-z0-9][a-z0-9._/:@-]*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$/, 'image reference is not valid');

/** How a container is made, beside its image: the same in a device's request and in a pool's spec. */
const envSchema = z.record(envKey, z.string().max(4096)).default({});
const commandSchema = z.array(z.string().max(4096)).min(1).max(64).optional();
const memoryBytesSchema = z.number().int().min(6 * 1024 * 1024).max(2 ** 40).optional();
const nanoCpusSchema = z.number().int().min(1_000_000).max(256e9).optional();
/** A warm pool's name: the orchestrator's profile name. */
const poolNameSchema = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'pool name is not valid');

export const createContainerSchema = z
  .object({
    name: containerNameSchema,
    /** Image reference, e.g. `unionize-client:latest`. */
    image: imageRefSchema,
    labels: z.record(labelKey, z.string().max(1024)).default({}),
    env: envSchema,
    /** MAC of the container's eth1. */
    mac: macSchema,
    /**
     * Static addressing: the address of eth1 with its prefix length, e.g.
     * `fd00:3::100/64`. DHCP addressing: the literal `dhcp`; the agent runs a
     * DHCPv6 client on eth1 and the container bridge's dnsmasq reports the lease.
     */
    address: addressSchema,
    /**
     * The device's current addresses: the only sources, beside nothing else,
     * that may reach this container, and its only destinations outside the
     * agent's `[isolation] egress`. Sent again (the request is idempotent)
     * when they change. Absent (older orchestrators): the device-address label.
     */
    deviceAddresses: z.array(ipv6Schema).max(MAX_DEVICE_ADDRESSES).optional(),
    /** Profiles: the command instead of the image's CMD, and limits. */
    command: commandSchema,
    memoryBytes: memoryBytesSchema,
    nanoCpus: nanoCpusSchema,
    /**
     * The warm pool (`PUT /v1/pools`) this container may be claimed from: a
     * started member of that pool made the same way (image, command, limits,
     * the pool's env) becomes this container, renamed, attached, and told the
     * rest of `env` in DEVICE_FACTS_PATH. None ready: made cold, as without it.
     */
    pool: poolNameSchema.optional(),
  })
  .strict();
export type CreateContainerRequest = z.infer<typeof createContainerSchema>;

/**
 * Where a claimed pool member finds its device's facts: `NAME=value` lines,
 * one per `env` entry of the claiming request (a value's control characters
 * are written as spaces). A cold-started container has them in its
 * environment instead; the client image reads either (client-image/rootfs/init.sh).
 */
export const DEVICE_FACTS_PATH = '/run/unionize/device.env';

/**
 * Sent by an orchestrator of a pair with every request that changes
 * something on an agent: the leadership epoch it acts in. The agent keeps the
 * highest it has seen and refuses a lower one (409 DEPOSED), so a leader
 * that was deposed between its own check of the epoch and its call acts no
 * more once its successor has called. Absent: an orchestrator alone.
 */
export const LEADER_EPOCH_HEADER = 'x-unionize-leader-epoch';

/** How a pool's members are made: a profile, as the orchestrator would ask for a device's container of it. */
export const poolSpecSchema = z
  .object({
    /** The profile's name; a request's `pool`. */
    name: poolNameSchema,
    /** Members to keep started; 0 empties the pool. */
    size: z.number().int().min(0).max(1000),
    image: imageRefSchema,
    command: commandSchema,
    memoryBytes: memoryBytesSchema,
    nanoCpus: nanoCpusSchema,
    /** The profile's own env (the same for every device): fixed at create; a claim's must match. */
    env: envSchema,
  })
  .strict();
export type PoolSpec = z.infer<typeof poolSpecSchema>;

/** `PUT /v1/pools`: every pool the agent should keep; one not named here is emptied. */
export const poolsRequestSchema = z.object({ pools: z.array(poolSpecSchema).max(64) }).strict();
export type PoolsRequest = z.infer<typeof poolsRequestSchema>;

export const poolStatusSchema = z.object({
  name: z.string(),
  /** Members wanted. */
  size: z.number(),
  /** Members started and unclaimed. */
  ready: z.number(),
  /** Members being made now (at most one per agent at a time). */
  starting: z.number(),
  /** Since the agent started: containers taken from this pool, and requests for it that found none ready (made cold). */
  claims: z.number(),
  misses: z.number(),
  /** The last member's create and start, ms; null before the first. */
  lastRefillMs: z.number().nullable(),
});
export type PoolStatus = z.infer<typeof poolStatusSchema>;

/** The answer to `GET` and `PUT /v1/pools`. */
export const poolListSchema = z.object({ pools: z.array(poolStatusSchema), maxMembers: z.number() });
export type PoolList = z.infer<typeof poolListSchema>;

export const containerViewSchema = z.object({
  name: z.string(),
  id: z.string(),
  image: z.string(),
  state: z.string(),
  labels: z.record(z.string(), z.string()),
  /** eth1 address with prefix, when attached; in DHCP mode the leased address once eth1 holds it (a /128). */
  address: z.string().nullable(),
  mac: z.string().nullable(),
  createdAt: z.string(),
  /** The device addresses the agent's isolation filter lets reach this container; absent when isolation is off (`[isolation] mode = open`). */
  deviceAddresses: z.array(z.string()).optional(),
});
export type ContainerView = z.infer<typeof containerViewSchema>;

export const containerListSchema = z.object({ containers: z.array(containerViewSchema) });

/** Error body used by both daemons. */
export interface ApiErrorBody {
  error: { code: string; message: string };
}

/**
 * Keeping (a profile's `keep = true`): before a device's container is
 * removed, the agent commits it to `unionize-kept/CLIENT:TAG`, labelled with
 * what it was (KEPT_LABELS). Kept images are never run by a lease.
 */
export const KEPT_REPOSITORY = 'unionize-kept';

export const KEPT_LABELS = {
  kept: 'io.unionize.kept',
  client: 'io.unionize.kept.client',
  hostname: 'io.unionize.kept.hostname',
  profile: 'io.unionize.kept.profile',
} as const;

/** A client id as clientIdOf writes it (hex). */
export const keptClientSchema = z.string().regex(/^[0-9a-f]{1,64}$/, 'client id is not valid');

/** Docker's tag grammar. */
export const keptTagSchema = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'tag is not valid');

/** A Docker image id without its `sha256:`. */
export const imageIdSchema = z.string().regex(/^[0-9a-f]{64}$/, 'image id is not valid');

/** `POST /v1/containers/{name}/keep`. */
export const keepContainerSchema = z
  .object({
    client: keptClientSchema,
    tag: keptTagSchema,
    /** The device's hostname (it chose it: a label value, nothing more). */
    hostname: z.string().max(255),
    profile: z.string().max(64),
    /** The agent's kept images may take this many bytes in all; the oldest go first (never the one just made). */
    maxBytes: z.number().int().min(0).max(2 ** 50).optional(),
  })
  .strict();
export type KeepContainerRequest = z.infer<typeof keepContainerSchema>;

export const keptImageSchema = z.object({
  /** `unionize-kept/CLIENT:TAG`. */
  image: z.string(),
  /** Image id without `sha256:`. */
  id: z.string(),
  client: z.string(),
  hostname: z.string(),
  profile: z.string(),
  sizeBytes: z.number(),
  createdAt: z.string(),
});
export type KeptImage = z.infer<typeof keptImageSchema>;

/** The answer to a keep: the image made, and those removed to stay under `maxBytes`. */
export const keepResultSchema = z.object({ kept: keptImageSchema, removed: z.array(keptImageSchema) });
export type KeepResult = z.infer<typeof keepResultSchema>;

/** An export: a `docker save` tarball, gzipped (`docker load` takes it as it is). */
export const EXPORT_CONTENT_TYPE = 'application/gzip';

export const keptImageListSchema = z.object({ images: z.array(keptImageSchema) });

/** The kept image's repository and tag for a client at a time: `unionize-kept/CLIENT`, `20261204T160000123Z` (UTC, to the ms). */
export function keptImageRef(client: string, at: Date): { repo: string; tag: string } {
  return { repo: `${KEPT_REPOSITORY}/${client}`, tag: at.toISOString().replace(/[-:.]/g, '') };
}
