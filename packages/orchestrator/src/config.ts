import { isIPv6 } from 'node:net';
import { z } from 'zod';
import { ADDRESSING_MODES, MAX_SHARE_SECONDS, SECRET_FILE_RETIRED, iniBoolean, iniList, loadConfigFile, nameSchema, portSchema } from '@unionize/protocol';
import { DEFAULT_QUOTAS, type QuotaLimits } from './lifecycle/quotas.js';
import { profileSchema } from './profiles/profiles.js';
import { DEFAULT_MEMORY_EVENTS, DEFAULT_SQL_CACHE_MB } from './store/types.js';
import { postgresUrlFault } from './store/postgres/connection.js';

const prefix64 = z
  .string()
  .regex(/^[0-9a-fA-F:]+\/64$/, 'must be an IPv6 /64 prefix, e.g. fd00:3::/64')
  .refine((s) => isIPv6(s.split('/')[0]!), 'must be an IPv6 /64 prefix');

/** A PostgreSQL URL that holds no password (that goes in [store] password_file). */
const postgresUrl = z
  .string()
  .refine((u) => postgresUrlFault(u) !== 'not-postgres', 'must be a postgres:// URL')
  .refine((u) => postgresUrlFault(u) !== 'password', 'must not hold a password: put it in [store] password_file');

/** https:// URLs, separated by commas or spaces. */
const urlList = z
  .string()
  .transform(iniList)
  .pipe(z.array(z.url({ protocol: /^https$/, error: 'each must be an https:// URL' })));

const agentSchema = z.object({
  url: z.string().url().refine((u) => u.startsWith('https://'), 'must be an https:// URL'),
  /** The agent's server is verified by a CA file, a certificate pin (sha256/...), or both; at least one. */
  ca: z.string().min(1).optional(),
  pin: z.string().min(1).optional(),
  timeout_ms: z.coerce.number().int().min(100).max(120_000).default(30_000),
  /** Tries per call for retryable failures (unreachable, 5xx). */
  attempts: z.coerce.number().int().min(1).max(10).default(3),
  /** Most containers placed on this agent; 0 for no limit. */
  capacity: z.coerce.number().int().min(0).max(1_000_000).default(0),
  /** Draining: no new clients; the ones it runs stay until their leases end. */
  drain: iniBoolean.default(false),
}).refine((a) => a.ca !== undefined || a.pin !== undefined, { message: 'give ca (a CA file) or pin (sha256/...), or both', path: ['ca'] });

const limit = (fallback: number) => z.coerce.number().int().min(0).max(1_000_000).default(fallback);
/** Limits on new containers (0 turns one off); see lifecycle/quotas.ts. */
const quotasSchema = z
  .object({
    max_instances: limit(DEFAULT_QUOTAS.maxInstances),
    max_per_agent: limit(DEFAULT_QUOTAS.maxPerAgent),
    max_per_mac: limit(DEFAULT_QUOTAS.maxPerMac),
    max_without_mac: limit(DEFAULT_QUOTAS.maxWithoutMac),
    max_per_prefix64: limit(DEFAULT_QUOTAS.maxPerPrefix64),
    new_clients_per_minute: limit(DEFAULT_QUOTAS.newClientsPerMinute),
    new_clients_per_mac_per_minute: limit(DEFAULT_QUOTAS.newClientsPerMacPerMinute),
  })
  .strict()
  .prefault({});

