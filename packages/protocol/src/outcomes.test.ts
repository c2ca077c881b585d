import { describe, expect, it } from 'vitest';
import { DHCP_ADDRESS, addressSchema } from './agent-api.js';
import { ADDRESSING_MODES, EVENT_OUTCOME_KINDS, outcomeText, type EventOutcome } from './outcomes.js';

describe('event outcomes', () => {
  // The words the journal and GET /v1/events have always shown, one of each kind.
  const cases: Array<[EventOutcome, string]> = [
    [{ kind: 'provisioned' }, 'provisioned'],
    [{ kind: 'refreshed', action: 'old' }, 'refreshed (old)'],
    [{ kind: 'refused', reason: 'quota: 2 instances in all, the most allowed (max_instances 2)' }, 'refused (quota: 2 instances in all, the most allowed (max_instances 2))'],
    [{ kind: 'deprovisioned' }, 'deprovisioned'],
    [{ kind: 'ignored', reason: 'release for an unknown client' }, 'ignored: release for an unknown client'],
    [{ kind: 'cooling', until: '2026-01-01T00:10:00.000Z' }, 'cooling down until 2026-01-01T00:10:00.000Z after its TTL ran out'],
    [{ kind: 'bound', address: 'fd00:3::d1', container: 'dev-1' }, 'bound fd00:3::d1 to dev-1'],
    [{ kind: 'released', container: 'dev-1' }, 'instance lease of dev-1 released'],
    [{ kind: 'failed', error: 'agent dock1 unreachable' }, 'failed: agent dock1 unreachable'],
  ];

  it.each(cases)('%o reads %j', (outcome, text) => {
    expect(outcomeText(outcome)).toBe(text);
  });

  it('lists every kind once, and the cases cover each', () => {
    expect(new Set(EVENT_OUTCOME_KINDS).size).toBe(EVENT_OUTCOME_KINDS.length);
    expect(cases.map(([o]) => o.kind).sort()).toEqual([...EVENT_OUTCOME_KINDS].sort());
  });
});

describe('addressing modes', () => {
  it('the agent API’s dhcp address is the dhcp mode, and the only non-address it takes', () => {
    expect(ADDRESSING_MODES).toContain(DHCP_ADDRESS);
    expect(addressSchema.safeParse(DHCP_ADDRESS).success).toBe(true);
    expect(addressSchema.safeParse('static').success).toBe(false);
  });
});
