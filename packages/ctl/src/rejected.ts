import { existsSync, lstatSync, readdirSync, renameSync, unlinkSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { z } from 'zod';
import { ConfigError, loadConfigFile } from '@unionize/protocol/config';
import {
  DEFAULT_MAX_CALL_BYTES, REASON_SUFFIX, REJECTED_DIR, SPOOL_ENTRY, hookConfigFile, parseReasonLine, readSpoolFile, spoolSectionSchema,
} from '@unionize/protocol/hook-spool';
import { decodeSpooledCall } from '@unionize/protocol/spooled-call';
import { CtlError } from './errors.js';

/**
 * `orchestratorctl hook rejected|resend`: what the hook's flusher set aside
 * in `<spool>/rejected/` (protocol's hook-spool.ts), on the host where the
 * hook runs. The flusher moves there what the orchestrator refused for good
 * (a 4xx that is not 401/403) and what is not a call, each with
 * `NAME.reason` beside it; resend moves calls back into the spool, where the
 * flusher delivers them again, signed with the hook's own key.
 *
 * Order: a resent call keeps its name, and names order the spool, so it
 * goes back to its own place: before every newer call still spooled (their
 * order is unchanged) and after nothing older. It cannot go back before the
 * calls delivered while it was set aside: the orchestrator applies events in
 * the order they arrive, so if a newer event of the same client (DUID, IAID)
 * went through meanwhile, the resent one is applied after it. Renaming it as
 * a new call instead would put it behind newer calls still spooled, breaking
 * their order too; its own name breaks nothing that is still to come.
 */

export interface HookSpoolPlace {
  dir: string;
  maxCallBytes: number;
  /** Where `dir` came from: `--spool` or the hook's config file. */
  source: string;
}

/** The part of hook.ini orchestratorctl reads; the rest is the flusher's to check. */
const hookIni = z.object({ spool: spoolSectionSchema.prefault({}) });

/** The spool: `--spool DIR`, else the hook's config (`--hook-config FILE`, $ORCHESTRATOR_HOOK_CONFIG, /etc/orchestrator/hook.ini). */
export function hookSpoolPlace(flags: { hookConfig?: string; spool?: string }, env: NodeJS.ProcessEnv = process.env): HookSpoolPlace {
  const file = hookConfigFile(env, flags.hookConfig);
  if (flags.spool !== undefined) {
    if (!isAbsolute(flags.spool)) throw new CtlError(`--spool must be an absolute path, got ${JSON.stringify(flags.spool)}`, 2);
    const fromFile = flags.hookConfig !== undefined || existsSync(file) ? loadHookIni(file) : null;
    return { dir: flags.spool, maxCallBytes: fromFile?.spool.max_call_bytes ?? DEFAULT_MAX_CALL_BYTES, source: '--spool' };
  }
  if (flags.hookConfig === undefined && !existsSync(file)) {
    throw new CtlError(`no hook config at ${file}: give --hook-config FILE (the flusher's hook.ini) or --spool DIR`, 2);
  }
  const config = loadHookIni(file);
  return { dir: config.spool.dir, maxCallBytes: config.spool.max_call_bytes, source: file };
}

function loadHookIni(file: string): z.output<typeof hookIni> {
  try {
    return loadConfigFile(file, hookIni);
  } catch (error) {
    if (error instanceof ConfigError) throw new CtlError(error.message);
    throw error;
  }
}

/** A file in rejected/, as the operator sees it. Every string in `event` is the device's: shown made printable. */
export interface SetAside {
  name: string;
  /** Named as a spooled call, so resend can return it (a stray is not). */
  resendable: boolean;
  /** From NAME.reason: when and why the flusher set it aside (null when it has none). */
  setAsideAt: string | null;
  reason: string | null;
  /** The dnsmasq call in it, when it is one. */
  event: {
    eventId: string;
    seenAt: string;
    action: string | null;
    duid: string | null;
    iaid: string | null;
    address: string | null;
    hostname: string | null;
  } | null;
  /** Why it is not shown as a call (not a regular file, too large, not a call file). */
  problem?: string;
}

/** The reason file is one short line; far more is not ours. */
const MAX_REASON_BYTES = 4096;

/** What is in rejected/, oldest call first then strays by name; empty when there is none. */
export function listRejected(place: HookSpoolPlace): SetAside[] {
  const rejected = join(place.dir, REJECTED_DIR);
  let names: string[];
  try {
    names = readdirSync(rejected);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    throw new CtlError(`cannot list ${rejected}: ${code ?? (error as Error).message}`);
  }
  const files = names.filter((n) => !n.endsWith(REASON_SUFFIX));
  const ordered = [...files.filter((n) => SPOOL_ENTRY.test(n)).sort(), ...files.filter((n) => !SPOOL_ENTRY.test(n)).sort()];
  return ordered.map((name) => setAside(rejected, name, place.maxCallBytes));
}

function setAside(rejected: string, name: string, maxCallBytes: number): SetAside {
  const reasonFile = readSpoolFile(join(rejected, `${name}${REASON_SUFFIX}`), MAX_REASON_BYTES);
  const { at, reason } = reasonFile.ok ? parseReasonLine(reasonFile.bytes.toString('utf8')) : { at: null, reason: null };
  const base = { name, resendable: SPOOL_ENTRY.test(name), setAsideAt: at, reason };
  const file = readSpoolFile(join(rejected, name), maxCallBytes);
  if (!file.ok) return { ...base, event: null, problem: file.reason };
  const decoded = decodeSpooledCall(file.bytes);
  if (!decoded.ok) return { ...base, event: null, problem: decoded.reason };
  const { call } = decoded;
  const arg = (i: number) => call.argv[i] ?? null;
  return {
    ...base,
    event: {
      eventId: call.eventId, seenAt: call.seenAt.toISOString(),
      action: arg(0), duid: arg(1), address: arg(2), hostname: arg(3), iaid: call.env.DNSMASQ_IAID ?? null,
    },
  };
}

export interface ResendResult {
  /** Moved back into the spool, oldest first. */
  resent: string[];
  /** With --all: what stays in rejected/, and why. */
  skipped: Array<{ name: string; why: string }>;
}

/**
 * Move set-aside calls back into the spool (rename(2), so the flusher sees
 * each whole or not at all), and drop their reasons. Named ones are all
 * checked first: one wrong name moves nothing. `'all'` moves every call and
 * leaves what the flusher would only set aside again (strays, FIFOs, links,
 * files over max_call_bytes, files that are not calls).
 */
export function resendRejected(place: HookSpoolPlace, which: readonly string[] | 'all'): ResendResult {
  const rejected = join(place.dir, REJECTED_DIR);
  const skipped: ResendResult['skipped'] = [];
  let names: string[];
  if (which === 'all') {
    names = [];
    for (const entry of listRejected(place)) {
      const why = whyNotResendable(place, entry.name);
      if (why) skipped.push({ name: entry.name, why });
      else names.push(entry.name);
    }
  } else {
    if (which.length === 0) throw new CtlError('name the set-aside calls to resend (orchestratorctl hook rejected lists them), or give --all', 2);
    const problems = [...new Set(which)].flatMap((name) => {
      const why = whyNotResendable(place, name);
      return why ? [`${JSON.stringify(name)}: ${why}`] : [];
    });
    if (problems.length > 0) throw new CtlError(`nothing resent: ${problems.join('; ')}`);
    names = [...new Set(which)].sort();
  }
  const resent: string[] = [];
  for (const name of names) {
    try {
      renameSync(join(rejected, name), join(place.dir, name));
    } catch (error) {
      const done = resent.length > 0 ? ` (resent before it: ${resent.join(', ')})` : '';
      throw new CtlError(`cannot move ${name} back into ${place.dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}${done}`);
    }
    resent.push(name);
    try {
      unlinkSync(join(rejected, `${name}${REASON_SUFFIX}`));
    } catch {
      /* none, or already gone: the call is back either way */
    }
  }
  return { resent, skipped };
}

/** Why `name` cannot go back into the spool, or null. */
function whyNotResendable(place: HookSpoolPlace, name: string): string | null {
  if (!SPOOL_ENTRY.test(name)) return "not a spooled call's name (<ms>-<pid>-<event id>.call, no slashes): the flusher would set it aside again";
  const rejected = join(place.dir, REJECTED_DIR);
  if (!entryExists(join(rejected, name))) return `not in ${rejected}`;
  const { problem } = setAside(rejected, name, place.maxCallBytes);
  if (problem !== undefined) return `${problem}: the flusher would set it aside again`;
  if (entryExists(join(place.dir, name))) return 'a call of that name is already spooled';
  return null;
}

/** Like existsSync, but a dangling symbolic link exists too. */
function entryExists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}
