import { isIP } from 'node:net';
import { ATTACH_BACKENDS, SECRET_FILE_RETIRED, iniBoolean, interfaceSchema, ipv6Schema, loadConfigFile, portSchema } from '@unionize/protocol';
import { z } from 'zod';

/**
 * unionize's INI file (snake_case keys, one section per concern). Every key is
 * checked at start: a typo or a missing key stops the daemon with one line
 * naming it, rather than failing on the first request.
 */

/** Distinguish "missing" from "wrong" in the one line the operator reads. */
const missingOr = (wrong: string) => (issue: { input?: unknown }) => (issue.input === undefined ? 'is missing' : wrong);

const text = z.string({ error: missingOr('must be text') }).trim().min(1, 'is empty');

function section<T extends z.ZodRawShape>(shape: T) {
  // Only the type issue is reworded; unknown keys keep zod's "Unrecognized key" line.
  return z.strictObject(shape, {
    error: (issue) => (issue.code === 'invalid_type' ? missingOr('must be a [section]')(issue) : undefined),
  });
}

const serverSection = section({
  listen: z
    .string({ error: missingOr('must be an IP address') })
    .trim()
    .refine((s) => isIP(s) !== 0, 'must be an IP address such as :: or 127.0.0.1')
    .default('::'),
  port: portSchema.default(9443),
  cert: text,
  key: text,
}).transform((s) => ({ listen: s.listen, port: s.port, certFile: s.cert, keyFile: s.key }));

/** The keys the orchestrator signs with for this agent: a copy of its `agent-NAME.keys` (protocol's keys.ts). */
const authSection = section({
  key_file: text,
  secret_file: z.undefined({ error: SECRET_FILE_RETIRED }).optional(),
}).transform((s) => ({ keyFile: s.key_file }));

const dockerSection = section({ socket: text.default('/var/run/docker.sock') });

const networkSection = section({
  /** The container bridge in unionize's own network namespace. */
  bridge: interfaceSchema,
  /** Default route for the containers' eth1: on the bridge's prefix, or link-local. */
  gateway: ipv6Schema,
  attach: z.enum(ATTACH_BACKENDS, { error: `must be one of ${ATTACH_BACKENDS.join(', ')}` }).default('native'),
  /** The pipework executable, for attach = pipework. */
  pipework: text.optional(),
})
  .refine((s) => s.attach !== 'pipework' || s.pipework !== undefined, {
    path: ['pipework'],
    message: 'is missing (attach = pipework needs the path of the pipework executable)',
  })
  .refine((s) => s.attach === 'pipework' || s.pipework === undefined, {
    path: ['pipework'],
    message: 'is set but attach is not pipework',
  });

const absolutePath = text.refine((s) => s.startsWith('/'), 'must be an absolute path');

/** DHCP addressing (`address: "dhcp"`): the DHCPv6 client run in each such container's namespace. */
const dhcpSection = section({
  /** One directory per DHCP-mode container (config, lease, pid file, log of its dhclient). */
  state_dir: absolutePath.default('/run/unionize/dhcp'),
  /** ISC dhclient (package isc-dhcp-client). */
  client: text.default('dhclient'),
  /** dhclient-script(8); default the one shipped in the package (libexec/dhclient-script). */
  script: absolutePath.optional(),
  /** How long POST /v1/containers waits for the lease to show on eth1 before answering with address null. */
  lease_wait_ms: z.coerce.number({ error: 'must be a number of milliseconds' }).int().min(0).max(60_000).default(5_000),
  /** Send a DHCPv6 Release when a container is removed, so the bridge's dnsmasq reports `del` at once. */
  release: iniBoolean.default(true),
}).transform((s) => ({
  stateDir: s.state_dir,
  client: s.client,
  script: s.script,
  leaseWaitMs: s.lease_wait_ms,
  release: s.release,
}));

/** filter: each device reaches its own container only; open: no filter at all (a trusted lab). */
export const ISOLATION_MODES = ['filter', 'open'] as const;
export type IsolationMode = (typeof ISOLATION_MODES)[number];

/** What containers may reach beyond their own device. */
export type Egress = { kind: 'none' } | { kind: 'any' } | { kind: 'prefixes'; prefixes: readonly string[] };

/** IPV6/LEN, e.g. 2000::/3; checked the way the ruleset writes it. */
function isPrefix(s: string): boolean {
  const slash = s.indexOf('/');
  const length = s.slice(slash + 1);
  return slash > 0 && isIP(s.slice(0, slash)) === 6 && /^[0-9]{1,3}$/.test(length) && Number(length) <= 128;
}

/**
 * `none`, `any`, or a comma-separated list of IPV6/LEN prefixes: what
 * containers may reach beyond their own device (never another container, nor
 * a device of this host).
 */
const egressSetting = z
  .string({ error: 'must be none, any or a comma-separated list of IPV6/LEN prefixes' })
  .trim()
  .transform((s, ctx): Egress => {
    if (s === 'none') return { kind: 'none' };
    if (s === 'any') return { kind: 'any' };
    const prefixes = s.split(',').map((p) => p.trim());
    const bad = prefixes.find((p) => !isPrefix(p));
    if (bad !== undefined) {
      ctx.addIssue({ code: 'custom', message: `must be none, any or a comma-separated list of IPV6/LEN prefixes; ${JSON.stringify(bad)} is not one` });
      return z.NEVER;
    }
    return { kind: 'prefixes', prefixes };
  });

/** Isolation of devices and containers from each other (nftables in this host's network namespace). */
const isolationSection = section({
  mode: z.enum(ISOLATION_MODES, { error: `must be one of ${ISOLATION_MODES.join(', ')}` }).default('filter'),
  egress: egressSetting.default({ kind: 'none' }),
  /** The nft executable (package nftables). */
  nft: text.default('nft'),
});

/** Warm pools (the orchestrator says which, PUT /v1/pools): this agent's own bound on them. */
const poolSection = section({
  /** Most pool members, all pools together, whatever the orchestrator asks; 0: no pools on this agent (every container made cold). */
  max_containers: z.coerce.number({ error: 'must be a whole number' }).int().min(0).max(1000).default(32),
}).transform((s) => ({ maxContainers: s.max_containers }));

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
const logSection = section({
  level: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }).default('info'),
});

/** /metrics for Prometheus, behind a bearer token of its own; off without a token file. */
const metricsSection = section({ token_file: text.optional() }).transform((s) => ({ tokenFile: s.token_file }));

export const configSchema = z.strictObject({
  server: serverSection,
  auth: authSection,
  docker: dockerSection.prefault({}),
  network: networkSection,
  dhcp: dhcpSection.prefault({}),
  isolation: isolationSection.prefault({}),
  pool: poolSection.prefault({}),
  log: logSection.prefault({}),
  metrics: metricsSection.prefault({}),
});

export type UnionizeConfig = z.output<typeof configSchema>;
export type NetworkConfig = UnionizeConfig['network'];
export type DhcpConfig = UnionizeConfig['dhcp'];
export type IsolationConfig = UnionizeConfig['isolation'];
export type PoolConfig = UnionizeConfig['pool'];

/** Load and validate the config file; throws ConfigError with one line naming the key. */
export function loadConfig(file: string): UnionizeConfig {
  return loadConfigFile(file, configSchema);
}
