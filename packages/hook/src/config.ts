import { z } from 'zod';
import { loadConfigFile } from '@unionize/protocol/config';
import { nameSchema, SERVER_ROLES } from '@unionize/protocol/lease-event';
import { DEFAULT_MAX_CALL_BYTES } from './spool.js';

/**
 * The flusher's INI file (`--config FILE` or ORCHESTRATOR_HOOK_CONFIG). Only
 * the flusher reads it: dnsmasq/orchestrator-hook.sh is handed its spool by
 * its wrapper or unit (ORCHESTRATOR_HOOK_SPOOL), so the two never parse it
 * two ways. Strict: a key it does not know (a typo, `dir /x` without `=`) is
 * refused, not skipped.
 */
export const hookConfigSchema = z.strictObject({
  orchestrator: z.strictObject({
    url: z.string().url().refine((u) => u.startsWith('https://'), 'must be an https:// URL'),
    /** The orchestrator is verified by a CA file, a certificate pin (sha256/...), or both: at least one. */
    ca: z.string().min(1).optional(),
    pin: z.string().min(1).optional(),
    secret_file: z.string().min(1),
    timeout_ms: z.coerce.number().int().min(100).max(30_000).default(3000),
  }).refine((o) => o.ca !== undefined || o.pin !== undefined, { message: 'give ca (a CA file) or pin (sha256/...), or both', path: ['ca'] }),
  dhcp: z.strictObject({
    server: nameSchema,
    role: z.enum(SERVER_ROLES).default('device'),
  }),
  /** Where dnsmasq/orchestrator-hook.sh spools calls (its ORCHESTRATOR_HOOK_SPOOL), in arrival order. */
  spool: z
    .strictObject({
      dir: z.string().min(1).refine((d) => d.startsWith('/'), 'must be an absolute path').default('/var/spool/orchestrator-hook'),
      /** The largest spooled file read as a call, bytes; larger ones (and anything not a regular file) are moved to rejected/. */
      max_call_bytes: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(DEFAULT_MAX_CALL_BYTES),
      /** Read by nothing now (the shell hook's limit is its ORCHESTRATOR_HOOK_MAX_EVENTS; node no longer runs per call): kept so older files load. */
      max_events: z.string().optional(),
      budget_ms: z.string().optional(),
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