export const orchestratorConfigSchema = z.object({
  server: z.object({
    listen: z.string().default('::'),
    port: portSchema.default(8443),
    cert: z.string().min(1),
    key: z.string().min(1),
  }),
  auth: z.object({
    /** The peers' key files (hook.keys, operator.keys, agent-NAME.keys): protocol's keys.ts. */
    keys_dir: z.string().min(1),
    secret_file: z.undefined({ error: SECRET_FILE_RETIRED }).optional(),
  }),
  sql: z
    .object({
      enabled: iniBoolean.default(false),
      path: z.string().min(1).default('/var/lib/orchestrator/state.db'),
      /** With enabled = false: lease events the in-memory journal keeps (applied ones beyond it are forgotten, oldest first). */
      memory_events: z.coerce.number().int().min(100).max(1_000_000).default(DEFAULT_MEMORY_EVENTS),
      /** With enabled = true: SQLite's page cache in MiB (store/types.ts DEFAULT_SQL_CACHE_MB). */
      cache_mb: z.coerce.number().int().min(1).max(4096).default(DEFAULT_SQL_CACHE_MB),
    })
    .default({ enabled: false, path: '/var/lib/orchestrator/state.db', memory_events: DEFAULT_MEMORY_EVENTS, cache_mb: DEFAULT_SQL_CACHE_MB }),
  /**
   * The shared store: PostgreSQL, for an orchestrator pair ([pair]) on one
   * database (store/postgres/). Off without a url; not with [sql] enabled.
   */
  store: z
    .object({
      /** postgres://USER@HOST:PORT/DATABASE, or postgres://USER@/DATABASE?host=/run/postgresql for the Unix socket; never with a password. */
      url: postgresUrl.optional(),
      /** The password, alone in a file of mode 600 (none: peer or certificate authentication). */
      password_file: z.string().min(1).optional(),
      /** Connections the orchestrator keeps open (one more holds leadership). */
      pool_size: z.coerce.number().int().min(2).max(100).default(8),
      /** How long a connection may take to open. */
      connect_timeout_ms: z.coerce.number().int().min(100).max(120_000).default(5000),
    })
    .strict()
    .prefault({}),
  /** Two (or more) orchestrators on one [store]: one leads, the others stand by (leadership/leadership.ts). */
  pair: z
    .object({
      /** This orchestrator's name among them (default: the host name). */
      name: nameSchema.optional(),
      /** Where the others (and the hook) reach this one: shown as the leader's URL while it leads. */
      url: z.url({ protocol: /^https$/ }).optional(),
      /** Every orchestrator's URL, this one's included: for orchestratorctl, which tries them in turn. */
      urls: urlList.default([]),
      /** The CA that signed their certificates (each has its own): orchestratorctl verifies the others with it. */
      ca: z.string().min(1).optional(),
      /** How often a standby tries to take the lead, and the leader checks it still holds it. */
      retry_ms: z.coerce.number().int().min(100).max(60_000).default(1000),
    })
    .strict()
    .prefault({}),
  memory: z
    .object({
      /** Seconds without a lease event applied before a trim (memory/idle-trim.ts); 0: never. */
      trim_idle_seconds: z.coerce.number().int().min(0).max(86_400).default(30),
    })
    .default({ trim_idle_seconds: 30 }),
  reconcile: z
    .object({
      interval_seconds: z.coerce.number().min(1).max(86_400).default(30),
      expiry_grace_seconds: z.coerce.number().min(0).max(86_400).default(10),
      adopt_grace_seconds: z.coerce.number().min(60).max(7 * 86_400).default(3600),
      keep_events: z.coerce.number().int().min(100).default(100_000),
    })
    .default({ interval_seconds: 30, expiry_grace_seconds: 10, adopt_grace_seconds: 3600, keep_events: 100_000 }),
  addressing: z
    .object({
      /** static: addresses from `prefix`; dhcp: each container leases its own on the container bridge. */
      mode: z.enum(ADDRESSING_MODES).default('static'),
      prefix: prefix64.optional(),
    })
    .refine((a) => a.mode !== 'static' || a.prefix !== undefined, { message: 'static addressing needs a prefix', path: ['prefix'] }),
  /** Health checks of the agents, and when one counts as lost for good. */
  placement: z
    .object({
      health_interval_seconds: z.coerce.number().min(1).max(3600).default(5),
      /** Failing this long: its clients are provisioned on other agents. */
      dead_after_seconds: z.coerce.number().min(5).max(86_400).default(60),
    })
    .strict()
    .prefault({}),
  /** [profiles.NAME] sections, tried in file order (see profiles/profiles.ts). */
  profiles: z.record(nameSchema, profileSchema).default({}),
  /**
   * Device address pinning, as dnsmasq's dhcp-hostsdir: one file per device
   * (\`id:DUID,[ADDRESS]\`), re-read by dnsmasq on change (inotify), so a device
   * keeps its address across leases. Off without a directory.
   */
  pinning: z
    .object({
      hostsdir: z.string().min(1).optional(),
      /**
       * How dnsmasq is made to forget a removed pin or lifted ban (pinning/dnsmasq-reload.ts):
       * rewrite this file, watched by the dnsmasq-devnet-reload.path unit, ...
       */
      reload_file: z.string().min(1).optional(),
      /** ... or SIGHUP the dnsmasq in this pid file (needs the right to signal it). */
      dnsmasq_pidfile: z.string().min(1).optional(),
      /** At most one reload per this many seconds: each one replays every lease to the hook as `old`. */
      reload_interval_seconds: z.coerce.number().min(1).max(3600).default(30),
    })
    .strict()
    .prefault({}),
  /** How long gone clients and their transitions are kept (retention/retention.ts). */
  retention: z
    .object({
      gone_days: z.coerce.number().min(0).max(3650).default(7),
      /** How often gone clients are looked for (also once at start). */
      interval_seconds: z.coerce.number().min(10).max(86_400).default(3600),
    })
    .strict()
    .prefault({}),
  instances: z
    .object({
      image: z.string().min(1).default('unionize-client:latest'),
      concurrency: z.coerce.number().int().min(1).max(256).default(8),
      /** The default profile's warm pool: containers kept started on each agent for devices no profile matches (0: none). */
      pool: z.coerce.number().int().min(0).max(1000).default(0),
    })
    .default({ image: 'unionize-client:latest', concurrency: 8, pool: 0 }),
  quotas: quotasSchema,
  agents: z
    .record(nameSchema, agentSchema)
    .refine((agents) => Object.keys(agents).length > 0, 'at least one [agents.NAME] section is needed'),
  /** One-time download links of a client's export (shares/shares.ts): off without a directory. */
  share: z
    .object({
      dir: z.string().min(1).optional(),
      /** The links' public base, e.g. https://orch.example:8443; default: the origin orchestratorctl called. */
      url: z.url({ protocol: /^https$/ }).transform((u) => u.replace(/\/+$/, '')).optional(),
      max_days: z.coerce.number().min(1 / 24).max(MAX_SHARE_SECONDS / 86_400).default(30),
      max_mb: z.coerce.number().int().min(1).max(10_000_000).default(20_480),
    })
    .strict()
    .prefault({}),
  /** The read-only dashboard at /dashboard: off without a token file. */
  dashboard: z
    .object({
      token_file: z.string().min(1).optional(),
      session_hours: z.coerce.number().min(0.1).max(24 * 30).default(12),
      refresh_ms: z.coerce.number().int().min(200).max(60_000).default(1000),
    })
    .strict()
    .prefault({}),
  /** /metrics for Prometheus, behind a bearer token of its own: off without a token file. */
  metrics: z
    .object({ token_file: z.string().min(1).optional() })
    .strict()
    .prefault({}),
  log: z.object({ level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info') }).default({ level: 'info' }),
}).refine((c) => !(c.store.url && c.sql.enabled), { message: 'choose one store: [store] url (PostgreSQL) or [sql] enabled (SQLite), not both', path: ['store', 'url'] });

export type OrchestratorConfig = z.infer<typeof orchestratorConfigSchema>;

export function quotaLimits(config: OrchestratorConfig): QuotaLimits {
  const q = config.quotas;
  return {
    maxInstances: q.max_instances,
    maxPerAgent: q.max_per_agent,
    maxPerMac: q.max_per_mac,
    maxWithoutMac: q.max_without_mac,
    maxPerPrefix64: q.max_per_prefix64,
    newClientsPerMinute: q.new_clients_per_minute,
    newClientsPerMacPerMinute: q.new_clients_per_mac_per_minute,
  };
}

export function loadOrchestratorConfig(file: string): OrchestratorConfig {
  return loadConfigFile(file, orchestratorConfigSchema);
}
