import { signedHeaders, testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { leaseEventFixture } from '@unionize/protocol/testing/lease-event';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { LEASE_EVENTS_PATH, RequestVerifier } from '@unionize/protocol';
import { createStandbyApp } from './standby-app.js';

describe('the standby orchestrator\'s answers', () => {
  const leader = { name: 'orch-a', url: 'https://orch-a:8443', epoch: 3, since: '2026-12-05T00:00:00.000Z' };
  const app = createStandbyApp({
    verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }),
    log: pino({ level: 'silent' }),
    leadership: { view: async () => ({ name: 'orch-b', role: 'standby', leader }) },
    retryAfterSeconds: 2,
  });
  const ask = (method: string, path: string, body = '', sign = true) =>
    app.request(`https://localhost${path}`, { method, headers: { 'content-type': 'application/json', ...(sign ? signedHeaders(method, path, body) : {}) }, ...(body ? { body } : {}) });

  it('refuses a lease event with 503 and Retry-After, naming no one; journals nothing', async () => {
    const response = await ask('POST', LEASE_EVENTS_PATH, JSON.stringify(leaseEventFixture()));
    expect(response.status).toBe(503);
    expect(response.headers.get('retry-after')).toBe('2');
    expect(await response.json()).toEqual({ error: { code: 'STANDBY', message: 'this orchestrator stands by; try another' } });
    expect((await ask('GET', '/v1/clients')).status).toBe(503);
  });

  it('is alive but not ready, and says who leads to a signed request only', async () => {
    expect((await ask('GET', '/healthz', '', false)).status).toBe(200);
    expect((await ask('GET', '/readyz', '', false)).status).toBe(503);
    const view = await ask('GET', '/v1/leadership');
    expect(view.status).toBe(200);
    expect(await view.json()).toEqual({ name: 'orch-b', role: 'standby', leader });
    expect((await ask('GET', '/v1/leadership', '', false)).status).toBe(401);
  });
});
