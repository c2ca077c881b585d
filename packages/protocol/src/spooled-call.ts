/**
 * A dnsmasq call as dnsmasq/orchestrator-hook.sh spools it (a `.call` file):
 * NUL-terminated fields
 *
 *   orchestrator-hook-call 2, seen-at (ns since the epoch), event id (uuid),
 *   argc, argv[0..argc), then NAME=value for each DNSMASQ_* variable the
 *   call had (only those in CALL_ENV).
 *
 * The script is the only writer; the hook's flusher reads it to deliver it,
 * orchestratorctl to show a set-aside one. Which dnsmasq it came from
 * (server, role) is the flusher's [dhcp], not the file's. The writer is
 * dnsmasq's own script, but the arguments and values are the device's
 * (hostname, DUID): everything goes through parseHookCall and the
 * lease-event schema before it is used, and is made printable before shown.
 */
export const CALL_MAGIC = 'orchestrator-hook-call 2';
/** Written before 2 by a script that also read server and role from hook.ini (two more fields after the event id, ignored). */
const CALL_MAGIC_1 = 'orchestrator-hook-call 1';

/** The DNSMASQ_* variables the dnsmasq source reads (protocol's parseHookCall); the script writes exactly these (hook-script.test.ts checks both). */
export const CALL_ENV = ['DNSMASQ_IAID', 'DNSMASQ_MAC', 'DNSMASQ_INTERFACE', 'DNSMASQ_LEASE_EXPIRES', 'DNSMASQ_LEASE_LENGTH'] as const;

/** dnsmasq passes at most four arguments for DHCPv6; a few more are tolerated, not thousands. */
const MAX_ARGS = 8;
/** Far above a real call (a 255-byte hostname, a 130-byte DUID…). */
export const MAX_CALL_BYTES = 16 * 1024;

export interface SpooledCall {
  seenAt: Date;
  eventId: string;
  argv: string[];
  env: Record<string, string>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ALLOWED_ENV = new Set<string>(CALL_ENV);

/** Decode a `.call` file; an error names what is wrong. */
export function decodeSpooledCall(bytes: Buffer): { ok: true; call: SpooledCall } | { ok: false; reason: string } {
  if (bytes.length > MAX_CALL_BYTES) return { ok: false, reason: `larger than ${MAX_CALL_BYTES} bytes` };
  const text = bytes.toString('utf8');
  if (!text.endsWith('\0')) return { ok: false, reason: 'incomplete (no final NUL)' };
  const fields = text.slice(0, -1).split('\0');
  if (fields[0] === CALL_MAGIC_1) fields.splice(3, 2);
  const [magic, seenNs, eventId, argcText] = fields;
  if (magic !== CALL_MAGIC && magic !== CALL_MAGIC_1) return { ok: false, reason: 'not an orchestrator-hook call file' };
  if (!seenNs || !/^[0-9]{1,20}$/.test(seenNs)) return { ok: false, reason: 'bad seen-at time' };
  if (!eventId || !UUID.test(eventId)) return { ok: false, reason: 'bad event id' };
  if (!argcText || !/^[0-9]{1,2}$/.test(argcText) || Number(argcText) > MAX_ARGS) return { ok: false, reason: 'bad argument count' };
  const argc = Number(argcText);
  const rest = fields.slice(4);
  if (rest.length < argc) return { ok: false, reason: `${argc} arguments announced, ${rest.length} present` };
  const argv = rest.slice(0, argc);
  const env: Record<string, string> = {};
  for (const pair of rest.slice(argc)) {
    const eq = pair.indexOf('=');
    const name = eq > 0 ? pair.slice(0, eq) : '';
    if (!ALLOWED_ENV.has(name) || name in env) return { ok: false, reason: `unexpected variable ${JSON.stringify(pair.slice(0, 40))}` };
    env[name] = pair.slice(eq + 1);
  }
  const seenAt = new Date(Number(BigInt(seenNs) / 1_000_000n));
  if (Number.isNaN(seenAt.getTime())) return { ok: false, reason: 'bad seen-at time' };
  return { ok: true, call: { seenAt, eventId: eventId.toLowerCase(), argv, env } };
}
