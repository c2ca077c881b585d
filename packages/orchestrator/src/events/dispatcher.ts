import type { Logger } from 'pino';
import { clientIdOf, type LeaseEvent } from '@unionize/protocol';
import type { Clock } from '../clock.js';
import type { Lifecycle } from '../lifecycle/lifecycle.js';
import type { Store } from '../store/store.js';
import type { EventRecord } from '../store/types.js';
import { KeyedQueue } from './keyed-queue.js';

export interface DispatcherOptions {
  store: Store;
  lifecycle: Lifecycle;
  clock: Clock;
  log: Logger;
  concurrency: number;
  /** Backoff for failed clients: base delay doubling per attempt up to the cap, ms. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

/**
 * Journals lease events and applies them: per client in order, different
 * clients in parallel. A failed client is retried with capped exponential
 * backoff until it reaches what its lease asks for.
 */
export class EventDispatcher {
  readonly #store: Store;
  readonly #lifecycle: Lifecycle;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #queue: KeyedQueue;
  readonly #retryBaseMs: number;
  readonly #retryMaxMs: number;
  readonly #retries = new Map<string, { attempt: number; timer: NodeJS.Timeout }>();
  #stopped = false;

  constructor(options: DispatcherOptions) {
    this.#store = options.store;
    this.#lifecycle = options.lifecycle;
    this.#clock = options.clock;
    this.#log = options.log;
    this.#retryBaseMs = options.retryBaseMs ?? 1000;
    this.#retryMaxMs = options.retryMaxMs ?? 60_000;
    this.#queue = new KeyedQueue({
      concurrency: options.concurrency,
      onError: (key, error) => this.#log.error({ client: key, err: error }, 'task failed'),
    });
  }

  /** Journal an event (durable before the caller answers 202) and queue it. */
  accept(event: LeaseEvent): { eventId: string; clientId: string; duplicate: boolean } {
    const clientId = clientIdOf(event.server, event.duid, event.iaid);
    const record: EventRecord = {
      eventId: event.eventId,
      clientId,
      receivedAt: this.#clock.now().toISOString(),
      event,
      appliedAt: null,
      outcome: null,
    };
    const { duplicate } = this.#store.appendEvent(record);
    if (duplicate) {
      this.#log.info({ eventId: event.eventId, client: clientId }, 'duplicate event: already journaled');
    } else {
      this.#enqueue(record);
    }
    return { eventId: event.eventId, clientId, duplicate };
  }

  /** Queue events journaled but not applied (after a restart). */
  resume(): number {
    const events = this.#store.unappliedEvents();
    for (const record of events) this.#enqueue(record);
    return events.length;
  }

  /** Queue a task for a client, in order with its events (e.g. a forced deprovision). */
  run(clientId: string, task: () => Promise<void>): void {
    this.#queue.push(clientId, task);
  }

  get depth(): number {
    return this.#queue.depth;
  }

  idle(): Promise<void> {
    return this.#queue.idle();
  }

  stop(): void {
    this.#stopped = true;
    for (const { timer } of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
  }

  #enqueue(record: EventRecord): void {
    this.#queue.push(record.clientId, async () => {
      let outcome: string;
      try {
        outcome = await this.#lifecycle.applyEvent(record.clientId, record.event);
        this.#clearRetry(record.clientId);
      } catch (error) {
        outcome = `failed: ${(error as Error).message}`;
        this.#scheduleRetry(record.clientId);
      }
      this.#store.markEventApplied(record.eventId, this.#clock.now().toISOString(), outcome);
      // Fields inline rather than a child logger per event: a child costs more than the line.
      this.#log.info({ eventId: record.eventId, client: record.clientId, action: record.event.action, outcome }, 'event applied');
    });
  }

  #scheduleRetry(clientId: string): void {
    if (this.#stopped) return;
    const attempt = (this.#retries.get(clientId)?.attempt ?? 0) + 1;
    const delay = Math.min(this.#retryMaxMs, this.#retryBaseMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
    const timer = setTimeout(() => {
      this.#queue.push(clientId, async () => {
        try {
          await this.#lifecycle.converge(clientId, `retry ${attempt}`);
          this.#clearRetry(clientId);
        } catch (error) {
          this.#log.warn({ client: clientId, attempt, err: error }, 'retry failed');
          this.#scheduleRetry(clientId);
        }
      });
    }, delay);
    timer.unref();
    this.#retries.set(clientId, { attempt, timer });
  }

  #clearRetry(clientId: string): void {
    const retry = this.#retries.get(clientId);
    if (!retry) return;
    clearTimeout(retry.timer);
    this.#retries.delete(clientId);
  }
}
