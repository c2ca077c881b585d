import { LABELS } from '@unionize/protocol';
import { DockerError } from '../errors.js';
import { EngineHttp, EngineHttpError } from './engine-http.js';

/**
 * The only boundary to the Docker Engine API. Everything above it sees plain
 * `ContainerInfo` records and `DockerError`s; Docker's "not found" and
 * "already started" are answers here, not errors.
 */

/** Labels unionize owns on every container it creates; request labels cannot override them. */
export const OWN_LABELS = {
  managed: LABELS.managed,
  address: LABELS.address,
  /** Not in the shared LABELS: only unionize reads it back (ContainerView.mac). */
  mac: 'io.unionize.mac',
  /** A warm pool's member (pool/warm-pool.ts): the pool's name; a claimed one keeps it (labels are fixed at create). */
  pool: 'io.unionize.pool',
  /** The hash of how the member was made (poolSpecKey): a pool whose spec changed replaces it. */
  poolSpec: 'io.unionize.pool.spec',
} as const;

export interface ContainerInfo {
  id: string;
  name: string;
  /** Image reference as requested at create time. */
  image: string;
  /** Docker's State.Status: created, running, paused, restarting, removing, exited or dead. */
  state: string;
  /** Host PID of the container's init while running, else 0 (always 0 from `listManaged`). */
  pid: number;
  labels: Record<string, string>;
  /** ISO time. */
  createdAt: string;
}

export interface CreateSpec {
  name: string;
  image: string;
  labels: Record<string, string>;
  env: Record<string, string>;
  /** eth1 MAC and address/prefix, recorded as labels so the container describes itself; none for a pool member (its claim says). */
  mac?: string;
  address?: string;
  /** Overrides the image's CMD. */
  command?: string[];
  /** Memory limit, bytes. */
  memoryBytes?: number;
  /** CPU limit in billionths of a CPU (Docker's NanoCpus). */
  nanoCpus?: number;
}

export interface DockerClient {
  /** Throws DockerError when the daemon does not answer. */
  ping(): Promise<void>;
  /** The container with exactly this name, or null. */
  inspectByName(name: string): Promise<ContainerInfo | null>;
  /** Creates (does not start) the container; returns its id. */
  create(spec: CreateSpec): Promise<string>;
  /** Starts it; starting a running container is not an error. */
  start(id: string): Promise<void>;
  /** Force-removes it with its anonymous volumes; false when it did not exist. */
  remove(id: string): Promise<boolean>;
  /** All containers labelled `io.unionize.managed=true`, running or not. */
  listManaged(): Promise<ContainerInfo[]>;
}

/** A Docker volume's name and labels. */
export interface VolumeInfo {
  name: string;
  labels: Record<string, string>;
}

/** What the warm pool needs besides (pool/warm-pool.ts): renames, and labelled volumes as records. */
export interface PoolDockerClient extends DockerClient {
  /** false when the new name is taken (409). */
  rename(id: string, name: string): Promise<boolean>;
  createVolume(name: string, labels: Record<string, string>): Promise<void>;
  inspectVolume(name: string): Promise<VolumeInfo | null>;
  /** false when it did not exist. */
  removeVolume(name: string): Promise<boolean>;
  /** Volumes with this label key. */
  listVolumes(label: string): Promise<VolumeInfo[]>;
}

/** The body of `POST /containers/create` (with `name`, which goes in the query), as far as unionize fills it in. */
export interface ContainerCreateOptions {
  name: string;
  Image: string;
  Cmd?: string[];
  Env: string[];
  Labels: Record<string, string>;
  HostConfig: {
    NetworkMode: string;
    Sysctls: Record<string, string>;
    RestartPolicy: { Name: string };
    Memory?: number;
    NanoCpus?: number;
  };
}

/** What Docker puts on a container: the sysctls because of the disable_ipv6 pitfall (see ARCHITECTURE.md). */
export function containerCreateOptions(spec: CreateSpec): ContainerCreateOptions {
  return {
    name: spec.name,
    Image: spec.image,
    ...(spec.command ? { Cmd: spec.command } : {}),
    Env: Object.entries(spec.env).map(([key, value]) => `${key}=${value}`),
    Labels: {
      ...spec.labels,
      [OWN_LABELS.managed]: 'true',
      ...(spec.address === undefined ? {} : { [OWN_LABELS.address]: spec.address }),
      ...(spec.mac === undefined ? {} : { [OWN_LABELS.mac]: spec.mac }),
    },
    HostConfig: {
      // Docker gives it no network; eth1 is attached by unionize after start.
      NetworkMode: 'none',
      Sysctls: {
        'net.ipv6.conf.all.disable_ipv6': '0',
        'net.ipv6.conf.default.disable_ipv6': '0',
      },
      // The orchestrator decides when a container comes back; a restart would also drop eth1.
      RestartPolicy: { Name: 'no' },
      ...(spec.memoryBytes ? { Memory: spec.memoryBytes } : {}),
      ...(spec.nanoCpus ? { NanoCpus: spec.nanoCpus } : {}),
    },
  };
}

/** The parts of `GET /containers/{id}/json` read here. */
interface InspectInfo {
  Id: string;
  Name: string;
  Created: string;
  Config: { Image: string; Labels: Record<string, string> | null };
  State: { Status: string; Running: boolean; Pid: number };
}

/** The parts of one entry of `GET /containers/json` read here. */
interface ListEntry {
  Id: string;
  Names: string[];
  Image: string;
  State: string;
  Labels: Record<string, string> | null;
  Created: number;
}

function statusOf(error: unknown): number | undefined {
  return error instanceof EngineHttpError ? error.statusCode : undefined;
}

