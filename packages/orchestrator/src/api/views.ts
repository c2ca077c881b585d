import type { z } from 'zod';
import type { AgentHealthView } from '../metrics/agent-health.js';
import type * as s from '../openapi/schemas.js';
import type { ClientRecord, EventRecord, InstanceRecord, ServerRecord, TransitionRecord } from '../store/types.js';
import type { WhoamiView } from './whoami.js';

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
    outcomeKind: record.outcomeKind,
    action: record.event.action,
    server: record.event.server,
    duid: record.event.duid,
    address: record.event.address,
  };
}

// Compile-time: each answer schema of openapi/schemas.ts describes exactly its TypeScript type.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const schemasMatchTypes: [
  Same<z.infer<typeof s.clientSchema>, ClientView>,
  Same<z.infer<typeof s.instanceSchema>, InstanceRecord>,
  Same<z.infer<typeof s.transitionSchema>, TransitionRecord>,
  Same<z.infer<typeof s.eventSchema>, ReturnType<typeof eventView>>,
  Same<z.infer<typeof s.serverSchema>, ServerRecord>,
  Same<z.infer<typeof s.whoamiSchema>, WhoamiView>,
  Same<Omit<z.infer<typeof s.agentSchema>, 'instances'>, Omit<AgentHealthView, 'latencyMs'>>,
] = [true, true, true, true, true, true, true];
