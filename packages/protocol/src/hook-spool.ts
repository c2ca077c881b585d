import { z } from 'zod';
import { readRegularFile } from './regular-file.js';

/**
 * The hook's spool on disk, as its three users see it:
 * dnsmasq/orchestrator-hook.sh writes it, the hook's flusher reads and
 * delivers it, and `orchestratorctl hook rejected|resend` looks at and
 * returns what the flusher set aside.
 *
 * One call per file, `<ms>-<pid>-<eventId>.call` (spooled-call.ts has its
 * content), where <ms> is 15 zero-padded digits so that names sort in arrival
 * order, and never less than the newest spooled name's + 1, so a clock stepped
 * backwards cannot put a new call in front of older ones. A file appears only
 * complete: the writer writes a dot-named temp file and renames it.
 *
 * What the flusher will not deliver (refused for good by the orchestrator,
 * or not a call) it moves to `rejected/` with `NAME.reason` beside it.
 */

/** The name the writer gives a call (older writers put a counter after the pid). */
export const SPOOL_ENTRY = /^[0-9]{15}-[0-9]+-(?:[0-9]+-)?[0-9a-fA-F-]{36}\.call$/;
/** The writer's temp files, renamed into place when complete. */
export const SPOOL_TEMP_PREFIX = '.tmp-';
/** Read by dnsmasq/orchestrator-hook.sh: keep the name and the content (pid-lock: `<pid> <start time>`) in step with it. */
export const FLUSHER_LOCK_FILE = '.flusher';
/** Beside the spooled calls: what the flusher set aside. */
export const REJECTED_DIR = 'rejected';
/** Beside each file in rejected/: when and why it was set aside. */
export const REASON_SUFFIX = '.reason';

/** A `.reason` file's one line: `<ISO time> <reason>`. */
export function reasonLine(at: Date, reason: string): string {
  return `${at.toISOString()} ${reason}\n`;
}

export function parseReasonLine(text: string): { at: string | null; reason: string } {
  const line = text.trim();
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (.*)$/s.exec(line);
  return m ? { at: m[1]!, reason: m[2]! } : { at: null, reason: line };
}

export const DEFAULT_SPOOL_DIR = '/var/spool/orchestrator-hook';
/** A dnsmasq call is its arguments and a dozen DNSMASQ_* variables: well under 64 KiB. */
export const DEFAULT_MAX_CALL_BYTES = 64 * 1024;

/** hook.ini's [spool]: read by the flusher, and by orchestratorctl to find rejected/. */
export const spoolSectionSchema = z.strictObject({
  /** Where dnsmasq/orchestrator-hook.sh spools calls (its ORCHESTRATOR_HOOK_SPOOL), in arrival order. */
  dir: z.string().min(1).refine((d) => d.startsWith('/'), 'must be an absolute path').default(DEFAULT_SPOOL_DIR),
  /** The largest spooled file read as a call, bytes; larger ones (and anything not a regular file) are moved to rejected/. */
  max_call_bytes: z.coerce.number().int().min(1024).max(16 * 1024 * 1024).default(DEFAULT_MAX_CALL_BYTES),
  /** Read by nothing now (the shell hook's limit is its ORCHESTRATOR_HOOK_MAX_EVENTS; node no longer runs per call): kept so older files load. */
  max_events: z.string().optional(),
  budget_ms: z.string().optional(),
});

export const HOOK_CONFIG_ENV = 'ORCHESTRATOR_HOOK_CONFIG';
export const DEFAULT_HOOK_CONFIG = '/etc/orchestrator/hook.ini';

/** `file` (from --config / --hook-config) wins over ORCHESTRATOR_HOOK_CONFIG, which wins over the default path. */
export function hookConfigFile(env: NodeJS.ProcessEnv, file?: string): string {
  return file || env[HOOK_CONFIG_ENV] || DEFAULT_HOOK_CONFIG;
}

export type SpoolFileRead = { ok: true; bytes: Buffer } | { ok: false; reason: string };

/**
 * A spool file's bytes. Only a regular file (not followed if a symbolic link,
 * not opened blocking if a FIFO) of at most `maxBytes` is read; anything else
 * says why not.
 */
export function readSpoolFile(path: string, maxBytes: number): SpoolFileRead {
  return readRegularFile(path, { maxBytes, limitName: 'max_call_bytes' });
}
