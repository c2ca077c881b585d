import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { ContainerView, CreateContainerRequest } from '@unionize/protocol';

/**
 * A stand-in unionize for the scale figures: the orchestrator's real HTTPS
 * agent client talks to it, and it answers at once from a map (no Docker, no
 * attach), so 10,000 clients can each have an instance. It does not check
 * signatures: it measures the orchestrator, not itself.
 */
export class FakeAgent {
  readonly containers = new Map<string, ContainerView>();
  readonly #server: Server;
  requests = 0;

  constructor(options: { cert: string; key: string }) {
    this.#server = createServer({ cert: readFileSync(options.cert), key: readFileSync(options.key), keepAliveTimeout: 60_000 }, (req, res) => {
      this.requests++;
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const send = (status: number, body?: unknown) => {
          const text = body === undefined ? '' : JSON.stringify(body);
          res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
          res.end(text);
        };
        const url = req.url ?? '/';
        if (req.method === 'POST' && url === '/v1/containers') {
          const request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as CreateContainerRequest;
          const view: ContainerView = this.containers.get(request.name) ?? {
            name: request.name,
            id: `fake${request.name}`.padEnd(64, '0'),
            image: request.image,
            state: 'running',
            labels: { ...request.labels, 'io.unionize.managed': 'true' },
            address: request.address,
            mac: request.mac,
            createdAt: new Date().toISOString(),
          };
          this.containers.set(request.name, view);
          return send(201, view);
        }
        if (req.method === 'GET' && url === '/v1/containers') return send(200, { containers: [...this.containers.values()] });
        if (req.method === 'DELETE' && url.startsWith('/v1/containers/')) {
          const name = decodeURIComponent(url.slice('/v1/containers/'.length));
          return send(this.containers.delete(name) ? 204 : 404);
        }
        if (req.method === 'GET' && url === '/healthz') return send(200, { ok: true });
        return send(404, { error: { code: 'NOT_FOUND', message: url } });
      });
    });
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => resolve());
    });
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
