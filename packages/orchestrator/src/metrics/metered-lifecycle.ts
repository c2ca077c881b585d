import type { EventOutcome, EventOutcomeKind, LeaseEvent } from '@unionize/protocol';
import { withRequestId } from '../context/request-id.js';
import { Lifecycle, type LifecycleOptions } from '../lifecycle/lifecycle.js';
import type { OrchestratorMetrics } from './metrics.js';

/**
 * The life cycle, observed: each lease event is applied under its request id
 * (= its eventId, which the hook also sends as `x-request-id`), so every log
 * line and agent call it causes carries it; events are counted by action and
 * outcome, and provisioning is timed. Behaviour is Lifecycle's, unchanged.
 * `onLeaseToReady` hears each lease→ready time the histogram gets (the
 * dashboard's per-minute p50/p95: a histogram's buckets are too coarse).
 */
export class MeteredLifecycle extends Lifecycle {
  readonly #metrics: OrchestratorMetrics;
  readonly #now: () => number;
  readonly #onLeaseToReady: ((seconds: number) => void) | undefined;

  constructor(options: LifecycleOptions & { metrics: OrchestratorMetrics; onLeaseToReady?: (seconds: number) => void }) {
    super(options);
    this.#metrics = options.metrics;
    this.#onLeaseToReady = options.onLeaseToReady;
    this.#now = () => options.clock.now().getTime();
  }

  override applyEvent(clientId: string, event: LeaseEvent): Promise<EventOutcome> {
    return withRequestId(event.eventId, async () => {
      try {
        const outcome = await super.applyEvent(clientId, event);
        this.#metrics.events.inc({ action: event.action, outcome: outcome.kind });
        if (outcome.kind === 'provisioned' && event.action === 'add') {
          const seen = Date.parse(event.seenAt);
          if (Number.isFinite(seen)) {
            const seconds = Math.max(0, this.#now() - seen) / 1000;
            this.#metrics.leaseToReadySeconds.observe(seconds);
            this.#onLeaseToReady?.(seconds);
          }
        }
        return outcome;
      } catch (error) {
        this.#metrics.events.inc({ action: event.action, outcome: 'failed' satisfies EventOutcomeKind });
        throw error;
      }
    });
  }

  override async provision(clientId: string, reason: string): Promise<boolean> {
    const end = this.#metrics.provisionSeconds.startTimer();
    try {
      const made = await super.provision(clientId, reason);
      end({ result: made ? 'ok' : 'refused' });
      return made;
    } catch (error) {
      end({ result: 'failed' });
      throw error;
    }
  }
}
