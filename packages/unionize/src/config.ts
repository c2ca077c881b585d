import { isIP } from 'node:net';
import { interfaceSchema, ipv6Schema, loadConfigFile, portSchema } from '@unionize/protocol';
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

const authSection = section({ secret_file: text }).transform((s) => ({ secretFile: s.secret_file }));

const dockerSection = section({ socket: text.default('/var/run/docker.sock') });

const networkSection = section({
  /** The container bridge in unionize's own network namespace. */
  bridge: interfaceSchema,
  /** Default route for the containers' eth1: on the bridge's prefix, or link-local. */
  gateway: ipv6Schema,
  attach: z.enum(['native'], { error: 'must be native (the only backend so far)' }).default('native'),
});

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
  log: logSection.prefault({}),
  metrics: metricsSection.prefault({}),
});

export type UnionizeConfig = z.output<typeof configSchema>;
export type NetworkConfig = UnionizeConfig['network'];

/** Load and validate the config file; throws ConfigError with one line naming the key. */
export function loadConfig(file: string): UnionizeConfig {
  return loadConfigFile(file, configSchema);
}
