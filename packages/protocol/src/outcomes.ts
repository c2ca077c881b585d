import type { LeaseAction } from './lease-event.js';

/**
 * Facts several packages branch on, each named once: how a container is
 * addressed, how unionize attaches it, and what applying a lease event did.
 * Code switches on these, never on a message's words.
 */

/**
 * How a container gets its eth1 address: from the orchestrator's pool
 * (`static`), or by leasing it itself over DHCPv6 (`dhcp`). The orchestrator's
 * `[addressing] mode`; `unionize attach … dhcp`.
 */
export const ADDRESSING_MODES = ['static', 'dhcp'] as const;
export type AddressingMode = (typeof ADDRESSING_MODES)[number];

/** How unionize attaches a container to its bridge: `[network] attach`. */
export const ATTACH_BACKENDS = ['native', 'pipework'] as const;
export type AttachBackend = (typeof ATTACH_BACKENDS)[number];

/** What applying one lease event did; `kind` is the machine-readable part (`outcomeKind` in the API, the metric's `outcome` label). */
export type EventOutcome =
  /** A container was made (or repaired) for the client. */
  | { kind: 'provisioned' }
  /** A ready client's lease was renewed or replayed (`add` or `old`): nothing to do. */
  | { kind: 'refreshed'; action: LeaseAction }
  /** A quota said no; the client is `failed` with this reason. */
  | { kind: 'refused'; reason: string }
  /** The lease was released (`del`): the container was removed. */
  | { kind: 'deprovisioned' }
  /** Nothing to do, and why. */
  | { kind: 'ignored'; reason: string }
  /** The client's TTL ran out: no container before `until`. */
  | { kind: 'cooling'; until: string | null }
  /** dhcp addressing: a container's own lease, bound to its instance. */
  | { kind: 'bound'; address: string; container: string }
  /** dhcp addressing: a container's own lease was released. */
  | { kind: 'released'; container: string }
  /** Applying it threw (the error's message). */
  | { kind: 'failed'; error: string };

export type EventOutcomeKind = EventOutcome['kind'];

/** Every kind, for schemas and metric labels (the compiler checks it lists each one). */
export const EVENT_OUTCOME_KINDS = [
  'provisioned',
  'refreshed',
  'refused',
  'deprovisioned',
  'ignored',
  'cooling',
  'bound',
  'released',
  'failed',
] as const satisfies readonly EventOutcomeKind[];
const eventOutcomeKindsComplete: Exclude<EventOutcomeKind, (typeof EVENT_OUTCOME_KINDS)[number]> extends never ? true : false = true;
void eventOutcomeKindsComplete;

/** The human-readable `outcome` the journal and the API have always shown; made from the outcome, never read back. */
export function outcomeText(outcome: EventOutcome): string {
  switch (outcome.kind) {
    case 'provisioned':
    case 'deprovisioned':
      return outcome.kind;
    case 'refreshed':
      return `refreshed (${outcome.action})`;
    case 'refused':
      return `refused (${outcome.reason})`;
    case 'ignored':
      return `ignored: ${outcome.reason}`;
    case 'cooling':
      return `cooling down until ${outcome.until} after its TTL ran out`;
    case 'bound':
      return `bound ${outcome.address} to ${outcome.container}`;
    case 'released':
      return `instance lease of ${outcome.container} released`;
    case 'failed':
      return `failed: ${outcome.error}`;
  }
}
