import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { AgentMonitor, type AgentSettings } from './agent-monitor.js';

function setup(settings: Array<Partial<AgentSettings> & { name: string }>, store = new MemoryStore({})) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const agents = settings.map((s) => new FakeAgent(s.name));
  const logged: string[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => logged.push((JSON.parse(line) as { msg: string }).msg) });
  const start = () =>
    AgentMonitor.open({
      agents,
      settings: settings.map((s) => ({ url: `https://${s.name}`, capacity: 0, drain: false, ...s })),
      store,
      clock: { now: () => new Date(now) },
      log,
      deadAfterMs: 10_000,
    });
  return { agents, store, start, logged, advance: (ms: number) => (now += ms) };
}

describe('AgentMonitor', () => {
  it('places on healthy, non-draining agents; a failing one is unhealthy, then dead after deadAfterMs', async () => {
    const t = setup([{ name: 'dock1' }, { name: 'dock2', drain: true }]);
    const monitor = await t.start();
    await monitor.checkAll();
    expect(monitor.placeable().map((a) => a.name)).toEqual(['dock1']);
    t.agents[0]!.down = true;
    await monitor.checkAll();
    expect(monitor.status('dock1')?.health).toBe('unhealthy');
    expect(monitor.isDead('dock1')).toBe(false);
    t.advance(9_999);
    await monitor.checkAll();
    expect(monitor.isDead('dock1')).toBe(false);
    t.advance(1);
    await monitor.checkAll();
    expect(monitor.isDead('dock1')).toBe(true);
    expect(monitor.placeable()).toEqual([]);
    t.agents[0]!.down = false;
    await monitor.checkAll();
    expect(monitor.status('dock1')).toMatchObject({ health: 'healthy', unhealthySince: null });
    // Each change logged once, dead too (it comes by the clock, between two checks).
    expect(t.logged).toEqual(['agent dock1 unhealthy', 'agent dock1 dead', 'agent dock1 healthy']);
  });

  it('takes drain from the config at each start: a drain lifted there is lifted', async () => {
    const store = new MemoryStore({});
    const drained = await setup([{ name: 'dock1', drain: true }, { name: 'dock2' }], store).start();
    await drained.checkAll();
    expect(drained.status('dock1')?.draining).toBe(true);
    const lifted = await setup([{ name: 'dock1' }, { name: 'dock2' }], store).start();
    expect(lifted.status('dock1')?.draining).toBe(false);
    expect(lifted.placeable().map((a) => a.name)).toEqual(['dock1', 'dock2']);
  });

  it('keeps an agent’s failing streak across a restart, so it is not healthy again by restarting', async () => {
    const store = new MemoryStore({});
    const t = setup([{ name: 'dock1' }], store);
    const first = await t.start();
    t.agents[0]!.down = true;
    await first.checkAll();
    t.advance(10_000);
    const second = await t.start();
    expect(second.isDead('dock1')).toBe(true);
  });
});
