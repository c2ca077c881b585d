import { CLIENT_STATES, type ClientRecord, type ClientState, type TransitionRecord } from './types.js';

/**
 * A retired client (isRetired) and its last transitions as one string: what
 * the memory store holds for each of the clients that came and went, kept
 * for [retention] gone_days. As objects, such a client took about 2.4 KB of
 * heap (its record, its transitions, their strings and the indexes); packed,
 * about 0.5 KB. Reading one back costs a JSON.parse, which is why lookups by
 * device or address and the reconciler's listings leave retired clients out.
 *
 * The string is a JSON array: the record's fields in FIELDS order (the id is
 * the store's key, not repeated), then the transitions flattened as
 * [from, to, reason, at] with states as their index in CLIENT_STATES.
 * Timestamps in the canonical form toISOString writes are kept as their
 * milliseconds (13 digits instead of 26 characters); any other string is kept
 * as it is, so what comes out is always what went in.
 */

/** The record's fields in packing order; updatedAt first, so retiredAt reads it without parsing the rest. */
const FIELDS = [
  'updatedAt', 'server', 'role', 'duid', 'iaid', 'address', 'hostname', 'mac', 'state', 'desired',
  'stateReason', 'expiresAt', 'profile', 'ttlExpiresAt', 'cooldownUntil', 'firstSeen', 'lastSeen',
] as const satisfies readonly (keyof ClientRecord)[];

// Every field but the id is packed: a field added to ClientRecord and not to FIELDS fails to compile here.
const everyField: Record<Exclude<keyof ClientRecord, 'id' | PackedField>, never> = {};
void everyField;

type PackedField = (typeof FIELDS)[number];
/** Each field's place in the packed array. */
const AT = Object.fromEntries(FIELDS.map((field, i) => [field, i])) as Record<PackedField, number>;

type Packed = (string | number | null)[];

/** A canonical ISO timestamp as its milliseconds; anything else as it is. */
function packValue(value: string | null): string | number | null {
  if (value === null || value.length !== 24 || value[23] !== 'Z') return value;
  const ms = Date.parse(value);
  return Number.isFinite(ms) && new Date(ms).toISOString() === value ? ms : value;
}

function unpackValue(value: unknown): string | null {
  if (typeof value === 'number') return new Date(value).toISOString();
  if (typeof value === 'string' || value === null) return value;
  throw new Error(`packed client: unexpected value ${JSON.stringify(value)}`);
}

function stateAt(index: unknown): ClientState {
  const state = typeof index === 'number' ? CLIENT_STATES[index] : undefined;
  if (state === undefined) throw new Error(`packed client: no state at index ${String(index)}`);
  return state;
}

/** `client` and its transitions (oldest first) as one string. */
export function packRetired(client: ClientRecord, transitions: readonly TransitionRecord[]): string {
  const packed: Packed = FIELDS.map((field) => packValue(client[field]));
  for (const t of transitions) packed.push(CLIENT_STATES.indexOf(t.from), CLIENT_STATES.indexOf(t.to), t.reason, packValue(t.at));
  return JSON.stringify(packed);
}

/** What packRetired packed, as new objects. */
export function unpackRetired(id: string, packed: string): { client: ClientRecord; transitions: TransitionRecord[] } {
  const values = JSON.parse(packed) as unknown[];
  const v = (field: PackedField): string | null => unpackValue(values[AT[field]]);
  // One literal in ClientRecord's field order: the same shape as every other client object, and quicker to make.
  const client = {
    id, server: v('server'), role: v('role'), duid: v('duid'), iaid: v('iaid'), address: v('address'), hostname: v('hostname'), mac: v('mac'),
    state: v('state'), desired: v('desired'), stateReason: v('stateReason'), expiresAt: v('expiresAt'), profile: v('profile'),
    ttlExpiresAt: v('ttlExpiresAt'), cooldownUntil: v('cooldownUntil'), firstSeen: v('firstSeen'), lastSeen: v('lastSeen'), updatedAt: v('updatedAt'),
  } as unknown as ClientRecord;
  const transitions: TransitionRecord[] = [];
  for (let i = FIELDS.length; i + 3 < values.length; i += 4) {
    transitions.push({ clientId: id, from: stateAt(values[i]), to: stateAt(values[i + 1]), reason: unpackValue(values[i + 2])!, at: unpackValue(values[i + 3])! });
  }
  return { client: client as unknown as ClientRecord, transitions };
}

/** The packed client's updatedAt, read from the front of the string without parsing the rest. */
export function retiredAt(packed: string): string {
  if (packed[1] === '"') return (JSON.parse(packed) as string[])[0]!;
  return new Date(Number(packed.slice(1, packed.indexOf(',')))).toISOString();
}
