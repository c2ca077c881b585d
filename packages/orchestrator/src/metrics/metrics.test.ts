import { signedHeaders, testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { EVENT_OUTCOME_KINDS, RequestVerifier, type ContainerView, type CreateContainerRequest } from '@unionize/protocol';
import { createApp } from '../api/app.js';
import { currentRequestId, elapsedMs } from '../context/request-context.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { AgentMonitor } from '../agents/agent-monitor.js';
import { agentHealthFrom } from './agent-health.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { createMetrics, observeState } from './metrics.js';
import { metricsObserver } from './observer.js';
import { IdleTrim } from '../memory/idle-trim.js';

const metricsToken = Buffer.from('m'.repeat(40));

/** Remembers the request id current when each call was made, and how long its request had taken by then. */
class RecordingAgent extends FakeAgent {
  readonly requestIds: Array<string | undefined> = [];
  readonly elapsed: Array<number | undefined> = [];
  override createContainer(request: CreateContainerRequest): Promise<ContainerView> {
    this.requestIds.push(currentRequestId());
    this.elapsed.push(elapsedMs());
    return super.createContainer(request);
  }
}

function setup() {
  const log = pino({ level: 'silent' });
  const clock = { now: () => new Date() };
  const store = new MemoryStore({ prefix: 'fd00:3::/64' });
  const agent = new RecordingAgent('dock1');
  const agents = [agent];
  const monitor = new AgentMonitor({ agents, settings: [{ name: 'dock1', url: 'https://dock1', capacity: 0, drain: false }], store, clock, log, deadAfterMs: 60_000, recorded: [] });
  const agentHealth = Object.assign(agentHealthFrom(monitor), { checkAll: () => monitor.checkAll() });
  const metrics = createMetrics();
  const observer = metricsObserver(metrics, { clock });
  const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img:1', prefixLength: 64, observer });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 2, observer });
  const pools = () => [{ name: 'default', size: 2, ready: 1, starting: 1, claims: 3, misses: 1, lastRefillMs: 400 }];
  observeState(metrics, { store, agentHealth, queueDepth: () => dispatcher.depth, pools });
  const app = createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log, metrics, metricsToken, agentHealth });
  return { app, dispatcher, agent, agentHealth, metrics };
}

function post(action: 'add' | 'del', headers: Record<string, string> = {}) {
  const eventId = randomUUID();
  const body = JSON.stringify({
    eventId, server: 'devnet', role: 'device', action, duid: '00:03:00:01:02:aa:bb:cc:dd:01', iaid: '1',
    address: 'fd00:1::1000', hostname: 'laptop', mac: '02:aa:bb:cc:dd:01', interface: 'brdev', expiresAt: null, seenAt: new Date().toISOString(),
  });
  const init = { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers, ...signedHeaders('POST', '/v1/lease-events', body) } };
  return { eventId, init };
}

