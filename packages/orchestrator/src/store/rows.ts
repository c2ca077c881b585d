import { leaseEventSchema } from '@unionize/protocol';
import type { ClientRecord, EventRecord } from './types.js';

/**
 * Records as the SQL stores (SQLite, PostgreSQL) keep them, and back: one
 * definition for both, whose tables have the same columns.
 */

/** A journal row's columns: the event as JSON text. */
export function eventRow(record: EventRecord) {
  return {
    eventId: record.eventId,
    clientId: record.clientId,
    receivedAt: record.receivedAt,
    payload: JSON.stringify(record.event),
    appliedAt: record.appliedAt,
    outcome: record.outcome,
    outcomeKind: record.outcomeKind,
  };
}

/** A journal row as an event; throws when its payload is not a lease event (the store quarantines the row). */
export function toEvent(row: ReturnType<typeof eventRow>): EventRecord {
  return {
    eventId: row.eventId,
    clientId: row.clientId,
    receivedAt: row.receivedAt,
    event: leaseEventSchema.parse(JSON.parse(row.payload)),
    appliedAt: row.appliedAt,
    outcome: row.outcome,
    outcomeKind: row.outcomeKind,
  };
}

/** A clients row as a client: without the columns the store keeps for its indexes. */
export function toClient<Row extends ClientRecordColumns>(row: Row): ClientRecord {
  const { devicePrefix64: _prefix, deviceAddress: _address, ...client } = row;
  return client as unknown as ClientRecord;
}

type ClientRecordColumns = Record<keyof ClientRecord, unknown> & { devicePrefix64: string | null; deviceAddress: string | null };
