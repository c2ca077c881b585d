import { describe, expect, it } from 'vitest';
import type { AgentClient } from './agent-client.js';
import { AgentError } from './errors.js';
import { withRetry } from './with-retry.js';

function flaky(failures: AgentError[]): AgentClient & { calls: number } {
  const agent = {
    name: 'a',
    calls: 0,
    async listContainers() {
      agent.calls++;
      const failure = failures.shift();
      if (failure) throw failure;
      return [];
    },
    createContainer: async () => {
      throw new Error('unused');
    },
    deleteContainer: async () => undefined,
    health: async () => true,
    close: async () => undefined,
  };
  return agent;
}

const unreachable = () => new AgentError('ORCH_AGENT_UNREACHABLE', 'down', { retryable: true });
const refused = () => new AgentError('ORCH_AGENT_REFUSED', '409', { retryable: false });

describe('withRetry', () => {
  it('retries retryable failures with growing delays, then succeeds', async () => {
    const inner = flaky([unreachable(), unreachable()]);
    const delays: number[] = [];
    const agent = withRetry(inner, { attempts: 3, baseDelayMs: 100, sleep: async (ms) => void delays.push(ms) });
    await expect(agent.listContainers()).resolves.toEqual([]);
    expect(inner.calls).toBe(3);
    expect(delays).toHaveLength(2);
    expect(delays[1]!).toBeGreaterThan(delays[0]!);
  });

  it('gives up after the last attempt, and at once on a refusal', async () => {
    const inner = flaky([unreachable(), unreachable(), unreachable()]);
    await expect(withRetry(inner, { attempts: 2, baseDelayMs: 1 }).listContainers()).rejects.toThrow('down');
    expect(inner.calls).toBe(2);
    const refusing = flaky([refused()]);
    await expect(withRetry(refusing, { attempts: 5, baseDelayMs: 1 }).listContainers()).rejects.toThrow('409');
    expect(refusing.calls).toBe(1);
  });
});
