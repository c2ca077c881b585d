import { testOrchestratorKeyring } from '@unionize/protocol/testing/keys';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { RequestVerifier, documentedRoutes, servedRoutes } from '@unionize/protocol';
import { createApp } from '../api/app.js';
import { EventDispatcher } from '../events/dispatcher.js';
import { Lifecycle } from '../lifecycle/lifecycle.js';
import { MemoryStore } from '../store/memory-store.js';
import { FakeAgent } from '../testing/fake-agent.js';
import { orchestratorOpenApi } from './routes.js';

function app() {
  const log = pino({ level: 'silent' });
  const clock = { now: () => new Date() };
  const store = new MemoryStore({ prefix: 'fd00:3::/64' });
  const agents = [new FakeAgent('dock1')];
  const lifecycle = new Lifecycle({ store, agents, clock, log, image: 'img:1', prefixLength: 64 });
  const dispatcher = new EventDispatcher({ store, lifecycle, clock, log, concurrency: 1 });
  return createApp({ store, dispatcher, lifecycle, agents, verifier: new RequestVerifier({ keys: testOrchestratorKeyring() }), log });
}

describe('the OpenAPI document', () => {
  it('lists exactly the routes the app serves, both ways', () => {
    const served = servedRoutes(app().routes);
    const documented = documentedRoutes(orchestratorOpenApi());
    expect(served.length).toBeGreaterThan(10);
    expect(documented.filter((r) => !served.includes(r)), 'documented but not served').toEqual([]);
    expect(served.filter((r) => !documented.includes(r)), 'served but not documented').toEqual([]);
  });

  it('is served unsigned at /v1/openapi.json, with schemas made from the zod schemas', async () => {
    const res = await app().request('/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    expect(doc.openapi).toBe('3.1.0');
    const post = doc.paths['/v1/lease-events'].post;
    expect(post.security).toEqual([{ hmac: [] }]);
    const body = post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['eventId', 'duid', 'iaid', 'address']));
    expect(body.properties.action.enum).toEqual(['add', 'old', 'del']);
    expect(body.additionalProperties).toBe(false);
    const clients = doc.paths['/v1/clients/{id}'].get;
    expect(clients.parameters).toContainEqual({ name: 'id', in: 'path', required: true, schema: { type: 'string' } });
    expect(doc.paths['/v1/events'].get.parameters[0]).toMatchObject({ name: 'limit', in: 'query', required: false });
    expect(doc.paths['/v1/whoami'].get.security).toEqual([]);
  });
});