/** Docker's own message ("No such image: x"), or the socket's ("connect ENOENT /var/run/docker.sock"). */
function dockerError(what: string, error: unknown): DockerError {
  const detail = error instanceof EngineHttpError ? error.dockerMessage : error instanceof Error ? error.message : String(error);
  return new DockerError(`docker ${what}: ${detail.trim()}`, statusOf(error), { cause: error });
}

export interface DockerEngineClientOptions {
  socketPath: string;
  /** Per-request socket timeout, ms. */
  timeoutMs?: number;
  /** Budget for /_ping, ms: a health check must answer quickly. */
  pingTimeoutMs?: number;
}

const ref = (idOrName: string) => encodeURIComponent(idOrName);

/** DockerClient on the Engine API's unix socket (engine-http.ts). */
export class DockerEngineClient implements PoolDockerClient {
  readonly #http: EngineHttp;
  readonly #pingTimeoutMs: number;

  constructor(options: DockerEngineClientOptions) {
    this.#http = new EngineHttp({ socketPath: options.socketPath, timeoutMs: options.timeoutMs ?? 60_000 });
    this.#pingTimeoutMs = options.pingTimeoutMs ?? 2_000;
  }

  async ping(): Promise<void> {
    try {
      await this.#http.call({ method: 'GET', path: '/_ping', timeoutMs: this.#pingTimeoutMs });
    } catch (error) {
      throw dockerError('ping', error);
    }
  }

  async inspectByName(name: string): Promise<ContainerInfo | null> {
    const info = await this.inspect(name);
    // Docker also resolves a name as an id prefix: only an exact name counts.
    return info && info.name === name ? info : null;
  }

  /** A container by id, id prefix or name, as Docker resolves it (`unionize attach`); null when Docker does not know it. */
  async inspect(idOrName: string): Promise<ContainerInfo | null> {
    let info: InspectInfo;
    try {
      info = await this.#http.call<InspectInfo>({ method: 'GET', path: `/containers/${ref(idOrName)}/json` });
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw dockerError(`inspect ${idOrName}`, error);
    }
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      image: info.Config.Image,
      state: info.State.Status,
      pid: info.State.Running ? info.State.Pid : 0,
      labels: info.Config.Labels ?? {},
      createdAt: new Date(info.Created).toISOString(),
    };
  }

  async create(spec: CreateSpec): Promise<string> {
    const { name, ...body } = containerCreateOptions(spec);
    try {
      const created = await this.#http.call<{ Id: string }>({ method: 'POST', path: `/containers/create?name=${ref(name)}`, body });
      return created.Id;
    } catch (error) {
      throw dockerError(`create ${spec.name}`, error);
    }
  }

  async start(id: string): Promise<void> {
    try {
      await this.#http.call({ method: 'POST', path: `/containers/${ref(id)}/start` });
    } catch (error) {
      if (statusOf(error) === 304) return; // already started
      throw dockerError(`start ${id.slice(0, 12)}`, error);
    }
  }

  async remove(id: string): Promise<boolean> {
    try {
      await this.#http.call({ method: 'DELETE', path: `/containers/${ref(id)}?force=true&v=true` });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw dockerError(`remove ${id.slice(0, 12)}`, error);
    }
  }

  async listManaged(): Promise<ContainerInfo[]> {
    let list: ListEntry[];
    try {
      const filters = encodeURIComponent(JSON.stringify({ label: [`${OWN_LABELS.managed}=true`] }));
      list = await this.#http.call<ListEntry[]>({ method: 'GET', path: `/containers/json?all=true&filters=${filters}` });
    } catch (error) {
      throw dockerError('list', error);
    }
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      image: c.Image,
      state: c.State,
      pid: 0,
      labels: c.Labels ?? {},
      createdAt: new Date(c.Created * 1000).toISOString(),
    }));
  }

  async rename(id: string, name: string): Promise<boolean> {
    try {
      await this.#http.call({ method: 'POST', path: `/containers/${ref(id)}/rename?name=${ref(name)}` });
      return true;
    } catch (error) {
      if (statusOf(error) === 409) return false;
      throw dockerError(`rename ${id.slice(0, 12)} to ${name}`, error);
    }
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    try {
      await this.#http.call({ method: 'POST', path: '/volumes/create', body: { Name: name, Labels: labels } });
    } catch (error) {
      throw dockerError(`volume create ${name}`, error);
    }
  }

  async inspectVolume(name: string): Promise<VolumeInfo | null> {
    try {
      const volume = await this.#http.call<{ Name: string; Labels: Record<string, string> | null }>({ method: 'GET', path: `/volumes/${ref(name)}` });
      return { name: volume.Name, labels: volume.Labels ?? {} };
    } catch (error) {
      if (statusOf(error) === 404) return null;
      throw dockerError(`volume inspect ${name}`, error);
    }
  }

  async removeVolume(name: string): Promise<boolean> {
    try {
      await this.#http.call({ method: 'DELETE', path: `/volumes/${ref(name)}?force=true` });
      return true;
    } catch (error) {
      if (statusOf(error) === 404) return false;
      throw dockerError(`volume remove ${name}`, error);
    }
  }

  async listVolumes(label: string): Promise<VolumeInfo[]> {
    try {
      const filters = encodeURIComponent(JSON.stringify({ label: [label] }));
      const answer = await this.#http.call<{ Volumes: Array<{ Name: string; Labels: Record<string, string> | null }> | null }>({ method: 'GET', path: `/volumes?filters=${filters}` });
      return (answer.Volumes ?? []).map((v) => ({ name: v.Name, labels: v.Labels ?? {} }));
    } catch (error) {
      throw dockerError('volume list', error);
    }
  }

  /** Closes its idle connections to Docker. */
  close(): void {
    this.#http.close();
  }
}
