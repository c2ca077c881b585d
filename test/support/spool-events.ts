import { readdirSync, watch } from 'node:fs';
import { join } from 'node:path';
import { SPOOL_ENTRY } from '@unionize/protocol/hook-spool';
import type { Lab } from '../lab/lab.js';
import type { OrchestratorApi } from './orchestrator-api.js';

/**
 * Every lease event the lab's hook spools, seen as it is made (each spool
 * entry's name holds its event id: dnsmasq/orchestrator-hook.sh), and how many
 * never reached the journal applied: what "no event lost" is checked by
 * (issue 19). Watching from before the first lease: an entry delivered at
 * once still appeared.
 */
export class SpooledEvents {
  readonly ids = new Set<string>();
  readonly #spool: string;
  readonly #close: () => void;

  constructor(lab: Lab) {
    this.#spool = join(lab.dir, 'spool');
    const watcher = watch(this.#spool, (_event, name) => {
      if (name && SPOOL_ENTRY.test(name)) this.ids.add(eventIdOf(name));
    });
    this.#close = () => watcher.close();
  }

  /** Entries waiting in the spool now (not yet taken by an orchestrator). */
  pending(): number {
    return readdirSync(this.#spool).filter((name) => SPOOL_ENTRY.test(name)).length;
  }

  /** Entries the flusher set aside (refused as bad): none is expected. */
  setAside(): number {
    try {
      return readdirSync(join(this.#spool, 'rejected')).filter((name) => SPOOL_ENTRY.test(name)).length;
    } catch {
      return 0;
    }
  }

  /**
   * The spooled events not (yet) in the journal applied, and the journal's
   * unapplied ones, by GET /v1/events (its newest 1000: enough for a lab).
   */
  async unaccounted(api: OrchestratorApi): Promise<{ missing: string[]; unapplied: string[] }> {
    const { events } = await api.get<{ events: Array<{ eventId: string; appliedAt: string | null }> }>('/v1/events?limit=1000');
    const applied = new Set(events.filter((e) => e.appliedAt !== null).map((e) => e.eventId));
    return { missing: [...this.ids].filter((id) => !applied.has(id)), unapplied: events.filter((e) => e.appliedAt === null).map((e) => e.eventId) };
  }

  /** Polls until every spooled event is journaled and applied and the spool is empty, or `timeoutMs`; answers how many were lost. */
  async settle(api: OrchestratorApi, timeoutMs: number): Promise<{ lost: number; missing: string[]; unapplied: string[] }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await this.unaccounted(api).catch(() => undefined);
      const done = found && found.missing.length === 0 && found.unapplied.length === 0 && this.pending() === 0;
      if (done || Date.now() > deadline) {
        const { missing, unapplied } = found ?? { missing: [...this.ids], unapplied: [] };
        return { lost: missing.length + this.setAside(), missing, unapplied };
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  close(): void {
    this.#close();
  }
}

/** The event id in a spool entry's name: <ms>-<pid>-[<n>-]<event id>.call. */
function eventIdOf(name: string): string {
  return name.slice(-'.call'.length - 36, -'.call'.length);
}
