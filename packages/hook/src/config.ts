import { z } from 'zod';
import { loadConfigFile } from '@unionize/protocol/config';
import { nameSchema, SERVER_ROLES } from '@unionize/protocol/lease-event';

/** The hook's INI file, named by ORCHESTRATOR_HOOK_CONFIG (dnsmasq owns the argument list). */
export const hookConfigSchema = z.object({
  orchestrator: z.object({
    url: z.string().url().refine((u) => u.startsWith('https://'), 'must be an https:// URL'),
    /** The orchestrator is verified by a CA file, a certificate pin (sha256/...), or both: at least one. */
    ca: z.string().min(1).optional(),
    pin: z.string().min(1).optional(),
    secret_file: z.string().min(1),
    timeout_ms: z.coerce.number().int().min(100).max(30_000).default(3000),
  }).refine((o) => o.ca !== undefined || o.pin !== undefined, { message: 'give ca (a CA file) or pin (sha256/...), or both', path: ['ca'] }),
  dhcp: z.object({
    server: nameSchema,
    role: z.enum(SERVER_ROLES).default('device'),
  }),
  /** Where undeliverable events wait, in arrival order, for the next hook run or `--flush`. */
  spool: z
    .object({
      dir: z.string().min(1).refine((d) => d.startsWith('/'), 'must be an absolute path').default('/var/spool/orchestrator-hook'),
      max_events: z.coerce.number().int().min(1).max(10_000_000).default(10_000),
      /** One dnsmasq call may take this long in all (dnsmasq runs scripts one at a time). */
      budget_ms: z.coerce.number().int().min(500).max(60_000).default(5000),
    })
    .prefault({}),
});
export type HookConfig = z.infer<typeof hookConfigSchema>;

export const HOOK_CONFIG_ENV = 'ORCHESTRATOR_HOOK_CONFIG';
export const DEFAULT_HOOK_CONFIG = '/etc/orchestrator/hook.ini';

/** `file` (from --config) wins over ORCHESTRATOR_HOOK_CONFIG, which wins over the default path. */
export function hookConfigFile(env: NodeJS.ProcessEnv, file?: string): string {
  return file || env[HOOK_CONFIG_ENV] || DEFAULT_HOOK_CONFIG;
}

export function loadHookConfig(env: NodeJS.ProcessEnv, file?: string): HookConfig {
  return loadConfigFile(hookConfigFile(env, file), hookConfigSchema);
}
