import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { certificatePin, parsePin, type ContainerView, type ServerTrust } from '@unionize/protocol';
import { testKey } from '@unionize/protocol/testing/keys';
import { startSignedTestServer, type SignedTestServer } from '@unionize/protocol/testing/signed-server';
import { HttpsAgentClient } from './agent-client.js';

const key = testKey('agent-dock1-1');
let srv: SignedTestServer;
let slowMs = 0;
const containers = new Map<string, ContainerView>();
/** The leadership epoch header of each request, by method and path. */
const epochs: string[] = [];

beforeAll(async () => {
  srv = await startSignedTestServer('agent-client', key, (app) => {
    app.use(async (c, next) => {
      epochs.push(`${c.req.method} ${c.req.path} ${c.req.header('x-unionize-leader-epoch') ?? '-'}`);
      await next();
    });
    app.post('/v1/containers', async (c) => {
      const body = await c.req.json<{ name: string; image: string }>();
      if (slowMs) await new Promise((r) => setTimeout(r, slowMs));
      const view: ContainerView = { name: body.name, id: `id-${body.name}`, image: body.image, state: 'running', labels: {}, address: 'fd00:3::100/64', mac: null, createdAt: 't' };
      containers.set(body.name, view);
      return c.json(view, 201);
    });
    app.get('/v1/containers', (c) => c.json({ containers: [...containers.values()] }));
    app.delete('/v1/containers/:name', (c) => (containers.delete(c.req.param('name')) ? c.body(null, 204) : c.json({ error: { code: 'NOT_FOUND', message: 'no' } }, 404)));
  });
});

afterAll(() => srv?.close());

const client = (trust: ServerTrust, timeoutMs = 5000) => new HttpsAgentClient({ name: 'dock1', url: srv.url, trust, key: () => key, timeoutMs });
const request = { name: 'dev-1', image: 'img', clientId: 'c1', labels: {}, address: 'fd00:3::100/64' } as never;

describe('HttpsAgentClient', () => {
  it('makes, lists and removes containers with signed requests, over one kept-alive connection', async () => {
    const agent = client({ ca: readFileSync(srv.certs.caCert) });
    const before = srv.connections();
    expect(await agent.health()).toBe(true);
    expect(await agent.createContainer(request)).toMatchObject({ name: 'dev-1', state: 'running' });
    expect((await agent.listContainers()).map((c) => c.name)).toEqual(['dev-1']);
    await agent.deleteContainer('dev-1');
    await agent.deleteContainer('dev-1');
    expect(await agent.listContainers()).toEqual([]);
    expect(srv.connections() - before).toBe(1);
    await agent.close();
  });

  it("sends a pair's leadership epoch with each request that changes something, and none alone", async () => {
    let epoch: number | undefined = 7;
    const leader = new HttpsAgentClient({ name: 'dock1', url: srv.url, trust: { ca: readFileSync(srv.certs.caCert) }, key: () => key, timeoutMs: 5000, leaderEpoch: () => epoch });
    epochs.length = 0;
    await leader.createContainer(request);
    await leader.listContainers();
    epoch = undefined;
    await leader.deleteContainer('dev-1');
    expect(epochs).toEqual(['POST /v1/containers 7', 'GET /v1/containers -', 'DELETE /v1/containers/dev-1 -']);
    await leader.close();
  });

  it('talks to a server holding the pinned certificate, and sends nothing to another', async () => {
    const pinned = client({ pin: parsePin(certificatePin(readFileSync(srv.certs.cert))) });
    expect(await pinned.health()).toBe(true);
    await pinned.close();
    const wrong = client({ pin: parsePin(certificatePin(readFileSync(srv.other.cert))) });
    const before = srv.hits();
    await expect(wrong.listContainers()).rejects.toMatchObject({ code: 'ORCH_AGENT_UNREACHABLE', message: /does not match the pin/ });
    expect(await wrong.health()).toBe(false);
    await expect(client({ ca: readFileSync(srv.other.caCert) }).listContainers()).rejects.toMatchObject({ code: 'ORCH_AGENT_UNREACHABLE' });
    expect(srv.hits()).toBe(before);
    await wrong.close();
  });

  it('gives up on an answer that does not come within the timeout', async () => {
    const agent = client({ ca: readFileSync(srv.certs.caCert) }, 200);
    slowMs = 1000;
    try {
      await expect(agent.createContainer(request)).rejects.toMatchObject({ code: 'ORCH_AGENT_UNREACHABLE', message: /within 200 ms/ });
    } finally {
      slowMs = 0;
    }
    expect(await agent.health()).toBe(true);
    await agent.close();
  });

  it('says an agent refused, with its error, and whether to retry', async () => {
    const agent = new HttpsAgentClient({ name: 'dock1', url: srv.url, trust: { ca: readFileSync(srv.certs.caCert) }, key: () => testKey('agent-dock1-1', 'x'), timeoutMs: 5000 });
    await expect(agent.listContainers()).rejects.toMatchObject({ code: 'ORCH_AGENT_REFUSED', retryable: false, message: /answered 401/ });
    await agent.close();
  });

  it('is unreachable when nothing listens', async () => {
    const agent = new HttpsAgentClient({ name: 'dock9', url: 'https://127.0.0.1:1', trust: { ca: readFileSync(srv.certs.caCert) }, key: () => key, timeoutMs: 2000 });
    await expect(agent.listContainers()).rejects.toMatchObject({ code: 'ORCH_AGENT_UNREACHABLE', retryable: true });
    await agent.close();
  });
});
