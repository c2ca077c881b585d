import { z } from 'zod';
import { iniBoolean, iniList, loadConfigFile } from '@unionize/protocol/config';
import { hookConfigFile, spoolSectionSchema } from '@unionize/protocol/hook-spool';
import { SECRET_FILE_RETIRED } from '@unionize/protocol/keys';
import { nameSchema, SERVER_ROLES } from '@unionize/protocol/lease-event';
import { isPortPattern } from './sav-ruleset.js';

/**
 * The flusher's INI file (`--config FILE` or ORCHESTRATOR_HOOK_CONFIG). Only
 * the flusher reads it: dnsmasq/orchestrator-hook.sh is handed its spool by
 * its wrapper or unit (ORCHESTRATOR_HOOK_SPOOL), so the two never parse it
 * two ways. Strict: a key it does not know (a typo, `dir /x` without `=`) is
 * refused, not skipped.
 */
export const hookConfigSchema = z.strictObject({
  orchestrator: z.strictObject({
    /**
     * The orchestrator's URL; for a pair, each one's, separated by commas or
     * spaces: an event goes to the one that took the last, and to the next
     * when that one is down or stands by (deliver.ts, failoverDelivery).
     */
    url: z
      .string()
      .transform(iniList)
      .pipe(z.array(z.string().url().refine((u) => u.startsWith('https://'), 'must be an https:// URL')).min(1, 'give at least one URL')),
    /** The orchestrator is verified by a CA file, a certificate pin (sha256/...), or both: at least one. */
    ca: z.string().min(1).optional(),
    pin: z.string().min(1).optional(),
    /** The hook's keys (the orchestrator's `hook.keys`): it signs with the first. */
    key_file: z.string().min(1),
    secret_file: z.undefined({ error: SECRET_FILE_RETIRED }).optional(),
    timeout_ms: z.coerce.number().int().min(100).max(30_000).default(3000),
  }).refine((o) => o.ca !== undefined || o.pin !== undefined, { message: 'give ca (a CA file) or pin (sha256/...), or both', path: ['ca'] }),
  dhcp: z.strictObject({
    server: nameSchema,
    role: z.enum(SERVER_ROLES).default('device'),
  }),
  /** Where dnsmasq/orchestrator-hook.sh spools calls, and its limits: protocol's hook-spool.ts (orchestratorctl reads it too). */
  spool: spoolSectionSchema.prefault({}),
  /**
   * Source address validation on the device bridge (sav.ts): off unless
   * enabled, and then the flusher needs CAP_NET_ADMIN
   * (config/orchestrator-hook-flush-sav.conf).
   */
  sav: z
    .strictObject({
      enabled: iniBoolean.default(false),
      /** The device bridge's ports, space-separated: interface names, or prefixes ending in `*`. */
      ports: z
        .string()
        .default('')
        .transform(iniList)
        .refine((ports) => ports.every(isPortPattern), 'each port must be an interface name or a name prefix ending in *'),
      nft: z.string().refine((p) => p.startsWith('/'), 'must be an absolute path').default('/usr/sbin/nft'),
      /** The pairs of the last table written, read at a start that finds no table (after a reboot). */
      state_file: z.string().refine((p) => p.startsWith('/'), 'must be an absolute path').default('/var/lib/orchestrator-hook/sav-leased.json'),
    })
    .refine((s) => !s.enabled || s.ports.length > 0, { message: 'enabled needs ports (the device bridge\'s ports)', path: ['ports'] })
    .prefault({}),
});
export type HookConfig = z.infer<typeof hookConfigSchema>;

export function loadHookConfig(env: NodeJS.ProcessEnv, file?: string): HookConfig {
  return loadConfigFile(hookConfigFile(env, file), hookConfigSchema);
}
