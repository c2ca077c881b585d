import type { ClientView, EventView, InstanceView, ServerView, TransitionView } from '@unionize/protocol';
import type { ClientRecord, EventRecord, InstanceRecord, ServerRecord, TransitionRecord } from '../store/types.js';

/**
 * The API's answers, built from the store's records: typed by the contract
 * (protocol's orchestrator-api.ts). Each view names its fields, so a field
 * added to a record is not answered until the contract has it too.
 */

export function instanceView(instance: InstanceRecord): InstanceView {
  const { clientId, agent, containerName, containerId, address, mac, image, createdAt } = instance;
  return { clientId, agent, containerName, containerId, address, mac, image, createdAt };
}

export function clientView(client: ClientRecord, instance: InstanceRecord | undefined): ClientView {
  return {
    id: client.id,
    server: client.server,
    role: client.role,
    duid: client.duid,
    iaid: client.iaid,
    address: client.address,
    hostname: client.hostname,
    mac: client.mac,
    state: client.state,
    desired: client.desired,
    stateReason: client.stateReason,
    expiresAt: client.expiresAt,
    profile: client.profile,
    ttlExpiresAt: client.ttlExpiresAt,
    cooldownUntil: client.cooldownUntil,
    firstSeen: client.firstSeen,
    lastSeen: client.lastSeen,
    updatedAt: client.updatedAt,
    instance: instance ? instanceView(instance) : null,
  };
}

export function transitionView(t: TransitionRecord): TransitionView {
  return { clientId: t.clientId, from: t.from, to: t.to, reason: t.reason, at: t.at };
}

export function serverView(s: ServerRecord): ServerView {
  return { name: s.name, role: s.role, firstSeen: s.firstSeen, lastSeen: s.lastSeen };
}

export function eventView(record: EventRecord): EventView {
  return {
    eventId: record.eventId,
    clientId: record.clientId,
    seenAt: record.event.seenAt,
    receivedAt: record.receivedAt,
    appliedAt: record.appliedAt,
    outcome: record.outcome,
    outcomeKind: record.outcomeKind,
    action: record.event.action,
    server: record.event.server,
    duid: record.event.duid,
    address: record.event.address,
  };
}
