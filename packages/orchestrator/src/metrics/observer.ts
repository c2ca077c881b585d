import type { EventOutcomeKind, LeaseEvent } from '@unionize/protocol';
import type { Clock } from '../clock.js';
import type { DispatchObserver } from '../events/dispatcher.js';
import type { LifecycleObserver } from '../lifecycle/lifecycle.js';
import type { OrchestratorMetrics } from './metrics.js';

/**
 * The metrics as the work's observer: the dispatcher tells it each applied
 * event (counted by action and outcome kind; an `add` that made its client
 * ready gives the lease→ready time), the life cycle each provisioning (timed,
 * by result). `onLeaseToReady` hears each lease→ready time the histogram gets
 * (the dashboard's per-minute p50/p95: a histogram's buckets are too coarse).
 */
export function metricsObserver(
  metrics: OrchestratorMetrics,
  options: { clock: Clock; onLeaseToReady?: (seconds: number) => void },
): DispatchObserver & LifecycleObserver {
  return {
    eventApplied(event: LeaseEvent, outcome: EventOutcomeKind): void {
      metrics.events.inc({ action: event.action, outcome });
      if (outcome !== 'provisioned' || event.action !== 'add') return;
      const seen = Date.parse(event.seenAt);
      if (!Number.isFinite(seen)) return;
      const seconds = Math.max(0, options.clock.now().getTime() - seen) / 1000;
      metrics.leaseToReadySeconds.observe(seconds);
      options.onLeaseToReady?.(seconds);
    },
    provisioned(result, seconds): void {
      metrics.provisionSeconds.observe({ result }, seconds);
    },
  };
}
