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
});
export type HookConfig = z.infer<typeof hookConfigSchema>;

export const HOOK_CONFIG_ENV = 'ORCHESTRATOR_HOOK_CONFIG';

export function loadHookConfig(env: NodeJS.ProcessEnv): HookConfig {
  const file = env[HOOK_CONFIG_ENV] || '/etc/orchestrator/hook.ini';
  return loadConfigFile(file, hookConfigSchema);
}
