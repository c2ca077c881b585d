import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerError } from '../errors.js';
import { DockerEngineClient } from './docker-client.js';
import { EngineHttp, EngineHttpError } from './engine-http.js';
import { DHCP_ADDRESS } from '@unionize/protocol';

/** A Docker Engine API double on a unix socket: answers as dockerd does for the calls unionize makes. */
interface Seen {
  method: string;
  url: string;
  body: string;
  contentType: string | undefined;
}

const INSPECT = {
  Id: 'f00dcafe'.repeat(8),
  Name: '/dev-0123456789ab',
  Created: '2026-01-02T03:04:05.123456789Z',
  Config: { Image: 'unionize-client:latest', Labels: { 'io.unionize.managed': 'true' } },
  State: { Status: 'running', Running: true, Pid: 4242 },
};

function fakeDocker(seen: Seen[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', body: Buffer.concat(chunks).toString(), contentType: req.headers['content-type'] });
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
      };
      const url = req.url ?? '';
      if (url === '/_ping') return void res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('OK');
      if (url === '/slow/_ping') return; // never answers
      if (url.startsWith('/containers/create')) {
        if (url.includes('name=taken')) return json(409, { message: 'Conflict. The container name "/taken" is already in use' });
        return json(201, { Id: 'new-id', Warnings: [] });
      }
      if (url === '/containers/dev-0123456789ab/json') return json(200, INSPECT);
      if (url === '/containers/dev-0123/json') return json(200, INSPECT); // an id-prefix match
      if (url.endsWith('/json') && req.method === 'GET' && url.startsWith('/containers/') && !url.startsWith('/containers/json')) {
        return json(404, { message: `No such container: ${url.split('/')[2]}` });
      }
      if (url === '/containers/running/start') return void res.writeHead(304).end();
      if (url.endsWith('/start')) return void res.writeHead(204).end();
      if (url.startsWith('/containers/gone?')) return json(404, { message: 'No such container: gone' });
      if (req.method === 'DELETE') return void res.writeHead(204).end();
      if (url.startsWith('/containers/json?')) {
        return json(200, [{ Id: 'a1', Names: ['/dev-a'], Image: 'img', State: 'exited', Labels: null, Created: 1_700_000_000 }]);
      }
      if (url === '/broken') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('  plain failure \n');
      json(404, { message: 'page not found' });
    });
  };
}

describe('DockerEngineClient on a fake Docker socket', () => {
  let dir: string;
  let server: Server;
  let socketPath: string;
  let docker: DockerEngineClient;
  const seen: Seen[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ua-engine-'));
    socketPath = join(dir, 'docker.sock');
    server = createServer(fakeDocker(seen));
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
    docker = new DockerEngineClient({ socketPath, pingTimeoutMs: 200 });
  });

  afterAll(async () => {
    docker.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  it('pings', async () => {
    await expect(docker.ping()).resolves.toBeUndefined();
  });

  it('inspects by exact name only, null when Docker does not know it', async () => {
    expect(await docker.inspectByName('dev-0123456789ab')).toEqual({
      id: INSPECT.Id,
      name: 'dev-0123456789ab',
      image: 'unionize-client:latest',
      state: 'running',
      pid: 4242,
      labels: { 'io.unionize.managed': 'true' },
      createdAt: '2026-01-02T03:04:05.123Z',
    });
    expect(await docker.inspectByName('dev-0123')).toBeNull();
    expect(await docker.inspectByName('nope')).toBeNull();
  });

  it('inspects by id or name as Docker resolves them (unionize attach), with the name Docker gives', async () => {
    expect(await docker.inspect('dev-0123')).toMatchObject({ id: INSPECT.Id, name: 'dev-0123456789ab', pid: 4242 });
    expect(await docker.inspect('nope')).toBeNull();
  });

  it('creates with the name in the query and the rest as a JSON body', async () => {
    seen.length = 0;
    const id = await docker.create({ name: 'dev-x', image: 'img', labels: {}, env: { A: '1' }, mac: '02:00:00:00:00:01', address: DHCP_ADDRESS });
    expect(id).toBe('new-id');
    const [call] = seen;
    expect(call).toMatchObject({ method: 'POST', url: '/containers/create?name=dev-x', contentType: 'application/json' });
    const body = JSON.parse(call!.body) as Record<string, unknown>;
    expect(body).not.toHaveProperty('name');
    expect(body).toMatchObject({ Image: 'img', Env: ['A=1'], HostConfig: { NetworkMode: 'none' } });
  });

  it("gives Docker's message and status in a DockerError", async () => {
    const error = await docker.create({ name: 'taken', image: 'img', labels: {}, env: {}, mac: 'm', address: DHCP_ADDRESS }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DockerError);
    expect(error).toMatchObject({ dockerStatus: 409, message: 'docker create taken: Conflict. The container name "/taken" is already in use' });
  });

  it('starts, and starting a running container is not an error', async () => {
    await expect(docker.start('abc')).resolves.toBeUndefined();
    await expect(docker.start('running')).resolves.toBeUndefined();
  });

  it('force-removes with volumes; false when it did not exist', async () => {
    seen.length = 0;
    expect(await docker.remove('abc')).toBe(true);
    expect(seen[0]).toMatchObject({ method: 'DELETE', url: '/containers/abc?force=true&v=true' });
    expect(await docker.remove('gone')).toBe(false);
  });

  it('lists managed containers by label', async () => {
    seen.length = 0;
    expect(await docker.listManaged()).toEqual([
      { id: 'a1', name: 'dev-a', image: 'img', state: 'exited', pid: 0, labels: {}, createdAt: new Date(1_700_000_000_000).toISOString() },
    ]);
    const url = new URL(seen[0]!.url, 'http://docker');
    expect(url.pathname).toBe('/containers/json');
    expect(url.searchParams.get('all')).toBe('true');
    expect(JSON.parse(url.searchParams.get('filters')!)).toEqual({ label: ['io.unionize.managed=true'] });
  });

  it('reports a socket nobody listens on, and a ping that does not answer in time', async () => {
    const nowhere = new DockerEngineClient({ socketPath: join(dir, 'nowhere.sock') });
    await expect(nowhere.ping()).rejects.toThrow(/^docker ping: connect ENOENT /);
    const http = new EngineHttp({ socketPath });
    await expect(http.call({ method: 'GET', path: '/slow/_ping', timeoutMs: 50 })).rejects.toThrow('timeout after 50 ms');
    http.close();
  });

  it('takes a plain-text error body as the message', async () => {
    const http = new EngineHttp({ socketPath });
    const error = await http.call({ method: 'GET', path: '/broken' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EngineHttpError);
    expect(error).toMatchObject({ statusCode: 500, dockerMessage: 'plain failure' });
    http.close();
  });
});
