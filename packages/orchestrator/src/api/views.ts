import type { ClientRecord, EventRecord, InstanceRecord } from '../store/types.js';

/** API shapes: a client with its instance, as operators and tools see it. */
export interface ClientView extends ClientRecord {
  instance: InstanceRecord | null;
}

export function clientView(client: ClientRecord, instance: InstanceRecord | undefined): ClientView {
  return { ...client, instance: instance ?? null };
}

export function eventView(record: EventRecord) {
  return {
    eventId: record.eventId,
    clientId: record.clientId,
    seenAt: record.event.seenAt,
    receivedAt: record.receivedAt,
    appliedAt: record.appliedAt,
    outcome: record.outcome,
    action: record.event.action,
    server: record.event.server,
    duid: record.event.duid,
    address: record.event.address,
  };
}