describe('/metrics', () => {
  it('is refused without the bearer token, and off (404) without a token file', async () => {
    const { app } = setup();
    expect((await app.request('/metrics')).status).toBe(401);
    expect((await app.request('/metrics', { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    const log = pino({ level: 'silent' });
    const store = new MemoryStore({ prefix: 'fd00:3::/64' });
    const lifecycle = new Lifecycle({ store, agents: [], clock: { now: () => new Date() }, log, image: 'i', prefixLength: 64 });
    const off = createApp({ store, dispatcher: new EventDispatcher({ store, lifecycle, clock: { now: () => new Date() }, log, concurrency: 1 }), lifecycle, agents: [], verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log });
    expect((await off.request('/metrics')).status).toBe(404);
  });

  it('counts events by action and outcome, times provisioning, and shows clients by state, agent health and the spool depth', async () => {
    const { app, dispatcher, agentHealth } = setup();
    expect((await app.request('/v1/lease-events', post('add', { 'x-hook-spool-depth': '3' }).init)).status).toBe(202);
    await dispatcher.idle();
    expect((await app.request('/v1/lease-events', post('del', { 'x-hook-spool-depth': '0' }).init)).status).toBe(202);
    await dispatcher.idle();
    await agentHealth.checkAll();
    const res = await app.request('/metrics', { headers: { authorization: `Bearer ${metricsToken.toString()}` } });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('orchestrator_lease_events_total{action="add",outcome="provisioned"} 1');
    expect(text).toContain('orchestrator_lease_events_total{action="del",outcome="deprovisioned"} 1');
    expect(text).toContain('orchestrator_provision_duration_seconds_count{result="ok"} 1');
    expect(text).toContain('orchestrator_lease_to_ready_seconds_count 1');
    expect(text).toContain('orchestrator_clients{state="gone"} 1');
    expect(text).toContain('orchestrator_clients{state="ready"} 0');
    expect(text).toContain('orchestrator_agent_up{agent="dock1"} 1');
    expect(text).toContain('orchestrator_hook_spool_depth{server="devnet"} 0');
    expect(text).toContain('orchestrator_agent_pool{agent="dock1",pool="default",kind="claims"} 3');
    expect(text).toContain('orchestrator_agent_pool{agent="dock1",pool="default",kind="ready"} 1');
    expect(text).toMatch(/orchestrator_http_requests_total\{method="POST",route="\/v1\/lease-events",status="202"\} 2/);
  });

  it('sets every metric it defines: each has a series, with a sensible value', async () => {
    const { app, dispatcher, agentHealth, metrics } = setup();
    expect((await app.request('/v1/lease-events', post('add', { 'x-hook-spool-depth': '2', 'x-hook-rejected': '5' }).init)).status).toBe(202);
    await dispatcher.idle();
    await agentHealth.checkAll();
    // A trim once activity stops, as main.ts wires it (here with a collection that does nothing).
    const trimmed = new Promise<void>((resolve) => {
      new IdleTrim({ idleMs: 1, gc: () => {}, log: pino({ level: 'silent' }), onTrim: (seconds) => (metrics.memoryTrimSeconds.observe(seconds), resolve()) }).noteActivity();
    });
    await trimmed;
    const scrape = await app.request('/metrics', { headers: { authorization: `Bearer ${metricsToken.toString()}` } });
    const text = await scrape.text();
    const defined = await metrics.registry.getMetricsAsJSON();
    expect(defined.length).toBeGreaterThanOrEqual(11);
    for (const metric of defined) {
      const values = metric.values.filter((v) => v.metricName === undefined || v.metricName === metric.name || v.metricName === `${metric.name}_count`);
      expect(values.length, `${metric.name}: no series`).toBeGreaterThan(0);
      for (const v of values) expect(Number.isFinite(v.value) && v.value >= 0, `${metric.name}: ${v.value}`).toBe(true);
      if (metric.type === 'counter' || metric.type === 'histogram') expect(Math.max(...values.map((v) => v.value)), `${metric.name}: never counted`).toBeGreaterThan(0);
      expect(text, `${metric.name}: not in the scrape`).toMatch(new RegExp(`^${metric.name}(_count)?(\\{[^}]*\\})? `, 'm'));
    }
    const value = (name: string) => Number(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm').exec(text)?.[1]);
    const check = value('orchestrator_agent_health_check_seconds\\{agent="dock1"\\}');
    expect(check).toBeGreaterThanOrEqual(0);
    expect(check).toBeLessThan(60);
    expect(value('orchestrator_provision_duration_seconds_count\\{result="ok"\\}')).toBe(1);
    expect(value('orchestrator_provision_duration_seconds_sum\\{result="ok"\\}')).toBeLessThan(60);
    expect(value('orchestrator_lease_to_ready_seconds_count')).toBe(1);
    expect(value('orchestrator_event_queue_depth')).toBe(0);
    expect(value('orchestrator_hook_spool_depth\\{server="devnet"\\}')).toBe(2);
    expect(value('orchestrator_hook_rejected_events\\{server="devnet"\\}')).toBe(5);
    expect(value('orchestrator_instances\\{agent="dock1"\\}')).toBe(1);
    expect(value('orchestrator_clients\\{state="ready"\\}')).toBe(1);
  });

  it('labels outcomes by their kind, without their reasons', async () => {
    const { app, dispatcher } = setup();
    for (const action of ['del', 'add', 'add'] as const) {
      expect((await app.request('/v1/lease-events', post(action).init)).status).toBe(202);
      await dispatcher.idle();
    }
    const text = await (await app.request('/metrics', { headers: { authorization: `Bearer ${metricsToken.toString()}` } })).text();
    expect(text).toContain('orchestrator_lease_events_total{action="del",outcome="ignored"} 1');
    expect(text).toContain('orchestrator_lease_events_total{action="add",outcome="provisioned"} 1');
    expect(text).toContain('orchestrator_lease_events_total{action="add",outcome="refreshed"} 1');
    const labels = [...text.matchAll(/^orchestrator_lease_events_total\{action="[a-z]+",outcome="([^"]*)"\}/gm)].map((m) => m[1]);
    expect(labels.length).toBe(3);
    for (const label of labels) expect(EVENT_OUTCOME_KINDS).toContain(label);
  });
});

describe('request ids', () => {
  it("applies a lease event under its eventId, so the agent call carries it", async () => {
    const { app, dispatcher, agent } = setup();
    const { eventId, init } = post('add', { 'x-request-id': 'ignored-here' });
    const res = await app.request('/v1/lease-events', init);
    expect(res.headers.get('x-request-id')).toBe('ignored-here');
    await dispatcher.idle();
    expect(agent.requestIds).toEqual([eventId]);
    // And the request's time, from the API edge through the journal and the queue.
    expect(agent.elapsed).toEqual([expect.any(Number)]);
    expect(agent.elapsed[0]).toBeGreaterThanOrEqual(0);
  });

  it("takes the event's id as the request id when the caller sends none", async () => {
    const { app } = setup();
    const { eventId, init } = post('add');
    const res = await app.request('/v1/lease-events', init);
    expect(res.headers.get('x-request-id')).toBe(eventId);
  });

  it('runs each queued task in the context it was queued from, whatever ran before it', async () => {
    const { KeyedQueue } = await import('../events/keyed-queue.js');
    const { withRequestId } = await import('../context/request-context.js');
    const queue = new KeyedQueue({ concurrency: 1, onError: () => {} });
    const seen: Array<string | undefined> = [];
    const task = () => async () => {
      await new Promise((r) => setTimeout(r, 5));
      seen.push(currentRequestId());
    };
    withRequestId('first', () => queue.push('a', task()));
    withRequestId('second', () => queue.push('b', task()));
    queue.push('c', task());
    await queue.idle();
    expect(seen).toEqual(['first', 'second', undefined]);
  });
});
