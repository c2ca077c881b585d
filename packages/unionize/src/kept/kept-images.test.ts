import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { EngineRequest } from '../docker/engine-http.js';
import { EngineHttpError } from '../docker/engine-http.js';
import type { ContainerInfo } from '../docker/docker-client.js';
import { KeptImages } from './kept-images.js';

const MiB = 1024 ** 2;
const log = pino({ level: 'silent' });

/** A Docker engine with kept images and one managed container, answering the calls KeptImages makes. */
function engine(images: Array<{ id: string; client: string; size: number; created: number }>) {
  const calls: EngineRequest[] = [];
  let commits = 0;
  const http = {
    stream: () => Promise.reject(new Error('not in this test')),
    async call<T>(req: EngineRequest): Promise<T> {
      calls.push(req);
      if (req.path.startsWith('/commit?')) {
        const q = new URLSearchParams(req.path.slice('/commit?'.length));
        const labels = (req.body as { Labels: Record<string, string> }).Labels;
        const id = String(++commits).padStart(64, 'f');
        images.push({ id, client: labels['io.unionize.kept.client']!, size: 3 * MiB, created: 1000 + commits });
        expect(q.get('repo')).toBe(`unionize-kept/${labels['io.unionize.kept.client']}`);
        return { Id: `sha256:${id}` } as T;
      }
      if (req.path.startsWith('/images/json?')) {
        return images.map((i) => ({
          Id: `sha256:${i.id}`, RepoTags: [`unionize-kept/${i.client}:t${i.created}`], Size: i.size, Created: i.created,
          Labels: { 'io.unionize.kept': 'true', 'io.unionize.kept.client': i.client, 'io.unionize.kept.hostname': 'h', 'io.unionize.kept.profile': 'p' },
        })) as T;
      }
      if (req.method === 'DELETE' && req.path.startsWith('/images/sha256:')) {
        const id = req.path.slice('/images/sha256:'.length, '/images/sha256:'.length + 64);
        const at = images.findIndex((i) => i.id === id);
        if (at < 0) throw new EngineHttpError(404, 'No such image');
        images.splice(at, 1);
        return undefined as T;
      }
      throw new Error(`unexpected ${req.method} ${req.path}`);
    },
  };
  const container: ContainerInfo = { id: 'c'.repeat(64), name: 'dev-1', image: 'img', state: 'running', pid: 1, labels: { 'io.unionize.managed': 'true' }, createdAt: '' };
  const docker = { inspectByName: async (name: string) => (name === container.name ? container : name === 'foreign' ? { ...container, name, labels: {} } : null) };
  return { kept: new KeptImages({ http, docker, log }), calls, images };
}

describe('KeptImages', () => {
  const request = { client: 'abc123', tag: '20260101T000000000Z', hostname: 'visitor-1', profile: 'visitor' };

  it('commits the managed container with its labels, managed turned off, paused', async () => {
    const { kept, calls } = engine([]);
    const result = await kept.keep('dev-1', request);
    expect(result.kept).toMatchObject({ client: 'abc123', sizeBytes: 3 * MiB, image: 'unionize-kept/abc123:t1001' });
    expect(result.removed).toEqual([]);
    const commit = calls.find((c) => c.path.startsWith('/commit?'))!;
    expect(new URLSearchParams(commit.path.slice(8)).get('container')).toBe('c'.repeat(64));
    expect(new URLSearchParams(commit.path.slice(8)).get('pause')).toBe('true');
    expect(commit.body).toEqual({ Labels: { 'io.unionize.managed': 'false', 'io.unionize.pool': '', 'io.unionize.pool.spec': '', 'io.unionize.kept': 'true', 'io.unionize.kept.client': 'abc123', 'io.unionize.kept.hostname': 'visitor-1', 'io.unionize.kept.profile': 'visitor' } });
  });

  it('refuses a container that is absent or not managed, committing nothing', async () => {
    const { kept, calls } = engine([]);
    await expect(kept.keep('none', request)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(kept.keep('foreign', request)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(calls).toEqual([]);
  });

  it('over maxBytes: the oldest go first, never the new one', async () => {
    const { kept, images } = engine([
      { id: 'a'.repeat(64), client: 'old1', size: 4 * MiB, created: 10 },
      { id: 'b'.repeat(64), client: 'old2', size: 4 * MiB, created: 20 },
    ]);
    const result = await kept.keep('dev-1', { ...request, maxBytes: 8 * MiB });
    expect(result.removed.map((r) => r.client)).toEqual(['old1']);
    expect(images.map((i) => i.client)).toEqual(['old2', 'abc123']);
    // Alone over the bound, the new one stays.
    const alone = await kept.keep('dev-1', { ...request, maxBytes: MiB });
    expect(alone.removed.map((r) => r.client)).toEqual(['old2', 'abc123']);
    expect(images).toHaveLength(1);
  });

  it('removes only kept images, by id', async () => {
    const { kept, calls } = engine([{ id: 'a'.repeat(64), client: 'x', size: 1, created: 1 }]);
    expect(await kept.remove('e'.repeat(64))).toBe(false);
    expect(calls.some((c) => c.method === 'DELETE')).toBe(false);
    expect(await kept.remove('a'.repeat(64))).toBe(true);
    expect(await kept.list()).toEqual([]);
  });
});
