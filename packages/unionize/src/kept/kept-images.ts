import { KEPT_LABELS, KEPT_REPOSITORY, type KeepContainerRequest, type KeepResult, type KeptImage, compareText } from '@unionize/protocol';
import { pipeline, type Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import type { Logger } from 'pino';
import type { EngineHttp } from '../docker/engine-http.js';
import { EngineHttpError } from '../docker/engine-http.js';
import { OWN_LABELS, type DockerClient } from '../docker/docker-client.js';
import { DockerError, UnionizeError } from '../errors.js';

/**
 * Kept images: a device's container committed to `unionize-kept/CLIENT:TAG`
 * before it is removed (a profile's `keep = true`), listed and removed by id.
 * The images are only ever made, listed and removed here: nothing runs them.
 */

/** Where a live container's export is committed for the time of its download; removed after. */
const EXPORT_REPOSITORY = 'unionize-export';

/** gzip's fastest level: an export is made while it downloads, on the agent's CPU. */
const GZIP_LEVEL = 1;

/** The parts of `GET /images/json` read here. */
interface ImageSummary {
  Id: string;
  RepoTags?: string[] | null;
  Labels?: Record<string, string> | null;
  Size: number;
  Created: number;
}

export interface KeptImagesDeps {
  http: Pick<EngineHttp, 'call' | 'stream'>;
  docker: Pick<DockerClient, 'inspectByName'>;
  log: Logger;
  /** A commit copies the container's writable layer: longer than other calls. */
  commitTimeoutMs?: number;
}

const bareId = (id: string) => id.replace(/^sha256:/, '');

function toKept(image: ImageSummary): KeptImage {
  const labels = image.Labels ?? {};
  const tag = (image.RepoTags ?? []).find((t) => t.startsWith(`${KEPT_REPOSITORY}/`));
  return {
    image: tag ?? `${KEPT_REPOSITORY}/${labels[KEPT_LABELS.client] ?? 'unknown'}@sha256:${bareId(image.Id)}`,
    id: bareId(image.Id),
    client: labels[KEPT_LABELS.client] ?? '',
    hostname: labels[KEPT_LABELS.hostname] ?? '',
    profile: labels[KEPT_LABELS.profile] ?? '',
    sizeBytes: image.Size,
    createdAt: new Date(image.Created * 1000).toISOString(),
  };
}

function dockerError(what: string, error: unknown): DockerError {
  const detail = error instanceof EngineHttpError ? error.dockerMessage : (error as Error).message;
  return new DockerError(`docker ${what}: ${detail}`, error instanceof EngineHttpError ? error.statusCode : undefined, { cause: error });
}

export class KeptImages {
  readonly #http: KeptImagesDeps['http'];
  readonly #docker: KeptImagesDeps['docker'];
  readonly #log: Logger;
  readonly #commitTimeoutMs: number;

  constructor(deps: KeptImagesDeps) {
    this.#http = deps.http;
    this.#docker = deps.docker;
    this.#log = deps.log;
    this.#commitTimeoutMs = deps.commitTimeoutMs ?? 10 * 60_000;
  }

  /** Commit the managed container `name`; then the oldest others go while all of them take more than `maxBytes`. */
  async keep(name: string, req: KeepContainerRequest, log: Logger = this.#log): Promise<KeepResult> {
    const info = await this.#docker.inspectByName(name);
    if (!info || info.labels[OWN_LABELS.managed] !== 'true') throw new UnionizeError('NOT_FOUND', `no managed container ${name}`);
    const repo = `${KEPT_REPOSITORY}/${req.client}`;
    const query = new URLSearchParams({ container: info.id, repo, tag: req.tag, pause: 'true' });
    // The container's own labels come along (Docker merges them in); `managed` is
    // turned off so a container run from the image is never taken for a device's,
    // and a claimed pool member's pool labels are emptied: one made from the image is no member.
    const labels = { [OWN_LABELS.managed]: 'false', [OWN_LABELS.pool]: '', [OWN_LABELS.poolSpec]: '', [KEPT_LABELS.kept]: 'true', [KEPT_LABELS.client]: req.client, [KEPT_LABELS.hostname]: req.hostname, [KEPT_LABELS.profile]: req.profile };
    let id: string;
    try {
      const made = await this.#http.call<{ Id: string }>({ method: 'POST', path: `/commit?${query}`, body: { Labels: labels }, timeoutMs: this.#commitTimeoutMs });
      id = bareId(made.Id);
    } catch (error) {
      throw dockerError(`commit ${name}`, error);
    }
    const all = await this.list();
    const kept = all.find((k) => k.id === id);
    if (!kept) throw new DockerError(`docker commit ${name}: image ${id.slice(0, 12)} not listed after commit`, undefined);
    log.info({ container: name, image: kept.image, id, sizeBytes: kept.sizeBytes }, 'container kept');
    const removed = req.maxBytes === undefined ? [] : await this.#prune(all, id, req.maxBytes, log);
    return { kept, removed };
  }

  /** Oldest first, never `newest`, until the rest fit in `maxBytes`. */
  async #prune(all: KeptImage[], newest: string, maxBytes: number, log: Logger): Promise<KeptImage[]> {
    let total = all.reduce((sum, k) => sum + k.sizeBytes, 0);
    const removed: KeptImage[] = [];
    for (const old of [...all].sort((a, b) => compareText(a.createdAt, b.createdAt))) {
      if (total <= maxBytes) break;
      if (old.id === newest) continue;
      if (!(await this.remove(old.id))) continue;
      total -= old.sizeBytes;
      removed.push(old);
      log.warn({ image: old.image, sizeBytes: old.sizeBytes, totalBytes: total, maxBytes }, 'kept image removed: kept images over their disk bound (keep_max_mb)');
    }
    return removed;
  }

  /** `docker save` of a kept image under its unionize-kept name, gzipped as it is read; nothing of it is held here. */
  async exportKept(id: string): Promise<Readable> {
    const known = (await this.list()).find((k) => k.id === id);
    if (!known) throw new UnionizeError('NOT_FOUND', `no kept image ${id}`);
    return this.#save(known.image);
  }

  /**
   * `docker save` of a live managed container as it is now: committed
   * (paused) to `unionize-export/NAME:TAG`, saved, gzipped as it is read;
   * the image goes when the download ends, however it ends.
   */
  async exportContainer(name: string, log: Logger = this.#log): Promise<Readable> {
    const info = await this.#docker.inspectByName(name);
    if (!info || info.labels[OWN_LABELS.managed] !== 'true') throw new UnionizeError('NOT_FOUND', `no managed container ${name}`);
    const ref = `${EXPORT_REPOSITORY}/${name}:${Date.now()}`;
    const [repo, tag] = ref.split(':') as [string, string];
    const query = new URLSearchParams({ container: info.id, repo, tag, pause: 'true' });
    try {
      await this.#http.call({ method: 'POST', path: `/commit?${query}`, body: { Labels: { [OWN_LABELS.managed]: 'false' } }, timeoutMs: this.#commitTimeoutMs });
    } catch (error) {
      throw dockerError(`commit ${name}`, error);
    }
    const removeImage = () =>
      this.#http.call({ method: 'DELETE', path: `/images/${encodeURIComponent(ref)}?force=true` }).catch((error: unknown) => log.warn({ image: ref, err: error }, 'export image not removed'));
    let out: Readable;
    try {
      out = await this.#save(ref);
    } catch (error) {
      await removeImage();
      throw error;
    }
    out.once('close', () => void removeImage());
    return out;
  }

  async #save(ref: string): Promise<Readable> {
    let tar: Readable;
    try {
      tar = await this.#http.stream({ method: 'GET', path: `/images/get?names=${encodeURIComponent(ref)}`, timeoutMs: this.#commitTimeoutMs });
    } catch (error) {
      throw dockerError(`save ${ref}`, error);
    }
    // An error on either side destroys both: the download is cut short, never passed off as whole.
    return pipeline(tar, createGzip({ level: GZIP_LEVEL }), () => {});
  }

  /** Every kept image on this engine, oldest first. */
  async list(): Promise<KeptImage[]> {
    const filters = encodeURIComponent(JSON.stringify({ label: [`${KEPT_LABELS.kept}=true`] }));
    try {
      const images = await this.#http.call<ImageSummary[]>({ method: 'GET', path: `/images/json?filters=${filters}` });
      return images.map(toKept).sort((a, b) => compareText(a.createdAt, b.createdAt) || compareText(a.id, b.id));
    } catch (error) {
      throw dockerError('list kept images', error);
    }
  }

  /** false when no kept image has this id (a kept image only: the label is checked). */
  async remove(id: string): Promise<boolean> {
    const known = (await this.list()).find((k) => k.id === id);
    if (!known) return false;
    try {
      await this.#http.call({ method: 'DELETE', path: `/images/sha256:${id}?force=true` });
      return true;
    } catch (error) {
      if (error instanceof EngineHttpError && error.statusCode === 404) return false;
      throw dockerError(`remove image ${id.slice(0, 12)}`, error);
    }
  }
}
