import type { ContainerView, CreateContainerRequest } from '@unionize/protocol';
import type { AgentClient } from './agent-client.js';
import { AgentError } from './errors.js';

export interface RetryOptions {
  /** Tries in all, the first included. */
  attempts: number;
  /** Delay before the second try; tripled for each further one. */
  baseDelayMs: number;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * An AgentClient that retries retryable failures (agent unreachable, 5xx).
 * Safe because every agent call is idempotent: a container is created under a
 * name derived from the client key, so a retried create finds the first one.
 */
export function withRetry(inner: AgentClient, options: RetryOptions): AgentClient {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  async function retrying<T>(call: () => Promise<T>): Promise<T> {
    let delay = options.baseDelayMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await call();
      } catch (error) {
        const retryable = error instanceof AgentError && error.retryable;
        if (!retryable || attempt >= options.attempts) throw error;
        await sleep(delay * (0.8 + Math.random() * 0.4));
        delay *= 3;
      }
    }
  }
  return {
    name: inner.name,
    createContainer: (request: CreateContainerRequest): Promise<ContainerView> => retrying(() => inner.createContainer(request)),
    deleteContainer: (name: string) => retrying(() => inner.deleteContainer(name)),
    listContainers: () => retrying(() => inner.listContainers()),
    // Not retried: the next round says it again.
    setPools: (pools) => inner.setPools(pools),
    // Not retried: a commit that timed out may still finish, and a second one would make a second image.
    keepContainer: (name, request) => inner.keepContainer(name, request),
    listKept: () => retrying(() => inner.listKept()),
    deleteKept: (id) => retrying(() => inner.deleteKept(id)),
    exportImage: (what) => inner.exportImage(what),
    health: () => inner.health(),
    close: () => inner.close(),
  };
}
