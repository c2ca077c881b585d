import { iniBoolean, imageRefSchema } from '@unionize/protocol';
import { z } from 'zod';
import { Prefix } from '../store/ipv6.js';
import type { ClientRecord } from '../store/types.js';

/**
 * Profiles match devices to what their container runs: image, command,
 * environment, limits and a TTL. Config: one `[profiles.NAME]` section each,
 * tried in file order; every `match_*` key given must match; the first profile
 * that matches wins, and a device no profile matches gets `[instances]`.
 */

/** `*` and `?` globs, case-insensitive, anchored. */
function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

const glob = z.string().min(1).max(255).regex(/^[A-Za-z0-9:._*?-]+$/, 'a pattern of letters, digits, : . _ - and the wildcards * ?');

const envEntry = z.string().regex(/^[A-Z_][A-Z0-9_]{0,63}=.{0,4096}$/s, 'env[] entries are NAME=value');

/** `64m`, `1g`, `512k` or bytes. */
const memory = z
  .string()
  .regex(/^[0-9]+[kmg]?$/i, 'memory is a number of bytes with an optional k, m or g')
  .transform((s) => {
    const unit = s.slice(-1).toLowerCase();
    const factor = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
    return Number.parseInt(s, 10) * factor;
  })
  .refine((n) => n >= 6 * 1024 ** 2, 'memory below 6m is refused by Docker');

export const profileSchema = z
  .object({
    match_server: glob.optional(),
    match_duid: glob.optional(),
    match_mac: glob.optional(),
    match_hostname: glob.optional(),
    /** Device address inside this prefix, e.g. fd00:1::/64 or fd00:1:0:8000::/65. */
    match_prefix: z
      .string()
      .refine((s) => Prefix.tryParse(s) !== undefined, 'must be an IPv6 prefix ADDRESS/LEN')
      .optional(),
    image: imageRefSchema.optional(),
    /** A JSON array of strings, e.g. ["/bin/sh","-c","exec httpd -f"]. */
    command: z
      .string()
      .transform((s, ctx) => {
        try {
          const parsed: unknown = JSON.parse(s);
          if (Array.isArray(parsed) && parsed.length > 0 && parsed.every((p) => typeof p === 'string')) return parsed as string[];
        } catch {
          /* reported below */
        }
        ctx.addIssue({ code: 'custom', message: 'command must be a JSON array of strings' });
        return z.NEVER;
      })
      .optional(),
    env: z.union([envEntry, z.array(envEntry)]).optional(),
    memory: memory.optional(),
    cpus: z.coerce.number().positive().max(256).optional(),
    ttl_seconds: z.coerce.number().int().min(1).max(365 * 86_400).optional(),
    cooldown_seconds: z.coerce.number().int().min(0).max(365 * 86_400).default(60),
    /** Commit the container to an image when its lease ends (release, expiry, TTL), before removing it. */
    keep: iniBoolean.default(false),
    /** Kept images older than this are removed (0: kept until removed by hand or by keep_max_mb). */
    keep_days: z.coerce.number().min(0).max(3650).default(30),
    /** Kept images may take this many MiB per agent; the oldest go first (0: no bound). */
    keep_max_mb: z.coerce.number().int().min(0).max(2 ** 30).default(10_240),
    /** Warm pool: this many containers of this profile kept started on each agent, claimed by the next devices (0: none). */
    pool: z.coerce.number().int().min(0).max(1000).default(0),
  })
  .strict();

export interface Profile {
  name: string;
  image: string;
  command: string[] | null;
  env: Record<string, string>;
  memoryBytes: number | null;
  nanoCpus: number | null;
  ttlSeconds: number | null;
  cooldownSeconds: number;
  /** Keeping: null when the profile keeps nothing. */
  keep: { days: number; maxBytes: number } | null;
  /** Warm pool members wanted on each agent (0: none). */
  pool: number;
  matches(client: Pick<ClientRecord, 'server' | 'duid' | 'mac' | 'hostname' | 'address'>): boolean;
}

export function buildProfiles(sections: Record<string, z.output<typeof profileSchema>>, defaultImage: string): Profile[] {
  return Object.entries(sections).map(([name, p]) => {
    const patterns: Array<[keyof Pick<ClientRecord, 'server' | 'duid' | 'mac' | 'hostname'>, RegExp]> = [];
    if (p.match_server) patterns.push(['server', globToRegExp(p.match_server)]);
    if (p.match_duid) patterns.push(['duid', globToRegExp(p.match_duid)]);
    if (p.match_mac) patterns.push(['mac', globToRegExp(p.match_mac)]);
    if (p.match_hostname) patterns.push(['hostname', globToRegExp(p.match_hostname)]);
    const prefix = p.match_prefix ? Prefix.tryParse(p.match_prefix) : undefined;
    const env = Object.fromEntries(
      (p.env === undefined ? [] : Array.isArray(p.env) ? p.env : [p.env]).map((entry) => {
        const at = entry.indexOf('=');
        return [entry.slice(0, at), entry.slice(at + 1)];
      }),
    );
    return {
      name,
      image: p.image ?? defaultImage,
      command: p.command ?? null,
      env,
      memoryBytes: p.memory ?? null,
      nanoCpus: p.cpus === undefined ? null : Math.round(p.cpus * 1e9),
      ttlSeconds: p.ttl_seconds ?? null,
      cooldownSeconds: p.cooldown_seconds,
      keep: p.keep ? { days: p.keep_days, maxBytes: p.keep_max_mb * 1024 ** 2 } : null,
      pool: p.pool,
      matches(client) {
        for (const [field, pattern] of patterns) {
          const value = client[field];
          if (value === null || !pattern.test(value)) return false;
        }
        return !prefix || prefix.contains(client.address);
      },
    };
  });
}

/** The first profile matching the client, or the default one. */
export function chooseProfile(profiles: readonly Profile[], fallback: Profile, client: Parameters<Profile['matches']>[0]): Profile {
  return profiles.find((p) => p.matches(client)) ?? fallback;
}

export function defaultProfile(image: string, pool = 0): Profile {
  return {
    name: 'default',
    image,
    command: null,
    env: {},
    memoryBytes: null,
    nanoCpus: null,
    ttlSeconds: null,
    cooldownSeconds: 0,
    keep: null,
    pool,
    matches: () => true,
  };
}
