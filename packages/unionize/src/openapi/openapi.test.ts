import { RequestVerifier, documentedRoutes, servedRoutes } from '@unionize/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { Attacher } from '../attach/native.js';
import type { DockerClient } from '../docker/docker-client.js';
import { createApp } from '../api/app.js';
import { createMetrics } from '../metrics/metrics.js';
import { unionizeOpenApi } from './routes.js';

const docker: DockerClient = {
  ping: async () => {},
  inspectByName: async () => null,
  create: async () => 'id',
  start: async () => {},
  remove: async () => false,
  listManaged: async () => [],
};
const attacher = { preflight: async () => {}, attach: async () => ({}) } as unknown as Attacher;
const metricsToken = Buffer.from('m'.repeat(40));

function app() {
  return createApp({
    docker, attacher, verifier: new RequestVerifier({ secret: Buffer.from('s'.repeat(64)) }), network: { gateway: 'fd00:3::1' },
    log: pino({ level: 'silent' }), metrics: createMetrics({ docker }), metricsToken,
  });
}

describe("unionize's OpenAPI document", () => {
  it('lists exactly the routes the app serves, both ways', () => {
    const served = servedRoutes(app().routes);
    const documented = documentedRoutes(unionizeOpenApi());
    expect(documented.filter((r) => !served.includes(r)), 'documented but not served').toEqual([]);
    expect(served.filter((r) => !documented.includes(r)), 'served but not documented').toEqual([]);
  });

  it('is served unsigned, with the create body from createContainerSchema', async () => {
    const res = await app().request('/v1/openapi.json');
    expect(res.status).toBe(200);
    const doc = (await res.json()) as any;
    const body = doc.paths['/v1/containers'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['name', 'image', 'mac', 'address']));
    expect(doc.paths['/v1/containers/{name}'].delete.security).toEqual([{ hmac: [] }]);
  });
});

describe("unionize's /metrics", () => {
  it('needs the bearer token, and shows Docker up, containers by state and requests by route', async () => {
    const a = app();
    expect((await a.request('/metrics')).status).toBe(401);
    await a.request('/healthz');
    const res = await a.request('/metrics', { headers: { authorization: `Bearer ${metricsToken.toString()}` } });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).toContain('unionize_docker_up 1');
    expect(text).toContain('unionize_containers{state="running"} 0');
    expect(text).toContain('unionize_http_requests_total{method="GET",route="/healthz",status="200"} 1');
  });
});
